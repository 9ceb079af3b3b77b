"""Rendering a :class:`~hierro.training.TrainingPlan`: a rich table and a JSON-ready dict."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table

from hierro.training import TrainingPlan
from hierro.units import GB, GIGA, MEGA, TERA

__all__ = ["training_dict", "training_tables"]


def training_dict(p: TrainingPlan) -> dict[str, Any]:
    """Every figure of a training plan, units in the key names."""
    st, lay, r, m = p.step, p.layout, p.reliability, p.step.memory
    return {
        "model": p.model_id,
        "gpu": p.gpu_id,
        "gpus": p.gpus,
        "tokens": p.tokens,
        "seq_len": p.seq_len,
        "dtype": p.dtype,
        "global_batch_seqs": p.global_batch_seqs,
        "layout": {
            "tp": lay.tp, "cp": lay.cp, "pp": lay.pp, "vpp": lay.vpp, "dp": lay.dp, "ep": lay.ep,
            "micro_batch": lay.micro_batch, "micro_batches": st.micro_batches,
            "recompute": lay.recompute, "zero": lay.zero, "schedule": lay.schedule,
            "adam_moments": lay.moments, "low_precision_acts": lay.low_precision_acts,
            "fp8_scaling": lay.fp8_scaling, "split_ends": lay.split_ends,
            "label": lay.label(),
        },
        "model_flops": p.model_flops,
        "flops_6nd": p.flops_6nd,
        "tokens_per_param": p.tokens_per_param,
        "compute_optimal": {
            name: {"tokens_per_param": co.tokens_per_param, "params": co.params, "tokens": co.tokens}
            for name, co in p.compute_optimal().items()
        },
        "step_s": st.step_s,
        "step_breakdown_s": {
            "compute": st.compute_s, "bubble": st.bubble_s, "tp_comm": st.tp_comm_s,
            "cp_comm": st.cp_comm_s, "ep_comm": st.ep_comm_s, "pp_comm": st.pp_comm_s,
            "dp_comm_exposed": st.dp_comm_s, "optimizer": st.optimizer_s,
        },
        "tokens_per_step": st.tokens_per_step,
        "tokens_per_s": st.tokens_per_s,
        "mfu": p.mfu,
        "compute_efficiency": p.compute_efficiency,
        "memory_per_gpu_gb": {
            "weights": m.weights_bytes / GB, "grads": m.grads_bytes / GB,
            "optimizer": m.optimizer_bytes / GB, "activations": m.activations_bytes / GB,
            "other": m.other_bytes / GB, "total": m.total_bytes / GB, "usable": m.capacity_bytes / GB,
        },
        "reliability": {
            "failures_per_gpu_hour": r.failures_per_gpu_hour, "mtbf_h": r.mtbf_s / 3600,
            "checkpoint_bytes_per_param": r.checkpoint_bytes_per_param,
            "checkpoint_s": r.checkpoint_s, "checkpoint_interval_s": r.checkpoint_interval_s,
            "restart_s": r.restart_s, "goodput": r.goodput,
        },
        "compute_days": p.compute_days,
        "wall_clock_days": p.wall_clock_days,
        "gpu_hours": p.gpu_hours,
        "usd_per_gpu_hour": p.usd_per_gpu_hour,
        "price_source": p.price_source,
        "cost_usd": p.cost_usd,
        "energy_mwh": p.energy_MWh,
        "peak_mw": p.peak_MW,
        "pue": p.pue,
        "power_source": p.power_source,
        "deadline_days": p.deadline_days,
        "gpus_for_deadline": p.gpus_for_deadline,
    }


def training_tables(p: TrainingPlan) -> Group:
    """The summary and step-breakdown tables of a training plan."""
    st, r, m = p.step, p.reliability, p.step.memory
    chin = p.compute_optimal()["chinchilla"]
    head = Table(
        title=f"train {p.model_id} on {p.tokens / TERA:,.1f}T tokens, {p.gpus:,}x {p.gpu_id}, "
        f"seq {p.seq_len}, {p.dtype}",
        title_justify="left", show_header=False, show_edge=False,
    )
    head.add_column("metric")
    head.add_column("value", justify="right")
    rows = [
        ("layout", p.layout.label()),
        ("global batch", f"{p.global_batch_seqs:,} seqs x {p.seq_len} ({st.micro_batches} micro-batches)"),
        ("model FLOPs (6ND)", f"{p.model_flops:.3g} ({p.flops_6nd:.3g})"),
        ("compute-optimal at 6ND", f"{chin.params / GIGA:,.0f}B params on {chin.tokens / TERA:,.1f}T tokens "
         f"(Chinchilla, 20 tokens per active param); this run: {p.tokens_per_param:,.0f} per param"),
        ("step time", f"{st.step_s:,.2f} s"),
        ("MFU", f"{p.mfu:.1%} of the bf16 peak (compute efficiency {p.compute_efficiency:.3f})"),
        ("memory per GPU", f"{m.total_bytes / GB:,.1f} of {m.capacity_bytes / GB:,.1f} GB usable"),
        ("MTBF / checkpoint every", f"{r.mtbf_s / 3600:,.2f} h / {r.checkpoint_interval_s / 60:,.1f} min "
         f"({r.checkpoint_s:,.1f} s to write {r.checkpoint_bytes_per_param:g} B/param)"),
        ("goodput", f"{r.goodput:.1%}"),
        ("wall clock", f"{p.wall_clock_days:,.1f} days ({p.compute_days:,.1f} without failures)"),
        ("GPU-hours", f"{p.gpu_hours / MEGA:,.3f} M"),
        ("cost", f"${p.cost_usd / MEGA:,.1f} M at ${p.usd_per_gpu_hour:.2f}/GPU-h"),
        ("energy / peak power", f"{p.energy_MWh:,.0f} MWh / {p.peak_MW:,.1f} MW (PUE {p.pue})"),
    ]
    if p.deadline_days is not None:
        need = f"{p.gpus_for_deadline:,} GPUs" if p.gpus_for_deadline else "no cluster size (failures dominate)"
        rows.append((f"to finish in {p.deadline_days:g} days", need))
    for k, v in rows:
        head.add_row(k, v)
    br = Table(title="step breakdown", title_justify="left", show_edge=False)
    br.add_column("part")
    br.add_column("s", justify="right")
    br.add_column("share", justify="right")
    parts = [("compute", st.compute_s), ("pipeline bubble", st.bubble_s), ("TP comm", st.tp_comm_s),
             ("CP comm", st.cp_comm_s), ("EP all-to-all", st.ep_comm_s), ("PP send/recv", st.pp_comm_s),
             ("DP exposed", st.dp_comm_s), ("optimizer", st.optimizer_s)]
    for part, secs in parts:
        if secs > 0:
            br.add_row(part, f"{secs:,.3f}", f"{secs / st.step_s:.0%}")
    return Group(head, "", br, f"[dim]price: {p.price_source}; power: {p.power_source}[/dim]")
