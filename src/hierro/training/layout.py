"""The search for the fastest layout that fits: over tp, cp, pp (with interleaving), dp, ep,
micro-batch size, recomputation and ZeRO stage, for a cluster of G devices.

The space follows practice (Megatron-LM; Llama 3, arXiv:2407.21783 §3.3.2; DeepSeek-V3,
arXiv:2412.19437 §3.2): tp a power of two within the scale-up domain that divides the heads,
cp a power of two leaving at least :data:`MIN_CP_CHUNK` tokens per rank, pp up to the layer
count, vpp dividing the layers of a stage, ep a power of two dividing the experts and dp·cp,
micro-batches of 1, 2 or 4 sequences, the embedding and loss counted in the pipeline split or
not. dp = G / (tp·cp·pp) must be a whole number and the global batch is rounded up to a
multiple of dp·b. DualPipe is considered only when pinned (``fixed={"schedule": "dualpipe"}``),
and so is the numerical recipe: bf16 Adam moments and low-precision activation caching
(``fixed={"moments": "bf16", "low_precision_acts": True}``) trade precision, not time, and the
FP8 scaling granularity (``fixed={"fp8_scaling": "block"}``) trades time for precision, so the
search takes them as given. Among layouts whose memory fits, the one with the
shortest step time per token wins.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace

from hierro.errors import DoesNotFitError, PlanError
from hierro.specs import Accelerator, ModelArch
from hierro.training.memory import check_memory, stage_layers, train_memory
from hierro.training.parallel import Layout, Recompute, Schedule, check_layout
from hierro.training.step import StepTime, TrainEfficiency, micro_batches, step_time
from hierro.units import GB

__all__ = ["MIN_CP_CHUNK", "RECIPE_FIELDS", "best_layout", "candidate_layouts", "evaluate_layout"]

MIN_CP_CHUNK = 2048
"""Fewest tokens per context-parallel rank the search considers."""
_MICRO_BATCHES = (1, 2, 4)
RECIPE_FIELDS = ("moments", "low_precision_acts", "fp8_scaling")
"""Layout fields the search takes as given (default or pinned) rather than searches."""
_RC_RANK = {"none": 0, "selective": 1, "full": 2}
_MEMORY_CHOICES: tuple[tuple[int, Recompute], ...] = (
    (1, "none"), (2, "none"), (1, "selective"), (2, "selective"), (1, "full"), (2, "full"),
    (3, "none"), (3, "selective"), (3, "full"),
)


def _pow2(limit: int) -> Iterator[int]:
    v = 1
    while v <= limit:
        yield v
        v *= 2


def _divisors(n: int, limit: int) -> list[int]:
    return [d for d in range(1, min(n, limit) + 1) if n % d == 0]


def candidate_layouts(
    model: ModelArch, gpus: int, seq_len: int, global_batch_seqs: int, scale_up_domain: int,
    schedule: Schedule = "1f1b",
) -> Iterator[Layout]:
    """Every layout of the search space for ``gpus`` devices (memory not yet checked)."""
    L = model.n_layers
    first = model.groups[0][0].attn
    heads = first.n_heads if first.kind != "linear" else first.lin_value_heads
    experts = max(lay.mlp.n_experts for lay, _ in model.groups)
    for tp in _pow2(min(scale_up_domain, heads)):
        if heads % tp or gpus % tp:
            continue
        for cp in _pow2(max(seq_len // MIN_CP_CHUNK, 1)):
            if seq_len % cp or gpus % (tp * cp):
                continue
            for pp in _divisors(gpus // (tp * cp), L):
                dp = gpus // (tp * cp * pp)
                per_stage = stage_layers(model, pp).first
                if schedule == "dualpipe" and pp % 2:
                    continue
                vpps = [v for v in _divisors(per_stage, per_stage) if pp > 1 and schedule == "1f1b"] or [1]
                eps = [e for e in _pow2(experts) if experts % e == 0 and (dp * cp) % e == 0] or [1]
                for ep in eps:
                    for vpp in vpps:
                        for mb in _MICRO_BATCHES:
                            if dp * mb > global_batch_seqs:
                                continue
                            m = -(-global_batch_seqs // (dp * mb))
                            if vpp > 1 and m < pp:  # interleaving needs m >= p (Narayanan 2021)
                                continue
                            if schedule == "dualpipe" and (m < pp or m % 2):
                                continue
                            for zero, rc in _MEMORY_CHOICES:
                                for ends in (False, True) if pp > 1 else (False,):
                                    yield Layout(tp=tp, pp=pp, dp=dp, cp=cp, ep=ep, vpp=vpp,
                                                 micro_batch=mb, recompute=rc, zero=zero,
                                                 split_ends=ends, schedule=schedule)


def best_layout(
    model: ModelArch,
    acc: Accelerator,
    gpus: int,
    scale_up_domain: int,
    seq_len: int,
    global_batch_seqs: int,
    dtype: str = "bf16",
    eff: TrainEfficiency | None = None,
    fixed: Mapping[str, int | str] | None = None,
) -> StepTime:
    """The fitting layout with the least time per token; :class:`HierroError` if none fits.

    ``fixed`` pins some fields of the layout (e.g. ``{"tp": 8, "pp": 16}``, the degrees a
    published run used) and searches the rest.
    """
    if gpus < 1:
        raise PlanError(f"the cluster needs at least one GPU, got {gpus}")
    pins = dict(fixed or {})
    unknown = sorted(set(pins) - set(Layout.__dataclass_fields__))
    if unknown:
        raise PlanError(f"unknown layout field(s) {', '.join(unknown)}")
    best: StepTime | None = None
    least_mem = float("inf")
    seen = 0
    # at fixed degrees a step never gets faster with more recomputation, and ZeRO-1 and -2 take
    # the same time: once a choice fits, the slower ones of its class need no evaluation
    fastest_fit: dict[tuple[Layout, bool], int] = {}
    sched = pins.get("schedule", "1f1b")
    if sched not in ("1f1b", "dualpipe"):
        raise PlanError(f"schedule must be 1f1b or dualpipe, got {sched!r}")
    recipe = {k: pins.pop(k) for k in RECIPE_FIELDS if k in pins}
    moments = str(recipe.get("moments", "fp32"))
    low_acts = bool(recipe.get("low_precision_acts", False))
    scaling = str(recipe.get("fp8_scaling", "tensor"))
    tmpl = Layout(moments=moments, low_precision_acts=low_acts,  # type: ignore[arg-type]
                  fp8_scaling=scaling)  # type: ignore[arg-type]
    _check_recipe(tmpl, dtype)
    for cand in candidate_layouts(model, gpus, seq_len, global_batch_seqs, scale_up_domain,
                                  sched):  # type: ignore[arg-type]
        if any(getattr(cand, k) != v for k, v in pins.items()):
            continue
        lay = replace(cand, moments=tmpl.moments, low_precision_acts=tmpl.low_precision_acts,
                      fp8_scaling=tmpl.fp8_scaling) if recipe else cand
        seen += 1
        key = (replace(lay, zero=1, recompute="none"), lay.zero >= 3)
        if fastest_fit.get(key, 3) <= _RC_RANK[lay.recompute]:
            continue
        mem = train_memory(model, lay, seq_len, micro_batches(global_batch_seqs, lay), acc.hbm_bytes,
                           dtype)
        if not mem.fits:
            least_mem = min(least_mem, mem.total_bytes)
            continue
        fastest_fit[key] = _RC_RANK[lay.recompute]
        st = step_time(model, lay, acc, scale_up_domain, seq_len, global_batch_seqs, dtype, eff)
        if best is None or st.step_s / st.tokens_per_step < best.step_s / best.tokens_per_step:
            best = st
    if best is not None:
        return best
    if seen == 0:
        pinned = f" with {', '.join(f'{k}={v}' for k, v in pins.items())}" if pins else ""
        raise PlanError(
            f"no layout of tp·cp·pp·dp{pinned} divides {gpus} GPUs for {model.id} with a batch of "
            f"{global_batch_seqs} sequences; try a multiple of {scale_up_domain} GPUs"
        )
    raise DoesNotFitError(
        f"{model.id} does not fit on {gpus}x {acc.id} even fully sharded: the smallest layout needs "
        f"{least_mem / GB:.1f} GB per GPU of {acc.hbm_bytes / GB:.1f} GB"
    )


def evaluate_layout(
    model: ModelArch,
    lay: Layout,
    acc: Accelerator,
    gpus: int,
    scale_up_domain: int,
    seq_len: int,
    global_batch_seqs: int,
    dtype: str = "bf16",
    eff: TrainEfficiency | None = None,
) -> StepTime:
    """A given layout, checked: one-line :class:`HierroError` if it is invalid or does not fit."""
    check_layout(lay, model, seq_len, gpus)
    _check_recipe(lay, dtype)
    m = micro_batches(global_batch_seqs, lay)
    if lay.schedule == "dualpipe" and (m < lay.pp or m % 2):
        raise PlanError(f"DualPipe needs an even number of micro-batches, at least pp={lay.pp}, got {m}")
    if lay.vpp > 1 and m < lay.pp:
        raise PlanError(f"interleaving (vpp={lay.vpp}) needs at least pp={lay.pp} micro-batches, got {m}")
    st = step_time(model, lay, acc, scale_up_domain, seq_len, global_batch_seqs, dtype, eff)
    check_memory(st.memory, f"{model.id} with {lay.label()} on {acc.id}")
    return st


def _check_recipe(lay: Layout, dtype: str) -> None:
    """One-line :class:`PlanError` for a numerical recipe the layout cannot use."""
    if lay.moments not in ("fp32", "bf16"):
        raise PlanError(f"Adam moments must be fp32 or bf16, got {lay.moments!r}")
    if lay.fp8_scaling not in ("tensor", "block"):
        raise PlanError(f"FP8 scaling must be tensor or block, got {lay.fp8_scaling!r}")
    if lay.fp8_scaling == "block" and dtype != "fp8":
        raise PlanError(f"FP8 block scaling needs FP8 linear layers (dtype fp8), got {dtype}")
    if lay.low_precision_acts and dtype != "fp8":
        raise PlanError("low-precision activation caching needs FP8 linear layers (dtype fp8), "
                        f"got {dtype}")
