"""The running-sequence cap of an instance: one default (:func:`hierro.perf.default_max_seqs`,
1,024 per attention data-parallel rank) shared by the estimate, the search's screen and
confirmation, ``hierro simulate`` and ``hierro estimate``; a cap the user gives wins."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import hierro.cli.simulate as simulate_cli
from hierro.cli.estimate import estimate_cmd
from hierro.cli.simulate import simulate_cmd
from hierro.errors import HierroError
from hierro.perf import (
    DEFAULT_MAX_SEQS,
    StepModel,
    default_calibration,
    default_max_seqs,
    estimate,
    estimate_arrays,
)
from hierro.search import SearchSpace, confirm, disagg, parse_slos
from hierro.search.confirm import SimJob, simulate_candidate
from hierro.search.disagg import DisaggCandidate, DisaggJob, simulate_disagg_candidate
from hierro.search.screen import GpuPrice, jobs, screen_groups
from hierro.search.space import Candidate, Group, Space, enumerate_space
from hierro.specs import Plan, get_accelerator, get_model

DPA = Plan(tp=8, ep=8, dp_attention=True, weight_dtype="fp4", kv_dtype="fp8")
"""DeepSeek-R1 on 8 x B200 with attention data parallelism (8 attention ranks)."""
ISL, OSL = 1024, 1024


@cache
def _dsr1() -> StepModel:
    return StepModel(get_model("deepseek-r1"), get_accelerator("b200"), DPA)


@settings(max_examples=40, deadline=None, database=None)
@given(tp=st.sampled_from((1, 2, 4, 8, 16, 32, 64)), dp=st.booleans(),
       budget=st.one_of(st.none(), st.integers(1, 1 << 17)))
def test_default_cap_is_per_attention_rank_and_within_the_budget(tp: int, dp: bool, budget: int | None) -> None:
    plan = Plan(tp=tp, dp_attention=dp)
    assert default_max_seqs(plan) == DEFAULT_MAX_SEQS * (tp if dp else 1)
    capped = default_max_seqs(plan, budget)
    assert capped == (default_max_seqs(plan) if budget is None else min(default_max_seqs(plan), budget))


def test_default_cap_examples_and_bad_budget() -> None:
    assert default_max_seqs(DPA) == 8 * 1024
    assert default_max_seqs(Plan(tp=8, ep=8)) == 1024
    assert default_max_seqs(DPA, 2048) == 2048
    with pytest.raises(HierroError, match="token budget must be >= 1"):
        default_max_seqs(DPA, 0)


def test_estimate_on_attention_dp_is_not_capped_at_1024() -> None:
    sm = _dsr1()
    e = estimate(sm, isl=ISL, osl=OSL, concurrency=4096)
    assert e.memory.max_seqs > 4096  # the KV cache is not what binds here
    assert e.batch > 2 * DEFAULT_MAX_SEQS and e.limited_by != "max-seqs"
    # the user's cap wins: the old instance-wide 1,024 gives a smaller batch and a long queue
    capped = estimate(sm, isl=ISL, osl=OSL, concurrency=4096, max_num_seqs=DEFAULT_MAX_SEQS)
    assert capped.batch == DEFAULT_MAX_SEQS and capped.limited_by == "max-seqs"
    assert capped.ttft_s > 10 * e.ttft_s and capped.out_tok_s < e.out_tok_s
    with pytest.raises(HierroError, match="max_num_seqs must be >= 1"):
        estimate(sm, isl=ISL, osl=OSL, concurrency=4096, max_num_seqs=0)


def test_estimate_without_attention_dp_keeps_1024() -> None:
    sm = StepModel(get_model("llama-3.1-8b"), get_accelerator("h200-sxm"), Plan(weight_dtype="fp8", kv_dtype="fp8"))
    e = estimate(sm, isl=128, osl=128, concurrency=4096)
    assert e.memory.max_seqs > 4096
    assert e.batch == DEFAULT_MAX_SEQS and e.limited_by == "max-seqs"


def test_engine_cap_is_per_row() -> None:
    """A vector of caps equals one call per cap; no cap is the plan's default."""
    sm = _dsr1()
    n = np.array([4096.0, 4096.0, 600.0, 9000.0])
    caps = np.array([1024.0, 8192.0, 300.0, 2048.0])
    together = estimate_arrays(sm, ISL, OSL, n, max_seqs=12_000, max_num_seqs=caps, waves=10.0)
    for i in range(len(n)):
        alone = estimate_arrays(sm, ISL, OSL, n[i], max_seqs=12_000, max_num_seqs=caps[i], waves=10.0)
        for f in ("batch", "ttft_s", "tpot_s", "out_tok_s"):
            assert getattr(together, f)[i] == pytest.approx(getattr(alone, f)[0], rel=1e-13), f
        assert together.batch[i] <= caps[i]
    default = estimate_arrays(sm, ISL, OSL, n, max_seqs=12_000)
    explicit = estimate_arrays(sm, ISL, OSL, n, max_seqs=12_000, max_num_seqs=default_max_seqs(DPA))
    np.testing.assert_array_equal(default.batch, explicit.batch)
    with pytest.raises(HierroError, match="sequence cap must be >= 1"):
        estimate_arrays(sm, ISL, OSL, n, max_seqs=12_000, max_num_seqs=0)


@cache
def _dsr1_space(max_concurrency: int | None = None) -> Space:
    return enumerate_space(get_model("deepseek-r1"), ISL, OSL, SearchSpace(
        gpus=("b200",), weight_dtypes=("fp4",), kv_dtypes=("fp8",), max_devices=8, max_pp=1,
        max_batched_tokens=(8192,), max_concurrency=max_concurrency,
    ))


def _dpa_group(space: Space) -> Group:
    return next(g for g in space.groups if g.plan == DPA)


def test_search_load_points_reach_the_attention_dp_cap() -> None:
    space = _dsr1_space()
    for g in space.groups:
        top = int(space.concurrencies(g).max())
        assert top == min(g.max_seqs, default_max_seqs(g.plan))
    g = _dpa_group(space)
    assert space.concurrencies(g).max() > 4096
    # a load-point cap the user gives wins, for every layout
    capped = _dsr1_space(512)
    assert all(capped.concurrencies(h).max() == min(512, h.max_seqs) for h in capped.groups)
    with pytest.raises(HierroError, match="highest load point must be >= 1"):
        SearchSpace(max_concurrency=0)


def test_screen_agrees_with_the_estimate_above_1024() -> None:
    space = _dsr1_space()
    calib = default_calibration()
    g = _dpa_group(space)
    i = space.groups.index(g)
    raws = [r for j in jobs(space, calib, 1) for r in screen_groups(j)]
    raw = raws[i]
    sm = StepModel(space.model, get_accelerator(g.gpu), g.plan, framework=g.framework, calib=calib)
    k = int(np.flatnonzero(raw.concurrency >= 4096)[0])
    e = estimate(sm, isl=ISL, osl=OSL, concurrency=int(raw.concurrency[k]), max_batched_tokens=g.max_batched_tokens)
    assert raw.batch[k] > DEFAULT_MAX_SEQS
    for f in ("batch", "ttft_s", "tpot_s", "e2e_s", "req_s", "out_tok_s"):
        assert getattr(raw, f)[k] == pytest.approx(getattr(e, f), rel=1e-12), f


def _capture(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[dict[str, Any]]:
    """Record the keyword arguments of ``module.name`` and call through."""
    seen: list[dict[str, Any]] = []
    real = getattr(module, name)

    def wrapper(*args: Any, **kw: Any) -> Any:
        seen.append(kw)
        return real(*args, **kw)

    monkeypatch.setattr(module, name, wrapper)
    return seen


def test_search_confirmation_uses_the_default_within_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _capture(monkeypatch, confirm, "simulate")
    model = get_model("deepseek-r1")
    for budget in (2048, 16384):
        g = Group("b200", DPA, "vllm", budget, 12_000)
        job = SimJob(model, Candidate(g, 64), 1, 2.0, ISL, 64, default_calibration(),
                     parse_slos(["ttft_p99=10s"]), requests=40, draws=1)
        res = simulate_candidate(job)
        assert res.n_requests > 0
        assert seen[-1]["max_num_seqs"] == default_max_seqs(DPA, budget) == min(8192, budget)


def test_disaggregated_confirmation_uses_the_decode_plan_default(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _capture(monkeypatch, disagg, "simulate_disagg")
    p = Group("b200", Plan(tp=8, ep=8, weight_dtype="fp4", kv_dtype="fp8"), "vllm", 16384, 500)
    d = Group("b200", DPA, "vllm", 16384, 12_000)
    price = GpuPrice(5.0, 1500.0)
    cand = DisaggCandidate(p, d, 64, 1, 1, 1.0, 0.05, 50.0, 2.0, 128.0, 16, 5.0, 80.0, 1.0, 0.01, 2.0,
                           price, price, 50e9)
    job = DisaggJob(get_model("deepseek-r1"), cand, 2.0, ISL, 64, default_calibration(),
                    parse_slos(["ttft_p99=10s"]), requests=40, draws=1)
    assert simulate_disagg_candidate(job).n_requests > 0
    assert seen[-1]["max_num_seqs"] == default_max_seqs(DPA, 16384) == 8192


_app = typer.Typer()
_app.command("simulate")(simulate_cmd)
_app.command("estimate")(estimate_cmd)
_DPA_ARGS = ("--model", "deepseek-r1", "--gpu", "b200", "--tp", "8", "--ep", "8", "--dp-attention",
             "--dtype", "fp4", "--kv-dtype", "fp8")


def test_simulate_cli_default_matches_the_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _capture(monkeypatch, simulate_cli, "simulate")
    small = ("--qps", "2", "--requests", "30", "--isl", "512", "--osl", "32", "--json")
    for extra, want in (((), 8192), (("--max-batched-tokens", "4096"), 4096), (("--max-num-seqs", "300"), 300)):
        r = CliRunner().invoke(_app, ["simulate", *_DPA_ARGS, *small, *extra])
        assert r.exit_code == 0, r.output
        assert seen[-1]["max_num_seqs"] == want


def test_estimate_cli_max_num_seqs() -> None:
    args = ["estimate", *_DPA_ARGS, "--isl", str(ISL), "--osl", str(OSL), "--concurrency", "4096", "--json"]
    free = CliRunner().invoke(_app, args)
    capped = CliRunner().invoke(_app, [*args, "--max-num-seqs", "1024"])
    assert free.exit_code == 0 and capped.exit_code == 0
    assert '"limited_by": "max-seqs"' in capped.stdout and '"limited_by": "max-seqs"' not in free.stdout
    bad = CliRunner().invoke(_app, [*args, "--max-num-seqs", "0"])
    assert isinstance(bad.exception, HierroError)
