"""Several models on one fleet: pooling never needs more GPUs than separate fleets, and exactly as
many when the peaks coincide."""

from __future__ import annotations

import pytest

from hierro.errors import HierroError
from hierro.search import Demand, SearchRequest, SearchSpace, parse_slos, search_shared

SLOS = parse_slos(["ttft_p99=1.5s", "tpot_p99=50ms"])
SPACE = SearchSpace(gpus=("h100-sxm",), weight_dtypes=("fp8",), kv_dtypes=("fp8",), max_devices=8, max_pp=1,
                    concurrency_step=2.0)
DAY = [4.0, 6.0, 10.0, 20.0, 30.0, 24.0, 12.0, 6.0]
NIGHT = [24.0, 30.0, 20.0, 8.0, 4.0, 4.0, 10.0, 20.0]


def _req(model: str, peak: float) -> SearchRequest:
    return SearchRequest(model, 2048, 256, Demand(peak), SLOS, space=SPACE, sim_top=3, sim_requests=800, top=3)


def test_offset_peaks_pool_to_fewer_gpus() -> None:
    reqs = [_req("llama-3.1-8b", 1.0), _req("llama-3.1-70b", 1.0)]
    f = search_shared(reqs, [DAY, NIGHT])
    assert f.slots == len(DAY)
    assert [m.model for m in f.models] == ["llama-3.1-8b", "llama-3.1-70b"]
    # each model is sized at its own peak, from its curve
    for m, c in zip(f.models, (DAY, NIGHT), strict=True):
        assert m.result.request.demand.peak_req_s == max(c)
        assert max(m.replicas_per_slot) == m.replicas
        assert m.gpus == m.replicas * m.devices
    assert len(f.pools) == 1 and f.pools[0].gpu == "h100-sxm"
    assert f.separate_gpus == sum(m.gpus for m in f.models)
    assert f.gpus < f.separate_gpus
    assert f.pooling_helps
    assert f.usd_per_hour < f.separate_usd_per_hour
    assert f.separate_MW > f.MW
    p = f.pools[0]
    assert p.pooled_gpus == max(
        sum(m.gpus_per_slot[t] for m in f.models) for t in range(f.slots)
    )


def test_coincident_peaks_save_nothing() -> None:
    reqs = [_req("llama-3.1-8b", 1.0), _req("llama-3.1-70b", 1.0)]
    f = search_shared(reqs, [DAY, [v * 0.7 for v in DAY]])
    assert f.gpus == f.separate_gpus
    assert not f.pooling_helps
    assert f.usd_per_hour == pytest.approx(f.separate_usd_per_hour)


def test_without_curves_every_model_runs_at_its_peak() -> None:
    f = search_shared([_req("llama-3.1-8b", 12.0), _req("llama-3.1-70b", 6.0)])
    assert f.slots == 1
    assert f.gpus == f.separate_gpus
    assert f.separate_usd_per_hour == pytest.approx(sum(m.result.best.fleet_usd_per_hour for m in f.models))


def test_shared_never_exceeds_separate_over_random_curves() -> None:
    import numpy as np

    rng = np.random.default_rng(3)
    reqs = [_req("llama-3.1-8b", 1.0), _req("llama-3.1-70b", 1.0)]
    for _ in range(3):
        curves = [list(rng.uniform(0.5, 25.0, size=6)) for _ in reqs]
        f = search_shared(reqs, curves)
        assert f.gpus <= f.separate_gpus


def test_bad_curves_are_refused() -> None:
    reqs = [_req("llama-3.1-8b", 1.0), _req("llama-3.1-70b", 1.0)]
    with pytest.raises(HierroError, match="different lengths"):
        search_shared(reqs, [DAY, DAY[:3]])
    with pytest.raises(HierroError, match="2 models"):
        search_shared(reqs, [DAY])
    with pytest.raises(HierroError, match="at least one model"):
        search_shared([])
