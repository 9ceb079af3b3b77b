"""``hierro estimate``: latency, throughput and memory of one model instance."""

from __future__ import annotations

from typing import Annotated

import typer

from hierro.cli._shared import (
    CalibOpt,
    DpAttentionOpt,
    Dtype,
    DtypeOpt,
    EpOpt,
    FrameworkOpt,
    GpuOpt,
    JsonOpt,
    KvDtypeOpt,
    MemFractionOpt,
    ModelOpt,
    PpOpt,
    TpOpt,
    calibration,
    emit_json,
    make_plan,
    out,
)
from hierro.errors import HierroError
from hierro.perf import StepModel, estimate
from hierro.report import estimate_dict, estimate_tables
from hierro.specs import get_accelerator, get_model

__all__ = ["estimate_cmd"]


def estimate_cmd(
    model: ModelOpt = "llama-3.1-70b",
    gpu: GpuOpt = "h100-sxm",
    tp: TpOpt = 4,
    pp: PpOpt = 1,
    ep: EpOpt = 1,
    dp_attention: DpAttentionOpt = False,
    dtype: DtypeOpt = Dtype.fp8,
    kv_dtype: KvDtypeOpt = None,
    isl: Annotated[int, typer.Option(help="input tokens per request")] = 1024,
    osl: Annotated[int, typer.Option(help="output tokens per request")] = 1024,
    concurrency: Annotated[int, typer.Option(help="requests in flight (closed loop)")] = 64,
    offline: Annotated[bool, typer.Option("--offline", help="maximum throughput (MLPerf Offline)")] = False,
    framework: FrameworkOpt = "vllm",
    mem_fraction: MemFractionOpt = 0.9,
    max_num_seqs: Annotated[
        int | None,
        typer.Option(help="running sequences per instance (vLLM max_num_seqs; default 1024 per attention data-parallel rank)"),
    ] = None,
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
    plan = make_plan(tp, pp, ep, dp_attention, dtype, kv_dtype)
    sm = StepModel(get_model(model), get_accelerator(gpu), plan, framework=framework, calib=calibration(calib))
    e = estimate(
        sm, isl=isl, osl=osl, concurrency=concurrency, offline=offline, mem_fraction=mem_fraction,
        max_num_seqs=max_num_seqs, waves=waves,
    )
    if as_json:
        emit_json(estimate_dict(e))
    else:
        out.print(estimate_tables(e))
