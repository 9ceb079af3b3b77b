"""The event kernel: one total order (time, priority, sequence), cancellation, loud failures;
the least-outstanding router's bookkeeping."""

from __future__ import annotations

import gc
import math
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hierro.sim import Engine, SimError
from hierro.sim.cluster import _counters


def test_events_run_in_time_then_priority_then_insertion_order() -> None:
    eng = Engine()
    seen: list[str] = []

    def log(now: float, tag: object) -> None:
        seen.append(f"{now:g}:{tag}")

    eng.schedule(2.0, 1, log, "c")
    eng.schedule(1.0, 1, log, "b1")
    eng.schedule(1.0, 0, log, "a")
    eng.schedule(1.0, 1, log, "b2")
    eng.run()
    assert seen == ["1:a", "1:b1", "1:b2", "2:c"]
    assert eng.now == 2.0
    assert eng.events_processed == 4


def test_cancelled_events_are_skipped_and_until_stops() -> None:
    eng = Engine()
    seen: list[float] = []
    ev = eng.schedule(1.0, 0, lambda t, _: seen.append(t))
    eng.schedule(2.0, 0, lambda t, _: seen.append(t))
    eng.schedule(5.0, 0, lambda t, _: seen.append(t))
    ev.cancel()
    assert eng.peek() == 2.0
    eng.run(until=3.0)
    assert seen == [2.0]
    eng.step()
    assert seen == [2.0, 5.0]
    assert eng.peek() == math.inf


def test_handlers_can_schedule_and_failures_are_loud() -> None:
    eng = Engine()

    def chain(now: float, n: object) -> None:
        assert isinstance(n, int)
        if n:
            eng.schedule(now + 1.0, 0, chain, n - 1)

    eng.schedule(0.0, 0, chain, 3)
    assert eng.run() == 3.0
    with pytest.raises(SimError):
        eng.schedule(1.0, 0, chain, 0)  # in the past
    with pytest.raises(SimError):
        eng.schedule(float("nan"), 0, chain, 0)
    with pytest.raises(SimError):
        eng.step()  # nothing left

    def boom(now: float, _: object) -> None:
        raise RuntimeError("handler failed")

    eng.schedule(4.0, 0, boom)
    with pytest.raises(RuntimeError):
        eng.run()


def test_the_collector_is_paused_only_while_the_loop_runs() -> None:
    """The cyclic collector is off inside ``run`` (no cycles per event; its passes over live
    records cost time) and restored afterwards, also when a handler fails or it was off."""
    seen: list[bool] = []
    eng = Engine()
    eng.schedule(1.0, 0, lambda t, _: seen.append(gc.isenabled()))
    assert gc.isenabled()
    eng.run()
    assert seen == [False] and gc.isenabled()

    def boom(now: float, _: object) -> None:
        raise RuntimeError("handler failed")

    eng.schedule(2.0, 0, boom)
    with pytest.raises(RuntimeError):
        eng.run()
    assert gc.isenabled()
    gc.disable()
    try:
        eng.schedule(3.0, 0, lambda t, _: None)
        eng.run()
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 70), ops=st.lists(st.integers(0, 10**6), min_size=1, max_size=400))
def test_least_outstanding_takes_the_least_loaded_in_turn(n: int, ops: list[int]) -> None:
    """The bit-set bookkeeping of least outstanding routes to a least-loaded replica, the first
    one at or after the replica after the last pick (wrapping), under any interleaving of
    arrivals and completions."""
    pool = SimpleNamespace(out=[0] * n, route=None)
    take, done = _counters("least_outstanding", pool)  # type: ignore[arg-type]
    busy: list[int] = []
    after = 0
    for op in ops:
        if op % 3 == 0 and busy:
            i = busy.pop(op % len(busy))
            done(i)
        else:
            low = min(pool.out)
            expected = next(j % n for j in range(after, after + n) if pool.out[j % n] == low)
            before = list(pool.out)
            i = take(None)  # type: ignore[arg-type]
            after = (i + 1) % n
            assert i == expected
            before[i] += 1
            assert pool.out == before
            busy.append(i)
    assert sorted(busy) == sorted(j for j, c in enumerate(pool.out) for _ in range(c))
