"""The screen prices all token budgets of a layout in one call: ``estimate_arrays`` vectorised over
budgets equals one call per budget, and the screen's per-group results equal per-group calls."""

from __future__ import annotations

from functools import cache

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hierro.perf import EstimateArrays, StepModel, default_calibration, estimate_arrays
from hierro.search import SearchSpace
from hierro.search.screen import jobs, screen_groups
from hierro.search.space import enumerate_space
from hierro.specs import Plan, get_accelerator, get_model

SETTINGS = settings(max_examples=15, deadline=None, database=None)
CASES: dict[str, tuple[str, str, Plan]] = {
    "llama-3.1-70b/h100/tp4pp2-fp8": ("llama-3.1-70b", "h100-sxm", Plan(tp=4, pp=2, weight_dtype="fp8")),
    "gpt-oss-120b/b200/tp1-fp4": ("gpt-oss-120b", "b200", Plan(weight_dtype="fp4")),
}
FIELDS = ("batch", "ttft_s", "tpot_s", "e2e_s", "req_s", "out_tok_s")
# the rows are computed element by element, so the two ways agree to the last bit here; the
# tolerance only allows a vendor math library's last-ulp differences between loop variants
RTOL = 1e-13


@cache
def _step_model(case: str) -> StepModel:
    model, gpu, plan = CASES[case]
    return StepModel(get_model(model), get_accelerator(gpu), plan)


def _assert_same(a: EstimateArrays, b: EstimateArrays, rows: slice | np.ndarray) -> None:
    for f in FIELDS:
        np.testing.assert_allclose(getattr(a, f)[rows], getattr(b, f), rtol=RTOL, atol=0, err_msg=f)
    assert list(a.limited_by[rows]) == list(b.limited_by)


@SETTINGS
@given(
    case=st.sampled_from(sorted(CASES)),
    rows=st.lists(
        st.tuples(
            st.integers(1, 16_384), st.integers(1, 4096), st.integers(1, 2048), st.integers(1, 3000),
            st.sampled_from((1024, 2048, 4096, 8192, 16384, 32768)),
        ),
        min_size=1, max_size=10,
    ),
    waves=st.sampled_from((None, 10.0)),
)
def test_estimate_vectorised_over_budgets_equals_one_call_per_budget(
    case: str, rows: list[tuple[int, int, int, int, int]], waves: float | None
) -> None:
    sm = _step_model(case)
    isl, osl, n, cap, budget = (np.array(col, dtype=np.float64) for col in zip(*rows, strict=True))
    together = estimate_arrays(sm, isl, osl, n, max_seqs=cap, max_batched_tokens=budget, waves=waves)
    for C in np.unique(budget):
        ix = np.flatnonzero(budget == C)
        alone = estimate_arrays(sm, isl[ix], osl[ix], n[ix], max_seqs=cap[ix], max_batched_tokens=int(C), waves=waves)
        _assert_same(together, alone, ix)
    # a one-element budget array is the scalar
    one = estimate_arrays(sm, isl, osl, n, max_seqs=cap, max_batched_tokens=budget[:1], waves=waves)
    _assert_same(one, estimate_arrays(sm, isl, osl, n, max_seqs=cap, max_batched_tokens=int(budget[0]), waves=waves),
                 slice(None))


def test_token_budget_changes_the_estimate() -> None:
    """The budget is not ignored: a small one caps the batch and cuts prompts into more chunks."""
    sm = _step_model("llama-3.1-70b/h100/tp4pp2-fp8")
    r = estimate_arrays(sm, 8192, 512, 512, max_seqs=1000, max_batched_tokens=np.array([1024, 16384]))
    assert r.ttft_s[0] > r.ttft_s[1]
    assert r.batch[0] <= r.batch[1]


def test_screen_prices_each_group_as_its_own_call() -> None:
    """Grouping budgets and engines per step-cost model, in jobs of any size, changes no number."""
    model = get_model("llama-3.1-70b")
    space = enumerate_space(model, 2048, 256, SearchSpace(
        gpus=("h100-sxm",), weight_dtypes=("fp8",), kv_dtypes=("bf16", "fp8"), max_devices=8, max_pp=2,
        frameworks=("vllm", "sglang"), max_batched_tokens=(2048, 8192, 16384), concurrency_step=2.0,
    ))
    calib = default_calibration()
    budgets = {g.max_batched_tokens for g in space.groups}
    assert len(budgets) == 3 and len({g.framework for g in space.groups}) == 2
    for chunks in (1, 3, 7):
        work = jobs(space, calib, chunks)
        assert tuple(g for j in work for g in j.groups) == space.groups
        # a job holds every engine and budget of its layouts
        layouts = [{(g.gpu, g.plan) for g in j.groups} for j in work]
        assert all(not (a & b) for i, a in enumerate(layouts) for b in layouts[i + 1 :])
        raws = [r for j in work for r in screen_groups(j)]
        assert len(raws) == len(space.groups)
        for g, r in zip(space.groups, raws, strict=True):
            sm = StepModel(model, get_accelerator(g.gpu), g.plan, framework=g.framework, calib=calib)
            c = space.concurrencies(g)
            e = estimate_arrays(sm, 2048, 256, c, max_seqs=g.max_seqs, max_batched_tokens=g.max_batched_tokens)
            np.testing.assert_array_equal(r.concurrency, c)
            for f in FIELDS:
                np.testing.assert_allclose(getattr(r, f), getattr(e, f), rtol=RTOL, atol=0, err_msg=f)
