"""``hierro estimate``: latency, throughput and memory of one model instance."""

from __future__ import annotations

from typing import Annotated

import typer

from hierro.cli._shared import CalibOpt, Dtype, JsonOpt, calibration, emit_json, out
from hierro.errors import HierroError
from hierro.perf import StepModel, estimate
from hierro.report import estimate_dict, estimate_tables
from hierro.specs import Plan, get_accelerator, get_model

__all__ = ["estimate_cmd"]


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
    waves: Annotated[
        float | None,
        typer.Option(help="model a benchmark of waves x concurrency requests started at once (default: steady state)"),
    ] = None,
    calib: CalibOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Latency, throughput, memory and the op breakdown of one model instance."""
    if not 0.1 <= mem_fraction <= 1.0:
        raise HierroError(f"--mem-fraction must be in [0.1, 1], got {mem_fraction}")
    if waves is not None and waves < 1:
        raise HierroError(f"--waves must be >= 1, got {waves}")
    kv = kv_dtype.value if kv_dtype else ("fp8" if dtype.value in ("fp8", "fp4") else "bf16")
    plan = Plan(tp=tp, pp=pp, ep=ep, dp_attention=dp_attention, weight_dtype=dtype.value, kv_dtype=kv)
    sm = StepModel(get_model(model), get_accelerator(gpu), plan, framework=framework, calib=calibration(calib))
    e = estimate(
        sm, isl=isl, osl=osl, concurrency=concurrency, offline=offline, mem_fraction=mem_fraction, waves=waves
    )
    if as_json:
        emit_json(estimate_dict(e))
    else:
        out.print(estimate_tables(e))
