"""The ``hierro`` command: a thin typer shell over the public Python API.

One module per command; this module assembles the app. Bad input raises
:class:`~hierro.errors.HierroError`; :func:`main` prints its one-line message and exits with
code 2, without a traceback.
"""

from __future__ import annotations

import sys

import typer

from hierro.cli.calibrate import calibrate_cmd
from hierro.cli.catalog import catalog_cmd
from hierro.cli.estimate import estimate_cmd
from hierro.cli.plan import plan_cmd
from hierro.cli.search import search_cmd
from hierro.cli.simulate import simulate_cmd
from hierro.cli.tco import tco_cmd
from hierro.cli.train import train_cmd
from hierro.cli.validate import validate_cmd
from hierro.errors import HierroError

__all__ = ["app", "main"]

app = typer.Typer(
    name="hierro",
    help="hierro: capital into AI compute, compute into tokens.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("plan")(plan_cmd)
app.command("estimate")(estimate_cmd)
app.command("simulate")(simulate_cmd)
app.command("search")(search_cmd)
app.command("catalog")(catalog_cmd)
app.command("validate")(validate_cmd)
app.command("calibrate")(calibrate_cmd)
app.command("tco")(tco_cmd)
app.command("train")(train_cmd)


def main() -> None:
    """Console entry point: run the app; bad input exits 2 with one line on stderr."""
    try:
        app()  # typer reports usage errors itself (exit 2) and exits
    except HierroError as err:
        # one line per problem (most errors are one problem)
        for line in str(err).splitlines() or [type(err).__name__]:
            sys.stderr.write(f"hierro: error: {line}\n")
        sys.exit(2)
