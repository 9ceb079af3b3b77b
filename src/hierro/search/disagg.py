"""Disaggregated candidates: a prefill pool and a decode pool, of one accelerator type or of two.

The screen, per pair of layouts (same weight and KV precision, engine and token budget) and
decode batch:

- prefill: one prompt of ``isl`` tokens in chunks of the token budget; a replica completes
  ``1 / T_stage`` prompts/s (its pipeline stages overlap) and a prompt takes ``pp x T_stage``;
- decode: the closed-loop TPOT at decode batch ``B`` with no prefill load,
  ``pp x t(B / pp sequences at context isl + osl/2)``; a replica carries
  ``B / (TPOT x (osl - 1))`` requests/s (the first token comes from the prefill pool);
- decode replicas: ``ceil(peak x (1 + headroom) / req/s per replica)``; prefill replicas: the
  fewest that carry the peak with headroom, times each factor of :data:`PREFILL_FACTORS` (more
  prefill replicas, less queueing in front of them), which sets the prefill:decode ratio;
- KV transfer: every device of the prefill replica sends its shard of the prompt's KV over its
  own NIC, and every device of the decode replica receives its shard over its own; the slower
  side sets the time, ``max(kv_p / bw_p, kv_d / bw_d)`` + the set-up latency of
  :func:`hierro.sim.simulate_disagg` (kv: :func:`kv_bytes_per_seq` per device of each plan; bw:
  the accelerator's scale-out bandwidth). The confirmation passes the same time to the
  simulator as an effective bandwidth;
- TTFT ~ ``pp x T_stage`` + transfer + a queueing margin of ``QUEUE_MARGIN x`` the M/D/1 mean
  wait at the prefill pool's utilisation.

Mixed pools (``mixed=True``): prefill on one accelerator type and decode on another of the same
vendor, as Splitwise's heterogeneous design (Patel et al., "Splitwise: Efficient Generative LLM
Inference Using Phase Splitting", ISCA 2024: prompt phase on H100, token phase on A100) —
compute-rich chips for the compute-bound prefill, cheaper bandwidth for the memory-bound
decode. Both pools keep the same weight and KV precision (the decode pool reads the cache the
prefill pool wrote). Pairs across vendors are not searched: no KV-transfer engine (NIXL,
Mooncake Transfer Engine) documents a cross-vendor deployment.

Everything is vectorised: per pool type the prefill options and decode points form a matrix,
the SLO margins and budget filter it, one configuration per (pools, replica counts) is kept
(the one with the most slack), and the two Pareto fronts of the whole matrix are kept for the
plots. The best few by the objective are confirmed with :func:`hierro.sim.simulate_disagg`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from hierro.perf import Calibration, StepModel, default_max_seqs
from hierro.perf.ops import StepShape
from hierro.search.confirm import CONFIRM_DRAWS, SimCheck, n_requests, sim_check
from hierro.search.pareto import pareto_front
from hierro.search.screen import GpuPrice, ScreenJob
from hierro.search.slo import SCREEN_FACTOR, SloTarget
from hierro.search.space import Candidate, Group, Space
from hierro.sim import Fixed, SimResult, simulate_disagg, synthetic
from hierro.sim.cluster import DEFAULT_TRANSFER_LATENCY_S
from hierro.specs import ModelArch, get_accelerator
from hierro.specs.memory import kv_bytes_per_seq
from hierro.units import HOUR, MEGA

__all__ = ["PREFILL_FACTORS", "QUEUE_MARGIN", "DisaggCandidate", "DisaggJob", "DisaggScreen", "PoolJob",
           "PoolRaw", "pool_groups", "run_disagg_job", "screen_disagg", "simulate_disagg_candidate"]

F = NDArray[np.float64]
Ix = NDArray[np.int64]
Objective = Literal["cost", "gpus", "goodput"]

PREFILL_FACTORS: tuple[float, ...] = (1.0, 1.25, 1.5, 2.0)
"""Prefill replicas as multiples of the fewest that carry the peak with headroom."""
QUEUE_MARGIN = 3.0
"""The screen's TTFT adds this many M/D/1 mean waits in front of the prefill pool."""
_BLOCK = 1 << 20
"""Most (prefill option, decode point) pairs priced in one matrix."""


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
    """The fleet's $/h over its GPUs (the two types' prices blended for a mixed fleet)."""
    fleet_usd_per_hour: float
    fleet_usd_per_mtok: float
    fleet_MW: float
    demand_req_s: float
    prefill_price: GpuPrice
    decode_price: GpuPrice
    transfer_bw_Bps: float
    """Effective bandwidth of a prompt's KV transfer: the prefill plan's per-device KV bytes over
    this is the slower side's time (see the module docstring)."""

    @property
    def mixed(self) -> bool:
        """Prefill and decode on different accelerator types."""
        return self.prefill.gpu != self.decode.gpu

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
        tail = f"b{self.batch} {d.framework} tb{d.max_batched_tokens}"
        if self.mixed:
            return (f"{p.plan.weight_dtype}/kv-{p.plan.kv_dtype} disagg P {p.gpu} {p.plan.label()} "
                    f"x{self.prefill_replicas} + D {d.gpu} {d.plan.label()} x{self.decode_replicas} {tail}")
        return (f"{p.gpu} {p.plan.weight_dtype}/kv-{p.plan.kv_dtype} disagg P {p.plan.label()} x{self.prefill_replicas}"
                f" + D {d.plan.label()} x{self.decode_replicas} {tail}")

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


PoolJob = ScreenJob
"""Groups whose prefill and decode figures a backend computes: the screen's unit of work (a chunk
of groups of one space with their load points), priced here as pools."""


@dataclass(frozen=True, slots=True)
class PoolRaw:
    """One group as a prefill pool (stage time) and as a decode pool (TPOT per batch)."""

    stage_s: float
    kv_bytes: float
    """KV bytes of one prompt per device of the plan."""
    batch: Ix
    tpot_s: F


def pool_groups(job: PoolJob) -> list[PoolRaw]:
    out = []
    for g, conc in zip(job.groups, job.concurrencies, strict=True):
        sm = StepModel(job.model, get_accelerator(g.gpu), g.plan, framework=g.framework, calib=job.calib)
        b = np.asarray(conc, dtype=np.int64)
        pp = g.plan.pp
        t = np.asarray(sm.time(StepShape(decode_seqs=b.astype(np.float64) / pp, decode_ctx=job.isl + job.osl / 2.0)),
                       dtype=np.float64)
        out.append(PoolRaw(_prefill_stage_s(sm, job.isl, g.max_batched_tokens),
                           kv_bytes_per_seq(job.model, g.plan, float(job.isl)), b,
                           np.broadcast_to(t * pp, b.shape).astype(np.float64)))
    return out


@dataclass(frozen=True)
class DisaggScreen:
    """The disaggregated side of a search: the feasible fleets in objective order (at most
    ``limit``; one per pools and replica counts) and the fleets on each Pareto front of every
    screened pair."""

    feasible: tuple[DisaggCandidate, ...]
    n_feasible: int
    """Feasible after deduplication, before the limit."""
    n_screened: int
    """(prefill option, decode point) pairs priced."""
    throughput_front: tuple[DisaggCandidate, ...]
    """Output tokens/s per GPU vs tokens/s per user, best tokens/s per user first."""
    cost_front: tuple[DisaggCandidate, ...]
    """$/Mtok vs screen TTFT, lowest TTFT first."""
    n_mixed: int = 0
    """Of ``n_screened``, pairs across accelerator types."""


@dataclass(frozen=True, slots=True)
class _Side:
    """Prefill options (index p) or decode points (index d) of one pool type, as columns."""

    group: Ix
    n: Ix
    """Replicas."""
    lat: F
    """Prefill: pp x stage + queueing margin; decode: TPOT."""
    kv_time: F
    """Per-device KV bytes of a prompt over the NIC bandwidth."""
    usd_h: F
    gpus: Ix
    W: F
    cap: F
    """Requests/s the pool carries."""
    batch: Ix


def _sides(space: Space, raws: Sequence[PoolRaw | None], prices: Mapping[str, GpuPrice], demand: float,
           need: float) -> tuple[dict[tuple[object, ...], list[int]], _Side, _Side]:
    osl_dec = max(1, space.osl - 1)
    pg: list[int] = []
    pn: list[int] = []
    pgpu: list[int] = []
    plat: list[float] = []
    pkv: list[float] = []
    pusd: list[float] = []
    pw: list[float] = []
    pcap: list[float] = []
    dg: list[Ix] = []
    dn: list[Ix] = []
    dgpu: list[Ix] = []
    db: list[Ix] = []
    dlat: list[F] = []
    dkv: list[F] = []
    dusd: list[F] = []
    dw: list[F] = []
    dcap: list[F] = []
    keys: dict[tuple[object, ...], list[int]] = {}
    for k, (g, r) in enumerate(zip(space.groups, raws, strict=True)):
        if r is None:
            continue
        acc = get_accelerator(g.gpu)
        price = prices[g.gpu]
        bw = acc.scale_out_bw_Bps
        kvt = r.kv_bytes / bw
        keys.setdefault((acc.vendor, g.plan.weight_dtype, g.plan.kv_dtype, g.framework, g.max_batched_tokens),
                        []).append(k)
        cap1 = 1.0 / r.stage_s
        n_min = max(1, math.ceil(need / cap1 - 1e-9))
        for n in sorted({max(1, math.ceil(n_min * f - 1e-9)) for f in PREFILL_FACTORS}):
            rho = min(demand / (n * cap1), 0.999)
            wait = rho / (2.0 * (1.0 - rho)) * r.stage_s
            pg.append(k)
            pn.append(n)
            plat.append(g.plan.pp * r.stage_s + QUEUE_MARGIN * wait)
            pkv.append(kvt)
            pusd.append(n * g.devices * price.usd_per_gpu_hour)
            pgpu.append(n * g.devices)
            pw.append(n * g.devices * price.all_in_W)
            pcap.append(n * cap1)
        r_d = r.batch / (r.tpot_s * osl_dec)
        n_d = np.maximum(1, np.ceil(need / r_d - 1e-9)).astype(np.int64)
        m = len(r.batch)
        dg.append(np.full(m, k, dtype=np.int64))
        dn.append(n_d)
        dlat.append(r.tpot_s)
        dkv.append(np.full(m, kvt))
        dgpu.append(n_d * g.devices)
        dusd.append((n_d * g.devices).astype(np.float64) * price.usd_per_gpu_hour)
        dw.append((n_d * g.devices).astype(np.float64) * price.all_in_W)
        dcap.append(n_d * r_d)
        db.append(r.batch)
    i64, f64 = np.int64, np.float64
    pre = _Side(np.asarray(pg, i64), np.asarray(pn, i64), np.asarray(plat, f64), np.asarray(pkv, f64),
                np.asarray(pusd, f64), np.asarray(pgpu, i64), np.asarray(pw, f64), np.asarray(pcap, f64),
                np.zeros(len(pg), i64))

    def ci(xs: list[Ix]) -> Ix:
        return np.concatenate(xs).astype(np.int64) if xs else np.zeros(0, np.int64)

    def cf(xs: list[F]) -> F:
        return np.concatenate(xs).astype(np.float64) if xs else np.zeros(0, np.float64)

    dec = _Side(ci(dg), ci(dn), cf(dlat), cf(dkv), cf(dusd), ci(dgpu), cf(dw), cf(dcap), ci(db))
    return keys, pre, dec


def screen_disagg(
    space: Space,
    raws: Sequence[PoolRaw | None],
    prices: Mapping[str, GpuPrice],
    *,
    demand_req_s: float,
    headroom: float,
    slos: Sequence[SloTarget] = (),
    max_gpus: int | None = None,
    max_usd_per_hour: float | None = None,
    objective: Objective = "cost",
    mixed: bool = True,
    limit: int = 200,
) -> DisaggScreen:
    """Every disaggregated pair of ``space``'s layouts (``raws[k]`` from :func:`pool_groups` for
    group k; None leaves the group out), screened, filtered and ordered (see the module docstring)."""
    osl = space.osl
    need = demand_req_s * (1.0 + headroom)
    dec_tokens = max(1, osl - 1)
    lat0 = DEFAULT_TRANSFER_LATENCY_S
    keys, P, D = _sides(space, raws, prices, demand_req_s, need)
    p_of = {k: np.flatnonzero(np.isin(P.group, ks)) for k, ks in keys.items()}
    d_of = {k: np.flatnonzero(np.isin(D.group, ks)) for k, ks in keys.items()}
    ids = {g: i for i, g in enumerate(dict.fromkeys(g.gpu for g in space.groups))}
    gpu_id = np.array([ids[g.gpu] for g in space.groups], dtype=np.int64)
    feas_p: list[Ix] = []
    feas_d: list[Ix] = []
    feas_slack: list[F] = []
    fronts: list[tuple[Ix, Ix]] = []
    n_screened = n_mixed = 0
    for k in keys:
        pi_all, di = p_of[k], d_of[k]
        if len(pi_all) == 0 or len(di) == 0:
            continue
        step = max(1, _BLOCK // len(di))
        for s0 in range(0, len(pi_all), step):
            pi = pi_all[s0 : s0 + step]
            mp, md = np.meshgrid(pi, di, indexing="ij")
            pp_, dd = mp.ravel(), md.ravel()
            same = gpu_id[P.group[pp_]] == gpu_id[D.group[dd]]
            if not mixed:
                pp_, dd = pp_[same], dd[same]
            else:
                n_mixed += int((~same).sum())
            n_screened += len(pp_)
            if len(pp_) == 0:
                continue
            x = _metrics(P, D, pp_, dd, dec_tokens, osl, lat0)
            for xs, ys, mx, my in ((x["tok_user"], x["tok_gpu"], True, True),
                                   (x["ttft"], x["usd_mtok"], False, False)):
                f = pareto_front(xs, ys, max_x=mx, max_y=my)
                fronts.append((pp_[f], dd[f]))
            ok = np.ones(len(pp_), dtype=bool)
            slack = np.zeros(len(pp_))
            for s in slos:
                v = x[s.metric] * SCREEN_FACTOR[s.pct] / s.limit_s
                ok &= v <= 1.0
                slack = np.maximum(slack, v)
            if max_gpus is not None:
                ok &= x["gpus"] <= max_gpus
            if max_usd_per_hour is not None:
                ok &= x["usd_h"] <= max_usd_per_hour
            feas_p.append(pp_[ok])
            feas_d.append(dd[ok])
            feas_slack.append(slack[ok])
    mk = _Maker(space, P, D, prices, demand_req_s, dec_tokens, osl, lat0)
    # feasible: one per (prefill group, decode group, n_p, n_d), the most slack, then objective order
    fp = np.concatenate(feas_p) if feas_p else np.zeros(0, np.int64)
    fd = np.concatenate(feas_d) if feas_d else np.zeros(0, np.int64)
    fs = np.concatenate(feas_slack) if feas_slack else np.zeros(0)
    o = np.lexsort((fd, fp, fs, D.n[fd], P.n[fp], D.group[fd], P.group[fp]))
    fp, fd = fp[o], fd[o]
    key = np.stack([P.group[fp], D.group[fd], P.n[fp], D.n[fd]])
    first = np.ones(len(fp), dtype=bool)
    if len(fp) > 1:
        first[1:] = np.any(key[:, 1:] != key[:, :-1], axis=0)
    fp, fd = fp[first], fd[first]
    x = _metrics(P, D, fp, fd, dec_tokens, osl, lat0)
    ties = (fd, fp, x["e2e"], x["usd_h"])
    if objective == "cost":
        order = np.lexsort(ties)
    elif objective == "gpus":
        order = np.lexsort((*ties, x["gpus"]))
    else:
        order = np.lexsort((*ties, -x["tok_gpu"]))
    chosen = order[:limit]
    feasible = tuple(mk.make(int(fp[i]), int(fd[i])) for i in chosen)
    # fronts of the whole matrix: the union of the per-block fronts, fronted again
    tfront, cfront = _final_fronts(fronts, P, D, dec_tokens, osl, lat0, mk)
    return DisaggScreen(feasible, len(fp), n_screened, tfront, cfront, n_mixed)


def _metrics(P: _Side, D: _Side, pi: Ix, di: Ix, dec_tokens: int, osl: int, lat0: float) -> dict[str, F]:
    tpot = D.lat[di]
    ttft = P.lat[pi] + np.maximum(P.kv_time[pi], D.kv_time[di]) + lat0
    gpus = (P.gpus[pi] + D.gpus[di]).astype(np.float64)
    usd_h = P.usd_h[pi] + D.usd_h[di]
    out_tok = np.minimum(P.cap[pi], D.cap[di]) * osl
    return {
        "ttft": ttft, "tpot": tpot, "e2e": ttft + tpot * dec_tokens, "gpus": gpus, "usd_h": usd_h,
        "tok_user": 1.0 / tpot, "tok_gpu": out_tok / gpus,
        # $/Mtok = fleet $/h / (output tokens/s x 3600 / 1e6), as hierro.econ.usd_per_mtok
        "usd_mtok": usd_h / (out_tok * HOUR / MEGA),
    }


def _final_fronts(fronts: list[tuple[Ix, Ix]], P: _Side, D: _Side, dec_tokens: int, osl: int, lat0: float,
                  mk: _Maker) -> tuple[tuple[DisaggCandidate, ...], tuple[DisaggCandidate, ...]]:
    out: list[tuple[DisaggCandidate, ...]] = []
    for which in (0, 1):
        parts = fronts[which::2]
        if not parts:
            out.append(())
            continue
        pi = np.concatenate([a for a, _ in parts])
        di = np.concatenate([b for _, b in parts])
        x = _metrics(P, D, pi, di, dec_tokens, osl, lat0)
        f = (pareto_front(x["tok_user"], x["tok_gpu"]) if which == 0
             else pareto_front(x["ttft"], x["usd_mtok"], max_x=False, max_y=False))
        out.append(tuple(mk.make(int(pi[i]), int(di[i])) for i in f))
    return out[0], out[1]


@dataclass(frozen=True, slots=True)
class _Maker:
    space: Space
    P: _Side
    D: _Side
    prices: Mapping[str, GpuPrice]
    demand: float
    dec_tokens: int
    osl: int
    lat0: float

    def make(self, p: int, d: int) -> DisaggCandidate:
        P, D = self.P, self.D
        gp, gd = self.space.groups[int(P.group[p])], self.space.groups[int(D.group[d])]
        x = {k: float(v[0]) for k, v in _metrics(P, D, np.array([p]), np.array([d]), self.dec_tokens, self.osl,
                                                  self.lat0).items()}
        gpus = int(P.gpus[p] + D.gpus[d])
        req_s = float(min(P.cap[p], D.cap[d]))
        kv_p = P.kv_time[p] * get_accelerator(gp.gpu).scale_out_bw_Bps
        xfer = max(float(P.kv_time[p]), float(D.kv_time[d]))
        return DisaggCandidate(
            prefill=gp, decode=gd, batch=int(D.batch[d]), prefill_replicas=int(P.n[p]), decode_replicas=int(D.n[d]),
            ttft_s=x["ttft"], tpot_s=x["tpot"], e2e_s=x["e2e"], req_s=req_s, out_tok_s=req_s * self.osl, gpus=gpus,
            usd_per_gpu_hour=x["usd_h"] / gpus, fleet_usd_per_hour=x["usd_h"],
            fleet_usd_per_mtok=x["usd_h"] / (self.demand * self.osl * HOUR / MEGA),
            fleet_MW=float(P.W[p] + D.W[d]) / MEGA, demand_req_s=self.demand,
            prefill_price=self.prices[gp.gpu], decode_price=self.prices[gd.gpu],
            transfer_bw_Bps=kv_p / xfer,
        )


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
    draws: int = CONFIRM_DRAWS


def simulate_disagg_candidate(job: DisaggJob, draw: int = 0) -> SimResult:
    c = job.candidate
    p, d = c.prefill, c.decode
    psm = StepModel(job.model, get_accelerator(p.gpu), p.plan, framework=p.framework, calib=job.calib)
    dsm = StepModel(job.model, get_accelerator(d.gpu), d.plan, framework=d.framework, calib=job.calib)
    n = job.requests or n_requests(c.prefill_replicas + c.decode_replicas)
    wl = synthetic(n, Fixed(job.isl), Fixed(job.osl), np.random.default_rng(job.seed + draw), rate=job.rate_req_s)
    return simulate_disagg(
        psm, dsm, wl, c.prefill_replicas, c.decode_replicas,
        max_num_batched_tokens=p.max_batched_tokens, max_num_seqs=default_max_seqs(d.plan, p.max_batched_tokens), warmup=n // 10,
        transfer_bw_Bps=c.transfer_bw_Bps,
    )


def run_disagg_job(job: DisaggJob) -> SimCheck:
    c = job.candidate
    runs = [simulate_disagg_candidate(job, k) for k in range(max(1, job.draws))]
    return sim_check(c.candidate, c.prefill_replicas + c.decode_replicas, runs, job.slos)
