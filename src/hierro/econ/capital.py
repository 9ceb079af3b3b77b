"""Capital: a funding round split into instruments, what each buys, and valuation arithmetic.

Instruments (METHODS.md §9, "financing modes"):

* cash equity buys owned capacity at its TCO (an owner preset); the money funds the capex up
  front and the power, O&M and cost of capital over the depreciation life;
* cloud credits buy accelerator-hours at the provider's list (on-demand) price less a discount,
  or a negotiated price, used over the credits' term;
* a compute-supply contract reserves capacity at a contract price for a term. Both are
  rented capacity and are built by one function, :func:`rental`, that differs by kind only in
  the default price and term;
* a hybrid is a named mix of the above, its parts' amounts summing to its total.

For each::

    accelerator-hours = amount / $ per busy accelerator-hour
    accelerators      = accelerator-hours / (term x 8766 h x utilisation)    (held over the term)
    utility W         = accelerators x all-in W per accelerator
    tokens/s (peak)   = accelerators x tokens/s per accelerator at the SLO
    $/Mtok            = $/GPU-h / (tokens/s per GPU x 3600 / 1e6)

Valuation: post-money = pre-money + new money; an investor's stake = its money / post-money;
existing holders keep pre / post of the company (dilution = new money / post-money).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from hierro.econ.finance import HOURS_PER_YEAR
from hierro.econ.tco import TcoBreakdown, tco_for
from hierro.econ.tokens import usd_per_mtok
from hierro.errors import HierroError

__all__ = [
    "Instrument",
    "Purchase",
    "RentalKind",
    "RoundPlan",
    "Valuation",
    "buy",
    "cash_equity",
    "hybrid",
    "plan_round",
    "rental",
    "valuation",
]

Kind = Literal["cash_equity", "cloud_credits", "compute_contract"]
RentalKind = Literal["cloud_credits", "compute_contract"]
_RENTALS: dict[str, tuple[str, str, float]] = {
    # kind: (TCO preset of the default price, label, default term in years)
    "cloud_credits": ("on-demand", "cloud credits", 1.0),
    "compute_contract": ("rental-3yr", "compute contract", 3.0),
}
_SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class Instrument:
    """Money put into one way of buying compute, priced by a TCO (owned or rented)."""

    label: str
    kind: Kind
    amount_usd: float
    tco: TcoBreakdown
    term_years: float
    deploy_years: float

    def __post_init__(self) -> None:
        if not (self.amount_usd >= 0 and math.isfinite(self.amount_usd)):
            raise HierroError(f"{self.label}: amount must be a finite number >= 0 USD, got {self.amount_usd}")
        if self.term_years <= 0:
            raise HierroError(f"{self.label}: term must be > 0 years, got {self.term_years}")
        if self.deploy_years < 0:
            raise HierroError(f"{self.label}: time to deploy must be >= 0 years, got {self.deploy_years}")


def cash_equity(
    amount_usd: float,
    gpu: str = "gb200",
    preset: str = "hyperscaler-owned",
    overrides: Mapping[str, float] | None = None,
) -> Instrument:
    """Cash that builds owned capacity at the TCO of an owner ``preset``; deploys after the
    data-centre build time, over the depreciation life."""
    t = tco_for(gpu, preset, overrides)
    if t.inputs.kind != "owned":
        raise HierroError(f"cash equity buys owned capacity; preset {preset!r} is a rental")
    return Instrument("cash equity", "cash_equity", amount_usd, t, t.inputs.it_life_years, t.inputs.build_time_years)


def rental(
    amount_usd: float,
    gpu: str,
    *,
    kind: RentalKind = "cloud_credits",
    usd_per_gpu_hour: float | None = None,
    provider: str | None = None,
    discount_vs_list: float | None = None,
    term_years: float | None = None,
    start_years: float = 0.0,
) -> Instrument:
    """Rented accelerator-hours: cloud credits or a compute-supply contract.

    The two differ only in their default price and term:

    * ``cloud_credits``: the provider's on-demand list price (the catalog median, or
      ``provider``'s), less ``discount_vs_list``; term 1 year;
    * ``compute_contract``: reserved capacity at SemiAnalysis' 3-year rental tier; term 3 years.

    ``usd_per_gpu_hour`` (a negotiated or contract price) replaces the default price;
    ``start_years`` is when the capacity is available (0: at once)."""
    if usd_per_gpu_hour is not None and discount_vs_list is not None:
        raise HierroError(f"{kind}: give usd_per_gpu_hour or discount_vs_list, not both")
    if discount_vs_list is not None and not 0 <= discount_vs_list < 1:
        raise HierroError(f"{kind}: discount_vs_list must be in [0, 1), got {discount_vs_list}")
    if provider is not None and kind != "cloud_credits":
        raise HierroError(f"{kind}: provider names whose list price cloud credits pay; a contract has its own price")
    preset, label, term = _RENTALS[kind]
    price = usd_per_gpu_hour
    if price is None and discount_vs_list is not None:
        listed = tco_for(gpu, preset, provider=provider).inputs.rental_usd_per_gpu_hour
        assert listed is not None
        price = listed * (1.0 - discount_vs_list)
    extra = {} if price is None else {"rental_usd_per_gpu_hour": price}
    t = tco_for(gpu, preset, extra, provider=provider)
    return Instrument(label, kind, amount_usd, t, term if term_years is None else term_years, start_years)


def hybrid(label: str, parts: Sequence[Instrument]) -> tuple[Instrument, ...]:
    """A named mix of instruments (its parts relabelled ``label: part``)."""
    if not parts:
        raise HierroError(f"hybrid {label!r} needs at least one part")
    return tuple(
        Instrument(f"{label}: {p.label}", p.kind, p.amount_usd, p.tco, p.term_years, p.deploy_years)
        for p in parts
    )


@dataclass(frozen=True)
class Purchase:
    """What one instrument buys."""

    label: str
    kind: Kind
    gpu_id: str
    amount_usd: float
    usd_per_gpu_hour: float
    gpu_hours: float
    accelerators: float
    """Held over the term (average)."""
    utility_W: float
    capex_usd: float
    """Up-front capex inside the amount (owned capacity only)."""
    term_years: float
    deploy_years: float
    tok_s: float | None
    tokens_per_day: float | None
    usd_per_mtok: float | None


def buy(inst: Instrument, tok_s_per_gpu: float | None = None) -> Purchase:
    """Accelerator-hours, accelerators, power and tokens that ``inst`` buys; tokens need the
    tokens/s per accelerator at the SLO (from :func:`hierro.perf.estimate`)."""
    t = inst.tco
    price = t.usd_per_gpu_hour
    hours = inst.amount_usd / price
    n = hours / (inst.term_years * HOURS_PER_YEAR * t.inputs.utilisation)
    tok_s = per_day = cost = None
    if tok_s_per_gpu is not None:
        if tok_s_per_gpu <= 0:
            raise HierroError(f"tokens/s per accelerator must be > 0, got {tok_s_per_gpu}")
        tok_s = n * tok_s_per_gpu
        per_day = tok_s * _SECONDS_PER_DAY * t.inputs.utilisation
        cost = usd_per_mtok(price, tok_s_per_gpu)
    return Purchase(
        label=inst.label,
        kind=inst.kind,
        gpu_id=t.inputs.gpu_id,
        amount_usd=inst.amount_usd,
        usd_per_gpu_hour=price,
        gpu_hours=hours,
        accelerators=n,
        utility_W=n * t.all_in_W,
        capex_usd=n * t.capex_usd,
        term_years=inst.term_years,
        deploy_years=inst.deploy_years,
        tok_s=tok_s,
        tokens_per_day=per_day,
        usd_per_mtok=cost,
    )


@dataclass(frozen=True)
class Valuation:
    """Pre- and post-money, each new investor's stake and the dilution of existing holders."""

    pre_money_usd: float
    new_money_usd: float
    post_money_usd: float
    stakes: tuple[tuple[str, float], ...]
    """(holder, share of the company after the round), new investors then existing holders."""

    @property
    def dilution(self) -> float:
        """Share of the company existing holders give up: new money / post-money."""
        return self.new_money_usd / self.post_money_usd


def valuation(
    pre_money_usd: float,
    investments: Mapping[str, float],
    existing: Mapping[str, float] | None = None,
) -> Valuation:
    """Post-money = pre + new money; stake = money / post; ``existing`` holders' pre-round
    fractions (summing to 1; default one holder "existing") scale by pre / post."""
    if not (pre_money_usd > 0 and math.isfinite(pre_money_usd)):
        raise HierroError(f"pre-money valuation must be > 0 USD, got {pre_money_usd}")
    for name, usd in investments.items():
        if not (usd >= 0 and math.isfinite(usd)):
            raise HierroError(f"investment of {name!r} must be >= 0 USD, got {usd}")
    holders = dict(existing) if existing is not None else {"existing": 1.0}
    if any(f < 0 for f in holders.values()) or not math.isclose(sum(holders.values()), 1.0, rel_tol=1e-9):
        raise HierroError(f"existing stakes must be >= 0 and sum to 1, got {sum(holders.values()):g}")
    new = sum(investments.values())
    post = pre_money_usd + new
    stakes = [(k, v / post) for k, v in investments.items()]
    stakes += [(k, f * pre_money_usd / post) for k, f in holders.items()]
    return Valuation(pre_money_usd, new, post, tuple(stakes))


@dataclass(frozen=True)
class RoundPlan:
    """A round spread across instruments, with totals and (optionally) its valuation."""

    round_usd: float
    purchases: tuple[Purchase, ...]
    valuation: Valuation | None

    @property
    def gpu_hours(self) -> float:
        return sum(p.gpu_hours for p in self.purchases)

    @property
    def utility_W(self) -> float:
        return sum(p.utility_W for p in self.purchases)

    @property
    def accelerators(self) -> float:
        return sum(p.accelerators for p in self.purchases)


def plan_round(
    round_usd: float,
    instruments: Sequence[Instrument],
    *,
    tok_s_per_gpu: Mapping[str, float] | None = None,
    pre_money_usd: float | None = None,
    investor: str = "investor",
) -> RoundPlan:
    """Buy with each instrument; their amounts must add up to ``round_usd``. ``tok_s_per_gpu``
    maps an accelerator id to tokens/s per accelerator at the SLO."""
    if not (round_usd > 0 and math.isfinite(round_usd)):
        raise HierroError(f"round must be > 0 USD, got {round_usd}")
    total = sum(i.amount_usd for i in instruments)
    if not math.isclose(total, round_usd, rel_tol=1e-9):
        raise HierroError(f"instruments add up to ${total:,.0f}, not the round's ${round_usd:,.0f}")
    tps = tok_s_per_gpu or {}
    purchases = tuple(buy(i, tps.get(i.tco.inputs.gpu_id)) for i in instruments)
    val = valuation(pre_money_usd, {investor: round_usd}) if pre_money_usd is not None else None
    return RoundPlan(round_usd, purchases, val)
