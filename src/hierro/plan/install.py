"""When an owned accelerator bought comes online: one first-in, first-out installation queue.

Owned capacity needs a delivered accelerator and an energised hall (:mod:`hierro.econ.deployment`:
supply ramp, campus build-out). The allocation (:mod:`hierro.plan.allocate`) buys in order, and
each purchase takes the next places in two queues: the deliveries of its accelerator (shared by
every site, and by rented capacity, which the provider fronts at its start) and the energised
power of its site. Units of a purchase come online at the first month both have room::

    room(t) = min(delivered(t) - units already claimed of that accelerator,
                  (energised W of the site at t - W already claimed there) / all-in W per unit)

Places once claimed are never given back or reordered, so a later purchase never delays an
earlier one, and the schedule the allocation charges for is the schedule the timeline shows.
Months are whole ("at the end of month t"), as in :mod:`hierro.econ.deployment`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from hierro.econ import BuildOut, SupplyRamp

__all__ = ["Installer"]

_EPS_UNITS = 1e-6


@dataclass
class Installer:
    """The two queues: deliveries per accelerator (absent: no ramp, delivered at once) and
    energised power per site."""

    ramps: Mapping[str, SupplyRamp]
    sites: Sequence[BuildOut]
    taken: dict[str, float] = field(default_factory=dict)
    """Accelerator -> units claimed (owned and rented)."""
    used_W: list[float] = field(default_factory=list)
    _first: dict[tuple[str, int], int] = field(default_factory=dict)
    """(accelerator, site) -> a month before which no unit fits any more (claims only grow)."""

    def __post_init__(self) -> None:
        self.taken = {g: self.taken.get(g, 0.0) for g in self.ramps}
        if not self.used_W:
            self.used_W = [0.0] * len(self.sites)

    def _room(self, gpu: str, site: int, W: float, month: int) -> float:
        pool = self.ramps[gpu].delivered(month) - self.taken[gpu] if gpu in self.ramps else math.inf
        return min(pool, (self.sites[site].online_W(month) - self.used_W[site]) / W)

    def next_batch(self, gpu: str, site: int, W: float, last_month: int) -> tuple[int, float] | None:
        """(first month <= ``last_month`` at which more units fit, how many come online then);
        None: none before ``last_month``."""
        start = self._first.get((gpu, site), 0)
        for month in range(start, last_month + 1):
            room = self._room(gpu, site, W, month)
            if room > _EPS_UNITS:
                self._first[(gpu, site)] = month
                return month, room
        self._first[(gpu, site)] = max(start, last_month + 1)
        return None

    def blocked_by(self, gpu: str, site: int, W: float, last_month: int) -> Literal["supply", "power"]:
        """Why nothing more comes online by ``last_month``: deliveries or energised power."""
        if gpu in self.ramps and self.ramps[gpu].delivered(max(last_month, 0)) - self.taken[gpu] <= _EPS_UNITS:
            return "supply"
        return "power"

    def claim(self, gpu: str, units: float, site: int | None = None, W: float = 0.0) -> None:
        """Take ``units`` places in the delivery queue (and, owned, ``units x W`` of the site)."""
        if gpu in self.taken:
            self.taken[gpu] += units
        if site is not None:
            self.used_W[site] += units * W
