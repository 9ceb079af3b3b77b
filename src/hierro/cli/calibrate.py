"""``hierro calibrate``: fit the step-cost efficiencies on a measurements file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hierro.accuracy import load_measurements
from hierro.accuracy.fit import fit_calibration
from hierro.cli._shared import out
from hierro.errors import HierroError
from hierro.perf import dump_calibration

__all__ = ["calibrate_cmd"]


def calibrate_cmd(
    file: Annotated[Path | None, typer.Argument(help="measurements CSV in the schema of SCHEMA.md; default: bundled set")] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="where to write the fitted efficiency table (YAML)")] = Path(
        "calibration.yaml"
    ),
) -> None:
    """Fit the efficiencies of the step-cost model on measurements; use the result with
    ``--calibration FILE`` on any command."""
    rows = load_measurements(file)
    if output.exists() and output.is_dir():
        raise HierroError(f"--output {output} is a directory; give a file name such as calibration.yaml")
    with out.status(f"fitting on {len(rows)} rows"):
        calib = fit_calibration(rows)
    text = dump_calibration(calib, header=f"Efficiencies fitted by `hierro calibrate` on {file or 'the bundled set'}.")
    # write atomically: a failed run leaves no half-written file behind
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    err = calib.error.get("in_sample", {})
    t = Table(title=f"fitted on {calib.fitted_on} (in-sample error; cross-validated: ACCURACY.md)", title_justify="left")
    for col in ("metric", "n", "median APE", "p90 APE", "bias"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    for metric, s in err.items():
        if isinstance(s, dict) and s.get("n"):
            t.add_row(metric, str(s["n"]), f"{s['median_ape']:.0%}", f"{s['p90_ape']:.0%}", f"{s['median_signed']:+.0%}")
    out.print(t)
    out.print(f"wrote {output}")
