"""Published training runs that pin the step model, and the fit of its one efficiency.

One compute efficiency is shared by all hardware, precisions and model families. It is fitted
on ``llama3-405b-8k`` alone, and the other anchors check it. Each anchor states what was
trained, on what, with which published parallel degrees (the rest of the layout is searched)
and which communication overlaps its software stack describes; nothing is tuned per anchor.

- Llama 3 405B, 8,192 and 16,384 H100s, seq 8,192, 16M-token batches: 43% and 41% BF16 MFU
  (Grattafiori et al. 2024, arXiv:2407.21783, table 4; 38-43% over its configurations). The
  layout is searched: at the published TP8 CP1 PP16 the memory model (bf16 activations of 16
  micro-batches in flight) needs full recomputation, and the efficiency that then reproduces
  43% (0.81) is beyond what Hopper GEMMs reach, so the search's layout stands in for it.
- MegaScale 175B on 12,288 GPUs: 55.2% MFU (Jiang et al. 2024, arXiv:2402.15627, abstract and
  table 2: batch 6,144 sequences of 2,048). Ampere GPUs; modelled as A100 SXM 80GB. TP within the
  node with sequence parallelism, no context parallelism; the TP all-gathers and
  reduce-scatters are fused into the adjacent linear layers and the pipeline sends decoupled
  from compute (§3.2), so both overlap (``tp_overlap = pp_overlap = 1``). The model is
  GPT-3-shaped (96 layers, hidden 12,288, 128 heads, vocab 64k); its MLP is written here as a
  gated one of the same parameter count, and its sliding-window attention and parallel blocks
  are not modelled.
- DeepSeek-V3 on 2,048 H800s: 2,664K GPU-hours of pre-training on 14.8T tokens (2,788K with
  context extension, 119K, and post-training, 5K; arXiv:2412.19437 table 1), seq 4,096, batch
  15,360 sequences. FP8 linear layers, attention and head in BF16 (§3.3); 16-way PP, 64-way EP
  over 8 nodes, ZeRO-1 DP, no TP (§3.2); DualPipe hides the all-to-all behind compute
  (``ep_overlap = 1``) with 20 of the 132 SMs running the communication kernels (§3.2.2).
  Known gaps: the model's memory has no FP8 activation caching, so at this layout it recomputes
  whole layers where DeepSeek recomputed only norms and MLA up-projections; DualPipe's smaller
  bubble and the multi-token-prediction module's extra layer are not modelled.
- Llama 3.1 405B in FP8 (current scaling) on 1,024 H100s with Megatron-Bridge: 292 tokens/s per
  GPU at TP8 PP8 CP2 VP8, micro-batch 1, batch 512 sequences of 8,192 (NeMo 25.11 container,
  Megatron-Bridge docs/performance-summary.md, DGX-H100 table). Checks the FP8 treatment of a
  dense model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from hierro.specs import Attention, Layer, Mlp, ModelArch
from hierro.training.plan import TrainingPlan, plan_training
from hierro.training.step import TrainEfficiency

__all__ = [
    "ANCHORS",
    "DEEPSEEK_V3_TOTAL_GPU_HOURS",
    "Anchor",
    "fit_compute_efficiency",
    "megascale_175b",
    "plan_anchor",
    "predict_anchor",
]

Metric = Literal["mfu", "gpu_hours", "tokens_per_s_per_gpu"]


def megascale_175b() -> ModelArch:
    """GPT-3 175B shape as trained by MegaScale (gated MLP of equal size: 3·h·I = 8·h²)."""
    h = 12288
    layer = Layer(Attention("gqa", 128, 128, 96, 96), Mlp("dense", intermediate=8 * h // 3))
    return ModelArch(id="megascale-175b", name="MegaScale 175B (GPT-3 shape)", hidden=h,
                     vocab=64000, groups=((layer, 96),), max_context=2048)


@dataclass(frozen=True, slots=True)
class Anchor:
    """One published run: what was trained, on what, how, and the figure reported."""

    name: str
    model: str
    gpu: str
    gpus: int
    tokens: float
    seq_len: int
    batch_tokens: float
    metric: Metric
    published: float
    rel_tol: float
    """Stated tolerance of the check, relative to ``published``."""
    role: Literal["fit", "check"]
    source: str
    dtype: str = "bf16"
    fixed: tuple[tuple[str, int], ...] = ()
    """Published parallel degrees; the rest of the layout is searched."""
    stack: tuple[tuple[str, float], ...] = field(default=())
    """Overlaps the run's software stack describes (fields of :class:`TrainEfficiency`)."""


ANCHORS: tuple[Anchor, ...] = (
    Anchor("llama3-405b-8k", "llama-3.1-405b", "h100-sxm", 8192, 15.6e12, 8192, 2048 * 8192,
           "mfu", 0.43, 0.01, "fit", "arXiv:2407.21783 table 4"),
    Anchor("llama3-405b-16k", "llama-3.1-405b", "h100-sxm", 16384, 15.6e12, 8192, 2048 * 8192,
           "mfu", 0.41, 0.05, "check", "arXiv:2407.21783 table 4 (38-43% over its configurations)"),
    Anchor("megascale-175b-12k", "megascale-175b", "a100-sxm-80g", 12288, 300e9, 2048, 6144 * 2048,
           "mfu", 0.552, 0.10, "check", "arXiv:2402.15627 abstract, table 2",
           fixed=(("tp", 8), ("cp", 1)), stack=(("tp_overlap", 1.0), ("pp_overlap", 1.0))),
    Anchor("deepseek-v3-pretrain", "deepseek-v3", "h800", 2048, 14.8e12, 4096, 15360 * 4096,
           "gpu_hours", 2.664e6, 0.15, "check",
           "arXiv:2412.19437 table 1 (2,664K pre-training of 2,788K in all), §3.2-3.3",
           dtype="fp8", fixed=(("tp", 1), ("cp", 1), ("pp", 16), ("ep", 64), ("zero", 1)),
           stack=(("ep_overlap", 1.0), ("comm_sm_share", 20 / 132))),
    Anchor("nemo-llama31-405b-fp8-1k", "llama-3.1-405b", "h100-sxm", 1024, 1e12, 8192, 512 * 8192,
           "tokens_per_s_per_gpu", 292.0, 0.15, "check",
           "NVIDIA-NeMo/Megatron-Bridge docs/performance-summary.md, 25.11 container, DGX-H100",
           dtype="fp8", fixed=(("tp", 8), ("cp", 2), ("pp", 8), ("vpp", 8), ("micro_batch", 1))),
)

DEEPSEEK_V3_TOTAL_GPU_HOURS = 2.788e6
"""All of DeepSeek-V3's training (pre-training, context extension, post-training), table 1."""


def plan_anchor(a: Anchor, compute: float | None = None) -> TrainingPlan:
    """The planner's run for anchor ``a`` (its published degrees pinned, its stack's overlaps)."""
    eff = replace(TrainEfficiency(), **dict(a.stack))
    if compute is not None:
        eff = replace(eff, compute=compute)
    model: str | ModelArch = megascale_175b() if a.model == "megascale-175b" else a.model
    return plan_training(model, a.tokens, a.gpu, a.gpus, a.seq_len, usd_per_gpu_hour=0.0,
                         global_batch_tokens=a.batch_tokens, dtype=a.dtype, efficiency=eff,
                         fixed=dict(a.fixed))


def predict_anchor(a: Anchor, compute: float | None = None) -> float:
    """The model's figure for anchor ``a`` (MFU, GPU-hours including failures, or tokens/s/GPU)."""
    p = plan_anchor(a, compute)
    if a.metric == "mfu":
        return p.mfu
    if a.metric == "gpu_hours":
        return p.gpu_hours
    return p.step.tokens_per_s / p.gpus


def fit_compute_efficiency(anchor: Anchor | None = None, tol: float = 1e-4) -> float:
    """The compute efficiency at which the fit anchor's predicted MFU equals the published one.

    Bisection: predicted MFU rises with the efficiency.
    """
    a = anchor or next(x for x in ANCHORS if x.role == "fit")
    lo, hi = 0.05, 1.0
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if predict_anchor(a, mid) < a.published:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
