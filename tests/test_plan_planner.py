"""``plan``: the default round end to end and its internal consistency, monotonicity in money,
and each binding constraint (latency, power, supply, money) named with its numbers."""

from __future__ import annotations

from typing import Any

import pytest

from hierro.plan import PlanResult, Scenario, default_scenario, plan, scenario_from_dict


@pytest.fixture(scope="module")
def default_plan() -> PlanResult:
    return plan(default_scenario())


def test_default_plan_is_consistent(default_plan: PlanResult) -> None:
    r = default_plan
    assert r.spent_usd + r.left_usd == pytest.approx(r.round_usd, rel=1e-9)
    assert sum(i.spent_usd for i in r.instruments) == pytest.approx(r.spent_usd, rel=1e-9)
    for i in r.instruments:
        assert -1.0 <= i.left_usd <= i.amount_usd + 1.0
    # power: owned accelerators x all-in W fit each site
    for s in r.sites:
        assert s.used_MW <= s.power_MW * (1 + 1e-9)
    owned = [f for m in r.models for f in m.fleet] + [f for t in r.training for f in t.fleet] + list(r.growth)
    for s in r.sites:
        assert sum(f.MW for f in owned if f.site == s.label) == pytest.approx(s.used_MW, rel=1e-6, abs=1e-6)
    for u in r.supply:
        if u.cap is not None:
            assert u.used <= u.cap * (1 + 1e-9)
    # every model served at peak within its SLOs
    for m in r.models:
        assert m.served_fraction == pytest.approx(1.0)
        assert m.capacity_req_s >= m.peak_req_s
        slo = dict(m.slos)
        assert m.ttft_p99_s is not None and m.ttft_p99_s <= slo["ttft_p99"]
        assert m.tpot_p99_s is not None and m.tpot_p99_s <= slo["tpot_p99"]
        assert m.usd_per_mtok_output is not None and m.usd_per_mtok_input is not None
        assert 0 < m.usd_per_mtok_input < m.usd_per_mtok_output
        assert m.fleet_usd_per_mtok_output is not None and m.fleet_usd_per_mtok_output >= m.usd_per_mtok_output
        assert 0 < m.utilisation_peak <= 1
    for t in r.training:
        assert t.funded_fraction == pytest.approx(1.0) and t.plan is not None
        assert t.wall_clock_days <= 90
    stakes = dict(r.valuation.stakes)
    assert sum(stakes.values()) == pytest.approx(1.0)
    assert r.valuation.post_money_usd == pytest.approx(600e9)
    assert r.implied_pre_money_usd == pytest.approx(730e9)
    assert r.binding.constraint in ("money", "power", "supply")
    # when it comes online: every model's peak is carried in some month, the timeline covers the horizon
    tl = r.timeline
    assert r.served_month is not None and len(tl.months) - 1 >= 48
    # a rental is online only within its term: at month 47 owned capacity and the 4-year contract, not the credits
    last = [i.accelerators for i in r.instruments if i.kind == "cash_equity" or i.term_years * 12 > 47]
    assert tl.accelerators[47] == pytest.approx(sum(last) - sum(t.gpus for t in r.training), rel=1e-6)
    assert max(tl.accelerators) <= r.accelerators * (1 + 1e-9) and max(tl.MW) <= r.MW * (1 + 1e-9)
    for t in r.training:
        assert t.start_month is not None and t.end_month == pytest.approx(t.start_month + t.wall_clock_days / 30.4375)
    # per instrument: tokens at the SLO point, effective $/Mtok, time to deploy
    for i in r.instruments:
        assert i.tokens_per_day == pytest.approx(i.peak_tok_s * 86400)
        assert i.full_online_month is not None and i.first_online_month is not None
        if i.kind != "cash_equity":
            assert i.first_online_month == 0  # the default's credits and contract start at once
    cash = [i for i in r.instruments if i.kind == "cash_equity"]
    assert all(i.full_online_month is not None and i.full_online_month > 0 for i in cash)  # halls and deliveries
    # time-consistent: the 2-year credits pay for 24 months of each accelerator they rent, no more
    credits = next(i for i in r.instruments if i.kind == "cloud_credits")
    assert credits.gpu_hours == pytest.approx(credits.accelerators * 24 * 730.5, rel=1e-9)
    assert credits.spent_usd == pytest.approx(credits.amount_usd, rel=1e-6)
    # cash pays for fewer hours than four years of what it buys: it comes online later
    for i in cash:
        assert i.gpu_hours < i.accelerators * 48 * 730.5
    # tokens over the horizon: the serving fleets hold to the horizon's end from month 0, so both bases agree
    for m in r.models:
        assert m.peak_months == pytest.approx(48.0) and m.horizon_tokens == pytest.approx(
            m.mean_req_s * (m.isl + m.osl) * 48 * 730.5 * 3600, rel=1e-9)
        assert m.horizon_usd_per_mtok == pytest.approx(m.fleet_usd_per_mtok, rel=1e-6)
    assert r.horizon_usd_per_mtok == pytest.approx(r.steady_usd_per_mtok, rel=1e-6)
    # margins against the named dated API prices
    by = {m.name: m for m in r.models}
    assert by["consumer assistant"].api is not None and by["consumer assistant"].api.model == "deepseek-v3.2"
    for m in r.models:
        assert m.margin is not None and m.margin_slo_point is not None and m.online_month is not None
        assert m.margin.margin <= m.margin_slo_point.margin  # the fleet at mean load costs more per token


def _small(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "name": "small",
        "horizon_years": 4,
        "capital": {"round_usd": 1e9, "instruments": [
            {"kind": "cash_equity", "label": "cash", "investor": "fund", "amount_usd": 0.6e9},
            {"kind": "compute_contract", "label": "contract", "investor": "cloud", "amount_usd": 0.4e9,
             "gpu": "h100-sxm"},
        ]},
        "valuation": {"pre_money_usd": 4e9, "investors": {"fund": 0.6e9, "cloud": 0.4e9}},
        "accelerators": [{"id": "h100-sxm", "supply_per_year": 20000}],
        "sites": [{"name": "hall", "power_MW": 30}],
        "models": [{"name": "chat", "model": "llama-3.1-8b",
                    "demand": {"tokens_per_day": 5e10, "isl": 1000, "osl": 250, "peak_to_mean": 1.5},
                    "slo": {"ttft_p99": "1s", "tpot_p99": "50ms"}}],
        "planner": {"sim_top": 2, "sim_rounds": 2},
    }
    for k, v in over.items():
        d[k] = v
    return d


def _scaled(d: dict[str, Any], f: float) -> Scenario:
    cap = dict(d["capital"])
    cap["round_usd"] = d["capital"]["round_usd"] * f
    cap["instruments"] = [{**i, "amount_usd": i["amount_usd"] * f} for i in d["capital"]["instruments"]]
    val = {**d["valuation"], "investors": {k: v * f for k, v in d["valuation"]["investors"].items()}}
    return scenario_from_dict({**d, "capital": cap, "valuation": val})


def test_more_money_never_buys_less() -> None:
    d = _small(sites=[{"name": "hall", "power_MW": 1000}], accelerators=[{"id": "h100-sxm"}])
    last_acc = last_served = -1.0
    for f in (0.001, 0.01, 0.1, 1.0, 3.0):
        r = plan(_scaled(d, f))
        served = r.models[0].served_fraction
        assert r.accelerators >= last_acc - 1e-6 and served >= last_served - 1e-9, f
        assert r.spent_usd + r.left_usd == pytest.approx(r.round_usd)
        last_acc, last_served = r.accelerators, served
    assert last_served == pytest.approx(1.0)


def test_impossible_slo_binds_latency() -> None:
    d = _small()
    d["models"][0]["slo"] = {"ttft_p99": "1s", "tpot_p99": "0.1ms"}
    r = plan(scenario_from_dict(d))
    assert r.binding.constraint == "latency" and r.binding.scope == "chat"
    assert "tpot_p99" in r.binding.detail and r.models[0].served_fraction == 0


def test_small_power_binds_power() -> None:
    d = _small(sites=[{"name": "hall", "power_MW": 0.01}])
    d["capital"]["instruments"] = [{"kind": "cash_equity", "label": "cash", "investor": "fund", "amount_usd": 1e9}]
    d["valuation"]["investors"] = {"fund": 1e9}
    d["capital"]["invest_surplus"] = False
    r = plan(scenario_from_dict(d))
    assert r.binding.constraint == "power" and r.binding.scope == "chat"
    assert "hall 0/0 MW" in r.binding.detail and "of the peak is served" in r.binding.detail
    assert 0 < r.models[0].served_fraction < 1
    assert r.sites[0].used_MW == pytest.approx(0.01)
    assert r.left_usd > 0


def test_contract_start_and_site_build_set_when_demand_is_met() -> None:
    d = _small(sites=[{"name": "hall", "power_MW": 30, "first_power_months": 4, "build_MW_per_month": 10}])
    d["capital"]["instruments"][0]["amount_usd"] = 0.9995e9
    # a small contract lasting past the horizon's end (months 6-54): cash builds the rest
    d["capital"]["instruments"][1].update(start_month=6, amount_usd=0.5e6, term_years=4)
    d["valuation"]["investors"] = {"fund": 0.9995e9, "cloud": 0.5e6}
    d["capital"]["invest_surplus"] = False
    r = plan(scenario_from_dict(d))
    contract = next(i for i in r.instruments if i.kind == "compute_contract")
    cash = next(i for i in r.instruments if i.kind == "cash_equity")
    assert contract.first_online_month == contract.full_online_month == 6
    assert cash.first_online_month is not None and cash.first_online_month >= 5  # first power at month 4
    m = r.models[0]
    assert m.served_fraction == pytest.approx(1.0) and m.online_month is not None and m.online_month >= 5
    assert r.served_month == m.online_month
    assert m.api is None and m.margin is None  # no api_price named
    for i in (contract, cash):
        if i.peak_tok_s > 0:
            assert i.usd_per_mtok is not None and i.usd_per_mtok > 0


def test_supply_and_money_bind() -> None:
    d = _small(accelerators=[{"id": "h100-sxm", "supply_per_year": 10}])
    r = plan(scenario_from_dict(d))
    assert r.binding.constraint == "supply" and "h100-sxm 10/10" in r.binding.detail
    r = plan(_scaled(_small(), 1e-4))
    assert r.binding.constraint == "money" and r.left_usd == pytest.approx(0.0, abs=1.0)
    assert 0 < r.models[0].served_fraction < 1


def test_credits_serve_only_within_their_term() -> None:
    d = _small()
    d["capital"]["instruments"] = [{"kind": "cloud_credits", "label": "credits", "investor": "cloud",
                                    "amount_usd": 1e9, "gpu": "h100-sxm", "term_years": 1}]
    d["valuation"]["investors"] = {"cloud": 1e9}
    d["capital"]["invest_surplus"] = False
    r = plan(scenario_from_dict(d))
    m, credits = r.models[0], r.instruments[0]
    assert m.served_fraction == pytest.approx(1.0) and m.online_month == 0
    assert m.peak_months == pytest.approx(12.0)  # the credits' year, then nothing serves it
    hours = 12 * 730.5
    assert m.horizon_tokens == pytest.approx(m.mean_req_s * (m.isl + m.osl) * hours * 3600, rel=1e-9)
    assert credits.gpu_hours == pytest.approx(credits.accelerators * hours, rel=1e-9)
    assert m.usd == pytest.approx(credits.spent_usd) and r.left_usd > 0  # a year of the fleet, not four
    assert m.horizon_usd_per_mtok == pytest.approx(m.fleet_usd_per_mtok, rel=1e-6)
    tl = r.timeline
    assert tl.accelerators[11] == pytest.approx(m.accelerators) and tl.accelerators[12] == 0
