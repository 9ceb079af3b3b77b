"""Rendering an :class:`~hierro.perf.Estimate`: rich tables and a JSON-ready dict."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.console import Group
from rich.markup import escape
from rich.table import Table

from hierro.perf import Estimate, StepCost, mixes_prefill
from hierro.units import GB, GIB, MIB, to_ms

__all__ = ["estimate_dict", "estimate_tables"]


def _step_dict(step: StepCost) -> dict[str, Any]:
    return {
        "time_ms": to_ms(float(step.time_s)),
        "overhead_ms": to_ms(step.overhead_s),
        "ops": [
            {
                "name": o.name,
                "op_class": o.op_class,
                "time_ms": to_ms(float(np.sum(o.time_s))),
                "gflop": float(np.sum(o.flops)) / 1e9,
                "gbytes": float(np.sum(o.bytes)) / GB,
                "comm_gbytes": float(np.sum(o.comm_bytes)) / GB,
                "bound": o.bound(),
            }
            for o in step.ops
        ],
    }


def estimate_dict(e: Estimate) -> dict[str, Any]:
    """Every figure of an estimate, units in the key names."""
    m = e.memory
    return {
        "model": e.model_id,
        "gpu": e.gpu_id,
        "framework": e.framework,
        "plan": e.plan_label,
        "gpus": e.devices,
        "setting": e.setting,
        "isl": e.isl,
        "osl": e.osl,
        "concurrency": e.concurrency,
        "running_batch": e.batch,
        "limited_by": e.limited_by,
        "prefill_in_decode_steps": mixes_prefill(e.framework),
        "ttft_ms": to_ms(e.ttft_s),
        "tpot_ms": to_ms(e.tpot_s),
        "e2e_ms": to_ms(e.e2e_s),
        "req_s": e.req_s,
        "out_tok_s": e.out_tok_s,
        "out_tok_s_per_gpu": e.out_tok_s_per_gpu,
        "out_tok_s_per_user": e.out_tok_s_per_user,
        "max_concurrency": e.max_concurrency,
        "memory_per_gpu": {
            "capacity_gib": m.capacity_bytes / GIB,
            "usable_gib": m.budget_bytes / GIB,
            "weights_gib": m.weights_bytes / GIB,
            "workspace_gib": m.workspace_bytes / GIB,
            "kv_per_seq_mib": m.kv_bytes_per_seq / MIB,
        },
        "prefill_step": _step_dict(e.prefill_step),
        "decode_step": _step_dict(e.decode_step),
        "calibration": e.calibration,
        "bands": {k: {"lo": lo, "hi": hi} for k, (lo, hi) in e.bands.items()},
    }


def _ops_table(title: str, step: StepCost) -> Table:
    t = Table(title=title, title_justify="left", show_edge=False)
    t.add_column("op")
    t.add_column("ms", justify="right")
    t.add_column("share", justify="right")
    t.add_column("GFLOP", justify="right")
    t.add_column("GB moved", justify="right")
    t.add_column("bound")
    total = float(step.time_s)
    for o in step.ops:
        ms = float(np.sum(o.time_s))
        if ms <= 0.0:
            continue
        moved = float(np.sum(o.bytes)) + float(np.sum(o.comm_bytes))
        t.add_row(
            escape(o.name), f"{to_ms(ms):.3f}", f"{ms / total:.0%}", f"{float(np.sum(o.flops)) / 1e9:,.1f}",
            f"{moved / GB:.3f}", o.bound(),
        )
    t.add_row("host overhead", f"{to_ms(step.overhead_s):.3f}", f"{step.overhead_s / total:.0%}", "", "", "")
    t.add_row("[b]step[/b]", f"[b]{to_ms(total):.3f}[/b]", "", "", "", "")
    return t


def _band(e: Estimate, key: str, scale: float, fmt: str) -> str:
    b = e.bands.get(key)
    if b is None:
        return ""
    return f" [dim]({format(b[0] * scale, fmt)}-{format(b[1] * scale, fmt)})[/dim]"


def estimate_tables(e: Estimate) -> Group:
    """The summary, memory and op-breakdown tables of an estimate."""
    head = Table(
        title=f"{e.model_id} on {e.devices}x {e.gpu_id} ({e.plan_label}, {e.framework}), "
        f"{e.setting}, ISL {e.isl} / OSL {e.osl}",
        title_justify="left",
        show_header=False,
        show_edge=False,
    )
    head.add_column("metric")
    head.add_column("value", justify="right")
    conc = "offline (max throughput)" if e.setting == "offline" else str(e.concurrency)
    rows = [
        ("concurrency", conc),
        ("running batch", f"{e.batch:,.1f} (limited by {e.limited_by})"),
        ("engine steps", "prompt chunks ride in decode steps" if mixes_prefill(e.framework)
         else "prefill-only steps first, decodes wait"),
        ("TTFT", f"{to_ms(e.ttft_s):,.1f} ms" + _band(e, "ttft_s", 1e3, ",.0f")),
        ("TPOT", f"{to_ms(e.tpot_s):,.2f} ms" + _band(e, "tpot_s", 1e3, ",.1f")),
        ("request latency", f"{e.e2e_s:,.2f} s" + _band(e, "e2e_s", 1.0, ",.1f")),
        ("output tokens/s per GPU", f"{e.out_tok_s_per_gpu:,.1f}" + _band(e, "out_tok_s_per_gpu", 1.0, ",.0f")),
        ("output tokens/s per user", f"{e.out_tok_s_per_user:,.1f}"),
        ("requests/s", f"{e.req_s:,.3f}"),
        ("largest concurrency that fits", f"{e.max_concurrency:,}"),
    ]
    for k, v in rows:
        head.add_row(k, v)
    m = e.memory
    mem = Table(title="memory per GPU", title_justify="left", show_edge=False)
    for col in ("capacity", "usable", "weights", "workspace", "KV / sequence"):
        mem.add_column(col, justify="right")
    mem.add_row(
        f"{m.capacity_bytes / GIB:.1f} GiB", f"{m.budget_bytes / GIB:.1f} GiB", f"{m.weights_bytes / GIB:.1f} GiB",
        f"{m.workspace_bytes / GIB:.1f} GiB", f"{m.kv_bytes_per_seq / MIB:.1f} MiB",
    )
    return Group(
        head,
        "",
        mem,
        "",
        _ops_table(f"prefill step: one {e.isl}-token prompt", e.prefill_step),
        "",
        _ops_table(f"decode step: {e.batch:,.0f} sequences", e.decode_step),
        f"[dim]calibration: {e.calibration}[/dim]",
    )
