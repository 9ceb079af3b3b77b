"""``search``: screen a whole space analytically, simulate the best, recommend the cheapest.

1. Enumerate and prune the space (:mod:`hierro.search.space`), price every configuration
   (:mod:`hierro.search.screen`).
2. Filter by the SLOs (screen means with margins, :data:`SCREEN_FACTOR`) and the budget; order
   by the objective; one configuration per (layout, replica count) goes on.
3. Simulate the first ``sim_top`` at the peak demand (:mod:`hierro.search.confirm`) and keep those
   whose simulated percentiles meet every SLO; if none does, simulate the next ``sim_top``, up
   to ``sim_rounds`` times. The first survivor in objective order is the recommendation.
4. With ``disagg=True``, disaggregated prefill/decode fleets (:mod:`hierro.search.disagg`; with
   ``mixed_pools``, also prefill on one accelerator type and decode on another) are screened,
   filtered and ordered alike, the best ``sim_top`` of them simulated each round with
   :func:`hierro.sim.simulate_disagg`, and ranked together with the aggregated ones; each
   recommendation says its ``mode``. The Pareto frontiers are then taken over both kinds.

An impossible request raises :class:`HierroError` naming the binding constraint and the gap.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from hierro.errors import HierroError
from hierro.perf import Calibration, default_calibration
from hierro.search.backends import Backend, SerialBackend
from hierro.search.confirm import SimCheck, SimJob, run_sim_job
from hierro.search.disagg import (
    DisaggCandidate,
    DisaggJob,
    DisaggScreen,
    PoolJob,
    PoolRaw,
    pool_groups,
    run_disagg_job,
    screen_disagg,
)
from hierro.search.pareto import pareto_front
from hierro.search.screen import (
    GpuPrice,
    ScreenTable,
    assemble,
    gpu_prices,
    jobs,
    screen_groups,
    screen_value,
)
from hierro.search.slo import Demand, SloTarget
from hierro.search.space import Candidate, Group, SearchSpace, Space, enumerate_space
from hierro.specs import ModelArch, Plan, get_accelerator, get_model

__all__ = ["OBJECTIVES", "Budget", "Recommendation", "SearchProgress", "SearchRequest", "SearchResult", "search"]

Objective = Literal["cost", "gpus", "goodput"]
Mode = Literal["aggregated", "disaggregated"]
OBJECTIVES: tuple[Objective, ...] = ("cost", "gpus", "goodput")
SearchProgress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``; stage is ``screen``, ``disagg`` or ``simulate``."""


@dataclass(frozen=True, slots=True)
class Budget:
    max_gpus: int | None = None
    max_usd_per_hour: float | None = None


@dataclass(frozen=True)
class SearchRequest:
    model: str | ModelArch
    isl: int
    osl: int
    demand: Demand
    slos: tuple[SloTarget, ...]
    space: SearchSpace = field(default_factory=SearchSpace)
    budget: Budget = field(default_factory=Budget)
    objective: Objective = "cost"
    top: int = 10
    sim_top: int = 20
    sim_rounds: int = 3
    seed: int = 0
    preset: str | None = None
    """Economics preset for $/GPU-hour (:func:`hierro.econ.tco_for`)."""
    calib: Calibration | None = None
    sim_requests: int = 0
    """Requests per simulation (0: by replica count, see :func:`n_requests`)."""
    disagg: bool = False
    """Also search disaggregated prefill/decode fleets (:mod:`hierro.search.disagg`)."""
    mixed_pools: bool = True
    """With ``disagg``, also pair a prefill pool of one accelerator type with a decode pool of
    another (same vendor)."""

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise HierroError(f"unknown objective {self.objective!r}; use one of {', '.join(OBJECTIVES)}")
        if self.top < 1 or self.sim_top < 1 or self.sim_rounds < 1:
            raise HierroError("top, sim_top and sim_rounds must be >= 1")


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A configuration the simulator confirmed, with its screen figures."""

    candidate: Candidate
    row: int
    """Row of the screen table."""
    replicas: int
    gpus: int
    ttft_s: float
    tpot_s: float
    e2e_s: float
    tok_s_per_gpu: float
    tok_s_per_user: float
    usd_per_mtok: float
    fleet_usd_per_hour: float
    fleet_usd_per_mtok: float
    fleet_MW: float
    sim: SimCheck
    mode: Mode = "aggregated"
    disagg: DisaggCandidate | None = None
    """The prefill and decode pools of a disaggregated recommendation (``row`` is then -1)."""

    def label(self) -> str:
        return self.disagg.label() if self.disagg is not None else self.candidate.label()


@dataclass(frozen=True)
class SearchResult:
    request: SearchRequest
    space: Space
    table: ScreenTable
    feasible: NDArray[np.bool_]
    """Rows that pass the screen's SLO margins and the budget."""
    recommendations: tuple[Recommendation, ...]
    """Simulated and within every SLO, in objective order (at most ``top``)."""
    rejected: tuple[SimCheck, ...]
    """Simulated and outside an SLO."""
    n_simulated: int
    throughput_frontier: NDArray[np.int64]
    """Rows on the tokens/s per GPU vs tokens/s per user front (all screened rows, and with
    ``disagg`` every screened disaggregated fleet too: the rows no fleet of either kind beats)."""
    cost_frontier: NDArray[np.int64]
    """Rows on the $/Mtok vs TTFT front (screen TTFT; as ``throughput_frontier``)."""
    screen_s: float
    sim_s: float
    disagg: tuple[DisaggCandidate, ...] = ()
    """Disaggregated candidates that pass the screen and the budget, in objective order, one per
    pools and replica counts, at most ``sim_top x sim_rounds`` (empty unless the request asks)."""
    disagg_screen: DisaggScreen | None = None
    throughput_frontier_disagg: tuple[DisaggCandidate, ...] = ()
    """Disaggregated fleets on the joint throughput front (with the rows of ``throughput_frontier``)."""
    cost_frontier_disagg: tuple[DisaggCandidate, ...] = ()
    """Disaggregated fleets on the joint $/Mtok vs TTFT front."""

    @property
    def best(self) -> Recommendation:
        return self.recommendations[0]

    @property
    def configs_per_s(self) -> float:
        return len(self.table) / self.screen_s if self.screen_s > 0 else float("inf")


def _fmt_s(s: float) -> str:
    return f"{s * 1e3:.3g} ms" if s < 1 else f"{s:.3g} s"


def _slo_mask(t: ScreenTable, slos: tuple[SloTarget, ...]) -> NDArray[np.bool_]:
    """Rows within every SLO's screen margin; raises naming the binding SLO if none is."""
    mask = np.ones(len(t), dtype=bool)
    ratios = np.ones((len(slos), len(t)))
    for k, s in enumerate(slos):
        v = screen_value(t, s)
        ratios[k] = v / s.limit_s
        ok = v <= s.limit_s
        if not ok.any():
            i = int(np.argmin(v))
            raise HierroError(
                f"{s.describe()} is below the hardware floor: the fastest configuration screened, "
                f"{t.candidate(i).label()}, reaches {_fmt_s(float(v[i]))}, over by "
                f"{_fmt_s(float(v[i]) - s.limit_s)}; relax {s.name} or add faster accelerators"
            )
        mask &= ok
    if not mask.any():
        worst = ratios.max(axis=0)
        i = int(np.argmin(worst))
        k = int(np.argmax(ratios[:, i]))
        s = slos[k]
        raise HierroError(
            f"no configuration meets all SLOs at once; {s.name} binds: the closest, "
            f"{t.candidate(i).label()}, reaches {_fmt_s(float(ratios[k, i] * s.limit_s))} against "
            f"{_fmt_s(s.limit_s)}, over by {_fmt_s(float((ratios[k, i] - 1) * s.limit_s))}"
        )
    return mask


def _budget_mask(t: ScreenTable, ok: NDArray[np.bool_], b: Budget) -> NDArray[np.bool_]:
    d = t.demand_req_s
    if b.max_gpus is not None:
        fits = ok & (t.gpus <= b.max_gpus)
        if not fits.any():
            i = int(np.flatnonzero(ok)[np.argmin(t.gpus[ok])])
            g = int(t.gpus[i])
            raise HierroError(
                f"max_gpus={b.max_gpus} binds: {d:g} req/s within the SLO needs at least {g} GPUs "
                f"({int(t.replicas[i])} x {t.candidate(i).label()}), short by {g - b.max_gpus} GPUs; "
                f"raise the budget or lower the demand to about {d * b.max_gpus / g:.3g} req/s"
            )
        ok = fits
    if b.max_usd_per_hour is not None:
        fits = ok & (t.fleet_usd_per_hour <= b.max_usd_per_hour)
        if not fits.any():
            i = int(np.flatnonzero(ok)[np.argmin(t.fleet_usd_per_hour[ok])])
            c = float(t.fleet_usd_per_hour[i])
            raise HierroError(
                f"max_usd_per_hour={b.max_usd_per_hour:g} binds: {d:g} req/s within the SLO costs at "
                f"least ${c:,.0f}/h ({int(t.replicas[i])} x {t.candidate(i).label()}), short by "
                f"${c - b.max_usd_per_hour:,.0f}/h"
            )
        ok = fits
    return ok


def _order(t: ScreenTable, rows: NDArray[np.int64], objective: Objective) -> NDArray[np.int64]:
    """``rows`` sorted by the objective (ties: cheaper, then faster, then row index)."""
    keys: list[NDArray[np.float64]]
    r = rows
    if objective == "cost":
        keys = [t.fleet_usd_per_hour[r], t.e2e_s[r]]
    elif objective == "gpus":
        keys = [t.gpus[r].astype(np.float64), t.fleet_usd_per_hour[r], t.e2e_s[r]]
    else:
        keys = [-t.tok_s_per_gpu[r], t.fleet_usd_per_hour[r], t.e2e_s[r]]
    return np.asarray(r[np.lexsort((r, *reversed(keys)))], dtype=np.int64)


def _dedupe(t: ScreenTable, ordered: NDArray[np.int64], slos: tuple[SloTarget, ...],
            groups: tuple[Group, ...]) -> NDArray[np.int64]:
    """One row per (layout, replica count), at the place of its first row in ``ordered``: the
    row with the most SLO slack (all cost the same). A layout is an accelerator, plan and
    engine: its token-budget variants are one layout, so the top of the ranking shows different
    deployments rather than one deployment at each budget."""
    if slos:
        slack = np.max([screen_value(t, s)[ordered] / s.limit_s for s in slos], axis=0)
    else:
        slack = np.zeros(len(ordered))
    ids: dict[tuple[str, Plan, str], int] = {}
    layout = [ids.setdefault((g.gpu, g.plan, g.framework), len(ids)) for g in groups]
    chosen: dict[tuple[int, int], tuple[float, int]] = {}
    for i, sl in zip(ordered.tolist(), slack.tolist(), strict=True):
        key = (layout[int(t.group[i])], int(t.replicas[i]))
        if key not in chosen or sl < chosen[key][0]:
            chosen[key] = (sl, i)
    return np.asarray([row for _, row in chosen.values()], dtype=np.int64)


def search(
    request: SearchRequest,
    backend: Backend | None = None,
    progress: SearchProgress | None = None,
) -> SearchResult:
    """Recommend configurations for ``request`` (see the module docstring)."""
    be = backend or SerialBackend()
    req = request
    model = req.model if isinstance(req.model, ModelArch) else get_model(req.model)
    calib = req.calib or default_calibration()
    t0 = time.perf_counter()
    space = enumerate_space(model, req.isl, req.osl, req.space)
    prices, unpriced = gpu_prices(sorted({g.gpu for g in space.groups}), req.preset)
    groups = tuple(g for g in space.groups if g.gpu in prices)
    space = Space(
        space.model, space.isl, space.osl, space.spec, groups, space.pruned_plan, space.pruned_memory,
        space.skipped_gpus + tuple((g, f"no $/GPU-hour: {why}") for g, why in unpriced.items()),
    )
    if not groups:
        why = "; ".join(f"{g}: {r}" for g, r in space.skipped_gpus) or "empty space"
        raise HierroError(f"{model.id} has no configuration to search ({why})")
    chunks = 1 if be.workers <= 1 else be.workers * 4
    work = jobs(space, calib, max(chunks, min(8, len(groups))))
    raws_nested = be.map(screen_groups, work, None if progress is None else (lambda d, n: progress("screen", d, n)))
    raws = [r for chunk in raws_nested for r in chunk]
    table = assemble(groups, raws, prices, demand_req_s=req.demand.peak_req_s, osl=req.osl,
                     headroom=req.demand.headroom)
    t1 = time.perf_counter()

    agg_err: HierroError | None = None
    try:
        feasible = _budget_mask(table, _slo_mask(table, req.slos), req.budget)
    except HierroError as err:
        if not req.disagg:
            raise
        agg_err, feasible = err, np.zeros(len(table), dtype=bool)
    ordered = _dedupe(table, _order(table, np.flatnonzero(feasible).astype(np.int64), req.objective), req.slos,
                      groups)
    dis: list[DisaggCandidate] = []
    dscreen: DisaggScreen | None = None
    if req.disagg:
        dscreen = _screen_disagg(space, calib, prices, req, be, progress)
        dis = list(dscreen.feasible)
        if agg_err is not None and not dis:
            raise agg_err
        t1 = time.perf_counter()
    recs: list[Recommendation] = []
    rejected: list[SimCheck] = []
    for rnd in range(req.sim_rounds):
        batch = ordered[rnd * req.sim_top : (rnd + 1) * req.sim_top]
        dbatch = dis[rnd * req.sim_top : (rnd + 1) * req.sim_top]
        if len(batch) == 0 and not dbatch:
            break
        sim_jobs = [
            SimJob(model, table.candidate(int(i)), int(table.replicas[i]), req.demand.peak_req_s, req.isl, req.osl,
                   calib, req.slos, seed=req.seed, requests=req.sim_requests)
            for i in batch
        ]
        checks = be.map(run_sim_job, sim_jobs,
                        None if progress is None else (lambda d, n: progress("simulate", d, n)))
        for i, c in zip(batch.tolist(), checks, strict=True):
            if c.passes:
                recs.append(_recommendation(table, int(i), c))
            else:
                rejected.append(c)
        if dbatch:
            djobs = [DisaggJob(model, d, req.demand.peak_req_s, req.isl, req.osl, calib, req.slos, seed=req.seed,
                               requests=req.sim_requests) for d in dbatch]
            dchecks = be.map(run_disagg_job, djobs,
                             None if progress is None else (lambda d, n: progress("simulate", d, n)))
            for d, c in zip(dbatch, dchecks, strict=True):
                if c.passes:
                    recs.append(_disagg_recommendation(d, c))
                else:
                    rejected.append(c)
        if recs:
            break
    if req.disagg:
        recs.sort(key=lambda r: _rec_key(r, req.objective))
    t2 = time.perf_counter()
    if not recs:
        closest = min(rejected, key=lambda c: max(v / s.limit_s for (_, v), s in zip(c.values, req.slos, strict=True)))
        w = closest.worst(req.slos)
        assert w is not None
        s, v = w
        raise HierroError(
            f"no configuration met every SLO in simulation ({len(rejected)} simulated); {s.name} binds: "
            f"the closest, {closest.replicas} x {closest.candidate.label()}, reaches {_fmt_s(v)} at p-level "
            f"{s.pct} against {_fmt_s(s.limit_s)}, over by {_fmt_s(v - s.limit_s)}"
        )
    dt = dscreen.throughput_front if dscreen is not None else ()
    dc = dscreen.cost_front if dscreen is not None else ()
    tf, tfd = _joint_front(table.tok_s_per_user, table.tok_s_per_gpu, dt,
                           [(c.tok_s_per_user, c.tok_s_per_gpu) for c in dt], maximise=True)
    cf, cfd = _joint_front(table.ttft_s, table.usd_per_mtok, dc, [(c.ttft_s, c.usd_per_mtok) for c in dc],
                           maximise=False)
    return SearchResult(
        request=req,
        space=space,
        table=table,
        feasible=feasible,
        recommendations=tuple(recs[: req.top]),
        rejected=tuple(rejected),
        n_simulated=len(recs) + len(rejected),
        throughput_frontier=tf,
        cost_frontier=cf,
        screen_s=t1 - t0,
        sim_s=t2 - t1,
        disagg=tuple(dis),
        disagg_screen=dscreen,
        throughput_frontier_disagg=tfd,
        cost_frontier_disagg=cfd,
    )


def _joint_front(
    x: NDArray[np.float64], y: NDArray[np.float64], extra: tuple[DisaggCandidate, ...],
    xy: list[tuple[float, float]], *, maximise: bool,
) -> tuple[NDArray[np.int64], tuple[DisaggCandidate, ...]]:
    """The front of the table's rows and ``extra`` points together: (table rows on it, extra
    points on it), each in front order."""
    ex = np.array([a for a, _ in xy], dtype=np.float64)
    ey = np.array([b for _, b in xy], dtype=np.float64)
    f = pareto_front(np.concatenate([x, ex]), np.concatenate([y, ey]), max_x=maximise, max_y=maximise)
    n = len(x)
    return np.asarray(f[f < n], dtype=np.int64), tuple(extra[int(i) - n] for i in f if i >= n)


def _screen_disagg(space: Space, calib: Calibration, prices: dict[str, GpuPrice], req: SearchRequest,
                   be: Backend, progress: SearchProgress | None) -> DisaggScreen:
    """Prefill and decode figures of every group on the backend, then the pairing."""
    groups = space.groups
    usable = [k for k, g in enumerate(groups) if get_accelerator(g.gpu).scale_out_bw_Bps > 0]
    chunks = max(1, be.workers * 4 if be.workers > 1 else 1, min(8, len(usable)))
    size = max(1, -(-len(usable) // chunks))
    work = [
        PoolJob(space.model, space.isl, space.osl, tuple(groups[k] for k in usable[i : i + size]),
                tuple(tuple(int(c) for c in space.concurrencies(groups[k])) for k in usable[i : i + size]), calib)
        for i in range(0, len(usable), size)
    ]
    done = be.map(pool_groups, work, None if progress is None else (lambda d, n: progress("disagg", d, n)))
    raws: list[PoolRaw | None] = [None] * len(groups)
    for k, r in zip(usable, (r for chunk in done for r in chunk), strict=True):
        raws[k] = r
    b = req.budget
    return screen_disagg(
        space, raws, prices, demand_req_s=req.demand.peak_req_s, headroom=req.demand.headroom, slos=req.slos,
        max_gpus=b.max_gpus, max_usd_per_hour=b.max_usd_per_hour, objective=req.objective, mixed=req.mixed_pools,
        limit=max(req.top, req.sim_top * req.sim_rounds),
    )


def _rec_key(r: Recommendation, objective: Objective) -> tuple[float, ...]:
    if objective == "cost":
        return (r.fleet_usd_per_hour, r.e2e_s)
    if objective == "gpus":
        return (float(r.gpus), r.fleet_usd_per_hour, r.e2e_s)
    return (-r.tok_s_per_gpu, r.fleet_usd_per_hour, r.e2e_s)


def _disagg_recommendation(d: DisaggCandidate, c: SimCheck) -> Recommendation:
    return Recommendation(
        candidate=d.candidate, row=-1, replicas=d.prefill_replicas + d.decode_replicas, gpus=d.gpus,
        ttft_s=d.ttft_s, tpot_s=d.tpot_s, e2e_s=d.e2e_s, tok_s_per_gpu=d.tok_s_per_gpu,
        tok_s_per_user=d.tok_s_per_user, usd_per_mtok=d.usd_per_mtok, fleet_usd_per_hour=d.fleet_usd_per_hour,
        fleet_usd_per_mtok=d.fleet_usd_per_mtok, fleet_MW=d.fleet_MW, sim=c, mode="disaggregated", disagg=d,
    )


def _recommendation(t: ScreenTable, i: int, c: SimCheck) -> Recommendation:
    return Recommendation(
        candidate=t.candidate(i), row=i, replicas=int(t.replicas[i]), gpus=int(t.gpus[i]),
        ttft_s=float(t.ttft_s[i]), tpot_s=float(t.tpot_s[i]), e2e_s=float(t.e2e_s[i]),
        tok_s_per_gpu=float(t.tok_s_per_gpu[i]), tok_s_per_user=float(t.tok_s_per_user[i]),
        usd_per_mtok=float(t.usd_per_mtok[i]), fleet_usd_per_hour=float(t.fleet_usd_per_hour[i]),
        fleet_usd_per_mtok=float(t.fleet_usd_per_mtok[i]), fleet_MW=float(t.fleet_MW[i]), sim=c,
    )
