"""``hierro train``: time, cost, energy and layout of a training run."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from hierro.cli._shared import GpuOpt, JsonOpt, ModelOpt, emit_json, out
from hierro.errors import HierroError
from hierro.report.training import training_dict, training_tables
from hierro.training import Layout, TrainEfficiency, plan_training

__all__ = ["parse_days", "train_cmd"]

_OVERLAPS = ("tp", "pp", "ep")
DUALPIPE_COMM_SM_SHARE = 20 / 132
"""SMs running the overlapped all-to-all: 20 of 132 on H800 (DeepSeek-V3, arXiv:2412.19437 §3.2.2)."""
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dwh]?)\s*$")
_DAYS_PER = {"": 1.0, "d": 1.0, "w": 7.0, "h": 1.0 / 24.0}


def parse_days(text: str) -> float:
    """'90d', '12w', '36h' or a number of days -> days."""
    m = _DURATION.match(text.lower())
    if not m:
        raise HierroError(f"--deadline must look like 90d, 12w or 36h, got {text!r}")
    return float(m.group(1)) * _DAYS_PER[m.group(2)]


def train_cmd(
    model: ModelOpt = "llama-3.1-405b",
    tokens: Annotated[float, typer.Option(help="training tokens, e.g. 15.6e12")] = 15.6e12,
    gpu: GpuOpt = "h100-sxm",
    gpus: Annotated[int, typer.Option(help="accelerators in the cluster")] = 16384,
    seq_len: Annotated[int, typer.Option(help="training sequence length")] = 8192,
    batch_tokens: Annotated[float, typer.Option(help="global batch in tokens")] = 16 * 2**20,
    deadline: Annotated[str | None, typer.Option(help="also size the cluster to finish in, e.g. 90d")] = None,
    usd_per_gpu_hour: Annotated[
        float | None, typer.Option(help="rental price (default: median of the catalog's cloud prices)")
    ] = None,
    dtype: Annotated[str, typer.Option(help="GEMM precision: bf16 or fp8")] = "bf16",
    tp: Annotated[int | None, typer.Option(help="fix the layout: tensor parallel (with --pp, --dp)")] = None,
    pp: Annotated[int, typer.Option(help="pipeline stages (with --tp)")] = 1,
    dp: Annotated[int | None, typer.Option(help="data-parallel replicas (default: gpus / (tp·cp·pp))")] = None,
    cp: Annotated[int, typer.Option(help="context parallel (with --tp)")] = 1,
    vpp: Annotated[int, typer.Option(help="interleaved stages per pipeline rank (with --tp)")] = 1,
    micro_batch: Annotated[int, typer.Option(help="sequences per micro-batch (with --tp)")] = 1,
    ep: Annotated[int, typer.Option(help="expert parallel (with --tp)")] = 1,
    zero: Annotated[int, typer.Option(help="ZeRO stage 0-3 (with --tp)")] = 1,
    recompute: Annotated[str, typer.Option(help="none, selective or full (with --tp)")] = "selective",
    schedule: Annotated[str, typer.Option(
        help="pipeline schedule: 1f1b (interleaving searched) or dualpipe (DeepSeek-V3)")] = "1f1b",
    adam_moments: Annotated[str, typer.Option(
        help="precision of Adam's moments: fp32 or bf16 (DeepSeek-V3; master weights stay fp32)")] = "fp32",
    low_precision_acts: Annotated[bool, typer.Option(
        help="with --dtype fp8, also cache SwiGLU inputs in FP8 and the attention output in E5M6")] = False,
    fp8_scaling: Annotated[str, typer.Option(
        help="with --dtype fp8: tensor (one scale per tensor) or block (DeepSeek-V3's 1x128 / "
             "128x128 scales)")] = "tensor",
    overlap: Annotated[str, typer.Option(
        help="communication the software stack hides behind compute, any of tp,pp,ep "
             "(MegaScale: tp,pp; DeepSeek-V3 DualPipe: ep)")] = "",
    as_json: JsonOpt = False,
) -> None:
    """How long, how much and how much energy to train a model; the layout and cluster to build."""
    if dtype not in ("bf16", "fp8"):
        raise HierroError(f"--dtype must be bf16 or fp8, got {dtype!r}")
    if recompute not in ("none", "selective", "full"):
        raise HierroError(f"--recompute must be none, selective or full, got {recompute!r}")
    if schedule not in ("1f1b", "dualpipe"):
        raise HierroError(f"--schedule must be 1f1b or dualpipe, got {schedule!r}")
    if adam_moments not in ("fp32", "bf16"):
        raise HierroError(f"--adam-moments must be fp32 or bf16, got {adam_moments!r}")
    if low_precision_acts and dtype != "fp8":
        raise HierroError("--low-precision-acts needs --dtype fp8")
    if fp8_scaling not in ("tensor", "block"):
        raise HierroError(f"--fp8-scaling must be tensor or block, got {fp8_scaling!r}")
    if fp8_scaling == "block" and dtype != "fp8":
        raise HierroError("--fp8-scaling block needs --dtype fp8")
    kinds = [k.strip() for k in overlap.split(",") if k.strip()]
    bad = [k for k in kinds if k not in _OVERLAPS]
    if bad:
        raise HierroError(f"--overlap takes tp, pp or ep, got {', '.join(bad)}")
    eff = TrainEfficiency(
        tp_overlap=1.0 if "tp" in kinds else 0.0, pp_overlap=1.0 if "pp" in kinds else 0.0,
        ep_overlap=1.0 if "ep" in kinds else 0.0,
        comm_sm_share=DUALPIPE_COMM_SM_SHARE if "ep" in kinds else 0.0,
    )
    layout = None
    recipe: dict[str, int | str] = {"schedule": schedule} if schedule != "1f1b" else {}
    if adam_moments != "fp32":
        recipe["moments"] = adam_moments
    if low_precision_acts:
        recipe["low_precision_acts"] = True
    if fp8_scaling != "tensor":
        recipe["fp8_scaling"] = fp8_scaling
    if tp is not None:
        shard = tp * cp * pp
        d = dp if dp is not None else max(gpus // shard, 1)
        layout = Layout(tp=tp, pp=pp, dp=d, cp=cp, ep=ep, vpp=vpp, micro_batch=micro_batch, zero=zero,
                        recompute=recompute, schedule=schedule,  # type: ignore[arg-type]
                        moments=adam_moments, low_precision_acts=low_precision_acts,  # type: ignore[arg-type]
                        fp8_scaling=fp8_scaling)  # type: ignore[arg-type]
    plan = plan_training(
        model, tokens, gpu, gpus, seq_len,
        deadline_days=parse_days(deadline) if deadline else None,
        usd_per_gpu_hour=usd_per_gpu_hour, global_batch_tokens=batch_tokens, dtype=dtype, layout=layout,
        fixed=recipe if layout is None else None, efficiency=eff,
    )
    if as_json:
        emit_json(training_dict(plan))
    else:
        out.print(training_tables(plan))
