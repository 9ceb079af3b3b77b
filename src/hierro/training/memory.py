"""Memory per device of a training job: weights, gradients, optimizer states, activations.

Model states, mixed precision with Adam (Rajbhandari et al. 2020, ZeRO, arXiv:1910.02054 §3.1;
Megatron-LM ``theoretical_memory_usage.py``: 18 B/param, or 6 + 12/dp with the distributed
optimizer): bf16 weights (2 B/param), fp32 main gradients (4 B; Llama 3 accumulates and reduces
gradients in fp32, arXiv:2407.21783 §3.3.4), and an fp32 master copy plus two Adam moments
(12 B; 8 B with the moments in bf16, ``Layout.moments``, as DeepSeek-V3 keeps them while its
master weights and accumulated gradients stay fp32, arXiv:2412.19437 §3.3.3). ZeRO stage 1
shards the optimizer state over the R data-parallel replicas of a weight, stage 2 also the
gradients, stage 3 (FSDP) also the weights, which are gathered a layer at a time (two layers'
buffer). No EMA copy of the weights is counted: DeepSeek-V3 keeps its EMA in CPU memory, updated
asynchronously (§3.2.3), and a run that keeps one on the device must add its bytes.

Activations. Korthikanti et al. 2022 (arXiv:2205.05198, table 2) count s·b·h·(34 + 5·a·s/h)
bytes per GPT layer, divided by t under tensor and sequence parallelism, of which 5·a·s/h are
the attention scores, softmax and its dropout mask, and 2 the two dropout masks
(:func:`korthikanti_layer_bytes`). Fused attention (FlashAttention, Dao et al. 2022,
arXiv:2205.14135 §3.1) stores only the output and one log-sum-exp per row and head, recomputing
the scores in its backward, and modern pre-training uses no dropout, so the planner counts, per
token and layer, the tensors a backward pass needs, on the model's own shapes
(:func:`layer_act_bytes`): the residual-stream input of each norm, each norm's output (the input
of the next GEMMs), q, k and v, the attention output, the gated MLP's gate and up outputs and
their product; for MLA the compressed latents, their norms and the up-projected q, k, v; for a
routed expert the dispatched copy and its gate, up and product. On a GPT-3 shape this is
Korthikanti's 34 less the two masks.

A routed expert's output is not kept. The combine weights it by its router score g; that
scaling commutes with the down-projection W, so it is applied to the gated activation a before
it (g·W·a = W·(g·a)), and the score's gradient is then dL/dg = <a, W^T·dy>: the activation,
kept or recomputed for W's weight gradient anyway, dotted with W's input gradient, which the
expert's backward computes anyway (Megatron-Core ``fusions/fused_bias_swiglu.py``,
``weighted_bias_swiglu_impl``, which saves only the SwiGLU input and the scores). Applying the
score after W instead (an unpermute weighted by the scores) keeps each copy's h-wide output,
2·k·h bytes per token and layer more.

- ``selective`` recomputes the cheap parts: the norms (from their stored inputs), the gated
  activation's product (from the stored gate and up outputs) and MLA's up-projections (from the
  stored latents), as DeepSeek-V3 does (arXiv:2412.19437 §3.2.3) and Megatron-Core's
  ``--recompute-modules layernorm moe_act mla_up_proj`` do;
- ``full`` keeps only each layer's input, 2·s·b·h/t;
- FP8 linear layers cache their inputs in FP8 for the weight-gradient GEMM (DeepSeek-V3 §3.3.1,
  figure 6; Transformer Engine's FP8 recipes): 1 B per element instead of 2. The attention
  output stays 2 B (the attention backward needs it too) and the gated activation's inputs (the
  gate and up outputs, not inputs of a linear layer) 2 B;
- ``low_precision_acts`` (FP8 only) caches those two as well, per DeepSeek-V3 §3.3.3
  ("Low-Precision Activation"): the attention output, the input of the linear layer after
  attention, in a 12-bit E5M6 (1.5 B), and the SwiGLU inputs in FP8 (1 B) with the SwiGLU output
  recomputed in the backward (under ``none`` the product is then still kept as the
  down-projection's FP8 input). DeepSeek states the SwiGLU caching for its MoE layers;
  Megatron-Core's ``--activation-func-fp8-input-store`` applies it to every gated MLP, as here.

Pipeline schedule: which micro-batches a stage holds in flight. Under 1F1B rank r runs p-1-r
warm-up forwards, so it holds min(m, p-r) micro-batches of its layers; interleaved with v chunks
per rank, Megatron's schedule runs 2·(p-1-r) + (v-1)·p warm-up chunk forwards (Narayanan et al.
2021, arXiv:2104.04473 §2.2; Megatron-Core ``schedules.py``), i.e. the first rank holds
L·(1 + (p-1)/(p·v)) layers' worth of one micro-batch (Korthikanti §4.2.3). Llama 3 counts the
embedding and the loss as one layer each when splitting the pipeline, so the first and last ranks
carry one transformer layer fewer (arXiv:2407.21783 §3.3.2; Megatron-Core
``account_for_embedding_in_pipeline_split``/``account_for_loss_in_pipeline_split``), which also
leaves the first rank's first chunk, and its warm-up forwards of that chunk, without layer
activations. DualPipe (DeepSeek-V3 §3.2.1, table 2) holds two copies of the parameters, stage i
and stage p-1-i on each rank, and PP+1 micro-batches of activations; each stage's weights thus
live on 2·dp ranks, but the optimizer states are sharded over the dp·cp replicas only, as the
report does not say that its ZeRO-1 also shards across the two copies. The rank checked is the
fullest of the first, the second and the last (rank 1 can exceed rank 0 once the embedding has
its own chunk); the last also holds one micro-batch's logits.

Usable memory is HBM less :data:`RUNTIME_RESERVE_BYTES` (CUDA context, communicator buffers)
and less :data:`ALLOCATOR_OVERHEAD` of what the job allocates (fragmentation of the caching
allocator, transient buffers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

from hierro.errors import DoesNotFitError
from hierro.specs import Layer, ModelArch
from hierro.training.parallel import Layout
from hierro.units import GB

__all__ = [
    "ADAM_BYTES_PER_PARAM",
    "ALLOCATOR_OVERHEAD",
    "E5M6_BYTES",
    "GRAD_BYTES_PER_PARAM",
    "RUNTIME_RESERVE_BYTES",
    "WEIGHT_BYTES_PER_PARAM",
    "LayerAvg",
    "StageLayers",
    "TrainMemory",
    "check_memory",
    "device_params",
    "in_flight_layers",
    "korthikanti_layer_bytes",
    "layer_act_bytes",
    "layer_avg",
    "optimizer_bytes_per_param",
    "stage_layers",
    "train_memory",
]

T = TypeVar("T")
WEIGHT_BYTES_PER_PARAM = 2.0
GRAD_BYTES_PER_PARAM = 4.0
ADAM_BYTES_PER_PARAM = 12.0
"""fp32 master weights and two fp32 Adam moments."""
MASTER_BYTES_PER_PARAM = 4.0
MOMENT_BYTES = {"fp32": 4.0, "bf16": 2.0}
E5M6_BYTES = 1.5
"""DeepSeek-V3's 12-bit format for the attention output it caches (1 sign, 5 exponent and 6
mantissa bits; arXiv:2412.19437 §3.3.3)."""
RUNTIME_RESERVE_BYTES = 2.0e9
"""HBM the job cannot allocate: what the driver does not expose (an H100 80GB shows 81,559 of
81,920 MiB, 0.38 GB), the CUDA context and kernel images (~0.5 GB) and the NCCL buffers of the
tp, pp, dp (and cp, ep) communicators (a few hundred MB each at NCCL's default 4 MiB per channel
and peer). An estimate, not a measurement; the serving side reserves 1.5 GB for one
communicator (:data:`hierro.specs.memory.RUNTIME_RESERVE_BYTES`)."""
ALLOCATOR_OVERHEAD = 0.01
"""Share of the allocated bytes lost to the caching allocator's fragmentation and transient
buffers: an estimate. Bounded by Llama 3 405B, which trained TP8 CP1 PP16 at 8K tokens without
activation checkpointing after profiling its allocations (arXiv:2407.21783 §3.3.2): this model
puts that layout's fullest rank at 82.3 GB of allocations on 85.9 GB of HBM, so reserve and
overhead together were at most 3.6 GB there. The previous flat 10% of HBM (8.6 GB) contradicts
that run."""
LOGIT_BYTES_PER_ELEM = 6.0
"""bf16 logits plus their fp32 softmax gradient, per vocabulary entry and token."""
BF16 = 2.0
LSE_BYTES = 4.0
"""fp32 log-sum-exp per query row and head kept by fused attention for its backward."""


def korthikanti_layer_bytes(
    s: int, b: int, h: int, a: int, t: int = 1, recompute: str = "none"
) -> float:
    """Activation bytes of one GPT layer and micro-batch (Korthikanti 2022, table 2, with SP).

    none: s·b·h·(34/t + 5·a·s/(h·t)); selective (attention core recomputed): s·b·h·34/t;
    full: 2·s·b·h/t. Unfused attention and dropout, as in the paper.
    """
    sbh = float(s) * b * h
    if recompute == "full":
        return 2.0 * sbh / t
    if recompute == "selective":
        return sbh * 34.0 / t
    return sbh * (34.0 / t + 5.0 * a * s / (h * t))


def optimizer_bytes_per_param(moments: str = "fp32") -> float:
    """fp32 master weight plus two Adam moments in ``moments`` precision: 12 B, or 8 B in bf16."""
    return MASTER_BYTES_PER_PARAM + 2.0 * MOMENT_BYTES[moments]


def _attn_act(layer: Layer, h: int, selective: bool, g: float, o: float = BF16) -> float:
    """Bytes one token's attention block keeps for backward (``g``: bytes of a cached GEMM input,
    ``o``: of the attention output, which the attention backward and the output projection's
    weight gradient share)."""
    at = layer.attn
    keep = BF16 * h + (0.0 if selective else g * h)  # norm input; norm output (GEMM input)
    if at.kind == "gqa":
        qkv = at.n_heads * at.head_dim_qk + at.n_kv_heads * (at.head_dim_qk + at.head_dim_v)
        return keep + BF16 * qkv + o * at.n_heads * at.head_dim_v + LSE_BYTES * at.n_heads
    if at.kind == "mla":
        nope = at.head_dim_qk - at.rope_dim
        latents = at.q_lora_rank + at.kv_lora_rank + at.rope_dim  # q_a and kv_a outputs
        keep += BF16 * latents
        if not selective:  # normed latents (up-projection inputs) and the up-projected q, k, v
            keep += g * (at.q_lora_rank + at.kv_lora_rank)
            keep += BF16 * at.n_heads * (at.head_dim_qk + nope + at.head_dim_v)
        return keep + o * at.n_heads * at.head_dim_v + LSE_BYTES * at.n_heads
    inner = 2 * at.lin_key_heads * at.lin_key_dim + 2 * at.lin_value_heads * at.lin_value_dim
    return keep + BF16 * inner + g * at.lin_value_heads * at.lin_value_dim


def _mlp_act(layer: Layer, h: int, selective: bool, g: float, gi: float = BF16) -> float:
    """Gated MLP: norm input and output, gate and up outputs (``gi`` bytes each), their product
    (the down input)."""
    m = layer.mlp
    keep = BF16 * h + (0.0 if selective else g * h)

    def gated(width: int) -> float:
        return gi * 2 * width + (0.0 if selective else g * width)

    if m.kind == "dense":
        return keep + gated(m.intermediate)
    # per routed copy: the dispatched token (expert GEMM input) and the gated MLP; not the
    # expert output (the router score is applied before the down-projection, see the module
    # docstring); the router's fp32 scores
    routed = m.top_k * (g * h + gated(m.intermediate))
    shared = gated(m.shared_intermediate) if m.shared_intermediate else 0.0
    return keep + routed + shared + 4.0 * m.n_experts


def layer_act_bytes(layer: Layer, h: int, recompute: str = "none", fp8: bool = False,
                    low_precision: bool = False) -> float:
    """Bytes one token keeps for the backward of one layer (before the /t of TP with SP).

    ``low_precision`` (with ``fp8``): the attention output in E5M6, the SwiGLU inputs in FP8.
    """
    if recompute == "full":
        return BF16 * h
    sel = recompute == "selective"
    g = 1.0 if fp8 else BF16
    low = fp8 and low_precision
    o = E5M6_BYTES if low else BF16
    gi = 1.0 if low else BF16
    return _attn_act(layer, h, sel, g, o) + _mlp_act(layer, h, sel, g, gi)


@dataclass(frozen=True, slots=True)
class LayerAvg:
    dense_params: float
    expert_params: float


_SEEN: dict[tuple[int, str], tuple[ModelArch, object]] = {}


def _memo(model: ModelArch, what: str, make: Callable[[], T]) -> T:
    """Per-model memo keyed on identity (hashing a model walks all its layers)."""
    hit = _SEEN.get((id(model), what))
    if hit is not None and hit[0] is model:
        return cast(T, hit[1])
    value = make()
    if len(_SEEN) > 256:
        _SEEN.clear()
    _SEEN[(id(model), what)] = (model, value)
    return value


def layer_avg(model: ModelArch) -> LayerAvg:
    """Per-layer averages of dense and expert parameters."""
    return _memo(model, "avg", lambda: _layer_avg(model))


def _layer_avg(model: ModelArch) -> LayerAvg:
    d = model.hidden
    dense = expert = 0.0
    for lay, n in model.groups:
        a = lay.attn.matmul_params(d) + lay.attn.other_params(d) + 2 * d
        m_tot, _ = lay.mlp.matmul_params(d)
        o_tot, _ = lay.mlp.other_params(d)
        if lay.mlp.kind == "moe":
            e = lay.mlp.n_experts * lay.mlp.expert_params(d)
            dense += n * (a + m_tot + o_tot - e)
            expert += n * e
        else:
            dense += n * (a + m_tot + o_tot)
        # the MTP block repeats the last layer's shape; averaged in below
    L = model.n_layers
    return LayerAvg(dense / L, expert / L)


def act_bytes_per_token(model: ModelArch, recompute: str, fp8: bool,
                        low_precision: bool = False) -> float:
    """Average over the layers of :func:`layer_act_bytes`."""

    def make() -> float:
        tot = sum(n * layer_act_bytes(lay, model.hidden, recompute, fp8, low_precision)
                  for lay, n in model.groups)
        return tot / model.n_layers

    return _memo(model, f"act-{recompute}-{fp8}-{low_precision}", make)


def mtp_params(model: ModelArch) -> tuple[float, float]:
    """(dense, expert) parameters of the multi-token-prediction modules: each one transformer
    block of the last layer's shape, two RMSNorms and a 2h x h projection, sharing the embedding
    and the output head (DeepSeek-V3, arXiv:2412.19437 §2.2)."""
    if model.mtp_layers == 0:
        return 0.0, 0.0
    d = model.hidden
    lay = model.groups[-1][0]
    a = lay.attn.matmul_params(d) + lay.attn.other_params(d) + 2 * d
    m_tot, _ = lay.mlp.matmul_params(d)
    o_tot, _ = lay.mlp.other_params(d)
    e = lay.mlp.n_experts * lay.mlp.expert_params(d) if lay.mlp.kind == "moe" else 0
    per_dense = a + m_tot + o_tot - e + 2 * d * d + 2 * d
    return model.mtp_layers * float(per_dense), model.mtp_layers * float(e)


@dataclass(frozen=True, slots=True)
class StageLayers:
    """Transformer layers on the first, a middle and the last pipeline stage (the last
    stage's count includes MTP blocks)."""

    first: int
    middle: int
    last: int


def stage_layers(model: ModelArch | int, pp: int, split_ends: bool = False) -> StageLayers:
    """Layers per stage: ceil(L'/p) on the first and middle stages, the remainder's floor on the
    last, with L' = L + MTP blocks; with ``split_ends`` the embedding and the loss take one
    layer's slot each on the first and last stages (Llama 3 §3.3.2)."""
    if isinstance(model, int):
        n, mtp = model, 0
    else:
        n, mtp = model.n_layers + model.mtp_layers, model.mtp_layers
    if pp == 1:
        return StageLayers(n, n, n)
    slots = n + (2 if split_ends else 0)
    per = -(-slots // pp)
    first = per - (1 if split_ends else 0)
    last = max(slots // pp - (1 if split_ends else 0), mtp, 1)
    return StageLayers(first, per, last)


def in_flight_layers(lay: Layout, micro_batches: int, layers: int, rank: int,
                     embed_chunk: bool = False) -> float:
    """Layer-micro-batches of activations rank ``rank`` holds at its peak (``layers`` on it).

    1F1B: min(m, p - r) micro-batches. Interleaved (v > 1): 2·(p-1-r) + (v-1)·p + 1 chunk
    forwards, the first p·v of them one per (chunk, micro-batch) and the rest wrapping around to
    the first chunks again; ``embed_chunk``: the rank's first chunk holds the embedding in
    place of a layer. DualPipe: p + 1 micro-batches of a stage.
    """
    p, v = lay.pp, lay.vpp
    if p == 1:
        return float(layers)
    if lay.schedule == "dualpipe":
        return (p + 1.0) * layers
    if v == 1:
        return float(min(micro_batches, p - rank) * layers)
    slots = layers + (1 if embed_chunk else 0)
    per_chunk = slots / v
    chunk0 = per_chunk - (1 if embed_chunk else 0)
    held = 2 * (p - 1 - rank) + (v - 1) * p + 1
    full_rounds = min(held, p * v)  # one forward per chunk for each of p micro-batches
    extra = held - full_rounds  # wrap-around: the first chunk again
    rest = full_rounds - p  # chunks after the first
    return p * chunk0 + rest * per_chunk + extra * chunk0


def device_params(model: ModelArch, lay: Layout, *, first: bool) -> tuple[float, float]:
    """(dense, expert) parameters one device of the first (or last) pipeline stage holds;
    under DualPipe a rank holds both (stage i and stage p-1-i). The MTP modules share the
    embedding and the output head with the main model (DeepSeek-V3 §2.2); under DualPipe the
    first rank holds the embedding and the head once, for both (§3.2.3, "Shared Embedding and
    Output Head for Multi-Token Prediction")."""
    avg = layer_avg(model)
    sl = stage_layers(model, lay.pp, lay.split_ends)
    t = lay.tp
    head = float(model.vocab * model.hidden)
    mtp_d, mtp_e = mtp_params(model)
    last_core = sl.last - model.mtp_layers if lay.pp > 1 else model.n_layers

    def stage(is_first: bool) -> tuple[float, float]:
        n = sl.first if is_first else last_core
        dense = n * avg.dense_params / t
        expert = n * avg.expert_params / (t * lay.ep)
        if is_first or lay.pp == 1:  # the embedding table (vocab-parallel over tp)
            dense += head / t
        if not is_first or lay.pp == 1:
            if not is_first or not model.tied_embeddings:
                dense += head / t  # the LM head (a copy of a tied embedding on the last stage)
            dense += mtp_d / t
            expert += mtp_e / (t * lay.ep)
        return dense, expert

    if lay.pp == 1:
        return stage(True)
    if lay.schedule == "dualpipe":
        a, b = stage(True), stage(False)
        return a[0] + b[0], a[1] + b[1]
    return stage(first)


@dataclass(frozen=True, slots=True)
class TrainMemory:
    """Bytes per device on the fullest pipeline rank."""

    weights_bytes: float
    grads_bytes: float
    optimizer_bytes: float
    activations_bytes: float
    other_bytes: float
    capacity_bytes: float
    """HBM less the runtime reserve."""
    overhead_bytes: float = 0.0
    """Allocator fragmentation and transient buffers (:data:`ALLOCATOR_OVERHEAD`)."""

    @property
    def total_bytes(self) -> float:
        return (self.weights_bytes + self.grads_bytes + self.optimizer_bytes
                + self.activations_bytes + self.other_bytes + self.overhead_bytes)

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.capacity_bytes


def _rank_memory(
    model: ModelArch, lay: Layout, seq_len: int, micro_batches: int, capacity: float,
    rank: str, fp8: bool,
) -> TrainMemory:
    avg = layer_avg(model)
    sl = stage_layers(model, lay.pp, lay.split_ends)
    d, t = model.hidden, lay.tp
    p = lay.pp
    if rank == "middle":  # rank 1 holds a middle stage's layers, params like a middle stage
        dense = sl.middle * avg.dense_params / t
        expert = sl.middle * avg.expert_params / (t * lay.ep)
        if lay.schedule == "dualpipe":
            dense, expert = 2 * dense, 2 * expert
    else:
        dense, expert = device_params(model, lay, first=rank == "first")
    r_dense = lay.dp * lay.cp
    r_expert = max(r_dense // lay.ep, 1)

    def sharded(per_param: float, stage: int) -> float:
        if lay.zero >= stage:
            return per_param * (dense / r_dense + expert / r_expert)
        return per_param * (dense + expert)

    weights = sharded(WEIGHT_BYTES_PER_PARAM, 3)
    grads = sharded(GRAD_BYTES_PER_PARAM, 2)
    optim = sharded(optimizer_bytes_per_param(lay.moments), 1)
    other = 0.0
    if lay.zero >= 3:  # gathered weights of the layer in use and the prefetched next one
        other += 2.0 * WEIGHT_BYTES_PER_PARAM * (avg.dense_params / t + avg.expert_params / (t * lay.ep))

    tokens = lay.micro_batch * seq_len / (t * lay.cp)  # per device, with SP and CP
    full = act_bytes_per_token(model, "none" if lay.recompute == "full" else lay.recompute, fp8,
                               lay.low_precision_acts)
    stored = tokens * (2.0 * d if lay.recompute == "full" else full)
    if p == 1:
        held = float(sl.first)
    elif lay.schedule == "dualpipe":
        held = (p + 1.0) * (sl.middle if rank == "middle" else (sl.first + sl.last) / 2)
    elif rank == "first":
        held = in_flight_layers(lay, micro_batches, sl.first, 0, embed_chunk=lay.split_ends)
    elif rank == "middle":
        held = in_flight_layers(lay, micro_batches, sl.middle, 1)
    else:
        held = in_flight_layers(lay, micro_batches, sl.last, p - 1)
    acts = held * stored
    if lay.recompute == "full":
        acts += tokens * full  # one layer rebuilt during its backward
    holds_head = p == 1 or rank == "last" or (lay.schedule == "dualpipe" and rank == "first")
    if holds_head:
        other += tokens * model.vocab * LOGIT_BYTES_PER_ELEM
    base = weights + grads + optim + acts + other
    return TrainMemory(weights, grads, optim, acts, other, capacity, ALLOCATOR_OVERHEAD * base)


def train_memory(
    model: ModelArch, layout: Layout, seq_len: int, micro_batches: int, hbm_bytes: float,
    dtype: str = "bf16", reserve_bytes: float = RUNTIME_RESERVE_BYTES,
) -> TrainMemory:
    """Memory of the fullest of the first, second and last pipeline ranks, per device."""
    cap = hbm_bytes - reserve_bytes
    fp8 = dtype == "fp8"
    if layout.pp == 1:
        return _rank_memory(model, layout, seq_len, micro_batches, cap, "first", fp8)
    ranks: tuple[str, ...] = ("first", "last") if layout.schedule == "1f1b" else ("first",)
    if layout.pp > 2:
        ranks += ("middle",)
    mems = [_rank_memory(model, layout, seq_len, micro_batches, cap, r, fp8) for r in ranks]
    return max(mems, key=lambda m: m.total_bytes)


def check_memory(mem: TrainMemory, what: str) -> None:
    """Raise :class:`DoesNotFitError` naming by how much ``what`` overflows the device."""
    if not mem.fits:
        over = (mem.total_bytes - mem.capacity_bytes) / GB
        raise DoesNotFitError(
            f"{what} needs {mem.total_bytes / GB:.1f} GB per GPU, {over:.1f} GB more than the "
            f"{mem.capacity_bytes / GB:.1f} GB usable"
        )
