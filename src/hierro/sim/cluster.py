"""A fleet of replicas behind a router, driven by a workload: :func:`simulate` (prefill and
decode on the same replicas) and :func:`simulate_disagg` (a prefill pool and a decode pool).

Routers (a plain function of the replicas' state, chosen by name):

- ``round_robin``: request i goes to replica i mod R;
- ``least_outstanding``: to the replica with the fewest requests waiting or running, ties taken
  in turn, as a least-connections load balancer does (nginx ``least_conn``: "if there are
  several such servers, they are tried in turn");
- ``prefix_aware``: SGLang's cache-aware router (sgl-router, ``cache_aware`` policy): while the
  load is balanced (max - min outstanding <= 32 or max <= 1.0001·min), send a request to the
  replica whose prefix cache holds the longest run of its leading prefix blocks if that covers
  more than half of them, else to the least loaded; when imbalanced, to the least loaded. Without
  prefix hashes it is ``least_outstanding``.

Disaggregated serving: the first token is sampled on a prefill instance, whose KV then crosses
the network to a decode instance; the client sees that token when the decode instance takes the
request (its KV landed and a sequence slot and blocks are free), because the decode instance
streams the response (SGLang's PD mode sends the first token with the KV; vLLM's and Dynamo's
decode workers answer the client), so a decode pool's queue counts in TTFT, not in TPOT. The
transfer takes bytes(prompt) / bandwidth + latency, where bytes is the
per-device KV of the prompt on the prefill plan (every device sends its shard over its own
link, in parallel) and the bandwidth is the accelerator's scale-out (NIC) bandwidth, or its
scale-up bandwidth when both pools share a scale-up domain (``same_domain``). The latency
default, 100 µs, stands for connection set-up and the RDMA round trip of a KV-transfer engine
(Mooncake Transfer Engine, NIXL); it is an assumption, not a measurement.

The KV pool of a replica is sized from the memory model: (HBM budget - weights - workspace) /
bytes per block, per attention data-parallel rank (``hierro.specs.memory``).

Preemption by swap (``preemption="swap"``) copies a victim's KV blocks to host memory and back:
every device moves its shard of a block over its own host link at once, so one block takes
(bytes per block per device) / (host-link bandwidth per direction), the bandwidth from the
accelerator's catalog entry (``host_bw_Bps``: PCIe or NVLink-C2C, sourced) unless given. The
host's swap space is ``swap_space_bytes`` per device, by default vLLM's ``--swap-space`` of 4 GiB
per GPU; a victim that no longer fits there is recomputed instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hierro.perf import (
    FrontEnd,
    StepModel,
    default_max_seqs,
    kv_of_free_memory,
    mixes_prefill,
    reserves_kv,
)
from hierro.sim.engine import ARRIVAL, Engine, SimError
from hierro.sim.kvcache import KvPool
from hierro.sim.metrics import RECORD_DTYPE, LogHist, SeriesBuilder, SimResult, Slo, summarize
from hierro.sim.replica import PREEMPTION, Job, Replica
from hierro.sim.steptime import DecodeTable, StepTime, expected_accepted, mtp_draft_cost
from hierro.sim.workload import Workload
from hierro.specs import get_accelerator
from hierro.specs.memory import KV_BLOCK_TOKENS, kv_bytes_per_seq, memory_breakdown
from hierro.units import GIB

__all__ = [
    "DEFAULT_SWAP_SPACE_BYTES",
    "PREEMPTION",
    "ROUTERS",
    "Progress",
    "SpecDecode",
    "host_link_Bps",
    "kv_block_bytes",
    "kv_pool_blocks",
    "simulate",
    "simulate_disagg",
]

ROUTERS = ("round_robin", "least_outstanding", "prefix_aware")

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called as requests finish (about 200 times a run) and at the end."""

DEFAULT_TRANSFER_LATENCY_S = 100e-6

DEFAULT_SWAP_SPACE_BYTES = 4 * GIB
"""Host swap space per device: vLLM's ``--swap-space`` default (4 GiB per GPU, vLLM engine
arguments)."""


@dataclass(frozen=True, slots=True)
class SpecDecode:
    """Speculative decoding: ``tokens`` drafts per step accepted with probability ``acceptance``
    each; ``draft_cost`` is a draft pass as a fraction of a target decode step (None: an MTP
    module, one layer of the target, ``1 / layers``)."""

    tokens: int = 0
    acceptance: float = 0.0
    draft_cost: float | None = None

    def per_step(self) -> float:
        """Expected tokens per sequence per step, (1 - α^(k+1)) / (1 - α)."""
        return expected_accepted(self.tokens, self.acceptance) if self.tokens else 1.0

    def cost(self, sm: StepModel) -> float:
        if self.draft_cost is not None and not self.draft_cost >= 0.0:
            raise SimError(f"draft cost must be >= 0 (a fraction of a decode step), got {self.draft_cost}")
        return mtp_draft_cost(sm) if self.draft_cost is None else self.draft_cost

def kv_block_bytes(sm: StepModel) -> float:
    """Bytes of one KV block on one device: the marginal KV bytes of ``KV_BLOCK_TOKENS`` more
    tokens (windowed and linear layers counted as full attention, the conservative side)."""
    b = KV_BLOCK_TOKENS
    per_block = kv_bytes_per_seq(sm.model, sm.plan, 2 * b) - kv_bytes_per_seq(sm.model, sm.plan, b)
    if per_block <= 0:
        per_block = kv_bytes_per_seq(sm.model, sm.plan, b)
    return float(per_block)


def kv_pool_blocks(sm: StepModel, *, mem_fraction: float = 0.9, max_num_batched_tokens: int = 8192,
                   max_num_seqs: int = 1024) -> int:
    """KV blocks of ``KV_BLOCK_TOKENS`` tokens one instance can hold (per attention data-parallel
    rank: KV budget per device / :func:`kv_block_bytes`)."""
    mem = memory_breakdown(sm.model, sm.accel, sm.plan, context=KV_BLOCK_TOKENS,
                           mem_fraction=mem_fraction, max_batched_tokens=max_num_batched_tokens,
                           max_seqs_sampled=min(max_num_seqs, 256), of_free=kv_of_free_memory(sm.framework))
    free = mem.kv_budget_bytes
    return max(int(free // kv_block_bytes(sm)), 0) * sm.plan.attn_dp


def host_link_Bps(accel_id: str) -> float | None:
    """Device-to-host bandwidth per direction of an accelerator (its catalog entry's
    ``host_bw_Bps``), or None where no sourced figure is known."""
    return get_accelerator(accel_id).host_bw_Bps


@dataclass(frozen=True, slots=True)
class _Swap:
    """Swap settings of one pool: copy time per block and host blocks per replica."""

    mode: str
    s_per_block: float
    host_blocks: int

    def kw(self) -> dict[str, Any]:
        return {"preemption": self.mode, "swap_s_per_block": self.s_per_block, "host_blocks": self.host_blocks}


def _swap(sm: StepModel, preemption: str, swap_space_bytes: float, host_bw_Bps: float | None) -> _Swap:
    if preemption not in PREEMPTION:
        raise SimError(f"unknown preemption mode {preemption!r}; known: {', '.join(PREEMPTION)}")
    if preemption == "recompute":
        return _Swap(preemption, 0.0, 0)
    if not (math.isfinite(swap_space_bytes) and swap_space_bytes >= 0.0):
        raise SimError(f"swap space must be >= 0 bytes, got {swap_space_bytes}")
    bw = host_bw_Bps if host_bw_Bps is not None else sm.accel.host_bw_Bps
    if bw is None:
        raise SimError(f"no sourced host-link bandwidth for {sm.accel.id}; give host_bw_Bps (--host-bw)")
    if not (math.isfinite(bw) and bw > 0.0):
        raise SimError(f"host-link bandwidth must be > 0 bytes/s, got {bw}")
    per_block = kv_block_bytes(sm)
    return _Swap(preemption, per_block / bw, int(swap_space_bytes // per_block) * sm.plan.attn_dp)


def _step_models(sm: StepModel, max_tokens: int, max_seqs: int,
                 spec: SpecDecode | None = None) -> tuple[StepTime, DecodeTable]:
    """The step-time surrogates of an instance (built once per run, shared by its replicas)."""
    ctx = max(sm.model.max_context, 131072)
    k = spec.tokens if spec is not None else 0
    f = spec.cost(sm) if spec is not None and k else 0.0
    return (StepTime(sm, max_tokens=max_tokens, max_seqs=max_seqs, max_ctx=ctx, spec_tokens=k, draft_cost=f),
            DecodeTable(sm, max_seqs, spec_tokens=k, draft_cost=f))


class _Pool:
    """Replicas that share a router; ``out[i]`` counts requests routed to replica i, not done.

    ``take(job)`` routes a request and counts it; ``done(i)`` counts one off replica i."""

    def __init__(self, reps: list[Replica], router: str) -> None:
        if router not in ROUTERS:
            raise SimError(f"unknown router {router!r}; known: {', '.join(ROUTERS)}")
        self.reps = reps
        self.base = reps[0].index
        self.out: list[int] = [0] * len(reps)
        self.take, self.done = _counters(router, self)


class _Run:
    """State of one simulation: engine, pools, workload cursor and records."""

    def __init__(self, wl: Workload, engine: Engine, prefix: bool, front_end: FrontEnd,
                 progress: Progress | None, duration_s: float | None, instances: int = 1) -> None:
        self.wl = wl
        self.front_end = replace(front_end, per_inflight_s=front_end.per_inflight_s / max(1, instances))
        """The front end with its delay per request in flight counted over the whole run (the
        stack's per-instance figure spread over the instances that share the load)."""
        self.overhead = front_end.fixed_s
        self._variable = front_end.per_inflight_s > 0.0 or front_end.per_prompt_token_s > 0.0
        """Whether the front end's delay varies by request (then each gets its own event)."""
        self._stepped = front_end.stepped
        """Whether the front end also counts engine steps (priced at the replica that takes the
        request, when it takes it: see :meth:`_hand`)."""
        self._lag = 0.0 if self._variable else self.overhead
        """Open loop: from a request's arrival to its event (see :meth:`on_arrival`)."""
        self.engine = engine
        self.prefix = prefix
        self.front: _Pool | None = None
        """Where requests enter: the aggregated pool or the prefill pool."""
        self.back: _Pool | None = None
        """The decode pool of a disaggregated run."""
        self.transfer: Callable[[Job], float] = lambda job: 0.0
        self.next = 0
        self.limit = len(wl)
        self.duration = math.inf if duration_s is None else duration_s
        self.rows: list[tuple[int, int, float, int, int, int, int, float, float, float, int, float]] = []
        self.progress = progress
        self.every = max(1, len(wl) // 200)
        self._p: list[int] = wl.prompt_tokens.tolist()
        self._o: list[int] = wl.output_tokens.tolist()
        self._a: list[float] = [] if wl.arrival_s is None else wl.arrival_s.tolist()
        self._on_arrival = self.on_arrival
        self._closed = wl.closed_loop

    def issue(self, now: float, deliver_at: float | None = None) -> None:
        """Create the next request of the workload, sent at ``now``; it reaches a replica after
        the serving front end's overhead (at ``deliver_at`` when the caller already knows)."""
        i = self.next
        self.next += 1
        hashes = None
        if self.prefix:
            h = self.wl.hashes(i)
            hashes = None if h is None else h.tolist()
        job = Job(i, now, self._p[i], self._o[i], hashes)
        if deliver_at is not None:
            self.deliver(deliver_at, job)
        elif self._variable:  # in flight: this request and those not yet finished
            at = now + self.front_end.delay(self.next - len(self.rows), job.prompt)
            self.engine.schedule(at, ARRIVAL, self.deliver, job)
        elif self.overhead > 0.0:
            self.engine.schedule(now + self.overhead, ARRIVAL, self.deliver, job)
        else:
            self.deliver(now, job)

    def deliver(self, now: float, job: Job) -> None:
        pool = self.front
        assert pool is not None
        rep = pool.reps[pool.take(job)]
        if self._stepped and self.back is None:
            self._hand(now, rep, job)
        else:
            rep.submit(job, now)

    def deliver_decode(self, now: float, job: Job) -> None:
        pool = self.back
        assert pool is not None
        rep = pool.reps[pool.take(job)]
        if self._stepped:
            self._hand(now, rep, job)
        else:
            rep.submit(job, now)

    def _hand(self, now: float, rep: Replica, job: Job) -> None:
        """A stepped front end: the request reaches the replica that took it (the decode
        instance of a disaggregated run, where the client sees its first token) its engine steps
        later, priced at that replica's last step."""
        fe = self.front_end
        wait = fe.steps(job.prompt, rep.C) * rep.step_s(now)
        if wait > 0.0:
            self.engine.push(now + wait, ARRIVAL, self._submit, (rep, job))
        else:
            rep.submit(job, now)

    @staticmethod
    def _submit(now: float, pair: tuple[Replica, Job]) -> None:
        rep, job = pair
        rep.submit(job, now)

    def on_arrival(self, now: float, _: object) -> None:
        """Open loop: the event fires when request ``next`` reaches the replicas (its arrival
        plus the constant front-end overhead, so deliveries keep the arrival order), or, with a
        load-dependent front end, when it is sent (:meth:`issue` then schedules its delivery)."""
        a = self._a
        if self._variable:
            self.issue(now)
        else:
            self.issue(a[self.next], now)
        i = self.next
        if i < len(a) and a[i] < self.duration:
            self.engine.push(a[i] + self._lag, ARRIVAL, self._on_arrival)

    def _start_user(self, now: float, _: object) -> None:
        """A closed-loop user joins (a start-up ramp): its first request."""
        if self.next < self.limit and now < self.duration:
            self.issue(now)

    def on_handoff(self, job: Job, now: float) -> None:
        """A prefill instance sampled the first token: the KV crosses to the decode pool."""
        pool = self.front
        assert pool is not None
        pool.done(job.replica - pool.base)
        if job.generated >= job.output:
            self._record(job, now)
            return
        job.cached = job.target
        self.engine.schedule(now + self.transfer(job), ARRIVAL, self.deliver_decode, job)

    def on_finish(self, job: Job, now: float) -> None:
        pool = self.back if self.back is not None else self.front
        assert pool is not None
        pool.done(job.replica - pool.base)
        self._record(job, now)

    def _record(self, job: Job, now: float) -> None:
        self.rows.append((job.idx, job.replica, job.arrival, job.prompt, job.output, job.hit_tokens,
                          job.preemptions, job.first_sched, job.first_token, now, job.gaps, job.itl_max))
        if self.progress is not None and len(self.rows) % self.every == 0:
            self.progress(len(self.rows), len(self.wl))
        if self._closed and self.next < self.limit and now < self.duration:
            self.issue(now)  # zero think time: the user sends its next request at once

    def records(self) -> NDArray[np.void]:
        """Per-request records sorted by id."""
        rec = np.fromiter(self.rows, dtype=RECORD_DTYPE, count=len(self.rows))
        return rec[np.argsort(rec["id"], kind="stable")]

    def start(self) -> None:
        wl = self.wl
        if wl.concurrency is not None:
            users = min(wl.concurrency, len(wl))
            for i in range(users):
                if wl.ramp_s > 0.0 and i > 0:
                    self.engine.schedule(i * wl.ramp_s / users, ARRIVAL, self._start_user)
                else:
                    self.issue(0.0)
        else:
            assert wl.arrival_s is not None
            self.engine.schedule(float(wl.arrival_s[0]) + self._lag, ARRIVAL, self.on_arrival)

    def finish(self, reps: list[Replica], blocks: int, warmup: int, slo: Slo | None,
               itl: LogHist, series: SeriesBuilder, mode: str) -> SimResult:
        self.engine.run()
        if len(self.rows) != self.next:
            raise SimError(f"{self.next - len(self.rows)} requests never finished")
        if self.progress is not None:
            self.progress(len(self.rows), len(self.rows))
        rec = self.records()
        if warmup >= len(rec):
            raise SimError(f"warm-up of {warmup} requests leaves nothing to measure of {len(rec)}")
        return summarize(
            rec, warmup=warmup, slo=slo,
            preemptions=sum(r.preemptions for r in reps),
            swap_outs=sum(r.swap_outs for r in reps),
            host_peak_fraction=max((r.host_peak / r.host_cap for r in reps if r.host_cap), default=0.0),
            kv_peak_fraction=max(r.pool.peak / r.pool.capacity for r in reps),
            busy_s=sum(r.busy_s for r in reps),
            steps=sum(r.steps for r in reps),
            events=self.engine.events_processed,
            replicas=len(reps),
            kv_blocks=blocks,
            itl=itl.distribution(),
            series=series.build(float(np.max(rec["finish_s"]))),
            mode=mode,
            users=self.wl.concurrency,
        )


def _check_common(sm: StepModel, workload: Workload, replicas: int, mem_fraction: float,
                  warmup: int, duration_s: float | None) -> None:
    if replicas < 1:
        raise SimError(f"replicas must be >= 1, got {replicas}")
    if not 0.0 < mem_fraction <= 1.0:
        raise SimError(f"mem_fraction must lie in (0, 1], got {mem_fraction}")
    if not 0 <= warmup < len(workload):
        raise SimError(f"warmup must lie in [0, {len(workload)}), got {warmup}")
    if duration_s is not None and not duration_s > 0.0:
        raise SimError(f"duration must be > 0 s, got {duration_s}")
    limit = sm.model.max_context
    if limit and workload.max_context > limit:
        raise SimError(f"a request needs {workload.max_context} tokens of context; {sm.model.id} "
                       f"supports {limit}")


def _blocks(sm: StepModel, workload: Workload, kv_blocks: int | None, mem_fraction: float,
            max_num_batched_tokens: int, max_num_seqs: int, tokens: int) -> int:
    blocks = kv_blocks if kv_blocks is not None else kv_pool_blocks(
        sm, mem_fraction=mem_fraction, max_num_batched_tokens=max_num_batched_tokens,
        max_num_seqs=max_num_seqs)
    need = -(-tokens // KV_BLOCK_TOKENS)
    if blocks < need:
        raise SimError(f"a request needs {need} KV blocks of {KV_BLOCK_TOKENS} tokens; a replica holds "
                       f"{blocks} ({sm.model.id}, {sm.plan.label()} on {sm.accel.id})")
    return blocks


def _front_end(sm: StepModel, request_overhead_s: float | None, *, disaggregated: bool = False) -> FrontEnd:
    """The calibration's front end for the stack, or a constant ``request_overhead_s``."""
    if request_overhead_s is None:
        return sm.calib.front_end(sm.framework, disaggregated=disaggregated)
    if not request_overhead_s >= 0.0:
        raise SimError(f"request overhead must be >= 0 s, got {request_overhead_s}")
    return FrontEnd(request_overhead_s)


def simulate(
    step_model: StepModel,
    workload: Workload,
    *,
    replicas: int = 1,
    router: str = "round_robin",
    max_num_batched_tokens: int = 8192,
    max_num_seqs: int | None = None,
    mem_fraction: float = 0.9,
    kv_blocks: int | None = None,
    prefix_caching: bool | None = None,
    seed: int = 0,
    warmup: int = 0,
    slo: Slo | None = None,
    request_overhead_s: float | None = None,
    step_by_step: bool = False,
    spec: SpecDecode | None = None,
    duration_s: float | None = None,
    progress: Progress | None = None,
    preemption: str = "recompute",
    swap_space_bytes: float = DEFAULT_SWAP_SPACE_BYTES,
    host_bw_Bps: float | None = None,
    mixed: bool | None = None,
    reserve_kv: bool | None = None,
) -> SimResult:
    """Simulate ``workload`` on ``replicas`` instances of ``step_model`` behind ``router``.

    ``kv_blocks`` overrides the pool size from the memory model; ``prefix_caching`` defaults to
    whether the workload carries prefix hashes; ``warmup`` requests (the first by id) are left
    out of the statistics; ``request_overhead_s`` is the serving front end's time per request
    (tokenisation, HTTP, detokenisation) before it reaches a replica's queue, by default the
    calibration's front end of the framework (:class:`~hierro.perf.FrontEnd`: a fixed time, a
    time per request in flight on the instance, a time per prompt token, and engine steps per
    request and per prompt token, priced at the last step of the replica that takes the
    request); ``max_num_seqs`` defaults to
    :func:`~hierro.perf.default_max_seqs` of the plan and token budget; ``step_by_step`` turns
    off the closed-form decode advance (a check); ``spec`` turns on speculative decoding; ``duration_s`` stops
    sending requests at that simulated time (those in flight finish); ``progress(done, total)``
    reports finished requests; ``preemption`` is ``recompute`` or ``swap`` (to
    ``swap_space_bytes`` of host memory per device over a host link of ``host_bw_Bps`` per
    direction, by default the accelerator's catalogued ``host_bw_Bps``). ``seed`` seeds
    the generator of randomised policies (none of the current ones draws). ``mixed``: whether a
    step carries prompt chunks with the running decodes (vLLM, TensorRT-LLM) or a step that can
    prefill prefills only while the decodes wait (SGLang); by default the framework's own
    policy (:func:`~hierro.perf.mixes_prefill`). ``reserve_kv``: whether a request is admitted
    only when the KV blocks of its whole length can be reserved (TensorRT-LLM's
    ``GUARANTEED_NO_EVICT``) rather than allocated as it grows; by default the framework's own
    (:func:`~hierro.perf.reserves_kv`).
    """
    _check_common(step_model, workload, replicas, mem_fraction, warmup, duration_s)
    if router not in ROUTERS:
        raise SimError(f"unknown router {router!r}; known: {', '.join(ROUTERS)}")
    _ = np.random.default_rng(seed)
    sm = step_model
    if max_num_seqs is None:
        max_num_seqs = default_max_seqs(sm.plan, max_num_batched_tokens)
    blocks = _blocks(sm, workload, kv_blocks, mem_fraction, max_num_batched_tokens, max_num_seqs,
                     workload.max_context)
    prefix = workload.hash_ids is not None if prefix_caching is None else prefix_caching
    if prefix and workload.hash_ids is None:
        raise SimError("prefix caching needs a workload with prefix hash ids")
    swap = _swap(sm, preemption, swap_space_bytes, host_bw_Bps)
    st, dt = _step_models(sm, max_num_batched_tokens, max_num_seqs, spec)
    engine = Engine()
    run = _Run(workload, engine, prefix, _front_end(sm, request_overhead_s), progress, duration_s,
               instances=replicas)
    itl, series = LogHist(), SeriesBuilder()
    per_step = spec.per_step() if spec is not None else 1.0
    reps = [
        Replica(
            i, engine, st, dt,
            KvPool(blocks, block_tokens=KV_BLOCK_TOKENS, hash_block_tokens=workload.hash_block_tokens),
            run.on_finish,
            max_num_batched_tokens=max_num_batched_tokens, max_num_seqs=max_num_seqs,
            prefix_caching=prefix, hash_block_tokens=workload.hash_block_tokens,
            closed_form=not step_by_step, tokens_per_step=per_step, itl=itl, series=series,
            mixed=mixes_prefill(sm.framework) if mixed is None else mixed,
            reserve=reserves_kv(sm.framework) if reserve_kv is None else reserve_kv, **swap.kw(),
        )
        for i in range(replicas)
    ]
    run.front = _Pool(reps, router)
    run.start()
    return run.finish(reps, blocks, warmup, slo, itl, series, "aggregated")


def simulate_disagg(
    prefill_sm: StepModel,
    decode_sm: StepModel,
    workload: Workload,
    prefill_replicas: int = 1,
    decode_replicas: int = 1,
    *,
    router: str = "least_outstanding",
    decode_router: str = "least_outstanding",
    max_num_batched_tokens: int = 8192,
    max_num_seqs: int | None = None,
    prefill_max_num_seqs: int = 128,
    mem_fraction: float = 0.9,
    prefill_kv_blocks: int | None = None,
    decode_kv_blocks: int | None = None,
    prefix_caching: bool | None = None,
    warmup: int = 0,
    slo: Slo | None = None,
    request_overhead_s: float | None = None,
    transfer_bw_Bps: float | None = None,
    transfer_latency_s: float = DEFAULT_TRANSFER_LATENCY_S,
    same_domain: bool = False,
    step_by_step: bool = False,
    spec: SpecDecode | None = None,
    duration_s: float | None = None,
    progress: Progress | None = None,
    preemption: str = "recompute",
    swap_space_bytes: float = DEFAULT_SWAP_SPACE_BYTES,
    host_bw_Bps: float | None = None,
) -> SimResult:
    """Prefill/decode disaggregation: ``prefill_replicas`` instances of ``prefill_sm`` compute
    prompts (prefix caching there) and sample the first token; the KV moves to one of
    ``decode_replicas`` instances of ``decode_sm`` (see the module docstring for the transfer
    time; ``transfer_bw_Bps`` overrides the bandwidth), which decode the rest, each pool with its
    own queues and router; ``preemption`` applies to both pools (see :func:`simulate`); a decode
    instance of a framework that reserves each request's KV (:func:`~hierro.perf.reserves_kv`)
    takes a request only when its whole length fits beside the others'.
    ``kv_blocks`` in the result is the decode pool's."""
    _check_common(prefill_sm, workload, prefill_replicas, mem_fraction, warmup, duration_s)
    _check_common(decode_sm, workload, decode_replicas, mem_fraction, warmup, duration_s)
    for r in (router, decode_router):
        if r not in ROUTERS:
            raise SimError(f"unknown router {r!r}; known: {', '.join(ROUTERS)}")
    if transfer_latency_s < 0.0 or (transfer_bw_Bps is not None and not transfer_bw_Bps > 0.0):
        raise SimError(f"KV transfer needs bandwidth > 0 and latency >= 0, got {transfer_bw_Bps}, "
                       f"{transfer_latency_s}")
    if max_num_seqs is None:
        max_num_seqs = default_max_seqs(decode_sm.plan, max_num_batched_tokens)
    p_seqs = min(prefill_max_num_seqs, max_num_seqs)
    pblocks = _blocks(prefill_sm, workload, prefill_kv_blocks, mem_fraction, max_num_batched_tokens,
                      p_seqs, int(np.max(workload.prompt_tokens)))
    dblocks = _blocks(decode_sm, workload, decode_kv_blocks, mem_fraction, max_num_batched_tokens,
                      max_num_seqs, workload.max_context)
    prefix = workload.hash_ids is not None if prefix_caching is None else prefix_caching
    if prefix and workload.hash_ids is None:
        raise SimError("prefix caching needs a workload with prefix hash ids")
    pswap = _swap(prefill_sm, preemption, swap_space_bytes, host_bw_Bps)
    dswap = _swap(decode_sm, preemption, swap_space_bytes, host_bw_Bps)
    pst, pdt = _step_models(prefill_sm, max_num_batched_tokens, p_seqs)
    dst, ddt = _step_models(decode_sm, max_num_batched_tokens, max_num_seqs, spec)
    bw = transfer_bw_Bps
    if bw is None:
        a = prefill_sm.accel
        bw = a.scale_up_bw_Bps if same_domain else a.scale_out_bw_Bps
    if not bw > 0.0:
        raise SimError(f"{prefill_sm.accel.id} has no {'scale-up' if same_domain else 'scale-out'} "
                       f"bandwidth in the catalog; give transfer_bw_Bps")
    lengths = np.unique(workload.prompt_tokens)
    xfer = {int(n): kv_bytes_per_seq(prefill_sm.model, prefill_sm.plan, float(n)) / bw + transfer_latency_s
            for n in lengths.tolist()}
    engine = Engine()
    run = _Run(workload, engine, prefix, _front_end(prefill_sm, request_overhead_s, disaggregated=True),
               progress, duration_s, instances=decode_replicas)
    run.transfer = lambda job: xfer[job.prompt]
    itl, series = LogHist(), SeriesBuilder()
    per_step = spec.per_step() if spec is not None else 1.0
    hb = workload.hash_block_tokens
    pre = [
        Replica(i, engine, pst, pdt, KvPool(pblocks, block_tokens=KV_BLOCK_TOKENS, hash_block_tokens=hb),
                run.on_handoff, max_num_batched_tokens=max_num_batched_tokens, max_num_seqs=p_seqs,
                prefix_caching=prefix, hash_block_tokens=hb, closed_form=not step_by_step,
                itl=itl, series=series, prefill_only=True, **pswap.kw())
        for i in range(prefill_replicas)
    ]
    dec = [
        Replica(prefill_replicas + i, engine, dst, ddt,
                KvPool(dblocks, block_tokens=KV_BLOCK_TOKENS, hash_block_tokens=hb),
                run.on_finish, max_num_batched_tokens=max_num_batched_tokens, max_num_seqs=max_num_seqs,
                prefix_caching=False, hash_block_tokens=hb, closed_form=not step_by_step,
                tokens_per_step=per_step, itl=itl, series=series, reserve=reserves_kv(decode_sm.framework),
                **dswap.kw())
        for i in range(decode_replicas)
    ]
    run.front = _Pool(pre, router)
    run.back = _Pool(dec, decode_router)
    run.start()
    return run.finish(pre + dec, dblocks, warmup, slo, itl, series, "disaggregated")


PREFIX_BALANCE_ABS = 32
"""sgl-router's ``balance_abs_threshold`` default."""
PREFIX_BALANCE_REL = 1.0001
"""sgl-router's ``balance_rel_threshold`` default."""
PREFIX_CACHE_THRESHOLD = 0.5
"""sgl-router's ``cache_threshold`` default: the matched share of a prompt that wins a route."""


def _counters(name: str, pool: _Pool) -> tuple[Callable[[Job], int], Callable[[int], None]]:
    """``take`` (route a request and count it) and ``done`` (count one off) for ``pool.out``.

    Least outstanding keeps, besides ``out``, the replicas of each outstanding count as a bit set
    and the lowest count: its pick among the least loaded is the first set bit at or after the
    replica after the last pick, wrapping around (ties in turn, without scanning the fleet)."""
    out = pool.out
    if name != "least_outstanding":
        route = _router(name, pool)

        def take_routed(job: Job) -> int:
            i = route(job)
            out[i] += 1
            return i

        def done_plain(i: int) -> None:
            out[i] -= 1

        return take_routed, done_plain

    by = [(1 << len(out)) - 1]
    """by[c]: bit set of the replicas with c requests outstanding."""
    lo = 0
    """The lowest outstanding count (by[lo] is never empty)."""
    after = 0
    """Ties go to the first least-loaded replica from this index on."""
    n = len(out)

    def take(job: Job) -> int:
        nonlocal lo, after
        m = by[lo]
        ahead = (m >> after) << after
        bit = (ahead or m) & -(ahead or m)
        i = bit.bit_length() - 1
        after = i + 1 if i + 1 < n else 0
        c = lo + 1
        out[i] = c
        m ^= bit
        by[lo] = m
        if c == len(by):
            by.append(bit)
        else:
            by[c] |= bit
        if not m:
            lo = c
        return i

    def done(i: int) -> None:
        nonlocal lo
        c = out[i]
        out[i] = c - 1
        bit = 1 << i
        by[c] ^= bit
        by[c - 1] |= bit
        if c <= lo:
            lo = c - 1

    return take, done


def _router(name: str, pool: _Pool) -> Callable[[Job], int]:
    """The routing function of ``round_robin`` or ``prefix_aware`` (least outstanding routes in
    :func:`_counters`)."""
    reps = pool.reps
    n = len(reps)
    if name == "round_robin":
        counter = [0]

        def round_robin(job: Job) -> int:
            i = counter[0]
            counter[0] = i + 1 if i + 1 < n else 0
            return i

        return round_robin

    out = pool.out

    def prefix_aware(job: Job) -> int:
        h = job.hashes
        low = min(out)
        lo = out.index(low)
        if not h or n == 1:
            return lo
        top = max(out)
        if top - low > PREFIX_BALANCE_ABS and top > PREFIX_BALANCE_REL * low:
            return lo
        best, hit = lo, 0
        for i, r in enumerate(reps):
            m = r.pool.lookup(h, len(h))[0]
            if m > hit or (m == hit and m and out[i] < out[best]):
                best, hit = i, m
        return best if hit > PREFIX_CACHE_THRESHOLD * len(h) else lo

    return prefix_aware
