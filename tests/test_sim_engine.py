"""The event kernel: one total order (time, priority, sequence), cancellation, loud failures."""

from __future__ import annotations

import math

import pytest

from hierro.sim import Engine, SimError


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
