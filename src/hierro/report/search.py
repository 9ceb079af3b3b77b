"""Rendering a :class:`~hierro.search.SearchResult`: the top-N table, a JSON-ready dict, the
frontier CSVs and PNGs (matplotlib, Agg backend, imported only when plotting)."""

from __future__ import annotations

import csv
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rich.table import Table

from hierro.errors import HierroError
from hierro.files import write_atomic
from hierro.search import (
    CurveFleet,
    DisaggCandidate,
    Recommendation,
    ScreenTable,
    SearchResult,
    SharedFleet,
    curve_fleet,
)
from hierro.units import to_ms

__all__ = ["curve_dict", "curve_table", "search_dict", "search_table", "shared_dict", "shared_tables",
           "write_frontiers"]


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
        "prefill_gpu": None if d is None else d.prefill.gpu,
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
        "demand": {
            "kind": "curve" if req.demand.curve else "flat",
            "mean_req_s": req.demand.mean_req_s,
            "curve_req_s": list(req.demand.curve),
        },
        "configs_screened": len(res.table),
        "configs_feasible": int(res.feasible.sum()),
        "disagg_pairs_screened": 0 if res.disagg_screen is None else res.disagg_screen.n_screened,
        "disagg_mixed_pairs_screened": 0 if res.disagg_screen is None else res.disagg_screen.n_mixed,
        "disagg_feasible": 0 if res.disagg_screen is None else res.disagg_screen.n_feasible,
        "simulated": res.n_simulated,
        "screen_s": res.screen_s,
        "sim_s": res.sim_s,
        "skipped_gpus": dict(res.space.skipped_gpus),
        "recommendations": [_rec_dict(r) for r in res.recommendations],
        "fleet_over_curve": curve_dict(curve_fleet(res)),
    }


def curve_dict(f: CurveFleet) -> dict[str, Any]:
    """The best configuration's fleet over the demand curve."""
    return {
        "slots": f.slots,
        "headroom": f.headroom,
        "held_gpus": f.held_gpus,
        "mean_gpus": f.mean_gpus,
        "utilisation": f.utilisation,
        "peak_slot": f.peak_slot,
        "held_usd_per_hour": f.held_usd_per_hour,
        "autoscaled_mean_usd_per_hour": f.mean_usd_per_hour,
        "held_MW": f.held_MW,
        "replicas_per_slot": list(f.replicas_per_slot),
        "gpus_per_slot": list(f.gpus_per_slot),
        "gpus_per_slot_by_type": {k: list(v) for k, v in f.gpus_by_type().items()},
        "parts": [
            {"role": p.role, "gpu": p.gpu, "gpus_per_replica": p.devices, "replicas_per_slot": list(p.replicas_per_slot)}
            for p in f.parts
        ],
    }


def curve_table(res: SearchResult) -> Table:
    """The best configuration's replicas in every slot of the demand curve."""
    f = curve_fleet(res)
    t = Table(title=(
        f"fleet over the demand curve: {f.held_gpus} GPUs held for the peak (slot {f.peak_slot}), "
        f"{f.mean_gpus:,.1f} used on average ({f.utilisation:.0%}); ${f.held_usd_per_hour:,.1f}/h held, "
        f"${f.mean_usd_per_hour:,.1f}/h autoscaled"
    ))
    for col in ("slot", "req/s", "replicas", "GPUs"):
        t.add_column(col, justify="right")
    for k, (v, r, g) in enumerate(zip(f.curve_req_s, f.replicas_per_slot, f.gpus_per_slot, strict=True)):
        t.add_row(str(k), f"{v:,.3g}", str(r), str(g))
    return t


def search_table(res: SearchResult) -> Table:
    """The top-N table: configuration, GPUs, throughput, simulated latencies, $/Mtok, MW."""
    t = Table(
        title=(
            f"{res.space.model.id} at {res.request.demand.peak_req_s:g} req/s "
            f"(isl {res.request.isl}, osl {res.request.osl}): {len(res.table):,} configurations "
            f"screened in {res.screen_s:.2f} s"
            + ("" if res.disagg_screen is None else
               f" with {res.disagg_screen.n_screened:,} prefill/decode pairs ({res.disagg_screen.n_mixed:,} mixed)")
            + f", {res.n_simulated} simulated"
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


_COLUMNS = ("mode", "configuration", "replicas", "gpus", "tok_s_per_gpu", "tok_s_per_user", "ttft_s", "tpot_s",
            "usd_per_mtok", "fleet_usd_per_hour", "fleet_MW")


def _rows(t: ScreenTable, idx: NDArray[np.int64]) -> list[list[Any]]:
    return [
        ["aggregated", t.candidate(int(i)).label(), int(t.replicas[i]), int(t.gpus[i]), float(t.tok_s_per_gpu[i]),
         float(t.tok_s_per_user[i]), float(t.ttft_s[i]), float(t.tpot_s[i]), float(t.usd_per_mtok[i]),
         float(t.fleet_usd_per_hour[i]), float(t.fleet_MW[i])]
        for i in idx
    ]


def _drows(cs: tuple[DisaggCandidate, ...]) -> list[list[Any]]:
    return [
        ["disaggregated", c.label(), c.prefill_replicas + c.decode_replicas, c.gpus, c.tok_s_per_gpu,
         c.tok_s_per_user, c.ttft_s, c.tpot_s, c.usd_per_mtok, c.fleet_usd_per_hour, c.fleet_MW]
        for c in cs
    ]


def _fronts(res: SearchResult) -> list[tuple[str, list[list[Any]]]]:
    """Each front's rows, aggregated and disaggregated merged in front order."""
    t = res.table
    thr = sorted(_rows(t, res.throughput_frontier) + _drows(res.throughput_frontier_disagg), key=lambda r: -r[5])
    cost = sorted(_rows(t, res.cost_frontier) + _drows(res.cost_frontier_disagg), key=lambda r: r[6])
    return [("throughput_frontier", thr), ("cost_frontier", cost)]


def write_frontiers(res: SearchResult, out_dir: Path, *, png: bool = True) -> list[Path]:
    """``throughput_frontier.csv/.png`` (tok/s/GPU vs tok/s/user) and ``cost_frontier.csv/.png``
    ($/Mtok vs screen TTFT) in ``out_dir``, disaggregated fleets marked by the ``mode`` column and
    their own marker; returns the paths written. Every file is written whole or not at all."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in _fronts(res):
        written.append(write_atomic(out_dir / f"{name}.csv", partial(_write_csv, rows=rows)))
    if png:
        written += _plots(res, out_dir)
    return written


def _write_csv(path: Path, rows: list[list[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(_COLUMNS)
        w.writerows(rows)


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
    fronts = dict(_fronts(res))
    specs = (
        ("throughput_frontier", t.tok_s_per_user, t.tok_s_per_gpu, 5, 4, 1.0,
         "output tokens/s per user", "output tokens/s per GPU", False),
        ("cost_frontier", t.ttft_s * 1e3, t.usd_per_mtok, 6, 8, 1e3,
         "TTFT, ms (screen mean)", "$ per million output tokens", True),
    )
    for name, x, y, xc, yc, xs, xl, yl, logy in specs:
        fig, ax = plt.subplots(figsize=(7, 5))
        for k, g in enumerate(gpus):
            m = gpu_of == k
            ax.scatter(x[m], y[m], s=4, alpha=0.3, label=g)
        rows = fronts[name]
        fx = np.array([r[xc] * xs for r in rows], dtype=np.float64)
        fy = np.array([r[yc] for r in rows], dtype=np.float64)
        ax.plot(fx, fy, "k-", lw=1.5, label="Pareto front")
        dis = np.array([r[0] == "disaggregated" for r in rows], dtype=bool)
        if dis.any():
            ax.scatter(fx[dis], fy[dis], marker="^", s=36, c="crimson", zorder=3,
                       label="disaggregated P/D on the front")
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        if logy:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_title(f"{res.space.model.id}, isl {res.request.isl} / osl {res.request.osl}")
        ax.legend(fontsize=7)
        paths.append(write_atomic(out_dir / f"{name}.png", partial(fig.savefig, dpi=120, bbox_inches="tight")))
        plt.close(fig)
    return paths


def shared_tables(f: SharedFleet) -> list[Table]:
    """The models of a shared fleet with their winners, and the pools they share."""
    t = Table(title=(
        f"shared fleet of {len(f.models)} models over {f.slots} slots: {f.gpus} GPUs pooled "
        f"against {f.separate_gpus} separate (${f.usd_per_hour:,.1f}/h against ${f.separate_usd_per_hour:,.1f}/h, "
        f"{f.MW:.4f} MW against {f.separate_MW:.4f})"
    ))
    for col in ("model", "configuration", "peak req/s", "replicas x GPUs", "TTFT p99 ms", "TPOT p99 ms",
                "$/Mtok", "$/h alone", "GPUs per slot"):
        t.add_column(col, justify="left" if col in ("model", "configuration", "GPUs per slot") else "right")
    for m in f.models:
        b = m.result.best
        t.add_row(
            m.name, b.label(), f"{m.result.request.demand.peak_req_s:,.3g}", _replicas_cell(b),
            f"{to_ms(b.sim.ttft_p99_s):,.0f}", f"{to_ms(b.sim.tpot_p99_s):.1f}", f"{b.usd_per_mtok:.3f}",
            f"{b.fleet_usd_per_hour:,.1f}", " ".join(str(g) for g in m.gpus_per_slot),
        )
    p = Table(title="pools (one per accelerator type)")
    for col in ("accelerator", "models", "GPUs alone", "GPUs pooled", "saved", "peak slot", "$/GPU-h"):
        p.add_column(col, justify="left" if col in ("accelerator", "models") else "right")
    for pool in f.pools:
        p.add_row(pool.gpu, ", ".join(f.models[i].name for i in pool.models), str(pool.separate_gpus),
                  str(pool.pooled_gpus), str(pool.saved_gpus), str(pool.peak_slot), f"{pool.usd_per_gpu_hour:.2f}")
    return [t, p]


def shared_dict(f: SharedFleet) -> dict[str, Any]:
    """A shared fleet as a JSON-ready dict, units in the key names."""
    return {
        "slots": f.slots,
        "gpus": f.gpus,
        "separate_gpus": f.separate_gpus,
        "usd_per_hour": f.usd_per_hour,
        "separate_usd_per_hour": f.separate_usd_per_hour,
        "MW": f.MW,
        "separate_MW": f.separate_MW,
        "pooling_helps": f.pooling_helps,
        "models": [
            {
                "name": m.name,
                "model": m.model,
                "isl": m.result.request.isl,
                "osl": m.result.request.osl,
                "peak_req_s": m.result.request.demand.peak_req_s,
                "slos": {s.name: s.limit_s for s in m.result.request.slos},
                "best": _rec_dict(m.result.best),
                "fleet_over_curve": curve_dict(m.fleet),
            }
            for m in f.models
        ],
        "pools": [
            {
                "gpu": p.gpu, "models": [f.models[i].name for i in p.models], "separate_gpus": p.separate_gpus,
                "pooled_gpus": p.pooled_gpus, "saved_gpus": p.saved_gpus, "peak_slot": p.peak_slot,
                "usd_per_gpu_hour": p.usd_per_gpu_hour, "gpus_per_slot": list(p.gpus_per_slot),
            }
            for p in f.pools
        ],
    }
