"""One serving instance: vLLM-V1-style continuous batching over a paged KV pool.

Every engine step (Kwon et al., vLLM/PagedAttention, SOSP 2023; vLLM V1 ``Scheduler.schedule``):

1. every running sequence that is decoding gets one token of the step's token budget
   (``max_num_batched_tokens``) and, when its last block is full, a new KV block; when the pool
   has no block left the most recently admitted running request is preempted (LIFO);
2. running requests that are still prefilling get the next chunk of their prompt, in admission
   order, as far as the budget allows (chunked prefill: Agrawal et al., Sarathi-Serve, OSDI 2024);
3. if nobody was preempted, swapped-out requests come back first (oldest first), then waiting
   requests are admitted first come first served while the budget, ``max_num_seqs`` and the KV
   blocks of their first chunk allow; cached prefix blocks (prefix caching) are not recomputed.

Without mixing (``mixed=False``, SGLang's scheduler unless ``--enable-mixed-chunk``): a step
that can prefill (running prefills' next chunks, then admissions, up to the whole budget, with no
preemption) prefills only, and the decode batch waits it out: no token, no step of D. Otherwise
the step above runs. The decoders' gaps then include the prefill-only steps since their last
token; that wait is kept in aggregate (the replica's total prefill-only time Z, and Z at the
last decode step), so the inter-token histogram's sum stays exact without touching every
decoder.

Preemption (Kwon et al., SOSP 2023, §4.5) is by recompute (vLLM V1, the default): the victim
frees its blocks and later prefills its prompt and generated tokens again; or by swap (vLLM V0
``preemption_mode="swap"``): all its blocks are copied to host memory (all or nothing, while the
host's swap space lasts; else it is recomputed) and copied back when it resumes, after which it
goes on where it stopped (its first step back writes the KV of its last token, as a decode
does). Each copy takes blocks × ``swap_s_per_block`` and stalls the step that issues it, as the
cache engine's copies run before the forward pass.

The step lasts ``step_time(shape)``. A request's first token comes at the end of the step that
completes its prompt; each later step adds one token.

Closed-form decode. While nothing prefills and no waiting request can be admitted, every step
is the same batch of B decodes whose mean context grows by one token per step, so step i lasts
α + β·i (the decode time is linear in context between window knots) and k steps last
k·α + β·k(k-1)/2. The replica jumps to the next event: a completion, a KV block shortfall, a
window knot, or (by truncation to the step boundary that follows it) an arrival. A run costs
O(requests + scheduling events), not O(decode iterations).

Speculative decoding (Leviathan et al., ICML 2023) in expectation: every decode step emits
E = (1 - α^(k+1)) / (1 - α) tokens per sequence (α the acceptance rate, k draft tokens), so the
mean context grows by E per step (step i lasts α_0 + β·E·i, still an arithmetic series) and a
request with r tokens to go leaves after ceil(r / E) steps. KV blocks are counted in steps: a
block of 16 tokens lasts S = floor(16 / E) steps (conservative by at most one step's tokens per
block), which keeps the block arithmetic integral; without speculation S = 16 and E = 1 exactly.

Inter-token latency: each step boundary pushes the step's duration (a segment: its longest step)
on a monotone stack, so the largest gap a request saw since it joined the decode batch is one
binary search when it leaves.

Disaggregation (Zhong et al., DistServe, OSDI 2024; Patel et al., Splitwise, ISCA 2024): a
``prefill_only`` replica hands a request to ``on_finish`` as soon as its first token is sampled
(and frees its KV: the transfer is taken as streamed out layer by layer during the prefill); a
decode replica admits a request whose KV has arrived (``cached == target``) straight into the
decode batch, taking its blocks and one token of the budget but no prefill work.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left
from collections import deque
from collections.abc import Callable

from hierro.sim.engine import STEP, Engine, SimError
from hierro.sim.kvcache import KvPool
from hierro.sim.metrics import LogHist, SeriesBuilder
from hierro.sim.steptime import DecodeTable, StepTime

__all__ = ["PREEMPTION", "Job", "Replica"]

PREEMPTION = ("recompute", "swap")
"""Preemption modes: vLLM V1 recomputes; vLLM V0 could also swap KV blocks to host memory."""


class Job:
    """The mutable state of one request inside the simulator."""

    __slots__ = (
        "arrival", "cached", "d_join", "decoding", "e_join", "finish_d", "first_sched", "first_token",
        "gaps", "gen", "generated", "hashes", "held", "hit_tokens", "idx", "itl_max", "output", "ph", "pinned",
        "preemptions", "prompt", "replica", "shared", "stall", "swapped", "target", "z",
    )

    def __init__(self, idx: int, arrival: float, prompt: int, output: int, hashes: list[int] | None) -> None:
        self.idx = idx
        self.arrival = arrival
        self.prompt = prompt
        self.output = output
        self.hashes = hashes
        self.generated = 0
        self.cached = 0
        """Tokens in the KV cache (for a decoder: at the time it joined the decode batch)."""
        self.target = prompt
        """Tokens to prefill before the next token is sampled (prompt + generated after a
        preemption by recompute)."""
        self.decoding = False
        self.d_join = 0
        self.finish_d = 0
        self.gen = 0
        self.shared = 0
        self.pinned: list[int] = []
        self.first_sched = -1.0
        self.first_token = -1.0
        self.preemptions = 0
        self.hit_tokens = 0
        self.replica = -1
        self.ph = 0
        """Block phase of a decoder (index into ``Replica.phase``)."""
        self.e_join = 0
        self.gaps = 0
        """Token emissions after the first (ITL gaps)."""
        self.itl_max = 0.0
        self.stall = -1.0
        """Time of the last token before a preemption (-1: none pending)."""
        self.swapped = 0
        """KV blocks held in host memory while swapped out."""
        self.held = 0
        """KV blocks reserved for its whole length at admission (``Replica.reserve``)."""
        self.z = 0.0
        """The replica's prefill-only time (``Replica._Z``) when it joined the decode batch."""


class Replica:
    """A model instance with its own queue, running batch and KV pool."""

    __slots__ = (
        "B",
        "C",
        "D",
        "E",
        "S",
        "S_off",
        "_Z",
        "_Ze",
        "_cb",
        "_committed",
        "_event",
        "_finish",
        "_fresh",
        "_in_handler",
        "_late",
        "_mx_i",
        "_mx_v",
        "_one_piece",
        "_pending",
        "_pending_t0",
        "_pf_only",
        "_sample",
        "_seg",
        "_step_alloc",
        "_swap_io",
        "_t_sample",
        "bt",
        "busy_s",
        "decode",
        "engine",
        "hash_tokens",
        "host_cap",
        "host_peak",
        "host_used",
        "index",
        "itl",
        "k_cap",
        "last_step_s",
        "max_seqs",
        "mixed",
        "mixed_steps",
        "n_ev",
        "on_finish",
        "phase",
        "pool",
        "preemptions",
        "prefill_only",
        "prefilling",
        "prefix",
        "reserve",
        "running",
        "segments",
        "series",
        "step_time",
        "steps",
        "swap",
        "swap_outs",
        "swap_s",
        "swapped",
        "waiting",
    )

    def __init__(
        self,
        index: int,
        engine: Engine,
        step_time: StepTime,
        decode: DecodeTable,
        pool: KvPool,
        on_finish: Callable[[Job, float], None],
        *,
        max_num_batched_tokens: int = 8192,
        max_num_seqs: int = 1024,
        prefix_caching: bool = False,
        hash_block_tokens: int = 512,
        closed_form: bool = True,
        tokens_per_step: float = 1.0,
        itl: LogHist | None = None,
        series: SeriesBuilder | None = None,
        prefill_only: bool = False,
        preemption: str = "recompute",
        swap_s_per_block: float = 0.0,
        host_blocks: int = 0,
        mixed: bool = True,
        reserve: bool = False,
    ) -> None:
        if preemption not in PREEMPTION:
            raise SimError(f"unknown preemption mode {preemption!r}; known: {', '.join(PREEMPTION)}")
        if not (math.isfinite(swap_s_per_block) and swap_s_per_block >= 0.0) or host_blocks < 0:
            raise SimError(f"swap needs a copy time >= 0 s per block and >= 0 host blocks, got "
                           f"{swap_s_per_block}, {host_blocks}")
        if max_num_batched_tokens < max_num_seqs:
            raise SimError(f"max_num_batched_tokens ({max_num_batched_tokens}) must be >= max_num_seqs "
                           f"({max_num_seqs}), as vLLM requires")
        if decode.max_seqs < max_num_seqs:
            raise SimError("the decode table is smaller than max_num_seqs")
        self.index = index
        self.engine = engine
        self.step_time = step_time
        self.decode = decode
        self.pool = pool
        self.on_finish = on_finish
        self.C = max_num_batched_tokens
        self.max_seqs = max_num_seqs
        self.prefix = prefix_caching
        self.hash_tokens = hash_block_tokens
        self.k_cap = 1 << 62 if closed_form else 1
        self.bt = pool.block_tokens
        if not tokens_per_step >= 1.0:
            raise SimError(f"a decode step emits >= 1 token per sequence, got {tokens_per_step}")
        self.E: float = 1 if tokens_per_step == 1.0 else tokens_per_step
        """Tokens per sequence per decode step (int 1 keeps the arithmetic exact)."""
        self.S = self.bt if self.E == 1 else max(1, int(self.bt / self.E))
        """Decode steps one KV block lasts."""
        self.itl = itl if itl is not None else LogHist()
        self.series = series
        self._t_sample = 0.0 if series is not None else math.inf
        self._sample = series.sample if series is not None else _no_series
        self.prefill_only = prefill_only
        self._mx_i: list[int] = []
        self._mx_v: list[float] = []
        self.n_ev = 0
        self.waiting: deque[Job] = deque()
        self.swap = preemption == "swap"
        self.swap_s = swap_s_per_block
        self.host_cap = host_blocks
        """Blocks of host swap space."""
        self.host_used = 0
        self.host_peak = 0
        self.swapped: deque[Job] = deque()
        """Swapped-out requests, oldest admitted first."""
        self._swap_io = 0
        """Blocks copied between device and host in the step being planned."""
        self.swap_outs = 0
        self.running: dict[int, Job] = {}
        self.prefilling: dict[int, Job] = {}
        # the decode batch: B sequences; sequence i holds c_i = c_join_i + D - d_join_i tokens,
        # so their total is S_off + B·D with S_off = Σ (c_join_i - d_join_i)
        self.B = 0
        self.S_off: float = 0
        """Σ (tokens at join - E·steps at join) over the decode batch (an int without speculation)."""
        self.D = 0
        self.phase = [0] * self.S
        self._finish: list[tuple[int, int, int, Job]] = []
        self._event: int | None = None
        """Sequence number of the pending step-boundary event."""
        self._cb = self._on_boundary
        self._one_piece = len(decode.knots) == 1
        self._seg: tuple[float, int, float, float] | None = None
        self._pending: list[tuple[Job, int]] | None = None
        self._pending_t0 = 0.0
        self._pf_only = False
        """Whether the step in flight prefills only (the decode batch waits it out)."""
        # The decoders' wait through prefill-only steps, exactly and in O(1) a step: Z is the
        # replica's total prefill-only time; a decoder waited Z - max(Ze, z) since its last
        # token, Ze being Z at the last decode step and z its own Z when it joined.
        self._Z = 0.0
        self._Ze = 0.0
        self._late = 0.0
        """Σ (z - Ze) over the decoders that joined after a prefill-only step since the last decode step."""
        self._fresh = 0
        """Decoders that joined since the last prefill-only step or decode step (no wait yet)."""
        self.mixed = mixed
        """Prefill chunks share a step with the running decodes (vLLM, TensorRT-LLM); False:
        a step that can prefill prefills only, first (SGLang)."""
        self.reserve = reserve
        """Admit a request only when the KV blocks of its whole length (prompt and every output
        token) fit beside those reserved for the running ones (TensorRT-LLM's default
        ``GUARANTEED_NO_EVICT`` capacity scheduler), instead of allocating as it grows."""
        self._committed = 0
        """KV blocks reserved by the running requests (with ``reserve``)."""
        self._in_handler = False
        self._step_alloc = False
        # counters
        self.steps = 0
        self.mixed_steps = 0
        self.segments = 0
        self.preemptions = 0
        self.busy_s = 0.0
        self.last_step_s = 0.0
        """Duration of the last step completed (0 before the first)."""

    # --- entry points ---------------------------------------------------------------------

    def submit(self, job: Job, now: float) -> None:
        """A request routed here at ``now``."""
        job.replica = self.index
        self.waiting.append(job)
        if self._in_handler:
            return
        if self._event is None:
            self._event = self.engine.push(now, STEP, self._cb)
        elif self._seg is not None:  # end the segment in flight at the first step boundary >= now
            t0, k, alpha, beta = self._seg
            j = _steps_to_reach(now - t0, alpha, beta)
            if j < k:
                self.engine.cancel(self._event)
                self._seg = (t0, j, alpha, beta)
                self._event = self.engine.push(t0 + (j * alpha + beta * (j * (j - 1) / 2)), STEP, self._cb)

    def step_s(self, now: float) -> float:
        """Duration of the last step completed by ``now`` (inside a closed-form decode segment,
        the step the segment's arithmetic series gives; 0 before the first step)."""
        seg = self._seg
        if seg is None:
            return self.last_step_s
        t0, _k, alpha, beta = seg
        x = now - t0
        if x <= 0.0:
            return self.last_step_s
        j = _steps_to_reach(x, alpha, beta)
        done = j if j * alpha + beta * (j * (j - 1) / 2) <= x else j - 1
        return self.last_step_s if done == 0 else alpha + beta * (done - 1)

    @property
    def outstanding(self) -> int:
        return len(self.waiting) + len(self.running) + len(self.swapped)

    # --- the step boundary ----------------------------------------------------------------

    def _on_boundary(self, now: float, _: object) -> None:
        self._event = None
        self._in_handler = True
        try:
            if self._seg is not None:
                self._end_segment(now)
            elif self._pending is not None:
                self._end_step(now)
            # plan: a closed-form decode segment while only decodes can run, else one step
            waiting, swapped = self.waiting, self.swapped
            if (self.running or waiting or swapped) and (
                    not self.B or self.prefilling
                    or (self._resumable(swapped[0]) if swapped else waiting and self._admissible(waiting[0]))
                    or not self._try_segment(now)):
                self._step(now)
            if now >= self._t_sample:  # inf without a series
                pool = self.pool
                used = pool.private + pool.hash_blocks * (len(pool.pinned) + len(pool.lru))  # pool.used
                self._t_sample = self._sample(now, used / pool.capacity, len(self.waiting))
        finally:
            self._in_handler = False

    # --- closed-form decode segments --------------------------------------------------------

    def _new_blocks(self, k: int) -> int:
        """KV blocks the decode batch takes over the next k steps (each sequence takes one
        when it writes the first token of a block).

        A sequence with u steps left in its last block takes ceil((k - u) / S) blocks when
        k > u; with k = q·S + m that is q + [u < m], so the total is B·q plus the sequences
        whose u is below m (u = (-(r + D)) mod S for phase r)."""
        S, phase = self.S, self.phase
        s0 = -self.D % S  # the phase whose u is 0
        if k == 1:
            return phase[s0]  # those whose last block is full
        q, m = divmod(k, S)
        total = self.B * q
        if m:
            lo = s0 - m + 1  # phases s0, s0 - 1, ..., s0 - m + 1 (mod S) have u < m
            if lo >= 0:
                total += sum(phase[lo:s0 + 1])
            else:
                total += sum(phase[:s0 + 1]) + sum(phase[lo + S:])
        return total

    def _fit_blocks(self, k: int) -> int:
        """Largest j <= k whose new KV blocks fit in the pool."""
        pool = self.pool
        avail = pool.capacity - pool.private - pool.hash_blocks * len(pool.pinned)
        if self.B * (-(-k // self.S)) > avail:
            lo, hi = 0, k  # largest j in [0, k] with new_blocks(j) <= avail
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self._new_blocks(mid) <= avail:
                    lo = mid
                else:
                    hi = mid - 1
            k = lo
        return k

    def _try_segment(self, now: float) -> bool:
        """Start a closed-form decode segment if one of at least one step is possible (as long
        of at most: the next completion, the end of the context piece, the KV blocks left)."""
        heap = self._finish
        while heap[0][2] != heap[0][3].gen:
            heapq.heappop(heap)
        D, B, E = self.D, self.B, self.E
        k = heap[0][0] - D
        if k > self.k_cap:
            k = self.k_cap
        d0 = (self.S_off + E * B * D) / B
        tab = self.decode
        if self._one_piece:
            p = 0
        else:
            p = tab.piece(d0)
            end = tab.piece_end(p)
            if end < math.inf:
                k = min(k, math.floor((end - d0) / E) + 1)
        pool = self.pool
        if B * (-(-k // self.S)) > pool.capacity - pool.private - pool.hash_blocks * len(pool.pinned):
            k = self._fit_blocks(k)
        if k < 1:
            return False
        slope = tab.slope_rows[B][p]
        alpha = tab.value_rows[B][p] + slope * (d0 - tab.knots[p])
        beta = slope * E  # the mean context grows by E tokens a step
        self._seg = (now, k, alpha, beta)
        self.segments += 1
        self._event = self.engine.push(now + (k * alpha + beta * (k * (k - 1) / 2)), STEP, self._cb)
        return True

    def _end_segment(self, now: float) -> None:
        assert self._seg is not None
        t0, k, alpha, beta = self._seg
        self._seg = None
        D = self.D
        n = self.phase[-D % self.S] if k == 1 else self._new_blocks(k)
        if n > 0:
            pool = self.pool
            if self.prefix:
                pool.alloc(n)
            else:  # pool.alloc(n) without a prefix cache
                held = pool.private + n
                if held > pool.capacity:
                    raise SimError(f"KV pool overflow: {n} blocks asked, {pool.capacity - pool.private} free")
                pool.private = held
                if held > pool.peak:
                    pool.peak = held
        D = self.D = D + k
        self.steps += k
        self.busy_s += now - t0
        last = self.last_step_s = alpha + beta * (k - 1)
        lo, hi = (alpha, last) if last >= alpha else (last, alpha)
        # the segment's longest gap: its longest step, or its first after the prefill-only steps
        # waited out before it
        self._push_gap(hi if self.mixed else max(hi, alpha + self._Z - self._Ze))
        n, sub = (0, 0.0) if self.mixed else self._waited_itl(alpha)
        if k == 1:
            if n < self.B:
                self.itl.add(alpha, self.B - n)
        else:
            B = self.B
            self.itl.add_range(lo, hi, B * k - n, B * (now - t0) - sub)
        heap = self._finish
        if heap and heap[0][0] <= D:
            self._complete(now)

    # --- general steps ----------------------------------------------------------------------

    def _step(self, now: float) -> None:
        if not self.mixed and self.B and self._prefill_step(now):
            return
        pool = self.pool
        preempted = False
        # 1. decodes first: one token and, at a block boundary, one block each
        bt = self.bt
        need = self.phase[-self.D % self.S] if self.B else 0  # _new_blocks(1)
        if need > pool.capacity - pool.private - pool.hash_blocks * len(pool.pinned):
            while need > pool.available:
                self._preempt(next(reversed(self.running.values())))
                preempted = True
                need = self._new_blocks(1) if self.B else 0
        if need > 0:
            pool.alloc(need)
        self._step_alloc = True
        budget = self.C - self.B
        chunks: list[tuple[Job, int]] = []
        # 2. running prefills, in admission order
        prefilling = self.prefilling
        for job in list(prefilling.values()) if prefilling else ():
            if budget <= 0:
                break
            if job.idx not in prefilling:
                continue
            n = min(job.target - job.cached, budget)
            nb = -(-(job.cached + n) // bt) - -(-job.cached // bt)
            while nb > pool.available:
                victim = next(reversed(self.running.values()))
                self._preempt(victim)
                preempted = True
                if victim is job:
                    break
            if job.idx not in self.prefilling:
                break
            pool.alloc(nb)
            chunks.append((job, n))
            budget -= n
        self._step_alloc = False
        # 3. swapped-out requests come back, then admissions, first come first served, unless
        # this step preempted (and still has work)
        if not preempted or not (chunks or self.B):
            swapped = self.swapped
            while swapped and budget > 0 and len(self.running) < self.max_seqs:
                job = swapped[0]
                n = min(job.target - job.cached, budget)
                nb = -(-(job.cached + n) // bt)  # its blocks come back, with those of this chunk
                if nb > pool.available:
                    break
                pool.alloc(nb)
                swapped.popleft()
                self.host_used -= job.swapped
                self._swap_io += job.swapped
                job.swapped = 0
                self.running[job.idx] = job
                self.prefilling[job.idx] = job
                chunks.append((job, n))
                budget -= n
            waiting = self.waiting
            while waiting and not swapped and budget > 0 and len(self.running) < self.max_seqs:
                head = waiting[0]
                if head.cached >= head.target:  # its KV came from a prefill instance
                    nb = -(-head.cached // bt)
                    if nb * bt - head.cached < self.E:
                        nb += 1  # this step's token starts a new block
                    if nb > pool.available:
                        break
                    whole = self._reservation(head)
                    if whole < 0:
                        break
                    self._committed += whole
                    head.held = whole
                    pool.alloc(nb)
                    waiting.popleft()
                    self.running[head.idx] = head
                    if now > head.first_token:  # the client sees it when this instance takes it
                        head.first_token = now
                    self._join_decode(head)
                    budget -= 1
                    continue
                n = self._admit(head, budget, now)
                if n == 0:
                    break
                job = waiting.popleft()
                chunks.append((job, n))
                budget -= n
        B = self.B
        if not chunks and not B:
            if not self.running:
                head = self.swapped[0] if self.swapped else self.waiting[0]
                raise SimError(f"replica {self.index}: request {head.idx} ({head.target} tokens) can "
                               f"never be admitted: {pool.available} KV blocks available")
            raise SimError(f"replica {self.index}: a step with no work ({len(self.running)} running)")
        self._launch(chunks, B, now)

    def _launch(self, chunks: list[tuple[Job, int]], B: int, now: float) -> None:
        """Start a step of ``chunks`` of prefill and ``B`` decodes."""
        if len(chunks) == 1:
            job, n = chunks[0]
            c = job.cached
            pshape = (float(n), 1.0, c / 1, float(B), (self.S_off + self.E * B * self.D) / B if B else 0.0,
                      float(B + 1) if c + n == job.target else float(B))
        else:
            tp = ps = ctx = sampled = 0
            for job, n in chunks:
                tp += n
                ps += 1
                ctx += job.cached
                if job.cached + n == job.target:
                    sampled += 1
            dctx = (self.S_off + self.E * B * self.D) / B if B else 0.0
            pshape = (float(tp), float(ps), ctx / ps if ps else 0.0, float(B), dctx, float(B + sampled))
        dt = self.step_time(*pshape)
        if self._swap_io:
            dt += self._swap_io * self.swap_s
            self._swap_io = 0
        self._pending = chunks
        self._pending_t0 = now
        self.mixed_steps += 1
        self._event = self.engine.push(now + dt, STEP, self._cb)

    def _prefill_step(self, now: float) -> bool:
        """A step of SGLang's scheduler (``get_next_batch_to_run``: a new prefill batch runs
        first when there is one; the decode batch runs only when nothing can be prefilled,
        unless ``--enable-mixed-chunk``): the running prefills' next chunks, then admissions,
        up to the whole token budget, and no decode. Returns False, changing nothing, when no
        prompt can be prefilled without preempting (the usual step then runs)."""
        waiting, pool, bt = self.waiting, self.pool, self.bt
        if self.swapped or (waiting and waiting[0].cached >= waiting[0].target):
            return False
        budget = self.C
        chunks: list[tuple[Job, int]] = []
        for job in self.prefilling.values():
            if budget <= 0:
                break
            n = min(job.target - job.cached, budget)
            nb = -(-(job.cached + n) // bt) - -(-job.cached // bt)
            if nb > pool.available:  # first come first served: no admission past it
                if not chunks:
                    return False
                budget = 0
                break
            pool.alloc(nb)
            chunks.append((job, n))
            budget -= n
        while waiting and budget > 0 and len(self.running) < self.max_seqs:
            head = waiting[0]
            if head.cached >= head.target:
                break
            n = self._admit(head, budget, now)
            if n == 0:
                break
            waiting.popleft()
            chunks.append((head, n))
            budget -= n
        if not chunks:
            return False
        self._pf_only = True
        self._launch(chunks, 0, now)
        return True

    def _end_step(self, now: float) -> None:
        chunks = self._pending
        assert chunks is not None
        self._pending = None
        pf_only = self._pf_only
        if pf_only:  # the decode batch waited: no token, no step of D
            self._pf_only = False
        else:
            self.D += 1
        self.steps += 1
        dt = self.last_step_s = now - self._pending_t0
        self.busy_s += dt
        if pf_only:  # the decodes wait: their next gap grows by dt
            self._Z += dt
            self._fresh = 0
        else:
            self._push_gap(dt + self._Z - self._Ze)
            n = 0 if self.mixed else self._waited_itl(dt)[0]
            if n < self.B:
                self.itl.add(dt, self.B - n)
        prefilling = self.prefilling
        for job, n in chunks:
            job.cached += n
            if job.cached < job.target:
                continue
            del prefilling[job.idx]
            if self.prefix:
                self._publish(job)
            job.generated += 1
            if job.first_token < 0:
                job.first_token = now
            else:  # the first token after a preemption
                job.gaps += 1
                if job.stall >= 0.0:
                    gap = now - job.stall
                    job.stall = -1.0
                    self.itl.add(gap, 1)
                    if gap > job.itl_max:
                        job.itl_max = gap
            if job.generated >= job.output or self.prefill_only:
                self._release(job, self.pool.blocks(job.cached))
                self.on_finish(job, now)
            else:
                self._join_decode(job)
        heap = self._finish
        if heap and heap[0][0] <= self.D:
            self._complete(now)

    # --- bookkeeping ----------------------------------------------------------------------

    def _push_gap(self, gap: float) -> None:
        """A decode emission whose longest gap is ``gap``: one event on the monotone stack of
        gaps (values strictly decreasing), where a leaving decoder finds its longest since it
        joined by one binary search."""
        mi, mv = self._mx_i, self._mx_v
        while mv and mv[-1] <= gap:
            mv.pop()
            mi.pop()
        mi.append(self.n_ev)
        mv.append(gap)
        self.n_ev += 1

    def _waited_itl(self, first: float) -> tuple[int, float]:
        """At a decode step of ``first`` seconds: record the gaps of the decoders that waited out
        prefill-only steps since their last token (that wait plus ``first``; their mean, so the
        histogram's sum is exact), and start a new wait. Returns the gaps recorded and ``first``
        times their count, to leave out of the step's usual record."""
        Z, Ze = self._Z, self._Ze
        waited = self.B * (Z - Ze) - self._late
        n = self.B - self._fresh
        self._Ze, self._late, self._fresh = Z, 0.0, 0
        if waited <= 0.0 or n <= 0:
            return 0, 0.0
        self.itl.add(first + waited / n, n)
        return n, n * first

    def _join_decode(self, job: Job) -> None:
        D, E, S = self.D, self.E, self.S
        job.decoding = True
        job.d_join = D
        job.e_join = self.n_ev
        if not self.mixed:
            job.z = z = self._Z
            if z > self._Ze:
                self._late += z - self._Ze
            self._fresh += 1
        r = job.output - job.generated
        job.finish_d = D + (r if E == 1 else math.ceil(r / E - 1e-9))
        self.B += 1
        self.S_off += job.cached - E * D
        if E == 1:
            job.ph = (job.cached - D) % S
        else:  # steps left in the last block: its free slots / E, at most S - 1 (a phase of
            # S would read as 0, a block due at once that this step, already allocated, never took)
            free = self.pool.blocks(job.cached) * self.bt - job.cached
            job.ph = (-min(S - 1, int(free / E)) - D) % S
        self.phase[job.ph] += 1
        heapq.heappush(self._finish, (job.finish_d, job.idx, job.gen, job))

    def _leave_decode(self, job: Job, extra: int = 0) -> int:
        """Take a decoder out of the batch; returns the KV blocks it holds now (``extra``
        steps ahead: 1 when this step's blocks are already taken). Its ``generated`` count and
        ITL figures are brought up to date."""
        job.decoding = False
        E = self.E
        self.B -= 1
        self.S_off -= job.cached - E * job.d_join
        self.phase[job.ph] -= 1
        job.gen += 1
        j = self.D - job.d_join
        if j > 0:
            job.gaps += j
            mv = self._mx_v
            i = bisect_left(self._mx_i, job.e_join)  # the longest step since it joined
            gap = mv[i] if i < len(mv) else 0.0
            if gap > job.itl_max:
                job.itl_max = gap
        job.generated = min(job.output, job.generated + (j if E == 1 else int(E * j + 1e-9)))
        S = self.S
        u = (-(job.ph + job.d_join)) % S
        steps = j + extra
        return -(-job.cached // self.bt) + (-(-(steps - u) // S) if steps > u else 0)

    def _complete(self, now: float) -> None:
        """Finish the decoders whose last token came with step D: ``_leave_decode`` and
        ``_release`` inline (the hot path of every request)."""
        heap, D = self._finish, self.D
        pop = heapq.heappop
        phase, mi, mv, pool, running = self.phase, self._mx_i, self._mx_v, self.pool, self.running
        E, S, bt = self.E, self.S, self.bt
        while heap and heap[0][0] <= D:
            fd, _, gen, job = pop(heap)
            if gen != job.gen:
                continue
            if fd != D:
                raise SimError(f"request {job.idx} overran its last token ({fd} < {D})")
            # _leave_decode(job)
            job.decoding = False
            d_join = job.d_join
            self.B -= 1
            self.S_off -= job.cached - E * d_join
            ph = job.ph
            phase[ph] -= 1
            job.gen = gen + 1
            j = D - d_join
            if j > 0:
                job.gaps += j
                i = bisect_left(mi, job.e_join)
                gap = mv[i] if i < len(mv) else 0.0
                if gap > job.itl_max:
                    job.itl_max = gap
            u = (-(ph + d_join)) % S
            blocks = -(-job.cached // bt) + (-(-(j - u) // S) if j > u else 0)
            job.generated = job.output
            # _release(job, blocks)
            del running[job.idx]
            self._committed -= job.held
            job.held = 0
            private = pool.private - (blocks - job.shared)
            pool.private = private
            if private < 0:
                raise SimError("KV pool underflow: more blocks freed than allocated")
            if job.pinned:
                pool.unpin(job.pinned)
                job.pinned = []
            job.shared = 0
            self.on_finish(job, now)

    def _release(self, job: Job, blocks: int) -> None:
        del self.running[job.idx]
        self._committed -= job.held
        job.held = 0
        pool = self.pool
        pool.private -= blocks - job.shared
        if pool.private < 0:
            raise SimError("KV pool underflow: more blocks freed than allocated")
        if job.pinned:
            self.pool.unpin(job.pinned)
            job.pinned = []
        job.shared = 0

    def _preempt(self, job: Job) -> None:
        """Preempt a running request. By recompute (vLLM V1): free its blocks; it waits at the
        head of the queue and later prefills its prompt and generated tokens again. By swap,
        while the host has room: its KV (prompt + generated - 1 tokens for a decoder, the
        chunks done for a prefill) goes to host memory and it waits in the swapped queue."""
        now = self.engine.now
        decoding = job.decoding
        waited = 0.0
        if decoding:
            # its block for this step's token is already taken when _step_alloc
            blocks = self._leave_decode(job, 1 if self._step_alloc else 0)
            Z, Ze = self._Z, self._Ze
            waited = Z - max(Ze, job.z)  # prefill-only steps since its last token (0 when mixed)
            if job.z > Ze:
                self._late -= job.z - Ze
                if job.z == Z:
                    self._fresh -= 1
        else:
            del self.prefilling[job.idx]
            blocks = self.pool.blocks(job.cached)
        if job.first_token >= 0.0 and job.stall < 0.0:
            job.stall = now - waited
        self._release(job, blocks)
        job.preemptions += 1
        self.preemptions += 1
        if self.series is not None:
            self.series.preempt(now)
        kv = job.prompt + job.generated - 1 if decoding else job.cached
        held = self.pool.blocks(kv)
        if self.swap and self.host_used + held <= self.host_cap:
            job.cached = kv
            if decoding:
                job.target = kv + 1  # its first step back writes its last token's KV and samples
            job.swapped = held
            self.host_used += held
            if self.host_used > self.host_peak:
                self.host_peak = self.host_used
            self._swap_io += held
            self.swap_outs += 1
            self.swapped.appendleft(job)
            return
        job.cached = 0
        job.target = job.prompt + job.generated
        self.waiting.appendleft(job)

    def _hits(self, job: Job) -> tuple[int, int]:
        """Cached leading prefix blocks of ``job`` and how many of them are evictable."""
        if not self.prefix or not job.hashes:
            return 0, 0
        limit = min(len(job.hashes), (job.target - 1) // self.hash_tokens)
        return self.pool.lookup(job.hashes, limit)

    def _resumable(self, job: Job) -> bool:
        """Whether a swapped-out request can come back in the next step."""
        if len(self.running) >= self.max_seqs:
            return False
        n = min(job.target - job.cached, self.C - self.B)
        return -(-(job.cached + n) // self.bt) <= self.pool.available

    def _reservation(self, job: Job) -> int:
        """The KV blocks ``job`` must reserve to be admitted: those of its whole length with
        ``reserve`` (-1 when they do not fit beside the running requests' reservations), else 0."""
        if not self.reserve:
            return 0
        whole = -(-(job.prompt + job.output) // self.bt)
        return whole if self._committed + whole <= self.pool.capacity else -1

    def _admissible(self, job: Job) -> bool:
        if len(self.running) >= self.max_seqs:
            return False
        pool, bt = self.pool, self.bt
        avail = pool.capacity - pool.private - pool.hash_blocks * len(pool.pinned)
        if self.reserve and self._reservation(job) < 0:
            return False
        if job.cached >= job.target:
            return -(-job.cached // bt) + 1 <= avail
        h, cold = self._hits(job) if self.prefix else (0, 0)
        hit = h * self.hash_tokens
        n = min(job.target - hit, self.C - self.B)
        nb = -(-(hit + n) // bt) - h * pool.hash_blocks
        return nb + cold * pool.hash_blocks <= avail

    def _admit(self, job: Job, budget: int, now: float) -> int:
        """Admit ``job`` with a first chunk of at most ``budget`` tokens; returns the chunk (0 if
        its blocks do not fit)."""
        pool = self.pool
        whole = self._reservation(job) if self.reserve else 0
        if whole < 0:
            return 0
        h, cold = self._hits(job) if self.prefix else (0, 0)
        hit = h * self.hash_tokens
        n = min(job.target - hit, budget)
        nb = -(-(hit + n) // self.bt) - h * pool.hash_blocks
        if nb + cold * pool.hash_blocks > pool.capacity - pool.private - pool.hash_blocks * len(pool.pinned):
            return 0
        self._committed += whole
        job.held = whole
        if h:
            assert job.hashes is not None
            job.pinned = job.hashes[:h]
            pool.pin(job.pinned)
            job.shared = h * pool.hash_blocks
        pool.alloc(nb)
        job.cached = hit
        if job.first_sched < 0:
            job.first_sched = now
            job.hit_tokens = hit
        self.running[job.idx] = job
        self.prefilling[job.idx] = job
        return n

    def _publish(self, job: Job) -> None:
        """Put the full prefix blocks of a finished prompt into the prefix cache."""
        if not self.prefix or not job.hashes:
            return
        pool = self.pool
        for h in job.hashes[len(job.pinned): min(len(job.hashes), job.prompt // self.hash_tokens)]:
            if pool.publish(h):
                job.pinned.append(h)
                job.shared += pool.hash_blocks


def _no_series(t: float, kv: float, waiting: int) -> float:
    """``SeriesBuilder.sample`` of a replica that keeps no series: never due again."""
    return math.inf


def _steps_to_reach(x: float, alpha: float, beta: float) -> int:
    """Smallest j >= 1 with Σ_{i<j} (α + β·i) >= x."""
    if x <= alpha:
        return 1
    if beta > 0:
        b = alpha - beta / 2
        j = max(1, math.ceil((-b + math.sqrt(b * b + 2 * beta * x)) / beta))
    else:
        j = max(1, math.ceil(x / alpha))
    # Σ_{i<j} (α + β·i) = j·α + β·j(j - 1)/2
    while j > 1 and (j - 1) * alpha + beta * ((j - 1) * (j - 2) / 2) >= x:
        j -= 1
    while j * alpha + beta * (j * (j - 1) / 2) < x:
        j += 1
    return j
