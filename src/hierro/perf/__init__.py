"""Perf layer: one engine step as named ops, priced by a calibrated roofline, and the
steady-state estimate of an instance's latency and throughput."""

from hierro.perf.efficiency import (
    Calibration,
    EfficiencyEntry,
    FrontEnd,
    default_calibration,
    dump_calibration,
    framework_family,
    kv_of_free_memory,
    load_calibration,
    mixes_prefill,
    reserves_kv,
    starting_calibration,
)
from hierro.perf.estimate import (
    DEFAULT_MAX_SEQS,
    Estimate,
    EstimateArrays,
    default_max_seqs,
    estimate,
    estimate_arrays,
)
from hierro.perf.ops import Op, StepShape, build_ops
from hierro.perf.roofline import OpCost, op_time
from hierro.perf.step import StepCost, StepModel

__all__ = [
    "DEFAULT_MAX_SEQS",
    "Calibration",
    "EfficiencyEntry",
    "Estimate",
    "EstimateArrays",
    "FrontEnd",
    "Op",
    "OpCost",
    "StepCost",
    "StepModel",
    "StepShape",
    "build_ops",
    "default_calibration",
    "default_max_seqs",
    "dump_calibration",
    "estimate",
    "estimate_arrays",
    "framework_family",
    "kv_of_free_memory",
    "load_calibration",
    "mixes_prefill",
    "op_time",
    "reserves_kv",
    "starting_calibration",
]
