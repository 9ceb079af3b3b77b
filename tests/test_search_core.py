"""Search: the winner holds up in simulation, brute force finds nothing cheaper, backends agree,
impossible requests name the binding constraint."""

from __future__ import annotations

import importlib.util
from dataclasses import replace

import numpy as np
import pytest

from hierro.errors import HierroError
from hierro.perf import Calibration, StepModel
from hierro.search import (
    Budget,
    Demand,
    LocalBackend,
    SearchRequest,
    SearchResult,
    SearchSpace,
    SimJob,
    parse_slos,
    run_sim_job,
    search,
)
from hierro.sim import Fixed, simulate, synthetic
from hierro.specs import get_accelerator, get_model

SLOS = parse_slos(["ttft_p99=1.5s", "tpot_p99=50ms"])
SMALL = SearchSpace(
    gpus=("h100-sxm",), weight_dtypes=("fp8",), kv_dtypes=("fp8",), max_devices=8, max_pp=2, concurrency_step=2.0,
    max_batched_tokens=(2048, 8192),
)


def _request(**kw: object) -> SearchRequest:
    base = SearchRequest(
        "llama-3.1-70b", 2048, 256, Demand(4.0), SLOS, space=SMALL, sim_top=5, sim_requests=1500, top=5
    )
    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def result() -> SearchResult:
    return search(_request())


def test_winner_meets_every_slo_when_simulated_on_its_own(result: SearchResult) -> None:
    best = result.best
    g = best.candidate.group
    sm = StepModel(get_model("llama-3.1-70b"), get_accelerator(g.gpu), g.plan, framework=g.framework)
    wl = synthetic(1500, Fixed(2048), Fixed(256), np.random.default_rng(0), rate=4.0)
    res = simulate(sm, wl, replicas=best.replicas, router="least_outstanding",
                   max_num_batched_tokens=g.max_batched_tokens, warmup=150)
    assert res.ttft.p99 <= 1.5
    assert res.tpot.p99 <= 0.050
    assert res.n_measured == 1350


def test_brute_force_finds_nothing_cheaper(result: SearchResult) -> None:
    """Simulate every (layout, replica count) of the space that costs less than the winner:
    none may meet the SLOs (the dearer ones cannot beat it)."""
    t = result.table
    req = result.request
    model = get_model("llama-3.1-70b")
    best = result.best.fleet_usd_per_hour
    seen: set[tuple[int, int]] = set()
    for i in range(len(t)):
        key = (int(t.group[i]), int(t.replicas[i]))
        if key in seen or float(t.fleet_usd_per_hour[i]) >= best - 1e-9:
            continue
        seen.add(key)
        job = SimJob(model, t.candidate(i), key[1], 4.0, 2048, 256, default_calib(), req.slos, requests=1500)
        assert not run_sim_job(job).passes, t.candidate(i).label()
    assert len(seen) >= 3  # the space has cheaper layouts, which the SLOs rule out


def default_calib() -> Calibration:
    from hierro.perf import default_calibration

    return default_calibration()


def _summary(r: SearchResult) -> list[tuple[str, int, float, float]]:
    return [(x.candidate.label(), x.replicas, x.sim.ttft_p99_s, x.sim.tpot_p99_s) for x in r.recommendations]


def test_local_backend_agrees_with_serial_and_itself(result: SearchResult) -> None:
    a = search(_request(), LocalBackend(2))
    b = search(_request(), LocalBackend(2))
    assert _summary(a) == _summary(b) == _summary(result)
    np.testing.assert_array_equal(a.table.ttft_s, result.table.ttft_s)
    np.testing.assert_array_equal(a.table.fleet_usd_per_hour, result.table.fleet_usd_per_hour)


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
def test_ray_backend_agrees_with_local(result: SearchResult) -> None:
    import ray

    from hierro.search import RayBackend

    try:
        r = search(_request(), RayBackend(num_cpus=2))
    finally:
        ray.shutdown()
    assert _summary(r) == _summary(result)
    np.testing.assert_array_equal(r.table.req_s, result.table.req_s)


def test_ttft_below_hardware_floor_names_the_slo() -> None:
    with pytest.raises(HierroError, match=r"ttft_p99 <= 5 ms is below the hardware floor.*over by"):
        search(_request(slos=parse_slos(["ttft_p99=5ms", "tpot_p99=50ms"])))


def test_demand_over_gpu_budget_names_the_budget() -> None:
    with pytest.raises(HierroError, match=r"max_gpus=4 binds: 40 req/s .* short by \d+ GPUs"):
        search(_request(demand=Demand(40.0), budget=Budget(max_gpus=4)))


def test_dollar_budget_binds() -> None:
    with pytest.raises(HierroError, match=r"max_usd_per_hour=1 binds"):
        search(_request(budget=Budget(max_usd_per_hour=1.0)))


def test_objective_gpus_orders_by_fleet_size(result: SearchResult) -> None:
    r = search(_request(objective="gpus"))
    assert r.best.gpus <= min(x.gpus for x in result.recommendations)
    gpus = [x.gpus for x in r.recommendations]
    assert gpus == sorted(gpus)


def test_frontiers_are_non_dominated(result: SearchResult) -> None:
    t = result.table
    f = result.throughput_frontier
    x, y = t.tok_s_per_user, t.tok_s_per_gpu
    for i in f:
        assert not np.any((x > x[i]) & (y > y[i]))
    assert np.all(np.diff(x[f]) < 0) and np.all(np.diff(y[f]) > 0)


def test_recommendations_are_distinct_deployments(result: SearchResult) -> None:
    """Token-budget variants of one layout at one replica count are one deployment: the
    ranking lists each once (with its most SLO slack), so the top rows differ in what is bought."""
    keys = [(x.candidate.group.gpu, x.candidate.group.plan, x.candidate.group.framework, x.replicas)
            for x in result.recommendations]
    assert len(keys) == len(set(keys))
