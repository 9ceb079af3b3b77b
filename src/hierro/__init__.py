"""hierro: capital into AI compute, compute into tokens.

The public API; everything else is internal (subpackages expose more for advanced use)::

    import hierro
    sm = hierro.StepModel(hierro.get_model("llama-3.1-70b"), hierro.get_accelerator("h100-sxm"),
                          hierro.Plan(tp=4, weight_dtype="fp8", kv_dtype="fp8"))
    e = hierro.estimate(sm, isl=1024, osl=1024, concurrency=64)    # analytic steady state
    r = hierro.simulate(sm, hierro.synthetic(...))                   # queueing, simulated
    best = hierro.search(hierro.SearchRequest(...))                  # cheapest config under SLOs
    p = hierro.plan(hierro.load_scenario())                          # what a round buys
"""

from hierro.accuracy import Measurement, ValidationResult, load_measurements, validate
from hierro.accuracy.predictor import EstimatePredictor
from hierro.econ import TcoBreakdown, tco_for, token_economics
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
from hierro.plan import PlanResult, Scenario, load_scenario, plan
from hierro.search import Demand, SearchRequest, SearchResult, parse_slos, search, search_shared
from hierro.sim import SimResult, load_trace, simulate, simulate_disagg, synthetic
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
from hierro.training import TrainingPlan, plan_training

__version__ = "0.1.0"

__all__ = [
    "Accelerator",
    "Calibration",
    "CatalogError",
    "Demand",
    "DoesNotFitError",
    "Estimate",
    "EstimatePredictor",
    "HierroError",
    "Measurement",
    "MemoryBreakdown",
    "ModelArch",
    "Plan",
    "PlanError",
    "PlanResult",
    "Scenario",
    "SearchRequest",
    "SearchResult",
    "SimResult",
    "StepCost",
    "StepModel",
    "StepShape",
    "TcoBreakdown",
    "TrainingPlan",
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
    "load_scenario",
    "load_trace",
    "memory_breakdown",
    "parse_slos",
    "plan",
    "plan_training",
    "search",
    "search_shared",
    "simulate",
    "simulate_disagg",
    "synthetic",
    "tco_for",
    "token_economics",
    "validate",
]
