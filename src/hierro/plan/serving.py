"""Serving fleets: the cheapest configuration of a model on each accelerator on offer, sized for
the peak of its demand within its SLOs, with :func:`hierro.search.search`.

The search screens the whole (restricted) space analytically at the full peak demand, so the
replica counts and the cost order are those of the real fleet. It then simulates only the
winners, and not the whole fleet: a fleet of thousands of identical replicas behind a
least-outstanding router is simulated as a **slice** of ``slice_replicas`` replicas carrying
their share of the peak (rate x slice / replicas). A small pool multiplexes worse than a big
one, so the slice's percentiles are, if anything, pessimistic for the full fleet.

Per option::

    replicas     = ceil(peak req/s x (1 + headroom) / req/s per replica)     (the search)
    accelerators = replicas x devices per replica
    $/Mtok       = $/GPU-h / (output tokens/s per GPU x 3600 / 1e6) at the operating point,
                   split into input and output by accelerator time (hierro.econ.token_economics)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

from hierro.econ import tco_for, token_economics
from hierro.errors import HierroError
from hierro.perf import StepModel, default_calibration, estimate
from hierro.search import Demand as SearchDemand
from hierro.search import SearchRequest, SearchSpace, SerialBackend, SimJob, SloTarget, search
from hierro.search.backends import Progress
from hierro.search.confirm import MIN_REQUESTS
from hierro.specs import get_accelerator, get_model

__all__ = ["ServingOption", "SliceBackend", "size_on"]

MAX_SLICE_REQUESTS = 20000
SPAN_FACTOR = 3.0
"""A slice simulation covers SPAN_FACTOR x the SLO's end-to-end bound (ttft + osl x tpot) of
arrivals, so the measured requests see a loaded steady state, not the ramp."""

J = TypeVar("J")
R = TypeVar("R")
REF_PRESET = "hyperscaler-owned"
"""Preset of the search's $/GPU-hour; within one accelerator the cost order is the GPU count, so
the choice does not depend on it (the plan reprices with the instrument that pays)."""


@dataclass(frozen=True)
class SliceBackend:
    """Runs jobs in this process; simulation jobs of big fleets become slices of them."""

    replicas: int = 4
    span_s: float = 0.0
    """Seconds of arrivals each slice simulation should cover (0: the search's request count)."""

    @property
    def workers(self) -> int:
        return 1

    def map(self, fn: Callable[[J], R], jobs: Sequence[J], progress: Progress | None = None) -> list[R]:
        return SerialBackend().map(fn, [self._slice(j) for j in jobs], progress)

    def _slice(self, job: J) -> J:
        if not isinstance(job, SimJob) or job.replicas <= self.replicas:
            return job
        k = self.replicas
        rate = job.rate_req_s * k / job.replicas
        n = min(MAX_SLICE_REQUESTS, max(MIN_REQUESTS, math.ceil(rate * self.span_s)))
        return cast(J, dataclasses.replace(job, replicas=k, rate_req_s=rate, requests=n))


@dataclass(frozen=True)
class ServingOption:
    """The cheapest configuration of a model on one accelerator, sized for the peak."""

    gpu: str
    configuration: str
    plan: str
    devices: int
    concurrency: int
    replicas: int
    accelerators: int
    req_s_per_replica: float
    out_tok_s_per_gpu: float
    ttft_p99_s: float
    tpot_p99_s: float
    e2e_p99_s: float
    simulated_replicas: int
    input_cost_share: float
    """Share of a request's accelerator time spent on its input tokens."""
    ref_usd_per_gpu_hour: float
    ref_usd_per_mtok_output_only: float
    """At the operating point and the reference preset (InferenceX output-only variant)."""

    @property
    def req_s_per_gpu(self) -> float:
        return self.req_s_per_replica / self.devices


def size_on(
    model: str,
    gpu: str,
    *,
    isl: int,
    osl: int,
    peak_req_s: float,
    headroom: float,
    slos: tuple[SloTarget, ...],
    weight_dtypes: Sequence[str],
    kv_dtypes: Sequence[str],
    max_devices: int,
    max_pp: int,
    sim_top: int,
    sim_rounds: int,
    slice_replicas: int,
    seed: int,
) -> ServingOption:
    """The cheapest SLO-meeting configuration of ``model`` on ``gpu`` (raises
    :class:`HierroError` naming the binding SLO or why nothing fits)."""
    targets = slos
    space = SearchSpace(
        gpus=(gpu,), weight_dtypes=tuple(weight_dtypes), kv_dtypes=tuple(kv_dtypes),
        max_devices=max_devices, max_pp=max_pp,
    )
    req = SearchRequest(
        model, isl, osl, SearchDemand(peak_req_s, headroom), targets, space=space, top=1,
        sim_top=sim_top, sim_rounds=sim_rounds, seed=seed, preset=REF_PRESET,
    )
    limits = {s.metric: s.limit_s for s in slos}
    e2e = limits.get("e2e", limits.get("ttft", 1.0) + osl * limits.get("tpot", 0.05))
    res = search(req, backend=SliceBackend(slice_replicas, SPAN_FACTOR * e2e))
    b = res.best
    g = b.candidate.group
    calib = default_calibration()
    arch = get_model(model)
    sm = StepModel(arch, get_accelerator(g.gpu), g.plan, framework=g.framework, calib=calib)
    e = estimate(sm, isl=isl, osl=osl, concurrency=b.candidate.concurrency, max_batched_tokens=g.max_batched_tokens)
    te = token_economics(e, tco_for(g.gpu, REF_PRESET))
    if b.sim.requests <= 0:
        raise HierroError(f"{model} on {gpu}: the simulation measured no requests")
    return ServingOption(
        gpu=g.gpu,
        configuration=b.candidate.label(),
        plan=g.plan.label(),
        devices=g.devices,
        concurrency=b.candidate.concurrency,
        replicas=b.replicas,
        accelerators=b.gpus,
        req_s_per_replica=float(res.table.req_s[b.row]),
        out_tok_s_per_gpu=b.tok_s_per_gpu,
        ttft_p99_s=b.sim.ttft_p99_s,
        tpot_p99_s=b.sim.tpot_p99_s,
        e2e_p99_s=b.sim.e2e_p99_s,
        simulated_replicas=b.sim.replicas,
        input_cost_share=te.input_cost_share,
        ref_usd_per_gpu_hour=te.usd_per_gpu_hour,
        ref_usd_per_mtok_output_only=te.usd_per_mtok_output_only,
    )
