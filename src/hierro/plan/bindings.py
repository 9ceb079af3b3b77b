"""Which constraint binds, in words with its numbers: money, power or supply for a need the
allocation left short, and the one that binds the plan as a whole."""

from __future__ import annotations

from collections.abc import Sequence

from hierro.plan.allocate import Source, State
from hierro.plan.result import Binding, Constraint
from hierro.plan.scenario import Scenario
from hierro.units import MEGA

__all__ = ["GROWTH", "describe", "primary"]

GROWTH = "growth pool"


def _at_limit(st: State, s: Scenario) -> str:
    """Other limits reached, as context for a binding constraint."""
    full = [x.label for x, w0, w in zip(s.sites, st.site_W, st.power_W, strict=True) if w0 > 0 and w <= 1e-6 * w0]
    capped = [g for g, left in st.supply.items() if left <= 1e-6 * max(st.caps[g], 1.0)]
    bits = ([f"sites full: {', '.join(full)}"] if full else []) + ([f"supply caps reached: {', '.join(capped)}"] if capped else [])
    return f" ({'; '.join(bits)})" if bits else ""


def _core(c: Constraint, scope: str, st: State, sources: Sequence[Source], s: Scenario, gpus: Sequence[str]) -> str:
    left = sum(st.money)
    if c == "money":
        usable = {src.instrument for src in sources if src.gpu in gpus}
        return (f"money binds {scope}: every instrument that can buy {', '.join(gpus)} is spent "
                f"(${sum(st.amounts[i] - st.money[i] for i in usable) / 1e9:,.2f}B); "
                f"${left / 1e9:,.2f}B of the round is left")
    horizon = f"month {st.horizon_months:g}"
    if c == "power":
        parts = [f"{st_.label} {(w0 - w) / MEGA:,.0f}/{w0 / MEGA:,.0f} MW"
                 for st_, w0, w in zip(s.sites, st.site_W, st.power_W, strict=True)]
        return (f"power binds {scope}: owned capacity fills the sites, or the halls energised by {horizon} "
                f"({'; '.join(parts) or 'no site'}); ${left / 1e9:,.2f}B of the round is left")
    parts = [f"{g} {st.caps[g] - st.supply[g]:,.0f}/{st.caps[g]:,.0f}" for g in gpus if g in st.caps]
    return (f"supply binds {scope}: accelerators taken/cap, or delivered by {horizon} ({'; '.join(parts)}); "
            f"${left / 1e9:,.2f}B of the round is left")


def describe(c: Constraint, scope: str, st: State, sources: Sequence[Source], s: Scenario,
             gpus: Sequence[str]) -> str:
    """``c`` binding ``scope`` (a model, a run, the growth pool), with the numbers that show it."""
    return _core(c, scope, st, sources, s, gpus) + _at_limit(st, s)


def primary(bindings: Sequence[Binding], left: float, s: Scenario) -> Binding:
    """The constraint that binds the plan: a requirement left short first, else the growth pool."""
    for b in bindings:
        if b.scope != GROWTH:
            return b
    for b in bindings:
        return b
    return Binding("none", "plan", f"nothing binds: every model is served at peak and every run funded; "
                   f"${left / 1e9:,.2f}B of ${s.capital.round_usd / 1e9:,.2f}B is kept as cash")
