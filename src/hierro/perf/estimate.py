"""Steady-state latency and throughput of one model instance under a closed loop or offline.

The two settings of the published data: a closed loop of N concurrent requests of fixed lengths
(InferenceMAX, AIConfigurator, vLLM ``--max-concurrency``), and offline maximum throughput
(MLPerf Offline, trtllm-bench), which is the closed loop with N as large as the engine admits.

Mean-field model of continuous batching with chunked prefill (Agrawal et al., Sarathi-Serve,
OSDI 2024): every step decodes one token for each of the B running sequences and prefills the
prompts that arrived meanwhile, up to the token budget C. A request emits osl - 1 tokens after
its first, so in steady state the step carries p = B·isl/(osl-1) prefill tokens on average,
in whole prompt chunks (a share of the steps carries one more chunk than the rest: see
:func:`steady_shapes`), lasts t(B) on average, and completes X = B / ((osl-1)·t) requests per
second. The N - B requests not decoding are waiting
or prefilling; by Little's law they spend (N - B)/X seconds there, which must equal the time
to first token: the wait for the running step, the steps that prefill the prompt, and the
serving stack's per-request overhead. B is the root of that balance, capped by the KV memory, the
engine's sequence limit and the token budget. An engine that does not mix prefill into its
decode steps (SGLang: :func:`~hierro.perf.mixes_prefill`) runs p / chunk prefill-only steps per
decode iteration instead, which the decodes wait out (:func:`unmixed_shapes`). With pipeline
parallelism the batch is split into pp micro-batches in flight, and one decode iteration takes
pp stage steps.

Every input may be an array: the model is evaluated on all of them at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hierro.errors import HierroError
from hierro.perf.efficiency import kv_of_free_memory, mixes_prefill
from hierro.perf.ops import StepShape
from hierro.perf.step import StepCost, StepModel
from hierro.specs import MemoryBreakdown, Plan, check_fits, memory_breakdown

__all__ = [
    "DEFAULT_MAX_BATCHED_TOKENS",
    "DEFAULT_MAX_SEQS",
    "Estimate",
    "EstimateArrays",
    "batch_caps",
    "default_max_seqs",
    "estimate",
    "estimate_arrays",
    "first_wave",
    "iteration_shape",
    "prompt_chunks",
    "prompt_step",
    "steady_shapes",
    "unmixed_shapes",
]

F = NDArray[np.float64]

DEFAULT_MAX_SEQS = 1024
"""Engine cap on running sequences per scheduler (vLLM V1 ``max_num_seqs`` on datacentre GPUs;
TensorRT-LLM ``max_batch_size`` and SGLang's limits are of the same order in the published
setups). An instance's default is :func:`default_max_seqs`."""

DEFAULT_MAX_BATCHED_TOKENS = 8192
"""Token budget of one step (vLLM ``max_num_batched_tokens`` / TensorRT-LLM ``max_num_tokens``
as commonly set for serving)."""


def default_max_seqs(plan: Plan, max_batched_tokens: int | None = None) -> int:
    """The running-sequence cap of one instance of ``plan`` when the user sets none.

    Each scheduler caps its running batch at :data:`DEFAULT_MAX_SEQS`. Under attention data
    parallelism every attention rank schedules its own batch against its own KV cache: SGLang's
    ``--enable-dp-attention`` runs one scheduler per DP rank (SGLang v0.4 release notes,
    "Data Parallelism Attention for DeepSeek Models", lmsys.org/blog/2024-12-04-sglang-v0-4/,
    2024-12), and TensorRT-LLM's attention DP runs "multiple attention DP ranks within a single
    worker, each with its own KV cache" (NVIDIA Dynamo docs, TensorRT-LLM details, "DP Rank
    Routing", docs.nvidia.com/dynamo, 2026), its PyTorch executor applying ``max_batch_size``
    and ``max_num_active_requests`` per rank (NVIDIA/TensorRT-LLM, ``tensorrt_llm/_torch/pyexecutor``).
    So the instance holds ``plan.attn_dp`` times the per-scheduler cap:

        cap = DEFAULT_MAX_SEQS x attn_dp

    With ``max_batched_tokens`` (the step's token budget, summed over the instance) the cap is
    at most the budget: every running decode takes one token of it, so no more can run, and
    vLLM refuses ``max_num_seqs`` above ``max_num_batched_tokens``.
    """
    cap = DEFAULT_MAX_SEQS * plan.attn_dp
    if max_batched_tokens is not None:
        if max_batched_tokens < 1:
            raise HierroError(f"the token budget must be >= 1 token, got {max_batched_tokens}")
        cap = min(cap, max_batched_tokens)
    return cap


_GRID = 12  # candidate running-batch sizes per case, log-spaced, to bracket the root
_REFINE = 3  # regula-falsi steps inside the bracket


@dataclass(frozen=True, slots=True)
class EstimateArrays:
    """Vectorised results (one entry per case), SI units."""

    batch: F
    ttft_s: F
    tpot_s: F
    e2e_s: F
    req_s: F
    out_tok_s: F
    limited_by: NDArray[np.str_]


def iteration_shape(B: F, p_tokens: F, p_seqs: F, p_ctx: F, d_ctx: F, pp: int) -> StepShape:
    """One pipeline stage's share of an iteration: a 1/pp micro-batch of B decodes and
    ``p_tokens`` prefill tokens in ``p_seqs`` chunks (sampling the decodes and the chunks)."""
    return StepShape(
        prefill_tokens=p_tokens / pp,
        prefill_seqs=p_seqs / pp,
        prefill_ctx=p_ctx,
        decode_seqs=B / pp,
        decode_ctx=d_ctx,
        sampled=(B + p_seqs) / pp,
    )


def _iteration_time(sm: StepModel, B: F, p_tokens: F, p_seqs: F, p_ctx: F, d_ctx: F) -> F:
    """One decode iteration of the instance: pp stage steps of a 1/pp micro-batch each."""
    pp = sm.plan.pp
    shape = iteration_shape(B, p_tokens, p_seqs, p_ctx, d_ctx, pp)
    return np.asarray(sm.time(shape), dtype=np.float64) * pp


def steady_shapes(B: F, p: F, chunk: F, d_ctx: F, pp: int) -> tuple[StepShape, StepShape, F]:
    """``(fewer, more, frac)``: the two iteration shapes of the steady state and the share of
    iterations of the second.

    The scheduler prefills a prompt chunk (``chunk`` tokens, the whole prompt when it fits the
    budget) in one step; it does not spread p tokens over every step. With m = p / chunk chunks
    per iteration on average, as evenly spread as the arrivals allow, a share 1 - frac of the
    iterations carries ⌊m⌋ chunks and frac = m - ⌊m⌋ carries ⌊m⌋ + 1. Step time is convex in
    its prefill tokens (a memory-bound decode step hides a few of them, a compute-bound step
    does not), so by Jensen's inequality the mean of the two exceeds the time of one iteration
    carrying p tokens: the difference is largest at mid concurrency, where a fraction of the
    steps carries a whole prompt."""
    m = p / chunk
    lo = np.floor(m)
    zero = np.zeros_like(B)
    fewer = iteration_shape(B, lo * chunk, lo, zero, d_ctx, pp)
    more = iteration_shape(B, (lo + 1.0) * chunk, lo + 1.0, zero, d_ctx, pp)
    return fewer, more, np.asarray(m - lo, dtype=np.float64)


def unmixed_shapes(B: F, p: F, chunk: F, d_ctx: F, pp: int) -> tuple[StepShape, StepShape, F]:
    """``(decode, prefill, m)`` for an engine that does not mix (SGLang,
    :func:`~hierro.perf.mixes_prefill`): a decode step of the B running sequences, a step that
    prefills one ``chunk`` and decodes nothing, and m = p / chunk prefill steps per decode
    iteration, so a decode iteration lasts on average t(decode) + m·t(prefill): the decodes
    wait out every prefill step."""
    zero = np.zeros_like(B)
    decode = iteration_shape(B, zero, zero, zero, d_ctx, pp)
    prefill = iteration_shape(zero, chunk, np.ones_like(B), zero, zero, pp)
    return decode, prefill, np.asarray(p / chunk, dtype=np.float64)


def batch_caps(isl: F, osl: F, n: F, cap: F, C: float | F,
               engine: float | F = DEFAULT_MAX_SEQS) -> tuple[F, F, F]:
    """``(b_max, gen, budget_cap)``: the largest running batch (bounded by the requests, the KV
    memory, the engine's sequence limit ``engine`` and the token budget, at least 1), the tokens
    decoded after the first, and the batch the token budget C alone allows (C·gen / (isl + gen)).
    :func:`estimate_arrays` passes the plan's :func:`default_max_seqs` (or the user's cap) as
    ``engine``; the one-scheduler default is kept for callers that pass none."""
    gen = np.maximum(osl - 1.0, 1.0)
    budget_cap = C * gen / (isl + gen)
    b_max = np.minimum.reduce([n, cap, np.broadcast_to(engine, n.shape), np.maximum(budget_cap, 1.0)])
    return np.maximum(b_max, 1.0), gen, budget_cap


def first_wave(isl: F, n: F, cap: F, C: float | F, engine: float | F = DEFAULT_MAX_SEQS) -> tuple[F, F]:
    """``(tokens per step, steps)`` of a benchmark's first wave: the min(n, cap, engine limit)
    prompts started at once are prefilled C tokens per step."""
    admitted = np.minimum(n, np.minimum(cap, engine))
    return np.minimum(C, admitted * isl), np.ceil(admitted * isl / C)


def prompt_chunks(isl: F, B: F, C: float | F, mixed: bool | NDArray[np.bool_] = True) -> F:
    """Chunks a new prompt is cut into when B decodes share the budget C (at least C/8 left);
    where the engine does not mix (``mixed`` False, per row or for all) the prompt has the whole
    budget."""
    share = B if mixed is True else np.where(mixed, B, 0.0)
    return np.asarray(np.ceil(isl / np.maximum(C - share, C / 8.0)), dtype=np.float64)


def prompt_step(isl: F, B: F, p: F, chunk: F, before: F, d_ctx: F, pp: int, mixed: bool) -> StepShape:
    """The step that carries a new prompt's chunk (``before`` tokens of it already cached) with
    the steady prefill load p of the other arrivals: beside the B running decodes of context
    ``d_ctx``, or, for an engine that does not mix, with no decode."""
    zero = np.zeros_like(B)
    return iteration_shape(B if mixed else zero, np.maximum(chunk, p), np.maximum(p / isl, 1.0), before,
                           d_ctx if mixed else zero, pp)


def estimate_arrays(
    sm: StepModel,
    isl: ArrayLike,
    osl: ArrayLike,
    concurrency: ArrayLike,
    *,
    max_seqs: ArrayLike,
    max_batched_tokens: ArrayLike = DEFAULT_MAX_BATCHED_TOKENS,
    max_num_seqs: ArrayLike | None = None,
    waves: float | None = None,
) -> EstimateArrays:
    """Closed-loop steady state for arrays of (isl, osl, concurrency, memory cap, token budget,
    engine sequence cap).

    ``max_batched_tokens`` (the token budget C of a step) broadcasts with the other inputs like
    them, so one call prices several budgets of the same step-cost model; a scalar gives the
    same numbers as before, and each row's result depends only on that row's inputs.
    ``max_num_seqs`` (the engine's cap on running sequences, per row like the others) defaults
    to :func:`default_max_seqs` of the step-cost model's plan.

    ``waves``: model a benchmark run rather than the steady state. Serving benchmarks
    (vLLM/SGLang ``bench_serving`` with ``--max-concurrency N --num-prompts waves·N``, as
    InferenceMAX runs them with waves = 10) start all N requests at once, so the first N prompts
    queue for the prefill budget: the i-th finishes after ceil(i·isl/C) budget-sized prefill
    steps. The reported mean TTFT averages that first wave (weight 1/waves) with the steady
    state (weight 1 - 1/waves).
    """
    engine_cap = default_max_seqs(sm.plan) if max_num_seqs is None else max_num_seqs
    isl_a, osl_a, n_a, cap_a, C, eng = np.broadcast_arrays(
        np.asarray(isl, dtype=np.float64),
        np.asarray(osl, dtype=np.float64),
        np.asarray(concurrency, dtype=np.float64),
        np.asarray(max_seqs, dtype=np.float64),
        np.asarray(max_batched_tokens, dtype=np.float64),
        np.asarray(engine_cap, dtype=np.float64),
    )
    isl_a, osl_a, n_a, cap_a, C, eng = (np.atleast_1d(x) for x in (isl_a, osl_a, n_a, cap_a, C, eng))
    if not np.all(eng >= 1):
        raise HierroError(f"the engine's sequence cap must be >= 1, got {float(np.min(eng)):g}")
    b_max, gen, budget_cap = batch_caps(isl_a, osl_a, n_a, cap_a, C, eng)
    Li, G, Cc = isl_a[:, None], gen[:, None], C[:, None]
    ctx = Li + G / 2.0
    # the front end's time per request grows with the requests in flight (FrontEnd) and, in
    # engine steps, with the step time
    fe = sm.calib.front_end(sm.framework)
    overhead = fe.delay(n_a, isl_a)
    fe_steps = fe.steps(isl_a, C)
    mixed = mixes_prefill(sm.framework)

    def balance(B: F) -> tuple[F, F, F, F]:
        """f(B) = waiting time by Little's law - time to first token in service; and t, X, TTFT."""
        p = B * Li / G  # prefill tokens per iteration in steady state
        full_ctx = np.broadcast_to(ctx, B.shape)
        chunks = prompt_chunks(Li, B, Cc, mixed)
        chunk = np.broadcast_to(Li / chunks, B.shape)
        if mixed:
            fewer, more, frac = steady_shapes(B, p, chunk, full_ctx, sm.plan.pp)
            t = ((1.0 - frac) * np.asarray(sm.time(fewer), dtype=np.float64)
                 + frac * np.asarray(sm.time(more), dtype=np.float64)) * sm.plan.pp
        else:
            dec, pre, m = unmixed_shapes(B, p, chunk, full_ctx, sm.plan.pp)
            t = (np.asarray(sm.time(dec), dtype=np.float64)
                 + m * np.asarray(sm.time(pre), dtype=np.float64)) * sm.plan.pp
        X = B / (G * t)
        # in service: the rest of the running step, then the prompt's own chunks (each shares
        # its step with the running decodes, or, unmixed, has the step to itself), then the
        # per-request overhead
        before = np.broadcast_to(Li / 2.0 - Li / chunks / 2.0, B.shape) * (chunks > 1)
        # the prompt's step also carries the steady prefill load of the other arrivals
        t_chunk = np.asarray(sm.time(prompt_step(Li, B, p, chunk, before, full_ctx, sm.plan.pp, mixed)),
                             dtype=np.float64) * sm.plan.pp
        service = 0.5 * t + chunks * t_chunk + overhead[:, None] + fe_steps[:, None] * t
        waiting = (n_a[:, None] - B) / X  # Little's law on the requests not decoding
        return waiting - service, t, X, service

    # bracket the root on a log grid of B in [b_max/1000, b_max] (f falls as B grows) ...
    frac = np.logspace(-3, 0, _GRID)
    Bg = np.maximum(b_max[:, None] * frac[None, :], 1e-3)
    f = balance(Bg)[0]
    ok = f >= 0
    at_cap = ok[:, -1]
    rows = np.arange(len(n_a))
    j = np.where(ok.any(axis=1), _last_true(ok), 0)
    k = np.minimum(j + 1, _GRID - 1)
    lo, hi = Bg[rows, j], Bg[rows, k]
    f_lo, f_hi = f[rows, j], f[rows, k]
    # ... then refine by regula falsi inside the bracket
    for _ in range(_REFINE):
        cross = (f_lo > 0) & (f_hi < 0)
        w = np.where(cross, f_lo / np.where(cross, f_lo - f_hi, 1.0), 0.0)
        mid = lo + w * (hi - lo)
        f_mid = balance(mid[:, None])[0][:, 0]
        right = cross & (f_mid >= 0)
        left = cross & (f_mid < 0)
        lo, f_lo = np.where(right, mid, lo), np.where(right, f_mid, f_lo)
        hi, f_hi = np.where(left, mid, hi), np.where(left, f_mid, f_hi)
    cross = (f_lo > 0) & (f_hi < 0)
    w = np.where(cross & ~at_cap, f_lo / np.where(cross, f_lo - f_hi, 1.0), 0.0)
    b_sel = np.where(at_cap, b_max, lo + w * (hi - lo))
    _, t_b, x_b, service = balance(b_sel[:, None])
    t_sel, x_sel = t_b[:, 0], x_b[:, 0]
    ttft = np.maximum(service[:, 0], (n_a - b_sel) / x_sel)
    if waves is not None and waves >= 1:
        per_step, steps = first_wave(isl_a, n_a, cap_a, C, eng)
        t_full = _iteration_time(
            sm, np.zeros_like(n_a), per_step, per_step / isl_a, np.zeros_like(n_a), np.zeros_like(n_a)
        )
        first = t_full * (steps + 1.0) / 2.0 + overhead + fe_steps * t_sel
        ttft = ttft + np.maximum(first - ttft, 0.0) / waves
    e2e = ttft + gen * t_sel
    req_s = n_a / e2e
    limits = np.stack([n_a, cap_a, eng, budget_cap])
    names = np.array(["concurrency", "kv-memory", "max-seqs", "token-budget"])
    limited = np.where(at_cap, names[np.argmin(limits, axis=0)], "concurrency")
    return EstimateArrays(
        batch=b_sel,
        ttft_s=ttft,
        tpot_s=t_sel,
        e2e_s=e2e,
        req_s=req_s,
        out_tok_s=req_s * osl_a,
        limited_by=limited,
    )


def _last_true(ok: NDArray[np.bool_]) -> NDArray[np.intp]:
    """Index of the last True in each row."""
    return np.asarray(ok.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1), dtype=np.intp)


Setting = Literal["closed-loop", "offline"]


@dataclass(frozen=True)
class Estimate:
    """Latency, throughput and memory of one model instance; SI units."""

    model_id: str
    gpu_id: str
    framework: str
    plan_label: str
    devices: int
    pp: int
    setting: Setting
    isl: int
    osl: int
    concurrency: int
    batch: float
    """Sequences decoding at once in steady state."""
    limited_by: str
    ttft_s: float
    tpot_s: float
    e2e_s: float
    req_s: float
    out_tok_s: float
    memory: MemoryBreakdown
    prefill_step: StepCost = field(repr=False)
    decode_step: StepCost = field(repr=False)
    calibration: str = ""
    bands: dict[str, tuple[float, float]] = field(default_factory=dict)
    """(lo, hi) of ``ttft_s``, ``tpot_s``, ``e2e_s`` and ``out_tok_s_per_gpu``: the value times
    the 10th and 90th percentiles of measured / predicted in cross-validation (empty when the
    calibration records none)."""

    @property
    def out_tok_s_per_gpu(self) -> float:
        return self.out_tok_s / self.devices

    @property
    def out_tok_s_per_user(self) -> float:
        return 1.0 / self.tpot_s

    @property
    def max_concurrency(self) -> int:
        return self.memory.max_seqs


def estimate(
    sm: StepModel,
    *,
    isl: int,
    osl: int,
    concurrency: int | None = None,
    offline: bool = False,
    mem_fraction: float = 0.9,
    max_batched_tokens: int = DEFAULT_MAX_BATCHED_TOKENS,
    max_num_seqs: int | None = None,
    waves: float | None = None,
) -> Estimate:
    """Estimate one instance at fixed lengths: a closed loop of ``concurrency`` requests, or
    offline maximum throughput. ``waves`` models a benchmark run of waves x concurrency
    requests started at once (see :func:`estimate_arrays`); None is the steady state.
    ``max_num_seqs`` caps the running sequences (default: :func:`default_max_seqs` of the plan)."""
    if isl < 1 or osl < 1:
        raise HierroError(f"isl and osl must be >= 1 token, got isl={isl}, osl={osl}")
    if max_num_seqs is not None and max_num_seqs < 1:
        raise HierroError(f"max_num_seqs must be >= 1, got {max_num_seqs}")
    if not offline and (concurrency is None or concurrency < 1):
        raise HierroError("concurrency must be >= 1 (or use --offline for maximum throughput)")
    mem = memory_breakdown(
        sm.model, sm.accel, sm.plan, context=isl + osl, mem_fraction=mem_fraction,
        max_batched_tokens=max_batched_tokens, of_free=kv_of_free_memory(sm.framework),
    )
    check_fits(mem, what=f"{sm.model.id} {sm.plan.weight_dtype} on {sm.plan.devices}x {sm.accel.id} ({sm.plan.label()})")
    n = mem.max_seqs * 4 if offline else int(concurrency or 1)
    arr = estimate_arrays(
        sm, isl, osl, n, max_seqs=mem.max_seqs, max_batched_tokens=max_batched_tokens,
        max_num_seqs=max_num_seqs, waves=None if offline else waves,
    )
    b = float(arr.batch[0])
    prefill = sm.cost(StepShape(prefill_tokens=float(isl), prefill_seqs=1.0, sampled=1.0))
    decode = sm.cost(StepShape(decode_seqs=b / sm.plan.pp, decode_ctx=isl + osl / 2.0))
    return Estimate(
        model_id=sm.model.id,
        gpu_id=sm.accel.id,
        framework=sm.framework,
        plan_label=sm.plan.label(),
        devices=sm.plan.devices,
        pp=sm.plan.pp,
        setting="offline" if offline else "closed-loop",
        isl=isl,
        osl=osl,
        concurrency=n,
        batch=b,
        limited_by=str(arr.limited_by[0]),
        ttft_s=float(arr.ttft_s[0]),
        tpot_s=float(arr.tpot_s[0]),
        e2e_s=float(arr.e2e_s[0]),
        req_s=float(arr.req_s[0]),
        out_tok_s=float(arr.out_tok_s[0]),
        memory=mem,
        prefill_step=prefill,
        decode_step=decode,
        calibration=sm.calib.source,
        bands=_bands(sm, float(arr.ttft_s[0]), float(arr.tpot_s[0]), float(arr.e2e_s[0]),
                     float(arr.out_tok_s[0]) / sm.plan.devices),
    )


def _bands(sm: StepModel, ttft: float, tpot: float, e2e: float, per_gpu: float) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for name, metric, value in (("ttft_s", "ttft_mean_ms", ttft), ("tpot_s", "tpot_mean_ms", tpot),
                                ("e2e_s", "e2e_p50_ms", e2e), ("out_tok_s_per_gpu", "out_tok_s_per_gpu", per_gpu)):
        lo, hi = sm.calib.band("analytic", metric)
        if (lo, hi) != (1.0, 1.0):
            out[name] = (value * lo, value * hi)
    return out
