"""The analytic screen: every configuration of a space priced at once.

The groups of one layout (accelerator, plan and engine) that differ only in their token budget
share a step-cost model; :func:`estimate_arrays` evaluates all their load points, every budget at
once, in one vectorised call (closed loop of ``concurrency`` requests per replica, Sarathi-style
mean field; see :mod:`hierro.perf.estimate`). From the per-replica steady
state the screen derives, per configuration:

- tokens/s per GPU = out_tok_s / devices; tokens/s per user = 1 / TPOT (InferenceX axes);
- replicas for the demand: ceil(peak req/s x (1 + headroom) / req/s per replica);
- GPUs = replicas x devices; fleet $/h = GPUs x $/GPU-h; MW = GPUs x all-in W per GPU;
- $/Mtok = $/GPU-h / (tokens/s per GPU x 3600 / 1e6) at the operating point
  (:func:`hierro.econ.usd_per_mtok`, the InferenceX ``cost_per_Mtok``), and the fleet's cost
  per delivered Mtok at the demand.

Latencies here are steady-state means; percentiles are left to the simulator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hierro.econ import tco_for
from hierro.errors import HierroError
from hierro.perf import Calibration, StepModel, estimate_arrays
from hierro.search.slo import SCREEN_FACTOR, SloTarget
from hierro.search.space import Candidate, Group, Space
from hierro.specs import ModelArch, Plan, get_accelerator
from hierro.units import HOUR, MEGA

__all__ = ["GpuPrice", "RawScreen", "ScreenTable", "assemble", "gpu_prices", "screen_groups", "screen_value"]

F = NDArray[np.float64]
Ix = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class RawScreen:
    """Per-replica steady state of one group's load points."""

    concurrency: Ix
    batch: F
    ttft_s: F
    tpot_s: F
    e2e_s: F
    req_s: F
    out_tok_s: F


@dataclass(frozen=True, slots=True)
class ScreenJob:
    """One unit of work for a backend: a chunk of groups of one space."""

    model: ModelArch
    isl: int
    osl: int
    groups: tuple[Group, ...]
    concurrencies: tuple[tuple[int, ...], ...]
    calib: Calibration


def _blocks(groups: Sequence[Group]) -> list[range]:
    """Index ranges of consecutive groups of one accelerator and plan (the enumeration yields
    each layout's engines and token budgets together)."""
    runs: list[range] = []
    start = 0
    for i in range(1, len(groups) + 1):
        if i == len(groups) or (groups[i].gpu, groups[i].plan) != (groups[start].gpu, groups[start].plan):
            runs.append(range(start, i))
            start = i
    return runs


def _by_step_model(groups: Sequence[Group]) -> list[list[int]]:
    """Indices of the groups sharing a step-cost model (accelerator, plan and engine; they
    differ in token budget only), in order of first appearance."""
    out: dict[tuple[str, Plan, str], list[int]] = {}
    for i, g in enumerate(groups):
        out.setdefault((g.gpu, g.plan, g.framework), []).append(i)
    return list(out.values())


def screen_groups(job: ScreenJob) -> list[RawScreen]:
    """Price every load point of every group of ``job`` (a pure function of its input): one
    :func:`estimate_arrays` call per step-cost model, its token budgets as one more per-row array."""
    out: dict[int, RawScreen] = {}
    for idx in _by_step_model(job.groups):
        g0 = job.groups[idx[0]]
        sm = StepModel(job.model, get_accelerator(g0.gpu), g0.plan, framework=g0.framework, calib=job.calib)
        concs = [np.asarray(job.concurrencies[i], dtype=np.int64) for i in idx]
        sizes = [len(c) for c in concs]
        r = estimate_arrays(
            sm, job.isl, job.osl, np.concatenate(concs),
            max_seqs=np.repeat([job.groups[i].max_seqs for i in idx], sizes),
            max_batched_tokens=np.repeat([job.groups[i].max_batched_tokens for i in idx], sizes),
            max_num_seqs=np.repeat([job.groups[i].engine_max_seqs for i in idx], sizes),
        )
        bounds = np.cumsum(sizes)[:-1]
        parts = [np.split(x, bounds) for x in (r.batch, r.ttft_s, r.tpot_s, r.e2e_s, r.req_s, r.out_tok_s)]
        for k, i in enumerate(idx):
            out[i] = RawScreen(concs[k], *(p[k] for p in parts))
    return [out[i] for i in range(len(job.groups))]


def jobs(space: Space, calib: Calibration, chunks: int) -> list[ScreenJob]:
    """Split the space's groups into about ``chunks`` jobs of similar size, in order, never
    splitting the engines and token budgets of one layout across jobs."""
    gs = space.groups
    runs = _blocks(gs)
    size = max(1, math.ceil(len(runs) / max(1, chunks)))
    out = []
    for i in range(0, len(runs), size):
        lo, hi = runs[i].start, runs[min(i + size, len(runs)) - 1].stop
        out.append(ScreenJob(
            space.model, space.isl, space.osl, gs[lo:hi],
            tuple(tuple(int(c) for c in space.concurrencies(g)) for g in gs[lo:hi]), calib,
        ))
    return out


@dataclass(frozen=True, slots=True)
class GpuPrice:
    """$/GPU-hour and all-in W per accelerator (from :func:`hierro.econ.tco_for`)."""

    usd_per_gpu_hour: float
    all_in_W: float


def gpu_prices(gpus: Sequence[str], preset: str | None = None) -> tuple[dict[str, GpuPrice], dict[str, str]]:
    """Prices of the accelerators the economics layer can price, and why the others cannot."""
    ok: dict[str, GpuPrice] = {}
    bad: dict[str, str] = {}
    for g in dict.fromkeys(gpus):
        try:
            t = tco_for(g, preset)
        except HierroError as err:
            bad[g] = str(err)
            continue
        ok[g] = GpuPrice(t.usd_per_gpu_hour, t.all_in_W)
    return ok, bad


@dataclass(frozen=True)
class ScreenTable:
    """Every screened configuration as columns (index i is one configuration), SI units."""

    groups: tuple[Group, ...]
    group: Ix
    concurrency: Ix
    batch: F
    ttft_s: F
    tpot_s: F
    e2e_s: F
    req_s: F
    """Requests/s per replica at the operating point."""
    out_tok_s: F
    """Output tokens/s per replica."""
    devices: Ix
    tok_s_per_gpu: F
    tok_s_per_user: F
    usd_per_gpu_hour: F
    usd_per_mtok: F
    """At the operating point, the InferenceX definition."""
    replicas: Ix
    gpus: Ix
    fleet_usd_per_hour: F
    fleet_usd_per_mtok: F
    """Fleet $/h per delivered million output tokens at the demand."""
    fleet_MW: F
    demand_req_s: float
    headroom: float

    def __len__(self) -> int:
        return len(self.group)

    def candidate(self, i: int) -> Candidate:
        return Candidate(self.groups[int(self.group[i])], int(self.concurrency[i]))


def assemble(
    groups: tuple[Group, ...],
    raws: Sequence[RawScreen],
    prices: Mapping[str, GpuPrice],
    *,
    demand_req_s: float,
    osl: int,
    headroom: float,
) -> ScreenTable:
    """Concatenate the groups' results and derive fleet, cost and power columns."""
    if demand_req_s <= 0:
        raise HierroError(f"demand must be > 0 requests/s, got {demand_req_s}")
    if headroom < 0:
        raise HierroError(f"headroom must be >= 0, got {headroom}")
    sizes = [len(r.concurrency) for r in raws]
    gidx = np.repeat(np.arange(len(groups), dtype=np.int64), sizes)

    def cat(name: str) -> F:
        return np.concatenate([getattr(r, name) for r in raws]) if raws else np.zeros(0)

    devices = np.array([g.devices for g in groups], dtype=np.int64)[gidx]
    usd_h = np.array([prices[g.gpu].usd_per_gpu_hour for g in groups], dtype=np.float64)[gidx]
    watts = np.array([prices[g.gpu].all_in_W for g in groups], dtype=np.float64)[gidx]
    req_s, out_tok_s, tpot = cat("req_s"), cat("out_tok_s"), cat("tpot_s")
    tok_gpu = out_tok_s / devices
    # a small tolerance keeps an exact fit (demand = k x capacity) at k replicas
    replicas = np.maximum(1, np.ceil(demand_req_s * (1.0 + headroom) / req_s - 1e-9)).astype(np.int64)
    gpus = replicas * devices
    fleet_usd_h = gpus * usd_h
    return ScreenTable(
        groups=groups,
        group=gidx,
        concurrency=np.concatenate([r.concurrency for r in raws]) if raws else np.zeros(0, np.int64),
        batch=cat("batch"),
        ttft_s=cat("ttft_s"),
        tpot_s=tpot,
        e2e_s=cat("e2e_s"),
        req_s=req_s,
        out_tok_s=out_tok_s,
        devices=devices,
        tok_s_per_gpu=tok_gpu,
        tok_s_per_user=1.0 / tpot,
        usd_per_gpu_hour=usd_h,
        # $/Mtok = $/GPU-h / (tok/s per GPU x 3600 / 1e6), as hierro.econ.usd_per_mtok
        usd_per_mtok=usd_h / (tok_gpu * HOUR / MEGA),
        replicas=replicas,
        gpus=gpus,
        fleet_usd_per_hour=fleet_usd_h,
        fleet_usd_per_mtok=fleet_usd_h / (demand_req_s * osl * HOUR / MEGA),
        fleet_MW=gpus * watts / MEGA,
        demand_req_s=demand_req_s,
        headroom=headroom,
    )


def screen_value(t: ScreenTable, s: SloTarget) -> F:
    """The screen's stand-in for ``s``'s percentile: the steady-state mean x its margin."""
    mean = {"ttft": t.ttft_s, "tpot": t.tpot_s, "e2e": t.e2e_s}[s.metric]
    return np.asarray(mean * SCREEN_FACTOR[s.pct], dtype=np.float64)
