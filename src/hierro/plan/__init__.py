"""Planner layer: a funding round turned into serving fleets, training runs and what binds.

Above search, training and econ: :func:`plan` sizes each model's fleet with the search, plans
each training run, spreads the round's instruments over them within power and supply, and says
which constraint binds. Scenarios are YAML files (:mod:`hierro.plan.scenario`); the built-in
one is :func:`default_scenario`. Nothing is read or computed at import.
"""

from hierro.plan.planner import plan
from hierro.plan.result import (
    Binding,
    FleetLine,
    InstrumentUse,
    ModelPlan,
    PlanResult,
    SiteUse,
    SupplyUse,
    TrainingFunding,
)
from hierro.plan.scenario import (
    Scenario,
    apply_overrides,
    default_scenario,
    load_scenario,
    scenario_from_dict,
)
from hierro.plan.serving import ServingOption
from hierro.plan.timeline import Timeline, Tranche

__all__ = [
    "Binding",
    "FleetLine",
    "InstrumentUse",
    "ModelPlan",
    "PlanResult",
    "Scenario",
    "ServingOption",
    "SiteUse",
    "SupplyUse",
    "Timeline",
    "TrainingFunding",
    "Tranche",
    "apply_overrides",
    "default_scenario",
    "load_scenario",
    "plan",
    "scenario_from_dict",
]
