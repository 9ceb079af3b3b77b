"""Hypothesis invariants of the perf and memory models (STYLE 5.8b).

Physical laws a prediction must obey whatever its calibration: more context or more sequences
never make a step faster, throughput never beats the compute roofline, Little's law holds,
more parallelism never puts more weight bytes on a device, a longer prompt never arrives sooner,
and the vectorised estimate equals the scalar one.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hierro.catalog import model_files
from hierro.errors import PlanError
from hierro.perf import StepModel, StepShape, estimate, estimate_arrays
from hierro.specs import Plan, get_accelerator, get_model, memory_breakdown, weight_bytes_per_device

SETTINGS = settings(max_examples=30, deadline=None, database=None)

CASES: dict[str, tuple[str, str, Plan]] = {
    "llama-3.1-8b/h100/tp1": ("llama-3.1-8b", "h100-sxm", Plan()),
    "llama-3.1-70b/h100/tp4-fp8": ("llama-3.1-70b", "h100-sxm", Plan(tp=4, weight_dtype="fp8")),
    "deepseek-r1/h200/tp8-ep8-dpattn-fp8": (
        "deepseek-r1", "h200-sxm", Plan(tp=8, ep=8, dp_attention=True, weight_dtype="fp8"),
    ),
    "gpt-oss-120b/b200/tp1-fp4": ("gpt-oss-120b", "b200", Plan(weight_dtype="fp4")),
}
CASE_IDS = sorted(CASES)

case_ids = st.sampled_from(CASE_IDS)
contexts = st.integers(min_value=0, max_value=131_072)
batches = st.integers(min_value=1, max_value=1024)
isls = st.integers(min_value=1, max_value=16_384)
osls = st.integers(min_value=2, max_value=4096)
concurrencies = st.integers(min_value=1, max_value=2048)

_REL = 1e-9  # float noise allowed in "non-decreasing"


@cache
def _step_model(case: str) -> StepModel:
    model_id, gpu, plan = CASES[case]
    return StepModel(get_model(model_id), get_accelerator(gpu), plan)


def _tpot(case: str, b: int, c: int) -> float:
    return float(_step_model(case).time(StepShape(decode_seqs=float(b), decode_ctx=float(c))))


# --- step time -------------------------------------------------------------------------------


@SETTINGS
@given(case=case_ids, b=batches, c1=contexts, c2=contexts)
def test_step_time_non_decreasing_in_context(case: str, b: int, c1: int, c2: int) -> None:
    lo, hi = sorted((c1, c2))
    assert _tpot(case, b, lo) <= _tpot(case, b, hi) * (1 + _REL)


@SETTINGS
@given(case=case_ids, c=contexts, b1=batches, b2=batches)
def test_step_time_non_decreasing_in_batch(case: str, c: int, b1: int, b2: int) -> None:
    lo, hi = sorted((b1, b2))
    assert _tpot(case, lo, c) <= _tpot(case, hi, c) * (1 + _REL)


# --- closed-loop estimate --------------------------------------------------------------------


@SETTINGS
@given(case=case_ids, isl=isls, osl=osls, n1=concurrencies, n2=concurrencies)
def test_tpot_non_decreasing_in_concurrency(case: str, isl: int, osl: int, n1: int, n2: int) -> None:
    sm = _step_model(case)
    lo, hi = sorted((n1, n2))
    a = estimate(sm, isl=isl, osl=osl, concurrency=lo)
    b = estimate(sm, isl=isl, osl=osl, concurrency=hi)
    assert a.tpot_s <= b.tpot_s * (1 + _REL)


@SETTINGS
@given(case=case_ids, isl=isls, osl=osls, n=concurrencies)
def test_throughput_below_rooflines(case: str, isl: int, osl: int, n: int) -> None:
    sm = _step_model(case)
    e = estimate(sm, isl=isl, osl=osl, concurrency=n)
    # each of the n users gets at most one token per TPOT, the first included (TTFT >= TPOT)
    assert e.ttft_s >= e.tpot_s
    assert e.out_tok_s <= n / e.tpot_s * (1 + _REL)
    # compute roofline: every output token costs at least 2 FLOPs per non-embedding active weight
    p = sm.model.params()
    peak = max(sm.accel.peak_flops.values()) * sm.plan.devices
    assert e.out_tok_s <= peak / (2.0 * (p.active - p.embedding))


@SETTINGS
@given(isl=isls, osl=osls, n=concurrencies)
def test_dense_tpot_at_least_weight_read_time(isl: int, osl: int, n: int) -> None:
    """Every decode iteration of a dense model reads all its weights but the embedding table."""
    sm = _step_model("llama-3.1-8b/h100/tp1")
    e = estimate(sm, isl=isl, osl=osl, concurrency=n)
    read = weight_bytes_per_device(sm.model, sm.plan) - 2.0 * sm.model.params().embedding
    assert e.tpot_s >= read / sm.accel.hbm_bw_Bps


@SETTINGS
@given(case=case_ids, isl=isls, osl=osls, n=concurrencies, offline=st.booleans())
def test_littles_law(case: str, isl: int, osl: int, n: int, offline: bool) -> None:
    e = estimate(_step_model(case), isl=isl, osl=osl, concurrency=None if offline else n, offline=offline)
    assert e.concurrency == pytest.approx(e.req_s * e.e2e_s, rel=1e-6)
    assert e.out_tok_s == pytest.approx(e.req_s * osl, rel=1e-9)
    assert 0 < e.batch <= e.concurrency
    assert e.ttft_s > 0 and e.tpot_s > 0
    assert e.e2e_s == pytest.approx(e.ttft_s + (osl - 1) * e.tpot_s, rel=1e-9)


@SETTINGS
@given(case=case_ids, osl=osls, i1=isls, i2=isls)
def test_ttft_non_decreasing_in_prompt_length(case: str, osl: int, i1: int, i2: int) -> None:
    sm = _step_model(case)
    lo, hi = sorted((i1, i2))
    a = estimate(sm, isl=lo, osl=osl, concurrency=1)
    b = estimate(sm, isl=hi, osl=osl, concurrency=1)
    assert a.ttft_s <= b.ttft_s * (1 + _REL)


@SETTINGS
@given(
    case=case_ids,
    rows=st.lists(st.tuples(isls, osls, concurrencies), min_size=1, max_size=6),
)
def test_estimate_arrays_equals_scalar_estimates(case: str, rows: list[tuple[int, int, int]]) -> None:
    sm = _step_model(case)
    isl, osl, n = (np.array(col, dtype=np.float64) for col in zip(*rows, strict=True))
    caps = np.array([
        memory_breakdown(sm.model, sm.accel, sm.plan, context=i + o).max_seqs for i, o, _ in rows
    ], dtype=np.float64)
    arr = estimate_arrays(sm, isl, osl, n, max_seqs=caps)
    for k, (i, o, c) in enumerate(rows):
        e = estimate(sm, isl=i, osl=o, concurrency=c)
        assert arr.batch[k] == pytest.approx(e.batch, rel=1e-12)
        assert arr.ttft_s[k] == pytest.approx(e.ttft_s, rel=1e-12)
        assert arr.tpot_s[k] == pytest.approx(e.tpot_s, rel=1e-12)
        assert arr.e2e_s[k] == pytest.approx(e.e2e_s, rel=1e-12)
        assert arr.req_s[k] == pytest.approx(e.req_s, rel=1e-12)
        assert arr.out_tok_s[k] == pytest.approx(e.out_tok_s, rel=1e-12)
        assert str(arr.limited_by[k]) == e.limited_by


# --- memory per device -----------------------------------------------------------------------

MODEL_IDS = sorted(model_files())
_DEGREES = (1, 2, 3, 4, 5, 6, 8, 12, 16, 32, 64)


def _valid(model_id: str, plan: Plan) -> bool:
    try:
        plan.check(get_model(model_id))
    except PlanError:
        return False
    return True


@cache
def _valid_tps(model_id: str) -> tuple[int, ...]:
    return tuple(tp for tp in _DEGREES if _valid(model_id, Plan(tp=tp)))


@SETTINGS
@given(model_id=st.sampled_from(MODEL_IDS), data=st.data(), dtype=st.sampled_from(["bf16", "fp8", "fp4"]))
def test_weight_bytes_non_increasing_in_tp(model_id: str, data: st.DataObject, dtype: str) -> None:
    tps = _valid_tps(model_id)
    t1, t2 = sorted((data.draw(st.sampled_from(tps)), data.draw(st.sampled_from(tps))))
    arch = get_model(model_id)
    lo = weight_bytes_per_device(arch, Plan(tp=t1, weight_dtype=dtype))
    hi = weight_bytes_per_device(arch, Plan(tp=t2, weight_dtype=dtype))
    assert hi <= lo * (1 + _REL)


@SETTINGS
@given(model_id=st.sampled_from(MODEL_IDS), data=st.data())
def test_weight_bytes_non_increasing_in_pp(model_id: str, data: st.DataObject) -> None:
    arch = get_model(model_id)
    pps = st.integers(min_value=1, max_value=min(arch.n_layers, 16))
    p1, p2 = sorted((data.draw(pps), data.draw(pps)))
    tp = data.draw(st.sampled_from(_valid_tps(model_id)))
    lo = weight_bytes_per_device(arch, Plan(tp=tp, pp=p1))
    hi = weight_bytes_per_device(arch, Plan(tp=tp, pp=p2))
    assert hi <= lo * (1 + _REL)


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_weight_bytes_tp1_close_to_params(model_id: str) -> None:
    """With one device and bf16 everything, the device holds every parameter at 2 bytes."""
    arch = get_model(model_id)
    assert weight_bytes_per_device(arch, Plan()) == pytest.approx(2.0 * arch.params().total, rel=1e-12)
