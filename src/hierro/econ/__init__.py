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
    RoundPlan,
    Valuation,
    buy,
    cash_equity,
    cloud_credits,
    compute_contract,
    hybrid,
    plan_round,
    valuation,
)
from hierro.econ.defaults import api_price, api_prices, finance, presets, site, sites, tier
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
    margin_vs,
    token_economics,
    tokens_per_s_per_mw,
    usd_per_mtok,
)

__all__ = [
    "Capacity",
    "Instrument",
    "Margin",
    "Purchase",
    "RoundPlan",
    "SiteCheck",
    "TcoBreakdown",
    "TcoInputs",
    "TokenEconomics",
    "Valuation",
    "annuity_per_year",
    "api_price",
    "api_prices",
    "buy",
    "capacity_from_accelerators",
    "capacity_from_power",
    "capital_recovery_factor",
    "cash_equity",
    "check_site",
    "cloud_credits",
    "compute_contract",
    "finance",
    "hybrid",
    "joules_per_token",
    "margin_vs",
    "plan_round",
    "preset_names",
    "presets",
    "site",
    "sites",
    "straight_line_per_year",
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
