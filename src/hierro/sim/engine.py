"""A small discrete-event kernel: one heap keyed by (time, priority, sequence number).

The design follows SimPy's ``Environment`` (``core.py``: ``heappush(self._queue, (self._now +
delay, priority, next(self._eid), event))``): the order of events is decided entirely by time,
then priority, then a monotonically increasing id, so simultaneous events run in the same order
every time and no event needs ``__lt__``. Behaviour lives in plain callables, not subclasses.

Failures are loud: scheduling in the past, a non-finite time, or a handler that raises stops
the run with :class:`SimError`; a cancelled event is skipped, never silently re-ordered.

Priority and sequence number share one integer key, ``priority · 2^48 + seq``: for the small
priorities used here (and fewer than 2^48 events) it orders exactly as the pair does, and a
heap entry one element shorter is cheaper to build and compare.

While :meth:`Engine.run` loops, the cyclic garbage collector is paused: the simulator creates
no reference cycles per event, and the collector's passes over millions of live records
(request rows, workload columns) cost about a tenth of a long run; it is restored on return.
"""

from __future__ import annotations

import gc
import heapq
import math
from collections.abc import Callable
from typing import Any

from hierro.errors import HierroError

__all__ = ["ARRIVAL", "STEP", "Engine", "Event", "SimError"]

ARRIVAL = 0
"""Priority of request arrivals: at equal times they run before a replica plans its next
step, so a request that arrives exactly at a step boundary joins that step."""

STEP = 1
"""Priority of replica step boundaries."""

_SEQ_BITS = 48
"""An event's key is ``priority << _SEQ_BITS | seq`` (priority first, then insertion order)."""
_INF = math.inf


class SimError(HierroError):
    """A simulation that cannot go on: bad input or a broken invariant (message is one line)."""


class Event:
    """Handle of a scheduled call of ``handler(now, arg)``; ``cancel()`` makes the kernel skip it."""

    __slots__ = ("_engine", "seq", "time")

    def __init__(self, engine: Engine, time: float, seq: int) -> None:
        self._engine = engine
        self.time = time
        self.seq = seq
        """The event's key (its place among simultaneous events: priority, then insertion)."""

    @property
    def cancelled(self) -> bool:
        return self.seq in self._engine._cancelled

    def cancel(self) -> None:
        self._engine.cancel(self.seq)


class Engine:
    """The event loop. ``schedule`` events, then ``run`` until the heap is empty or ``until``.

    The heap holds plain tuples ``(time, key, handler, arg)`` with ``key = priority · 2^48 +
    seq``; a cancelled event's key sits in a set until the kernel pops (and skips) it.

    The kernel owns no randomness: callers pass an explicit ``numpy.random.Generator`` to
    whatever needs one, so a run is a pure function of its inputs and seed.
    """

    __slots__ = ("_cancelled", "_heap", "_now", "_seq", "events_processed")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[float, Any], None], Any]] = []
        self._cancelled: set[int] = set()
        self._now = 0.0
        self._seq = 0
        self.events_processed = 0
        """Events handled so far (cancelled ones excluded): the cost of a run."""

    @property
    def now(self) -> float:
        """Current simulated time in seconds."""
        return self._now

    def __len__(self) -> int:
        return len(self._heap)

    def schedule(
        self, time: float, priority: int, handler: Callable[[float, Any], None], arg: Any = None
    ) -> Event:
        """Call ``handler(time, arg)`` at ``time``; ties are broken by ``priority`` then order."""
        return Event(self, time, self.push(time, priority, handler, arg))

    def push(self, time: float, priority: int, handler: Callable[[float, Any], None], arg: Any = None) -> int:
        """``schedule`` without the handle: returns the event's key for ``cancel``."""
        if not self._now <= time < _INF:  # also false for nan
            raise SimError(f"event scheduled at t={time!r} s, before now={self._now!r} s or not finite")
        seq = self._seq
        self._seq = seq + 1
        key = (priority << _SEQ_BITS) + seq
        heapq.heappush(self._heap, (time, key, handler, arg))
        return key

    def cancel(self, seq: int) -> None:
        """Skip the pending event with key ``seq`` (as :meth:`push` returned it)."""
        self._cancelled.add(seq)

    def _drop_cancelled(self) -> None:
        heap, cancelled = self._heap, self._cancelled
        while heap and heap[0][1] in cancelled:
            cancelled.discard(heapq.heappop(heap)[1])

    def peek(self) -> float:
        """Time of the next live event, or +inf when none is left."""
        self._drop_cancelled()
        heap = self._heap
        return heap[0][0] if heap else math.inf

    def step(self) -> None:
        """Process the next live event."""
        self._drop_cancelled()
        if not self._heap:
            raise SimError("step() on an empty event queue")
        t, _, handler, arg = heapq.heappop(self._heap)
        self._now = t
        self.events_processed += 1
        handler(t, arg)

    def run(self, until: float = math.inf) -> float:
        """Process events until none is left or the next one lies beyond ``until``; returns now."""
        heap = self._heap
        cancelled = self._cancelled
        pop = heapq.heappop
        n = 0
        collect = gc.isenabled()
        gc.disable()
        try:
            if until == _INF:
                while heap:
                    t, key, handler, arg = pop(heap)
                    if cancelled and key in cancelled:
                        cancelled.discard(key)
                        continue
                    self._now = t
                    n += 1
                    handler(t, arg)
            else:
                while heap:
                    t, key, handler, arg = heap[0]
                    if t > until:
                        break
                    pop(heap)
                    if cancelled and key in cancelled:
                        cancelled.discard(key)
                        continue
                    self._now = t
                    n += 1
                    handler(t, arg)
        finally:
            self.events_processed += n
            if collect:
                gc.enable()
        return self._now
