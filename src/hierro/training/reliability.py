"""Failures, checkpoints and goodput of a long training run.

Failure rate: the Llama 3 405B run saw 419 unexpected interruptions in a 54-day snapshot on up to
16,384 H100s (Grattafiori et al. 2024, arXiv:2407.21783 §3.3.4), so

    lambda = 419 / (54 · 24 h · 16,384) ≈ 1.97e-5 failures per GPU-hour

(a lower bound on the rate, since not all 16,384 GPUs ran all the time). Treating failures as
independent per GPU, a job on G GPUs fails every MTBF = 1 / (lambda · G) (Kokolis et al. 2024,
arXiv:2410.21680, fit MTTF against job size; 1/G is the first approximation).

Checkpoints (Young 1974; Daly 2006; as used by NVIDIA, arXiv:2410.18124): with save time T_s the
interval that minimises lost time is T_c = sqrt(2 · MTBF · T_s), and the share of time lost is, to
first order,

    waste = T_s / T_c + (T_c / 2 + T_r) / MTBF

(saving, the work redone since the last checkpoint, the restart). Goodput = 1 - waste. The save
writes the training state in the run's precisions (:func:`checkpoint_bytes_per_param`): the bf16
weights, the fp32 master weights and the two Adam moments, 14 B/param with fp32 moments and
10 B/param with DeepSeek-V3's bf16 moments (arXiv:2412.19437 §3.3.3), at the storage system's
sustained write bandwidth (Llama 3's Tectonic: 2 TB/s sustained, 7 TB/s peak). Megatron-Core's
distributed checkpoint saves exactly these tensors (model parameters and the distributed
optimizer's master weights and moments); gradients are not saved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hierro.errors import HierroError
from hierro.training.memory import WEIGHT_BYTES_PER_PARAM, optimizer_bytes_per_param
from hierro.units import HOUR, TB

__all__ = [
    "CHECKPOINT_BYTES_PER_PARAM",
    "LLAMA3_FAILURES_PER_GPU_HOUR",
    "RESTART_S",
    "STORAGE_WRITE_BPS",
    "Reliability",
    "checkpoint_bytes_per_param",
    "reliability",
]

LLAMA3_FAILURES_PER_GPU_HOUR = 419 / (54 * 24 * 16384)
"""Llama 3 (arXiv:2407.21783 §3.3.4): 419 unexpected interruptions, 54 days, up to 16,384 H100s."""
CHECKPOINT_BYTES_PER_PARAM = 14.0
"""bf16 weights (2) + fp32 master weights and two fp32 Adam moments (12): the default recipe's
:func:`checkpoint_bytes_per_param`."""
STORAGE_WRITE_BPS = 2 * TB
"""Sustained checkpoint write bandwidth: Llama 3's Tectonic file system, 2 TB/s (arXiv:2407.21783 §3.3.1)."""
RESTART_S = 10 * 60.0
"""Time from a failure to training again (detect, replace or exclude the node, reload the
checkpoint, warm up): an estimate; Llama 3 reports only that >90% of time was effective training."""


def checkpoint_bytes_per_param(moments: str = "fp32") -> float:
    """Bytes a checkpoint stores per parameter: the bf16 weights, the fp32 master weights and two
    Adam moments in ``moments`` precision (14 B with fp32 moments, 10 B with bf16)."""
    return WEIGHT_BYTES_PER_PARAM + optimizer_bytes_per_param(moments)


@dataclass(frozen=True, slots=True)
class Reliability:
    """Failures and checkpointing of one run."""

    failures_per_gpu_hour: float
    mtbf_s: float
    checkpoint_s: float
    checkpoint_interval_s: float
    restart_s: float
    goodput: float
    """Share of wall-clock time that advances training."""
    checkpoint_bytes_per_param: float = CHECKPOINT_BYTES_PER_PARAM
    """Bytes the checkpoint stores per parameter (the run's weight, master and moment precisions)."""


def reliability(
    gpus: int,
    params: float,
    failures_per_gpu_hour: float = LLAMA3_FAILURES_PER_GPU_HOUR,
    storage_write_Bps: float = STORAGE_WRITE_BPS,
    restart_s: float = RESTART_S,
    bytes_per_param: float = CHECKPOINT_BYTES_PER_PARAM,
) -> Reliability:
    """MTBF, checkpoint time and Young/Daly interval, and goodput for a job on ``gpus`` GPUs whose
    checkpoint stores ``bytes_per_param`` bytes per parameter (:func:`checkpoint_bytes_per_param`)."""
    if gpus < 1 or params <= 0:
        raise HierroError(f"reliability needs gpus >= 1 and params > 0, got {gpus}, {params:g}")
    if failures_per_gpu_hour < 0 or storage_write_Bps <= 0 or restart_s < 0:
        raise HierroError("failure rate and restart time must be >= 0, storage bandwidth > 0")
    if bytes_per_param <= 0:
        raise HierroError(f"checkpoint bytes per parameter must be > 0, got {bytes_per_param:g}")
    ckpt = params * bytes_per_param / storage_write_Bps
    if failures_per_gpu_hour == 0:
        return Reliability(0.0, math.inf, ckpt, math.inf, restart_s, 1.0, bytes_per_param)
    mtbf = HOUR / (failures_per_gpu_hour * gpus)
    interval = math.sqrt(2.0 * mtbf * ckpt)
    waste = ckpt / interval + (interval / 2.0 + restart_s) / mtbf
    if waste >= 1.0:
        raise HierroError(
            f"{gpus} GPUs fail every {mtbf / 60:.1f} min on average, less than a restart and "
            "checkpoint take: the run never progresses; use fewer GPUs or a lower failure rate"
        )
    return Reliability(failures_per_gpu_hour, mtbf, ckpt, interval, restart_s, 1.0 - waste,
                       bytes_per_param)
