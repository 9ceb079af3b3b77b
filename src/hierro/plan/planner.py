"""``plan(scenario) -> PlanResult``: what a round buys, what its tokens cost, what binds.

1. **Prices.** Each instrument becomes sources (:mod:`hierro.plan.allocate`): cash equity at the
   owner preset's TCO on each site (its power price and PUE), credits at list less the discount
   (or a negotiated price), contracts at the contract price (default: the 3-year rental tier).
2. **Serving.** Each model is sized at the peak of its demand within its SLOs on every
   accelerator on offer (:mod:`hierro.plan.serving`, the search with a simulated slice).
   A model with no configuration that meets its SLOs is unserved: latency binds.
3. **Training.** Each run is planned with :func:`hierro.training.plan_training` (with a
   deadline: the smallest cluster that finishes in time) and priced at its GPU-hours.
4. **Allocation.** Models (in order), then runs, then, if ``invest_surplus``, the growth pool
   take money, supply and power greedily. Serving holds its fleet for the horizon.
5. **Figures.** Per model: accelerators by kind, MW, served fraction of the peak, latency of
   the simulated slice at peak, utilisation (peak: demand / capacity; mean: peak / peak-to-mean),
   and $/Mtok two ways::

       operating point:  cost per request = $/GPU-h x devices / (3600 x req/s per replica)
       fleet at mean:    cost per request = fleet $/h held / (3600 x mean req/s served)
       $/Mtok input  = cost per request x input share / isl x 1e6
       $/Mtok output = cost per request x (1 - input share) / osl x 1e6

   (input share: the accelerator-time allocation of :func:`hierro.econ.token_economics`).
   Margin per model: the request shape sold at the scenario's dated API price
   (:func:`hierro.econ.margin_at`). Per instrument: GPU-hours, all-in MW, tokens/s at the SLO
   point of what its accelerators serve, tokens/day = tokens/s x 86,400, and the effective
   $/Mtok = its spend on token-making accelerators / the tokens they make over the hours paid.
   Valuation: post = pre + round, stake = money / post (:func:`hierro.econ.valuation`).
6. **Timeline.** When each instrument's purchase comes online, month by month: data-centre
   build-out, supply ramps, rented capacity at its start (:mod:`hierro.plan.timeline`); the
   month each model's peak is first carried, and when each training run starts.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from hierro.econ import (
    MONTHS_PER_YEAR,
    Margin,
    Valuation,
    api_price,
    margin_at,
    rental,
    site,
    tco_for,
    valuation,
)
from hierro.econ.schema import ApiPrice
from hierro.errors import HierroError
from hierro.plan.allocate import Need, Source, State, Take, fill, held_hours
from hierro.plan.scenario import CashEquity, CloudCredits, ModelDemand, Scenario, TrainingRun
from hierro.plan.serving import ServingOption, size_on
from hierro.plan.timeline import Rate, Timeline, schedule
from hierro.training import TrainingPlan, plan_training
from hierro.units import HOUR, MEGA, YEAR

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

Constraint = Literal["money", "power", "supply", "latency", "deadline", "none"]
ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class Binding:
    constraint: Constraint
    scope: str
    """The model, training run, or 'growth pool' it binds."""
    detail: str


@dataclass(frozen=True)
class FleetLine:
    gpu: str
    source: str
    site: str | None
    accelerators: float
    usd: float
    MW: float
    usd_per_gpu_hour: float


@dataclass(frozen=True)
class ModelPlan:
    name: str
    model_id: str
    isl: int
    osl: int
    mean_req_s: float
    peak_req_s: float
    peak_to_mean: float
    slos: tuple[tuple[str, float], ...]
    options: tuple[ServingOption, ...]
    rejected: tuple[tuple[str, str], ...]
    """(accelerator, why no configuration on it met the SLOs)."""
    fleet: tuple[FleetLine, ...]
    served_fraction: float
    accelerators: float
    MW: float
    usd: float
    capacity_req_s: float
    utilisation_peak: float
    utilisation_mean: float
    ttft_p99_s: float | None
    tpot_p99_s: float | None
    usd_per_mtok_input: float | None
    usd_per_mtok_output: float | None
    """At the operating point of the configurations (the InferenceX convention, split)."""
    fleet_usd_per_mtok_input: float | None
    fleet_usd_per_mtok_output: float | None
    """The fleet's held cost over the tokens it serves at mean demand (headroom, diurnal idle)."""
    fleet_usd_per_mtok: float | None
    """Input and output tokens together, at mean demand."""
    binding: Binding | None
    api: ApiPrice | None = None
    """The dated public API price the tokens are compared with (scenario ``api_price``)."""
    margin: Margin | None = None
    """Selling the request shape at ``api``'s list price, against the fleet's cost at mean demand."""
    margin_slo_point: Margin | None = None
    """The same against the cost at the configurations' operating point."""
    online_month: int | None = None
    """First month the fleet online carries the peak (the timeline); None: never."""


@dataclass(frozen=True)
class TrainingFunding:
    name: str
    plan: TrainingPlan | None
    gpus: int
    gpu_id: str
    wall_clock_days: float
    gpu_hours: float
    funded_fraction: float
    usd: float
    MW: float
    energy_MWh: float
    fleet: tuple[FleetLine, ...]
    binding: Binding | None
    start_month: int | None = None
    """When its whole cluster is online (the timeline); None: never."""
    end_month: float | None = None


@dataclass(frozen=True)
class InstrumentUse:
    label: str
    kind: str
    investor: str | None
    amount_usd: float
    spent_usd: float
    left_usd: float
    accelerators: float
    gpu_hours: float
    MW: float
    capex_usd: float
    usd_per_gpu_hour: float | None
    """Effective: spent / busy GPU-hours."""
    term_years: float
    peak_tok_s: float
    """Tokens/s (input + output) its accelerators make at the SLO point of what they serve
    (growth: the first served model's); training accelerators make none."""
    peak_out_tok_s: float
    tokens_per_day: float
    """Token capacity per day: peak tokens/s x 86,400."""
    usd_per_mtok: float | None
    """Effective: its spend on token-making accelerators / the tokens they make busy over the
    hours it pays for (input + output, the InferenceX total-token variant)."""
    first_online_month: int | None
    full_online_month: int | None
    """First month any / all of what it buys is online (the timeline)."""


@dataclass(frozen=True)
class SiteUse:
    label: str
    power_MW: float
    used_MW: float
    usd_per_kwh: float | None
    pue: float | None


@dataclass(frozen=True)
class SupplyUse:
    gpu: str
    cap: float | None
    used: float


@dataclass(frozen=True)
class PlanResult:
    scenario: Scenario
    horizon_years: float
    round_usd: float
    spent_usd: float
    left_usd: float
    models: tuple[ModelPlan, ...]
    training: tuple[TrainingFunding, ...]
    growth: tuple[FleetLine, ...]
    growth_out_tok_s: float
    instruments: tuple[InstrumentUse, ...]
    sites: tuple[SiteUse, ...]
    supply: tuple[SupplyUse, ...]
    valuation: Valuation
    implied_pre_money_usd: float | None
    """Reported post-money less the round, when a post-money is reported."""
    bindings: tuple[Binding, ...]
    binding: Binding
    timeline: Timeline
    elapsed_s: float

    @property
    def served_month(self) -> int | None:
        """First month every model's peak demand is carried (None: some model never is)."""
        return self.timeline.served_month

    @property
    def accelerators(self) -> float:
        return sum(i.accelerators for i in self.instruments)

    @property
    def MW(self) -> float:
        return sum(i.MW for i in self.instruments)

    @property
    def owned_MW(self) -> float:
        return sum(s.used_MW for s in self.sites)


# ---------------------------------------------------------------- sources


def _site_power_W(s: Scenario) -> list[float]:
    out = []
    for st in s.sites:
        if st.power_MW is not None:
            out.append(st.power_MW * MEGA)
        else:
            assert st.id is not None
            w = site(st.id).power_W
            if w is None:
                raise HierroError(f"site {st.id!r} has no power in the catalog; give power_MW")
            out.append(float(w))
    return out


def _sources(s: Scenario) -> list[Source]:
    """Every (instrument, accelerator, site) the scenario allows, priced."""
    offered = {a.id: a for a in s.accelerators}
    out: list[Source] = []
    for i, (label, investor, inst) in enumerate(s.capital.flat()):
        try:
            if isinstance(inst, CashEquity):
                for gpu in [inst.gpu] if inst.gpu else list(offered):
                    for k, st in enumerate(s.sites):
                        ov: dict[str, float] = {}
                        if st.pue is not None:
                            ov["pue"] = st.pue
                        if st.usd_per_kwh is not None:
                            ov["power_usd_per_kwh"] = st.usd_per_kwh
                        price = offered[gpu].price_usd
                        if price is not None:
                            ov["price_usd"] = price
                        try:
                            t = tco_for(gpu, inst.preset, ov)
                        except HierroError:
                            if inst.gpu:
                                raise
                            continue  # an accelerator with no purchase price: cash cannot buy it
                        if t.inputs.kind != "owned":
                            raise HierroError(f"cash equity buys owned capacity; preset {inst.preset!r} is a rental")
                        out.append(Source(i, label, "cash_equity", investor, gpu, k, t, s.horizon_years))
            else:
                r = rental(
                    inst.amount_usd, inst.gpu, kind=inst.kind, usd_per_gpu_hour=inst.usd_per_gpu_hour,
                    provider=inst.provider if isinstance(inst, CloudCredits) else None,
                    discount_vs_list=inst.discount_vs_list if isinstance(inst, CloudCredits) else None,
                    term_years=inst.term_years, start_years=inst.start_month / MONTHS_PER_YEAR,
                )
                out.append(Source(i, label, inst.kind, investor, inst.gpu, None, r.tco, inst.term_years))
        except HierroError as err:
            raise HierroError(f"instrument {label!r}: {err}") from None
    return out


# ---------------------------------------------------------------- serving and training


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


# ---------------------------------------------------------------- figures


def _lines(takes: list[Take], sources: list[Source], s: Scenario) -> tuple[FleetLine, ...]:
    merged: dict[int, list[float]] = {}
    for t in takes:
        acc = merged.setdefault(t.source, [0.0, 0.0, 0.0])
        acc[0] += t.accelerators
        acc[1] += t.usd
        acc[2] += t.busy_hours
    out = []
    for k, (n, usd, busy) in merged.items():
        src = sources[k]
        where = s.sites[src.site].label if src.site is not None else None
        out.append(FleetLine(src.gpu, src.label, where, n, usd, n * src.W / MEGA,
                             usd / busy if busy > 0 else src.usd_per_busy_hour))
    return tuple(out)


def _model_plan(m: ModelDemand, opts: list[ServingOption], bad: list[tuple[str, str]], takes: list[Take],
                met: float, binding: Binding | None, sources: list[Source], s: Scenario) -> ModelPlan:
    d = m.demand
    fleet = _lines(takes, sources, s)
    by_gpu = {o.gpu: o for o in opts}
    n_by_gpu: dict[str, float] = {}
    held_usd_h = 0.0
    op_cost_req = 0.0
    share = 0.0
    for t in takes:
        src = sources[t.source]
        n_by_gpu[t.gpu] = n_by_gpu.get(t.gpu, 0.0) + t.accelerators
        held_usd_h += t.accelerators * src.usd_per_busy_hour * src.tco.inputs.utilisation
        o = by_gpu[t.gpu]
        w = t.accelerators / o.accelerators  # fraction of the peak this step carries
        op_cost_req += w * src.usd_per_busy_hour * o.devices / (HOUR * o.req_s_per_replica)
        share += w * o.input_cost_share
    capacity = sum(n / by_gpu[g].devices * by_gpu[g].req_s_per_replica for g, n in n_by_gpu.items())
    served_peak = d.peak_req_s * met
    used = [by_gpu[g] for g in n_by_gpu]
    c_in = c_out = f_in = f_out = f_all = None
    if met > 0:
        share /= met
        cost_req = op_cost_req / met
        c_in = cost_req * share / d.isl * MEGA
        c_out = cost_req * (1 - share) / d.osl * MEGA
        fleet_req = held_usd_h / (HOUR * d.mean_req_s * met)
        f_in = fleet_req * share / d.isl * MEGA
        f_out = fleet_req * (1 - share) / d.osl * MEGA
        f_all = fleet_req / (d.isl + d.osl) * MEGA
    util = served_peak / capacity if capacity > 0 else 0.0
    return ModelPlan(
        name=m.name, model_id=m.model, isl=d.isl, osl=d.osl, mean_req_s=d.mean_req_s, peak_req_s=d.peak_req_s,
        peak_to_mean=d.peak_to_mean, slos=tuple((t.name, t.limit_s) for t in m.slo_targets()),
        options=tuple(opts), rejected=tuple(bad), fleet=fleet, served_fraction=met,
        accelerators=sum(n_by_gpu.values()), MW=sum(f.MW for f in fleet), usd=sum(f.usd for f in fleet),
        capacity_req_s=capacity, utilisation_peak=util, utilisation_mean=util / d.peak_to_mean,
        ttft_p99_s=max((o.ttft_p99_s for o in used), default=None),
        tpot_p99_s=max((o.tpot_p99_s for o in used), default=None),
        usd_per_mtok_input=c_in, usd_per_mtok_output=c_out,
        fleet_usd_per_mtok_input=f_in, fleet_usd_per_mtok_output=f_out, fleet_usd_per_mtok=f_all,
        binding=binding,
    )


def _at_limit(st: State, s: Scenario) -> str:
    """Other limits reached, as context for a binding constraint."""
    full = [x.label for x, w0, w in zip(s.sites, st.site_W, st.power_W, strict=True) if w0 > 0 and w <= 1e-6 * w0]
    capped = [g for g, left in st.supply.items() if left <= 1e-6 * max(st.caps[g], 1.0)]
    bits = ([f"sites full: {', '.join(full)}"] if full else []) + ([f"supply caps reached: {', '.join(capped)}"] if capped else [])
    return f" ({'; '.join(bits)})" if bits else ""


def _describe(c: Constraint, scope: str, st: State, sources: list[Source], s: Scenario,
              gpus: list[str]) -> str:
    return _describe_core(c, scope, st, sources, s, gpus) + _at_limit(st, s)


def _describe_core(c: Constraint, scope: str, st: State, sources: list[Source], s: Scenario,
                   gpus: list[str]) -> str:
    left = sum(st.money)
    if c == "money":
        usable = {sources[k].instrument for k in range(len(sources)) if sources[k].gpu in gpus}
        return (f"money binds {scope}: every instrument that can buy {', '.join(gpus)} is spent "
                f"(${sum(st.amounts[i] - st.money[i] for i in usable) / 1e9:,.2f}B); "
                f"${left / 1e9:,.2f}B of the round is left")
    if c == "power":
        parts = [f"{st_.label} {(w0 - w) / MEGA:,.0f}/{w0 / MEGA:,.0f} MW"
                 for st_, w0, w in zip(s.sites, st.site_W, st.power_W, strict=True)]
        return (f"power binds {scope}: owned capacity fills the sites ({'; '.join(parts) or 'no site'}); "
                f"${left / 1e9:,.2f}B of the round is left")
    parts = [f"{g} {st.caps[g] - st.supply[g]:,.0f}/{st.caps[g]:,.0f}" for g in gpus if g in st.caps]
    return (f"supply binds {scope}: accelerators delivered/cap ({'; '.join(parts)}); "
            f"${left / 1e9:,.2f}B of the round is left")


def plan(scenario: Scenario, progress: ProgressFn | None = None) -> PlanResult:
    """Allocate the scenario's round (see the module docstring)."""
    t0 = time.perf_counter()
    s = scenario
    say = progress or (lambda _m: None)
    flat = s.capital.flat()
    sources = _sources(s)
    caps = {a.id: cap for a in s.accelerators if (cap := a.supply_cap) is not None}
    st = State.start([inst.amount_usd for _, _, inst in flat], caps, _site_power_W(s))
    horizon_h = held_hours(s.horizon_years)
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
            models.append(_model_plan(m, opts, bad, [], 0.0, lb, sources, s))
            continue
        need = Need(m.name, tuple((o.gpu, float(o.accelerators)) for o in opts), horizon_h)
        takes, met, blk = fill(need, sources, st)
        every += takes
        b: Binding | None = None
        if blk is not None:
            b = Binding(blk, m.name, _describe(blk, m.name, st, sources, s, [o.gpu for o in opts])
                        + f"; {met:.1%} of the peak is served")
            bindings.append(b)
        models.append(_model_plan(m, opts, bad, takes, met, b, sources, s))

    # training
    runs: list[TrainingFunding] = []
    for r in s.training:
        tp, reason = _train(r, say)
        if tp is None:
            db = Binding("deadline", r.name, f"deadline binds {reason or r.name}")
            bindings.append(db)
            runs.append(TrainingFunding(r.name, None, 0, r.gpu, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, (), db))
            continue
        need = Need(r.name, ((r.gpu, float(tp.gpus)),), tp.wall_clock_days * 24.0, busy_charge=False)
        takes, met, blk = fill(need, sources, st)
        every += takes
        rb: Binding | None = None
        if blk is not None:
            rb = Binding(blk, r.name, _describe(blk, r.name, st, sources, s, [r.gpu])
                        + f"; {met:.1%} of the run's cluster is funded")
            bindings.append(rb)
        lines = _lines(takes, sources, s)
        runs.append(TrainingFunding(
            r.name, tp, tp.gpus, tp.gpu_id, tp.wall_clock_days, tp.gpu_hours * met, met,
            sum(x.usd for x in lines), sum(x.MW for x in lines),
            sum(t.accelerators * sources[t.source].W for t in takes) * tp.wall_clock_days * 24.0 / MEGA,
            lines, rb,
        ))

    # growth pool
    growth: list[Take] = []
    primary: ModelPlan | None = next((mp for mp in models if mp.options), None)
    if s.capital.invest_surplus:
        ref = {o.gpu: float(o.accelerators) for o in primary.options} if primary else {}
        worst = max(ref.values(), default=1.0)
        pool = tuple((a.id, ref.get(a.id, worst * 1e3)) for a in s.accelerators)
        takes, _, blk = fill(Need(_GROWTH, pool, horizon_h, unlimited=True), sources, st)
        growth = takes
        if blk is not None:
            bindings.append(Binding(blk, "growth pool", _describe(blk, "the growth pool", st, sources, s,
                                                                  [a.id for a in s.accelerators])))
    growth_lines = _lines(growth, sources, s)

    # when it comes online
    all_takes = every + growth
    rates = _rates(s, models, primary)
    timeline = schedule(
        all_takes, sources, s, _site_power_W(s), rates,
        peaks={m.name: m.peak_req_s for m in models if m.options},
        runs={r.name: (r.wall_clock_days / _DAYS_PER_MONTH if r.plan and r.funded_fraction >= 1 - 1e-9 else None)
              for r in runs},
    )
    met_month = dict(timeline.demand_met)
    models = [_priced(m, met_month.get(m.name), s) for m in models]
    started = {name: (begin, end) for name, begin, end in timeline.training}
    runs = [dataclasses.replace(r, start_month=started.get(r.name, (None, None))[0],
                                end_month=started.get(r.name, (None, None))[1]) for r in runs]

    # instruments, sites, supply
    instruments = [_instrument(i, label, investor, inst.amount_usd, st.money[i],
                               getattr(inst, "term_years", s.horizon_years), inst.kind, all_takes, sources, rates,
                               timeline)
                   for i, (label, investor, inst) in enumerate(flat)]
    growth_rate = rates.get(_GROWTH, {})
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
    primary_binding = _primary(bindings, left, s)
    return PlanResult(
        scenario=s, horizon_years=s.horizon_years, round_usd=s.capital.round_usd,
        spent_usd=s.capital.round_usd - left, left_usd=left, models=tuple(models), training=tuple(runs),
        growth=growth_lines,
        growth_out_tok_s=sum(t.accelerators * g.out_tok_s for t in growth if (g := growth_rate.get(t.gpu))),
        instruments=tuple(instruments), sites=sites, supply=supply, valuation=val,
        implied_pre_money_usd=implied, bindings=tuple(bindings), binding=primary_binding, timeline=timeline,
        elapsed_s=time.perf_counter() - t0,
    )


# ---------------------------------------------------------------- per instrument, per model

_GROWTH = "growth pool"


def _rates(s: Scenario, models: list[ModelPlan], primary: ModelPlan | None) -> dict[str, dict[str, Rate]]:
    """Purpose -> accelerator -> what one makes at its SLO point (growth: the first served model's)."""
    out: dict[str, dict[str, Rate]] = {}
    for m in models:
        out[m.name] = {o.gpu: Rate(o.req_s_per_gpu * (m.isl + m.osl), o.out_tok_s_per_gpu, o.req_s_per_gpu)
                       for o in m.options}
    if primary is not None:
        out[_GROWTH] = out[primary.name]
    return out


def _instrument(i: int, label: str, investor: str | None, amount: float, left: float, term: float, kind: str,
                takes: list[Take], sources: list[Source], rates: dict[str, dict[str, Rate]],
                timeline: Timeline) -> InstrumentUse:
    mine = [t for t in takes if sources[t.source].instrument == i]
    busy = sum(t.busy_hours for t in mine)
    spent = amount - left
    tok_s = out_s = usd_tok = tokens = 0.0
    for t in mine:
        r = rates.get(t.purpose, {}).get(t.gpu)
        if r is None:
            continue  # training, or an accelerator no model is served on
        tok_s += t.accelerators * r.tok_s
        out_s += t.accelerators * r.out_tok_s
        usd_tok += t.usd
        tokens += t.busy_hours * HOUR * r.tok_s
    tranches = [tr for tr in timeline.tranches if tr.instrument == i]
    firsts = [tr.first_month for tr in tranches]
    fulls = [tr.full_month for tr in tranches]
    return InstrumentUse(
        label=label, kind=kind, investor=investor, amount_usd=amount, spent_usd=spent, left_usd=left,
        accelerators=sum(t.accelerators for t in mine), gpu_hours=busy,
        MW=sum(t.accelerators * sources[t.source].W for t in mine) / MEGA,
        capex_usd=sum(t.accelerators * sources[t.source].tco.capex_usd for t in mine),
        usd_per_gpu_hour=spent / busy if busy > 0 else None, term_years=term,
        peak_tok_s=tok_s, peak_out_tok_s=out_s, tokens_per_day=tok_s * _DAY_S,
        usd_per_mtok=usd_tok / tokens * MEGA if tokens > 0 else None,
        first_online_month=min((m for m in firsts if m is not None), default=None),
        full_online_month=None if not fulls or None in fulls else max(m for m in fulls if m is not None),
    )


def _priced(m: ModelPlan, online: int | None, s: Scenario) -> ModelPlan:
    """``m`` with its margin against the scenario's API price and the month its peak is carried."""
    spec = next(x for x in s.models if x.name == m.name)
    api = api_price(spec.api_price) if spec.api_price else None
    margin = slo = None
    if api is not None and m.fleet_usd_per_mtok_input is not None and m.fleet_usd_per_mtok_output is not None:
        margin = margin_at(api, m.isl, m.osl, m.fleet_usd_per_mtok_input, m.fleet_usd_per_mtok_output)
    if api is not None and m.usd_per_mtok_input is not None and m.usd_per_mtok_output is not None:
        slo = margin_at(api, m.isl, m.osl, m.usd_per_mtok_input, m.usd_per_mtok_output)
    return dataclasses.replace(m, api=api, margin=margin, margin_slo_point=slo, online_month=online)


def _primary(bindings: list[Binding], left: float, s: Scenario) -> Binding:
    """The constraint that binds the plan: a requirement left short first, else the growth pool."""
    for b in bindings:
        if b.scope != "growth pool":
            return b
    for b in bindings:
        return b
    return Binding("none", "plan", f"nothing binds: every model is served at peak and every run funded; "
                   f"${left / 1e9:,.2f}B of ${s.capital.round_usd / 1e9:,.2f}B is kept as cash")

