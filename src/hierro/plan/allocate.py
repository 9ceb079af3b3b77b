"""Spending the round: a greedy allocation of instruments' money to needs, within power and supply.

A **source** is one way to get accelerators: an instrument (money), an accelerator, and for
owned capacity (cash equity) a site (power). Its price is the TCO of that accelerator under
that instrument (``hierro.econ``): owned capacity at the owner preset with the site's power
price and PUE, credits at list less the discount, a contract at its contract price.

A **need** is a fraction of a requirement that several accelerators can meet: serving a model
(``units`` accelerators of each option carry the whole peak), a training run (one accelerator,
its cluster size), or the growth pool (no limit). Cost of one accelerator of a need::

    serving, growth:  $/GPU-h (per busy hour) x utilisation x horizon x 8766 h   (held for the horizon)
    training:         $/GPU-h (per busy hour) x wall-clock hours                    (the run's GPU-hours)

The greedy fills each need in turn, always from the pair (option, source) first in the order
(flexibility, cost of the whole need): credits first, then contracts, then cash (the least
flexible money is spent first, since cash can buy anything), cheapest within a class. Each step
takes as much as the first of four limits allows: the rest of the need, the source's money,
the accelerator's supply cap (owned and rented count), and the site's power (owned only,
all-in W = IT W x PUE per accelerator). A need left short names what binds: money when
every source it could use is spent, else what blocks the first source that still has money
(supply or power). More money never buys less: every limit but money is shared, and a
larger amount only lets a step take more.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from hierro.econ import TcoBreakdown
from hierro.econ.finance import HOURS_PER_YEAR

__all__ = ["Blocker", "Need", "Source", "State", "Take", "fill"]

Blocker = Literal["money", "power", "supply"]
_FLEX = {"cloud_credits": 0, "compute_contract": 1, "cash_equity": 2}
_EPS_USD = 1.0
_EPS_UNITS = 1e-6


@dataclass(frozen=True)
class Source:
    instrument: int
    label: str
    kind: Literal["cash_equity", "cloud_credits", "compute_contract"]
    investor: str | None
    gpu: str
    site: int | None
    """Index of the site (owned capacity), None for rented."""
    tco: TcoBreakdown
    term_years: float

    @property
    def owned(self) -> bool:
        return self.site is not None

    @property
    def flex(self) -> int:
        return _FLEX[self.kind]

    @property
    def usd_per_busy_hour(self) -> float:
        return self.tco.usd_per_gpu_hour

    @property
    def W(self) -> float:
        return self.tco.all_in_W


@dataclass(frozen=True)
class Need:
    """``options``: (accelerator, units that meet all of it); ``held_hours``: hours each unit is
    held; ``busy_charge``: charge the TCO's utilisation (held fleets) or not (a run's GPU-hours)."""

    purpose: str
    options: tuple[tuple[str, float], ...]
    held_hours: float
    busy_charge: bool = True
    unlimited: bool = False

    def usd_per_unit(self, s: Source) -> float:
        util = s.tco.inputs.utilisation if self.busy_charge else 1.0
        return s.usd_per_busy_hour * util * self.held_hours


@dataclass
class State:
    """What is left: money per instrument, supply per accelerator, power per site (W)."""

    money: list[float]
    supply: dict[str, float]
    power_W: list[float]
    caps: dict[str, float] = field(default_factory=dict)
    site_W: list[float] = field(default_factory=list)
    amounts: list[float] = field(default_factory=list)

    @classmethod
    def start(cls, amounts: Sequence[float], caps: Mapping[str, float], site_W: Sequence[float]) -> State:
        return cls(list(amounts), dict(caps), list(site_W), dict(caps), list(site_W), list(amounts))


@dataclass(frozen=True)
class Take:
    purpose: str
    source: int
    gpu: str
    accelerators: float
    held_hours: float
    busy_hours: float
    usd: float
    limit: str
    """What stopped this step: need, money, supply or power."""


def _blocker(need: Need, s: Source, st: State) -> Blocker | None:
    if st.supply.get(s.gpu, math.inf) <= _EPS_UNITS:
        return "supply"
    if st.money[s.instrument] <= _EPS_USD:
        return "money"
    if s.site is not None and st.power_W[s.site] < s.W * _EPS_UNITS:
        return "power"
    return None


def fill(need: Need, sources: Sequence[Source], st: State) -> tuple[list[Take], float, Blocker | None]:
    """Meet ``need`` from ``sources``, updating ``st``: (takes, fraction met, what blocked the
    rest; None when met). The growth need (``unlimited``) runs until every pair is blocked."""
    pairs = sorted(
        ((o, units, k) for o, (gpu, units) in enumerate(need.options) for k, s in enumerate(sources) if s.gpu == gpu),
        key=lambda p: (sources[p[2]].flex, need.usd_per_unit(sources[p[2]]) * p[1], p[2]),
    )
    if not pairs:
        return [], 0.0, "money"
    remaining = math.inf if need.unlimited else 1.0
    takes: list[Take] = []
    while remaining > 1e-9:
        pick = next(((units, k) for _, units, k in pairs if _blocker(need, sources[k], st) is None), None)
        if pick is None:
            break
        units, k = pick
        s = sources[k]
        unit_usd = need.usd_per_unit(s)
        limits = {
            "need": remaining * units,
            "money": st.money[s.instrument] / unit_usd if unit_usd > 0 else math.inf,
            "supply": st.supply.get(s.gpu, math.inf),
            "power": st.power_W[s.site] / s.W if s.site is not None else math.inf,
        }
        limit = min(limits, key=lambda n: limits[n])
        x = limits[limit]
        if not math.isfinite(x):
            break  # an unlimited need from free, uncapped, rented capacity: nothing bounds it
        st.money[s.instrument] = 0.0 if limit == "money" else st.money[s.instrument] - x * unit_usd
        if s.gpu in st.supply:
            st.supply[s.gpu] = 0.0 if limit == "supply" else st.supply[s.gpu] - x
        if s.site is not None:
            st.power_W[s.site] = 0.0 if limit == "power" else st.power_W[s.site] - x * s.W
        busy = x * need.held_hours * (s.tco.inputs.utilisation if need.busy_charge else 1.0)
        takes.append(Take(need.purpose, k, s.gpu, x, need.held_hours, busy, x * unit_usd, limit))
        remaining = 0.0 if limit == "need" else remaining - x / units
    if need.unlimited:
        met = 1.0
    else:
        met = min(1.0, sum(t.accelerators / dict(need.options)[t.gpu] for t in takes))
    if met >= 1.0 - 1e-9 and not need.unlimited:
        return takes, 1.0, None
    # the binding limit: money if every source is spent, else what blocks the first source with money
    funded = [k for _, _, k in pairs if st.money[sources[k].instrument] > _EPS_USD]
    if not funded:
        return takes, met, "money"
    return takes, met, _blocker(need, sources[funded[0]], st) or "money"


def held_hours(horizon_years: float) -> float:
    """Hours a fleet is held over the horizon."""
    return horizon_years * HOURS_PER_YEAR
