"""Deployment timeline: when what the round buys comes online, month by month.

The allocation (:mod:`hierro.plan.allocate`) says what each instrument buys; this module says
when. A **tranche** is what one instrument buys for one purpose (a model, a training run, the
growth pool) of one accelerator on one site (owned) or in the provider's cloud (rented).

* Rented capacity (cloud credits, compute contracts) is the provider's: all of a tranche is
  online from its instrument's ``start_month`` (0: at once). It counts against the buyer's
  supply of that accelerator, as in the allocation, so owned builds wait for later deliveries.
* Owned capacity needs a delivered accelerator and an energised hall: each month, tranches
  in allocation order (serving models in order, then training, then growth) install
  ``min(still to install, deliveries not yet taken, site W energised and free / W each)``
  (:mod:`hierro.econ.deployment`: campus build-out, supply ramp). Installed units stay.
* A training run starts when all its tranches are online and holds them for its wall-clock
  time; its accelerators leave the timeline when it ends (the run paid for those hours only).

Per month: accelerators and all-in MW online, and the token capacity of the serving fleets
and the growth pool at their SLO points (tokens/day = tokens/s x 86,400; growth at the first
served model's rate). A model's demand is met in the first month its online capacity
carries its peak request rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hierro.econ import MONTHS_PER_YEAR, BuildOut, SupplyRamp, build_out, supply_ramp
from hierro.plan.allocate import Source, Take
from hierro.plan.scenario import CashEquity, Scenario
from hierro.units import MEGA

__all__ = ["Rate", "Timeline", "Tranche", "schedule"]

_DAY_S = 86400.0
_MAX_MONTHS = 600
_EPS = 1e-9


@dataclass(frozen=True)
class Rate:
    """What one accelerator of a purpose makes at its SLO operating point."""

    tok_s: float
    """Input + output tokens per second."""
    out_tok_s: float
    req_s: float


@dataclass(frozen=True)
class Tranche:
    purpose: str
    instrument: int
    label: str
    kind: str
    gpu: str
    site: str | None
    accelerators: float
    MW: float
    first_month: int | None
    """First month any of it is online (None: never within the timeline)."""
    full_month: int | None
    """First month all of it is online."""
    online: tuple[float, ...]
    """Accelerators online at the end of each month of the timeline."""


@dataclass(frozen=True)
class Timeline:
    months: tuple[int, ...]
    accelerators: tuple[float, ...]
    MW: tuple[float, ...]
    tokens_per_day: tuple[float, ...]
    """Token capacity (input + output) of serving fleets and the growth pool at their SLO points."""
    tranches: tuple[Tranche, ...]
    site_MW: tuple[tuple[str, tuple[float, ...]], ...]
    """Utility MW energised on each site, per month."""
    purposes: tuple[tuple[str, tuple[float, ...]], ...]
    """Accelerators online per purpose, per month."""
    demand_met: tuple[tuple[str, int | None], ...]
    """(model, first month its peak is carried); None: never (unserved or partly served)."""
    training: tuple[tuple[str, int | None, float | None], ...]
    """(run, start month, end month); None when the run's cluster never comes online."""
    build_outs: tuple[tuple[str, BuildOut], ...]
    ramps: tuple[tuple[str, SupplyRamp], ...]

    @property
    def served_month(self) -> int | None:
        """First month every model's peak is carried (None: some model never)."""
        months = [m for _, m in self.demand_met]
        if not months or any(m is None for m in months):
            return None
        return max(m for m in months if m is not None)


def _build_outs(s: Scenario, site_W: Sequence[float]) -> list[BuildOut]:
    d = s.deployment
    return [
        build_out(
            w, start_month=st.construction_start_month,
            first_power_months=st.first_power_months if st.first_power_months is not None else d.first_power_months,
            build_MW_per_month=st.build_MW_per_month if st.build_MW_per_month is not None else d.build_MW_per_month,
        )
        for st, w in zip(s.sites, site_W, strict=True)
    ]


def _ramps(s: Scenario) -> dict[str, SupplyRamp]:
    out = {}
    for a in s.accelerators:
        if a.supply_per_quarter is not None or a.supply_per_year is not None:
            out[a.id] = supply_ramp(a.supply_per_year, a.supply_per_quarter, a.first_delivery_month)
    return out


def _first(series: Sequence[float], target: float) -> int | None:
    return next((t for t, v in enumerate(series) if v >= target * (1 - _EPS)), None)


def schedule(
    takes: Sequence[Take],
    sources: Sequence[Source],
    s: Scenario,
    site_W: Sequence[float],
    rates: Mapping[str, Mapping[str, Rate]],
    peaks: Mapping[str, float],
    runs: Mapping[str, float | None],
) -> Timeline:
    """The timeline of ``takes`` (in allocation order). ``rates``: purpose -> accelerator ->
    what one makes; ``peaks``: served model -> peak req/s; ``runs``: training run ->
    wall-clock months (None: the run is not fully funded and never starts)."""
    flat = s.capital.flat()
    # tranches: takes merged by (purpose, source), in order of first appearance
    order: list[tuple[str, int]] = []
    units: dict[tuple[str, int], float] = {}
    for t in takes:
        key = (t.purpose, t.source)
        if key not in units:
            order.append(key)
            units[key] = 0.0
        units[key] += t.accelerators
    outs = _build_outs(s, site_W)
    ramps = _ramps(s)
    start = [0.0 if isinstance(inst, CashEquity) else inst.start_month for _, _, inst in flat]

    installed = [0.0] * len(order)
    taken = dict.fromkeys(ramps, 0.0)
    used_W = [0.0] * len(outs)
    history: list[list[float]] = []
    horizon = s.horizon_years * MONTHS_PER_YEAR
    until = max(horizon, float(s.deployment.timeline_months or 0))
    longest_run = max((m for m in runs.values() if m is not None), default=0.0)
    done_month: int | None = None
    for month in range(_MAX_MONTHS + 1):
        for j, (_, k) in enumerate(order):
            src = sources[k]
            rem = units[order[j]] - installed[j]
            if rem <= 0.0:
                continue
            if src.site is None:
                if month >= start[src.instrument]:
                    installed[j] += rem
                    if src.gpu in taken:
                        taken[src.gpu] += rem  # the provider fronts it; later deliveries repay it
                continue
            pool = ramps[src.gpu].delivered(month) - taken[src.gpu] if src.gpu in ramps else math.inf
            room = (outs[src.site].online_W(month) - used_W[src.site]) / src.W
            x = max(0.0, min(rem, pool, room))
            installed[j] += x
            used_W[src.site] += x * src.W
            if src.gpu in taken:
                taken[src.gpu] += x
        history.append(list(installed))
        if done_month is None and all(installed[j] >= units[key] * (1 - _EPS) for j, key in enumerate(order)):
            done_month = month
        if done_month is not None and month >= max(until, done_month + longest_run):
            break

    full = [_first([h[j] for h in history], units[key]) for j, key in enumerate(order)]
    # training runs: start when all their tranches are online, end after the wall-clock time
    training: list[tuple[str, int | None, float | None]] = []
    ends: dict[str, float] = {}
    for run, length in runs.items():
        mine = [full[j] for j, (p, _) in enumerate(order) if p == run]
        if length is None or not mine or any(m is None for m in mine):
            training.append((run, None, None))
            continue
        begin = max(m for m in mine if m is not None)
        ends[run] = begin + length
        training.append((run, begin, begin + length))

    last = max([m for m in full if m is not None] + list(ends.values()) + [horizon])
    span = s.deployment.timeline_months or math.ceil(last - _EPS)
    span = min(span, len(history) - 1)
    months = tuple(range(span + 1))

    def online(j: int, t: int) -> float:
        purpose = order[j][0]
        return 0.0 if purpose in ends and t >= ends[purpose] else history[t][j]

    tranches = []
    for j, (purpose, k) in enumerate(order):
        src = sources[k]
        series = tuple(online(j, t) for t in months)
        first = next((t for t in months if history[t][j] > 0), None)
        tranches.append(Tranche(
            purpose=purpose, instrument=src.instrument, label=src.label, kind=src.kind, gpu=src.gpu,
            site=s.sites[src.site].label if src.site is not None else None, accelerators=units[(purpose, k)],
            MW=units[(purpose, k)] * src.W / MEGA, first_month=first, full_month=full[j], online=series,
        ))

    def rate(purpose: str, gpu: str) -> Rate | None:
        return rates.get(purpose, {}).get(gpu)

    accel = tuple(sum(tr.online[t] for tr in tranches) for t in months)
    mw = tuple(sum(tr.online[t] * sources[order[j][1]].W for j, tr in enumerate(tranches)) / MEGA for t in months)
    tokens = tuple(
        sum(tr.online[t] * r.tok_s for tr in tranches if (r := rate(tr.purpose, tr.gpu)) is not None) * _DAY_S
        for t in months
    )
    purposes = []
    for name in dict.fromkeys(tr.purpose for tr in tranches):
        purposes.append((name, tuple(sum(tr.online[t] for tr in tranches if tr.purpose == name) for t in months)))
    met = []
    for model, peak in peaks.items():
        cap = [sum(tr.online[t] * r.req_s for tr in tranches
                   if tr.purpose == model and (r := rate(model, tr.gpu)) is not None) for t in months]
        met.append((model, _first(cap, peak)))
    return Timeline(
        months=months, accelerators=accel, MW=mw, tokens_per_day=tokens, tranches=tuple(tranches),
        site_MW=tuple((st.label, tuple(b.online_W(t) / MEGA for t in months))
                      for st, b in zip(s.sites, outs, strict=True)),
        purposes=tuple(purposes), demand_met=tuple(met), training=tuple(training),
        build_outs=tuple((st.label, b) for st, b in zip(s.sites, outs, strict=True)),
        ramps=tuple(ramps.items()),
    )
