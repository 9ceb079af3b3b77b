"""Build-out of a campus and supply ramps: the sourced defaults reproduce their anchors, curves are
monotone and bounded, bad input raises one line; margin arithmetic against an API price."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hierro.econ import api_price, build_out, finance, margin_at, supply_ramp
from hierro.errors import HierroError


def test_defaults_are_sourced_and_reproduce_abilene() -> None:
    fin = finance()
    for f in (fin.dc_first_power_months, fin.dc_build_MW_per_month):
        assert f.value and len(f.source) > 20 and f.as_of
    assert "switchgear" in fin.dc_first_power_months.source  # C&W 2025 lead time, 46-48 weeks
    # Stargate Abilene: construction June 2024, the full 1.2 GW targeted for mid-2026 (24 months)
    abilene = build_out(1.2e9)
    assert abilene.full_power_month == pytest.approx(24.0, abs=0.05)
    assert abilene.sources and abilene.online_W(abilene.first_power_month) == 0.0
    # gridreadiness.com: building 18-24 months (a 1 GW campus at the default rate)
    assert 18 <= build_out(1e9).full_power_month <= 24


def test_build_out_shape() -> None:
    b = build_out(500e6, start_month=-6, first_power_months=4, build_MW_per_month=50)
    assert b.first_power_month == -2 and b.full_power_month == pytest.approx(8)
    assert b.online_W(-3) == 0 and b.online_W(0) == pytest.approx(100e6) and b.online_W(20) == 500e6
    assert b.sources == ()  # nothing defaulted


def test_supply_ramp_shape() -> None:
    y = supply_ramp(per_year=120_000)
    assert y.total == 120_000 and y.delivered(0) == 0
    assert y.delivered(6) == pytest.approx(60_000) and y.delivered(12) == y.delivered(40) == pytest.approx(120_000)
    q = supply_ramp(per_quarter=[10, 20, 30], first_month=2)
    assert q.delivered(2) == 0 and q.delivered(5) == pytest.approx(10) and q.delivered(6.5) == pytest.approx(20)
    assert q.delivered(11) == pytest.approx(60) and q.last_month == 11


@given(
    power=st.floats(1e6, 5e9), start=st.floats(-48, 48), first=st.floats(0, 36), rate=st.floats(1, 500),
    a=st.floats(-60, 120), b=st.floats(-60, 120),
)
def test_build_out_is_monotone_and_bounded(power: float, start: float, first: float, rate: float,
                                           a: float, b: float) -> None:
    x = build_out(power, start_month=start, first_power_months=first, build_MW_per_month=rate)
    lo, hi = sorted((a, b))
    assert 0 <= x.online_W(lo) <= x.online_W(hi) <= power


@given(qs=st.lists(st.floats(0, 1e6), min_size=1, max_size=12), first=st.floats(0, 24),
       a=st.floats(-5, 80), b=st.floats(-5, 80))
def test_supply_is_monotone_and_bounded(qs: list[float], first: float, a: float, b: float) -> None:
    r = supply_ramp(per_quarter=qs, first_month=first)
    lo, hi = sorted((a, b))
    assert 0 <= r.delivered(lo) <= r.delivered(hi) <= r.total * (1 + 1e-12)
    assert r.delivered(r.last_month) == pytest.approx(r.total)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: build_out(-1.0), "site power"),
        (lambda: build_out(1e9, build_MW_per_month=0), "build rate must be > 0"),
        (lambda: build_out(1e9, first_power_months=-1), "first power must be >= 0"),
        (lambda: supply_ramp(), "per year or per quarter"),
        (lambda: supply_ramp(100, [1, 2]), "per year or per quarter"),
        (lambda: supply_ramp(per_quarter=[1, -2]), "deliveries must be"),
        (lambda: supply_ramp(10, first_month=-1), "first delivery month"),
    ],
)
def test_bad_deployment_input(call: object, match: str) -> None:
    with pytest.raises(HierroError, match=match) as err:
        call()  # type: ignore[operator]
    assert "\n" not in str(err.value)


def test_margin_at_is_revenue_less_cost() -> None:
    api = api_price("deepseek-v3.2")  # $0.28 in, $0.42 out, $0.028 cached (2025-12-09)
    m = margin_at(api, 2000, 1000, 0.05, 0.20)
    revenue = (2000 * 0.28 + 1000 * 0.42) / 1e6
    cost = (2000 * 0.05 + 1000 * 0.20) / 1e6
    assert m.revenue_usd_per_request == pytest.approx(revenue)
    assert m.margin == pytest.approx(1 - cost / revenue)
    assert m.output_margin == pytest.approx(1 - 0.20 / 0.42)
    cached = margin_at(api, 2000, 1000, 0.05, 0.20, usd_per_mtok_cached_input=0.005, cached_fraction=0.5)
    assert cached.revenue_usd_per_request == pytest.approx((1000 * 0.28 + 1000 * 0.028 + 1000 * 0.42) / 1e6)
    with pytest.raises(HierroError, match="cached_fraction"):
        margin_at(api, 10, 10, 0.1, 0.1, cached_fraction=2)
