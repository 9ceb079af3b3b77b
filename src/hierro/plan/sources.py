"""The ways the scenario's money can buy accelerators, priced: one source per (instrument,
accelerator, site) for cash equity, one per rented instrument (:mod:`hierro.plan.allocate`).

* cash equity: the owner preset's TCO on each site, with the site's power price and PUE and
  the scenario's purchase price of the accelerator (an accelerator with no purchase price
  cannot be bought with cash, unless the instrument names it, which is an error);
* cloud credits: list price less the discount, or a negotiated price, over the credits' term;
* a compute contract: the contract price (default: the 3-year rental tier) over its term.
"""

from __future__ import annotations

from hierro.econ import MONTHS_PER_YEAR, rental, site, tco_for
from hierro.errors import HierroError
from hierro.plan.allocate import Source
from hierro.plan.scenario import CashEquity, CloudCredits, Scenario
from hierro.units import MEGA

__all__ = ["site_power_W", "sources"]


def site_power_W(s: Scenario) -> list[float]:
    """Utility power of each site: the scenario's ``power_MW``, else the catalog campus's."""
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


def sources(s: Scenario) -> list[Source]:
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
                out.append(Source(i, label, inst.kind, investor, inst.gpu, None, r.tco, inst.term_years,
                                  inst.start_month))
        except HierroError as err:
            raise HierroError(f"instrument {label!r}: {err}") from None
    return out
