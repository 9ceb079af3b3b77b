"""Time value of money: capital recovery with an annuity, and the year in hours."""

from __future__ import annotations

import math

from hierro.errors import HierroError
from hierro.units import HOUR, YEAR

__all__ = ["HOURS_PER_YEAR", "YEAR_S", "annuity_per_year", "capital_recovery_factor", "straight_line_per_year"]

YEAR_S = YEAR
"""Julian year in seconds (8,766 h), the year of Epoch's amortisation (cost_analysis_standalone.py)."""
HOURS_PER_YEAR = YEAR_S / HOUR


def capital_recovery_factor(rate: float, years: float) -> float:
    """CRF(r, n) = r(1+r)^n / ((1+r)^n - 1): the level payment per year that repays 1 of capital
    over n years at the cost of capital r (the annuity formula of engineering economics, as in
    NREL's LCOE method; METHODS.md §9). At r = 0 it is 1/n, straight-line depreciation."""
    if years <= 0:
        raise HierroError(f"recovery period must be > 0 years, got {years}")
    if not 0 <= rate < 1:
        raise HierroError(f"cost of capital must be in [0, 1), got {rate}")
    if rate == 0:
        return 1.0 / years
    g = math.pow(1.0 + rate, years)
    return rate * g / (g - 1.0)


def annuity_per_year(capital_usd: float, rate: float, years: float) -> float:
    """Capital charge per year, USD: capital x CRF(r, n)."""
    return capital_usd * capital_recovery_factor(rate, years)


def straight_line_per_year(capital_usd: float, years: float) -> float:
    """Straight-line depreciation per year, USD: capital / n (ignores the cost of capital)."""
    if years <= 0:
        raise HierroError(f"recovery period must be > 0 years, got {years}")
    return capital_usd / years
