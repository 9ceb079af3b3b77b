"""The ``hierro`` command: a thin typer shell over the public Python API.

Bad input raises :class:`~hierro.errors.HierroError`; :func:`main` prints its one-line message
and exits with code 2, without a traceback.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from hierro.accuracy import load_measurements, validate
from hierro.accuracy.predictor import EstimatePredictor
from hierro.catalog import accelerator_files, model_files, system_files
from hierro.errors import HierroError
from hierro.perf import Calibration, StepModel, default_calibration, estimate, load_calibration
from hierro.report import (
    catalog_json,
    estimate_dict,
    estimate_tables,
    gpus_table,
    models_table,
    systems_table,
    validation_tables,
)
from hierro.specs import Plan, get_accelerator, get_model

__all__ = ["app", "main"]

app = typer.Typer(
    name="hierro",
    help="hierro: capital into AI compute, compute into tokens.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()


def _emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=float) + "\n")


def _calibration(path: Path | None) -> Calibration:
    return load_calibration(path) if path is not None else default_calibration()


class Dtype(StrEnum):
    bf16 = "bf16"
    fp16 = "fp16"
    fp8 = "fp8"
    int8 = "int8"
    fp4 = "fp4"
    int4 = "int4"


CalibOpt = Annotated[
    Path | None, typer.Option("--calibration", help="efficiency table from `hierro calibrate` (default: bundled)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object instead of tables")]


@app.command("estimate")
def estimate_cmd(
    model: Annotated[str, typer.Option(help="catalog id, config.json path, or cached HF repo id")] = "llama-3.1-70b",
    gpu: Annotated[str, typer.Option(help="accelerator id (see `hierro catalog gpus`)")] = "h100-sxm",
    tp: Annotated[int, typer.Option(help="tensor-parallel GPUs per stage")] = 4,
    pp: Annotated[int, typer.Option(help="pipeline stages")] = 1,
    ep: Annotated[int, typer.Option(help="expert-parallel ranks (divides tp)")] = 1,
    dp_attention: Annotated[bool, typer.Option("--dp-attention", help="data-parallel attention over the tp ranks")] = False,
    dtype: Annotated[Dtype, typer.Option(help="weight and GEMM precision")] = Dtype.fp8,
    kv_dtype: Annotated[Dtype | None, typer.Option(help="KV-cache precision (default: bf16, fp8 with fp8/fp4 weights)")] = None,
    isl: Annotated[int, typer.Option(help="input tokens per request")] = 1024,
    osl: Annotated[int, typer.Option(help="output tokens per request")] = 1024,
    concurrency: Annotated[int, typer.Option(help="requests in flight (closed loop)")] = 64,
    offline: Annotated[bool, typer.Option("--offline", help="maximum throughput (MLPerf Offline)")] = False,
    framework: Annotated[str, typer.Option(help="serving engine: vllm, sglang, trtllm")] = "vllm",
    mem_fraction: Annotated[float, typer.Option(help="share of HBM the engine may use")] = 0.9,
    calibration: CalibOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Latency, throughput, memory and the op breakdown of one model instance."""
    if not 0.1 <= mem_fraction <= 1.0:
        raise HierroError(f"--mem-fraction must be in [0.1, 1], got {mem_fraction}")
    kv = kv_dtype.value if kv_dtype else ("fp8" if dtype.value in ("fp8", "fp4") else "bf16")
    plan = Plan(tp=tp, pp=pp, ep=ep, dp_attention=dp_attention, weight_dtype=dtype.value, kv_dtype=kv)
    sm = StepModel(get_model(model), get_accelerator(gpu), plan, framework=framework, calib=_calibration(calibration))
    e = estimate(sm, isl=isl, osl=osl, concurrency=concurrency, offline=offline, mem_fraction=mem_fraction)
    if as_json:
        _emit_json(estimate_dict(e))
    else:
        out.print(estimate_tables(e))


class CatalogKind(StrEnum):
    gpus = "gpus"
    systems = "systems"
    models = "models"


@app.command("catalog")
def catalog_cmd(
    kind: Annotated[CatalogKind, typer.Argument(help="gpus, systems or models")],
    as_json: JsonOpt = False,
) -> None:
    """List the accelerators, systems or models hierro knows, with sources."""
    if kind is CatalogKind.gpus:
        gpus = list(accelerator_files().values())
        _emit_json(catalog_json(gpus)) if as_json else out.print(gpus_table(gpus))
    elif kind is CatalogKind.systems:
        systems = list(system_files().values())
        _emit_json(catalog_json(systems)) if as_json else out.print(systems_table(systems))
    else:
        models = list(model_files().values())
        if as_json:
            rows = catalog_json(models)
            for row, f in zip(rows, models, strict=True):
                p = get_model(f.id).params()
                row["computed_params"] = {"total": p.total, "active": p.active}
            _emit_json(rows)
        else:
            out.print(models_table([(f, get_model(f.id)) for f in models]))


class Breakdown(StrEnum):
    hardware = "hardware"
    model = "model"
    framework = "framework"
    source_kind = "source_kind"


@app.command("validate")
def validate_cmd(
    file: Annotated[Path | None, typer.Argument(help="measurements CSV (schema: SCHEMA.md); default: bundled set")] = None,
    by: Annotated[Breakdown, typer.Option(help="breakdown shown per metric")] = Breakdown.hardware,
    calibration: CalibOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Predict every row of a measurements file and report the error per metric and group."""
    rows = load_measurements(file)
    predictor = EstimatePredictor(calib=_calibration(calibration))
    with Progress(
        TextColumn("validating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=True, disable=as_json,
    ) as bar:
        task = bar.add_task("rows", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        res = validate(rows, predictor, progress=tick)
    if as_json:
        _emit_json(res.to_json_dict())
    else:
        out.print(validation_tables(res, breakdown=by.value))


def main() -> None:
    """Console entry point: run the app; bad input exits 2 with one line on stderr."""
    try:
        app(standalone_mode=False)
    except HierroError as err:
        sys.stderr.write(f"hierro: error: {err}\n")
        sys.exit(2)
    except typer.Abort:
        sys.stderr.write("hierro: aborted\n")
        sys.exit(1)
    except (typer.BadParameter, typer.Exit) as err:  # pragma: no cover - click handles these
        raise err
    except Exception as err:  # click usage errors
        import click

        if isinstance(err, click.ClickException):
            err.show()
            sys.exit(2)
        raise
