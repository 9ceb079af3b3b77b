"""Workloads: arrival processes, length distributions, trace replay and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hierro.sim import (
    TRACES,
    Empirical,
    Fixed,
    LogNormal,
    SimError,
    UniformRatio,
    Workload,
    constant_arrivals,
    diurnal_rate,
    gamma_arrivals,
    load_trace,
    poisson_arrivals,
    synthetic,
    varying_rate_arrivals,
)


def rng() -> np.random.Generator:
    return np.random.default_rng(3)


def test_arrival_processes_have_their_rate_and_burstiness() -> None:
    n = 50_000
    p = np.diff(poisson_arrivals(4.0, n, rng()))
    assert np.mean(p) == pytest.approx(0.25, rel=0.02)
    assert np.std(p) / np.mean(p) == pytest.approx(1.0, rel=0.03)
    g = np.diff(gamma_arrivals(4.0, 3.0, n, rng()))
    assert np.mean(g) == pytest.approx(0.25, rel=0.05)
    assert np.std(g) / np.mean(g) == pytest.approx(3.0, rel=0.05)
    c = constant_arrivals(4.0, 5)
    assert c.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_thinning_follows_a_diurnal_rate() -> None:
    rate = diurnal_rate(10.0, amplitude=0.8, period_s=1000.0)
    t = varying_rate_arrivals(rate, 18.0, 40_000, rng())
    assert np.all(np.diff(t) >= 0)
    peak = np.sum((t % 1000.0 > 200) & (t % 1000.0 < 300))  # sin near +1
    trough = np.sum((t % 1000.0 > 700) & (t % 1000.0 < 800))  # sin near -1
    assert peak / trough == pytest.approx((1 + 0.8 * 0.95) / (1 - 0.8 * 0.95), rel=0.25)


def test_length_distributions() -> None:
    assert set(Fixed(7).sample(10, rng()).tolist()) == {7}
    u = UniformRatio(1000, 0.8).sample(10_000, rng())
    assert u.min() >= 800 and u.max() <= 1000 and np.mean(u) == pytest.approx(900, rel=0.01)
    ln = LogNormal(100.0, 0.5, max_tokens=400).sample(10_000, rng())
    assert np.median(ln) == pytest.approx(100, rel=0.05) and ln.max() <= 400 and ln.min() >= 1
    e = Empirical.from_array([3, 5]).sample(1000, rng())
    assert set(e.tolist()) == {3, 5}


def test_synthetic_open_and_closed_loops() -> None:
    wl = synthetic(100, Fixed(10), Fixed(5), rng(), rate=2.0)
    assert len(wl) == 100 and wl.arrival_s is not None and wl.arrival_s[0] == 0.0
    cl = synthetic(100, Fixed(10), Fixed(5), rng(), concurrency=8)
    assert cl.closed_loop and cl.arrival_s is None
    assert wl.request(3).prompt_tokens == 10


@pytest.mark.parametrize(("name", "n", "rate"), [
    ("azure-code", 8819, 2.567), ("azure-conv", 19366, 5.530),
    ("mooncake-conv", 12031, 3.401), ("mooncake-synthetic", 3993, 3.907),
])
def test_shipped_traces_match_their_statistics(name: str, n: int, rate: float) -> None:
    wl = load_trace(name)
    assert len(wl) == n
    assert n / wl.span_s == pytest.approx(rate, abs=2e-3)  # TRACE_STATS.md: requests / span
    if name.startswith("mooncake"):
        assert wl.hash_ids is not None and wl.hash_block_tokens == 512
        assert len(wl.request(0).hash_ids) == -(-wl.request(0).prompt_tokens // 512)


def test_rescaling_and_repeating_a_trace() -> None:
    wl = load_trace("azure-conv")
    fast = wl.with_rate(50.0)
    assert fast.rate == pytest.approx(50.0)
    big = wl.repeated(50_000)
    assert len(big) == 50_000 and big.arrival_s is not None
    assert np.all(np.diff(big.arrival_s) >= 0)
    mc = load_trace("mooncake-synthetic").head(100).repeated(250)
    assert mc.hash_offsets is not None and len(mc.hash_offsets) == 251
    assert set(mc.request(0).hash_ids).isdisjoint(mc.request(100).hash_ids)


def test_bad_input_is_one_line_error(tmp_path: Path) -> None:
    for bad in (lambda: poisson_arrivals(-1.0, 5, rng()), lambda: poisson_arrivals(0.0, 5, rng()),
                lambda: gamma_arrivals(1.0, 0.0, 5, rng()), lambda: UniformRatio(10, 1.5).sample(3, rng()),
                lambda: load_trace("azure-nope"), lambda: synthetic(0, Fixed(1), Fixed(1), rng(), rate=1.0),
                lambda: Workload(np.array([0]), np.array([1]), arrival_s=np.array([0.0]))):
        with pytest.raises(SimError) as exc:
            bad()
        assert "\n" not in str(exc.value)
    empty = tmp_path / "empty.csv"
    empty.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n")
    malformed = tmp_path / "bad.csv"
    malformed.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,12,x\n")
    jl = tmp_path / "bad.jsonl"
    jl.write_text('{"timestamp": 0, "input_length": 5}\n')
    for f in (empty, malformed, jl):
        with pytest.raises(SimError):
            load_trace(f)
    assert set(TRACES) == {"azure-code", "azure-conv", "mooncake-conv", "mooncake-synthetic"}
