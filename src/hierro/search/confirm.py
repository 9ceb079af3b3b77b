"""The second stage: simulate a candidate fleet at the target load and read its percentiles.

The demand arrives as one Poisson stream at the peak rate, spread over the candidate's replicas
by a least-outstanding router. Each replica runs the engine's default sequence limit (capped by
its KV memory), so a burst grows the batch rather than the queue; the candidate's concurrency
only sized the fleet. The first tenth of the requests warm the fleet up and are
left out of the statistics. Every candidate sees the same arrival sequences (common random
numbers, from ``seed``), so their percentiles compare fairly and runs are reproducible.

A tail percentile near saturation varies between arrival draws (at 85% load the p99 TTFT of one
1,000-request draw can be half that of another), so a fleet is confirmed on ``CONFIRM_DRAWS``
independent draws and must meet every SLO in each; its reported percentiles are the worst
draw's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hierro.perf import Calibration, StepModel, default_max_seqs
from hierro.search.slo import SloTarget
from hierro.search.space import Candidate
from hierro.sim import Fixed, SimResult, simulate, synthetic
from hierro.specs import ModelArch, get_accelerator

__all__ = [
    "CONFIRM_DRAWS",
    "SimCheck",
    "SimJob",
    "n_requests",
    "run_sim_job",
    "sim_check",
    "simulate_candidate",
    "slo_value",
]

CONFIRM_DRAWS = 3
"""Independent arrival draws a fleet must meet its SLOs in."""

MIN_REQUESTS = 3000
"""At least 2700 measured requests: the p99 rests on 27 or more samples above it."""
REQUESTS_PER_REPLICA = 400
MAX_REQUESTS = 20000


def n_requests(replicas: int) -> int:
    return int(min(MAX_REQUESTS, max(MIN_REQUESTS, REQUESTS_PER_REPLICA * replicas)))


@dataclass(frozen=True, slots=True)
class SimJob:
    """One candidate fleet to simulate (picklable, pure)."""

    model: ModelArch
    candidate: Candidate
    replicas: int
    rate_req_s: float
    isl: int
    osl: int
    calib: Calibration
    slos: tuple[SloTarget, ...]
    seed: int = 0
    requests: int = 0
    """0: :func:`n_requests` of the replica count."""
    draws: int = CONFIRM_DRAWS


@dataclass(frozen=True, slots=True)
class SimCheck:
    """Percentiles the simulator measured for one candidate fleet, and the SLO verdict."""

    candidate: Candidate
    replicas: int
    requests: int
    ttft_p50_s: float
    ttft_p90_s: float
    ttft_p99_s: float
    tpot_p50_s: float
    tpot_p90_s: float
    tpot_p99_s: float
    e2e_p50_s: float
    e2e_p99_s: float
    out_tok_s: float
    goodput_req_s: float
    values: tuple[tuple[str, float], ...]
    """(SLO name, simulated value) for every SLO."""
    passes: bool

    def worst(self, slos: tuple[SloTarget, ...]) -> tuple[SloTarget, float] | None:
        """The SLO missed by the largest ratio, with its simulated value; None if all met."""
        vals = dict(self.values)
        bad = [(vals[s.name] / s.limit_s, s) for s in slos if vals[s.name] > s.limit_s]
        if not bad:
            return None
        _, s = max(bad, key=lambda t: t[0])
        return s, vals[s.name]


def slo_value(res: SimResult, slo: SloTarget) -> float:
    d = {"ttft": res.ttft, "tpot": res.tpot, "e2e": res.e2e}[slo.metric]
    v = float(getattr(d, slo.pct))
    return v if np.isfinite(v) else float("inf")


def simulate_candidate(job: SimJob, draw: int = 0) -> SimResult:
    """The raw simulation of ``job`` on arrival draw ``draw`` (seed ``job.seed + draw``; what
    :func:`run_sim_job` summarises)."""
    g = job.candidate.group
    sm = StepModel(job.model, get_accelerator(g.gpu), g.plan, framework=g.framework, calib=job.calib)
    n = job.requests or n_requests(job.replicas)
    wl = synthetic(n, Fixed(job.isl), Fixed(job.osl), np.random.default_rng(job.seed + draw), rate=job.rate_req_s)
    return simulate(
        sm, wl, replicas=job.replicas, router="least_outstanding",
        max_num_batched_tokens=g.max_batched_tokens, max_num_seqs=default_max_seqs(g.plan, g.max_batched_tokens),
        warmup=n // 10, seed=job.seed,
    )


def sim_check(candidate: Candidate, replicas: int, res: SimResult | Sequence[SimResult],
              slos: Sequence[SloTarget]) -> SimCheck:
    """The latencies of a simulated fleet and whether they meet every SLO; with several draws,
    each SLO's worst value and the percentiles of the draw that misses by most (or comes
    closest)."""
    runs = [res] if isinstance(res, SimResult) else list(res)
    per = [[slo_value(r, s) for s in slos] for r in runs]
    values = tuple((s.name, max(v[j] for v in per)) for j, s in enumerate(slos))
    worst = runs[max(range(len(runs)), key=lambda i: max((v / s.limit_s for v, s in zip(per[i], slos,
                                                          strict=True)), default=0.0))]
    return SimCheck(
        candidate=candidate,
        replicas=replicas,
        requests=sum(r.n_requests for r in runs),
        ttft_p50_s=worst.ttft.p50, ttft_p90_s=worst.ttft.p90, ttft_p99_s=worst.ttft.p99,
        tpot_p50_s=worst.tpot.p50, tpot_p90_s=worst.tpot.p90, tpot_p99_s=worst.tpot.p99,
        e2e_p50_s=worst.e2e.p50, e2e_p99_s=worst.e2e.p99,
        out_tok_s=worst.out_tok_s,
        goodput_req_s=worst.goodput_req_s,
        values=values,
        passes=all(v <= s.limit_s for (_, v), s in zip(values, slos, strict=True)),
    )


def run_sim_job(job: SimJob) -> SimCheck:
    runs = [simulate_candidate(job, k) for k in range(max(1, job.draws))]
    return sim_check(job.candidate, job.replicas, runs, job.slos)
