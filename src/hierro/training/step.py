"""Step time and MFU of one training step under a layout.

    t_step = (m + (p-1)/v) · t_mb + t_dp,exposed + t_optimizer

t_mb is one micro-batch's forward and backward on the busiest pipeline stage: its FLOPs at the
peak times an achievable efficiency, plus the communication on its critical path. The pipeline
bubble is (p-1)/(m+p-1) of the step for 1F1B and (p-1)/(v·m+p-1) with v interleaved stages
(Narayanan et al. 2021, arXiv:2104.04473, §2.2).

Communication, alpha-beta (Hockney) with ring collectives (Thakur, Rabenseifner and Gropp 2005):
an all-gather or reduce-scatter of M bytes over g ranks moves (g-1)/g · M per device, an
all-reduce twice that; time = steps · alpha + bytes / (link · e_link).

- TP with sequence parallelism: per layer two all-gathers and two reduce-scatters of the
  b·s·h activations forward and again backward (Korthikanti et al. 2022, arXiv:2205.05198 §4.2.2),
  on the scale-up fabric when tp fits its domain; not overlapped.
- CP: keys and values all-gathered forward and their gradients reduce-scattered backward
  (Llama 3, arXiv:2407.21783 §3.3.2); not overlapped.
- EP: a dispatch and a combine all-to-all of top_k·h per token forward and again backward; a
  share ``ep_overlap`` hides behind the micro-batch's compute (DeepSeek-V3's DualPipe hides all
  of it, arXiv:2412.19437 §3.2.1).
- PP: one activation send forward and one gradient backward per virtual stage and micro-batch.
- DP: gradients reduce-scattered in fp32 and weights all-gathered in bf16 (ZeRO 1-2, Megatron
  distributed optimizer), an all-reduce without ZeRO, weights gathered for each micro-batch's
  forward and backward under ZeRO-3 (Rajbhandari et al. 2020 §7). The reduction of the last
  micro-batch's gradients overlaps its backward and the gather the next step's first forward, so
  what exceeds one micro-batch's compute is exposed, and never less than ``dp_exposed_min``.

MFU = model FLOPs per step / (t_step · devices · peak) (Chowdhery et al. 2022, PaLM, appendix B),
model FLOPs without recomputation (:func:`hierro.training.compute.train_flops_per_token`).
"""

from __future__ import annotations

from dataclasses import dataclass

from hierro.specs import Accelerator, ModelArch
from hierro.training.compute import train_flops_per_token
from hierro.training.memory import TrainMemory, device_params, stage_layers, train_memory
from hierro.training.parallel import Layout
from hierro.units import DTYPE_BYTES, MICRO

__all__ = [
    "TRAIN_COMPUTE_EFFICIENCY",
    "StepTime",
    "TrainEfficiency",
    "micro_batches",
    "step_time",
]

TRAIN_COMPUTE_EFFICIENCY = 0.552
"""Achieved fraction of the dense peak in a training step's kernels (GEMMs and attention),
before bubbles and exposed communication. One value shared by all hardware, fitted on one
published anchor (Llama 3 405B on 8,192 H100s, 43% MFU) by
:func:`hierro.training.anchors.fit_compute_efficiency`; the other anchors check it (see
``tests/test_training_anchors.py``)."""


@dataclass(frozen=True, slots=True)
class TrainEfficiency:
    """The documented, non-ideal parameters of the step model."""

    compute: float = TRAIN_COMPUTE_EFFICIENCY
    link: float = 0.8
    """Share of link bandwidth a large collective reaches (NCCL bus bandwidth is ~80% of the
    NVLink or NIC line rate in nccl-tests; an estimate)."""
    alpha_up_s: float = 5 * MICRO
    alpha_out_s: float = 20 * MICRO
    """Latency per ring step on the scale-up and scale-out fabrics (estimates)."""
    ep_overlap: float = 0.0
    """Share of the expert all-to-all hidden behind compute (0: Megatron without overlap;
    1: DeepSeek-V3 DualPipe)."""
    dp_exposed_min: float = 0.05
    """Share of the data-parallel traffic that stays exposed however much compute can hide it."""


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

    # forward FLOPs per token of one layer (GEMM, attention scores) and of the LM head
    gemm_l = 2.0 * model.matmul_params_per_token() / L
    attn_l = (model.prefill_flops(s) - 2.0 * model.matmul_params_per_token() * s
              - 2.0 * model.vocab * h) / (s * L)
    head = 2.0 * model.vocab * h
    n_first, n_last = stage_layers(L, lay.pp)
    gemm_passes = {"none": 3.0, "selective": 3.0, "full": 4.0}[lay.recompute]
    attn_passes = 3.0 if lay.recompute == "none" else 4.0
    peak, peak_attn = acc.flops(dtype), acc.flops("bf16")

    def stage_compute(n: int, with_head: bool) -> float:
        g = n * gemm_l * gemm_passes + (3.0 * head if with_head else 0.0)
        a = n * attn_l * attn_passes
        return tok_mb / (t * lay.cp) * (g / (peak * e.compute) + a / (peak_attn * e.compute))

    c_first = stage_compute(n_first, lay.pp == 1)
    c_last = stage_compute(n_last, True) if lay.pp > 1 else c_first
    n_busy = n_first if c_first >= c_last else n_last
    compute_mb = max(c_first, c_last)

    act_b = DTYPE_BYTES["bf16"]
    fwd_passes = 2 if lay.recompute == "full" else 1
    tp_s = 0.0
    if t > 1:  # 2 AG + 2 RS of b·(s/cp)·h forward, the same backward (and the recomputed forward)
        per = 4 * _ring(t) * (tok_mb / lay.cp) * h * act_b
        tp_s = n_busy * (fwd_passes + 1) * _coll_s(per, 4 * (t - 1), t <= scale_up_domain, acc, e)
    cp_s = 0.0
    if lay.cp > 1:
        kv = sum(n * lay_.attn.kv_elems_per_token() for lay_, n in model.groups) / L
        per = _ring(lay.cp) * tok_mb * kv * act_b / t
        cp_s = n_busy * (fwd_passes + 1) * _coll_s(per, lay.cp - 1, t * lay.cp <= scale_up_domain, acc, e)
    ep_s = 0.0
    moe = [(lay_.mlp, n) for lay_, n in model.groups if lay_.mlp.kind == "moe"]
    if lay.ep > 1 and moe:
        frac = sum(n for _, n in moe) / L
        top_k = sum(mlp.top_k * n for mlp, n in moe) / sum(n for _, n in moe)
        per = _ring(lay.ep) * dev * top_k * h * act_b  # one dispatch or one combine
        one = _coll_s(per, lay.ep - 1, t * lay.cp * lay.ep <= scale_up_domain, acc, e)
        comm = n_busy * frac * 2 * (fwd_passes + 1) * one
        hidden = min(comm * e.ep_overlap, compute_mb)
        ep_s = comm - hidden
    pp_s = 0.0
    if lay.pp > 1:
        per = dev * h * act_b
        pp_s = 2 * lay.vpp * _coll_s(per, 1, t * lay.cp * lay.dp < scale_up_domain, acc, e)
    t_mb = compute_mb + tp_s + cp_s + ep_s + pp_s
    slots = m + (lay.pp - 1) / lay.vpp

    dense, expert = device_params(model, lay, first=True)
    r_d, r_e = lay.dp * lay.cp, max(lay.dp * lay.cp // lay.ep, 1)
    dp_up = t * lay.cp * lay.dp <= scale_up_domain
    dp_bytes = 0.0
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
    n_coll = 2 + (2 * m * n_first if lay.zero >= 3 else 0)
    dp_total = _coll_s(dp_bytes, n_coll * (r_d - 1), dp_up, acc, e) if dp_bytes else 0.0
    window = compute_mb * (m if lay.zero >= 3 else 1)
    dp_s = max(dp_total - window, e.dp_exposed_min * dp_total)

    shard = (dense / r_d + expert / r_e) if lay.zero >= 1 else dense + expert
    optimizer_s = shard * (2 * ADAM_STATE_RW_BYTES) / acc.hbm_bw_Bps

    step = slots * t_mb + dp_s + optimizer_s
    tokens = float(m * lay.dp * tok_mb)
    flops = tokens * train_flops_per_token(model, s)
    mfu = flops / (step * lay.devices * peak)
    mem = train_memory(model, lay, s, m, acc.hbm_bytes)
    return StepTime(
        layout=lay, micro_batches=m, tokens_per_step=tokens, step_s=step,
        compute_s=m * compute_mb, bubble_s=(lay.pp - 1) / lay.vpp * t_mb,
        tp_comm_s=slots * tp_s, cp_comm_s=slots * cp_s, ep_comm_s=slots * ep_s, pp_comm_s=slots * pp_s,
        dp_comm_s=dp_s, optimizer_s=optimizer_s, model_flops_per_step=flops, mfu=mfu, memory=mem,
    )


ADAM_STATE_RW_BYTES = 4.0 + 4.0 + 4.0 + 4.0 + 2.0
"""Bytes per parameter the optimizer step reads (and writes again): fp32 master, two moments,
fp32 gradient, bf16 weight. A memory-bound pass at HBM bandwidth."""
