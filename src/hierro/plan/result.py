"""What ``plan`` returns: frozen results per model, training run, instrument, site and accelerator.

Money is USD, power MW, time months after the round (or years, as named). Two bases for the
cost of a token sit side by side:

* **steady state**: the fleet once online, per hour (``fleet_usd_per_mtok*``: held $/h over
  the tokens served per hour at mean demand; ``usd_per_mtok_*``: at the configurations'
  operating point);
* **over the horizon**: what was paid within the horizon over the tokens delivered in it
  (``horizon_usd_per_mtok``), where owned capacity costs and serves only from the month it
  comes online and rented capacity only within its term (:mod:`hierro.plan.allocate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hierro.econ import Margin, Valuation
from hierro.econ.schema import ApiPrice
from hierro.plan.scenario import Scenario
from hierro.plan.serving import ServingOption
from hierro.plan.timeline import Timeline
from hierro.training import TrainingPlan
from hierro.units import MEGA

__all__ = [
    "Binding",
    "Constraint",
    "FleetLine",
    "InstrumentUse",
    "ModelPlan",
    "PlanResult",
    "SiteUse",
    "SupplyUse",
    "TrainingFunding",
]

_HOUR_S = 3600.0

Constraint = Literal["money", "power", "supply", "latency", "deadline", "none"]


@dataclass(frozen=True)
class Binding:
    constraint: Constraint
    scope: str
    """The model, training run, or 'growth pool' it binds."""
    detail: str


@dataclass(frozen=True)
class FleetLine:
    gpu: str
    source: str
    site: str | None
    accelerators: float
    usd: float
    MW: float
    usd_per_gpu_hour: float


@dataclass(frozen=True)
class ModelPlan:
    name: str
    model_id: str
    isl: int
    osl: int
    mean_req_s: float
    peak_req_s: float
    peak_to_mean: float
    slos: tuple[tuple[str, float], ...]
    options: tuple[ServingOption, ...]
    rejected: tuple[tuple[str, str], ...]
    """(accelerator, why no configuration on it met the SLOs)."""
    fleet: tuple[FleetLine, ...]
    served_fraction: float
    accelerators: float
    MW: float
    usd: float
    capacity_req_s: float
    utilisation_peak: float
    utilisation_mean: float
    ttft_p99_s: float | None
    tpot_p99_s: float | None
    usd_per_mtok_input: float | None
    usd_per_mtok_output: float | None
    """At the operating point of the configurations (the InferenceX convention, split)."""
    fleet_usd_per_mtok_input: float | None
    fleet_usd_per_mtok_output: float | None
    """The fleet's held cost over the tokens it serves at mean demand (headroom, diurnal idle)."""
    fleet_usd_per_mtok: float | None
    """Input and output tokens together, at mean demand."""
    binding: Binding | None
    api: ApiPrice | None = None
    """The dated public API price the tokens are compared with (scenario ``api_price``)."""
    margin: Margin | None = None
    """Selling the request shape at ``api``'s list price, against the fleet's cost at mean demand."""
    margin_slo_point: Margin | None = None
    """The same against the cost at the configurations' operating point."""
    online_month: int | None = None
    """First month the fleet online carries the peak (the timeline); None: never."""
    peak_months: float = 0.0
    """Months of the horizon the fleet online carries the peak."""
    horizon_tokens: float = 0.0
    """Tokens (input + output) delivered over the horizon at the model's demand (the timeline)."""
    horizon_usd_per_mtok: float | None = None
    """``usd`` (paid within the horizon) / ``horizon_tokens`` x 1e6; None: no token delivered."""


@dataclass(frozen=True)
class TrainingFunding:
    name: str
    plan: TrainingPlan | None
    gpus: int
    gpu_id: str
    wall_clock_days: float
    gpu_hours: float
    funded_fraction: float
    usd: float
    MW: float
    energy_MWh: float
    fleet: tuple[FleetLine, ...]
    binding: Binding | None
    start_month: int | None = None
    """When its whole cluster is online (the timeline); None: never."""
    end_month: float | None = None


@dataclass(frozen=True)
class InstrumentUse:
    label: str
    kind: str
    investor: str | None
    amount_usd: float
    spent_usd: float
    left_usd: float
    accelerators: float
    gpu_hours: float
    MW: float
    capex_usd: float
    usd_per_gpu_hour: float | None
    """Effective: spent / busy GPU-hours."""
    term_years: float
    peak_tok_s: float
    """Tokens/s (input + output) its accelerators make at the SLO point of what they serve
    (growth: the first served model's); training accelerators make none."""
    peak_out_tok_s: float
    tokens_per_day: float
    """Token capacity per day: peak tokens/s x 86,400."""
    usd_per_mtok: float | None
    """Effective: its spend on token-making accelerators / ``horizon_tokens`` (input + output,
    the InferenceX total-token variant)."""
    horizon_tokens: float
    """Tokens its token-making accelerators make busy, at their SLO point, over the hours it
    pays for within the horizon (owned: from the month they come online; rented: within the term)."""
    first_online_month: int | None
    full_online_month: int | None
    """First month any / all of what it buys is online (the timeline)."""


@dataclass(frozen=True)
class SiteUse:
    label: str
    power_MW: float
    used_MW: float
    usd_per_kwh: float | None
    pue: float | None


@dataclass(frozen=True)
class SupplyUse:
    gpu: str
    cap: float | None
    used: float


@dataclass(frozen=True)
class PlanResult:
    scenario: Scenario
    horizon_years: float
    round_usd: float
    spent_usd: float
    left_usd: float
    models: tuple[ModelPlan, ...]
    training: tuple[TrainingFunding, ...]
    growth: tuple[FleetLine, ...]
    growth_out_tok_s: float
    instruments: tuple[InstrumentUse, ...]
    sites: tuple[SiteUse, ...]
    supply: tuple[SupplyUse, ...]
    valuation: Valuation
    implied_pre_money_usd: float | None
    """Reported post-money less the round, when a post-money is reported."""
    bindings: tuple[Binding, ...]
    binding: Binding
    timeline: Timeline
    elapsed_s: float

    @property
    def served_month(self) -> int | None:
        """First month every model's peak demand is carried (None: some model never is)."""
        return self.timeline.served_month

    @property
    def accelerators(self) -> float:
        return sum(i.accelerators for i in self.instruments)

    @property
    def MW(self) -> float:
        return sum(i.MW for i in self.instruments)

    @property
    def owned_MW(self) -> float:
        return sum(s.used_MW for s in self.sites)

    @property
    def horizon_tokens(self) -> float:
        """Tokens the serving fleets deliver over the horizon at their models' demand."""
        return sum(m.horizon_tokens for m in self.models)

    @property
    def horizon_usd_per_mtok(self) -> float | None:
        """What the serving fleets cost within the horizon / the tokens they deliver in it, x 1e6."""
        tokens = self.horizon_tokens
        return sum(m.usd for m in self.models) / tokens * MEGA if tokens > 0 else None

    @property
    def steady_usd_per_mtok(self) -> float | None:
        """The serving fleets once online: held $/h / tokens served per hour at mean demand, x 1e6."""
        usd = tokens = 0.0
        for m in self.models:
            if m.fleet_usd_per_mtok is not None and m.served_fraction > 0:
                per_h = m.mean_req_s * m.served_fraction * (m.isl + m.osl) * _HOUR_S
                usd += m.fleet_usd_per_mtok * per_h / MEGA
                tokens += per_h
        return usd / tokens * MEGA if tokens > 0 else None
