"""Speculative decoding, prefill/decode disaggregation, ITL and KV time series, the
prefix-aware router."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from hierro.perf import StepModel, StepShape
from hierro.sim import (
    DecodeTable,
    Fixed,
    SimResult,
    SpecDecode,
    StepTime,
    Workload,
    expected_accepted,
    itl_mean_s,
    simulate,
    simulate_disagg,
    synthetic,
    tpot_s,
)
from hierro.specs import Plan, get_accelerator, get_model

PoissonFactory = Callable[..., Workload]
Checker = Callable[[SimResult, Workload], None]


def test_expected_accepted_tokens() -> None:
    assert expected_accepted(3, 0.0) == 1.0
    assert expected_accepted(3, 1.0) == 4.0
    assert expected_accepted(2, 0.5) == pytest.approx(1.75)  # 1 + 0.5 + 0.25


@pytest.mark.parametrize("model", ["llama-3.1-70b", "gpt-oss-120b"])
def test_spec_step_time_is_a_verification_chunk_plus_drafts(model: str) -> None:
    plan = Plan(tp=8) if model.startswith("llama") else Plan(tp=1, weight_dtype="fp4", kv_dtype="fp8")
    sm = StepModel(get_model(model), get_accelerator("h100-sxm" if model.startswith("llama") else "b200"), plan)
    k, f = 3, 0.05
    st, dt = StepTime(sm, spec_tokens=k, draft_cost=f), DecodeTable(sm, 256, spec_tokens=k, draft_cost=f)
    for B, d in ((1, 100.0), (64, 2000.0), (256, 127.5), (17, 140.0)):
        want = float(sm.time(StepShape(prefill_tokens=B * (k + 1), prefill_seqs=B, prefill_ctx=d,
                                       sampled=B * (k + 1))))
        want += k * f * float(sm.time(StepShape(decode_seqs=B, decode_ctx=d, sampled=B)))
        assert st(0.0, 0.0, 0.0, float(B), d, float(B)) == pytest.approx(want, rel=1e-9)
        assert dt.time(B, d) == pytest.approx(want, rel=1e-9)


def test_speculative_decoding_cuts_tpot_and_conserves_tokens(sm70: StepModel, sim_poisson: PoissonFactory, sim_conserved: Checker) -> None:
    wl = sim_poisson(400, 4.0, isl=1024, osl=256)
    base = simulate(sm70, wl)
    mtp = simulate(sm70, wl, spec=SpecDecode(tokens=3, acceptance=0.7))
    none = simulate(sm70, wl, spec=SpecDecode(tokens=3, acceptance=0.0))
    sim_conserved(mtp, wl)
    sim_conserved(none, wl)
    assert mtp.tpot.mean < 0.6 * base.tpot.mean  # E = 2.53 tokens a step for a dearer step
    assert none.tpot.mean > base.tpot.mean  # drafts that are never accepted only cost
    # fewer, longer gaps: a step emits E tokens
    gaps = mtp.records["token_gaps"]
    assert np.all(gaps < mtp.records["output_tokens"] - 1)


def test_spec_closed_form_equals_step_by_step_under_kv_pressure(sm70: StepModel, sim_poisson: PoissonFactory, sim_conserved: Checker) -> None:
    wl = sim_poisson(300, 7.0, seed=3)
    spec = SpecDecode(tokens=2, acceptance=0.6)
    fast = simulate(sm70, wl, spec=spec, kv_blocks=2600)
    slow = simulate(sm70, wl, spec=spec, kv_blocks=2600, step_by_step=True)
    sim_conserved(fast, wl)
    for f in ("first_token_s", "finish_s"):
        np.testing.assert_allclose(fast.records[f], slow.records[f], rtol=1e-9)
    assert fast.preemptions == slow.preemptions


def test_spec_decode_joins_with_a_roomy_last_block_keep_the_kv_books(sm70: StepModel, sim_conserved: Checker) -> None:
    """A decode instance takes a prompt whose last KV block has room for a whole phase of
    speculative steps (1 draft at 0.85: E = 1.85 tokens a step, S = 8 steps a block, and a
    1,025-token prompt leaves 15 free slots, 8 steps' worth): its blocks are counted as they
    are taken (this used to free one block more than it took)."""
    wl = synthetic(64, Fixed(1025), Fixed(200), np.random.default_rng(0), concurrency=16)
    res = simulate_disagg(sm70, sm70, wl, spec=SpecDecode(tokens=1, acceptance=0.85))
    sim_conserved(res, wl)


def test_disaggregation_conserves_and_isolates_tpot_from_prefill_load(sm70: StepModel, sim_poisson: PoissonFactory, sim_conserved: Checker) -> None:
    wl = sim_poisson(500, 5.0, isl=4096, osl=256)
    busy = simulate_disagg(sm70, sm70, wl, prefill_replicas=1, decode_replicas=1)
    roomy = simulate_disagg(sm70, sm70, wl, prefill_replicas=4, decode_replicas=1)
    sim_conserved(busy, wl)
    sim_conserved(roomy, wl)
    assert busy.mode == "disaggregated" and busy.replicas == 2
    assert busy.ttft.mean > 1.2 * roomy.ttft.mean  # the prefill pool queues
    assert busy.tpot.p50 == pytest.approx(roomy.tpot.p50, rel=0.05)  # decode does not care
    agg = simulate(sm70, wl, replicas=2)
    assert busy.tpot.p99 < agg.tpot.p99  # no prefill chunks stall the decodes


def test_kv_transfer_time_adds_to_ttft(sm70: StepModel) -> None:
    """The client sees the first token when the decode instance takes the request, after its KV
    crossed the network: the transfer shows in TTFT (and end to end), not in the decode gaps."""
    wl = synthetic(50, Fixed(8192), Fixed(16), np.random.default_rng(0), rate=0.5)
    fast = simulate_disagg(sm70, sm70, wl, transfer_bw_Bps=1e12)
    slow = simulate_disagg(sm70, sm70, wl, transfer_bw_Bps=1e9)
    kv = 8192 * 2 * 80 * 8 * 128 * 2 / 8  # tokens x (K, V) x layers x kv heads x head dim x bf16 / tp
    xfer = kv / 1e9 - kv / 1e12
    assert slow.e2e.mean - fast.e2e.mean == pytest.approx(xfer, rel=0.05)
    assert slow.ttft.mean - fast.ttft.mean == pytest.approx(xfer, rel=0.05)
    assert slow.tpot.mean == pytest.approx(fast.tpot.mean, rel=0.02)


def test_trtllm_reserves_each_requests_kv_and_never_preempts(sm70: StepModel, sim_poisson: PoissonFactory,
                                                              sim_conserved: Checker) -> None:
    """TensorRT-LLM's GUARANTEED_NO_EVICT admits a request only with the KV blocks of its whole
    length reserved: where vLLM's allocate-as-you-grow runs out and preempts, it queues instead
    (no preemption, the pool never full, the decodes that run are fewer and faster)."""
    wl = sim_poisson(600, 8.0, seed=4)
    grow, held = simulate(sm70, wl, kv_blocks=1500), simulate(sm70, wl, kv_blocks=1500, reserve_kv=True)
    sim_conserved(held, wl)
    assert grow.preemptions > 0 and held.preemptions == 0
    assert held.kv_peak_fraction < 1.0 == grow.kv_peak_fraction
    assert held.tpot.mean < grow.tpot.mean and held.ttft.mean > grow.ttft.mean
    trt = StepModel(sm70.model, sm70.accel, sm70.plan, framework="trtllm", calib=sm70.calib)
    assert simulate(trt, wl, kv_blocks=1500).preemptions == 0
    # a disaggregated TensorRT-LLM decode instance takes a handed-off request the same way
    vllm_dec = simulate_disagg(sm70, sm70, wl, 1, 1, decode_kv_blocks=1200)
    trt_dec = simulate_disagg(trt, trt, wl, 1, 1, decode_kv_blocks=1200)
    sim_conserved(trt_dec, wl)
    assert vllm_dec.preemptions > 0 and trt_dec.preemptions == 0


@pytest.mark.parametrize("mixed", [True, False])
def test_itl_and_kv_series(mixed: bool, sm70: StepModel, sim_poisson: PoissonFactory) -> None:
    """The ITL histogram holds every gap between two tokens, a prefill-only step that the
    decodes wait out (SGLang's scheduling, mixed=False) included."""
    wl = sim_poisson(600, 8.0, seed=4)
    res = simulate(sm70, wl, kv_blocks=1500, mixed=mixed)
    assert res.preemptions > 0 and res.itl is not None and res.series is not None
    r = res.records
    mean = itl_mean_s(r)
    # without speculation the mean gap is the MLPerf TPOT
    np.testing.assert_allclose(mean, tpot_s(r), rtol=1e-9)
    assert np.all(r["itl_max_s"] >= mean * (1 - 1e-9))
    assert res.itl.p50 <= res.itl.p99 <= res.itl.max
    assert res.itl.mean == pytest.approx(float(np.sum(mean * r["token_gaps"]) / np.sum(r["token_gaps"])), rel=1e-6)
    s = res.series
    assert int(s.preemptions.sum()) == res.preemptions
    assert np.nanmax(s.kv_max) <= 1.0 and np.nanmax(s.kv_max) >= 0.8
    assert len(s.t_s) <= 256 and s.t_s[-1] <= float(r["finish_s"].max())


def shared_prefix_workload(n: int = 400, groups: int = 8) -> Workload:
    rng = np.random.default_rng(6)
    prompt = np.full(n, 4096, dtype=np.int64)
    out = np.full(n, 64, dtype=np.int64)
    g = rng.integers(0, groups, n)  # 8 system prompts of 6 blocks, then a private tail
    ids = [np.concatenate([100 * g[i] + np.arange(6), 10_000 + 2 * i + np.arange(2)]) for i in range(n)]
    off = np.concatenate([[0], np.cumsum([len(x) for x in ids])]).astype(np.int64)
    arr = np.cumsum(rng.exponential(1 / 6.0, n))
    return Workload(prompt, out, arrival_s=arr - arr[0], hash_ids=np.concatenate(ids).astype(np.int64),
                    hash_offsets=off, hash_block_tokens=512, name="grouped-prefix")


def test_prefix_aware_router_raises_the_hit_rate(sm70: StepModel, sim_conserved: Checker) -> None:
    # 16 system prompts, and KV for only a few of them per replica: spreading by load evicts
    wl = shared_prefix_workload(400, groups=16)
    lo = simulate(sm70, wl, replicas=4, router="least_outstanding", kv_blocks=2500)
    pa = simulate(sm70, wl, replicas=4, router="prefix_aware", kv_blocks=2500)
    sim_conserved(pa, wl)
    assert pa.records["cached_tokens"].sum() > 1.5 * lo.records["cached_tokens"].sum()
    assert pa.ttft.mean < 0.8 * lo.ttft.mean


def test_duration_caps_the_arrivals(sm70: StepModel, sim_poisson: PoissonFactory) -> None:
    wl = sim_poisson(1000, 5.0)
    res = simulate(sm70, wl, duration_s=30.0)
    assert res.n_requests == int(np.sum(wl.arrival_s < 30.0))
    seen: list[tuple[int, int]] = []
    simulate(sm70, sim_poisson(300, 5.0), progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (300, 300) and len(seen) > 10
