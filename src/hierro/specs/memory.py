"""Memory per device of a plan: weights, KV cache and workspace, and how many sequences fit.

The engines size their KV pool by one of two rules (Kwon et al., PagedAttention, SOSP 2023, for
the paged pool itself):

* a fraction of the device's total memory (vLLM ``gpu_memory_utilization`` 0.9, SGLang
  ``mem_fraction_static`` about 0.85-0.9): weights and the activation workspace come out of
  ``f · HBM`` and the rest holds KV blocks;
* a fraction of the memory still free once the weights are loaded and the workspace is
  profiled (TensorRT-LLM ``KvCacheConfig.free_gpu_memory_fraction``, default 0.9: "allocate 90%
  of free GPU memory for KV cache", TensorRT-LLM docs, *How to Change KV Cache Behavior*):
  ``f · (HBM - weights - workspace)``.

The two differ most where the weights nearly fill the device: Llama-3.1-70B in FP8 on one
80 GB H100 keeps about 1.4 GB for KV under the first rule and about 9 GB under the second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hierro.errors import DoesNotFitError
from hierro.specs.hardware import Accelerator
from hierro.specs.model import Attention, Layer, ModelArch
from hierro.specs.plan import Plan, weight_bytes_per_param
from hierro.units import GB, dtype_bytes

__all__ = [
    "DEFAULT_MEM_FRACTION",
    "KV_BLOCK_TOKENS",
    "RUNTIME_RESERVE_BYTES",
    "MemoryBreakdown",
    "check_fits",
    "kv_bytes_per_seq",
    "memory_breakdown",
    "weight_bytes_per_device",
]

DEFAULT_MEM_FRACTION = 0.9
"""Share of HBM the engine may use (vLLM's gpu_memory_utilization default)."""

KV_BLOCK_TOKENS = 16
"""Tokens per KV page (vLLM's default block size); contexts round up to whole pages."""

RUNTIME_RESERVE_BYTES = 1.5e9
"""CUDA/ROCm context, CUDA graphs and collective buffers per device: an estimate (vLLM logs
report 0.5-2 GiB of non-torch and graph memory on H100); not from a measurement of ours."""

LINEAR_STATE_BYTES = 4.0
"""Linear-attention recurrent state is kept in fp32 (Qwen3.5 config ``mamba_ssm_dtype``)."""


def _attn_weight_params(a: Attention, hidden: int, plan: Plan) -> float:
    """Attention matmul weights held on one device."""
    tp = plan.attn_tp
    total = a.matmul_params(hidden)
    if a.kind == "gqa":
        kv = hidden * a.n_kv_heads * (a.head_dim_qk + a.head_dim_v)
        # K/V heads are split over at most n_kv_heads ranks and replicated beyond that.
        return (total - kv) / tp + kv / min(tp, a.n_kv_heads)
    if a.kind == "mla":
        # the down-projections (q_a, kv_a) are replicated; q_b, kv_b, o are split by heads
        replicated = hidden * (a.q_lora_rank + a.kv_lora_rank + a.rope_dim)
        return (total - replicated) / tp + replicated
    return total / tp


def _layer_bytes(layer: Layer, hidden: int, plan: Plan) -> float:
    wq = weight_bytes_per_param(plan.weight_dtype)
    wh = dtype_bytes(plan.act_dtype)  # norms, biases, router stay in the activation dtype
    m = layer.mlp
    mlp_total, _ = m.matmul_params(hidden)
    router = m.router_params(hidden)
    mlp = (mlp_total - router) / plan.tp  # routed experts over ep x moe_tp = tp ranks
    small = layer.attn.other_params(hidden) + m.other_params(hidden)[0] / plan.tp + 2 * hidden
    return wq * (_attn_weight_params(layer.attn, hidden, plan) + mlp) + wh * (router + small)


def weight_bytes_per_device(model: ModelArch, plan: Plan) -> float:
    """Weight bytes on the most loaded device (the first or last pipeline stage)."""
    per_layer = sum(n * _layer_bytes(lay, model.hidden, plan) for lay, n in model.groups) / model.n_layers
    stage_layers = math.ceil(model.n_layers / plan.pp)
    wh = dtype_bytes(plan.act_dtype)
    p = model.params()
    # vocab-parallel embedding and LM head (Megatron-LM, Shoeybi et al. 2019, section 3)
    emb, head = wh * p.embedding / plan.tp, wh * p.lm_head / plan.tp
    ends = emb + head if plan.pp == 1 else max(emb, head)
    final_norm = wh * model.hidden
    return per_layer * stage_layers + ends + final_norm


def kv_bytes_per_seq(model: ModelArch, plan: Plan, context: float) -> float:
    """KV-cache bytes one sequence of ``context`` tokens occupies on each device that holds it.

    GQA heads split over min(tp, n_kv_heads) ranks; an MLA latent is shared by all heads and so
    replicated on every attention-TP rank; under data-parallel attention a sequence lives on one
    rank whole. Pipeline stages hold their own layers' cache.
    """
    ctx = math.ceil(context / KV_BLOCK_TOKENS) * KV_BLOCK_TOKENS
    kvb = dtype_bytes(plan.kv_dtype)
    tp = plan.attn_tp
    total = 0.0
    for lay, n in model.groups:
        a = lay.attn
        if a.kind == "gqa":
            shard = min(tp, a.n_kv_heads)
        elif a.kind == "mla":
            shard = 1
        else:
            shard = tp
        total += n * (a.kv_elems_per_token() * a.attended(ctx) * kvb + a.state_elems() * LINEAR_STATE_BYTES) / shard
    return total * math.ceil(model.n_layers / plan.pp) / model.n_layers


def _workspace_bytes(model: ModelArch, plan: Plan, max_batched_tokens: int, max_seqs: int) -> float:
    """Peak activation memory of one step of ``max_batched_tokens`` plus the runtime reserve.

    Per token: the residual stream and norms (3·d), the attention projections, the MLP's gate
    and up outputs on this rank, in the activation dtype; plus fp32 logits for the sampled rows.
    """
    ab = dtype_bytes(plan.act_dtype)
    widest = 0.0
    for lay, _ in model.groups:
        a, m = lay.attn, lay.mlp
        qkv = (a.n_heads * a.head_dim_qk * 2 + a.kv_elems_per_token()) / plan.attn_tp
        mlp = 2 * m.intermediate * (m.top_k if m.kind == "moe" else 1) / plan.moe_tp
        mlp += 2 * m.shared_intermediate / plan.tp
        widest = max(widest, qkv + mlp)
    per_token = ab * (3 * model.hidden + widest)
    logits = 4.0 * max_seqs * model.vocab / plan.tp
    return max_batched_tokens * per_token + logits + RUNTIME_RESERVE_BYTES


@dataclass(frozen=True, slots=True)
class MemoryBreakdown:
    """Memory of one device under a plan, in bytes, and the sequences that fit per instance."""

    capacity_bytes: float
    budget_bytes: float
    weights_bytes: float
    workspace_bytes: float
    kv_bytes_per_seq: float
    context: int
    max_seqs: int
    """Largest number of sequences of ``context`` tokens one instance can hold at once."""

    @property
    def kv_budget_bytes(self) -> float:
        return self.budget_bytes - self.weights_bytes - self.workspace_bytes

    @property
    def fits(self) -> bool:
        return self.kv_budget_bytes > 0 and self.max_seqs >= 1

    def kv_bytes(self, seqs: int) -> float:
        """KV bytes per device holding ``seqs`` sequences of the instance."""
        return self.kv_bytes_per_seq * seqs


def memory_breakdown(
    model: ModelArch,
    accel: Accelerator,
    plan: Plan,
    *,
    context: float,
    mem_fraction: float = DEFAULT_MEM_FRACTION,
    max_batched_tokens: int = 8192,
    max_seqs_sampled: int = 256,
    of_free: bool = False,
) -> MemoryBreakdown:
    """Weights, workspace and KV of one device, and the sequences of ``context`` that fit.

    ``mem_fraction`` is a share of the whole device, or with ``of_free`` a share of what the
    weights and workspace leave free (TensorRT-LLM's rule; see the module docstring)."""
    weights = weight_bytes_per_device(model, plan)
    work = _workspace_bytes(model, plan, max_batched_tokens, max_seqs_sampled)
    if of_free:
        budget = weights + work + mem_fraction * max(accel.hbm_bytes - weights - work, 0.0)
    else:
        budget = mem_fraction * accel.hbm_bytes
    kv_seq = kv_bytes_per_seq(model, plan, max(context, 1.0))
    free = budget - weights - work
    per_rank = int(free // kv_seq) if free > 0 and kv_seq > 0 else 0
    return MemoryBreakdown(
        capacity_bytes=accel.hbm_bytes,
        budget_bytes=budget,
        weights_bytes=weights,
        workspace_bytes=work,
        kv_bytes_per_seq=kv_seq,
        context=math.ceil(context),
        max_seqs=per_rank * plan.attn_dp,
    )


def check_fits(mem: MemoryBreakdown, *, what: str) -> None:
    """Raise :class:`DoesNotFitError` with the numbers if not even one sequence fits."""
    if mem.fits:
        return
    need = mem.weights_bytes + mem.workspace_bytes + mem.kv_bytes_per_seq
    over = need - mem.budget_bytes
    raise DoesNotFitError(
        f"{what} does not fit: weights {mem.weights_bytes / GB:.1f} GB + workspace "
        f"{mem.workspace_bytes / GB:.1f} GB + one sequence's KV {mem.kv_bytes_per_seq / GB:.2f} GB "
        f"per device exceed the {mem.budget_bytes / GB:.1f} GB usable of {mem.capacity_bytes / GB:.0f} GB "
        f"by {over / GB:.1f} GB; raise --tp/--pp, use --dtype fp8 or fp4, or a GPU with more memory"
    )
