"""The greedy allocation on hand-built sources (no search): money, supply and power are never
exceeded, spending adds up per instrument, each unit is paid for only while it is online within
the horizon (owned from its delivery and energised hall, rented within its term), more money
never buys less, and a higher power price never lowers the cost of a token."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hierro.econ import TcoBreakdown, build_out, supply_ramp, tco_for
from hierro.plan.allocate import HOURS_PER_MONTH, Need, Source, State, Take, fill
from hierro.plan.install import Installer

GPU = "h100-sxm"
H = 48.0
TOK_S = 2000.0  # tokens/s per accelerator at the SLO point, for the cost of a token


def _sources(owned: TcoBreakdown | None = None, credit_term: float = 2.0, contract_start: float = 6.0,
             contract_term: float = 3.0) -> list[Source]:
    return [
        Source(0, "credits", "cloud_credits", None, GPU, None, tco_for(GPU, "on-demand"), credit_term),
        Source(1, "contract", "compute_contract", None, GPU, None, tco_for(GPU, "rental-3yr"), contract_term,
               contract_start),
        Source(2, "cash", "cash_equity", None, GPU, 0, owned or tco_for(GPU, "neocloud-owned"), 4.0),
    ]


def _state(amounts: list[float], cap: float, site_MW: float, first: float = 3.0, rate_MW: float = 5.0) -> State:
    ramp = supply_ramp(per_quarter=[cap / 4] * 4, first_month=1.0)
    hall = build_out(site_MW * 1e6, first_power_months=first, build_MW_per_month=rate_MW)
    return State.start(amounts, {GPU: cap}, [site_MW * 1e6], H, Installer({GPU: ramp}, [hall]))


def _allocate(amounts: list[float], units: float, cap: float, site_MW: float,
              sources: list[Source] | None = None) -> tuple[State, list[Take], float]:
    srcs = sources or _sources()
    st_ = _state(amounts, cap, site_MW)
    serve, met, _ = fill(Need("chat", ((GPU, units),)), srcs, st_)
    run, _, _ = fill(Need("run", ((GPU, units / 4),), hold_months=3.0, busy_charge=False), srcs, st_)
    growth, _, _ = fill(Need("growth pool", ((GPU, units),), unlimited=True), srcs, st_)
    takes = serve + run + growth
    spent = [sum(t.usd for t in takes if srcs[t.source].instrument == i) for i in range(3)]
    for i, a in enumerate(amounts):
        assert spent[i] + st_.money[i] == pytest.approx(a, rel=1e-9, abs=1.0)  # adds up per instrument
        assert st_.money[i] >= -1.0
    assert sum(t.accelerators for t in takes) <= cap * (1 + 1e-9)
    owned = [t for t in takes if srcs[t.source].owned]
    assert sum(t.accelerators * srcs[t.source].W for t in owned) <= site_MW * 1e6 * (1 + 1e-9)
    return st_, takes, met


def _check_time(takes: list[Take], srcs: list[Source], st_: State) -> None:
    ramp = st_.installer.ramps[GPU]
    hall = st_.installer.sites[0]
    for t in takes:
        s = srcs[t.source]
        rate = s.usd_per_busy_hour * (s.tco.inputs.utilisation if t.end_month is not None else 1.0)
        assert t.usd == pytest.approx(t.accelerators * rate * t.held_hours, rel=1e-9)
        if t.end_month is None:  # a training run: its wall clock, ending within the horizon and the term
            assert t.held_hours == pytest.approx(3.0 * HOURS_PER_MONTH)
            assert t.month + 3.0 <= s.end_month(H) + 1e-9
        else:  # held: from when it is online to the end of its term or the horizon
            assert t.held_hours == pytest.approx((t.end_month - t.month) * HOURS_PER_MONTH)
            assert 0 < t.end_month - t.month <= H
        if s.owned:
            assert t.end_month in (None, H) and t.month < H
        else:
            assert t.month == s.start_month and (t.end_month is None or
                                                  t.end_month == min(s.start_month + 12 * s.term_years, H))
    # owned units come online only within delivered supply (rented units take their places first
    # when taken first) and energised power, in the order bought
    delivered = energised = 0.0
    for t in takes:
        delivered += t.accelerators
        if srcs[t.source].owned:
            energised += t.accelerators * srcs[t.source].W
            assert delivered <= ramp.delivered(t.month) + 1e-6
            assert energised <= hall.online_W(t.month) * (1 + 1e-9) + 1e-6


money = st.floats(0, 5e8)


@settings(max_examples=60, deadline=None)
@given(a=st.lists(money, min_size=3, max_size=3), factor=st.floats(1.0, 10.0), units=st.floats(1, 5e4),
       cap=st.floats(1, 1e5), site_MW=st.floats(0.1, 200))
def test_more_money_never_buys_less(a: list[float], factor: float, units: float, cap: float, site_MW: float) -> None:
    srcs = _sources()
    lo, takes_lo, met_lo = _allocate(a, units, cap, site_MW)
    hi, takes_hi, met_hi = _allocate([x * factor for x in a], units, cap, site_MW)
    _check_time(takes_lo, srcs, lo)
    _check_time(takes_hi, srcs, hi)
    assert met_hi >= met_lo - 1e-9
    n_lo, n_hi = (sum(t.accelerators for t in x) for x in (takes_lo, takes_hi))
    assert n_hi >= n_lo * (1 - 1e-9) - 1e-6


@settings(max_examples=40, deadline=None)
@given(a=st.lists(money, min_size=3, max_size=3), units=st.floats(1, 5e4), cap=st.floats(1, 1e5),
       site_MW=st.floats(0.1, 200), p=st.floats(0.0, 0.3), dp=st.floats(0.0, 0.3))
def test_higher_power_price_never_lowers_cost_per_token(a: list[float], units: float, cap: float, site_MW: float,
                                                        p: float, dp: float) -> None:
    def usd_per_mtok(price: float) -> float | None:
        srcs = _sources(tco_for(GPU, "neocloud-owned", {"power_usd_per_kwh": price}))
        _, takes, _ = _allocate(a, units, cap, site_MW, srcs)
        served = [t for t in takes if t.end_month is not None]
        tokens = sum(t.busy_hours * 3600 * TOK_S for t in served)
        return sum(t.usd for t in served) / tokens * 1e6 if tokens > 0 else None

    lo, hi = usd_per_mtok(p), usd_per_mtok(p + dp)
    if lo is not None and hi is not None:
        assert hi >= lo * (1 - 1e-9)


def test_terms_limit_what_rentals_buy() -> None:
    """A 1-year credit pays for 12 months of each unit, so its money holds 4x the units of a
    4-year hold; a contract starting at month 6 is paid from month 6; owned capacity from the
    month its hall is energised and its accelerators delivered."""
    srcs = _sources(credit_term=1.0)
    st_ = _state([1e8, 1e8, 1e8], 1e9, 1000.0, first=6.0, rate_MW=1000.0)
    takes, _, blk = fill(Need("growth pool", ((GPU, 1.0),), unlimited=True), srcs, st_)
    by = {srcs[t.source].label: t for t in takes}
    credits, contract = by["credits"], by["contract"]
    assert credits.month == 0 and credits.end_month == 12
    assert credits.accelerators == pytest.approx(1e8 / (srcs[0].usd_per_busy_hour * srcs[0].tco.inputs.utilisation
                                                        * 12 * HOURS_PER_MONTH))
    assert contract.month == 6 and contract.end_month == 42  # 3-year term from month 6
    cash = [t for t in takes if srcs[t.source].owned]
    assert cash and min(t.month for t in cash) >= 6  # first power at month 6
    assert all(t.end_month == H for t in cash)
    assert blk == "money" and sum(st_.money) == pytest.approx(0.0, abs=3.0)


def test_serving_prefers_capacity_that_lasts_to_the_horizon() -> None:
    """A fleet held to the horizon's end takes a rental whose term ends early only when nothing
    that lasts is left."""
    srcs = _sources(credit_term=1.0, contract_start=0.0, contract_term=4.0)
    st_ = _state([1e9, 1e9, 0.0], 1e9, 0.1)
    takes, met, _ = fill(Need("chat", ((GPU, 100.0),)), srcs, st_)
    assert met == 1.0 and [srcs[t.source].label for t in takes] == ["contract"]  # credits come first, but end early
    st_ = _state([1e9, 0.0, 0.0], 1e9, 0.1)
    takes, met, _ = fill(Need("chat", ((GPU, 100.0),)), srcs, st_)
    assert met == 1.0 and [srcs[t.source].label for t in takes] == ["credits"]


def test_nothing_online_within_the_horizon_is_not_bought() -> None:
    srcs = _sources()
    st_ = _state([0.0, 0.0, 1e9], 1e9, 100.0, first=H + 1)  # first power after the horizon
    takes, met, blk = fill(Need("chat", ((GPU, 10.0),)), srcs, st_)
    assert takes == [] and met == 0.0 and blk == "power"
    st_ = State.start([0.0, 0.0, 1e9], {GPU: 10.0}, [1e8], H,
                      Installer({GPU: supply_ramp(per_quarter=[10.0], first_month=H + 2)},
                                [build_out(1e8, first_power_months=0.0, build_MW_per_month=1e3)]))
    takes, met, blk = fill(Need("chat", ((GPU, 10.0),)), srcs, st_)
    assert takes == [] and blk == "supply"
