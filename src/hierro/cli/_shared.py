"""What every command shares: the console, JSON output, common options."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from hierro.perf import Calibration, default_calibration, load_calibration
from hierro.specs import Plan

__all__ = [
    "CalibOpt",
    "DpAttentionOpt",
    "Dtype",
    "DtypeOpt",
    "EpOpt",
    "FrameworkOpt",
    "GpuOpt",
    "JsonOpt",
    "KvDtypeOpt",
    "MemFractionOpt",
    "ModelOpt",
    "PpOpt",
    "TpOpt",
    "calibration",
    "emit_json",
    "err_console",
    "make_plan",
    "out",
]

out = Console()
err_console = Console(stderr=True)


def emit_json(data: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=float) + "\n")


def calibration(path: Path | None) -> Calibration:
    """The efficiency table of ``--calibration``, or the bundled one."""
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

# the options that name one model instance, shared by estimate, simulate and search
ModelOpt = Annotated[str, typer.Option(help="catalog id, config.json path, or cached HF repo id")]
GpuOpt = Annotated[str, typer.Option(help="accelerator id (see `hierro catalog gpus`)")]
TpOpt = Annotated[int, typer.Option(help="tensor-parallel GPUs per stage")]
PpOpt = Annotated[int, typer.Option(help="pipeline stages")]
EpOpt = Annotated[int, typer.Option(help="expert-parallel ranks (divides tp)")]
DpAttentionOpt = Annotated[bool, typer.Option("--dp-attention", help="data-parallel attention over the tp ranks")]
DtypeOpt = Annotated[Dtype, typer.Option(help="weight and GEMM precision")]
KvDtypeOpt = Annotated[Dtype | None, typer.Option(help="KV-cache precision (default: bf16, fp8 with fp8/fp4 weights)")]
FrameworkOpt = Annotated[str, typer.Option(help="serving engine: vllm, sglang, trtllm")]
MemFractionOpt = Annotated[float, typer.Option(
    help="share of HBM the engine may use (TensorRT-LLM: share of what the weights and workspace leave free)")]


def make_plan(tp: int, pp: int, ep: int, dp_attention: bool, dtype: Dtype, kv_dtype: Dtype | None) -> Plan:
    """The plan of the instance options; the KV cache follows fp8/fp4 weights into fp8."""
    kv = kv_dtype.value if kv_dtype else ("fp8" if dtype.value in ("fp8", "fp4") else "bf16")
    return Plan(tp=tp, pp=pp, ep=ep, dp_attention=dp_attention, weight_dtype=dtype.value, kv_dtype=kv)
