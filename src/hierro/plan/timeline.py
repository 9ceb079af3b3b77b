"""Deployment timeline: when what the round buys is online, month by month, and the tokens it
delivers over the horizon.

The allocation (:mod:`hierro.plan.allocate`) says what each instrument buys and when each
purchase comes online (owned capacity through the installation queue of
:mod:`hierro.plan.install`: deliveries and energised halls, first in, first out; rented
capacity at its instrument's start). This module lays those purchases out by month. A
**tranche** is what one instrument buys for one purpose (a model, a training run, the growth
pool) of one accelerator on one site (owned) or in the provider's cloud (rented).

* Rented capacity is online from its start to the end of its term or of the horizon,
  whichever is first (what the money paid for); owned capacity stays once installed.
* A training run starts when all its tranches are online and holds them for its wall-clock
  time; its accelerators leave the timeline when it ends (the run paid for those hours only).
  A run whose rented part would end before the run does never starts.

Per month: accelerators and all-in MW online, and the token capacity of the serving fleets
and the growth pool at their SLO points (tokens/day = tokens/s x 86,400; growth at the first
served model's rate). A model's demand is met in the first month its online capacity carries
its peak request rate.

**Tokens delivered over the horizon** (``H`` months) by a model's fleet, at its demand::

    served req/s (t) = mean req/s x min(1, capacity online (t) / peak req/s)
    tokens           = (isl + osl) x integral over [0, H) of served req/s (t) dt

(a fleet short of the peak serves that fraction of the day's requests, as the steady state
does). Capacity changes only where a purchase comes online or its term ends, so the integral
is a sum over those intervals.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hierro.econ import MONTHS_PER_YEAR, BuildOut, SupplyRamp, build_out, supply_ramp
from hierro.plan.allocate import HOURS_PER_MONTH, Source, Take
from hierro.plan.scenario import Scenario
from hierro.units import MEGA

__all__ = ["Rate", "Timeline", "Tranche", "build_outs", "ramps", "schedule"]

_DAY_S = 86400.0
_MAX_MONTHS = 600
_HOUR_S = 3600.0
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
    end_month: float | None
    """When it goes offline: a rental's term (or the horizon's) end, a training run's end;
    None: owned capacity held for good."""
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
    horizon_months: float = 0.0
    delivered: tuple[tuple[str, float, float], ...] = ()
    """(model, tokens delivered over the horizon at its demand, months of the horizon its peak
    is carried)."""

    @property
    def served_month(self) -> int | None:
        """First month every model's peak is carried (None: some model never)."""
        months = [m for _, m in self.demand_met]
        if not months or any(m is None for m in months):
            return None
        return max(m for m in months if m is not None)


def build_outs(s: Scenario, site_W: Sequence[float]) -> list[BuildOut]:
    """Each site's build-out: its own figures, else the scenario's ``deployment``, else the sourced defaults."""
    d = s.deployment
    return [
        build_out(
            w, start_month=st.construction_start_month,
            first_power_months=st.first_power_months if st.first_power_months is not None else d.first_power_months,
            build_MW_per_month=st.build_MW_per_month if st.build_MW_per_month is not None else d.build_MW_per_month,
        )
        for st, w in zip(s.sites, site_W, strict=True)
    ]


def ramps(s: Scenario) -> dict[str, SupplyRamp]:
    """Accelerator -> its delivery ramp to this buyer (absent: no ramp given)."""
    out = {}
    for a in s.accelerators:
        if a.supply_per_quarter is not None or a.supply_per_year is not None:
            out[a.id] = supply_ramp(a.supply_per_year, a.supply_per_quarter, a.first_delivery_month)
    return out


def _first(series: Sequence[float], target: float) -> int | None:
    return next((t for t, v in enumerate(series) if v >= target * (1 - _EPS)), None)


@dataclass(frozen=True)
class _Piece:
    """Accelerators online from ``begin`` (inclusive) to ``end`` (exclusive, None: for good)."""

    tranche: int
    units: float
    begin: float
    end: float | None

    def on(self, t: float) -> bool:
        return self.begin <= t + _EPS and (self.end is None or t < self.end - _EPS)


def _delivered(pieces: Sequence[_Piece], req_s: Mapping[int, float], peak: float, mean: float, tokens_per_req: float,
               horizon: float) -> tuple[float, float]:
    """(tokens delivered over [0, horizon) at the demand, months the peak is carried); ``req_s``:
    tranche -> req/s per accelerator at its SLO point."""
    cuts = sorted({0.0, horizon} | {min(max(p.begin, 0.0), horizon) for p in pieces}
                  | {min(max(p.end, 0.0), horizon) for p in pieces if p.end is not None})
    tokens = at_peak = 0.0
    for a, b in itertools.pairwise(cuts):
        cap = sum(p.units * req_s[p.tranche] for p in pieces if p.tranche in req_s and p.on(a))
        served = mean * min(1.0, cap / peak) if peak > 0 else 0.0
        tokens += served * tokens_per_req * (b - a) * HOURS_PER_MONTH * _HOUR_S
        if peak > 0 and cap >= peak * (1 - _EPS):
            at_peak += b - a
    return tokens, at_peak


def schedule(
    takes: Sequence[Take],
    sources: Sequence[Source],
    s: Scenario,
    site_W: Sequence[float],
    rates: Mapping[str, Mapping[str, Rate]],
    peaks: Mapping[str, float],
    runs: Mapping[str, float | None],
    demand: Mapping[str, tuple[float, float]] | None = None,
) -> Timeline:
    """The timeline of ``takes`` (in allocation order, each with the month it comes online).
    ``rates``: purpose -> accelerator -> what one makes; ``peaks``: served model -> peak req/s;
    ``runs``: training run -> wall-clock months (None: the run is not fully funded and never
    starts); ``demand``: served model -> (mean req/s, tokens per request) for the tokens
    delivered over the horizon."""
    horizon = s.horizon_years * MONTHS_PER_YEAR
    # tranches: takes merged by (purpose, source), in order of first appearance
    order: list[tuple[str, int]] = []
    units: dict[tuple[str, int], float] = {}
    for t in takes:
        key = (t.purpose, t.source)
        if key not in units:
            order.append(key)
            units[key] = 0.0
        units[key] += t.accelerators
    index = {key: j for j, key in enumerate(order)}
    pieces = [_Piece(index[(t.purpose, t.source)], t.accelerators, float(t.month),
                     None if sources[t.source].owned else t.end_month)
              for t in takes]

    # training runs: start when all their pieces are online, end after the wall-clock time
    training: list[tuple[str, int | None, float | None]] = []
    for run, length in runs.items():
        mine = [p for p in pieces if order[p.tranche][0] == run]
        rented_end = min((sources[t.source].end_month(horizon) for t in takes
                          if t.purpose == run and not sources[t.source].owned), default=math.inf)
        if length is None or not mine:
            training.append((run, None, None))
            continue
        begin = math.ceil(max(p.begin for p in mine) - _EPS)
        if begin + length > rented_end + _EPS:
            training.append((run, None, None))  # the rented part's term ends before the run would
            continue
        training.append((run, begin, begin + length))
    installed = pieces
    runs_at = {run: (math.inf if a is None else float(a), b) for run, a, b in training}
    pieces = [p if (run := order[p.tranche][0]) not in runs_at else _Piece(p.tranche, p.units, *runs_at[run])
              for p in pieces]

    last = max([math.ceil(p.begin - _EPS) for p in pieces if math.isfinite(p.begin)]
               + [math.ceil(p.end - _EPS) for p in pieces if p.end is not None and math.isfinite(p.end)]
               + [math.ceil(horizon - _EPS)])
    span = min(s.deployment.timeline_months or last, _MAX_MONTHS)
    months = tuple(range(span + 1))

    tranches = []
    for j, (purpose, k) in enumerate(order):
        src = sources[k]
        mine = [p for p in pieces if p.tranche == j]
        series = tuple(sum(p.units for p in mine if p.on(t)) for t in months)
        starts = sorted((p.begin, p.units) for p in installed if p.tranche == j)
        got = 0.0
        full: int | None = None
        for b, n in starts:
            got += n
            if got >= units[(purpose, k)] * (1 - _EPS):
                full = math.ceil(b - _EPS)
                break
        ends_at = [p.end for p in mine]
        tranches.append(Tranche(
            purpose=purpose, instrument=src.instrument, label=src.label, kind=src.kind, gpu=src.gpu,
            site=s.sites[src.site].label if src.site is not None else None, accelerators=units[(purpose, k)],
            MW=units[(purpose, k)] * src.W / MEGA,
            first_month=math.ceil(starts[0][0] - _EPS) if starts else None, full_month=full,
            end_month=None if not ends_at or None in ends_at else max(e for e in ends_at if e is not None),
            online=series,
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
    delivered = []
    for model, peak in peaks.items():
        cap = [sum(tr.online[t] * r.req_s for tr in tranches
                   if tr.purpose == model and (r := rate(model, tr.gpu)) is not None) for t in months]
        met.append((model, _first(cap, peak)))
        if demand is not None and model in demand:
            req_s = {j: r.req_s for j, tr in enumerate(tranches)
                     if tr.purpose == model and (r := rate(model, tr.gpu)) is not None}
            mean, per_req = demand[model]
            got_tokens, at_peak = _delivered([p for p in pieces if p.tranche in req_s], req_s, peak, mean, per_req,
                                             horizon)
            delivered.append((model, got_tokens, at_peak))
    outs = build_outs(s, site_W)
    return Timeline(
        months=months, accelerators=accel, MW=mw, tokens_per_day=tokens, tranches=tuple(tranches),
        site_MW=tuple((st.label, tuple(b.online_W(t) / MEGA for t in months))
                      for st, b in zip(s.sites, outs, strict=True)),
        purposes=tuple(purposes), demand_met=tuple(met), training=tuple(training),
        build_outs=tuple((st.label, b) for st, b in zip(s.sites, outs, strict=True)),
        ramps=tuple(ramps(s).items()), horizon_months=horizon, delivered=tuple(delivered),
    )
