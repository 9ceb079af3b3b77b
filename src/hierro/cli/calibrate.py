"""``hierro calibrate``: fit the step-cost efficiencies on a measurements file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hierro.accuracy import load_measurements
from hierro.accuracy.simfit import fit_sim_calibration
from hierro.cli._shared import out
from hierro.errors import HierroError
from hierro.files import write_atomic
from hierro.perf import dump_calibration
from hierro.perf.efficiency import DISAGGREGATED

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
        calib = fit_sim_calibration(rows)
    text = dump_calibration(calib, header=f"Efficiencies fitted by `hierro calibrate` on {file or 'the bundled set'}.")
    # write atomically: a failed run leaves no half-written file behind
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(output, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    t = Table(title=f"fitted on {calib.fitted_on}", title_justify="left")
    t.add_column("parameter")
    t.add_column("value", justify="right")
    shown: set[str] = set()
    for e in calib.entries:
        if e.note.startswith("fitted") and e.note not in shown:  # a parameter may write several entries
            shown.add(e.note)
            value = next(v for v in (e.compute, e.memory, e.latency_s, e.exposed) if v is not None)
            t.add_row(e.note.removeprefix("fitted: "), f"{value:.4g}")
    for key in sorted(calib.ttft_overhead):
        disagg = key.endswith(f"/{DISAGGREGATED}")
        fe = calib.front_end(key.removesuffix(f"/{DISAGGREGATED}"), disaggregated=disagg)
        t.add_row(f"{key} front end: fixed s", f"{fe.fixed_s:.4g}")
        t.add_row(f"{key} front end: s per request in flight", f"{fe.per_inflight_s:.4g}")
        t.add_row(f"{key} front end: s per prompt token", f"{fe.per_prompt_token_s:.4g}")
        t.add_row(f"{key} front end: engine steps", f"{fe.per_step:.4g}")
        t.add_row(f"{key} front end: engine steps per 1,000 prompt tokens", f"{1e3 * fe.per_step_per_token:.4g}")
    if calib.mtp_acceptance is not None:
        t.add_row("MTP draft acceptance rate", f"{calib.mtp_acceptance:.3g}")
    out.print(t)
    out.print("check it on held-out rows with `hierro validate FILE --calibration " + str(output) + "`")
    out.print(f"wrote {output}")
