"""``plan_training``: time, cost, energy and layout of a training run on a cluster.

    wall-clock = steps · t_step / goodput,  steps = tokens / tokens per step

(step time and layout from :mod:`hierro.training.layout`, goodput from
:mod:`hierro.training.reliability`), GPU-hours = G · wall-clock, cost = GPU-hours · $/GPU-h,
energy and power from :mod:`hierro.training.energy`. With a deadline, the smallest cluster of
the grid {8, 10, 12, 14} · 2^k GPUs that finishes in time is found by doubling, then bisection
(wall-clock falls with G, as adding GPUs at a fixed per-GPU efficiency never lengthens a run,
until failures dominate at cluster sizes far beyond today's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hierro.errors import HierroError
from hierro.specs import Accelerator, ModelArch, get_accelerator, get_model, get_system
from hierro.training.compute import (
    TOKENS_PER_PARAM,
    ComputeOptimal,
    compute_optimal,
    six_nd_flops,
    train_flops,
)
from hierro.training.energy import DEFAULT_PUE, default_price, server_power
from hierro.training.layout import RECIPE_FIELDS, best_layout, evaluate_layout
from hierro.training.parallel import Layout
from hierro.training.reliability import (
    LLAMA3_FAILURES_PER_GPU_HOUR,
    RESTART_S,
    STORAGE_WRITE_BPS,
    Reliability,
    checkpoint_bytes_per_param,
    reliability,
)
from hierro.training.step import StepTime, TrainEfficiency
from hierro.units import HOUR, MEGA

__all__ = ["DEFAULT_BATCH_TOKENS", "TrainingPlan", "cluster_grid", "plan_training"]

DEFAULT_BATCH_TOKENS = 16 * 2**20
"""Global batch: 16M tokens, Llama 3 405B's (arXiv:2407.21783 table 4)."""
DAY = 24 * HOUR
_MAX_GPUS = 2**20


@dataclass(frozen=True, slots=True)
class TrainingPlan:
    """A training run: layout, speed, time with failures, cost and energy."""

    model_id: str
    gpu_id: str
    gpus: int
    tokens: float
    seq_len: int
    dtype: str
    global_batch_seqs: int
    step: StepTime
    model_flops: float
    flops_6nd: float
    reliability: Reliability
    compute_days: float
    """Days of training with no failures."""
    wall_clock_days: float
    gpu_hours: float
    usd_per_gpu_hour: float
    price_source: str
    cost_usd: float
    energy_MWh: float
    peak_MW: float
    power_source: str
    pue: float
    compute_efficiency: float
    deadline_days: float | None = None
    gpus_for_deadline: int | None = None

    @property
    def layout(self) -> Layout:
        return self.step.layout

    @property
    def mfu(self) -> float:
        return self.step.mfu

    @property
    def step_s(self) -> float:
        return self.step.step_s

    @property
    def goodput(self) -> float:
        return self.reliability.goodput

    @property
    def tokens_per_param(self) -> float:
        """Training tokens per (active) parameter of this run: D / N with 6·N·D = ``flops_6nd``."""
        return 6.0 * self.tokens ** 2 / self.flops_6nd

    def compute_optimal(self) -> dict[str, ComputeOptimal]:
        """N and D that spend this run's compute (6·N·D) at Chinchilla's 20 tokens per parameter
        and at the overtrained ratios of published runs (:data:`~hierro.training.compute.TOKENS_PER_PARAM`)."""
        return {name: compute_optimal(self.flops_6nd, r) for name, r in TOKENS_PER_PARAM.items()}


def cluster_grid(min_gpus: int = 8, max_gpus: int = _MAX_GPUS) -> list[int]:
    """Cluster sizes {8, 10, 12, 14} · 2^k between the bounds."""
    grid = sorted({k << j for j in range(21) for k in (8, 10, 12, 14)})
    return [g for g in grid if min_gpus <= g <= max_gpus]


@dataclass(frozen=True, slots=True)
class _Run:
    step: StepTime
    rel: Reliability
    compute_s: float
    wall_s: float


def _run(
    model: ModelArch, acc: Accelerator, gpus: int, domain: int, tokens: float, seq_len: int,
    batch: int, dtype: str, eff: TrainEfficiency, layout: Layout | None,
    failures: float, storage: float, restart: float, fixed: Mapping[str, int | str] | None = None,
) -> _Run:
    if layout is None:
        st = best_layout(model, acc, gpus, domain, seq_len, batch, dtype, eff, fixed)
    else:
        st = evaluate_layout(model, layout, acc, gpus, domain, seq_len, batch, dtype, eff)
    rel = reliability(gpus, model.params().total, failures, storage, restart,
                      checkpoint_bytes_per_param(st.layout.moments))
    compute_s = tokens / st.tokens_per_step * st.step_s
    return _Run(st, rel, compute_s, compute_s / rel.goodput)


def plan_training(
    model: str | ModelArch,
    tokens: float,
    gpu: str | Accelerator,
    gpus: int,
    seq_len: int = 8192,
    deadline_days: float | None = None,
    usd_per_gpu_hour: float | None = None,
    *,
    global_batch_tokens: float = DEFAULT_BATCH_TOKENS,
    dtype: str = "bf16",
    layout: Layout | None = None,
    fixed: Mapping[str, int | str] | None = None,
    efficiency: TrainEfficiency | None = None,
    failures_per_gpu_hour: float = LLAMA3_FAILURES_PER_GPU_HOUR,
    storage_write_Bps: float = STORAGE_WRITE_BPS,
    restart_s: float = RESTART_S,
    pue: float = DEFAULT_PUE,
    scale_up_domain: int | None = None,
) -> TrainingPlan:
    """Plan training ``model`` on ``tokens`` tokens with ``gpus`` accelerators ``gpu``.

    ``layout`` fixes the parallel layout (checked); otherwise the fastest layout that fits is
    searched, with the fields in ``fixed`` (e.g. ``{"tp": 8, "pp": 16}``) pinned. ``deadline_days`` also finds the smallest cluster that finishes in time.
    Bad input raises :class:`~hierro.errors.HierroError` with a one-line reason.
    """
    arch = get_model(model) if isinstance(model, str) else model
    acc = get_accelerator(gpu) if isinstance(gpu, str) else gpu
    if tokens <= 0:
        raise HierroError(f"tokens must be > 0, got {tokens:g}")
    if seq_len < 1 or global_batch_tokens < seq_len:
        raise HierroError(f"need seq_len >= 1 and a global batch of at least one sequence ({seq_len} tokens)")
    if deadline_days is not None and deadline_days <= 0:
        raise HierroError(f"deadline must be > 0 days, got {deadline_days:g}")
    if not 1.0 <= pue <= 3.0:
        raise HierroError(f"PUE must be in [1, 3], got {pue:g}")
    if usd_per_gpu_hour is not None and usd_per_gpu_hour < 0:
        raise HierroError(f"$/GPU-hour must be >= 0, got {usd_per_gpu_hour:g}")
    eff = efficiency or TrainEfficiency()
    domain = scale_up_domain or get_system(acc.system_id).scale_up_domain
    batch = max(1, round(global_batch_tokens / seq_len))
    args = (domain, tokens, seq_len, batch, dtype, eff)
    rel_args = (failures_per_gpu_hour, storage_write_Bps, restart_s)
    run = _run(arch, acc, gpus, *args, layout, *rel_args, fixed)

    need: int | None = None
    if deadline_days is not None:  # degrees searched afresh per size; the numerical recipe kept
        src: Mapping[str, object] = (
            {k: getattr(layout, k) for k in RECIPE_FIELDS} if layout is not None else dict(fixed or {}))
        recipe = {k: v for k, v in src.items() if k in RECIPE_FIELDS}
        need = _gpus_for_deadline(arch, acc, deadline_days * DAY, args, rel_args, recipe)

    if usd_per_gpu_hour is None:
        price, price_src = default_price(acc)
    else:
        price, price_src = usd_per_gpu_hour, "given"
    pw = server_power(acc)
    hours = run.wall_s / HOUR
    gpu_hours = gpus * hours
    return TrainingPlan(
        model_id=arch.id, gpu_id=acc.id, gpus=gpus, tokens=tokens, seq_len=seq_len, dtype=dtype,
        global_batch_seqs=batch, step=run.step,
        model_flops=train_flops(arch, tokens, seq_len), flops_6nd=six_nd_flops(arch, tokens),
        reliability=run.rel, compute_days=run.compute_s / DAY, wall_clock_days=run.wall_s / DAY,
        gpu_hours=gpu_hours, usd_per_gpu_hour=price, price_source=price_src, cost_usd=gpu_hours * price,
        energy_MWh=gpu_hours * pw.server_W_per_gpu * pw.utilisation * pue / MEGA,
        peak_MW=gpus * pw.server_W_per_gpu * pue / MEGA, power_source=pw.source, pue=pue,
        compute_efficiency=eff.compute, deadline_days=deadline_days, gpus_for_deadline=need,
    )


def _gpus_for_deadline(
    arch: ModelArch, acc: Accelerator, deadline_s: float,
    args: tuple[int, float, int, int, str, TrainEfficiency], rel_args: tuple[float, float, float],
    recipe: Mapping[str, object] | None = None,
) -> int | None:
    """Smallest grid cluster whose wall-clock meets the deadline (bisection), or None."""
    pins = {k: v for k, v in (recipe or {}).items() if isinstance(v, (int, str))}

    def meets(g: int) -> bool:
        try:
            return _run(arch, acc, g, *args, None, *rel_args, pins).wall_s <= deadline_s
        except HierroError:
            return False

    grid = cluster_grid(max_gpus=min(_MAX_GPUS, 64 * args[3] * args[0]))
    # probe powers of two upward (failures make huge clusters slower again), then bisect
    lo = -1
    for hi in range(0, len(grid), 4):
        if meets(grid[hi]):
            break
        lo = hi
    else:
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if meets(grid[mid]):
            hi = mid
        else:
            lo = mid
    return grid[hi]
