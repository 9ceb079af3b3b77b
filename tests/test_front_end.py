"""The serving front end (hierro.perf.FrontEnd): lookup, file round trip, and its effect on the
simulator and the estimate."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from hierro.perf import (
    Calibration,
    FrontEnd,
    StepModel,
    estimate,
    load_calibration,
    starting_calibration,
)
from hierro.perf.efficiency import FRONT_END_BUDGET, dump_calibration
from hierro.sim import Fixed, Workload, simulate, synthetic

FE = FrontEnd(0.05, 2e-3, 1e-5)


def _with(fe: FrontEnd, key: str = "vllm") -> Calibration:
    c = starting_calibration()
    return dataclasses.replace(c, ttft_overhead={**c.ttft_overhead, key: fe.fixed_s},
                               ttft_per_inflight={key: fe.per_inflight_s},
                               ttft_per_prompt_token={key: fe.per_prompt_token_s},
                               ttft_per_step={key: fe.per_step},
                               ttft_per_step_per_token={key: fe.per_step_per_token}, _memo={})


def test_delay_is_fixed_plus_per_request_and_per_token() -> None:
    assert FE.delay(10, 1000) == pytest.approx(0.05 + 0.02 + 0.01)
    assert np.allclose(FE.delay(np.array([1.0, 2.0]), 0.0), [0.052, 0.054])


def test_most_specific_key_wins() -> None:
    c = dataclasses.replace(
        starting_calibration(),
        ttft_overhead={"*": 0.1, "trtllm": 0.2, "triton-trtllm": 0.01, "dynamo-trtllm/disaggregated": 0.3},
        ttft_per_inflight={"trtllm": 4e-3}, _memo={})
    assert c.front_end("triton-trtllm") == FrontEnd(0.01)  # the stack's own, per-request part 0
    assert c.front_end("trtllm") == FrontEnd(0.2, 4e-3)
    assert c.front_end("dynamo-trtllm") == FrontEnd(0.2, 4e-3)  # its family
    assert c.front_end("dynamo-trtllm", disaggregated=True) == FrontEnd(0.3)
    assert c.front_end("vllm") == FrontEnd(0.1)
    assert c.front_end("dynamo-trtllm", disaggregated=True).fixed_s == 0.3
    # a disaggregated stack the table lacks takes the other disaggregated stacks' front end
    d = dataclasses.replace(c, ttft_overhead={**c.ttft_overhead, "*/disaggregated": 0.25}, _memo={})
    assert d.front_end("dynamo-vllm", disaggregated=True) == FrontEnd(0.25)
    assert d.front_end("dynamo-vllm") == FrontEnd(0.1)


def test_calibration_file_round_trip(tmp_path: Path) -> None:
    stepped = FrontEnd(0.05, 2e-3, 1e-5, 3.0, 1e-3)
    c = _with(stepped)
    p = tmp_path / "c.yaml"
    p.write_text(dump_calibration(c))
    back = load_calibration(p)
    assert back.front_end("vllm") == stepped


def test_stepped_delay_counts_engine_steps() -> None:
    fe = FrontEnd(0.01, 0.0, 0.0, 2.0, 1e-3)
    assert fe.stepped and not FE.stepped
    # 2 steps + 1 step per 1,000 prompt tokens, of 20 ms each
    assert fe.delay(5, 2000, 0.02) == pytest.approx(0.01 + 0.02 * (2.0 + 2.0))
    # the per-token steps follow the chunks: a budget twice the reference halves them
    assert fe.steps(2000, 2 * FRONT_END_BUDGET) == pytest.approx(2.0 + 1.0)
    assert fe.steps(2000, FRONT_END_BUDGET) == fe.steps(2000)


def test_simulated_ttft_carries_the_stepped_front_end(sm70: StepModel) -> None:
    """One request at a time: the delay is the steps of the last decode step before it."""
    base = dataclasses.replace(sm70, calib=_with(FrontEnd(0.0)))
    stepped = dataclasses.replace(sm70, calib=_with(FrontEnd(0.0, 0.0, 0.0, 3.0)))
    a, b = simulate(base, _closed(1)), simulate(stepped, _closed(1))
    extra = b.ttft.mean - a.ttft.mean
    # the first request meets an idle engine (no step yet); the rest wait 3 decode steps
    assert 2.0 * a.tpot.mean < extra < 3.0 * a.tpot.mean * 1.05
    assert b.tpot.mean == pytest.approx(a.tpot.mean, rel=1e-6)


def _closed(n: int, isl: int = 1024) -> Workload:
    return synthetic(4 * n, Fixed(isl), Fixed(64), np.random.default_rng(0), concurrency=n)


def test_simulated_ttft_carries_the_front_end(sm70: StepModel) -> None:
    base = dataclasses.replace(sm70, calib=_with(FrontEnd(0.0)))
    with_fe = dataclasses.replace(sm70, calib=_with(FE))
    # one request at a time: exactly the delay at one request in flight
    a, b = simulate(base, _closed(1)), simulate(with_fe, _closed(1))
    assert b.ttft.mean - a.ttft.mean == pytest.approx(FE.delay(1, 1024), rel=1e-6)
    # more requests in flight: a longer delay; nothing lost
    a, b = simulate(base, _closed(32)), simulate(with_fe, _closed(32))
    assert b.ttft.mean - a.ttft.mean > FE.delay(16, 1024)
    assert b.n_requests == a.n_requests == 128


def test_open_loop_front_end_keeps_arrival_order(sm70: StepModel) -> None:
    wl = synthetic(300, Fixed(512), Fixed(32), np.random.default_rng(3), rate=40.0)
    res = simulate(dataclasses.replace(sm70, calib=_with(FE)), wl)
    assert res.n_requests == 300
    rec = res.records
    order = np.argsort(rec["arrival_s"], kind="stable")
    assert np.all(np.diff(rec["first_scheduled_s"][order]) >= -1e-12)


def test_estimate_ttft_grows_with_the_front_end_per_request(sm70: StepModel) -> None:
    base = dataclasses.replace(sm70, calib=_with(FrontEnd(0.05)))
    with_fe = dataclasses.replace(sm70, calib=_with(FrontEnd(0.05, 2e-3)))
    for n in (1, 16):
        gap = estimate(with_fe, isl=1024, osl=128, concurrency=n).ttft_s - estimate(base, isl=1024, osl=128,
                                                                                    concurrency=n).ttft_s
        assert gap == pytest.approx(2e-3 * n, rel=0.2)
