"""The price of one engine step: the only thing the simulator asks of the perf layer.

:class:`StepModel` binds a model, an accelerator, a plan, a framework and a calibration, and
turns a :class:`~hierro.perf.ops.StepShape` into a :class:`StepCost`: the sum of its ops' roofline
times plus the engine's per-step host overhead, with the per-op breakdown kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hierro.perf.efficiency import Calibration, default_calibration, framework_family
from hierro.perf.ops import Num, StepShape, build_ops
from hierro.perf.roofline import OpCost, op_time
from hierro.specs import Accelerator, ModelArch, Plan, get_system

__all__ = ["StepCost", "StepModel"]


@dataclass(frozen=True, slots=True)
class StepCost:
    """Time of one step of one pipeline stage, with its per-op breakdown."""

    time_s: Num
    overhead_s: float
    ops: tuple[OpCost, ...] = field(repr=False)

    @property
    def flops(self) -> Num:
        return sum((o.flops for o in self.ops), 0.0)

    @property
    def bytes(self) -> Num:
        return sum((o.bytes for o in self.ops), 0.0)

    def by_class(self) -> dict[str, float]:
        """Seconds per op class (scalar steps)."""
        out: dict[str, float] = {}
        for o in self.ops:
            out[o.op_class] = out.get(o.op_class, 0.0) + float(np.sum(o.time_s))
        out["overhead"] = out.get("overhead", 0.0) + self.overhead_s
        return out


@dataclass(frozen=True)
class StepModel:
    """Step-cost model of one model instance: ``cost(shape)`` or the faster ``time(shape)``."""

    model: ModelArch
    accel: Accelerator
    plan: Plan
    framework: str = "vllm"
    calib: Calibration = field(default_factory=default_calibration)

    def __post_init__(self) -> None:
        self.plan.check(self.model)

    @property
    def family(self) -> str:
        return framework_family(self.framework)

    @property
    def domain(self) -> int:
        return get_system(self.accel.system_id).scale_up_domain

    @property
    def step_overhead_s(self) -> float:
        return self.calib.latency(self.accel.family, self.family, "overhead")

    def cost(self, shape: StepShape) -> StepCost:
        """Per-op costs and total time of one step of one pipeline stage."""
        ops = build_ops(self.model, self.accel, self.plan, shape, domain=self.domain)
        costs = tuple(op_time(op, self.accel, self.calib, self.family) for op in ops)
        over = self.step_overhead_s
        total: Num = sum((c.time_s for c in costs), 0.0) + over
        return StepCost(time_s=total, overhead_s=over, ops=costs)

    def time(self, shape: StepShape) -> Num:
        """Seconds of one step of one pipeline stage (array if the shape holds arrays)."""
        return self.cost(shape).time_s
