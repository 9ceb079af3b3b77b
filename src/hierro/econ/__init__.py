"""Economics layer: TCO per accelerator-hour, token economics, capacity and capital.

Every default is a sourced figure in ``hierro/econ/data`` (read on first use, never at import).
Formulas are cited in each module's docstring.
"""

from hierro.econ.capacity import (
    Capacity,
    SiteCheck,
    capacity_from_accelerators,
    capacity_from_power,
    check_site,
)
from hierro.econ.capital import (
    Instrument,
    Purchase,
    RentalKind,
    RoundPlan,
    Valuation,
    buy,
    cash_equity,
    hybrid,
    plan_round,
    rental,
    valuation,
)
from hierro.econ.defaults import api_price, api_prices, finance, presets, site, sites, tier
from hierro.econ.deployment import MONTHS_PER_YEAR, BuildOut, SupplyRamp, build_out, supply_ramp
from hierro.econ.finance import annuity_per_year, capital_recovery_factor, straight_line_per_year
from hierro.econ.tco import (
    TcoBreakdown,
    TcoInputs,
    preset_names,
    tco,
    tco_for,
    tco_inputs,
    with_overrides,
)
from hierro.econ.tokens import (
    Margin,
    TokenEconomics,
    joules_per_token,
    margin_at,
    margin_vs,
    token_economics,
    tokens_per_s_per_mw,
    usd_per_mtok,
)

__all__ = [
    "MONTHS_PER_YEAR",
    "BuildOut",
    "Capacity",
    "Instrument",
    "Margin",
    "Purchase",
    "RentalKind",
    "RoundPlan",
    "SiteCheck",
    "SupplyRamp",
    "TcoBreakdown",
    "TcoInputs",
    "TokenEconomics",
    "Valuation",
    "annuity_per_year",
    "api_price",
    "api_prices",
    "build_out",
    "buy",
    "capacity_from_accelerators",
    "capacity_from_power",
    "capital_recovery_factor",
    "cash_equity",
    "check_site",
    "finance",
    "hybrid",
    "joules_per_token",
    "margin_at",
    "margin_vs",
    "plan_round",
    "preset_names",
    "presets",
    "rental",
    "site",
    "sites",
    "straight_line_per_year",
    "supply_ramp",
    "tco",
    "tco_for",
    "tco_inputs",
    "tier",
    "token_economics",
    "tokens_per_s_per_mw",
    "usd_per_mtok",
    "valuation",
    "with_overrides",
]
