"""When capacity comes online: data-centre build-out and accelerator supply ramps, by month.

Time is counted in months after the round closes (a month is a twelfth of the Julian year);
month ``t`` means "at the end of month t". Negative months are before the round (a campus
already under construction).

**Build-out of a campus** (``finance.yaml``: C&W 2025 equipment lead times; Stargate Abilene's
1.2 GW in 24 months)::

    online W(t) = 0                                              t < start + first_power
                = min(power, rate x (t - start - first_power))    otherwise

No hall takes power before its longest-lead electrical equipment (switchgear, 46-48 weeks)
arrives; after that, halls are energised at a steady rate of utility W per month.

**Supply ramp** of one accelerator to one buyer: deliveries per quarter, spread evenly over
each quarter's three months, from the first delivery month::

    delivered(t) = sum_k q_k x clamp((t - first - 3k) / 3, 0, 1)

A yearly figure is four equal quarters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from hierro.econ.defaults import finance
from hierro.errors import HierroError
from hierro.units import MEGA

__all__ = ["MONTHS_PER_YEAR", "BuildOut", "SupplyRamp", "build_out", "supply_ramp"]

MONTHS_PER_YEAR = 12.0
_MONTHS_PER_QUARTER = 3.0


@dataclass(frozen=True)
class BuildOut:
    """Utility power of one campus coming online, month by month."""

    power_W: float
    start_month: float
    """Construction start, months after the round (negative: already under way)."""
    first_power_months: float
    """Months from construction start to the first energised hall."""
    build_W_per_month: float
    sources: tuple[tuple[str, str], ...] = ()

    @property
    def first_power_month(self) -> float:
        return self.start_month + self.first_power_months

    @property
    def full_power_month(self) -> float:
        return self.first_power_month + self.power_W / self.build_W_per_month

    def online_W(self, month: float) -> float:
        return min(self.power_W, max(0.0, (month - self.first_power_month) * self.build_W_per_month))


def build_out(
    power_W: float,
    *,
    start_month: float = 0.0,
    first_power_months: float | None = None,
    build_MW_per_month: float | None = None,
) -> BuildOut:
    """The build-out of a campus of ``power_W`` utility power; None takes the sourced default
    (``finance.yaml`` ``dc_first_power_months``, ``dc_build_MW_per_month``)."""
    fin = finance()
    if not (power_W >= 0 and math.isfinite(power_W)):
        raise HierroError(f"site power must be a finite number >= 0 W, got {power_W}")
    if not math.isfinite(start_month):
        raise HierroError(f"construction start must be a finite month, got {start_month}")
    src = []
    if first_power_months is None:
        first_power_months = float(fin.dc_first_power_months.value or 0.0)
        src.append(("first_power_months", fin.dc_first_power_months.source))
    if build_MW_per_month is None:
        build_MW_per_month = float(fin.dc_build_MW_per_month.value or 0.0)
        src.append(("build_MW_per_month", fin.dc_build_MW_per_month.source))
    if first_power_months < 0:
        raise HierroError(f"months to first power must be >= 0, got {first_power_months}")
    if not build_MW_per_month > 0:
        raise HierroError(f"build rate must be > 0 MW per month, got {build_MW_per_month}")
    return BuildOut(power_W, start_month, first_power_months, build_MW_per_month * MEGA, tuple(src))


@dataclass(frozen=True)
class SupplyRamp:
    """Cumulative deliveries of one accelerator to one buyer."""

    first_month: float
    per_quarter: tuple[float, ...]

    @property
    def total(self) -> float:
        return sum(self.per_quarter)

    @property
    def last_month(self) -> float:
        return self.first_month + _MONTHS_PER_QUARTER * len(self.per_quarter)

    def delivered(self, month: float) -> float:
        t = month - self.first_month
        return sum(q * min(1.0, max(0.0, (t - _MONTHS_PER_QUARTER * k) / _MONTHS_PER_QUARTER))
                   for k, q in enumerate(self.per_quarter))


def supply_ramp(
    per_year: float | None = None, per_quarter: Sequence[float] | None = None, first_month: float = 0.0
) -> SupplyRamp:
    """Deliveries of ``per_year`` units over the first year (four equal quarters), or the
    quarterly schedule ``per_quarter``, starting ``first_month`` months after the round."""
    if (per_year is None) == (per_quarter is None):
        raise HierroError("give a supply per year or per quarter, not both or neither")
    qs = [per_year / 4.0] * 4 if per_year is not None else list(per_quarter or [])
    if not qs or any(not (q >= 0 and math.isfinite(q)) for q in qs):
        raise HierroError(f"deliveries must be finite numbers >= 0, got {qs}")
    if not (first_month >= 0 and math.isfinite(first_month)):
        raise HierroError(f"first delivery month must be >= 0, got {first_month}")
    return SupplyRamp(first_month, tuple(float(q) for q in qs))
