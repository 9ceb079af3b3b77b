"""The greedy allocation on hand-built sources (no search): money, supply and power are never
exceeded, spending adds up per instrument, and more money never buys less."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hierro.econ import tco_for
from hierro.plan.allocate import Need, Source, State, fill, held_hours

GPU = "h100-sxm"
SOURCES = [
    Source(0, "credits", "cloud_credits", None, GPU, None, tco_for(GPU, "on-demand"), 2.0),
    Source(1, "contract", "compute_contract", None, GPU, None, tco_for(GPU, "rental-3yr"), 3.0),
    Source(2, "cash", "cash_equity", None, GPU, 0, tco_for(GPU, "neocloud-owned"), 4.0),
]
money = st.floats(0, 5e8)


def _allocate(amounts: list[float], units: float, cap: float, site_W: float) -> tuple[State, float, float]:
    st_ = State.start(amounts, {GPU: cap}, [site_W])
    serve, met, _ = fill(Need("chat", ((GPU, units),), held_hours(4.0)), SOURCES, st_)
    growth, _, _ = fill(Need("growth pool", ((GPU, units),), held_hours(4.0), unlimited=True), SOURCES, st_)
    spent = [sum(t.usd for t in serve + growth if SOURCES[t.source].instrument == i) for i in range(3)]
    for i, a in enumerate(amounts):
        assert spent[i] + st_.money[i] == pytest.approx(a, rel=1e-9, abs=1.0)  # adds up per instrument
        assert st_.money[i] >= -1.0
    total = sum(t.accelerators for t in serve + growth)
    assert total <= cap * (1 + 1e-9)
    owned_W = sum(t.accelerators * SOURCES[t.source].W for t in serve + growth if SOURCES[t.source].owned)
    assert owned_W <= site_W * (1 + 1e-9)
    return st_, met, total


@settings(max_examples=60, deadline=None)
@given(a=st.lists(money, min_size=3, max_size=3), factor=st.floats(1.0, 10.0), units=st.floats(1, 5e4),
       cap=st.floats(1, 1e5), site_MW=st.floats(0.1, 200))
def test_more_money_never_buys_less(a: list[float], factor: float, units: float, cap: float, site_MW: float) -> None:
    _, met_lo, n_lo = _allocate(a, units, cap, site_MW * 1e6)
    _, met_hi, n_hi = _allocate([x * factor for x in a], units, cap, site_MW * 1e6)
    assert met_hi >= met_lo - 1e-9
    assert n_hi >= n_lo * (1 - 1e-9) - 1e-6
