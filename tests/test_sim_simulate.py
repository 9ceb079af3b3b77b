"""The serving simulator: conservation, Little's law, determinism, closed form = step by step,
agreement with the analytic estimate, load response, preemption and prefix caching."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from hierro.perf import StepModel, estimate
from hierro.sim import (
    Fixed,
    SimError,
    SimResult,
    Slo,
    StepTime,
    UniformRatio,
    Workload,
    simulate,
    synthetic,
    to_csv,
    to_parquet,
    tpot_s,
)
from hierro.specs import Plan, get_accelerator, get_model


@cache
def sm70() -> StepModel:
    return StepModel(get_model("llama-3.1-70b"), get_accelerator("h100-sxm"), Plan(tp=8))


def poisson(n: int, rate: float, seed: int = 1, isl: int = 2048, osl: int = 512) -> Workload:
    return synthetic(n, UniformRatio(isl, 0.5), UniformRatio(osl, 0.5), np.random.default_rng(seed), rate=rate)


def check_conservation(res: SimResult, wl: Workload) -> None:
    r = res.records
    assert len(r) == len(wl)
    assert sorted(r["id"].tolist()) == list(range(len(wl)))  # each request exactly once
    assert np.all(np.isfinite(r["finish_s"]))
    assert int(r["output_tokens"].sum()) == int(wl.output_tokens.sum())
    assert np.all(r["first_scheduled_s"] >= r["arrival_s"])
    assert np.all(r["first_token_s"] > r["first_scheduled_s"])
    assert np.all(r["finish_s"] >= r["first_token_s"])
    assert 0.0 < res.kv_peak_fraction <= 1.0  # KV blocks never exceed capacity


def test_conservation_and_determinism() -> None:
    wl = poisson(1500, 6.0)
    a = simulate(sm70(), wl, replicas=2, router="least_outstanding", seed=5)
    b = simulate(sm70(), wl, replicas=2, router="least_outstanding", seed=5)
    check_conservation(a, wl)
    assert a.records.tobytes() == b.records.tobytes()
    assert a == b  # every summary field


def test_littles_law_on_a_long_run() -> None:
    wl = poisson(6000, 6.0, seed=2)
    r = simulate(sm70(), wl).records
    a, z = float(r["arrival_s"][1000]), float(r["arrival_s"][5000])  # a window in steady state
    overlap = np.clip(np.minimum(r["finish_s"], z) - np.maximum(r["arrival_s"], a), 0.0, None)
    in_system = overlap.sum() / (z - a)  # time-average number in the system
    inside = (r["arrival_s"] >= a) & (r["arrival_s"] < z)
    lam = inside.sum() / (z - a)
    W = float(np.mean(r["finish_s"][inside] - r["arrival_s"][inside]))
    assert in_system == pytest.approx(lam * W, rel=0.02)


@pytest.mark.parametrize("kv_blocks", [None, 2600])
def test_closed_form_decode_equals_step_by_step(kv_blocks: int | None) -> None:
    wl = poisson(800, 7.0, seed=3)
    fast = simulate(sm70(), wl, kv_blocks=kv_blocks)
    slow = simulate(sm70(), wl, kv_blocks=kv_blocks, step_by_step=True)
    for f in ("first_scheduled_s", "first_token_s", "finish_s"):
        np.testing.assert_allclose(fast.records[f], slow.records[f], rtol=1e-9, atol=0)
    assert fast.preemptions == slow.preemptions
    assert fast.steps == slow.steps
    assert fast.events < slow.events


def test_closed_form_cost_grows_with_requests_not_tokens() -> None:
    wl = poisson(200, 0.5, seed=3)
    fast = simulate(sm70(), wl)
    slow = simulate(sm70(), wl, step_by_step=True)
    assert fast.steps == slow.steps
    assert fast.events < 6 * len(wl) < slow.events / 10


def test_concurrency_one_tpot_is_one_decode_step() -> None:
    isl, osl = 1024, 128
    wl = synthetic(3, Fixed(isl), Fixed(osl), np.random.default_rng(0), concurrency=1)
    res = simulate(sm70(), wl)
    st = StepTime(sm70())
    # the k-th decode of a lone request runs with isl + k - 1 tokens cached
    steps = [st.exact(0.0, 0.0, 0.0, 1.0, float(isl + k), 1.0) for k in range(osl - 1)]
    assert res.tpot.mean == pytest.approx(np.mean(steps), rel=1e-9)
    ttft = st.exact(float(isl), 1.0, 0.0, 0.0, 0.0, 1.0) + sm70().calib.request_overhead("vllm")
    assert res.ttft.mean == pytest.approx(ttft, rel=1e-9)


@pytest.mark.parametrize("concurrency", [1, 4, 8])
def test_closed_loop_agrees_with_the_estimate(concurrency: int) -> None:
    wl = synthetic(60 * concurrency + 20, Fixed(1024), Fixed(256), np.random.default_rng(0),
                   concurrency=concurrency)
    res = simulate(sm70(), wl, warmup=2 * concurrency)
    est = estimate(sm70(), isl=1024, osl=256, concurrency=concurrency)
    assert res.tpot.mean == pytest.approx(est.tpot_s, rel=0.10)
    assert res.req_s == pytest.approx(est.req_s, rel=0.10)


def test_ttft_grows_with_load_and_without_bound_past_saturation() -> None:
    means = [simulate(sm70(), poisson(1500, q, isl=1024, osl=256)).ttft.mean for q in (2.0, 6.0, 10.0)]
    assert means == sorted(means)
    over = simulate(sm70(), poisson(3000, 40.0, isl=1024, osl=256)).records  # ~3x capacity
    ttft = over["first_token_s"] - over["arrival_s"]
    assert np.mean(ttft[-500:]) > 3 * np.mean(ttft[500:1000])  # linear in arrival time


def test_preemption_when_kv_blocks_run_out() -> None:
    wl = poisson(600, 8.0, seed=4)
    res = simulate(sm70(), wl, kv_blocks=1500)
    assert res.preemptions > 0
    assert res.records["preemptions"].sum() == res.preemptions
    check_conservation(res, wl)
    roomy = simulate(sm70(), wl)
    assert roomy.preemptions == 0
    assert res.e2e.mean > roomy.e2e.mean


def shared_prefix_workload(n: int = 300) -> Workload:
    rng = np.random.default_rng(6)
    prompt = np.full(n, 4096, dtype=np.int64)
    out = np.full(n, 64, dtype=np.int64)
    # a 3072-token system prompt (6 blocks of 512) shared by all, then a private tail
    ids = [np.concatenate([np.arange(6), 1000 + 2 * i + np.arange(2)]) for i in range(n)]
    off = np.concatenate([[0], np.cumsum([len(x) for x in ids])]).astype(np.int64)
    arr = np.cumsum(rng.exponential(0.5, n))
    return Workload(prompt, out, arrival_s=arr - arr[0], hash_ids=np.concatenate(ids).astype(np.int64),
                    hash_offsets=off, hash_block_tokens=512, name="shared-prefix")


def test_prefix_caching_cuts_ttft_on_shared_prefixes() -> None:
    wl = shared_prefix_workload()
    cold = simulate(sm70(), wl, prefix_caching=False)
    warm = simulate(sm70(), wl, prefix_caching=True)
    check_conservation(warm, wl)
    assert warm.records["cached_tokens"][1:].min() == 3072
    assert warm.ttft.mean < 0.6 * cold.ttft.mean
    tight = simulate(sm70(), wl, prefix_caching=True, kv_blocks=700)  # eviction under pressure
    check_conservation(tight, wl)


def test_routers_spread_requests() -> None:
    wl = poisson(400, 8.0)
    rr = simulate(sm70(), wl, replicas=4)
    counts = np.bincount(rr.records["replica"], minlength=4)
    assert counts.max() - counts.min() <= 1
    lo = simulate(sm70(), wl, replicas=4, router="least_outstanding")
    assert lo.ttft.mean <= rr.ttft.mean * 1.05
    with pytest.raises(SimError):
        simulate(sm70(), wl, router="random-ish")


def test_mlperf_tpot_goodput_and_export(tmp_path: Path) -> None:
    wl = poisson(200, 4.0)
    res = simulate(sm70(), wl, slo=Slo(ttft_s=0.5, tpot_s=0.05), warmup=20)
    r = res.records
    i = 7
    want = (r["finish_s"][i] - r["arrival_s"][i] - (r["first_token_s"][i] - r["arrival_s"][i])) / (
        r["output_tokens"][i] - 1)
    assert tpot_s(r)[i] == pytest.approx(want)
    assert res.n_measured == 180
    assert 0 < res.goodput_req_s <= res.req_s
    out = tmp_path / "records.csv"
    to_csv(r, out)
    lines = out.read_text().splitlines()
    assert len(lines) == 201 and lines[0].startswith("id,replica,arrival_s")
    if importlib.util.find_spec("pyarrow") is None:
        with pytest.raises(SimError, match="pyarrow"):
            to_parquet(r, tmp_path / "r.parquet")
    else:
        to_parquet(r, tmp_path / "r.parquet")


def test_bad_simulation_input() -> None:
    wl = poisson(10, 1.0)
    for kw in ({"replicas": 0}, {"mem_fraction": 0.0}, {"warmup": 10}, {"kv_blocks": 10}):
        with pytest.raises(SimError):
            simulate(sm70(), wl, **kw)
    too_long = Workload(np.array([200_000]), np.array([10]), arrival_s=np.array([0.0]))
    with pytest.raises(SimError, match="context"):
        simulate(sm70(), too_long)
