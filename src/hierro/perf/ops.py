"""One engine step as a list of named ops, each with FLOPs, HBM bytes and bytes communicated.

A step runs a batch through one pipeline stage: some sequences prefill a chunk of their prompt,
others decode one token each (:class:`StepShape`). For every layer group the step costs the
attention projections, the attention kernel (prefill and decode parts), the feed-forward or
expert GEMMs, and the collectives of the plan; then the LM head for the rows that sample.
All figures are per device. The fields of a shape may be numpy arrays: every op is then an
array of costs, one per shape (this is how sweeps stay fast).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hierro.specs import Accelerator, Attention, Layer, ModelArch, Plan
from hierro.specs.memory import LINEAR_STATE_BYTES
from hierro.specs.plan import weight_bytes_per_param
from hierro.units import dtype_bytes

__all__ = ["Num", "Op", "StepShape", "build_ops"]

Num = float | NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class StepShape:
    """What one engine step of one model instance processes.

    ``prefill_tokens`` new prompt tokens in ``prefill_seqs`` chunks, each chunk preceded by
    ``prefill_ctx`` cached tokens on average; ``decode_seqs`` sequences each generating one token
    with ``decode_ctx`` tokens cached on average. ``sampled`` rows produce logits (decodes plus
    prefills that finish their prompt this step); None means decode_seqs + prefill_seqs.
    """

    prefill_tokens: Num = 0.0
    prefill_seqs: Num = 0.0
    prefill_ctx: Num = 0.0
    decode_seqs: Num = 0.0
    decode_ctx: Num = 0.0
    sampled: Num | None = None

    @property
    def tokens(self) -> Num:
        return self.prefill_tokens + self.decode_seqs

    @property
    def sampled_rows(self) -> Num:
        return self.decode_seqs + self.prefill_seqs if self.sampled is None else self.sampled


@dataclass(frozen=True, slots=True)
class Op:
    """One named op of a step, per device. ``count`` kernels or collectives (layers)."""

    name: str
    op_class: str
    dtype: str
    flops: Num
    bytes: Num
    comm_bytes: Num = 0.0
    count: float = 1.0
    group: int = 1
    """Devices in the collective (comm ops)."""
    scale_out: bool = False
    """Whether the collective crosses the scale-up domain."""
    rows: Num = 0.0
    """Sequences whose per-step host work the op stands for (op class ``host``)."""


def _attended_mean(a: Attention, ctx: Num) -> Num:
    """Mean tokens attended when the context is ``ctx`` (window-capped)."""
    if a.kind == "linear":
        return np.zeros_like(ctx) if isinstance(ctx, np.ndarray) else 0.0
    if a.window is None:
        return ctx
    return np.minimum(ctx, float(a.window))


def _prefill_pairs(a: Attention, s: StepShape) -> Num:
    """(query, key) pairs of the prefill chunks: each chunk of q tokens after c cached tokens
    has q·(c + (q+1)/2) pairs under causal masking, fewer under a window."""
    q = s.prefill_tokens / np.maximum(s.prefill_seqs, 1.0)
    mean_keys = s.prefill_ctx + (q + 1.0) / 2.0
    return s.prefill_tokens * _attended_mean(a, mean_keys)


def _kv_shard(a: Attention, plan: Plan) -> int:
    if a.kind == "gqa":
        return min(plan.attn_tp, a.n_kv_heads)
    if a.kind == "mla":
        return 1
    return plan.attn_tp


def _merged_groups(groups: tuple[tuple[Layer, int], ...]) -> list[tuple[Layer, int]]:
    """Identical layers counted together, in order of first appearance: every layer gets the
    same 1/pp share of the step, so pricing a layer spec once with its total count is exact (it
    turns gpt-oss's 36 alternating sliding/full groups into two)."""
    merged: dict[Layer, int] = {}
    for layer, n in groups:
        merged[layer] = merged.get(layer, 0) + n
    return list(merged.items())


def build_ops(
    model: ModelArch, accel: Accelerator, plan: Plan, s: StepShape, *, domain: int
) -> list[Op]:
    """The ops of one step of one pipeline stage, per device.

    Layers are split evenly over ``plan.pp`` stages; a stage's ops carry ``count`` equal to its
    share of layers, so each op's FLOPs and bytes are totals over the stage's layers. ``domain``
    is the scale-up domain size: collectives over more devices cross the scale-out network.
    """
    d = model.hidden
    wq = weight_bytes_per_param(plan.weight_dtype)
    ab = dtype_bytes(plan.act_dtype)
    kvb = dtype_bytes(plan.kv_dtype)
    stage = 1.0 / plan.pp
    dp = plan.attn_dp
    T = s.tokens
    T_a = T / dp  # tokens each attention rank processes
    wdt = plan.weight_dtype
    attn_dt = "fp8" if plan.kv_dtype in ("fp8", "fp4") else "bf16"
    ops: list[Op] = []
    for layer, n_layers in _merged_groups(model.groups):
        n = n_layers * stage
        a, m = layer.attn, layer.mlp
        tp = plan.attn_tp
        # --- attention projections (Q, K, V in; O out) ---------------------------------
        p_attn = a.matmul_params(d)
        if a.kind == "gqa":
            kv_p = d * a.n_kv_heads * (a.head_dim_qk + a.head_dim_v)
            p_dev = (p_attn - kv_p) / tp + kv_p / min(tp, a.n_kv_heads)
            width = (a.n_heads * (a.head_dim_qk + a.head_dim_v)) / tp
        elif a.kind == "mla":
            repl = d * (a.q_lora_rank + a.kv_lora_rank + a.rope_dim)
            p_dev = (p_attn - repl) / tp + repl
            width = a.q_lora_rank + a.kv_lora_rank + a.n_heads * (a.head_dim_qk + a.head_dim_v) / tp
        else:
            p_dev = p_attn / tp
            width = (2 * a.lin_key_heads * a.lin_key_dim + 2 * a.lin_value_heads * a.lin_value_dim) / tp
        ops.append(Op(
            f"attn.proj[{a.kind}]", "gemm", wdt,
            flops=n * 2.0 * T_a * p_dev,
            bytes=n * (wq * p_dev + ab * T_a * (2 * d + width)),
            count=2 * n,
        ))
        # --- attention kernels -----------------------------------------------------------
        shard = _kv_shard(a, plan)
        kv_tok = a.kv_elems_per_token() * kvb / shard  # bytes per cached token per layer
        if a.kind == "linear":
            state = a.state_elems() * LINEAR_STATE_BYTES / tp
            flops_tok = a.state_flops_per_token() / tp
            ops.append(Op(
                "attn.linear", "attn_decode", "bf16",
                flops=n * flops_tok * T_a,
                bytes=n * 2.0 * state * (s.decode_seqs + s.prefill_seqs) / dp,
                count=n,
            ))
        else:
            pf_pairs = _prefill_pairs(a, s) / dp
            ops.append(Op(
                f"attn.prefill[{a.kind}]", "attn_prefill", attn_dt,
                flops=n * a.score_flops_per_pair(absorbed=False) / tp * pf_pairs,
                bytes=n * (kv_tok * (s.prefill_seqs / dp) * _attended_mean(a, s.prefill_ctx)
                           + ab * (s.prefill_tokens / dp) * (a.n_heads / tp) * (a.head_dim_qk + a.head_dim_v)
                           + kv_tok * s.prefill_tokens / dp),
                count=n,
            ))
            dec_keys = _attended_mean(a, s.decode_ctx + 1.0) * (s.decode_seqs / dp)
            ops.append(Op(
                f"attn.decode[{a.kind}]", "attn_decode", attn_dt,
                flops=n * a.score_flops_per_pair(absorbed=True) / tp * dec_keys,
                bytes=n * kv_tok * dec_keys,
                count=n,
            ))
        # --- feed-forward --------------------------------------------------------------
        if m.kind == "dense":
            p_mlp = m.expert_params(d) / plan.tp
            ops.append(Op(
                "mlp", "gemm", wdt,
                flops=n * 2.0 * T * p_mlp,
                bytes=n * (wq * p_mlp + ab * T * (2 * d + 3 * m.intermediate / plan.tp)),
                count=2 * n,
            ))
        else:
            T_m = T  # every token of the instance reaches the expert layer
            routed = T_m * m.top_k
            local_experts = m.n_experts / plan.ep
            p_exp = m.expert_params(d) / plan.moe_tp
            hit = 1.0 - (1.0 - m.top_k / m.n_experts) ** np.maximum(T_m, 0.0)
            ops.append(Op(
                "moe.experts", "moe", wdt,
                flops=n * 2.0 * (routed / plan.ep) * p_exp,
                bytes=n * (wq * local_experts * hit * p_exp
                           + ab * (routed / plan.ep) * (2 * d + 3 * m.intermediate / plan.moe_tp)),
                count=3 * n,
            ))
            p_fixed = m.shared_params(d) / plan.tp + m.router_params(d)
            ops.append(Op(
                "moe.shared+router", "gemm", wdt,
                flops=n * 2.0 * T_m * p_fixed,
                bytes=n * (wq * p_fixed + ab * T_m * 2 * d),
                count=2 * n,
            ))
            if plan.dp_attention and plan.ep > 1:
                # dispatch and combine: each token's hidden state to its top-k experts' ranks
                frac = (plan.ep - 1) / plan.ep
                msg = ab * T_a * m.top_k * d * frac
                ops.append(Op(
                    "comm.ep_alltoall", "alltoall", plan.act_dtype,
                    flops=0.0, bytes=0.0, comm_bytes=n * 2.0 * msg,
                    count=2 * n, group=plan.ep, scale_out=plan.ep > domain,
                ))
        # --- tensor-parallel all-reduce after attention and after the MLP ------------------
        if plan.tp > 1 and not plan.dp_attention:
            ops.append(Op(
                "comm.tp_allreduce", "allreduce", plan.act_dtype,
                flops=0.0, bytes=0.0, comm_bytes=n * 2.0 * ab * T * d,
                count=2 * n, group=plan.tp, scale_out=plan.tp > domain,
            ))
        elif plan.tp > 1 and plan.dp_attention and not model.is_moe:
            ops.append(Op(
                "comm.dp_gather", "allreduce", plan.act_dtype,
                flops=0.0, bytes=0.0, comm_bytes=n * ab * T * d,
                count=n, group=plan.tp, scale_out=plan.tp > domain,
            ))
    # --- LM head on the sampled rows (vocab-parallel), once per instance ---------------------
    rows = s.sampled_rows / dp
    p_head = model.vocab * d / plan.tp
    ops.append(Op(
        "lm_head", "gemm", plan.act_dtype,
        flops=stage * 2.0 * rows * p_head,
        bytes=stage * (ab * p_head + 4.0 * rows * model.vocab / plan.tp),
        count=stage,
    ))
    # host work per running sequence per step: scheduling, input preparation, sampling,
    # detokenisation and streaming (Vidur prices these CPU overheads per batch; Agrawal et al.,
    # MLSys 2024, section 4); one scheduler per attention-DP rank
    ops.append(Op("host.per_seq", "host", "*", flops=0.0, bytes=0.0, rows=s.sampled_rows / dp))
    if plan.pp > 1:
        ops.append(Op(
            "comm.pp_send", "p2p", plan.act_dtype,
            flops=0.0, bytes=0.0, comm_bytes=ab * T_a * d,
            count=1.0, group=2, scale_out=plan.devices > domain,
        ))
    return ops

