"""A fleet of identical replicas behind a router, driven by a workload: :func:`simulate`.

Routers (a plain function of the replicas' state, chosen by name):

- ``round_robin``: request i goes to replica i mod R;
- ``least_outstanding``: to the replica with the fewest requests waiting or running (lowest
  index on ties), as a least-connections load balancer does.

The KV pool of a replica is sized from the memory model: (HBM budget - weights - workspace) /
bytes per block, per attention data-parallel rank (``hierro.specs.memory``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from hierro.perf import StepModel
from hierro.sim.engine import ARRIVAL, Engine, SimError
from hierro.sim.kvcache import KvPool
from hierro.sim.metrics import RECORD_DTYPE, SimResult, Slo, summarize
from hierro.sim.replica import Job, Replica
from hierro.sim.steptime import DecodeTable, StepTime
from hierro.sim.workload import Workload
from hierro.specs.memory import KV_BLOCK_TOKENS, kv_bytes_per_seq, memory_breakdown

__all__ = ["ROUTERS", "kv_pool_blocks", "simulate"]

ROUTERS = ("round_robin", "least_outstanding")

def kv_pool_blocks(sm: StepModel, *, mem_fraction: float = 0.9, max_num_batched_tokens: int = 8192,
                   max_num_seqs: int = 1024) -> int:
    """KV blocks of ``KV_BLOCK_TOKENS`` tokens one instance can hold.

    Bytes per block are the marginal KV bytes of 16 more tokens per device (windowed and linear
    layers counted as full attention, the conservative side)."""
    mem = memory_breakdown(sm.model, sm.accel, sm.plan, context=KV_BLOCK_TOKENS,
                           mem_fraction=mem_fraction, max_batched_tokens=max_num_batched_tokens,
                           max_seqs_sampled=min(max_num_seqs, 256))
    b = KV_BLOCK_TOKENS
    per_block = kv_bytes_per_seq(sm.model, sm.plan, 2 * b) - kv_bytes_per_seq(sm.model, sm.plan, b)
    if per_block <= 0:
        per_block = kv_bytes_per_seq(sm.model, sm.plan, b)
    free = mem.kv_budget_bytes
    return max(int(free // per_block), 0) * sm.plan.attn_dp


def _step_models(sm: StepModel, max_tokens: int, max_seqs: int) -> tuple[StepTime, DecodeTable]:
    """The step-time surrogates of an instance (built once per run, shared by its replicas)."""
    ctx = max(sm.model.max_context, 131072)
    return StepTime(sm, max_tokens=max_tokens, max_seqs=max_seqs, max_ctx=ctx), DecodeTable(sm, max_seqs)


class _Run:
    """State of one simulation: engine, replicas, router, workload cursor and records."""

    def __init__(self, wl: Workload, replicas: list[Replica], route: Callable[[Job], Replica],
                 engine: Engine, prefix: bool, overhead: float) -> None:
        self.wl = wl
        self.overhead = overhead
        self.replicas = replicas
        self.route = route
        self.engine = engine
        self.prefix = prefix
        self.next = 0
        self.rows: list[tuple[int, int, float, int, int, int, int, float, float, float]] = []
        self.outstanding = np.zeros(len(replicas), dtype=np.int64)
        self._p: list[int] = wl.prompt_tokens.tolist()
        self._o: list[int] = wl.output_tokens.tolist()
        self._a: list[float] = [] if wl.arrival_s is None else wl.arrival_s.tolist()

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
        elif self.overhead > 0.0:
            self.engine.schedule(now + self.overhead, ARRIVAL, self.deliver, job)
        else:
            self.deliver(now, job)

    def deliver(self, now: float, job: Job) -> None:
        rep = self.route(job)
        self.outstanding[rep.index] += 1
        rep.submit(job, now)

    def on_arrival(self, now: float, _: object) -> None:
        """Open loop: the event fires when request ``next`` reaches the replicas (its arrival
        plus the constant front-end overhead, so deliveries keep the arrival order)."""
        self.issue(self._a[self.next], now)
        if self.next < len(self._a):
            self.engine.schedule(self._a[self.next] + self.overhead, ARRIVAL, self.on_arrival)

    def on_finish(self, job: Job, now: float) -> None:
        self.rows.append((job.idx, job.replica, job.arrival, job.prompt, job.output, job.hit_tokens,
                          job.preemptions, job.first_sched, job.first_token, now))
        self.outstanding[job.replica] -= 1
        if self.wl.closed_loop and self.next < len(self.wl):
            self.issue(now)  # zero think time: the user sends its next request at once

    def records(self) -> NDArray[np.void]:
        """Per-request records sorted by id."""
        rec = np.array(self.rows, dtype=RECORD_DTYPE)
        return rec[np.argsort(rec["id"], kind="stable")]


def simulate(
    step_model: StepModel,
    workload: Workload,
    *,
    replicas: int = 1,
    router: str = "round_robin",
    max_num_batched_tokens: int = 8192,
    max_num_seqs: int = 1024,
    mem_fraction: float = 0.9,
    kv_blocks: int | None = None,
    prefix_caching: bool | None = None,
    seed: int = 0,
    warmup: int = 0,
    slo: Slo | None = None,
    request_overhead_s: float | None = None,
    step_by_step: bool = False,
) -> SimResult:
    """Simulate ``workload`` on ``replicas`` instances of ``step_model`` behind ``router``.

    ``kv_blocks`` overrides the pool size from the memory model; ``prefix_caching`` defaults to
    whether the workload carries prefix hashes; ``warmup`` requests (the first by id) are left
    out of the statistics; ``request_overhead_s`` is the serving front end's time per request
    (tokenisation, HTTP, detokenisation) before it reaches a replica's queue, by default the
    calibration's TTFT overhead of the framework; ``step_by_step`` turns off the closed-form decode advance (a check).
    ``seed`` seeds the generator of randomised policies (none of the current ones draws).
    """
    if replicas < 1:
        raise SimError(f"replicas must be >= 1, got {replicas}")
    if router not in ROUTERS:
        raise SimError(f"unknown router {router!r}; known: {', '.join(ROUTERS)}")
    if not 0.0 < mem_fraction <= 1.0:
        raise SimError(f"mem_fraction must lie in (0, 1], got {mem_fraction}")
    if not 0 <= warmup < len(workload):
        raise SimError(f"warmup must lie in [0, {len(workload)}), got {warmup}")
    _ = np.random.default_rng(seed)
    sm = step_model
    limit = sm.model.max_context
    if limit and workload.max_context > limit:
        raise SimError(f"a request needs {workload.max_context} tokens of context; {sm.model.id} "
                       f"supports {limit}")
    blocks = kv_blocks if kv_blocks is not None else kv_pool_blocks(
        sm, mem_fraction=mem_fraction, max_num_batched_tokens=max_num_batched_tokens,
        max_num_seqs=max_num_seqs)
    need = -(-workload.max_context // KV_BLOCK_TOKENS)
    if blocks < need:
        raise SimError(f"a request needs {need} KV blocks of {KV_BLOCK_TOKENS} tokens; a replica holds "
                       f"{blocks} ({sm.model.id}, {sm.plan.label()} on {sm.accel.id})")
    prefix = workload.hash_ids is not None if prefix_caching is None else prefix_caching
    if prefix and workload.hash_ids is None:
        raise SimError("prefix caching needs a workload with prefix hash ids")
    st, dt = _step_models(sm, max_num_batched_tokens, max_num_seqs)
    engine = Engine()
    reps: list[Replica] = []
    run_ref: list[_Run] = []

    def on_finish(job: Job, now: float) -> None:
        run_ref[0].on_finish(job, now)

    for i in range(replicas):
        pool = KvPool(blocks, block_tokens=KV_BLOCK_TOKENS, hash_block_tokens=workload.hash_block_tokens)
        reps.append(Replica(
            i, engine, st, dt, pool, on_finish,
            max_num_batched_tokens=max_num_batched_tokens, max_num_seqs=max_num_seqs,
            prefix_caching=prefix, hash_block_tokens=workload.hash_block_tokens,
            closed_form=not step_by_step,
        ))
    route = _router(router, reps, run_ref)
    if request_overhead_s is None:
        request_overhead_s = sm.calib.request_overhead(sm.framework)
    if not request_overhead_s >= 0.0:
        raise SimError(f"request overhead must be >= 0 s, got {request_overhead_s}")
    run = _Run(workload, reps, route, engine, prefix, request_overhead_s)
    run_ref.append(run)
    if workload.concurrency is not None:
        for _ in range(min(workload.concurrency, len(workload))):
            run.issue(0.0)
    else:
        assert workload.arrival_s is not None
        engine.schedule(float(workload.arrival_s[0]) + request_overhead_s, ARRIVAL, run.on_arrival)
    engine.run()
    if len(run.rows) != len(workload):
        raise SimError(f"{len(workload) - len(run.rows)} requests never finished")
    return summarize(
        run.records(), warmup=warmup, slo=slo,
        preemptions=sum(r.preemptions for r in reps),
        kv_peak_fraction=max(r.pool.peak for r in reps) / blocks,
        busy_s=sum(r.busy_s for r in reps),
        steps=sum(r.steps for r in reps),
        events=engine.events_processed,
        replicas=replicas,
        kv_blocks=blocks,
    )


def _router(name: str, reps: list[Replica], run_ref: list[_Run]) -> Callable[[Job], Replica]:
    if name == "round_robin":
        counter = [0]

        def round_robin(job: Job) -> Replica:
            i = counter[0]
            counter[0] = i + 1 if i + 1 < len(reps) else 0
            return reps[i]

        return round_robin

    def least_outstanding(job: Job) -> Replica:
        return reps[int(np.argmin(run_ref[0].outstanding))]

    return least_outstanding

