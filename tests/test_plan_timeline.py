"""Deployment timeline: purchases online from the month the allocation says (owned) or their
start (rented) until their term ends, training runs held for their wall-clock time, the month
demand is met, and the tokens delivered over the horizon (``schedule`` on hand-built
purchases, and on the allocation's, no search)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hierro.econ import tco_for
from hierro.plan import Scenario, scenario_from_dict
from hierro.plan.allocate import HOURS_PER_MONTH, Need, Source, State, Take, fill
from hierro.plan.install import Installer
from hierro.plan.timeline import Rate, Timeline, build_outs, ramps, schedule

GPU = "h100-sxm"
OWNED = tco_for(GPU, "neocloud-owned")
RENTED = tco_for(GPU, "rental-3yr")
RATE = Rate(tok_s=2000.0, out_tok_s=400.0, req_s=1.0)
H = 48.0


def _scenario(start: float = 6.0, term: float = 2.0, power_MW: float = 10.0, first: float = 5.0,
              rate: float = 2.0) -> Scenario:
    return scenario_from_dict({
        "name": "t",
        "capital": {"round_usd": 1e9, "instruments": [
            {"kind": "cash_equity", "label": "cash", "amount_usd": 0.6e9},
            {"kind": "compute_contract", "label": "contract", "amount_usd": 0.4e9, "gpu": GPU, "start_month": start,
             "term_years": term},
        ]},
        "valuation": {"pre_money_usd": 4e9, "investors": {"fund": 1e9}},
        "accelerators": [{"id": GPU, "supply_per_quarter": [400, 400, 400, 400]}],
        "sites": [{"name": "hall", "power_MW": power_MW, "first_power_months": first, "build_MW_per_month": rate}],
    })


def _sources(start: float = 6.0, term: float = 2.0) -> list[Source]:
    return [Source(0, "cash", "cash_equity", None, GPU, 0, OWNED, 4.0),
            Source(1, "contract", "compute_contract", None, GPU, None, RENTED, term, start)]


def _held(purpose: str, source: int, n: float, month: float, end: float) -> Take:
    return Take(purpose, source, GPU, n, month, end, (end - month) * HOURS_PER_MONTH, 0.0, 0.0, "need")


def _run(start: float = 6.0, term: float = 2.0, run_months: float | None = 2.0,
         run_month: int = 9) -> tuple[Timeline, Scenario]:
    s = _scenario(start, term)
    end = min(start + 12 * term, H)
    takes = [_held("chat", 1, 300.0, start, end), _held("chat", 0, 200.0, 8, H), _held("chat", 0, 200.0, 10, H),
             Take("run", 0, GPU, 100.0, run_month, None, 0.0, 0.0, 0.0, "need"),
             Take("run", 0, GPU, 100.0, run_month + 2, None, 0.0, 0.0, 0.0, "need"),
             _held("growth pool", 0, 256.0, 12, H)]
    rates: dict[str, dict[str, Rate]] = {"chat": {GPU: RATE}, "growth pool": {GPU: RATE}}
    tl = schedule(takes, _sources(start, term), s, [10e6], rates, peaks={"chat": 700.0}, runs={"run": run_months},
                  demand={"chat": (500.0, 1000.0)})
    return tl, s


def test_rented_online_within_its_term_owned_from_its_month() -> None:
    tl, s = _run(start=6.0, term=2.0)
    rented = next(t for t in tl.tranches if t.purpose == "chat" and t.site is None)
    assert rented.first_month == rented.full_month == 6 and rented.end_month == 30
    assert all(v == 0 for v in rented.online[:6]) and all(v == 300 for v in rented.online[6:30])
    assert all(v == 0 for v in rented.online[30:])  # the term is over
    owned = next(t for t in tl.tranches if t.purpose == "chat" and t.site is not None)
    assert owned.first_month == 8 and owned.full_month == 10 and owned.end_month is None
    assert owned.online[9] == 200 and owned.online[-1] == 400
    # the peak (700 req/s at 1 req/s per accelerator) is carried from month 10 to month 30
    assert dict(tl.demand_met)["chat"] == 10 and tl.served_month == 10
    (_, tokens, at_peak), = tl.delivered
    assert at_peak == pytest.approx(20.0)
    # served req/s = 500 x min(1, capacity / 700): 0 until 6, 300 until 8, 500 until 10, 700 until 30, then 400
    req_months = (0 * 6 + 300 * 2 + 500 * 2 + 700 * 20 + 400 * 18) / 700 * 500
    assert tokens == pytest.approx(req_months * 1000 * HOURS_PER_MONTH * 3600)
    assert len(tl.months) - 1 >= s.horizon_years * 12


def test_training_holds_its_cluster_then_leaves() -> None:
    tl, _ = _run(run_months=2.0, run_month=9)
    run = next(t for t in tl.tranches if t.purpose == "run")
    (_, begin, end), = tl.training
    assert begin == 11 and end == pytest.approx(13.0)  # when the whole cluster is online
    assert run.first_month == 9 and run.full_month == 11
    assert all(v == 0 for v in run.online[:11]) and run.online[11] == 200 and all(v == 0 for v in run.online[13:])
    unfunded, _ = _run(run_months=None)
    assert unfunded.training == (("run", None, None),)


def test_a_run_past_its_rented_term_never_starts() -> None:
    s = _scenario(start=0.0, term=1.0)
    takes = [Take("run", 1, GPU, 100.0, 0.0, None, 0.0, 0.0, 0.0, "need"),
             Take("run", 0, GPU, 100.0, 11, None, 0.0, 0.0, 0.0, "need")]
    tl = schedule(takes, _sources(0.0, 1.0), s, [10e6], {}, peaks={}, runs={"run": 2.0})
    assert tl.training == (("run", None, None),)  # would run 11-13, the contract ends at 12


@settings(max_examples=40, deadline=None)
@given(pieces=st.lists(st.tuples(st.integers(0, 1), st.floats(1, 500), st.floats(0, 60), st.floats(0.5, 60)),
                       min_size=1, max_size=6))
def test_capacity_and_tokens_follow_the_purchases(pieces: list[tuple[int, float, float, float]]) -> None:
    s = _scenario()
    takes = [_held("chat", k, n, month if k else math.floor(month), month + length if k else H)
             for k, n, month, length in pieces]
    tl = schedule(takes, _sources(), s, [10e6], {"chat": {GPU: RATE}}, peaks={"chat": 700.0}, runs={},
                  demand={"chat": (500.0, 1000.0)})
    for t in tl.months:
        on = sum(x.accelerators for x in takes
                 if x.month <= t + 1e-9 and (_sources()[x.source].owned or t < (x.end_month or 0) - 1e-9))
        assert tl.accelerators[t] == pytest.approx(on)
        assert tl.tokens_per_day[t] == pytest.approx(on * RATE.tok_s * 86400)
    (_, tokens, at_peak), = tl.delivered
    assert 0 <= at_peak <= H
    assert 0 <= tokens <= 500.0 * 1000 * H * HOURS_PER_MONTH * 3600 * (1 + 1e-9)


@settings(max_examples=25, deadline=None)
@given(first=st.floats(0, 20), delay=st.floats(0, 20), rate=st.floats(0.5, 50))
def test_later_power_never_meets_demand_earlier(first: float, delay: float, rate: float) -> None:
    def met(first_power: float) -> int | None:
        s = _scenario(power_MW=10.0, first=first_power, rate=rate)
        srcs = _sources()
        site_W = [10e6]
        st_ = State.start([1e9, 0.0], {GPU: 1600.0}, site_W, H, Installer(ramps(s), build_outs(s, site_W)))
        takes, _, _ = fill(Need("chat", ((GPU, 700.0),)), srcs, st_)
        tl = schedule(takes, srcs, s, site_W, {"chat": {GPU: RATE}}, peaks={"chat": 700.0}, runs={})
        return dict(tl.demand_met)["chat"]

    a, b = met(first), met(first + delay)
    if b is not None:
        assert a is not None and b >= a
