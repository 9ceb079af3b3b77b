"""Fleet sizing: replicas for the peak of a demand, and heterogeneous fleets (Mélange).

Mélange (Griggs et al., "Mélange: Cost Efficient Large Language Model Serving by Exploiting GPU
Heterogeneity", 2024) splits the request-size distribution into buckets and observes that the
cheapest accelerator differs by bucket: small requests on cheap chips, long ones on big-memory
ones. It solves an ILP; here a greedy with local improvement does the same job on a handful of
buckets and offers:

1. every bucket goes to the offer with the lowest $/h per request/s for it;
2. a bucket moves to another offer whenever that lowers the whole fleet's cost (replicas are
   whole, so pooling buckets on one offer can save a replica);
3. the result is compared with every homogeneous fleet and the cheaper one is returned, so the
   mix never costs more than the best single-offer fleet.

An offer serving several buckets is loaded by Σ λ_b / r_b of its replicas (each bucket uses its
share of a replica's time, Mélange's fractional-load approximation); replicas =
ceil((1 + headroom) x Σ λ_b / r_b).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hierro.errors import HierroError
from hierro.perf import Calibration, default_calibration
from hierro.search.backends import Backend, SerialBackend
from hierro.search.screen import assemble, gpu_prices, jobs, screen_groups, screen_value
from hierro.search.slo import SloTarget
from hierro.search.space import SearchSpace, enumerate_space
from hierro.specs import ModelArch
from hierro.units import MEGA

__all__ = ["Bucket", "Fleet", "FleetPart", "Offer", "best_homogeneous", "mix_fleet", "offers_from_search"]


@dataclass(frozen=True, slots=True)
class Bucket:
    """Requests of about ``isl`` / ``osl`` tokens arriving at ``req_s`` at the peak."""

    isl: int
    osl: int
    req_s: float


@dataclass(frozen=True, slots=True)
class Offer:
    """A replica type: its price, power, and the request rate it carries per bucket within the
    SLO (0: it cannot serve that bucket)."""

    label: str
    gpu: str
    devices: int
    usd_per_hour: float
    """Per replica."""
    W: float
    """All-in W per replica."""
    req_s: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class FleetPart:
    offer: Offer
    buckets: tuple[int, ...]
    replicas: int


@dataclass(frozen=True, slots=True)
class Fleet:
    parts: tuple[FleetPart, ...]
    headroom: float

    @property
    def usd_per_hour(self) -> float:
        return sum(p.replicas * p.offer.usd_per_hour for p in self.parts)

    @property
    def gpus(self) -> int:
        return sum(p.replicas * p.offer.devices for p in self.parts)

    @property
    def MW(self) -> float:
        return sum(p.replicas * p.offer.W for p in self.parts) / MEGA

    @property
    def homogeneous(self) -> bool:
        return len({p.offer.gpu for p in self.parts}) <= 1


def _replicas(offer: Offer, buckets: Sequence[Bucket], idx: Sequence[int], headroom: float) -> int:
    if not idx:
        return 0
    load = sum(buckets[b].req_s / offer.req_s[b] for b in idx)
    return max(1, math.ceil(load * (1.0 + headroom) - 1e-9))


def _cost(offers: Sequence[Offer], buckets: Sequence[Bucket], assign: Sequence[int], headroom: float) -> float:
    total = 0.0
    for o in set(assign):
        idx = [b for b, a in enumerate(assign) if a == o]
        total += _replicas(offers[o], buckets, idx, headroom) * offers[o].usd_per_hour
    return total


def _fleet(offers: Sequence[Offer], buckets: Sequence[Bucket], assign: Sequence[int], headroom: float) -> Fleet:
    parts = []
    for o in sorted(set(assign)):
        idx = tuple(b for b, a in enumerate(assign) if a == o)
        parts.append(FleetPart(offers[o], idx, _replicas(offers[o], buckets, idx, headroom)))
    return Fleet(tuple(parts), headroom)


def _check(offers: Sequence[Offer], buckets: Sequence[Bucket]) -> None:
    if not buckets or not offers:
        raise HierroError("fleet sizing needs at least one bucket and one offer")
    for b, bk in enumerate(buckets):
        if bk.req_s < 0:
            raise HierroError(f"bucket {b} has a negative rate {bk.req_s}")
        if not any(o.req_s[b] > 0 for o in offers):
            raise HierroError(f"no offer serves bucket {b} (isl {bk.isl}, osl {bk.osl}) within the SLO")


def best_homogeneous(offers: Sequence[Offer], buckets: Sequence[Bucket], headroom: float = 0.1) -> Fleet:
    """The cheapest fleet of one offer serving every bucket (ties: the first offer)."""
    _check(offers, buckets)
    best: tuple[float, int] | None = None
    for o, off in enumerate(offers):
        if all(r > 0 for r in off.req_s):
            c = _cost(offers, buckets, [o] * len(buckets), headroom)
            if best is None or c < best[0]:
                best = (c, o)
    if best is None:
        raise HierroError("no single offer serves every bucket; a homogeneous fleet is impossible")
    return _fleet(offers, buckets, [best[1]] * len(buckets), headroom)


def mix_fleet(offers: Sequence[Offer], buckets: Sequence[Bucket], headroom: float = 0.1) -> Fleet:
    """The cheapest fleet the greedy finds, never dearer than :func:`best_homogeneous`."""
    _check(offers, buckets)
    # 1. each bucket to its cheapest offer per unit of load
    assign = []
    for b in range(len(buckets)):
        unit = [o.usd_per_hour / o.req_s[b] if o.req_s[b] > 0 else np.inf for o in offers]
        assign.append(int(np.argmin(unit)))
    # 2. move single buckets while the fleet gets cheaper
    cost = _cost(offers, buckets, assign, headroom)
    improved = True
    while improved:
        improved = False
        for b in range(len(buckets)):
            for o in range(len(offers)):
                if o == assign[b] or offers[o].req_s[b] <= 0:
                    continue
                trial = [*assign[:b], o, *assign[b + 1 :]]
                c = _cost(offers, buckets, trial, headroom)
                if c < cost - 1e-9:
                    assign, cost, improved = trial, c, True
    mix = _fleet(offers, buckets, assign, headroom)
    # 3. never worse than one offer for everything
    try:
        homo = best_homogeneous(offers, buckets, headroom)
    except HierroError:
        return mix
    return homo if homo.usd_per_hour <= mix.usd_per_hour else mix


def offers_from_search(
    model: ModelArch,
    buckets: Sequence[Bucket],
    slos: tuple[SloTarget, ...],
    space: SearchSpace | None = None,
    *,
    calib: Calibration | None = None,
    preset: str | None = None,
    backend: Backend | None = None,
) -> tuple[Offer, ...]:
    """One offer per layout of the space: for each bucket, the highest request rate per replica
    among its load points that pass the screen's SLO margins (screen figures, not simulated)."""
    be = backend or SerialBackend()
    cal = calib or default_calibration()
    per_bucket: list[dict[str, tuple[float, str, int, float, float]]] = []
    for bk in buckets:
        sp = enumerate_space(model, bk.isl, bk.osl, space)
        prices, _ = gpu_prices(sorted({g.gpu for g in sp.groups}), preset)
        groups = tuple(g for g in sp.groups if g.gpu in prices)
        sp = type(sp)(sp.model, sp.isl, sp.osl, sp.spec, groups, sp.pruned_plan, sp.pruned_memory)
        raws = [r for chunk in be.map(screen_groups, jobs(sp, cal, max(1, be.workers))) for r in chunk]
        t = assemble(groups, raws, prices, demand_req_s=max(bk.req_s, 1e-9), osl=bk.osl, headroom=0.0)
        ok = np.ones(len(t), dtype=bool)
        for s in slos:
            ok &= screen_value(t, s) <= s.limit_s
        best: dict[str, tuple[float, str, int, float, float]] = {}
        for i in np.flatnonzero(ok).tolist():
            g = groups[int(t.group[i])]
            key = f"{g.label()} {g.framework} mbt{g.max_batched_tokens}"
            rate = float(t.req_s[i])
            if key not in best or rate > best[key][0]:
                p = prices[g.gpu]
                best[key] = (rate, g.gpu, g.devices, p.usd_per_gpu_hour * g.devices, p.all_in_W * g.devices)
        per_bucket.append(best)
    keys = sorted({k for d in per_bucket for k in d})
    offers = []
    for k in keys:
        info = next(d[k] for d in per_bucket if k in d)
        rates = tuple(d[k][0] if k in d else 0.0 for d in per_bucket)
        offers.append(Offer(k, info[1], info[2], info[3], info[4], rates))
    return tuple(offers)
