"""Step time and MFU of one training step under a layout.

    t_step = m · t_mb + t_bubble + t_dp,exposed + t_optimizer

t_mb is one micro-batch's forward and backward on the busiest pipeline stage: its FLOPs at the
peak times an achievable efficiency, plus the communication on its critical path. The bubble is
(p-1)/v micro-batches for 1F1B with v interleaved stages (Narayanan et al. 2021,
arXiv:2104.04473, §2.2) and (p/2-1)·(F&B + B - 3W) for DualPipe (DeepSeek-V3, arXiv:2412.19437
table 2; F, B and W the stage's forward, backward and weight-gradient times, F&B = F + B).
Stages: the first holds the embedding, the last the head and any multi-token-prediction modules
(:func:`hierro.training.compute.mtp_forward_flops_per_token`); under DualPipe a rank runs stage
i and stage p-1-i, one micro-batch each.

Compute. Each op class runs at its own peak and achieved fraction of it:

- linear layers (attention projections, dense MLPs, shared and routed experts) at the GEMM
  precision's peak (``dtype``: fp8 doubles the Hopper tensor-core peak) times ``compute``;
  recomputation adds the forward GEMMs again (full) or MLA's up-projections (selective);
- FP8 GEMMs with fine-grained (block) scaling (DeepSeek-V3, arXiv:2412.19437 §3.3.2: 1x128
  activation tiles and 128x128 weight blocks, each 128-element partial sum scaled and promoted to
  FP32 on the CUDA cores) at ``fp8_block`` times the per-tensor-scaled rate: the promotion and the
  per-tile scales cost tensor-core issue slots that one scale per tensor does not. Fitted on the
  one controlled A/B measurement published (:data:`FP8_BLOCK_EFFICIENCY`);
- the attention core (QK^T, PV) and the LM head in bf16 at the bf16 peak times ``compute``, the
  attention backward at 2.5x its forward (FlashAttention recomputes the scores); FP8
  training keeps the embedding, output head, gating, normalisation and attention operators in
  BF16 or FP32 (DeepSeek-V3, arXiv:2412.19437 §3.3.1; Transformer Engine's FP8 recipes likewise
  quantise only the linear layers).

Communication, alpha-beta (Hockney) with ring collectives (Thakur, Rabenseifner and Gropp 2005):
an all-gather or reduce-scatter of M bytes over g ranks moves (g-1)/g · M per device, an
all-reduce twice that; time = steps · alpha + bytes / (link · e_link).

- TP with sequence parallelism: per layer two all-gathers and two reduce-scatters of the
  b·s·h activations forward and again backward (Korthikanti et al. 2022, arXiv:2205.05198 §4.2.2),
  on the scale-up fabric when tp fits its domain. A share ``tp_overlap`` hides behind the GEMMs
  it is chunked with (MegaScale fuses the all-gather and reduce-scatter into the adjacent
  linear layers, Jiang et al. 2024, arXiv:2402.15627 §3.2; Transformer Engine's userbuffers).
- CP: keys and values all-gathered forward and their gradients reduce-scattered backward
  (Llama 3, arXiv:2407.21783 §3.3.2); not overlapped.
- EP: a dispatch and a combine all-to-all per MoE layer forward and again backward. Within the
  scale-up domain every copy of a token to a remote expert crosses the fabric once; across nodes
  a token goes once to each remote node that holds one of its top-k experts and is forwarded
  over the scale-up fabric there (DeepSeek-V3 §3.2.2; DeepEP), so the scale-out bytes per token
  are the expected number of distinct remote nodes, (n-1)·(1-(1-1/n)^k) for n nodes and uniform
  routing, times h. Dispatch (and its gradient's counterpart) travels in fp8 under fp8 training,
  with one fp32 scale per 128 elements under block scaling, combine in bf16 (DeepSeek-V3 §3.3.2). A share ``ep_overlap`` hides behind compute (DeepSeek-V3's
  DualPipe hides all of it, §3.2.1), at the price of ``comm_sm_share`` of the SMs running the
  communication kernels instead of compute (20 of 132 on H800, §3.2.2).
- PP: one activation send forward and one gradient backward per virtual stage and micro-batch; a
  share ``pp_overlap`` overlaps compute (MegaScale decouples send and receive, §3.2).
- DP: gradients reduce-scattered in fp32 and weights all-gathered in bf16 (ZeRO 1-2, Megatron
  distributed optimizer), an all-reduce without ZeRO, weights gathered for each micro-batch's
  forward and backward under ZeRO-3 (Rajbhandari et al. 2020 §7). The reduction of the last
  micro-batch's gradients overlaps its backward and the gather the next step's first forward, so
  what exceeds one micro-batch's compute is exposed, and never less than ``dp_exposed_min``.

MFU = model FLOPs per step / (t_step · devices · peak_bf16) (Chowdhery et al. 2022, PaLM,
appendix B; the dense bf16 peak, as Llama 3 and DeepSeek-V3 quote it, for fp8 runs too), model
FLOPs without recomputation (:func:`hierro.training.compute.train_flops_per_token`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from hierro.errors import HierroError
from hierro.specs import Accelerator, Layer, ModelArch
from hierro.specs.models import model_file
from hierro.training.compute import mtp_forward_flops_per_token, train_flops_per_token
from hierro.training.memory import (
    TrainMemory,
    device_params,
    optimizer_bytes_per_param,
    stage_layers,
    train_memory,
)
from hierro.training.parallel import Layout
from hierro.units import DTYPE_BYTES, MICRO

__all__ = [
    "FP8_BLOCK_EFFICIENCY",
    "TRAIN_COMPUTE_EFFICIENCY",
    "StepTime",
    "TrainEfficiency",
    "all_to_all_s",
    "micro_batches",
    "node_limit",
    "step_time",
]

TRAIN_COMPUTE_EFFICIENCY = 0.561
"""Achieved fraction of the peak in a training step's kernels (linear layers, attention, LM
head), before bubbles and exposed communication. One value shared by all hardware, precisions
and model families, fitted on one published anchor (Llama 3 405B on 8,192 H100s at its published
TP8 CP1 PP16 layout, 43% BF16 MFU)
by :func:`hierro.training.anchors.fit_compute_efficiency`; the other anchors (another scale,
another hardware family and stack, an MoE model in FP8, a dense model in FP8) check it
(``tests/test_training_anchors.py``)."""

FP8_BLOCK_EFFICIENCY = 0.922
"""Rate of FP8 GEMMs with DeepSeek-V3's block scaling (1x128 activations, 128x128 weights)
relative to per-tensor scaling, on Hopper. Fitted by
:func:`hierro.training.anchors.fit_fp8_block_efficiency` on the one published A/B pair that
changes nothing else: DeepSeek-V3 on 1,024 H100s with Megatron-Bridge (NeMo 25.09, TP2 PP8 VP4
EP64, same layout and software), 338 model TFLOP/s per GPU with per-tensor current scaling and
330 with the blockwise recipe, "which match those used in the original DeepSeekV3 pre-training"
(NVIDIA-NeMo/Megatron-Bridge docs/performance-summary.md, 25.09 DGX-H100 table; measured)."""


@dataclass(frozen=True, slots=True)
class TrainEfficiency:
    """The documented, non-ideal parameters of the step model (the software stack's)."""

    compute: float = TRAIN_COMPUTE_EFFICIENCY
    link: float = 0.8
    """Share of link bandwidth a large collective reaches (NCCL bus bandwidth is ~80% of the
    NVLink or NIC line rate in nccl-tests; an estimate)."""
    alpha_up_s: float = 5 * MICRO
    alpha_out_s: float = 20 * MICRO
    """Latency per ring step on the scale-up and scale-out fabrics (estimates)."""
    tp_overlap: float = 0.0
    """Share of the TP collectives hidden behind the linear layers (0: Megatron without
    --tp-comm-overlap; 1: MegaScale)."""
    ep_overlap: float = 0.0
    """Share of the expert all-to-all hidden behind compute (0: Megatron without overlap;
    1: DeepSeek-V3 DualPipe)."""
    pp_overlap: float = 0.0
    """Share of the pipeline sends hidden behind compute (1: MegaScale)."""
    comm_sm_share: float = 0.0
    """Share of the SMs that run communication kernels while the all-to-all overlaps compute
    (DeepSeek-V3: 20 of 132 H800 SMs)."""
    dp_exposed_min: float = 0.05
    """Share of the data-parallel traffic that stays exposed however much compute can hide it."""
    fp8_block: float = FP8_BLOCK_EFFICIENCY
    """FP8 GEMM rate under block scaling relative to per-tensor scaling."""


def micro_batches(global_batch_seqs: int, lay: Layout) -> int:
    """Micro-batches per pipeline per step: ceil(B / (dp · b))."""
    return max(1, -(-global_batch_seqs // (lay.dp * lay.micro_batch)))


@dataclass(frozen=True, slots=True)
class StepTime:
    """One training step: its time, what it is made of, its MFU and memory."""

    layout: Layout
    micro_batches: int
    tokens_per_step: float
    step_s: float
    compute_s: float
    bubble_s: float
    tp_comm_s: float
    cp_comm_s: float
    ep_comm_s: float
    pp_comm_s: float
    dp_comm_s: float
    optimizer_s: float
    model_flops_per_step: float
    mfu: float
    memory: TrainMemory

    @property
    def tokens_per_s(self) -> float:
        return self.tokens_per_step / self.step_s


def _coll_s(bytes_: float, steps: int, scale_up: bool, acc: Accelerator, eff: TrainEfficiency) -> float:
    if bytes_ <= 0.0:
        return 0.0
    bw = acc.scale_up_bw_Bps if scale_up and acc.scale_up_bw_Bps > 0 else acc.scale_out_bw_Bps
    alpha = eff.alpha_up_s if scale_up else eff.alpha_out_s
    return steps * alpha + bytes_ / (bw * eff.link)


def _ring(g: int) -> float:
    return (g - 1) / g


def all_to_all_s(
    bytes_: float, top_k: float, ep: int, stride: int, domain: int, acc: Accelerator, e: TrainEfficiency,
    node_limit: int | None = None,
) -> float:
    """Seconds of one all-to-all in which a device sends ``bytes_`` (its tokens times top_k
    copies of h elements) to the experts of ``ep`` ranks spaced ``stride`` devices apart.

    Within one scale-up domain each remote copy crosses the fabric once; across n nodes each
    token crosses the scale-out network once per distinct remote node among its top-k experts
    and is forwarded over the scale-up fabric there (DeepSeek-V3 §3.2.2); the two fabrics run in
    parallel. With uniform routing over M reachable nodes a token's k experts fall on
    M·(1-(1-1/M)^k) distinct nodes, (n-1)/n of them remote; M = n, or the node limit of
    node-limited routing (DeepSeek-V3 §2.1.2: at most 4 nodes per token).
    """
    per_node = max(1, domain // stride)
    nodes = max(1, -(-ep // per_node))
    up = bytes_ * _ring(ep)
    up_s = up / ((acc.scale_up_bw_Bps or acc.scale_out_bw_Bps) * e.link) + (ep - 1) * e.alpha_up_s
    if nodes == 1:
        return up_s
    reach = min(nodes, node_limit) if node_limit else nodes
    distinct = reach * (1.0 - float((1.0 - 1.0 / reach) ** top_k))
    remote = distinct * (nodes - 1) / nodes / top_k  # share of a token's copies
    out_s = bytes_ * remote / (acc.scale_out_bw_Bps * e.link) + (nodes - 1) * e.alpha_out_s
    return max(up_s, out_s)


def node_limit(model: ModelArch, ep: int, per_node: int) -> int | None:
    """Most nodes a token's experts may span under group-limited routing, or None.

    DeepSeek-V3 routes each token to at most ``topk_group`` of ``n_group`` expert groups
    (config.json; arXiv:2412.19437 §2.1.2 and §3.2.2: 8 groups, one per node of its EP64, at most
    4 nodes per token); with the groups laid over the EP ranks in order, a group spans
    max(1, nodes/n_group) nodes.
    """
    limit = _route_groups(model.id)
    if limit is None:
        return None
    groups, top = limit
    nodes = max(1, -(-ep // max(per_node, 1)))
    return min(nodes, top * max(1, nodes // groups))


@cache
def _route_groups(model_id: str) -> tuple[int, int] | None:
    """(n_group, topk_group) of a catalog model's config.json, if it limits routing."""
    try:
        cfg = model_file(model_id).config
    except HierroError:
        return None
    groups, top = cfg.get("n_group"), cfg.get("topk_group")
    if not isinstance(groups, int) or not isinstance(top, int) or groups < 1 or not 0 < top < groups:
        return None
    return groups, top


@dataclass(frozen=True, slots=True)
class _Stage:
    """One micro-batch's compute on a pipeline stage: forward, backward and weight-gradient
    seconds, of which linear layers, and its transformer layers."""

    layers: float
    fwd: float
    bwd: float
    wgrad: float
    linear: float

    @property
    def total(self) -> float:
        return self.fwd + self.bwd


def step_time(
    model: ModelArch,
    lay: Layout,
    acc: Accelerator,
    scale_up_domain: int,
    seq_len: int,
    global_batch_seqs: int,
    dtype: str = "bf16",
    eff: TrainEfficiency | None = None,
) -> StepTime:
    """The time, MFU and memory of one step (the layout is assumed valid: see check_layout)."""
    e = eff or TrainEfficiency()
    L, h, s, b, t = model.n_layers, model.hidden, seq_len, lay.micro_batch, lay.tp
    m = micro_batches(global_batch_seqs, lay)
    tok_mb = b * s  # tokens of one micro-batch (a pipeline's slice of the batch)
    dev = tok_mb / (t * lay.cp)  # of which one device holds (SP and CP)

    # forward FLOPs per token of one layer (linear layers, attention scores), of the LM head,
    # of the MTP modules and of the MLA up-projections (recomputed under selective)
    moe = [(lay_.mlp, n) for lay_, n in model.groups if lay_.mlp.kind == "moe"]
    gemm_l = 2.0 * model.matmul_params_per_token() / L
    attn_l = (model.prefill_flops(s) - 2.0 * model.matmul_params_per_token() * s
              - 2.0 * model.vocab * h) / (s * L)
    head = 2.0 * model.vocab * h
    mtp_gemm, mtp_attn = mtp_forward_flops_per_token(model, s)
    up_l = sum(n * _up_projection_params(lay_) for lay_, n in model.groups) * 2.0 / L
    sl = stage_layers(model, lay.pp, lay.split_ends)
    full = lay.recompute == "full"
    # FlashAttention's backward recomputes the scores: 2.5x the forward (Dao 2023,
    # arXiv:2307.08691 §4.1); full recomputation runs the forward once more
    attn_bwd = 2.5 + (1.0 if full else 0.0)
    recomp_gemm = gemm_l if full else (up_l if lay.recompute == "selective" else 0.0)
    peak, peak_bf16 = acc.flops(dtype), acc.flops("bf16")
    block = dtype == "fp8" and lay.fp8_scaling == "block"
    gemm_rate = peak * e.compute * (e.fp8_block if block else 1.0)  # linear layers, FLOP/s
    sm_left = 1.0 - (e.comm_sm_share if e.ep_overlap > 0 and lay.ep > 1 else 0.0)
    k = dev / sm_left

    def stage(n: float, with_head: bool, with_mtp: bool) -> _Stage:
        """One micro-batch through ``n`` layers (and the head, and the MTP modules)."""
        lin_f = n * gemm_l / gemm_rate
        att_f = n * attn_l / (peak_bf16 * e.compute)
        head_f = head / (peak_bf16 * e.compute) if with_head else 0.0
        if with_mtp:  # the MTP block's GEMMs at the GEMM peak, its head's share at bf16
            lin_f += (mtp_gemm - model.mtp_layers * head) / gemm_rate
            head_f += model.mtp_layers * head / (peak_bf16 * e.compute)
            att_f += mtp_attn / (peak_bf16 * e.compute)
        recomp = n * recomp_gemm / gemm_rate
        fwd = lin_f + att_f + head_f
        wgrad = lin_f + head_f
        bwd = 2.0 * (lin_f + head_f) + attn_bwd * att_f + recomp
        layers = n + (model.mtp_layers if with_mtp else 0)
        return _Stage(layers, k * fwd, k * bwd, k * wgrad, k * (3.0 * lin_f + recomp))

    if lay.pp == 1:
        busy = stage(L, True, True)
    else:
        last_core = sl.last - model.mtp_layers
        first, mid, last = stage(sl.first, False, False), stage(sl.middle, False, False), \
            stage(last_core, True, True)
        if lay.schedule == "dualpipe":  # rank 0 runs stage 0 and stage p-1, one micro-batch each
            ends = _Stage(*(0.5 * (getattr(first, f) + getattr(last, f))
                            for f in ("layers", "fwd", "bwd", "wgrad", "linear")))
            busy = max(ends, mid, key=lambda x: x.total)
        else:
            busy = max(first, mid, last, key=lambda x: x.total)
    compute_mb, linear_mb, n_busy = busy.total, busy.linear, busy.layers

    act_b = DTYPE_BYTES["bf16"]
    fwd_passes = 2 if full else 1
    tp_s = 0.0
    if t > 1:  # 2 AG + 2 RS of b·(s/cp)·h forward, the same backward (and the recomputed forward)
        per = 4 * _ring(t) * (tok_mb / lay.cp) * h * act_b
        tp_total = n_busy * (fwd_passes + 1) * _coll_s(per, 4 * (t - 1), t <= scale_up_domain, acc, e)
        tp_s = tp_total - min(tp_total * e.tp_overlap, linear_mb)
    cp_s = 0.0
    if lay.cp > 1:
        kv = sum(n * lay_.attn.kv_elems_per_token() for lay_, n in model.groups) / L
        per = _ring(lay.cp) * tok_mb * kv * act_b / t
        cp_s = n_busy * (fwd_passes + 1) * _coll_s(per, lay.cp - 1, t * lay.cp <= scale_up_domain, acc, e)
    ep_s = 0.0
    if lay.ep > 1 and moe:
        frac = sum(n for _, n in moe) / L
        top_k = sum(mlp.top_k * n for mlp, n in moe) / sum(n for _, n in moe)
        disp_b = float(DTYPE_BYTES["fp8"]) if dtype == "fp8" else float(act_b)
        if block:  # one fp32 scale per 1x128 tile travels with the fp8 activations
            disp_b += 4.0 / 128
        stride = t * lay.cp
        limit = node_limit(model, lay.ep, scale_up_domain // stride)
        pair = sum(all_to_all_s(dev * top_k * h * by, top_k, lay.ep, stride, scale_up_domain, acc, e,
                                limit) for by in (disp_b, act_b))
        # dispatch and combine forward; their gradients backward; again for a recomputed forward
        comm = n_busy * frac * (fwd_passes + 1) * pair
        ep_s = comm - min(comm * e.ep_overlap, compute_mb)
    pp_s = 0.0
    if lay.pp > 1:
        per = dev * h * act_b
        pp_s = (1.0 - e.pp_overlap) * 2 * lay.vpp * _coll_s(
            per, 1, t * lay.cp * lay.dp < scale_up_domain, acc, e)
    t_mb = compute_mb + tp_s + cp_s + ep_s + pp_s
    if lay.schedule == "dualpipe":
        # DeepSeek-V3 table 2: (PP/2 - 1)·(F&B + B - 3W), with an overlapped forward-and-backward
        # chunk taking F + B of compute; scaled like the micro-batch for its communication
        bubble = (lay.pp / 2 - 1) * (busy.fwd + 2 * busy.bwd - 3 * busy.wgrad) * t_mb / compute_mb
    else:  # (p-1)/v micro-batch slots (Narayanan 2021 §2.2)
        bubble = (lay.pp - 1) / lay.vpp * t_mb

    dense, expert = device_params(model, lay, first=True)
    r_d, r_e = lay.dp * lay.cp, max(lay.dp * lay.cp // lay.ep, 1)
    dp_up = t * lay.cp * lay.dp <= scale_up_domain
    dp_bytes = 0.0
    # Gradients are reduced once per step, after the last micro-batch's backward, for every
    # ZeRO stage. Caveat: ZeRO-2/3 hold only a shard of the gradients, which DeepSpeed's stage 2
    # and FSDP without no_sync reconcile by reduce-scattering every micro-batch's gradients (m
    # times these bytes); modelled that way, Llama 3's published layout (ZeRO-2, 32 fp32
    # reduce-scatters a step over 400 Gb/s) is network-bound and its 43% MFU needs a compute
    # efficiency of 0.79. How Llama 3 reconciled sharded fp32 gradients with its micro-batches
    # is not published (arXiv:2407.21783 §3.3.2, §3.3.4).
    for p_, r in ((dense, r_d), (expert, r_e)):
        if r == 1:
            continue
        grads = 4.0 * p_ * _ring(r)
        gather = 2.0 * p_ * _ring(r)
        dp_bytes += 2 * grads if lay.zero == 0 else grads + gather
        if lay.zero >= 3:
            dp_bytes += 2 * (m - 1) * gather  # re-gathered for each micro-batch, both passes
    # ring steps: one reduce-scatter and one gather, plus two gathers per layer and micro-batch
    # under ZeRO-3 (each pays its latency)
    n_coll = 2 + (2 * m * sl.first if lay.zero >= 3 else 0)
    dp_total = _coll_s(dp_bytes, n_coll * (r_d - 1), dp_up, acc, e) if dp_bytes else 0.0
    window = compute_mb * (m if lay.zero >= 3 else 1)
    dp_s = max(dp_total - window, e.dp_exposed_min * dp_total)

    shard = (dense / r_d + expert / r_e) if lay.zero >= 1 else dense + expert
    optimizer_s = shard * (2 * adam_state_rw_bytes(lay.moments)) / acc.hbm_bw_Bps

    step = m * t_mb + bubble + dp_s + optimizer_s
    tokens = float(m * lay.dp * tok_mb)
    flops = tokens * train_flops_per_token(model, s)
    mfu = flops / (step * lay.devices * peak_bf16)
    mem = train_memory(model, lay, s, m, acc.hbm_bytes, dtype)
    slots = m + bubble / t_mb  # micro-batch slots the communication is paid in
    return StepTime(
        layout=lay, micro_batches=m, tokens_per_step=tokens, step_s=step,
        compute_s=m * compute_mb, bubble_s=bubble,
        tp_comm_s=slots * tp_s, cp_comm_s=slots * cp_s, ep_comm_s=slots * ep_s, pp_comm_s=slots * pp_s,
        dp_comm_s=dp_s, optimizer_s=optimizer_s, model_flops_per_step=flops, mfu=mfu, memory=mem,
    )


def _up_projection_params(layer: Layer) -> float:
    """MLA's up-projection weights (q_b, kv_b), recomputed under selective recomputation."""
    at = layer.attn
    if at.kind != "mla":
        return 0.0
    nope = at.head_dim_qk - at.rope_dim
    q_b = at.q_lora_rank * at.n_heads * at.head_dim_qk if at.q_lora_rank else 0
    return float(q_b + at.kv_lora_rank * at.n_heads * (nope + at.head_dim_v))


ADAM_STATE_RW_BYTES = 4.0 + 4.0 + 4.0 + 4.0 + 2.0
"""Bytes per parameter the optimizer step reads (and writes again): fp32 master, two fp32
moments, fp32 gradient, bf16 weight. A memory-bound pass at HBM bandwidth."""


def adam_state_rw_bytes(moments: str = "fp32") -> float:
    """:data:`ADAM_STATE_RW_BYTES` with the two moments in ``moments`` precision."""
    return optimizer_bytes_per_param(moments) + 4.0 + 2.0
