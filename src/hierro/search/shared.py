"""Several models sharing one fleet.

Each model is searched on its own (:func:`hierro.search.search`) and its winning configuration
fixes the replica type and the request rate one replica carries within the SLOs. Sized
separately, each model holds replicas for its own peak, ``ceil(peak x (1 + headroom) / r)``, all
day. Models whose winners run on the same accelerator type can instead draw their replicas from
one pool of that type: in every slot of the demand curves each model takes the replicas its
demand then needs (at least one, so every model stays loaded), and the pool holds the largest
sum over the slots. Since ``max_t Σ_m g_m(t) <= Σ_m max_t g_m(t)``, the shared pool never needs
more GPUs than the separate fleets; it needs as many when the peaks coincide (replicas grow with
demand, so the slot of the common peak is the maximum of the sum), and fewer when they do not
(a diurnal chat model and an overnight batch model, say).

A disaggregated winner scales both of its pools in proportion to the demand of the slot
(rounded up, at least one replica each).

Without curves every model runs at its peak all day, so pooling saves nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from hierro.errors import HierroError
from hierro.search.backends import Backend
from hierro.search.optimize import SearchProgress, SearchRequest, SearchResult, search
from hierro.search.slo import Demand
from hierro.units import MEGA

__all__ = ["SharedFleet", "SharedModel", "SharedPool", "search_shared"]


@dataclass(frozen=True, slots=True)
class SharedModel:
    """One model's winner, sized for its own peak, and its replicas per slot of the curve."""

    model: str
    result: SearchResult
    gpu: str
    devices: int
    """Accelerators per replica."""
    req_s_per_replica: float
    usd_per_gpu_hour: float
    W_per_gpu: float
    replicas_per_slot: tuple[int, ...]
    gpus_per_slot: tuple[int, ...]

    @property
    def replicas(self) -> int:
        """Replicas for the model's own peak (its separate fleet)."""
        return self.result.best.replicas

    @property
    def gpus(self) -> int:
        return self.result.best.gpus

    @property
    def usd_per_hour(self) -> float:
        return self.result.best.fleet_usd_per_hour

    @property
    def MW(self) -> float:
        return self.result.best.fleet_MW


@dataclass(frozen=True, slots=True)
class SharedPool:
    """GPUs of one accelerator type shared by the models whose winners run on it."""

    gpu: str
    models: tuple[int, ...]
    """Indices into :attr:`SharedFleet.models`."""
    separate_gpus: int
    """Σ over the models of the GPUs for each one's own peak."""
    pooled_gpus: int
    """The largest sum over the slots of the GPUs the models need together."""
    peak_slot: int
    usd_per_gpu_hour: float
    W_per_gpu: float

    @property
    def saved_gpus(self) -> int:
        return self.separate_gpus - self.pooled_gpus


@dataclass(frozen=True, slots=True)
class SharedFleet:
    models: tuple[SharedModel, ...]
    pools: tuple[SharedPool, ...]
    slots: int

    @property
    def separate_gpus(self) -> int:
        return sum(m.gpus for m in self.models)

    @property
    def gpus(self) -> int:
        """GPUs of the shared fleet (pooled per accelerator type)."""
        return sum(p.pooled_gpus for p in self.pools)

    @property
    def separate_usd_per_hour(self) -> float:
        return sum(m.usd_per_hour for m in self.models)

    @property
    def usd_per_hour(self) -> float:
        return sum(p.pooled_gpus * p.usd_per_gpu_hour for p in self.pools)

    @property
    def separate_MW(self) -> float:
        return sum(m.MW for m in self.models)

    @property
    def MW(self) -> float:
        return sum(p.pooled_gpus * p.W_per_gpu for p in self.pools) / MEGA

    @property
    def pooling_helps(self) -> bool:
        return self.gpus < self.separate_gpus


def _replicas(req_s: float, per_replica: float, headroom: float) -> int:
    # the screen's rule (hierro.search.screen.assemble), so the peak slot gives the winner's count
    return max(1, math.ceil(req_s * (1.0 + headroom) / per_replica - 1e-9))


def search_shared(
    requests: Sequence[SearchRequest],
    curves: Sequence[Sequence[float] | None] | None = None,
    *,
    backend: Backend | None = None,
    progress: SearchProgress | None = None,
) -> SharedFleet:
    """Size a fleet for several models (see the module docstring).

    ``curves[i]`` is model i's demand in requests/s per slot (the same slots for every model,
    e.g. 24 hours); when given it replaces the request's demand by :meth:`Demand.from_curve` with
    the request's headroom. A model without a curve runs at its peak in every slot.
    """
    if not requests:
        raise HierroError("a shared fleet needs at least one model")
    cs: list[Sequence[float] | None] = list(curves) if curves is not None else [None] * len(requests)
    if len(cs) != len(requests):
        raise HierroError(f"{len(cs)} demand curves for {len(requests)} models")
    lengths = {len(c) for c in cs if c is not None}
    if len(lengths) > 1:
        raise HierroError(f"demand curves of different lengths: {sorted(lengths)}; use the same slots")
    slots = lengths.pop() if lengths else 1
    for i, c in enumerate(cs):
        if c is not None and any(not (math.isfinite(v) and v >= 0) for v in c):
            raise HierroError(f"the demand curve of model {i} has a negative or non-finite rate")
    models: list[SharedModel] = []
    for req, c in zip(requests, cs, strict=True):
        if c is not None:
            req = replace(req, demand=Demand.from_curve(c, req.demand.headroom))
        res = search(req, backend=backend, progress=progress)
        best = res.best
        curve = list(c) if c is not None else [req.demand.peak_req_s] * slots
        h = req.demand.headroom
        g = best.candidate.group
        d = best.disagg
        if d is None:
            per = float(res.table.req_s[best.row])
            reps = tuple(_replicas(v, per, h) for v in curve)
            gpus = tuple(r * g.devices for r in reps)
        else:
            per = d.req_s / best.replicas
            peak = req.demand.peak_req_s
            split = [(max(1, math.ceil(d.prefill_replicas * v / peak - 1e-9)),
                      max(1, math.ceil(d.decode_replicas * v / peak - 1e-9))) for v in curve]
            reps = tuple(a + b for a, b in split)
            gpus = tuple(a * d.prefill.devices + b * d.decode.devices for a, b in split)
        models.append(SharedModel(
            model=res.space.model.id, result=res, gpu=g.gpu, devices=g.devices, req_s_per_replica=per,
            usd_per_gpu_hour=best.fleet_usd_per_hour / best.gpus, W_per_gpu=best.fleet_MW * MEGA / best.gpus,
            replicas_per_slot=reps, gpus_per_slot=gpus,
        ))
    pools: list[SharedPool] = []
    for gpu in dict.fromkeys(m.gpu for m in models):
        idx = tuple(i for i, m in enumerate(models) if m.gpu == gpu)
        per_slot = [sum(models[i].gpus_per_slot[t] for i in idx) for t in range(slots)]
        peak = max(range(slots), key=lambda t: (per_slot[t], -t))
        first = models[idx[0]]
        pools.append(SharedPool(
            gpu=gpu, models=idx, separate_gpus=sum(models[i].gpus for i in idx), pooled_gpus=per_slot[peak],
            peak_slot=peak, usd_per_gpu_hour=first.usd_per_gpu_hour, W_per_gpu=first.W_per_gpu,
        ))
    return SharedFleet(tuple(models), tuple(pools), slots)
