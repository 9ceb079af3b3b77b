"""The serving simulator: conservation, Little's law, determinism, closed form = step by step,
agreement with the analytic estimate, load response, preemption and prefix caching."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from hierro.perf import StepModel, estimate, starting_calibration
from hierro.sim import (
    Fixed,
    SimError,
    SimResult,
    Slo,
    StepTime,
    Workload,
    parquet_available,
    simulate,
    synthetic,
    to_csv,
    to_parquet,
    tpot_s,
)
from hierro.specs import Plan, get_accelerator, get_model

PoissonFactory = Callable[..., Workload]
Checker = Callable[[SimResult, Workload], None]


def test_conservation_and_determinism(sm70: StepModel, sim_poisson: PoissonFactory, sim_conserved: Checker) -> None:
    wl = sim_poisson(1500, 6.0)
    a = simulate(sm70, wl, replicas=2, router="least_outstanding", seed=5)
    b = simulate(sm70, wl, replicas=2, router="least_outstanding", seed=5)
    sim_conserved(a, wl)
    assert a.records.tobytes() == b.records.tobytes()
    assert a == b  # every summary field


def test_littles_law_on_a_long_run(sm70: StepModel, sim_poisson: PoissonFactory) -> None:
    wl = sim_poisson(6000, 6.0, seed=2)
    r = simulate(sm70, wl).records
    a, z = float(r["arrival_s"][1000]), float(r["arrival_s"][5000])  # a window in steady state
    overlap = np.clip(np.minimum(r["finish_s"], z) - np.maximum(r["arrival_s"], a), 0.0, None)
    in_system = overlap.sum() / (z - a)  # time-average number in the system
    inside = (r["arrival_s"] >= a) & (r["arrival_s"] < z)
    lam = inside.sum() / (z - a)
    W = float(np.mean(r["finish_s"][inside] - r["arrival_s"][inside]))
    assert in_system == pytest.approx(lam * W, rel=0.02)


@pytest.mark.parametrize("mixed", [True, False])
@pytest.mark.parametrize("kv_blocks", [None, 2600])
def test_closed_form_decode_equals_step_by_step(kv_blocks: int | None, mixed: bool, sm70: StepModel,
                                                sim_poisson: PoissonFactory) -> None:
    wl = sim_poisson(800, 7.0, seed=3)
    fast = simulate(sm70, wl, kv_blocks=kv_blocks, mixed=mixed)
    slow = simulate(sm70, wl, kv_blocks=kv_blocks, step_by_step=True, mixed=mixed)
    for f in ("first_scheduled_s", "first_token_s", "finish_s"):
        np.testing.assert_allclose(fast.records[f], slow.records[f], rtol=1e-9, atol=0)
    assert fast.preemptions == slow.preemptions
    assert fast.steps == slow.steps
    assert fast.events < slow.events


def test_sglang_decodes_wait_out_its_prefill_steps(sm70: StepModel, sim_poisson: PoissonFactory,
                                                   sim_conserved: Checker) -> None:
    """SGLang runs a prefill batch instead of the decode batch whenever it can form one; vLLM puts
    prompt chunks in the decode steps. At the same load the same requests finish with their
    tokens either way; without mixing each token waits out the prefill steps (TPOT up) while a
    prompt has its step to itself (TTFT down). The framework picks the policy."""
    wl = sim_poisson(800, 6.0, seed=3)
    mixed, unmixed = simulate(sm70, wl), simulate(sm70, wl, mixed=False)
    sim_conserved(unmixed, wl)
    assert unmixed.tpot.mean > 1.05 * mixed.tpot.mean
    assert unmixed.ttft.mean < mixed.ttft.mean
    sglang = StepModel(sm70.model, sm70.accel, sm70.plan, framework="sglang", calib=sm70.calib)
    own = simulate(sglang, wl)
    assert own.records.tobytes() == simulate(sglang, wl, mixed=False).records.tobytes()
    assert own.records.tobytes() != simulate(sglang, wl, mixed=True).records.tobytes()


def test_closed_form_cost_grows_with_requests_not_tokens(sm70: StepModel, sim_poisson: PoissonFactory) -> None:
    wl = sim_poisson(200, 0.5, seed=3)
    fast = simulate(sm70, wl)
    slow = simulate(sm70, wl, step_by_step=True)
    assert fast.steps == slow.steps
    assert fast.events < 6 * len(wl) < slow.events / 10


def test_concurrency_one_tpot_is_one_decode_step(sm70: StepModel) -> None:
    isl, osl = 1024, 128
    wl = synthetic(3, Fixed(isl), Fixed(osl), np.random.default_rng(0), concurrency=1)
    res = simulate(sm70, wl)
    st = StepTime(sm70)
    # the k-th decode of a lone request runs with isl + k - 1 tokens cached
    steps = [st.exact(0.0, 0.0, 0.0, 1.0, float(isl + k), 1.0) for k in range(osl - 1)]
    assert res.tpot.mean == pytest.approx(np.mean(steps), rel=1e-9)
    # the front end's engine steps are priced at the last step before the request: none for the
    # first, the previous request's last decode for the other two
    fe = sm70.calib.front_end("vllm")
    delays = [fe.delay(1, isl, 0.0), fe.delay(1, isl, steps[-1]), fe.delay(1, isl, steps[-1])]
    ttft = st.exact(float(isl), 1.0, 0.0, 0.0, 0.0, 1.0) + float(np.mean(delays))
    assert res.ttft.mean == pytest.approx(ttft, rel=1e-9)


STEADY_CASES = {
    "llama70b-h100-tp8": ("llama-3.1-70b", "h100-sxm", Plan(tp=8), 1024, 256),
    "llama70b-mi300x-tp8": ("llama-3.1-70b", "mi300x", Plan(tp=8), 8192, 1024),
    "llama70b-h100-tp4pp2": ("llama-3.1-70b", "h100-sxm", Plan(tp=4, pp=2), 2048, 512),
    # MoE: a decode step's expert weights grow with its tokens, so prefill spread over every
    # step (instead of whole chunks in a few) would cost every decode step experts it never loads
    "deepseek-r1-mi300x-tp8": ("deepseek-r1", "mi300x", Plan(tp=8, weight_dtype="fp8", kv_dtype="fp8"), 8192, 1024),
    # SGLang does not mix: its decodes wait out every prefill step, in both models
    "llama70b-h100-tp8-sglang": ("llama-3.1-70b", "h100-sxm", Plan(tp=8), 1024, 256, "sglang"),
    "deepseek-r1-mi300x-tp8-sglang": ("deepseek-r1", "mi300x", Plan(tp=8, weight_dtype="fp8", kv_dtype="fp8"),
                                      8192, 1024, "sglang"),
}


@cache
def _step_model(case: str) -> tuple[StepModel, int, int]:
    model, gpu, plan, isl, osl, *fw = STEADY_CASES[case]
    # the starting efficiencies, so that a refit of the shipped calibration cannot move the check
    return StepModel(get_model(model), get_accelerator(gpu), plan, framework=fw[0] if fw else "vllm",
                     calib=starting_calibration()), isl, osl


@pytest.mark.parametrize("concurrency", [1, 4, 16, 64, 256])
@pytest.mark.parametrize("case", list(STEADY_CASES))
def test_closed_loop_steady_state_agrees_with_the_estimate(case: str, concurrency: int) -> None:
    """At fixed lengths the steady state of a closed loop (users spread across the phases of a
    request by a start-up ramp of one request's latency; measured over whole cycles, start-up
    and drain left out) has the estimate's throughput and TPOT within 5%."""
    sm, isl, osl = _step_model(case)
    est = estimate(sm, isl=isl, osl=osl, concurrency=concurrency)
    wl = synthetic(8 * concurrency, Fixed(isl), Fixed(osl), np.random.default_rng(0),
                   concurrency=concurrency, ramp_s=est.e2e_s)
    st = simulate(sm, wl).steady
    assert st is not None and st.users == concurrency and st.cycles == 5
    assert st.req_s == pytest.approx(est.req_s, rel=0.05)
    assert st.tpot_s == pytest.approx(est.tpot_s, rel=0.05)


def test_a_synchronised_closed_loop_stays_in_cohorts(sm70: StepModel) -> None:
    """All users starting at once at fixed lengths is a periodic orbit of its own: the first
    wave's prompts are prefilled C tokens a step, and the cohorts this forms never mix (long
    prefill steps gather the arrivals that come during them). The users' phases stay bunched
    and every cycle repeats the first-wave queue for the prefill budget, unlike a ramped start."""
    c, isl, osl = 64, 1024, 256
    est = estimate(sm70, isl=isl, osl=osl, concurrency=c)

    def run(ramp: float) -> SimResult:
        wl = synthetic(12 * c, Fixed(isl), Fixed(osl), np.random.default_rng(0), concurrency=c, ramp_s=ramp)
        return simulate(sm70, wl)

    sync, ramped = run(0.0), run(est.e2e_s)
    cycle = slice(8 * c, 9 * c)  # ids of one cycle, long after the start
    first = np.sort(sync.records["first_token_s"][cycle])
    # at most ceil(c·isl/C) + 1 distinct prefill steps hold the cohort (chunks spill over)
    assert len(np.unique(first)) <= -(-c * isl // 8192) + 1
    assert len(np.unique(ramped.records["first_token_s"][cycle])) > c // 2
    assert sync.steady is not None and ramped.steady is not None
    assert sync.steady.ttft_s > 4 * ramped.steady.ttft_s


def test_steady_state_needs_whole_cycles(sm70: StepModel) -> None:
    wl = synthetic(3 * 8, Fixed(512), Fixed(64), np.random.default_rng(0), concurrency=8)
    assert simulate(sm70, wl).steady is None  # 3 cycles: start-up (2) and drain (1) only
    long = simulate(sm70, synthetic(10 * 8, Fixed(512), Fixed(64), np.random.default_rng(0), concurrency=8),
                    warmup=24)
    st = long.steady
    assert st is not None and st.cycles == 10 - 1 - 3
    assert st.req_s * st.e2e_s == pytest.approx(8)  # Little's law: 8 users always in the system
    open_loop = synthetic(50, Fixed(512), Fixed(64), np.random.default_rng(0), rate=1.0)
    assert simulate(sm70, open_loop).steady is None
    with pytest.raises(SimError, match="ramp"):
        synthetic(10, Fixed(512), Fixed(64), np.random.default_rng(0), concurrency=2, ramp_s=-1.0)
    with pytest.raises(SimError, match="closed loop"):
        Workload(np.array([5]), np.array([5]), arrival_s=np.array([0.0]), ramp_s=1.0)


def test_ttft_grows_with_load_and_without_bound_past_saturation(sm70: StepModel, sim_poisson: PoissonFactory) -> None:
    means = [simulate(sm70, sim_poisson(1500, q, isl=1024, osl=256)).ttft.mean for q in (2.0, 6.0, 10.0)]
    assert means == sorted(means)
    over = simulate(sm70, sim_poisson(3000, 40.0, isl=1024, osl=256)).records  # ~3x capacity
    ttft = over["first_token_s"] - over["arrival_s"]
    assert np.mean(ttft[-500:]) > 3 * np.mean(ttft[500:1000])  # linear in arrival time


def test_preemption_when_kv_blocks_run_out(sm70: StepModel, sim_poisson: PoissonFactory, sim_conserved: Checker) -> None:
    wl = sim_poisson(600, 8.0, seed=4)
    res = simulate(sm70, wl, kv_blocks=1500)
    assert res.preemptions > 0
    assert res.records["preemptions"].sum() == res.preemptions
    sim_conserved(res, wl)
    roomy = simulate(sm70, wl)
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


def test_prefix_caching_cuts_ttft_on_shared_prefixes(sm70: StepModel, sim_conserved: Checker) -> None:
    wl = shared_prefix_workload()
    cold = simulate(sm70, wl, prefix_caching=False)
    warm = simulate(sm70, wl, prefix_caching=True)
    sim_conserved(warm, wl)
    assert warm.records["cached_tokens"][1:].min() == 3072
    assert warm.ttft.mean < 0.6 * cold.ttft.mean
    tight = simulate(sm70, wl, prefix_caching=True, kv_blocks=700)  # eviction under pressure
    sim_conserved(tight, wl)


def test_routers_spread_requests(sm70: StepModel, sim_poisson: PoissonFactory) -> None:
    wl = sim_poisson(400, 8.0)
    rr = simulate(sm70, wl, replicas=4)
    counts = np.bincount(rr.records["replica"], minlength=4)
    assert counts.max() - counts.min() <= 1
    lo = simulate(sm70, wl, replicas=4, router="least_outstanding")
    assert lo.ttft.mean <= rr.ttft.mean * 1.05
    with pytest.raises(SimError):
        simulate(sm70, wl, router="random-ish")


def test_mlperf_tpot_goodput_and_export(tmp_path: Path, sm70: StepModel, sim_poisson: PoissonFactory) -> None:
    wl = sim_poisson(200, 4.0)
    res = simulate(sm70, wl, slo=Slo(ttft_s=0.5, tpot_s=0.05), warmup=20)
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
    if not parquet_available():
        with pytest.raises(SimError, match=r"hierro\[parquet\]"):
            to_parquet(r, tmp_path / "r.parquet")
        return
    import pyarrow.parquet as pq  # the hierro[parquet] extra, installed by `make test`

    to_parquet(r, tmp_path / "r.parquet")
    back = pq.read_table(tmp_path / "r.parquet")
    assert back.column_names == list(r.dtype.names or ())
    for name in ("id", "finish_s", "output_tokens", "itl_max_s"):
        np.testing.assert_array_equal(back.column(name).to_numpy(), r[name])


def test_bad_simulation_input(sm70: StepModel, sim_poisson: PoissonFactory) -> None:
    wl = sim_poisson(10, 1.0)
    for kw in ({"replicas": 0}, {"mem_fraction": 0.0}, {"warmup": 10}, {"kv_blocks": 10}):
        with pytest.raises(SimError):
            simulate(sm70, wl, **kw)
    too_long = Workload(np.array([200_000]), np.array([10]), arrival_s=np.array([0.0]))
    with pytest.raises(SimError, match="context"):
        simulate(sm70, too_long)
