"""Published training runs that pin the step model, and the fit of its one efficiency.

One compute efficiency is shared by all hardware (there is one bf16 anchor per hardware family,
too few to fit families apart and still check them). It is fitted on ``llama3-405b-8k`` alone,
and the other anchors check it:

- Llama 3 405B, 8,192 and 16,384 H100s, seq 8,192, 16M-token batches: 43% and 41% BF16 MFU
  (Grattafiori et al. 2024, arXiv:2407.21783, table 4; 38-43% over its configurations).
- MegaScale 175B on 12,288 GPUs: 55.2% MFU (Jiang et al. 2024, arXiv:2402.15627, abstract and
  table 2: batch 6,144 sequences of 2,048). Ampere GPUs; modelled as A100 SXM 80GB. The model is
  GPT-3-shaped (96 layers, hidden 12,288, 128 heads, vocab 64k); its MLP is written here as a
  gated one of the same parameter count, and its sliding-window attention and parallel blocks
  are not modelled.
- DeepSeek-V3 on 2,048 H800s: 2.788M GPU-hours in all for 14.8T tokens (2.664M of them
  pre-training, the rest context extension and post-training; arXiv:2412.19437 table 1), seq
  4,096, batch 15,360 sequences, FP8 GEMMs, all-to-all hidden by DualPipe (ep_overlap = 1).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from hierro.specs import Attention, Layer, Mlp, ModelArch
from hierro.training.plan import TrainingPlan, plan_training
from hierro.training.step import TrainEfficiency

__all__ = ["ANCHORS", "Anchor", "fit_compute_efficiency", "megascale_175b", "predict_anchor"]


def megascale_175b() -> ModelArch:
    """GPT-3 175B shape as trained by MegaScale (gated MLP of equal size: 3·h·I = 8·h²)."""
    h = 12288
    layer = Layer(Attention("gqa", 128, 128, 96, 96), Mlp("dense", intermediate=8 * h // 3))
    return ModelArch(id="megascale-175b", name="MegaScale 175B (GPT-3 shape)", hidden=h,
                     vocab=64000, groups=((layer, 96),), max_context=2048)


@dataclass(frozen=True, slots=True)
class Anchor:
    """One published run: what was trained, on what, and the figure reported."""

    name: str
    model: str
    gpu: str
    gpus: int
    tokens: float
    seq_len: int
    batch_tokens: float
    metric: Literal["mfu", "gpu_hours"]
    published: float
    role: Literal["fit", "check"]
    source: str
    dtype: str = "bf16"
    ep_overlap: float = 0.0


ANCHORS: tuple[Anchor, ...] = (
    Anchor("llama3-405b-8k", "llama-3.1-405b", "h100-sxm", 8192, 15.6e12, 8192, 2048 * 8192,
           "mfu", 0.43, "fit", "arXiv:2407.21783 table 4"),
    Anchor("llama3-405b-16k", "llama-3.1-405b", "h100-sxm", 16384, 15.6e12, 8192, 2048 * 8192,
           "mfu", 0.41, "check", "arXiv:2407.21783 table 4"),
    Anchor("megascale-175b-12k", "megascale-175b", "a100-sxm-80g", 12288, 300e9, 2048, 6144 * 2048,
           "mfu", 0.552, "check", "arXiv:2402.15627 abstract, table 2"),
    Anchor("deepseek-v3-fp8", "deepseek-v3", "h800", 2048, 14.8e12, 4096, 15360 * 4096,
           "gpu_hours", 2.788e6, "check", "arXiv:2412.19437 table 1 (2.664M pre-training)",
           dtype="fp8", ep_overlap=1.0),
    Anchor("deepseek-v3-bf16", "deepseek-v3", "h800", 2048, 14.8e12, 4096, 15360 * 4096,
           "gpu_hours", 2.788e6, "check",
           "arXiv:2412.19437 table 1, modelled at the bf16 peak (FP8's realised gain not modelled)",
           ep_overlap=1.0),
)


def _plan(a: Anchor, compute: float | None = None) -> TrainingPlan:
    eff = TrainEfficiency(ep_overlap=a.ep_overlap)
    if compute is not None:
        eff = replace(eff, compute=compute)
    model: str | ModelArch = megascale_175b() if a.model == "megascale-175b" else a.model
    return plan_training(model, a.tokens, a.gpu, a.gpus, a.seq_len, usd_per_gpu_hour=0.0,
                         global_batch_tokens=a.batch_tokens, dtype=a.dtype, efficiency=eff)


def predict_anchor(a: Anchor, compute: float | None = None) -> float:
    """The model's figure for anchor ``a`` (MFU, or GPU-hours including failures)."""
    p = _plan(a, compute)
    return p.mfu if a.metric == "mfu" else p.gpu_hours


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
