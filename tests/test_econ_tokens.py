"""Token economics: InferenceX's formulas, energy per token, the input/output allocation, margins."""

from __future__ import annotations

import pytest

import hierro
from hierro.econ import (
    api_price,
    joules_per_token,
    margin_vs,
    tco_for,
    token_economics,
    tokens_per_s_per_mw,
    usd_per_mtok,
)
from hierro.errors import HierroError
from hierro.units import HOUR, MEGA


@pytest.fixture(scope="module")
def est() -> hierro.Estimate:
    sm = hierro.StepModel(hierro.get_model("llama-3.1-8b"), hierro.get_accelerator("h100-sxm"), hierro.Plan(tp=1))
    return hierro.estimate(sm, isl=1024, osl=256, concurrency=32)


def test_usd_per_mtok_is_inferencex_formula() -> None:
    # InferenceX useThroughputData.ts: costPerHour / ((tps * 3600) / 1_000_000)
    assert usd_per_mtok(2.0, 1000.0) == 2.0 / ((1000.0 * 3600) / 1_000_000)


def test_inferencex_anchor_arithmetic() -> None:
    """InferenceMAX blog (2025-10-09): gpt-oss-120B at 90 tok/s/user, H100 0.9M tok/s per all-in MW;
    InferenceX constants: H100 all-in 1.73 kW, hyperscaler tier $1.30/GPU-h. tok/s per GPU follows
    from tokens_per_s_per_MW = tps x 1000 / kW, and $/Mtok from the cost formula."""
    kw, per_mw, usd_h = 1.73, 0.9e6, 1.30
    tps = per_mw * kw / 1000
    assert tps == pytest.approx(1557.0)
    assert tokens_per_s_per_mw(tps, kw * 1000) == pytest.approx(per_mw)
    assert usd_per_mtok(usd_h, tps) == pytest.approx(1.30 / (1557.0 * 3600 / 1e6))
    assert usd_per_mtok(usd_h, tps) == pytest.approx(0.2319, abs=1e-4)
    # B200 at 2.8M tok/s/MW and 2.17 kW, $1.95/GPU-h: ~3.1x the tokens per GPU of H100
    b200_tps = 2.8e6 * 2.17 / 1000
    assert usd_per_mtok(1.95, b200_tps) < usd_per_mtok(usd_h, tps)


def test_joules_per_token() -> None:
    # InferenceX: joules_per_token = power_kW_per_gpu * 1000 / tput_per_gpu
    assert joules_per_token(1730.0, 1557.0) == pytest.approx(1.73 * 1000 / 1557.0)
    # the reciprocal of tokens per joule = tokens/s per W
    assert joules_per_token(1730.0, 1557.0) == pytest.approx(MEGA / tokens_per_s_per_mw(1557.0, 1730.0))


def test_token_economics_conserves_cost(est: hierro.Estimate) -> None:
    t = tco_for("h100-sxm")
    te = token_economics(est, t)
    assert 0 < te.input_cost_share < 1
    per_request = (est.isl * te.usd_per_mtok_input + est.osl * te.usd_per_mtok_output) / MEGA
    assert per_request == pytest.approx(te.usd_per_request)
    assert te.usd_per_request == pytest.approx(t.usd_per_gpu_hour * est.devices / HOUR / est.req_s)
    assert te.usd_per_mtok_output_only == pytest.approx(usd_per_mtok(t.usd_per_gpu_hour, est.out_tok_s_per_gpu))
    assert te.usd_per_mtok_output < te.usd_per_mtok_output_only
    assert te.usd_per_mtok_cached_input == pytest.approx(0.1 * te.usd_per_mtok_input)
    assert te.joules_per_output_token == pytest.approx(t.all_in_W / est.out_tok_s_per_gpu)
    assert te.output_tok_s_per_mw == pytest.approx(est.out_tok_s_per_gpu * MEGA / t.all_in_W)


@pytest.mark.parametrize("preset", ["hyperscaler-owned", "neocloud-owned", "rental-3yr", "on-demand"])
def test_higher_power_price_never_lowers_cost_per_token(est: hierro.Estimate, preset: str) -> None:
    lo = token_economics(est, tco_for("h100-sxm", preset, {"power_usd_per_kwh": 0.04}))
    hi = token_economics(est, tco_for("h100-sxm", preset, {"power_usd_per_kwh": 0.12}))
    assert hi.usd_per_mtok_output >= lo.usd_per_mtok_output
    assert hi.usd_per_mtok_input >= lo.usd_per_mtok_input


def test_margin_vs_dated_api_price(est: hierro.Estimate) -> None:
    te = token_economics(est, tco_for("h100-sxm"))
    price = api_price("gpt-5-mini")
    assert price.as_of == "2025-08-07"
    m = margin_vs(te, price)
    revenue = (est.isl * 0.25 + est.osl * 2.0) / MEGA
    assert m.revenue_usd_per_request == pytest.approx(revenue)
    assert m.cost_usd_per_request == pytest.approx(te.usd_per_request)
    assert m.margin == pytest.approx(1 - te.usd_per_request / revenue)
    cached = margin_vs(te, "gpt-5", cached_fraction=0.5)
    assert cached.revenue_usd_per_request < margin_vs(te, "gpt-5").revenue_usd_per_request


def test_bad_token_input(est: hierro.Estimate) -> None:
    with pytest.raises(HierroError, match="tokens/s per GPU must be > 0"):
        usd_per_mtok(2.0, 0.0)
    with pytest.raises(HierroError, match="estimate is on h100-sxm but the TCO is for b200"):
        token_economics(est, tco_for("b200"))
    with pytest.raises(HierroError, match="unknown api price 'gpt-9'"):
        api_price("gpt-9")
    with pytest.raises(HierroError, match="cached_fraction"):
        margin_vs(token_economics(est, tco_for("h100-sxm")), "gpt-5", cached_fraction=2.0)
