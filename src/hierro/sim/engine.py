"""A small discrete-event kernel: one heap keyed by (time, priority, sequence number).

The design follows SimPy's ``Environment`` (``core.py``: ``heappush(self._queue, (self._now +
delay, priority, next(self._eid), event))``): the order of events is decided entirely by time,
then priority, then a monotonically increasing id, so simultaneous events run in the same order
every time and no event needs ``__lt__``. Behaviour lives in plain callables, not subclasses.

Failures are loud: scheduling in the past, a non-finite time, or a handler that raises stops
the run with :class:`SimError`; a cancelled event is skipped, never silently re-ordered.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hierro.errors import HierroError

__all__ = ["ARRIVAL", "STEP", "Engine", "Event", "SimError"]

ARRIVAL = 0
"""Priority of request arrivals: at equal times they run before a replica plans its next
step, so a request that arrives exactly at a step boundary joins that step."""

STEP = 1
"""Priority of replica step boundaries."""


class SimError(HierroError):
    """A simulation that cannot go on: bad input or a broken invariant (message is one line)."""


@dataclass(slots=True, eq=False)
class Event:
    """A scheduled call of ``handler(now, arg)``; ``cancel()`` makes the kernel skip it."""

    time: float
    handler: Callable[[float, Any], None]
    arg: Any = None
    cancelled: bool = field(default=False)

    def cancel(self) -> None:
        self.cancelled = True


class Engine:
    """The event loop. ``schedule`` events, then ``run`` until the heap is empty or ``until``.

    The kernel owns no randomness: callers pass an explicit ``numpy.random.Generator`` to
    whatever needs one, so a run is a pure function of its inputs and seed.
    """

    __slots__ = ("_heap", "_now", "_seq", "events_processed")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, Event]] = []
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
        if not time >= self._now or math.isinf(time):
            raise SimError(f"event scheduled at t={time!r} s, before now={self._now!r} s or not finite")
        ev = Event(time, handler, arg)
        heapq.heappush(self._heap, (time, priority, self._seq, ev))
        self._seq += 1
        return ev

    def peek(self) -> float:
        """Time of the next live event, or +inf when none is left."""
        heap = self._heap
        while heap and heap[0][3].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else math.inf

    def step(self) -> None:
        """Process the next live event."""
        heap = self._heap
        while True:
            if not heap:
                raise SimError("step() on an empty event queue")
            t, _, _, ev = heapq.heappop(heap)
            if not ev.cancelled:
                break
        self._now = t
        self.events_processed += 1
        ev.handler(t, ev.arg)

    def run(self, until: float = math.inf) -> float:
        """Process events until none is left or the next one lies beyond ``until``; returns now."""
        heap = self._heap
        pop = heapq.heappop
        n = 0
        while heap:
            t, _, _, ev = heap[0]
            if t > until:
                break
            pop(heap)
            if ev.cancelled:
                continue
            self._now = t
            n += 1
            ev.handler(t, ev.arg)
        self.events_processed += n
        return self._now
