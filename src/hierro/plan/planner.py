"""``plan(scenario) -> PlanResult``: what a round buys, what its tokens cost, what binds.

1. **Prices.** Each instrument becomes sources (:mod:`hierro.plan.sources`): cash equity at the
   owner preset's TCO on each site (its power price and PUE), credits at list less the discount
   (or a negotiated price), contracts at the contract price (default: the 3-year rental tier).
2. **Serving.** Each model is sized at the peak of its demand within its SLOs on every
   accelerator on offer (:mod:`hierro.plan.serving`, the search with a simulated slice).
   A model with no configuration that meets its SLOs is unserved: latency binds.
3. **Training.** Each run is planned with :func:`hierro.training.plan_training` (with a
   deadline: the smallest cluster that finishes in time) and priced at its GPU-hours; a run
   longer than the horizon is not funded (deadline binds).
4. **Allocation** (:mod:`hierro.plan.allocate`). Models (in order), then runs, then, if
   ``invest_surplus``, the growth pool take money, supply and power greedily, each unit paid
   for only while it is online within the horizon: owned capacity from the month it is
   delivered and its hall energised (:mod:`hierro.plan.install`), rented capacity within its
   term. Serving holds its fleet to the end of the horizon.
5. **Timeline** (:mod:`hierro.plan.timeline`). The same purchases month by month; the month
   each model's peak is first carried, the months it is carried, the tokens each model
   delivers over the horizon at its demand; when each training run starts.
6. **Figures.** Per model (:mod:`hierro.plan.pricing`): accelerators by kind, MW, served
   fraction of the peak, latency of the simulated slice at peak, utilisation (peak: demand /
   capacity; mean: peak / peak-to-mean), $/Mtok at the operating point and of the fleet at
   mean load (steady state), and over the horizon (paid / delivered); margin against the
   scenario's dated API price. Per instrument (:mod:`hierro.plan.instruments`): GPU-hours,
   MW, token capacity, effective $/GPU-h and $/Mtok, when it is online. What binds
   (:mod:`hierro.plan.bindings`). Valuation: post = pre + round, stake = money / post
   (:func:`hierro.econ.valuation`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from hierro.econ import MONTHS_PER_YEAR, valuation
from hierro.errors import HierroError
from hierro.plan.allocate import Need, State, Take, fill
from hierro.plan.bindings import GROWTH, describe, primary
from hierro.plan.install import Installer
from hierro.plan.instruments import instrument_use, rates
from hierro.plan.pricing import fleet_lines, model_plan, priced
from hierro.plan.result import (
    Binding,
    FleetLine,
    InstrumentUse,
    ModelPlan,
    PlanResult,
    SiteUse,
    SupplyUse,
    TrainingFunding,
)
from hierro.plan.scenario import ModelDemand, Scenario, TrainingRun
from hierro.plan.serving import ServingOption, size_on
from hierro.plan.sources import site_power_W, sources
from hierro.plan.timeline import build_outs, ramps, schedule
from hierro.training import TrainingPlan, plan_training
from hierro.units import MEGA, YEAR

__all__ = [
    "Binding",
    "FleetLine",
    "InstrumentUse",
    "ModelPlan",
    "PlanResult",
    "SiteUse",
    "SupplyUse",
    "TrainingFunding",
    "plan",
]

_DAY_S = 86400.0
_DAYS_PER_MONTH = YEAR / MONTHS_PER_YEAR / _DAY_S

ProgressFn = Callable[[str], None]


def _options(m: ModelDemand, s: Scenario, progress: ProgressFn) -> tuple[list[ServingOption], list[tuple[str, str]]]:
    d, p = m.demand, s.planner
    ok: list[ServingOption] = []
    bad: list[tuple[str, str]] = []
    for a in s.accelerators:
        progress(f"sizing {m.name} ({m.model}) on {a.id}")
        try:
            ok.append(size_on(
                m.model, a.id, isl=d.isl, osl=d.osl, peak_req_s=d.peak_req_s, headroom=d.headroom,
                slos=m.slo_targets(), weight_dtypes=p.weight_dtypes, kv_dtypes=p.kv_dtypes,
                max_devices=p.max_devices, max_pp=p.max_pp, sim_top=p.sim_top, sim_rounds=p.sim_rounds,
                slice_replicas=p.slice_replicas, seed=p.seed,
            ))
        except HierroError as err:
            bad.append((a.id, str(err)))
    return ok, bad


def _train(r: TrainingRun, progress: ProgressFn) -> tuple[TrainingPlan | None, str | None]:
    progress(f"planning training run {r.name} ({r.model} on {r.gpu})")
    gpus = r.gpus
    if gpus is None:
        assert r.deadline_days is not None
        probe = plan_training(r.model, r.tokens, r.gpu, 1024, r.seq_len, deadline_days=r.deadline_days)
        if probe.gpus_for_deadline is None:
            return None, (f"{r.name}: no cluster of {r.gpu} trains {r.model} on {r.tokens:.3g} tokens within "
                          f"{r.deadline_days:g} days")
        # the cluster is sized once; the final plan reuses it rather than searching again
        run = plan_training(r.model, r.tokens, r.gpu, probe.gpus_for_deadline, r.seq_len)
        return dataclasses.replace(run, deadline_days=r.deadline_days, gpus_for_deadline=probe.gpus_for_deadline), None
    return plan_training(r.model, r.tokens, r.gpu, gpus, r.seq_len, deadline_days=r.deadline_days), None


def plan(scenario: Scenario, progress: ProgressFn | None = None) -> PlanResult:
    """Allocate the scenario's round (see the module docstring)."""
    t0 = time.perf_counter()
    s = scenario
    say = progress or (lambda _m: None)
    flat = s.capital.flat()
    srcs = sources(s)
    caps = {a.id: cap for a in s.accelerators if (cap := a.supply_cap) is not None}
    site_W = site_power_W(s)
    horizon = s.horizon_years * MONTHS_PER_YEAR
    st = State.start([inst.amount_usd for _, _, inst in flat], caps, site_W, horizon,
                     Installer(ramps(s), build_outs(s, site_W)))
    bindings: list[Binding] = []
    every: list[Take] = []

    # serving
    sized = [(m, *_options(m, s, say)) for m in s.models]
    say("allocating capital")
    models: list[ModelPlan] = []
    for m, opts, bad in sized:
        if not opts:
            why = bad[0][1] if bad else "no accelerator on offer"
            lb = Binding("latency", m.name, f"latency binds {m.name}: no accelerator on offer serves {m.model} "
                         f"within {', '.join(f'{k}={v}' for k, v in m.slo.items())}: {why}")
            bindings.append(lb)
            models.append(model_plan(m, opts, bad, [], 0.0, lb, srcs, s))
            continue
        takes, met, blk = fill(Need(m.name, tuple((o.gpu, float(o.accelerators)) for o in opts)), srcs, st)
        every += takes
        b: Binding | None = None
        if blk is not None:
            b = Binding(blk, m.name, describe(blk, m.name, st, srcs, s, [o.gpu for o in opts])
                        + f"; {met:.1%} of the peak is served")
            bindings.append(b)
        models.append(model_plan(m, opts, bad, takes, met, b, srcs, s))

    # training
    runs: list[TrainingFunding] = []
    for r in s.training:
        tp, reason = _train(r, say)
        months = tp.wall_clock_days / _DAYS_PER_MONTH if tp is not None else 0.0
        if tp is not None and months > horizon:
            reason = (f"{r.name}: the run takes {months:.1f} months, longer than the horizon's "
                      f"{horizon:g}")
            tp = None
        if tp is None:
            db = Binding("deadline", r.name, f"deadline binds {reason or r.name}")
            bindings.append(db)
            runs.append(TrainingFunding(r.name, None, 0, r.gpu, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, (), db))
            continue
        need = Need(r.name, ((r.gpu, float(tp.gpus)),), hold_months=months, busy_charge=False)
        takes, met, blk = fill(need, srcs, st)
        every += takes
        rb: Binding | None = None
        if blk is not None:
            rb = Binding(blk, r.name, describe(blk, r.name, st, srcs, s, [r.gpu])
                         + f"; {met:.1%} of the run's cluster is funded")
            bindings.append(rb)
        lines = fleet_lines(takes, srcs, s)
        runs.append(TrainingFunding(
            r.name, tp, tp.gpus, tp.gpu_id, tp.wall_clock_days, tp.gpu_hours * met, met,
            sum(x.usd for x in lines), sum(x.MW for x in lines),
            sum(t.accelerators * srcs[t.source].W for t in takes) * tp.wall_clock_days * 24.0 / MEGA,
            lines, rb,
        ))

    # growth pool
    growth: list[Take] = []
    first: ModelPlan | None = next((mp for mp in models if mp.options), None)
    if s.capital.invest_surplus:
        ref = {o.gpu: float(o.accelerators) for o in first.options} if first else {}
        worst = max(ref.values(), default=1.0)
        pool = tuple((a.id, ref.get(a.id, worst * 1e3)) for a in s.accelerators)
        takes, _, blk = fill(Need(GROWTH, pool, unlimited=True), srcs, st)
        growth = takes
        if blk is not None:
            bindings.append(Binding(blk, GROWTH, describe(blk, "the growth pool", st, srcs, s,
                                                          [a.id for a in s.accelerators])))
    growth_lines = fleet_lines(growth, srcs, s)

    # when it is online, and what it delivers over the horizon
    all_takes = every + growth
    rate = rates(models, first)
    timeline = schedule(
        all_takes, srcs, s, site_W, rate,
        peaks={m.name: m.peak_req_s for m in models if m.options},
        runs={r.name: (r.wall_clock_days / _DAYS_PER_MONTH if r.plan and r.funded_fraction >= 1 - 1e-9 else None)
              for r in runs},
        demand={m.name: (m.mean_req_s, float(m.isl + m.osl)) for m in models if m.options},
    )
    met_month = dict(timeline.demand_met)
    tokens = {name: n for name, n, _ in timeline.delivered}
    at_peak = {name: months for name, _, months in timeline.delivered}
    models = [priced(m, s, met_month.get(m.name), at_peak.get(m.name, 0.0), tokens.get(m.name, 0.0))
              for m in models]
    started = {name: (begin, end) for name, begin, end in timeline.training}
    runs = [dataclasses.replace(r, start_month=started.get(r.name, (None, None))[0],
                                end_month=started.get(r.name, (None, None))[1]) for r in runs]

    # instruments, sites, supply
    instruments = [instrument_use(i, label, investor, inst.amount_usd, st.money[i],
                                  getattr(inst, "term_years", s.horizon_years), inst.kind, all_takes, srcs, rate,
                                  timeline)
                   for i, (label, investor, inst) in enumerate(flat)]
    growth_rate = rate.get(GROWTH, {})
    sites = tuple(
        SiteUse(x.label, w0 / MEGA, (w0 - w) / MEGA, x.usd_per_kwh, x.pue)
        for x, w0, w in zip(s.sites, st.site_W, st.power_W, strict=True)
    )
    supply = tuple(
        SupplyUse(a.id, a.supply_cap, sum(t.accelerators for t in all_takes if t.gpu == a.id))
        for a in s.accelerators
    )
    v = s.valuation
    val = valuation(v.pre_money_usd, v.investors, v.existing)
    implied = v.reported_post_money_usd - s.capital.round_usd if v.reported_post_money_usd else None
    left = sum(st.money)
    return PlanResult(
        scenario=s, horizon_years=s.horizon_years, round_usd=s.capital.round_usd,
        spent_usd=s.capital.round_usd - left, left_usd=left, models=tuple(models), training=tuple(runs),
        growth=growth_lines,
        growth_out_tok_s=sum(t.accelerators * g.out_tok_s for t in growth if (g := growth_rate.get(t.gpu))),
        instruments=tuple(instruments), sites=sites, supply=supply, valuation=val,
        implied_pre_money_usd=implied, bindings=tuple(bindings), binding=primary(bindings, left, s),
        timeline=timeline, elapsed_s=time.perf_counter() - t0,
    )
