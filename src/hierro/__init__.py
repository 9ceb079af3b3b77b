"""hierro: capital into AI compute, compute into tokens.

The public API; everything else is internal::

    import hierro
    sm = hierro.StepModel(hierro.get_model("llama-3.1-70b"), hierro.get_accelerator("h100-sxm"),
                          hierro.Plan(tp=4, weight_dtype="fp8", kv_dtype="fp8"))
    e = hierro.estimate(sm, isl=1024, osl=1024, concurrency=64)
    e.tpot_s, e.out_tok_s_per_gpu
"""

from hierro.accuracy import Measurement, ValidationResult, load_measurements, validate
from hierro.accuracy.predictor import EstimatePredictor
from hierro.errors import CatalogError, DoesNotFitError, HierroError, PlanError, UnknownIdError
from hierro.perf import (
    Calibration,
    Estimate,
    StepCost,
    StepModel,
    StepShape,
    default_calibration,
    estimate,
    estimate_arrays,
    load_calibration,
)
from hierro.specs import (
    Accelerator,
    MemoryBreakdown,
    ModelArch,
    Plan,
    arch_from_hf_config,
    get_accelerator,
    get_model,
    memory_breakdown,
)

__version__ = "0.1.0"

__all__ = [
    "Accelerator",
    "Calibration",
    "CatalogError",
    "DoesNotFitError",
    "Estimate",
    "EstimatePredictor",
    "HierroError",
    "Measurement",
    "MemoryBreakdown",
    "ModelArch",
    "Plan",
    "PlanError",
    "StepCost",
    "StepModel",
    "StepShape",
    "UnknownIdError",
    "ValidationResult",
    "__version__",
    "arch_from_hf_config",
    "default_calibration",
    "estimate",
    "estimate_arrays",
    "get_accelerator",
    "get_model",
    "load_calibration",
    "load_measurements",
    "memory_breakdown",
    "validate",
]
