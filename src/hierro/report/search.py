"""Rendering a :class:`~hierro.search.SearchResult`: the top-N table, a JSON-ready dict, the
frontier CSVs and PNGs (matplotlib, Agg backend, imported only when plotting)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rich.table import Table

from hierro.errors import HierroError
from hierro.search import Recommendation, ScreenTable, SearchResult
from hierro.units import to_ms

__all__ = ["search_dict", "search_table", "write_frontiers"]


def _rec_dict(r: Recommendation) -> dict[str, Any]:
    g = r.candidate.group
    s = r.sim
    d = r.disagg
    return {
        "configuration": r.label(),
        "mode": r.mode,
        "disagg": None if d is None else {
            "prefill_plan": d.prefill.plan.label(), "prefill_replicas": d.prefill_replicas,
            "prefill_gpus_per_replica": d.prefill.devices,
            "decode_plan": d.decode.plan.label(), "decode_replicas": d.decode_replicas,
            "decode_gpus_per_replica": d.decode.devices, "decode_batch": d.batch, "ratio": d.ratio,
        },
        "gpu": g.gpu,
        "plan": g.plan.label(),
        "weight_dtype": g.plan.weight_dtype,
        "kv_dtype": g.plan.kv_dtype,
        "framework": g.framework,
        "max_batched_tokens": g.max_batched_tokens,
        "concurrency_per_replica": r.candidate.concurrency,
        "replicas": r.replicas,
        "gpus": r.gpus,
        "tok_s_per_gpu": r.tok_s_per_gpu,
        "tok_s_per_user": r.tok_s_per_user,
        "screen": {"ttft_ms": to_ms(r.ttft_s), "tpot_ms": to_ms(r.tpot_s), "e2e_ms": to_ms(r.e2e_s)},
        "sim": {
            "requests": s.requests,
            "ttft_p50_ms": to_ms(s.ttft_p50_s), "ttft_p90_ms": to_ms(s.ttft_p90_s), "ttft_p99_ms": to_ms(s.ttft_p99_s),
            "tpot_p50_ms": to_ms(s.tpot_p50_s), "tpot_p90_ms": to_ms(s.tpot_p90_s), "tpot_p99_ms": to_ms(s.tpot_p99_s),
            "e2e_p50_ms": to_ms(s.e2e_p50_s), "e2e_p99_ms": to_ms(s.e2e_p99_s),
            "out_tok_s": s.out_tok_s, "goodput_req_s": s.goodput_req_s,
        },
        "usd_per_mtok": r.usd_per_mtok,
        "fleet_usd_per_hour": r.fleet_usd_per_hour,
        "fleet_usd_per_mtok": r.fleet_usd_per_mtok,
        "fleet_MW": r.fleet_MW,
    }


def search_dict(res: SearchResult) -> dict[str, Any]:
    """Request, space size, timings and the confirmed configurations, units in the key names."""
    req = res.request
    return {
        "model": res.space.model.id,
        "isl": req.isl,
        "osl": req.osl,
        "peak_req_s": req.demand.peak_req_s,
        "headroom": req.demand.headroom,
        "slos": {s.name: s.limit_s for s in req.slos},
        "objective": req.objective,
        "configs_screened": len(res.table),
        "configs_feasible": int(res.feasible.sum()),
        "simulated": res.n_simulated,
        "screen_s": res.screen_s,
        "sim_s": res.sim_s,
        "skipped_gpus": dict(res.space.skipped_gpus),
        "recommendations": [_rec_dict(r) for r in res.recommendations],
    }


def search_table(res: SearchResult) -> Table:
    """The top-N table: configuration, GPUs, throughput, simulated latencies, $/Mtok, MW."""
    t = Table(
        title=(
            f"{res.space.model.id} at {res.request.demand.peak_req_s:g} req/s "
            f"(isl {res.request.isl}, osl {res.request.osl}): {len(res.table):,} configurations "
            f"screened in {res.screen_s:.2f} s, {res.n_simulated} simulated"
        )
    )
    for col in ("#", "configuration", "replicas x GPUs", "tok/s/GPU", "tok/s/user", "TTFT p50/p99 ms",
                "TPOT p50/p99 ms", "$/Mtok", "fleet $/h", "MW"):
        t.add_column(col, justify="left" if col == "configuration" else "right")
    for k, r in enumerate(res.recommendations, 1):
        s = r.sim
        t.add_row(
            str(k), r.label(), _replicas_cell(r),
            f"{r.tok_s_per_gpu:,.0f}", f"{r.tok_s_per_user:,.1f}",
            f"{to_ms(s.ttft_p50_s):,.0f} / {to_ms(s.ttft_p99_s):,.0f}",
            f"{to_ms(s.tpot_p50_s):.1f} / {to_ms(s.tpot_p99_s):.1f}",
            f"{r.usd_per_mtok:.3f}", f"{r.fleet_usd_per_hour:,.1f}", f"{r.fleet_MW:.4f}",
        )
    return t


def _replicas_cell(r: Recommendation) -> str:
    d = r.disagg
    if d is None:
        return f"{r.replicas} x {r.candidate.group.devices} = {r.gpus}"
    return f"P {d.prefill_replicas} x {d.prefill.devices} + D {d.decode_replicas} x {d.decode.devices} = {r.gpus}"


_COLUMNS = ("configuration", "replicas", "gpus", "tok_s_per_gpu", "tok_s_per_user", "ttft_s", "tpot_s",
            "usd_per_mtok", "fleet_usd_per_hour", "fleet_MW")


def _rows(t: ScreenTable, idx: NDArray[np.int64]) -> list[list[Any]]:
    return [
        [t.candidate(int(i)).label(), int(t.replicas[i]), int(t.gpus[i]), float(t.tok_s_per_gpu[i]),
         float(t.tok_s_per_user[i]), float(t.ttft_s[i]), float(t.tpot_s[i]), float(t.usd_per_mtok[i]),
         float(t.fleet_usd_per_hour[i]), float(t.fleet_MW[i])]
        for i in idx
    ]


def write_frontiers(res: SearchResult, out_dir: Path, *, png: bool = True) -> list[Path]:
    """``throughput_frontier.csv/.png`` (tok/s/GPU vs tok/s/user) and ``cost_frontier.csv/.png``
    ($/Mtok vs screen TTFT) in ``out_dir``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    t = res.table
    written = []
    for name, idx in (("throughput_frontier", res.throughput_frontier), ("cost_frontier", res.cost_frontier)):
        p = out_dir / f"{name}.csv"
        with p.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(_COLUMNS)
            w.writerows(_rows(t, idx))
        written.append(p)
    if png:
        written += _plots(res, out_dir)
    return written


def _plots(res: SearchResult, out_dir: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise HierroError("plots need matplotlib: pip install 'hierro[plot]'") from None
    t = res.table
    gpus = sorted({g.gpu for g in t.groups})
    gpu_of = np.array([gpus.index(t.groups[int(k)].gpu) for k in t.group])
    paths = []
    specs = (
        ("throughput_frontier", t.tok_s_per_user, t.tok_s_per_gpu, res.throughput_frontier,
         "output tokens/s per user", "output tokens/s per GPU", False),
        ("cost_frontier", t.ttft_s * 1e3, t.usd_per_mtok, res.cost_frontier,
         "TTFT, ms (screen mean)", "$ per million output tokens", True),
    )
    for name, x, y, front, xl, yl, logy in specs:
        fig, ax = plt.subplots(figsize=(7, 5))
        for k, g in enumerate(gpus):
            m = gpu_of == k
            ax.scatter(x[m], y[m], s=4, alpha=0.3, label=g)
        ax.plot(x[front], y[front], "k-", lw=1.5, label="Pareto front")
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        if logy:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_title(f"{res.space.model.id}, isl {res.request.isl} / osl {res.request.osl}")
        ax.legend(fontsize=7)
        p = out_dir / f"{name}.png"
        fig.savefig(p, dpi=120, bbox_inches="tight")
        plt.close(fig)
        paths.append(p)
    return paths
