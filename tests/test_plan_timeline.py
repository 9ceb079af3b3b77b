"""Deployment timeline: rented capacity at its start, owned capacity within energised power and
delivered supply, monotone capacity, training runs held for their wall-clock time, and the month
demand is met (``schedule`` on hand-built allocations, no search)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hierro.econ import build_out, supply_ramp, tco_for
from hierro.plan import Scenario, scenario_from_dict
from hierro.plan.allocate import Source, Take
from hierro.plan.timeline import Rate, Timeline, schedule

GPU = "h100-sxm"
OWNED = tco_for(GPU, "neocloud-owned")
RENTED = tco_for(GPU, "rental-3yr")
RATE = Rate(tok_s=2000.0, out_tok_s=400.0, req_s=1.0)


def _scenario(start: float, power_MW: float, first: float, rate: float, quarters: list[float]) -> Scenario:
    return scenario_from_dict({
        "name": "t",
        "capital": {"round_usd": 1e9, "instruments": [
            {"kind": "cash_equity", "label": "cash", "amount_usd": 0.6e9},
            {"kind": "compute_contract", "label": "contract", "amount_usd": 0.4e9, "gpu": GPU, "start_month": start},
        ]},
        "valuation": {"pre_money_usd": 4e9, "investors": {"fund": 1e9}},
        "accelerators": [{"id": GPU, "supply_per_quarter": quarters}],
        "sites": [{"name": "hall", "power_MW": power_MW, "first_power_months": first, "build_MW_per_month": rate}],
    })


def _sources() -> list[Source]:
    return [Source(0, "cash", "cash_equity", None, GPU, 0, OWNED, 4.0),
            Source(1, "contract", "compute_contract", None, GPU, None, RENTED, 3.0)]


def _take(purpose: str, source: int, n: float) -> Take:
    return Take(purpose, source, GPU, n, 1000.0, 1000.0, 1e6, "need")


def _run(start: float = 6.0, first: float = 5.0, rate: float = 2.0, rented: float = 300.0,
         owned: tuple[float, float, float] = (500.0, 400.0, 256.0), quarters: list[float] | None = None,
         peak: float = 700.0, run_months: float | None = 2.0) -> tuple[Timeline, Scenario]:
    chat, train, growth = owned
    need_W = (chat + train + growth) * OWNED.all_in_W
    s = _scenario(start, need_W / 1e6 * 1.0001, first, rate, quarters or [400, 400, 400, 400])
    takes = [_take("chat", 1, rented), _take("chat", 0, chat), _take("run", 0, train), _take("growth pool", 0, growth)]
    rates: dict[str, dict[str, Rate]] = {"chat": {GPU: RATE}, "growth pool": {GPU: RATE}}
    tl = schedule(takes, _sources(), s, [need_W * 1.0001], rates, peaks={"chat": peak},
                  runs={"run": run_months})
    return tl, s


def _by(tl: Timeline, purpose: str, site: bool) -> list[Any]:
    return [t for t in tl.tranches if t.purpose == purpose and (t.site is not None) == site]


def test_rented_online_at_its_start_owned_after_first_power() -> None:
    tl, s = _run(start=6.0, first=5.0)
    rented = _by(tl, "chat", site=False)[0]
    assert rented.first_month == rented.full_month == 6
    assert all(v == 0 for v in rented.online[:6]) and rented.online[6] == 300
    owned = _by(tl, "chat", site=True)[0]
    assert owned.first_month is not None and owned.first_month > 5  # no power before month 5
    # demand (700 req/s at 1 req/s per accelerator) needs the contract and 400 owned units
    cap = [r + o for r, o in zip(rented.online, owned.online, strict=True)]
    met = dict(tl.demand_met)["chat"]
    assert met is not None and cap[met] >= 700 and all(c < 700 for c in cap[:met])
    assert tl.served_month == met
    assert len(tl.months) - 1 >= s.horizon_years * 12


def test_training_holds_its_cluster_then_leaves() -> None:
    tl, _ = _run()
    run = _by(tl, "run", site=True)[0]
    (_, begin, end), = tl.training
    assert begin is not None and end is not None
    assert begin == run.full_month and end == pytest.approx(begin + 2.0)
    assert all(v == 0 for v in run.online[math.ceil(end):])
    assert run.online[begin] == pytest.approx(400)
    unfunded, _ = _run(run_months=None)
    assert unfunded.training == (("run", None, None),)


@settings(max_examples=40, deadline=None)
@given(
    start=st.floats(0, 24), first=st.floats(0, 30), rate=st.floats(0.05, 50),
    rented=st.floats(0, 2000), owned=st.tuples(st.floats(1, 800), st.floats(1, 800), st.floats(1, 800)),
    quarters=st.lists(st.floats(50, 1000), min_size=1, max_size=6),
)
def test_owned_capacity_stays_within_power_and_deliveries(
    start: float, first: float, rate: float, rented: float, owned: tuple[float, float, float], quarters: list[float],
) -> None:
    total = sum(quarters)
    scale = min(1.0, total / max(sum(owned) + rented, 1e-9))  # the allocation respects the supply cap
    owned = (owned[0] * scale, owned[1] * scale, owned[2] * scale)
    tl, _ = _run(start, first, rate, rented * scale, owned, quarters, run_months=1.5)
    site = build_out(sum(owned) * OWNED.all_in_W * 1.0001, first_power_months=first, build_MW_per_month=rate)
    ramp = supply_ramp(per_quarter=quarters)
    installed = [0.0] * len(tl.months)  # owned accelerators installed (training included, before it ends)
    for tr in tl.tranches:
        if tr.site is None:
            continue
        for t in tl.months:
            installed[t] += tr.online[t]
    rented_online = [sum(tr.online[t] for tr in tl.tranches if tr.site is None) for t in tl.months]
    for t in tl.months:
        assert installed[t] * OWNED.all_in_W <= site.online_W(t) * (1 + 1e-9) + 1e-6
        assert installed[t] <= ramp.delivered(t) + 1e-6
        if t > 0 and installed[t] > installed[t - 1] + 1e-9:  # owned installs only from deliveries rented left
            assert installed[t] + rented_online[t] <= ramp.delivered(t) + 1e-6
    for tr in tl.tranches:
        if tr.purpose != "run":
            assert all(b >= a - 1e-9 for a, b in zip(tr.online, tr.online[1:], strict=False))
            assert tr.full_month is not None  # power and supply suffice, so everything comes online
        assert tl.months[-1] >= (tr.full_month or 0)
    for t in tl.months:
        assert tl.tokens_per_day[t] == pytest.approx(
            sum(tr.online[t] for tr in tl.tranches if tr.purpose != "run") * RATE.tok_s * 86400)


@settings(max_examples=25, deadline=None)
@given(first=st.floats(0, 20), delay=st.floats(0, 20), rate=st.floats(0.5, 50))
def test_later_power_never_meets_demand_earlier(first: float, delay: float, rate: float) -> None:
    early, _ = _run(start=0.0, first=first, rate=rate)
    late, _ = _run(start=0.0, first=first + delay, rate=rate)
    a, b = dict(early.demand_met)["chat"], dict(late.demand_met)["chat"]
    assert a is not None and b is not None and b >= a
