"""Several models sharing one fleet.

Each model is searched on its own (:func:`hierro.search.search`) and its winning configuration
fixes the replica type and the request rate one replica carries within the SLOs. Sized
separately, each model holds replicas for its own peak, ``ceil(peak x (1 + headroom) / r)``, all
day. Models whose winners run on the same accelerator type can instead draw their replicas from
one pool of that type: in every slot of the demand curves each model takes the replicas its
demand then needs (at least one, so every model stays loaded; :func:`curve_fleet`), and the pool
holds the largest sum over the slots. Since ``max_t Σ_m g_m(t) <= Σ_m max_t g_m(t)``, the shared
pool never needs more GPUs than the separate fleets; it needs as many when the peaks coincide
(replicas grow with demand, so the slot of the common peak is the maximum of the sum), and fewer
when they do not (a diurnal chat model and an overnight batch model, say).

A disaggregated winner scales both of its pools in proportion to the demand of the slot
(rounded up, at least one replica each); a mixed one draws from two accelerator pools.

Without curves every model runs at its peak all day, so pooling saves nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from hierro.errors import HierroError
from hierro.search.backends import Backend
from hierro.search.demand import CurveFleet, curve_fleet
from hierro.search.optimize import SearchProgress, SearchRequest, SearchResult, search
from hierro.search.slo import Demand
from hierro.units import MEGA

__all__ = ["SharedFleet", "SharedModel", "SharedPool", "search_shared"]


@dataclass(frozen=True, slots=True)
class SharedModel:
    """One model's winner, sized for its own peak, and its GPUs per slot of the curve."""

    model: str
    result: SearchResult
    fleet: CurveFleet
    name: str = ""
    """The model's name in the shared fleet (default: its id)."""

    @property
    def gpu(self) -> str:
        """The winner's accelerator (the decode pool's, for a disaggregated winner)."""
        return self.result.best.candidate.group.gpu

    @property
    def devices(self) -> int:
        """Accelerators per replica (the decode pool's, for a disaggregated winner)."""
        return self.result.best.candidate.group.devices

    @property
    def req_s_per_replica(self) -> float:
        b = self.result.best
        return b.disagg.req_s / b.replicas if b.disagg is not None else float(self.result.table.req_s[b.row])

    @property
    def replicas_per_slot(self) -> tuple[int, ...]:
        return self.fleet.replicas_per_slot

    @property
    def gpus_per_slot(self) -> tuple[int, ...]:
        return self.fleet.gpus_per_slot

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
    """Σ over the models of the GPUs of this type for each one's own peak."""
    pooled_gpus: int
    """The largest sum over the slots of the GPUs of this type the models need together."""
    peak_slot: int
    usd_per_gpu_hour: float
    W_per_gpu: float
    gpus_per_slot: tuple[int, ...] = ()

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


def search_shared(
    requests: Sequence[SearchRequest],
    curves: Sequence[Sequence[float] | None] | None = None,
    *,
    names: Sequence[str] | None = None,
    backend: Backend | None = None,
    progress: SearchProgress | None = None,
) -> SharedFleet:
    """Size a fleet for several models (see the module docstring).

    ``curves[i]`` is model i's demand in requests/s per slot (the same slots for every model,
    e.g. 24 hours); when given it replaces the request's demand by :meth:`Demand.from_curve` with
    the request's headroom. Without ``curves``, each request's own ``demand.curve`` is used. A
    model without a curve runs at its peak in every slot.
    """
    if not requests:
        raise HierroError("a shared fleet needs at least one model")
    cs: list[Sequence[float] | None]
    cs = list(curves) if curves is not None else [r.demand.curve or None for r in requests]
    if len(cs) != len(requests):
        raise HierroError(f"{len(cs)} demand curves for {len(requests)} models")
    if names is not None and len(names) != len(requests):
        raise HierroError(f"{len(names)} names for {len(requests)} models")
    lengths = {len(c) for c in cs if c is not None}
    if len(lengths) > 1:
        raise HierroError(f"demand curves of different lengths: {sorted(lengths)}; use the same slots")
    slots = lengths.pop() if lengths else 1
    for i, c in enumerate(cs):
        if c is not None and any(not (math.isfinite(v) and v >= 0) for v in c):
            raise HierroError(f"the demand curve of model {i} has a negative or non-finite rate")
    models: list[SharedModel] = []
    for i, (req, c) in enumerate(zip(requests, cs, strict=True)):
        d = req.demand
        flat = (d.peak_req_s,) * slots
        req = replace(req, demand=Demand.from_curve(c if c is not None else flat, d.headroom))
        res = search(req, backend=backend, progress=progress)
        mid = res.space.model.id
        models.append(SharedModel(model=mid, result=res, fleet=curve_fleet(res),
                                  name=names[i] if names is not None else mid))
    pools: list[SharedPool] = []
    types = dict.fromkeys(g for m in models for g in m.fleet.gpus_by_type())
    for gpu in types:
        idx = tuple(i for i, m in enumerate(models) if gpu in m.fleet.gpus_by_type())
        per_slot = tuple(sum(models[i].fleet.gpus_by_type()[gpu][t] for i in idx) for t in range(slots))
        peak = max(range(slots), key=lambda t: (per_slot[t], -t))
        part = next(p for p in models[idx[0]].fleet.parts if p.gpu == gpu)
        pools.append(SharedPool(
            gpu=gpu, models=idx,
            separate_gpus=sum(max(models[i].fleet.gpus_by_type()[gpu]) for i in idx),
            pooled_gpus=per_slot[peak], peak_slot=peak, usd_per_gpu_hour=part.usd_per_gpu_hour,
            W_per_gpu=part.W_per_gpu, gpus_per_slot=per_slot,
        ))
    return SharedFleet(tuple(models), tuple(pools), slots)
