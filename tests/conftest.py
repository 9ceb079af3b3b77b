"""Fixtures shared by the simulator tests (test_sim_*.py).

The suite runs with ``--import-mode=importlib``, so test modules cannot import one another:
shared helpers are fixtures here. The sim fixtures are named ``sim_*`` (and ``sm70``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from hierro.perf import StepModel
from hierro.sim import SimResult, UniformRatio, Workload, synthetic
from hierro.specs import Plan, get_accelerator, get_model

PoissonFactory = Callable[..., Workload]
"""``poisson(n, rate, seed=1, isl=2048, osl=512)``: an open loop with lengths uniform in
[isl/2, isl] and [osl/2, osl]."""

Checker = Callable[[SimResult, Workload], None]


@pytest.fixture(scope="session")
def sm70() -> StepModel:
    """Llama-3.1-70B, TP8 on H100 SXM (bf16)."""
    return StepModel(get_model("llama-3.1-70b"), get_accelerator("h100-sxm"), Plan(tp=8))


def _poisson(n: int, rate: float, seed: int = 1, isl: int = 2048, osl: int = 512) -> Workload:
    return synthetic(n, UniformRatio(isl, 0.5), UniformRatio(osl, 0.5), np.random.default_rng(seed),
                     rate=rate)


@pytest.fixture(scope="session")
def sim_poisson() -> PoissonFactory:
    return _poisson


def _conserved(res: SimResult, wl: Workload) -> None:
    """Every request finishes exactly once with all its tokens, in causal order, and the KV pool
    never held more than its capacity (the pool raises on overflow; the peak is <= 1)."""
    r = res.records
    assert len(r) == len(wl)
    assert sorted(r["id"].tolist()) == list(range(len(wl)))
    assert np.all(np.isfinite(r["finish_s"]))
    assert int(r["output_tokens"].sum()) == int(wl.output_tokens.sum())
    assert np.all(r["first_scheduled_s"] >= r["arrival_s"])
    assert np.all(r["first_token_s"] > r["first_scheduled_s"])
    assert np.all(r["finish_s"] >= r["first_token_s"])
    assert 0.0 < res.kv_peak_fraction <= 1.0
    assert 0.0 <= res.host_peak_fraction <= 1.0
    assert int(r["preemptions"].sum()) == res.preemptions >= res.swap_outs >= 0


@pytest.fixture(scope="session")
def sim_conserved() -> Checker:
    return _conserved
