"""Training layer: compute, memory, step time and MFU, layout search, failures, cost and energy
of a training run (issue 7). Entry point: :func:`plan_training`."""

from hierro.training.compute import (
    CHINCHILLA_TOKENS_PER_PARAM,
    TOKENS_PER_PARAM,
    ComputeOptimal,
    compute_optimal,
    six_nd_flops,
    train_flops,
    train_flops_per_token,
)
from hierro.training.layout import best_layout, evaluate_layout
from hierro.training.memory import TrainMemory, korthikanti_layer_bytes, train_memory
from hierro.training.parallel import Layout, check_layout
from hierro.training.plan import TrainingPlan, plan_training
from hierro.training.reliability import Reliability, reliability
from hierro.training.step import (
    FP8_BLOCK_EFFICIENCY,
    TRAIN_COMPUTE_EFFICIENCY,
    StepTime,
    TrainEfficiency,
    step_time,
)

__all__ = [
    "CHINCHILLA_TOKENS_PER_PARAM",
    "FP8_BLOCK_EFFICIENCY",
    "TOKENS_PER_PARAM",
    "TRAIN_COMPUTE_EFFICIENCY",
    "ComputeOptimal",
    "Layout",
    "Reliability",
    "StepTime",
    "TrainEfficiency",
    "TrainMemory",
    "TrainingPlan",
    "best_layout",
    "check_layout",
    "compute_optimal",
    "evaluate_layout",
    "korthikanti_layer_bytes",
    "plan_training",
    "reliability",
    "six_nd_flops",
    "step_time",
    "train_flops",
    "train_flops_per_token",
    "train_memory",
]
