"""Model architecture: the shapes of a transformer and the arithmetic that follows from them.

A :class:`ModelArch` is a stack of layer groups; each :class:`Layer` pairs an attention block
(:class:`Attention`: MHA/GQA, MLA, or linear attention, with an optional sliding window) with a
feed-forward block (:class:`Mlp`: dense or mixture-of-experts). Everything here is pure
arithmetic on those shapes: parameter counts, FLOPs per token and KV-cache bytes.

Conventions: a "matmul parameter" is a weight that multiplies activations in a GEMM, so one
token costs 2 FLOPs per matmul parameter it touches (one multiply, one add). Norm weights,
biases and embedding tables are counted as parameters but cost no GEMM FLOPs (the embedding is a
lookup; the LM head is a GEMM and is counted separately).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Attention",
    "Layer",
    "Mlp",
    "ModelArch",
    "ParamCount",
]

AttentionKind = Literal["gqa", "mla", "linear"]


@dataclass(frozen=True, slots=True)
class Attention:
    """One attention block.

    ``gqa`` covers multi-head (``n_kv_heads == n_heads``), grouped-query and multi-query
    attention. ``mla`` is DeepSeek's multi-head latent attention: the cache holds one latent of
    ``kv_lora_rank`` plus a shared rotary key of ``rope_dim`` per token and layer (DeepSeek-V2,
    arXiv:2405.04434, section 2.1). ``linear`` is a gated delta-rule linear attention (Qwen3-Next
    and Qwen3.5; Yang et al., arXiv:2412.06464) whose state has a fixed size per sequence.
    ``window`` limits the tokens a query attends to (sliding-window or chunked local attention);
    None means full causal attention.
    """

    kind: AttentionKind
    n_heads: int
    n_kv_heads: int
    head_dim_qk: int
    head_dim_v: int
    window: int | None = None
    qkv_bias: bool = False
    o_bias: bool = False
    qk_norm: bool = False
    output_gate: bool = False
    sinks: bool = False
    # MLA
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    rope_dim: int = 0
    # DeepSeek sparse attention indexer (GLM-5, DeepSeek-V3.2)
    indexer_heads: int = 0
    indexer_dim: int = 0
    indexer_topk: int = 0
    # linear attention (gated delta net)
    lin_key_heads: int = 0
    lin_key_dim: int = 0
    lin_value_heads: int = 0
    lin_value_dim: int = 0
    conv_kernel: int = 0

    def matmul_params(self, hidden: int) -> int:
        """Weights of the attention GEMMs (projections in and out)."""
        d = hidden
        H, K = self.n_heads, self.n_kv_heads
        if self.kind == "gqa":
            q = d * H * self.head_dim_qk * (2 if self.output_gate else 1)
            kv = d * K * (self.head_dim_qk + self.head_dim_v)
            o = H * self.head_dim_v * d
            return q + kv + o
        if self.kind == "mla":
            # DeepSeek-V2 eq. 9-14: q = W_UQ W_DQ h (or W_Q h without q_lora),
            # [c_KV, k_R] = [W_DKV h, W_KR h], [k_C, v_C] = W_UK/W_UV c_KV, out = W_O [o_i].
            nope = self.head_dim_qk - self.rope_dim
            if self.q_lora_rank:
                q = d * self.q_lora_rank + self.q_lora_rank * H * self.head_dim_qk
            else:
                q = d * H * self.head_dim_qk
            kv_a = d * (self.kv_lora_rank + self.rope_dim)
            kv_b = self.kv_lora_rank * H * (nope + self.head_dim_v)
            o = H * self.head_dim_v * d
            idx = 0
            if self.indexer_heads:
                # DSA lightning indexer: q from the query latent, one shared key, head weights.
                q_in = self.q_lora_rank or d
                idx = q_in * self.indexer_heads * self.indexer_dim + d * self.indexer_dim
                idx += d * self.indexer_heads
            return q + kv_a + kv_b + o + idx
        # Gated DeltaNet: in_proj to q, k (key heads) and v, z (value heads), b and a gates.
        qk = 2 * self.lin_key_heads * self.lin_key_dim
        vz = 2 * self.lin_value_heads * self.lin_value_dim
        ba = 2 * self.lin_value_heads
        out = self.lin_value_heads * self.lin_value_dim * d
        return d * (qk + vz + ba) + out

    def other_params(self, hidden: int) -> int:
        """Biases, norms, convolution and gate vectors (no GEMM FLOPs)."""
        H, K = self.n_heads, self.n_kv_heads
        n = 0
        if self.kind == "gqa":
            if self.qkv_bias:
                n += H * self.head_dim_qk + K * (self.head_dim_qk + self.head_dim_v)
            if self.o_bias:
                n += hidden
            if self.qk_norm:
                n += 2 * self.head_dim_qk
            if self.sinks:
                n += H
        elif self.kind == "mla":
            n += self.q_lora_rank + self.kv_lora_rank  # q_a and kv_a RMSNorms
            if self.indexer_heads:
                n += 2 * self.indexer_dim  # indexer key LayerNorm
        else:
            conv_ch = 2 * self.lin_key_heads * self.lin_key_dim
            conv_ch += self.lin_value_heads * self.lin_value_dim
            n += conv_ch * self.conv_kernel  # depthwise causal conv
            n += 2 * self.lin_value_heads  # A_log and dt_bias
            n += self.lin_value_dim  # gated RMSNorm
        return n

    def attended(self, context: float) -> float:
        """Tokens one query attends to when ``context`` tokens precede it (itself included)."""
        if self.kind == "linear":
            return 0.0
        return context if self.window is None else min(context, float(self.window))

    def score_flops_per_pair(self, *, absorbed: bool) -> float:
        """FLOPs of QK^T and PV for one (query, key) pair summed over heads.

        Standard attention: 2·H·(d_qk + d_v) (Dao et al., FlashAttention-2, section 3.3
        counts 4·d per pair with d_qk = d_v = d). MLA in its absorbed (decode) form attends in
        the latent space: keys of width kv_lora + rope and values of width kv_lora
        (DeepSeek-V2, appendix C).
        """
        if self.kind == "linear":
            return 0.0
        if self.kind == "mla" and absorbed:
            return 2.0 * self.n_heads * (2 * self.kv_lora_rank + self.rope_dim)
        return 2.0 * self.n_heads * (self.head_dim_qk + self.head_dim_v)

    def state_flops_per_token(self) -> float:
        """Linear attention: FLOPs to update and read the per-head d_k x d_v state."""
        if self.kind != "linear":
            return 0.0
        # delta rule: S <- S(I - b k k^T) + b v k^T, o = S q: about 3 rank-1 passes of 2·d_k·d_v.
        return 6.0 * self.lin_value_heads * self.lin_key_dim * self.lin_value_dim

    def kv_elems_per_token(self) -> int:
        """Elements cached per token (K and V, or MLA latent + rotary key)."""
        if self.kind == "gqa":
            return self.n_kv_heads * (self.head_dim_qk + self.head_dim_v)
        if self.kind == "mla":
            return self.kv_lora_rank + self.rope_dim
        return 0

    def state_elems(self) -> int:
        """Fixed-size state per sequence (linear attention: delta-rule state + conv buffer)."""
        if self.kind != "linear":
            return 0
        ssm = self.lin_value_heads * self.lin_key_dim * self.lin_value_dim
        conv_ch = 2 * self.lin_key_heads * self.lin_key_dim
        conv_ch += self.lin_value_heads * self.lin_value_dim
        return ssm + conv_ch * max(self.conv_kernel - 1, 0)


@dataclass(frozen=True, slots=True)
class Mlp:
    """A gated (SwiGLU) feed-forward block: dense, or routed experts plus shared experts.

    ``intermediate`` is the dense width, or the width of one routed expert. Shared experts are
    given by their total width ``shared_intermediate`` (DeepSeek: n_shared x moe width).
    """

    kind: Literal["dense", "moe"]
    intermediate: int
    n_experts: int = 0
    top_k: int = 0
    shared_intermediate: int = 0
    bias: bool = False
    router_bias: bool = False
    shared_gate: bool = False

    def expert_params(self, hidden: int) -> int:
        """Matmul weights of one routed expert (or of the dense FFN): gate, up and down."""
        return 3 * hidden * self.intermediate

    def shared_params(self, hidden: int) -> int:
        return 3 * hidden * self.shared_intermediate

    def router_params(self, hidden: int) -> int:
        return hidden * self.n_experts if self.kind == "moe" else 0

    def matmul_params(self, hidden: int) -> tuple[int, int]:
        """(total, active per token) matmul weights of the block."""
        if self.kind == "dense":
            p = self.expert_params(hidden)
            return p, p
        experts = self.expert_params(hidden)
        fixed = self.shared_params(hidden) + self.router_params(hidden)
        if self.shared_gate:
            fixed += hidden
        return fixed + self.n_experts * experts, fixed + self.top_k * experts

    def other_params(self, hidden: int) -> tuple[int, int]:
        """(total, active) biases: gate/up (2·I) and down (d) per expert; router bias."""
        per_expert = (2 * self.intermediate + hidden) if self.bias else 0
        router = self.n_experts if self.router_bias else 0
        if self.kind == "dense":
            return per_expert, per_expert
        return self.n_experts * per_expert + router, self.top_k * per_expert + router


@dataclass(frozen=True, slots=True)
class Layer:
    """One decoder layer: attention then feed-forward, with two RMSNorms."""

    attn: Attention
    mlp: Mlp


@dataclass(frozen=True, slots=True)
class ParamCount:
    """Parameters of a model, in units (not billions)."""

    total: int
    active: int
    embedding: int
    lm_head: int

    @property
    def non_embedding(self) -> int:
        return self.total - self.embedding - self.lm_head


@dataclass(frozen=True, slots=True)
class ModelArch:
    """The architecture of a decoder-only language model.

    ``groups`` lists (layer, count) in order; layers of one group are identical.
    ``mtp_layers`` are multi-token-prediction modules used only for speculative decoding; they are
    not counted in :meth:`params` (published counts exclude them, e.g. DeepSeek-V3's 671B).
    """

    id: str
    name: str
    hidden: int
    vocab: int
    groups: tuple[tuple[Layer, int], ...]
    tied_embeddings: bool = False
    mtp_layers: int = 0
    max_context: int = 0
    native_dtype: str = "bf16"

    @property
    def n_layers(self) -> int:
        return sum(n for _, n in self.groups)

    @property
    def is_moe(self) -> bool:
        return any(layer.mlp.kind == "moe" for layer, _ in self.groups)

    @property
    def layers(self) -> tuple[Layer, ...]:
        """Every layer in order (groups expanded)."""
        return tuple(layer for layer, n in self.groups for _ in range(n))

    def params(self) -> ParamCount:
        """Total and active (per token) parameters, excluding MTP modules.

        Active counts every weight a token touches: attention, shared experts, the router,
        top-k routed experts, norms, its embedding row's table (as published counts do) and the
        LM head.
        """
        d = self.hidden
        total = active = 0
        for layer, n in self.groups:
            a = layer.attn.matmul_params(d) + layer.attn.other_params(d) + 2 * d
            m_tot, m_act = layer.mlp.matmul_params(d)
            o_tot, o_act = layer.mlp.other_params(d)
            total += n * (a + m_tot + o_tot)
            active += n * (a + m_act + o_act)
        emb = self.vocab * d
        head = 0 if self.tied_embeddings else self.vocab * d
        total += emb + head + d  # final norm
        active += emb + head + d
        return ParamCount(total=total, active=active, embedding=emb, lm_head=head)

    def matmul_params_per_token(self) -> float:
        """Active GEMM weights one token multiplies, LM head excluded."""
        d = self.hidden
        return float(
            sum(n * (lay.attn.matmul_params(d) + lay.mlp.matmul_params(d)[1]) for lay, n in self.groups)
        )

    def forward_flops_per_token(self, context: float) -> float:
        """FLOPs of one forward pass for a token at position ``context`` (1-based).

        2 x active matmul parameters (Kaplan et al., arXiv:2001.08361, table 1) plus the
        attention scores over the attended tokens, plus the LM head for the logits.
        """
        attn = sum(
            n * (lay.attn.score_flops_per_pair(absorbed=False) * lay.attn.attended(context)
                 + lay.attn.state_flops_per_token())
            for lay, n in self.groups
        )
        return 2.0 * self.matmul_params_per_token() + attn + 2.0 * self.vocab * self.hidden

    def prefill_flops(self, prompt: int) -> float:
        """FLOPs to prefill a prompt of ``prompt`` tokens (causal: token i sees i tokens)."""
        d_pairs = 0.0
        for lay, n in self.groups:
            pairs = _causal_pairs(prompt, lay.attn.window) if lay.attn.kind != "linear" else 0.0
            d_pairs += n * (lay.attn.score_flops_per_pair(absorbed=False) * pairs
                            + lay.attn.state_flops_per_token() * prompt)
        # logits only for the last token of the prompt
        return 2.0 * self.matmul_params_per_token() * prompt + d_pairs + 2.0 * self.vocab * self.hidden

    def decode_flops(self, context: float) -> float:
        """FLOPs to generate one token with ``context`` tokens cached (MLA absorbed)."""
        attn = sum(
            n * (lay.attn.score_flops_per_pair(absorbed=True) * lay.attn.attended(context + 1)
                 + lay.attn.state_flops_per_token())
            for lay, n in self.groups
        )
        return 2.0 * self.matmul_params_per_token() + attn + 2.0 * self.vocab * self.hidden

    def kv_elems(self, context: float) -> float:
        """KV-cache elements held for one sequence of ``context`` tokens, all layers.

        Sliding-window layers keep at most ``window`` tokens; linear-attention layers keep a
        fixed state instead.
        """
        return float(
            sum(n * (lay.attn.kv_elems_per_token() * lay.attn.attended(context) + lay.attn.state_elems())
                for lay, n in self.groups)
        )

    def kv_elems_per_token_full(self) -> int:
        """KV elements per token summed over layers, ignoring windows (the upper bound)."""
        return sum(n * lay.attn.kv_elems_per_token() for lay, n in self.groups)


def _causal_pairs(q: int, window: int | None) -> float:
    """(query, key) pairs in causal attention over a prompt of q tokens, with a window."""
    if window is None or window >= q:
        return q * (q + 1) / 2.0
    w = float(window)
    return w * (w + 1) / 2.0 + (q - w) * w
