"""A training layout: how a model is split over a cluster, and the checks that it can be.

Conventions follow Megatron-LM (Shoeybi et al. 2019; Narayanan et al. 2021, arXiv:2104.04473;
Korthikanti et al. 2022, arXiv:2205.05198) and Megatron-Core's MoE:

- ``tp`` tensor parallel with sequence parallelism (GEMMs and heads split, activations split),
  innermost, so it uses the scale-up domain first;
- ``cp`` context parallel: each sequence is split into ``cp`` chunks (load-balanced, so each rank
  does 1/cp of the attention), keys and values are all-gathered (Llama 3, arXiv:2407.21783 §3.3.2);
- ``pp`` pipeline stages, each with ``vpp`` interleaved virtual stages (Narayanan 2021 §2.2.2);
- ``dp`` data-parallel replicas; dense weights are replicated over dp·cp ranks;
- ``ep`` expert parallel: the experts of a MoE layer are split over ``ep`` of the dp·cp ranks,
  so expert weights are replicated over dp·cp/ep ranks;
- ``zero``: ZeRO stage (Rajbhandari et al. 2020, arXiv:1910.02054) sharding optimizer states (1),
  gradients (2) and weights (3, = FSDP) over the data-parallel ranks that replicate them;
- ``recompute``: ``none`` keeps every activation (attention is fused, so no score matrix is
  kept either way); ``selective`` recomputes the norms, the gated activation and MLA's
  up-projections (DeepSeek-V3, arXiv:2412.19437 §3.2.3; Megatron-Core ``--recompute-modules``);
  ``full`` keeps only each layer's input and recomputes the layer (see :mod:`.memory`);
- ``split_ends``: the embedding and the loss count as one layer each when the layers are split
  over the pipeline, so the first and last stages carry one layer fewer (Llama 3 §3.3.2;
  Megatron-Core ``account_for_embedding_in_pipeline_split`` and ``..._loss_...``);
- ``schedule``: ``1f1b`` (interleaved when vpp > 1) or DeepSeek-V3's bidirectional ``dualpipe``
  (§3.2.1: each rank holds stages i and p-1-i; needs an even pp and no interleaving);
- ``moments``: precision of Adam's two moments, ``fp32`` or ``bf16`` (DeepSeek-V3 §3.3.3,
  "Low-Precision Optimizer States"; master weights and gradients stay fp32 either way);
- ``low_precision_acts``: under FP8 GEMMs, also cache the gated activation's inputs in FP8 and
  the attention output in a 12-bit E5M6 (DeepSeek-V3 §3.3.3, "Low-Precision Activation";
  Megatron-Core ``--activation-func-fp8-input-store``); see :mod:`.memory`;
- ``fp8_scaling``: how FP8 GEMM operands are scaled, ``tensor`` (one scale per tensor: Transformer
  Engine's delayed or current scaling) or ``block`` (DeepSeek-V3's fine-grained scaling, §3.3.2:
  1x128 tiles of activations, 128x128 blocks of weights, partial sums promoted to FP32 on the CUDA
  cores every 128 elements; Transformer Engine's ``blockwise`` recipe); see :mod:`.step`.

Devices = tp · cp · pp · dp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hierro.errors import PlanError
from hierro.specs import ModelArch

__all__ = ["Fp8Scaling", "Layout", "Moments", "Recompute", "Schedule", "check_layout"]

Recompute = Literal["none", "selective", "full"]
Schedule = Literal["1f1b", "dualpipe"]
Moments = Literal["fp32", "bf16"]
Fp8Scaling = Literal["tensor", "block"]


@dataclass(frozen=True, slots=True)
class Layout:
    """Degrees of parallelism and the memory-saving choices of one training job."""

    tp: int = 1
    pp: int = 1
    dp: int = 1
    cp: int = 1
    ep: int = 1
    vpp: int = 1
    micro_batch: int = 1
    recompute: Recompute = "selective"
    zero: int = 1
    split_ends: bool = False
    schedule: Schedule = "1f1b"
    moments: Moments = "fp32"
    low_precision_acts: bool = False
    fp8_scaling: Fp8Scaling = "tensor"

    @property
    def devices(self) -> int:
        return self.tp * self.cp * self.pp * self.dp

    def label(self) -> str:
        parts = [f"TP{self.tp}", f"CP{self.cp}", f"PP{self.pp}"]
        if self.vpp > 1:
            parts[-1] += f"x{self.vpp}"
        if self.schedule == "dualpipe":
            parts[-1] += " DualPipe"
        if self.split_ends:
            parts[-1] += " (ends split)"
        parts += [f"DP{self.dp}", f"EP{self.ep}", f"mb{self.micro_batch}", f"ZeRO-{self.zero}",
                  f"recompute={self.recompute}"]
        if self.moments != "fp32":
            parts.append(f"Adam moments {self.moments}")
        if self.low_precision_acts:
            parts.append("low-precision activations")
        if self.fp8_scaling != "tensor":
            parts.append(f"FP8 {self.fp8_scaling} scaling")
        return " ".join(parts)


def check_layout(layout: Layout, model: ModelArch, seq_len: int, gpus: int | None = None) -> None:
    """Raise :class:`PlanError` (one line) if ``layout`` cannot run ``model`` on ``gpus`` devices."""
    lay = layout
    for name in ("tp", "pp", "dp", "cp", "ep", "vpp", "micro_batch"):
        v = getattr(lay, name)
        if v < 1:
            raise PlanError(f"{name} must be >= 1, got {v}")
    if lay.zero not in (0, 1, 2, 3):
        raise PlanError(f"ZeRO stage must be 0, 1, 2 or 3, got {lay.zero}")
    if gpus is not None and lay.devices != gpus:
        raise PlanError(
            f"layout {lay.label()} uses tp·cp·pp·dp = {lay.devices} GPUs, not the {gpus} of the cluster"
        )
    first = model.groups[0][0]
    heads = first.attn.n_heads if first.attn.kind != "linear" else first.attn.lin_value_heads
    if heads % lay.tp:
        raise PlanError(f"tp={lay.tp} does not divide the {heads} attention heads of {model.id}")
    if lay.pp > model.n_layers:
        raise PlanError(f"pp={lay.pp} exceeds the {model.n_layers} layers of {model.id}")
    per_stage = -(-model.n_layers // lay.pp)
    if lay.vpp > per_stage:
        raise PlanError(f"vpp={lay.vpp} exceeds the {per_stage} layers per pipeline stage")
    if lay.vpp > 1 and lay.pp == 1:
        raise PlanError("interleaved stages (vpp > 1) need pp > 1")
    if lay.moments not in ("fp32", "bf16"):
        raise PlanError(f"Adam moments must be fp32 or bf16, got {lay.moments!r}")
    if lay.fp8_scaling not in ("tensor", "block"):
        raise PlanError(f"FP8 scaling must be tensor or block, got {lay.fp8_scaling!r}")
    if lay.schedule not in ("1f1b", "dualpipe"):
        raise PlanError(f"schedule must be 1f1b or dualpipe, got {lay.schedule!r}")
    if lay.schedule == "dualpipe" and (lay.pp < 2 or lay.pp % 2 or lay.vpp > 1):
        raise PlanError(f"DualPipe needs an even pp >= 2 and no interleaving, got pp={lay.pp} vpp={lay.vpp}")
    if seq_len % lay.cp:
        raise PlanError(f"cp={lay.cp} does not divide the sequence length {seq_len}")
    if lay.ep > 1:
        experts = max((lay_.mlp.n_experts for lay_, _ in model.groups), default=0)
        if experts == 0:
            raise PlanError(f"ep={lay.ep} but {model.id} has no experts")
        if experts % lay.ep:
            raise PlanError(f"ep={lay.ep} does not divide the {experts} experts of {model.id}")
        if (lay.dp * lay.cp) % lay.ep:
            raise PlanError(f"ep={lay.ep} must divide dp·cp = {lay.dp * lay.cp}")
