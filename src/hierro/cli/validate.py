"""``hierro validate``: predict every row of a measurements file and report the error."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from hierro.accuracy import RowProblem, load_measurements, load_measurements_lenient, validate
from hierro.accuracy.predictor import EstimatePredictor
from hierro.accuracy.simpredict import SimPredictor
from hierro.cli._shared import CalibOpt, JsonOpt, calibration, emit_json, err_console, out
from hierro.report import validation_tables

__all__ = ["validate_cmd"]


class Breakdown(StrEnum):
    hardware = "hardware"
    model = "model"
    framework = "framework"
    source_kind = "source_kind"


def validate_cmd(
    file: Annotated[Path | None, typer.Argument(help="measurements CSV (schema: SCHEMA.md); default: bundled set")] = None,
    by: Annotated[Breakdown, typer.Option(help="breakdown shown per metric")] = Breakdown.hardware,
    analytic: Annotated[
        bool, typer.Option("--analytic", help="predict with the analytic steady state instead of simulating each benchmark")
    ] = False,
    calib: CalibOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Predict every row of a measurements file and report the error per metric and group.

    Each closed-loop or server row is simulated as the benchmark that produced it; offline rows
    use the analytic estimate."""
    problems: tuple[RowProblem, ...] = ()
    if file is None:
        rows = load_measurements()
    else:
        rows, problems = load_measurements_lenient(file)
    c = calibration(calib)
    predictor = EstimatePredictor(calib=c) if analytic else SimPredictor(calib=c)
    with Progress(
        TextColumn("validating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=err_console, transient=True, disable=as_json,
    ) as bar:
        task = bar.add_task("rows", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        res = validate(rows, predictor, progress=tick).with_unreadable(problems)
    if as_json:
        emit_json(res.to_json_dict())
    else:
        out.print(validation_tables(res, breakdown=by.value))
