"""Disaggregated candidates: a prefill pool and a decode pool of the same accelerator type.

The screen, per pair of layouts (same accelerator, precisions and engine) and decode batch:

- prefill: one prompt of ``isl`` tokens in chunks of the token budget; a replica completes
  ``1 / T_stage`` prompts/s (its pipeline stages overlap) and a prompt takes ``pp x T_stage``;
- decode: the closed-loop TPOT at decode batch ``B`` with no prefill load,
  ``pp x t(B / pp sequences at context isl + osl/2)``; a replica carries
  ``B / (TPOT x (osl - 1))`` requests/s (the first token comes from the prefill pool);
- decode replicas: ``ceil(peak x (1 + headroom) / req/s per replica)``; prefill replicas: the
  fewest that carry the peak with headroom, times each factor of :data:`PREFILL_FACTORS` (more
  prefill replicas, less queueing in front of them), which sets the prefill:decode ratio;
- TTFT ~ ``pp x T_stage`` + KV transfer (the pool's KV bytes per device over the scale-out
  bandwidth, as :func:`hierro.sim.simulate_disagg`) + a queueing margin of
  ``QUEUE_MARGIN x`` the M/D/1 mean wait at the prefill pool's utilisation.

The best few by the objective are confirmed with :func:`hierro.sim.simulate_disagg`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hierro.perf import Calibration, StepModel
from hierro.perf.estimate import DEFAULT_MAX_SEQS
from hierro.perf.ops import StepShape
from hierro.search.confirm import SimCheck, n_requests, sim_check
from hierro.search.screen import GpuPrice
from hierro.search.slo import SCREEN_FACTOR, SloTarget
from hierro.search.space import Candidate, Group, Space
from hierro.sim import Fixed, SimResult, simulate_disagg, synthetic
from hierro.sim.cluster import DEFAULT_TRANSFER_LATENCY_S
from hierro.specs import ModelArch, get_accelerator
from hierro.specs.memory import kv_bytes_per_seq
from hierro.units import HOUR, MEGA

__all__ = ["PREFILL_FACTORS", "QUEUE_MARGIN", "DisaggCandidate", "DisaggJob", "run_disagg_job", "screen_disagg",
           "simulate_disagg_candidate"]

PREFILL_FACTORS: tuple[float, ...] = (1.0, 1.25, 1.5, 2.0)
"""Prefill replicas as multiples of the fewest that carry the peak with headroom."""
QUEUE_MARGIN = 3.0
"""The screen's TTFT adds this many M/D/1 mean waits in front of the prefill pool."""


@dataclass(frozen=True, slots=True)
class DisaggCandidate:
    """A disaggregated fleet: ``prefill_replicas`` of ``prefill`` and ``decode_replicas`` of
    ``decode`` (decode batch ``batch`` per replica), with its screen figures."""

    prefill: Group
    decode: Group
    batch: int
    prefill_replicas: int
    decode_replicas: int
    ttft_s: float
    tpot_s: float
    e2e_s: float
    req_s: float
    """Requests/s the fleet carries (the smaller of the pools' capacities)."""
    out_tok_s: float
    gpus: int
    usd_per_gpu_hour: float
    fleet_usd_per_hour: float
    fleet_usd_per_mtok: float
    fleet_MW: float
    demand_req_s: float

    @property
    def ratio(self) -> str:
        return f"{self.prefill_replicas}:{self.decode_replicas}"

    @property
    def tok_s_per_gpu(self) -> float:
        return self.out_tok_s / self.gpus

    @property
    def tok_s_per_user(self) -> float:
        return 1.0 / self.tpot_s

    @property
    def usd_per_mtok(self) -> float:
        return self.usd_per_gpu_hour / (self.tok_s_per_gpu * HOUR / MEGA)

    @property
    def candidate(self) -> Candidate:
        """The decode side as a :class:`Candidate` (its load point is the decode batch)."""
        return Candidate(self.decode, self.batch)

    def label(self) -> str:
        p, d = self.prefill, self.decode
        return (f"{p.gpu} {p.plan.weight_dtype}/kv-{p.plan.kv_dtype} disagg P {p.plan.label()} x{self.prefill_replicas}"
                f" + D {d.plan.label()} x{self.decode_replicas} b{self.batch} {d.framework}")

    def screen_value(self, s: SloTarget) -> float:
        mean = {"ttft": self.ttft_s, "tpot": self.tpot_s, "e2e": self.e2e_s}[s.metric]
        return mean * SCREEN_FACTOR[s.pct]


def _prefill_stage_s(sm: StepModel, isl: int, mbt: int) -> float:
    total = 0.0
    done = 0
    while done < isl:
        n = min(mbt, isl - done)
        last = done + n >= isl
        total += float(sm.time(StepShape(prefill_tokens=float(n), prefill_seqs=1.0, prefill_ctx=float(done),
                                         sampled=1.0 if last else 0.0)))
        done += n
    return total


def screen_disagg(
    space: Space,
    calib: Calibration,
    prices: dict[str, GpuPrice],
    *,
    demand_req_s: float,
    headroom: float,
) -> list[DisaggCandidate]:
    """Every disaggregated candidate of ``space``'s layouts (groups of one accelerator,
    precision pair and engine pair up)."""
    model, isl, osl = space.model, space.isl, space.osl
    need = demand_req_s * (1.0 + headroom)
    dec_tokens = max(1, osl - 1)
    pre: dict[int, tuple[float, float]] = {}
    dec: dict[int, tuple[NDArray[np.int64], NDArray[np.float64]]] = {}
    for k, g in enumerate(space.groups):
        if g.gpu not in prices or not get_accelerator(g.gpu).scale_out_bw_Bps > 0:
            continue
        sm = StepModel(model, get_accelerator(g.gpu), g.plan, framework=g.framework, calib=calib)
        stage = _prefill_stage_s(sm, isl, g.max_batched_tokens)
        xfer = kv_bytes_per_seq(model, g.plan, float(isl)) / sm.accel.scale_out_bw_Bps + DEFAULT_TRANSFER_LATENCY_S
        pre[k] = (stage, xfer)
        b = space.concurrencies(g)
        pp = g.plan.pp
        t = np.asarray(sm.time(StepShape(decode_seqs=b.astype(np.float64) / pp, decode_ctx=isl + osl / 2.0)),
                       dtype=np.float64)
        dec[k] = (b, np.broadcast_to(t * pp, b.shape).astype(np.float64))
    out: list[DisaggCandidate] = []
    for kp, (stage, xfer) in pre.items():
        gp = space.groups[kp]
        cap_p = 1.0 / stage
        n_p_min = max(1, math.ceil(need / cap_p - 1e-9))
        for kd, (bs, tpots) in dec.items():
            gd = space.groups[kd]
            if (gd.gpu, gd.plan.weight_dtype, gd.plan.kv_dtype, gd.framework) != (
                    gp.gpu, gp.plan.weight_dtype, gp.plan.kv_dtype, gp.framework):
                continue
            price = prices[gp.gpu]
            for b, tpot in zip(bs.tolist(), tpots.tolist(), strict=True):
                r_d = b / (tpot * dec_tokens)
                n_d = max(1, math.ceil(need / r_d - 1e-9))
                for n_p in sorted({max(1, math.ceil(n_p_min * f - 1e-9)) for f in PREFILL_FACTORS}):
                    rho = min(demand_req_s / (n_p * cap_p), 0.999)
                    wait = rho / (2.0 * (1.0 - rho)) * stage
                    ttft = gp.plan.pp * stage + xfer + QUEUE_MARGIN * wait
                    gpus = n_p * gp.devices + n_d * gd.devices
                    usd_h = gpus * price.usd_per_gpu_hour
                    req_s = min(n_p * cap_p, n_d * r_d)
                    out.append(DisaggCandidate(
                        prefill=gp, decode=gd, batch=int(b), prefill_replicas=n_p, decode_replicas=n_d,
                        ttft_s=ttft, tpot_s=tpot, e2e_s=ttft + tpot * dec_tokens, req_s=req_s,
                        out_tok_s=req_s * osl, gpus=gpus, usd_per_gpu_hour=price.usd_per_gpu_hour,
                        fleet_usd_per_hour=usd_h,
                        fleet_usd_per_mtok=usd_h / (demand_req_s * osl * HOUR / MEGA),
                        fleet_MW=gpus * price.all_in_W / MEGA, demand_req_s=demand_req_s,
                    ))
    return out


@dataclass(frozen=True, slots=True)
class DisaggJob:
    """One disaggregated fleet to simulate (picklable, pure)."""

    model: ModelArch
    candidate: DisaggCandidate
    rate_req_s: float
    isl: int
    osl: int
    calib: Calibration
    slos: tuple[SloTarget, ...]
    seed: int = 0
    requests: int = 0


def simulate_disagg_candidate(job: DisaggJob) -> SimResult:
    c = job.candidate
    p, d = c.prefill, c.decode
    psm = StepModel(job.model, get_accelerator(p.gpu), p.plan, framework=p.framework, calib=job.calib)
    dsm = StepModel(job.model, get_accelerator(d.gpu), d.plan, framework=d.framework, calib=job.calib)
    n = job.requests or n_requests(c.prefill_replicas + c.decode_replicas)
    wl = synthetic(n, Fixed(job.isl), Fixed(job.osl), np.random.default_rng(job.seed), rate=job.rate_req_s)
    return simulate_disagg(
        psm, dsm, wl, c.prefill_replicas, c.decode_replicas,
        max_num_batched_tokens=p.max_batched_tokens, max_num_seqs=DEFAULT_MAX_SEQS, warmup=n // 10,
    )


def run_disagg_job(job: DisaggJob) -> SimCheck:
    c = job.candidate
    res = simulate_disagg_candidate(job)
    return sim_check(c.candidate, c.prefill_replicas + c.decode_replicas, res, job.slos)
