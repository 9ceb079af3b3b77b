"""Demand curves: diurnal days, CSV curves, the validated demand options, and the fleet a
recommendation needs in every slot of a curve."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hierro.errors import HierroError
from hierro.search import (
    Demand,
    DemandSpec,
    SearchRequest,
    SearchResult,
    SearchSpace,
    curve_fleet,
    diurnal,
    load_curve,
    parse_slos,
    search,
)
from hierro.search.demand import demand_from

SPACE = SearchSpace(gpus=("h100-sxm",), weight_dtypes=("fp8",), kv_dtypes=("fp8",), max_devices=8, max_pp=1,
                    concurrency_step=2.0, max_batched_tokens=(8192,))
SLOS = parse_slos(["ttft_p99=1.5s", "tpot_p99=50ms"])


def test_diurnal_day_peaks_at_its_hour_and_keeps_the_mean() -> None:
    c = diurnal(3.0, 1.5, peak_hour=14)
    assert len(c) == 24
    assert max(c) == pytest.approx(4.5) and c.index(max(c)) == 14
    assert sum(c) / 24 == pytest.approx(3.0)
    assert min(c) == pytest.approx(1.5) and c.index(min(c)) == 2
    assert min(diurnal(1.0, 2.0)) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(HierroError, match=r"peak-to-mean ratio in \[1, 2\].*--demand-curve"):
        diurnal(1.0, 2.5)


def test_demand_spec_sources() -> None:
    # a flat peak rate
    assert DemandSpec(qps=20).demand(2048, 512) == Demand(20.0, 0.1)
    # a diurnal day whose peak slot is the given rate
    d = DemandSpec(qps=20, peak_to_mean=1.5, peak_hour=3.5).demand(2048, 512)
    assert len(d.curve) == 24 and d.peak_req_s == pytest.approx(20.0) and max(d.curve) == d.peak_req_s
    assert d.mean_req_s < d.peak_req_s
    # a daily token volume: mean = tokens / 86400 s / (isl + osl), peak = mean x peak-to-mean
    tpd = 1e10
    flat = DemandSpec(tokens_per_day=tpd).demand(2048, 512)
    assert flat.peak_req_s == pytest.approx(tpd / 86400 / 2560) and not flat.curve
    day = DemandSpec(tokens_per_day=tpd, peak_to_mean=1.4).demand(2048, 512)
    assert day.mean_req_s == pytest.approx(flat.peak_req_s)
    assert day.peak_req_s == pytest.approx(1.4 * flat.peak_req_s)
    # an inline curve is sized at its peak
    c = DemandSpec(curve=(1.0, 5.0, 2.0), headroom=0.2).demand(1, 1)
    assert (c.peak_req_s, c.headroom, c.curve) == (5.0, 0.2, (1.0, 5.0, 2.0))


@pytest.mark.parametrize(("spec", "match"), [
    ({}, "give exactly one of qps, tokens_per_day, curve or curve_file"),
    ({"qps": 1, "tokens_per_day": 1e9}, r"exactly one .* \(got qps, tokens_per_day\)"),
    ({"qps": -1}, "qps: Input should be greater than 0"),
    ({"qps": 5, "peak_to_mean": 3}, "peak_to_mean: Input should be less than or equal to 2"),
    ({"curve": [1, 2], "peak_hour": 3}, "peak_hour shape a diurnal day; a curve has its own shape"),
    ({"curve": [0, 0]}, "not all zero"),
    ({"qps": 5, "burst": 2}, "burst: Extra inputs are not permitted"),
])
def test_bad_demand_is_one_line(spec: dict[str, object], match: str) -> None:
    with pytest.raises(HierroError, match=match) as e:
        demand_from(spec, 2048, 512, "demand options")
    assert "\n" not in str(e.value) and str(e.value).startswith("demand options: ")


def test_load_curve_csv(tmp_path: Path) -> None:
    p = tmp_path / "day.csv"
    p.write_text("hour,req_s\n0,2\n1,4.5\n2,3\n", encoding="utf-8")
    assert load_curve(p) == (2.0, 4.5, 3.0)
    d = DemandSpec(curve_file=Path("day.csv")).demand(1, 1, base_dir=tmp_path)
    assert d.curve == (2.0, 4.5, 3.0) and d.peak_req_s == 4.5
    p.write_text("hour,req_s\n0,2\n1,-4\n", encoding="utf-8")
    with pytest.raises(HierroError, match=r"day.csv: line 3: req_s: Input should be greater than or equal to 0"):
        load_curve(p)
    p.write_text("hour,rate\n0,2\n", encoding="utf-8")
    with pytest.raises(HierroError, match="no req_s column"):
        load_curve(p)
    with pytest.raises(HierroError, match="does not exist"):
        load_curve(tmp_path / "missing.csv")


def test_demand_checks_its_curve() -> None:
    with pytest.raises(HierroError, match="is not the curve's largest rate"):
        Demand(3.0, 0.1, (1.0, 2.0))
    with pytest.raises(HierroError, match="zero in every slot"):
        Demand.from_curve([0.0, 0.0])


@pytest.fixture(scope="module")
def result() -> SearchResult:
    day = diurnal(30.0, 1.8, peak_hour=10)
    req = SearchRequest("llama-3.1-8b", 2048, 256, Demand.from_curve(day), SLOS, space=SPACE, sim_top=3,
                        sim_requests=800, top=3)
    return search(req)


def test_curve_fleet_sizes_the_peak_and_follows_the_day(result: SearchResult) -> None:
    f = curve_fleet(result)
    best = result.best
    assert f.slots == 24 and f.peak_slot == 10
    assert f.replicas_per_slot[f.peak_slot] == best.replicas == max(f.replicas_per_slot)
    assert f.held_gpus == best.gpus
    assert f.held_usd_per_hour == pytest.approx(best.fleet_usd_per_hour)
    assert f.held_MW == pytest.approx(best.fleet_MW)
    assert f.mean_gpus < f.held_gpus and 0 < f.utilisation < 1
    assert f.mean_usd_per_hour < f.held_usd_per_hour
    # at least one replica in the quietest slot, and no more replicas for less demand
    pairs = sorted(zip(f.curve_req_s, f.replicas_per_slot, strict=True))
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(pairs))
    assert min(f.replicas_per_slot) >= 1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.0, 40.0), min_size=1, max_size=30).filter(lambda c: max(c) > 0))
def test_curve_fleet_is_monotone_and_covers_every_slot(result: SearchResult, curve: list[float]) -> None:
    res = replace(result, request=replace(result.request, demand=Demand.from_curve(curve)))
    f = curve_fleet(res)
    per = float(res.table.req_s[res.best.row])
    for v, r in zip(curve, f.replicas_per_slot, strict=True):
        assert r >= 1
        assert r * per >= v * 1.1 * (1 - 1e-9)  # carries the slot with headroom
        assert r == 1 or (r - 1) * per < v * 1.1  # and no replica more than that
    assert f.held_gpus == max(f.gpus_per_slot)
    assert f.utilisation <= 1.0 + 1e-12
    assert math.isclose(f.mean_gpus, sum(f.gpus_per_slot) / len(curve))
