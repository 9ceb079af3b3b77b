"""The space, the screen's economics, SLO parsing and Pareto fronts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hierro.econ import tco_for, usd_per_mtok
from hierro.errors import HierroError
from hierro.perf import default_calibration
from hierro.search import (
    SearchSpace,
    enumerate_space,
    gpu_prices,
    pareto_front,
    parse_duration,
    parse_slo,
)
from hierro.search.screen import assemble, jobs, screen_groups
from hierro.specs import get_model


def test_parse_slo() -> None:
    s = parse_slo("tpot_p99=40ms")
    assert (s.metric, s.pct) == ("tpot", "p99")
    assert s.limit_s == pytest.approx(0.040)
    assert parse_slo("ttft=1s").pct == "p99"
    assert parse_duration("250us") == pytest.approx(250e-6)
    for bad in ("ttft_p95=1s", "ttft_p99", "ttft_p99=fast", "ttft_p99=0s"):
        with pytest.raises(HierroError):
            parse_slo(bad)


def test_space_prunes_dtypes_heads_and_memory() -> None:
    m = get_model("llama-3.1-70b")
    sp = enumerate_space(m, 2048, 512, SearchSpace(gpus=("h100-sxm", "b200", "mi300x"), max_devices=8))
    assert sp.groups and sp.pruned_memory > 0
    for g in sp.groups:
        assert 64 % g.plan.tp == 0 and g.devices <= 8
        assert g.plan.weight_dtype != "fp4" or g.gpu == "b200"
        assert g.max_seqs >= 1
    assert not any(g.gpu == "h100-sxm" and g.plan.weight_dtype == "bf16" and g.devices == 1 for g in sp.groups)
    conc = sp.concurrencies(sp.groups[0])
    assert conc[0] == 1 and conc[-1] <= sp.groups[0].max_seqs and np.all(np.diff(conc) > 0)


def test_moe_space_has_ep_and_dp_attention() -> None:
    sp = enumerate_space(get_model("deepseek-v3"), 1024, 256, SearchSpace(gpus=("b200",), max_devices=8, max_pp=1))
    assert any(g.plan.ep > 1 for g in sp.groups)
    assert any(g.plan.dp_attention for g in sp.groups)


def test_screen_cost_matches_econ() -> None:
    m = get_model("llama-3.1-8b")
    sp = enumerate_space(m, 1024, 256, SearchSpace(gpus=("h100-sxm",), max_devices=2, max_pp=1))
    prices, _ = gpu_prices(["h100-sxm"])
    raws = [r for j in jobs(sp, default_calibration(), 2) for r in screen_groups(j)]
    t = assemble(sp.groups, raws, prices, demand_req_s=5.0, osl=256, headroom=0.1)
    assert len(t) == sp.n_configs
    i = len(t) // 2
    usd_h = tco_for("h100-sxm").usd_per_gpu_hour
    assert t.usd_per_mtok[i] == pytest.approx(usd_per_mtok(usd_h, float(t.tok_s_per_gpu[i])))
    assert np.all(t.replicas * t.req_s >= 5.0 * 1.1 - 1e-6)
    assert np.all(t.fleet_MW > 0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=40))
def test_pareto_front_matches_brute_force(pts: list[tuple[int, int]]) -> None:
    x = np.array([p[0] for p in pts], dtype=float)
    y = np.array([p[1] for p in pts], dtype=float)
    front = set(pareto_front(x, y).tolist())
    for i in range(len(pts)):
        dominated = np.any((x >= x[i]) & (y >= y[i]) & ((x > x[i]) | (y > y[i])))
        duplicate_before = np.any((x[:i] == x[i]) & (y[:i] == y[i]))
        assert (i in front) == (not dominated and not duplicate_before)


def test_default_space_sweeps_token_budgets_as_chunk_sizes() -> None:
    m = get_model("llama-3.1-70b")
    spec = SearchSpace(gpus=("h100-sxm",), weight_dtypes=("fp8",), kv_dtypes=("fp8",), max_devices=8, max_pp=1)
    assert spec.max_batched_tokens == (2048, 4096, 8192, 16384)
    sp = enumerate_space(m, 8192, 256, spec)
    budgets: dict[str, set[int]] = {}
    for g in sp.groups:
        budgets.setdefault(g.plan.label(), set()).add(g.max_batched_tokens)
    # every layout with room for the largest budget's workspace is searched at every budget
    assert budgets["tp8"] == {2048, 4096, 8192, 16384}
    raws = [r for j in jobs(sp, default_calibration(), 1) for r in screen_groups(j)]
    by: dict[tuple[str, int], dict[int, tuple[float, float]]] = {}
    for g, r in zip(sp.groups, raws, strict=True):
        for c, ttft, tpot in zip(r.concurrency.tolist(), r.ttft_s.tolist(), r.tpot_s.tolist(), strict=True):
            by.setdefault((g.plan.label(), c), {})[g.max_batched_tokens] = (ttft, tpot)
    both = [d for d in by.values() if {2048, 16384} <= d.keys()]
    assert len(both) > 20
    # vLLM's tuning guide: a larger budget gives a better TTFT, a smaller one a better TPOT
    for d in both:
        assert d[16384][0] <= d[2048][0] * (1 + 1e-9)
        assert d[2048][1] <= d[16384][1] * (1 + 1e-9)
    labels = [f"{g.label()} {g.framework} tb{g.max_batched_tokens}" for g in sp.groups]
    assert len(set(labels)) == len(labels)


def test_token_budget_below_the_sequence_limit_is_refused() -> None:
    with pytest.raises(HierroError, match="token budgets must be >= the engine's sequence limit 1024"):
        SearchSpace(max_batched_tokens=(512, 8192))
