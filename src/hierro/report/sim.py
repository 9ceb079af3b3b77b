"""Rendering a :class:`~hierro.sim.SimResult`: a rich summary table and a JSON-ready dict."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table

from hierro.sim import Distribution, SimResult
from hierro.units import to_ms

__all__ = ["sim_dict", "sim_tables"]


def _num(x: float) -> float | None:
    """JSON has no nan: an undefined figure is null."""
    return None if math.isnan(x) else x


def _dist_ms(d: Distribution) -> dict[str, float | None]:
    return {k: _num(to_ms(getattr(d, k))) for k in ("mean", "p50", "p90", "p99", "p999", "max")}


def sim_dict(res: SimResult, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every summary figure of a run (not the per-request records), units in the key names;
    ``context`` (model, gpu, plan, workload, ...) is copied in front."""
    slo = None
    if res.slo is not None:
        slo = {"ttft_ms": _num(to_ms(res.slo.ttft_s)) if math.isfinite(res.slo.ttft_s) else None,
               "tpot_ms": _num(to_ms(res.slo.tpot_s)) if math.isfinite(res.slo.tpot_s) else None}
    return {
        **(context or {}),
        "mode": res.mode,
        "replicas": res.replicas,
        "requests": res.n_requests,
        "measured": res.n_measured,
        "duration_s": res.duration_s,
        "ttft_ms": _dist_ms(res.ttft),
        "tpot_ms": _dist_ms(res.tpot),
        "itl_ms": _dist_ms(res.itl) if res.itl is not None else None,
        "e2e_ms": _dist_ms(res.e2e),
        "queue_ms": _dist_ms(res.queue),
        "req_s": res.req_s,
        "out_tok_s": res.out_tok_s,
        "in_tok_s": res.in_tok_s,
        "out_tok_s_per_replica": res.out_tok_s_per_replica,
        "goodput_req_s": res.goodput_req_s,
        "slo": slo,
        "kv_blocks_per_replica": res.kv_blocks,
        "kv_peak_fraction": res.kv_peak_fraction,
        "busy_fraction": res.busy_fraction,
        "preemptions": res.preemptions,
        "swap_outs": res.swap_outs,
        "host_swap_peak_fraction": res.host_peak_fraction,
        "steady_state": None if res.steady is None else {
            "users": res.steady.users,
            "cycles": res.steady.cycles,
            "req_s": res.steady.req_s,
            "out_tok_s": res.steady.out_tok_s,
            "ttft_ms": to_ms(res.steady.ttft_s),
            "tpot_ms": to_ms(res.steady.tpot_s),
            "e2e_ms": to_ms(res.steady.e2e_s),
        },
        "engine_steps": res.steps,
        "events": res.events,
    }


def _row(name: str, d: Distribution) -> tuple[str, ...]:
    def f(x: float) -> str:
        return "-" if math.isnan(x) else f"{to_ms(x):,.1f}"

    return (name, f(d.mean), f(d.p50), f(d.p90), f(d.p99), f(d.p999))


def sim_tables(res: SimResult, title: str) -> Group:
    """The latency table (mean and percentiles, ms) and the throughput/capacity figures."""
    lat = Table(title=escape(title), title_justify="left", show_edge=False)
    lat.add_column("latency (ms)")
    for col in ("mean", "p50", "p90", "p99", "p99.9"):
        lat.add_column(col, justify="right")
    lat.add_row(*_row("TTFT", res.ttft))
    lat.add_row(*_row("TPOT", res.tpot))
    if res.itl is not None:
        lat.add_row(*_row("ITL", res.itl))
    lat.add_row(*_row("end to end", res.e2e))
    lat.add_row(*_row("queueing", res.queue))
    thr = Table(show_header=False, show_edge=False)
    thr.add_column("metric")
    thr.add_column("value", justify="right")
    good = f"{res.goodput_req_s:,.3f} req/s"
    if res.slo is not None:
        good += f" ({res.goodput_req_s / res.req_s:.0%} of requests meet the SLO)" if res.req_s > 0 else ""
    rows = [
        ("requests (measured)", f"{res.n_requests:,} ({res.n_measured:,})"),
        ("simulated time", f"{res.duration_s:,.1f} s"),
        ("output tokens/s", f"{res.out_tok_s:,.0f} ({res.out_tok_s_per_replica:,.0f} per replica)"),
        ("input tokens/s", f"{res.in_tok_s:,.0f}"),
        ("requests/s", f"{res.req_s:,.3f}"),
        ("goodput", good if res.slo is not None else f"{good} (no SLO given)"),
        ("KV peak", f"{res.kv_peak_fraction:.0%} of {res.kv_blocks:,} blocks per replica"),
        ("busy", f"{res.busy_fraction:.0%}"),
        ("preemptions", f"{res.preemptions:,}" + (
            f" ({res.swap_outs:,} swapped; host swap peak {res.host_peak_fraction:.0%})" if res.swap_outs else "")),
        ("engine steps / events", f"{res.steps:,} / {res.events:,}"),
    ]
    st = res.steady
    if st is not None:
        rows.append((f"steady state ({st.cycles} whole cycles of {st.users} users)",
                     f"{st.req_s:,.3f} req/s, {st.out_tok_s:,.0f} output tokens/s, TTFT "
                     f"{to_ms(st.ttft_s):,.1f} ms, TPOT {to_ms(st.tpot_s):,.2f} ms"))
    for k, v in rows:
        thr.add_row(k, v)
    return Group(lat, "", thr)
