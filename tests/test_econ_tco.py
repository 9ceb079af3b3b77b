"""TCO per accelerator-hour: annuity arithmetic, public tiers, monotonicity, sourced defaults, bad input."""

from __future__ import annotations

import statistics

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from hierro.catalog import accelerator_files
from hierro.econ import (
    annuity_per_year,
    capital_recovery_factor,
    finance,
    presets,
    straight_line_per_year,
    tco,
    tco_for,
    tco_inputs,
    tier,
)
from hierro.econ.schema import OwnedPreset
from hierro.errors import HierroError

GPUS = ("h100-sxm", "h200-sxm", "b200", "mi300x")


# --- capital recovery ---------------------------------------------------------------------


def test_crf_known_value() -> None:
    # r(1+r)^n/((1+r)^n-1) at r = 10%, n = 4: 0.1 x 1.4641 / 0.4641
    assert capital_recovery_factor(0.10, 4) == pytest.approx(0.1 * 1.4641 / 0.4641, rel=1e-12)


@given(r=st.floats(1e-4, 0.5), n=st.floats(1, 30), capital=st.floats(1.0, 1e12))
def test_annuity_exceeds_straight_line_when_capital_costs(r: float, n: float, capital: float) -> None:
    assert annuity_per_year(capital, r, n) > straight_line_per_year(capital, n)


@pytest.mark.parametrize("n", [1, 4, 6, 15])
def test_annuity_is_straight_line_at_zero_rate(n: float) -> None:
    assert annuity_per_year(1e6, 0.0, n) == pytest.approx(straight_line_per_year(1e6, n))


# --- public tiers ---------------------------------------------------------------------------


def test_h100_first_principles_in_public_range() -> None:
    """The range $1.30-2.50/GPU-h: SemiAnalysis' InferenceX tiers for H100 (hyperscaler-owned and
    3-yr rental $1.30, neocloud-owned $1.69; constants.ts @77ca49a) up to the LessWrong worked
    example's at-cost $2.3/H100-hour (reference.yaml inference_anchors)."""
    b = tco_for("h100-sxm")  # default assumptions
    assert 1.30 <= b.usd_per_gpu_hour <= 2.50
    h = tco_for("h100-sxm", "hyperscaler-owned")
    assert 1.30 <= h.usd_per_gpu_hour < b.usd_per_gpu_hour


@pytest.mark.parametrize("gpu", GPUS)
def test_owned_tiers_within_a_factor_of_semianalysis(gpu: str) -> None:
    # a loose band; the 15% anchor needs SemiAnalysis' chip prices, which are not public
    for preset in ("hyperscaler-owned", "neocloud-owned"):
        b = tco_for(gpu, preset)
        assert b.tier_usd_per_gpu_hour is not None
        assert 0.7 < b.usd_per_gpu_hour / b.tier_usd_per_gpu_hour < 1.5, preset


# SemiAnalysis' owner tiers from first principles under ONLY their stated assumptions (4-year life,
# all-in utility kW per GPU, $/GPU-hour of an available GPU) plus sourced figures for the rest
# (presets semianalysis-*). Where the 15% anchor of issue 6 fails, the test is a strict xfail naming
# the unstated assumption; nothing is tuned to pass.
_HW_PRICE = (
    "unstated input: the hardware price a hyperscaler pays. At the sourced list/system price ({price}) with "
    "CoreWeave's 5.9% IG-backed debt as cost of capital and O&M left out, the tier is {over}; within 15% needs "
    "<= {need} per GPU, below every price in ../shared/data/reference ({lowest}). No sourced figure closes it: "
    "SemiAnalysis' cluster TCO note (2026-04-20) puts a hyperscaler at 1.10x a gold-tier neocloud at equal GPU "
    "price, so their costh < costn must come from the GPU price or cost of capital, neither of which they publish"
)
_SEMIANALYSIS_15PCT = [
    pytest.param("h100-sxm", "semianalysis-hyperscaler", marks=pytest.mark.xfail(strict=True, reason=_HW_PRICE.format(
        price="DGX H100 $33,600", over="+26% ($1.64 vs $1.30)", need="$30,100",
        lowest="lowest: HGX H100 $31,905, 2025-01")),
    ),
    pytest.param("h200-sxm", "semianalysis-hyperscaler", marks=pytest.mark.xfail(strict=True, reason=_HW_PRICE.format(
        price="HGX H200 $33,821", over="+17% ($1.65 vs $1.41)", need="$33,150",
        lowest="lowest: HGX H200 $33,821, 2024-03")),
    ),
    pytest.param("b200", "semianalysis-hyperscaler", marks=pytest.mark.xfail(strict=True, reason=_HW_PRICE.format(
        price="DGX B200 $47,409", over="+18% ($2.30 vs $1.95)", need="$46,000",
        lowest="DGX B200 $47,409, 2024-12; chip $30-40k x Epoch's 1.64 server multiplier = $49-66k")),
    ),
    ("mi300x", "semianalysis-hyperscaler"),
    ("h100-sxm", "semianalysis-neocloud"),
    ("h200-sxm", "semianalysis-neocloud"),
    ("b200", "semianalysis-neocloud"),
    ("mi300x", "semianalysis-neocloud"),
]


@pytest.mark.parametrize(("gpu", "preset"), _SEMIANALYSIS_15PCT)
def test_semianalysis_tier_within_15pct_under_their_assumptions(gpu: str, preset: str) -> None:
    b = tco_for(gpu, preset)
    assert b.tier_usd_per_gpu_hour is not None
    assert b.usd_per_gpu_hour / b.tier_usd_per_gpu_hour == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize("gpu", GPUS)
def test_semianalysis_presets_use_only_stated_or_sourced_inputs(gpu: str) -> None:
    t = tier(gpu)
    assert t is not None
    for preset in ("semianalysis-hyperscaler", "semianalysis-neocloud"):
        x = tco_inputs(gpu, preset)
        assert x.it_life_years == 4  # SemiAnalysis: 4-year economic life
        assert x.utilisation == 1.0  # $/GPU-hour of an available GPU
        assert x.it_W * x.pue == pytest.approx(t.all_in_W_per_gpu)  # their all-in utility kW per GPU
        assert x.om_share_per_year == 0.0 and "not stated" in x.source("om_share_per_year")
        for name in ("price_usd", "network_share", "pue", "power_usd_per_kwh", "wacc", "dc_capex_usd_per_mw"):
            assert len(x.source(name)) > 10, (preset, name)
        p = presets()[preset]
        assert isinstance(p, OwnedPreset) and "not stated" in p.note.lower()


def test_semianalysis_presets_rise_with_power_price() -> None:
    for preset in ("semianalysis-hyperscaler", "semianalysis-neocloud"):
        lo = tco_for("b200", preset, {"power_usd_per_kwh": 0.03}).usd_per_gpu_hour
        hi = tco_for("b200", preset, {"power_usd_per_kwh": 0.12}).usd_per_gpu_hour
        assert hi > lo


@pytest.mark.parametrize("gpu", GPUS)
def test_rental_3yr_is_the_semianalysis_tier(gpu: str) -> None:
    t = tier(gpu)
    assert t is not None
    assert tco_for(gpu, "rental-3yr").usd_per_gpu_hour == pytest.approx(t.rental_3yr_usd_per_gpu_hour)


def test_on_demand_is_the_catalog_median() -> None:
    listed = [p.usd_per_hour for p in accelerator_files()["h100-sxm"].cloud_prices if p.tier == "on_demand"]
    assert tco_for("h100-sxm", "on-demand").usd_per_gpu_hour == pytest.approx(statistics.median(listed))
    aws = tco_inputs("h100-sxm", "on-demand", provider="aws")
    assert aws.rental_usd_per_gpu_hour == pytest.approx(12.29)


def test_components_add_up() -> None:
    b = tco_for("b200", "neocloud-owned")
    assert sum(v for _, v in b.components()) == pytest.approx(b.usd_per_gpu_hour)
    assert b.capex_usd == pytest.approx(b.it_capex_usd + b.facility_capex_usd)


def test_chip_basis_applies_the_server_multiplier() -> None:
    x = tco_inputs("mi300x")
    assert x.price_basis == "chip"
    server = tco(x).it_capex_usd * (1 - x.network_share - x.storage_share)
    assert server == pytest.approx(x.price_usd * x.server_multiplier)


# --- monotonicity ---------------------------------------------------------------------------


def _cost(**over: float) -> float:
    return tco_for("h100-sxm", None, over).usd_per_gpu_hour


@settings(max_examples=30)
@given(a=st.floats(0.0, 0.5), b=st.floats(0.0, 0.5))
def test_tco_rises_with_power_price(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert _cost(power_usd_per_kwh=lo) <= _cost(power_usd_per_kwh=hi)


@pytest.mark.parametrize(
    ("name", "lo", "hi"),
    [("price_usd", 20e3, 40e3), ("pue", 1.1, 1.6), ("wacc", 0.0, 0.15), ("dc_capex_usd_per_mw", 9.3e6, 15e6)],
)
def test_tco_rises_with_costs(name: str, lo: float, hi: float) -> None:
    assert _cost(**{name: lo}) < _cost(**{name: hi})


def test_tco_falls_with_utilisation_and_life() -> None:
    assert _cost(utilisation=0.5) > _cost(utilisation=0.8) > _cost(utilisation=1.0)
    assert _cost(it_life_years=3) > _cost(it_life_years=6)
    assert tco_for("h100-sxm", "rental-3yr", {"utilisation": 0.5}).usd_per_gpu_hour == pytest.approx(2.6)


# --- sourced defaults -----------------------------------------------------------------------


def test_every_default_has_a_source_and_date() -> None:
    fin = finance()
    for name, item in fin:
        figs = item.values() if isinstance(item, dict) else [item]
        for f in figs:
            assert f.value is not None and len(f.source) > 10 and f.as_of, name
    x = tco_inputs("h100-sxm")
    for name in ("price_usd", "it_W", "pue", "power_usd_per_kwh", "wacc", "it_life_years", "utilisation"):
        assert x.source(name), name


def test_presets_resolve() -> None:
    ps = presets()
    assert set(ps) == {
        "hyperscaler-owned", "neocloud-owned", "rental-3yr", "on-demand",
        "semianalysis-hyperscaler", "semianalysis-neocloud",
    }
    assert sum(isinstance(p, OwnedPreset) for p in ps.values()) == 4


def test_override_is_marked() -> None:
    x = tco_inputs("h100-sxm", None, {"pue": 1.4})
    assert x.pue == 1.4
    assert x.source("pue") == "override"


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gpu", "preset", "over", "match"),
    [
        ("h100-sxm", None, {"price_usd": -1.0}, "price_usd must be > 0"),
        ("h100-sxm", None, {"utilisation": 1.2}, "utilisation must be in"),
        ("h100-sxm", None, {"power_usd_per_kwh": -0.01}, "power_usd_per_kwh must be >= 0"),
        ("h100-sxm", None, {"wacc": 1.5}, "wacc must be in"),
        ("h100-sxm", None, {"pue": 0.9}, "pue must be in"),
        ("h100-sxm", None, {"bogus": 1.0}, "unknown TCO input 'bogus'"),
        ("h100-sxm", "cheap", {}, "unknown preset 'cheap'"),
        ("h100-sxmx", None, {}, "unknown gpu 'h100-sxmx'"),
        ("mi355x", None, {}, "no purchase price for 'mi355x'"),
        ("mi300x", "on-demand", {}, "no on-demand price"),
        ("a100-sxm-80g", "rental-3yr", {}, "no SemiAnalysis 3-year rental tier"),
    ],
)
def test_bad_input_raises_one_line(gpu: str, preset: str | None, over: dict[str, float], match: str) -> None:
    with pytest.raises(HierroError, match=match) as err:
        tco_for(gpu, preset, over)
    assert "\n" not in str(err.value)


def test_crf_rejects_bad_rates() -> None:
    with pytest.raises(HierroError):
        capital_recovery_factor(-0.1, 4)
    with pytest.raises(HierroError):
        capital_recovery_factor(0.1, 0)


# --- command ----------------------------------------------------------------------------------


def _app() -> typer.Typer:
    from hierro.cli.tco import tco_cmd

    app = typer.Typer()
    app.command()(tco_cmd)
    return app


def test_tco_command_json_and_table() -> None:
    import json

    runner = CliRunner()
    r = runner.invoke(_app(), ["--gpu", "b200", "--preset", "neocloud-owned", "--power-price", "0.06", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["gpu"] == "b200" and d["inputs"]["power_usd_per_kwh"] == {"value": 0.06, "source": "override"}
    assert d["usd_per_gpu_hour"] == pytest.approx(sum(d["components_usd_per_gpu_hour"].values()))
    r = runner.invoke(_app(), ["--gpu", "h100-sxm"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    for text in ("server", "facility", "power", "total", "Cushman", "SemiAnalysis"):
        assert text in r.stdout, text


def test_tco_command_bad_input_raises() -> None:
    r = CliRunner().invoke(_app(), ["--utilisation", "1.5"])
    assert isinstance(r.exception, HierroError)
