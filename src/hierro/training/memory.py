"""Memory per device of a training job: weights, gradients, optimizer states, activations.

Model states, mixed precision with Adam (Rajbhandari et al. 2020, ZeRO, arXiv:1910.02054 §3.1;
Megatron-LM distributed-optimizer docs): bf16 weights (2 B/param), fp32 main gradients (4 B;
Llama 3 accumulates and reduces gradients in fp32, arXiv:2407.21783 §3.3.4), and an fp32 master
copy plus two Adam moments (12 B): 18 B/param unsharded. ZeRO stage 1 shards the 12 B of
optimizer state over the R data-parallel replicas of a weight, stage 2 also the gradients,
stage 3 (FSDP) also the weights, which are gathered a layer at a time (two layers' buffer).

Activations (Korthikanti et al. 2022, arXiv:2205.05198, §4): per layer and micro-batch a GPT
layer stores s·b·h·(34 + 5·a·s/h) bytes; with tensor parallelism t and sequence parallelism
everything is divided by t; selective recomputation drops the 5·a·s/h attention-score term;
full recomputation keeps only the layer input, 2·s·b·h/t. :func:`korthikanti_layer_bytes` is that
formula; the planner uses the same accounting on the model's own shapes (GQA/MLA projections,
gated MLPs, routed experts), with no dropout masks (modern LLM pre-training uses none).
Context parallelism divides the tokens by cp. Under 1F1B the first pipeline stage holds
min(m, p) micro-batches in flight (so L layers' worth at m >= p), times (1 + (p-1)/(p·v)) with
v interleaved stages (Korthikanti §4.2.3); the last stage also holds the logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from hierro.errors import DoesNotFitError
from hierro.specs import Layer, ModelArch
from hierro.training.parallel import Layout
from hierro.units import GB

__all__ = [
    "ADAM_BYTES_PER_PARAM",
    "GRAD_BYTES_PER_PARAM",
    "MEMORY_FRACTION",
    "WEIGHT_BYTES_PER_PARAM",
    "LayerAvg",
    "TrainMemory",
    "check_memory",
    "device_params",
    "korthikanti_layer_bytes",
    "layer_avg",
    "stage_layers",
    "train_memory",
]

WEIGHT_BYTES_PER_PARAM = 2.0
GRAD_BYTES_PER_PARAM = 4.0
ADAM_BYTES_PER_PARAM = 12.0
MEMORY_FRACTION = 0.9
"""Share of HBM a training job can fill (the rest: CUDA context, NCCL buffers, fragmentation);
an estimate, not a measurement."""
LOGIT_BYTES_PER_ELEM = 6.0
"""bf16 logits plus their fp32 softmax gradient, per vocabulary entry and token."""


def korthikanti_layer_bytes(
    s: int, b: int, h: int, a: int, t: int = 1, recompute: str = "none"
) -> float:
    """Activation bytes of one GPT layer and micro-batch (Korthikanti 2022, table 2, with SP).

    none: s·b·h·(34/t + 5·a·s/(h·t)); selective: s·b·h·34/t; full: 2·s·b·h/t.
    """
    sbh = float(s) * b * h
    if recompute == "full":
        return 2.0 * sbh / t
    if recompute == "selective":
        return sbh * 34.0 / t
    return sbh * (34.0 / t + 5.0 * a * s / (h * t))


def _attn_bytes_per_token(layer: Layer, h: int) -> float:
    """Bytes one token's attention block keeps for backward (norm in, GEMM in, q/k/v, output)."""
    at = layer.attn
    if at.kind == "gqa":
        qkv = at.n_heads * at.head_dim_qk + at.n_kv_heads * (at.head_dim_qk + at.head_dim_v)
        return 2.0 * (2 * h + qkv + at.n_heads * at.head_dim_v)
    if at.kind == "mla":
        nope = at.head_dim_qk - at.rope_dim
        lat = at.q_lora_rank + at.kv_lora_rank + at.rope_dim
        qkv = at.n_heads * (at.head_dim_qk + nope + at.head_dim_v)
        return 2.0 * (2 * h + lat + qkv + at.n_heads * at.head_dim_v)
    inner = 2 * at.lin_key_heads * at.lin_key_dim + 2 * at.lin_value_heads * at.lin_value_dim
    return 2.0 * (2 * h + inner + at.lin_value_heads * at.lin_value_dim)


def _mlp_bytes_per_token(layer: Layer, h: int) -> float:
    """Gated MLP: norm and GEMM inputs, gate and up outputs and their product (6·I bytes)."""
    m = layer.mlp
    if m.kind == "dense":
        return 4.0 * h + 6.0 * m.intermediate
    routed = m.top_k * (2.0 * h + 6.0 * m.intermediate)
    return 4.0 * h + routed + 6.0 * m.shared_intermediate + 4.0 * m.n_experts


def _score_heads(layer: Layer) -> int:
    return layer.attn.n_heads if layer.attn.kind != "linear" else 0


@dataclass(frozen=True, slots=True)
class LayerAvg:
    dense_params: float
    expert_params: float
    act_bytes_per_token: float
    score_heads: float


@cache
def layer_avg(model: ModelArch) -> LayerAvg:
    """Per-layer averages: dense and expert parameters, activation bytes per token, score heads."""
    d = model.hidden
    dense = expert = act = heads = 0.0
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
        act += n * (_attn_bytes_per_token(lay, d) + _mlp_bytes_per_token(lay, d))
        heads += n * _score_heads(lay)
    L = model.n_layers
    return LayerAvg(dense / L, expert / L, act / L, heads / L)


@dataclass(frozen=True, slots=True)
class TrainMemory:
    """Bytes per device on the fullest pipeline stage."""

    weights_bytes: float
    grads_bytes: float
    optimizer_bytes: float
    activations_bytes: float
    other_bytes: float
    capacity_bytes: float

    @property
    def total_bytes(self) -> float:
        return (self.weights_bytes + self.grads_bytes + self.optimizer_bytes
                + self.activations_bytes + self.other_bytes)

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.capacity_bytes


def stage_layers(n_layers: int, pp: int) -> tuple[int, int]:
    """(layers on the first, on the last stage): ceil(L/p) first, the remainder's floor last."""
    first = -(-n_layers // pp)
    last = n_layers // pp if pp > 1 else n_layers
    return first, last


def device_params(model: ModelArch, lay: Layout, *, first: bool) -> tuple[float, float]:
    """(dense, expert) parameters one device of the first (or last) pipeline stage holds."""
    avg = layer_avg(model)
    n_first, n_last = stage_layers(model.n_layers, lay.pp)
    n = n_first if first else n_last
    t = lay.tp
    head = float(model.vocab * model.hidden)
    dense = n * avg.dense_params / t
    if first or lay.pp == 1:  # the embedding table (vocab-parallel over tp)
        dense += head / t
    if (not first and lay.pp > 1) or (lay.pp == 1 and not model.tied_embeddings):
        dense += head / t  # the LM head (a copy of a tied embedding on the last stage)
    return dense, n * avg.expert_params / (t * lay.ep)


def _stage_memory(
    model: ModelArch, lay: Layout, seq_len: int, micro_batches: int, capacity: float, *, first: bool
) -> TrainMemory:
    avg = layer_avg(model)
    n_first, n_last = stage_layers(model.n_layers, lay.pp)
    n = n_first if first else n_last
    d, t = model.hidden, lay.tp
    dense, expert = device_params(model, lay, first=first)
    r_dense = lay.dp * lay.cp
    r_expert = max(r_dense // lay.ep, 1)

    def sharded(per_param: float, stage: int) -> float:
        if lay.zero >= stage:
            return per_param * (dense / r_dense + expert / r_expert)
        return per_param * (dense + expert)

    weights = sharded(WEIGHT_BYTES_PER_PARAM, 3)
    grads = sharded(GRAD_BYTES_PER_PARAM, 2)
    optim = sharded(ADAM_BYTES_PER_PARAM, 1)
    other = 0.0
    if lay.zero >= 3:  # gathered weights of the layer in use and the prefetched next one
        other += 2.0 * WEIGHT_BYTES_PER_PARAM * (avg.dense_params / t + avg.expert_params / (t * lay.ep))

    tokens = lay.micro_batch * seq_len / (t * lay.cp)  # per device, with SP and CP
    per_layer = tokens * avg.act_bytes_per_token
    if lay.recompute == "none":  # Korthikanti's 5·a·s^2 score term, split over heads and queries
        per_layer += tokens * 5.0 * avg.score_heads * seq_len
    stored = tokens * 2.0 * d if lay.recompute == "full" else per_layer
    if first:
        in_flight = float(min(micro_batches, lay.pp))
        if lay.vpp > 1:
            in_flight *= 1.0 + (lay.pp - 1) / (lay.pp * lay.vpp)
    else:
        in_flight = 1.0
    acts = n * in_flight * stored
    if lay.recompute == "full":
        acts += per_layer  # one layer rebuilt during its backward
    if not first or lay.pp == 1:
        other += tokens * model.vocab * LOGIT_BYTES_PER_ELEM
    return TrainMemory(weights, grads, optim, acts, other, capacity)


def train_memory(
    model: ModelArch, layout: Layout, seq_len: int, micro_batches: int, hbm_bytes: float,
    memory_fraction: float = MEMORY_FRACTION,
) -> TrainMemory:
    """Memory of the fuller of the first and last pipeline stages, per device."""
    cap = hbm_bytes * memory_fraction
    a = _stage_memory(model, layout, seq_len, micro_batches, cap, first=True)
    if layout.pp == 1:
        return a
    b = _stage_memory(model, layout, seq_len, micro_batches, cap, first=False)
    return a if a.total_bytes >= b.total_bytes else b


def check_memory(mem: TrainMemory, what: str) -> None:
    """Raise :class:`DoesNotFitError` naming by how much ``what`` overflows the device."""
    if not mem.fits:
        over = (mem.total_bytes - mem.capacity_bytes) / GB
        raise DoesNotFitError(
            f"{what} needs {mem.total_bytes / GB:.1f} GB per GPU, {over:.1f} GB more than the "
            f"{mem.capacity_bytes / GB:.1f} GB usable"
        )
