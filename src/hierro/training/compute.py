"""Training compute: FLOPs of a run, and compute-optimal model and data sizes.

Model FLOPs of training, per token (Kaplan et al. 2020, arXiv:2001.08361, section 2.1;
Narayanan et al. 2021, arXiv:2104.04473, eq. 3): the backward pass costs twice the forward
(one GEMM for the input gradient, one for the weight gradient), so

    C_token = 3 · F_fwd,    F_fwd = 2·N_matmul + F_attn(s) + 2·V·h

where N_matmul are the active GEMM weights a token multiplies (active parameters for MoE, as
DeepSeek-V3 and Epoch count), 2·V·h is the LM head (plus, for a model trained with multi-token
prediction, its MTP modules: :func:`mtp_forward_flops_per_token`) and F_attn the QK^T and PV products over
the tokens a query attends to in a causal sequence of length s (PaLM, Chowdhery et al. 2022,
arXiv:2204.02311, appendix B, counts 6·N + 12·L·H·Q·T per token for full, non-causal
attention; a causal mask halves the pairs, which is what we count). The familiar C = 6·N·D
(Kaplan 2020; Hoffmann 2022) is the same without attention; both are reported.

Compute-optimal sizes (Hoffmann et al. 2022, arXiv:2203.15556, "Chinchilla"): parameters and
tokens grow in equal proportion with compute, with D ≈ 20·N (Chinchilla: 70B parameters on 1.4T
tokens). With C = 6·N·D and D = r·N: N = sqrt(C / (6·r)), D = r·N.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hierro.errors import HierroError
from hierro.specs import ModelArch

__all__ = [
    "CHINCHILLA_TOKENS_PER_PARAM",
    "TOKENS_PER_PARAM",
    "ComputeOptimal",
    "compute_optimal",
    "mtp_forward_flops_per_token",
    "six_nd_flops",
    "train_flops",
    "train_flops_per_token",
]

CHINCHILLA_TOKENS_PER_PARAM = 20.0
"""Hoffmann et al. 2022 (arXiv:2203.15556): Chinchilla 70B trained on 1.4T tokens."""

TOKENS_PER_PARAM: dict[str, float] = {
    "chinchilla": CHINCHILLA_TOKENS_PER_PARAM,
    # Llama 3 (Grattafiori et al. 2024, arXiv:2407.21783): 405B on 15.6T tokens; 8B/70B on ~15T.
    "llama-3-405b": 15.6e12 / 405e9,
    "llama-3-70b": 15e12 / 70e9,
    "llama-3-8b": 15e12 / 8e9,
}
"""Tokens per parameter: compute-optimal (Chinchilla) and the overtrained ratios of published runs
(inference-optimal models are trained far past Chinchilla to make them cheaper to serve)."""


def _forward_flops_per_seq(model: ModelArch, seq_len: int) -> tuple[float, float]:
    """(GEMM + LM-head, attention-score) forward FLOPs of one causal sequence of ``seq_len``."""
    gemm = (2.0 * model.matmul_params_per_token() + 2.0 * model.vocab * model.hidden) * seq_len
    # prefill_flops counts the logits of the last token only; take the scores out of it
    attn = model.prefill_flops(seq_len) - 2.0 * model.matmul_params_per_token() * seq_len
    attn -= 2.0 * model.vocab * model.hidden
    return gemm, attn


def mtp_forward_flops_per_token(model: ModelArch, seq_len: int) -> tuple[float, float]:
    """(GEMM + LM-head, attention-score) forward FLOPs per token of the multi-token-prediction
    modules trained with the model.

    Each MTP module (DeepSeek-V3, arXiv:2412.19437 §2.2) projects the concatenation of the
    normed hidden state and the next token's embedding (a 2h x h GEMM), runs one transformer
    block (here of the model's last layer's shape) and the shared output head; the embedding is
    shared and costs no GEMM.
    """
    if model.mtp_layers == 0:
        return 0.0, 0.0
    lay = model.groups[-1][0]
    one = ModelArch(id=f"{model.id}-mtp", name="MTP block", hidden=model.hidden, vocab=model.vocab,
                    groups=((lay, 1),))
    gemm, attn = _forward_flops_per_seq(one, seq_len)
    proj = 2.0 * 2 * model.hidden * model.hidden * seq_len
    return model.mtp_layers * (gemm + proj) / seq_len, model.mtp_layers * attn / seq_len


def train_flops_per_token(model: ModelArch, seq_len: int) -> float:
    """Model FLOPs (forward + backward, no recomputation) per trained token at ``seq_len``,
    multi-token-prediction modules included."""
    if seq_len < 1:
        raise HierroError(f"sequence length must be >= 1, got {seq_len}")
    gemm, attn = _forward_flops_per_seq(model, seq_len)
    mtp_gemm, mtp_attn = mtp_forward_flops_per_token(model, seq_len)
    return 3.0 * ((gemm + attn) / seq_len + mtp_gemm + mtp_attn)


def train_flops(model: ModelArch, tokens: float, seq_len: int) -> float:
    """Model FLOPs to train on ``tokens`` tokens in sequences of ``seq_len`` (attention included)."""
    return train_flops_per_token(model, seq_len) * tokens


def six_nd_flops(model: ModelArch, tokens: float) -> float:
    """C = 6·N·D with N the active parameters (Kaplan 2020; Hoffmann 2022; Epoch's convention)."""
    return 6.0 * model.params().active * tokens


@dataclass(frozen=True, slots=True)
class ComputeOptimal:
    """Parameters and tokens for a compute budget at a tokens-per-parameter ratio."""

    flops: float
    tokens_per_param: float
    params: float
    tokens: float


def compute_optimal(flops: float, tokens_per_param: float = CHINCHILLA_TOKENS_PER_PARAM) -> ComputeOptimal:
    """N and D with C = 6·N·D and D = r·N: N = sqrt(C / 6r) (Hoffmann 2022, D ≈ 20·N)."""
    if flops <= 0 or tokens_per_param <= 0:
        raise HierroError(f"compute and tokens per parameter must be > 0, got {flops:g}, {tokens_per_param:g}")
    n = math.sqrt(flops / (6.0 * tokens_per_param))
    return ComputeOptimal(flops=flops, tokens_per_param=tokens_per_param, params=n, tokens=tokens_per_param * n)
