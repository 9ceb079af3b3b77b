"""Capacity and capital: MW -> accelerators -> racks -> sites, instruments, valuation arithmetic."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hierro.econ import (
    Instrument,
    RentalKind,
    buy,
    capacity_from_power,
    cash_equity,
    check_site,
    hybrid,
    plan_round,
    rental,
    site,
    sites,
    tco_for,
    valuation,
)
from hierro.errors import HierroError

# --- capacity ---------------------------------------------------------------------------------


def test_one_gw_of_gb200() -> None:
    t = tco_for("gb200")
    c = capacity_from_power(1e9, t, site_W=1.2e9)
    assert c.accelerators == math.floor(1e9 / t.all_in_W)
    assert c.racks == math.ceil(c.accelerators / 72)
    assert c.nodes == math.ceil(c.accelerators / 72)  # the NVL72 rack is the node
    assert c.sites == 1
    assert c.utility_W <= 1e9


def test_sites_catalog_is_sourced() -> None:
    ids = {s.id for s in sites()}
    assert {"project-rainier", "stargate-abilene", "xai-colossus-1"} <= ids
    assert site("project-rainier").capex_usd == 11e9  # the $11B Indiana campus
    abilene = check_site("stargate-abilene", tco_for("gb200"))
    assert abilene.reported_W_per_gpu == pytest.approx(3000.0)  # METHODS.md §9 anchor
    assert abilene.ratio > 1  # our all-in W per GPU omits what else the site powers


# --- capital ----------------------------------------------------------------------------------


def test_deepseek_v3_gpu_hours_anchor() -> None:
    """Epoch / DeepSeek-V3 report: 2.788M H800 GPU-hours at $2/GPU-hour = $5.576M."""
    p = buy(rental(5.576e6, "h800", usd_per_gpu_hour=2.0))
    assert p.gpu_hours == pytest.approx(2.788e6)


def test_instruments_add_up_to_the_round() -> None:
    parts = [
        cash_equity(50e9, "gb200"),
        *hybrid("cloud deal", [rental(20e9, "h100-sxm", usd_per_gpu_hour=2.35),
                               rental(30e9, "gb200", kind="compute_contract")]),
    ]
    plan = plan_round(100e9, parts, tok_s_per_gpu={"gb200": 3000.0}, pre_money_usd=500e9)
    assert sum(p.amount_usd for p in plan.purchases) == pytest.approx(100e9)
    assert plan.purchases[1].label == "cloud deal: cloud credits"
    cash = plan.purchases[0]
    assert cash.deploy_years > 0 and cash.capex_usd < cash.amount_usd
    assert cash.usd_per_mtok == pytest.approx(cash.usd_per_gpu_hour / (3000.0 * 3600 / 1e6))
    assert plan.purchases[1].tok_s is None  # no throughput given for h100-sxm
    assert plan.utility_W == pytest.approx(sum(p.utility_W for p in plan.purchases))
    with pytest.raises(HierroError, match="add up to"):
        plan_round(90e9, parts)


@given(a=st.floats(1e6, 1e11), b=st.floats(1e6, 1e11))
def test_more_capital_never_buys_less(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    makers: list[Callable[[float], Instrument]] = [
        cash_equity, lambda x: rental(x, "gb200", kind="compute_contract"),
        lambda x: rental(x, "h100-sxm", discount_vs_list=0.3),
    ]
    for make in makers:
        assert buy(make(lo)).gpu_hours <= buy(make(hi)).gpu_hours
        assert buy(make(lo)).utility_W <= buy(make(hi)).utility_W


def test_owned_capacity_is_cheaper_per_hour_than_list() -> None:
    assert buy(cash_equity(1e9, "h100-sxm")).gpu_hours > buy(rental(1e9, "h100-sxm")).gpu_hours


def test_rental_kinds_differ_only_in_default_price_and_term() -> None:
    listed = tco_for("h100-sxm", "on-demand").usd_per_gpu_hour
    credits = rental(1e9, "h100-sxm", discount_vs_list=0.3)
    assert credits.kind == "cloud_credits" and credits.term_years == 1.0
    assert credits.tco.usd_per_gpu_hour == pytest.approx(0.7 * listed)
    aws = rental(1e9, "h100-sxm", provider="aws")
    assert aws.tco.usd_per_gpu_hour == pytest.approx(12.29)
    contract = rental(1e9, "h100-sxm", kind="compute_contract", start_years=0.5)
    assert contract.kind == "compute_contract" and contract.term_years == 3.0 and contract.deploy_years == 0.5
    assert contract.tco.usd_per_gpu_hour == pytest.approx(tco_for("h100-sxm", "rental-3yr").usd_per_gpu_hour)
    kinds: tuple[RentalKind, ...] = ("cloud_credits", "compute_contract")
    same = [rental(1e9, "h100-sxm", kind=k, usd_per_gpu_hour=2.0, term_years=2.0) for k in kinds]
    assert buy(same[0]).gpu_hours == buy(same[1]).gpu_hours == pytest.approx(5e8)


# --- valuation --------------------------------------------------------------------------------


def test_valuation_arithmetic() -> None:
    v = valuation(500e9, {"cloud provider": 50e9, "others": 50e9}, existing={"founders": 0.4, "prior": 0.6})
    assert v.post_money_usd == v.pre_money_usd + v.new_money_usd == 600e9
    stakes = dict(v.stakes)
    assert sum(stakes.values()) == pytest.approx(1.0)
    assert stakes["cloud provider"] == pytest.approx(50 / 600)
    assert stakes["founders"] == pytest.approx(0.4 * 500 / 600)
    assert v.dilution == pytest.approx(100 / 600)


@given(pre=st.floats(1e6, 1e13), new=st.lists(st.floats(0, 1e12), min_size=1, max_size=5))
def test_stakes_sum_to_one(pre: float, new: list[float]) -> None:
    v = valuation(pre, {f"i{k}": x for k, x in enumerate(new)})
    assert v.post_money_usd == pytest.approx(pre + sum(new))
    assert sum(s for _, s in v.stakes) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: valuation(-1.0, {"a": 1.0}), "pre-money valuation must be > 0"),
        (lambda: valuation(1e9, {"a": -1.0}), "investment of 'a' must be >= 0"),
        (lambda: valuation(1e9, {"a": 1.0}, existing={"x": 0.5}), "sum to 1"),
        (lambda: cash_equity(-5.0), "amount must be a finite number >= 0"),
        (lambda: cash_equity(1e9, preset="rental-3yr"), "cash equity buys owned capacity"),
        (lambda: rental(1e9, "gb200", kind="compute_contract", term_years=0), "term must be > 0"),
        (lambda: rental(1e9, "h100-sxm", usd_per_gpu_hour=2.0, discount_vs_list=0.1), "not both"),
        (lambda: rental(1e9, "h100-sxm", discount_vs_list=1.5), "discount_vs_list must be in"),
        (lambda: rental(1e9, "gb200", kind="compute_contract", provider="aws"), "a contract has its own price"),
        (lambda: capacity_from_power(-1.0, tco_for("gb200")), "power must be"),
        (lambda: site("atlantis"), "unknown site 'atlantis'"),
    ],
)
def test_bad_capital_input(call: object, match: str) -> None:
    with pytest.raises(HierroError, match=match) as err:
        call()  # type: ignore[operator]
    assert "\n" not in str(err.value)
