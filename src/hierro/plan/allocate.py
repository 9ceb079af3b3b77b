"""Spending the round: a greedy allocation of instruments' money to needs, within power, supply and time.

A **source** is one way to get accelerators: an instrument (money), an accelerator, and for
owned capacity (cash equity) a site (power). Its price is the TCO of that accelerator under
that instrument (``hierro.econ``): owned capacity at the owner preset with the site's power
price and PUE, credits at list less the discount, a contract at its contract price.

**Time.** The plan runs ``H`` months (its horizon). A unit is paid for, and makes tokens, only
while it is online within the horizon:

* rented (credits, a contract): from the instrument's start month ``a`` to the end of its term
  or of the horizon, whichever is first: ``[a, min(a + term, H))``; the money buys no hours
  outside that window;
* owned (cash equity): from the month its accelerator is delivered and its hall energised
  (:mod:`hierro.plan.install`, first in, first out) to the end of the horizon; a unit that
  cannot come online before ``H`` is not bought.

A **need** is a fraction of a requirement that several accelerators can meet: serving a model
(``units`` accelerators of each option carry the whole peak, held to the end of the horizon),
a training run (one accelerator, its cluster size, each unit held for the run's wall-clock
months, which must end within the horizon and, rented, within the term), or the growth pool
(no limit, held to the end of the horizon). Cost of one accelerator of a need::

    held:      $/GPU-h (per busy hour) x utilisation x hours online within the horizon
    training:  $/GPU-h (per busy hour) x wall-clock hours                (the run's GPU-hours)

The greedy fills each need in turn, always from the pair (option, source) first in the order
(for serving: whether it lasts to the end of the horizon; flexibility; cost per hour of the
whole need): rented capacity whose term ends early serves a fleet held to the horizon only
when nothing that lasts is left; credits before contracts before cash (the least flexible
money is spent first, since cash can buy anything); cheapest within a class. Each step takes
as much as the first of five limits allows: the rest of the need, the source's money, the
accelerator's supply cap (owned and rented count), the site's power (owned only, all-in W =
IT W x PUE per accelerator), and the units that come online in the same month (owned only;
the next step takes the next month's). A need left short names what binds: money when every
source it could use is spent, else what blocks the first source that still has money (supply
or power, including nothing more delivered or energised within the horizon). More money never
buys less: every limit but money is shared, and a larger amount only lets a step take more.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from hierro.econ import MONTHS_PER_YEAR, TcoBreakdown
from hierro.econ.finance import HOURS_PER_YEAR
from hierro.plan.install import Installer

__all__ = ["HOURS_PER_MONTH", "Blocker", "Need", "Source", "State", "Take", "fill"]

HOURS_PER_MONTH = HOURS_PER_YEAR / MONTHS_PER_YEAR
"""730.5 h: a twelfth of the Julian year, the month of :mod:`hierro.econ.deployment`."""

Blocker = Literal["money", "power", "supply"]
_FLEX = {"cloud_credits": 0, "compute_contract": 1, "cash_equity": 2}
_EPS_USD = 1.0
_EPS_UNITS = 1e-6
_EPS_MONTHS = 1e-9


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
    start_month: float = 0.0
    """Rented: month the capacity is available from (owned: when installed, see ``install``)."""

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

    def end_month(self, horizon_months: float) -> float:
        """Last month a unit is online and paid for: the horizon's end, or a rental's term end."""
        if self.owned:
            return horizon_months
        return min(self.start_month + self.term_years * MONTHS_PER_YEAR, horizon_months)


@dataclass(frozen=True)
class Need:
    """``options``: (accelerator, units that meet all of it); ``hold_months``: months each unit
    is held (a training run's wall clock), None: from when it is online to the horizon's end;
    ``busy_charge``: charge the TCO's utilisation (held fleets) or not (a run's GPU-hours)."""

    purpose: str
    options: tuple[tuple[str, float], ...]
    hold_months: float | None = None
    busy_charge: bool = True
    unlimited: bool = False

    def rate(self, s: Source) -> float:
        """USD per hour one unit from ``s`` is held."""
        return s.usd_per_busy_hour * (s.tco.inputs.utilisation if self.busy_charge else 1.0)

    def last_month(self, s: Source, horizon_months: float) -> int:
        """Latest whole month a unit from ``s`` may come online and still be of use."""
        end = s.end_month(horizon_months)
        if self.hold_months is not None:
            return math.floor(end - self.hold_months + _EPS_MONTHS)
        return math.ceil(end - _EPS_MONTHS) - 1

    def usable(self, s: Source, horizon_months: float) -> bool:
        if s.owned:
            return self.last_month(s, horizon_months) >= 0
        end = s.end_month(horizon_months)
        if self.hold_months is not None:
            return s.start_month + self.hold_months <= end + _EPS_MONTHS
        return end > s.start_month + _EPS_MONTHS

    def lasts(self, s: Source, horizon_months: float) -> bool:
        """A unit from ``s`` stays online as long as this need holds it."""
        return self.hold_months is not None or s.end_month(horizon_months) >= horizon_months - _EPS_MONTHS


@dataclass
class State:
    """What is left: money per instrument, supply per accelerator, power per site (W), and the
    installation queue of owned capacity over a horizon of ``horizon_months``."""

    money: list[float]
    supply: dict[str, float]
    power_W: list[float]
    horizon_months: float
    installer: Installer
    caps: dict[str, float] = field(default_factory=dict)
    site_W: list[float] = field(default_factory=list)
    amounts: list[float] = field(default_factory=list)

    @classmethod
    def start(cls, amounts: Sequence[float], caps: Mapping[str, float], site_W: Sequence[float],
              horizon_months: float, installer: Installer) -> State:
        return cls(list(amounts), dict(caps), list(site_W), horizon_months, installer, dict(caps), list(site_W),
                   list(amounts))


@dataclass(frozen=True)
class Take:
    purpose: str
    source: int
    gpu: str
    accelerators: float
    month: int | float
    """When these units come online (owned: a whole month; rented: the instrument's start)."""
    end_month: float | None
    """When they go offline; None: a training run's, which ends when the run does."""
    held_hours: float
    """Hours each unit is paid for."""
    busy_hours: float
    """Accelerator-hours of work: accelerators x held hours (x utilisation for held fleets)."""
    usd: float
    limit: str
    """What stopped this step: need, money, supply, power or month (more come online later)."""


def _blocker(need: Need, s: Source, st: State) -> Blocker | None:
    if st.supply.get(s.gpu, math.inf) <= _EPS_UNITS:
        return "supply"
    if st.money[s.instrument] <= _EPS_USD:
        return "money"
    if s.site is not None:
        if st.power_W[s.site] < s.W * _EPS_UNITS:
            return "power"
        last = need.last_month(s, st.horizon_months)
        if st.installer.next_batch(s.gpu, s.site, s.W, last) is None:
            return st.installer.blocked_by(s.gpu, s.site, s.W, last)
    return None


def fill(need: Need, sources: Sequence[Source], st: State) -> tuple[list[Take], float, Blocker | None]:
    """Meet ``need`` from ``sources``, updating ``st``: (takes, fraction met, what blocked the
    rest; None when met). The growth need (``unlimited``) runs until every pair is blocked."""
    H = st.horizon_months
    held_to_end = need.hold_months is None and not need.unlimited
    pairs = sorted(
        ((o, units, k) for o, (gpu, units) in enumerate(need.options) for k, s in enumerate(sources)
         if s.gpu == gpu and need.usable(s, H)),
        key=lambda p: (held_to_end and not need.lasts(sources[p[2]], H), sources[p[2]].flex,
                       need.rate(sources[p[2]]) * p[1], p[2]),
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
        end = s.end_month(H)
        if s.site is not None:
            batch = st.installer.next_batch(s.gpu, s.site, s.W, need.last_month(s, H))
            assert batch is not None  # _blocker checked it
            month: int | float = batch[0]
            online = batch[1]
        else:
            month, online = s.start_month, math.inf
        months = need.hold_months if need.hold_months is not None else end - month
        hours = months * HOURS_PER_MONTH
        unit_usd = need.rate(s) * hours
        limits = {
            "need": remaining * units,
            "money": st.money[s.instrument] / unit_usd if unit_usd > 0 else math.inf,
            "supply": st.supply.get(s.gpu, math.inf),
            "power": st.power_W[s.site] / s.W if s.site is not None else math.inf,
            "month": online,
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
        st.installer.claim(s.gpu, x, s.site, s.W)
        busy = x * hours * (s.tco.inputs.utilisation if need.busy_charge else 1.0)
        takes.append(Take(need.purpose, k, s.gpu, x, month, None if need.hold_months is not None else end,
                          hours, busy, x * unit_usd, limit))
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
