"""The scenario of ``hierro plan``: capital, valuation, accelerators, sites, models, training.

A scenario is one YAML file validated by the pydantic models below (``extra="forbid"``, frozen).
Every block may carry ``sources``: a map from a field name to where its value comes from
(a citation, or ``assumption: ...``), which the report prints next to the figure. The
built-in default (``hierro/plan/data/default.yaml``) sources every assumption this way.

When capacity comes online is set by each site's build-out (``construction_start_month``,
``first_power_months``, ``build_MW_per_month``; defaults in the ``deployment`` block, else the
sourced figures of ``econ/data/finance.yaml``), each accelerator's supply ramp
(``supply_per_year`` or ``supply_per_quarter`` from ``first_delivery_month``) and each rented
instrument's ``start_month``.

Units are in the field names: ``_usd``, ``_MW``, ``_per_kwh``, ``_years``, ``_days``, ``_month(s)``. Large
numbers may be written ``100e9`` (read as a float).

A file that does not validate raises :class:`~hierro.errors.CatalogError` with one line naming
the file and every bad field (``models.0.demand.isl: ...; capital: ...``).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Mapping, Sequence
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hierro.catalog import read_yaml
from hierro.econ import MONTHS_PER_YEAR, api_price
from hierro.errors import CatalogError, HierroError
from hierro.search import SloTarget, parse_slo

__all__ = [
    "Accelerator",
    "Capital",
    "CashEquity",
    "CloudCredits",
    "ComputeContract",
    "Demand",
    "Deployment",
    "Hybrid",
    "ModelDemand",
    "PlannerOptions",
    "Scenario",
    "Site",
    "TrainingRun",
    "Valuation",
    "apply_overrides",
    "default_scenario",
    "load_scenario",
    "scenario_from_dict",
]

_DAY_S = 86400.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: dict[str, str] = Field(default_factory=dict)
    """Field name -> where its value comes from (a citation or 'assumption: ...')."""
    note: str | None = None


class CashEquity(_Strict):
    """Cash that builds owned capacity at the TCO of an owner preset, on the scenario's sites."""

    kind: Literal["cash_equity"]
    amount_usd: float = Field(ge=0)
    label: str = "cash equity"
    investor: str | None = None
    gpu: str | None = None
    """None: any accelerator on offer."""
    preset: str = "hyperscaler-owned"


class _Rental(_Strict):
    """Rented capacity bought with money: accelerator-hours of one accelerator in the provider's
    cloud, available from ``start_month`` (before the horizon's end) for ``term_years``; the
    money pays only for hours within the term and the horizon."""

    amount_usd: float = Field(ge=0)
    investor: str | None = None
    gpu: str
    usd_per_gpu_hour: float | None = Field(default=None, gt=0)
    start_month: float = Field(default=0.0, ge=0)
    """Months after the round when the capacity is available (0: at once)."""


class CloudCredits(_Rental):
    """Credits for accelerator-hours in the provider's cloud, at list price less a discount, or
    at a negotiated price."""

    kind: Literal["cloud_credits"]
    label: str = "cloud credits"
    provider: str | None = None
    """Catalog provider whose on-demand list price applies (None: the catalog median)."""
    discount_vs_list: float | None = Field(default=None, ge=0, lt=1)
    term_years: float = Field(default=2.0, gt=0)

    @model_validator(mode="after")
    def _one_price(self) -> CloudCredits:
        if self.usd_per_gpu_hour is not None and self.discount_vs_list is not None:
            raise ValueError("give usd_per_gpu_hour or discount_vs_list, not both")
        return self


class ComputeContract(_Rental):
    """Reserved capacity at a contract price (default: SemiAnalysis' 3-year rental tier)."""

    kind: Literal["compute_contract"]
    label: str = "compute contract"
    term_years: float = Field(default=3.0, gt=0)


Part = Annotated[CashEquity | CloudCredits | ComputeContract, Field(discriminator="kind")]


class Hybrid(_Strict):
    """A named mix of instruments from one investor; its total is the sum of its parts."""

    kind: Literal["hybrid"]
    label: str
    investor: str | None = None
    parts: list[Part] = Field(min_length=1)

    @property
    def amount_usd(self) -> float:
        return sum(p.amount_usd for p in self.parts)


InstrumentSpec = Annotated[CashEquity | CloudCredits | ComputeContract | Hybrid, Field(discriminator="kind")]


class Capital(_Strict):
    round_usd: float = Field(gt=0)
    instruments: list[InstrumentSpec] = Field(min_length=1)
    invest_surplus: bool = True
    """Spend what serving and training leave on more capacity (the growth pool) until money,
    power or supply runs out; False keeps it as cash."""

    @model_validator(mode="after")
    def _adds_up(self) -> Capital:
        total = sum(i.amount_usd for i in self.instruments)
        if not math.isclose(total, self.round_usd, rel_tol=1e-9):
            raise ValueError(f"instruments add up to ${total:,.0f}, not the round's ${self.round_usd:,.0f}")
        return self

    def flat(self) -> list[tuple[str, str | None, CashEquity | CloudCredits | ComputeContract]]:
        """(label, investor, instrument) with hybrids expanded into their parts."""
        out: list[tuple[str, str | None, CashEquity | CloudCredits | ComputeContract]] = []
        for i in self.instruments:
            if isinstance(i, Hybrid):
                out.extend((f"{i.label}: {p.label}", p.investor or i.investor, p) for p in i.parts)
            else:
                out.append((i.label, i.investor, i))
        return out


class Valuation(_Strict):
    pre_money_usd: float = Field(gt=0)
    investors: dict[str, float] = Field(min_length=1)
    """Investor -> new money (USD); must add up to the round."""
    existing: dict[str, float] | None = None
    """Existing holders' pre-round fractions (sum 1); None: one holder 'existing'."""
    reported_post_money_usd: float | None = Field(default=None, gt=0)


class Accelerator(_Strict):
    id: str
    price_usd: float | None = Field(default=None, gt=0)
    """Overrides the econ catalog's purchase price (same basis)."""
    supply_per_year: float | None = Field(default=None, ge=0)
    """Units this buyer can take delivery of over the first year, evenly; this caps the fleet
    of this accelerator (owned and rented). None (and no ``supply_per_quarter``): no cap."""
    supply_per_quarter: list[Annotated[float, Field(ge=0)]] | None = Field(default=None, min_length=1)
    """A delivery ramp instead: units per quarter from ``first_delivery_month``; caps the fleet
    at their sum."""
    first_delivery_month: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _one_supply(self) -> Accelerator:
        if self.supply_per_year is not None and self.supply_per_quarter is not None:
            raise ValueError("give supply_per_year or supply_per_quarter, not both")
        return self

    @property
    def supply_cap(self) -> float | None:
        """Units this buyer can take over the plan (None: no cap)."""
        if self.supply_per_quarter is not None:
            return float(sum(self.supply_per_quarter))
        return self.supply_per_year


class Site(_Strict):
    id: str | None = None
    """A campus of the econ catalog (sites.yaml); its power is the default."""
    name: str | None = None
    power_MW: float | None = Field(default=None, gt=0)
    """Utility (all-in) power available to owned capacity."""
    usd_per_kwh: float | None = Field(default=None, ge=0)
    pue: float | None = Field(default=None, ge=1, le=3)
    construction_start_month: float = Field(default=0.0, ge=-240, le=240)
    """Months after the round when construction starts (negative: already under way)."""
    first_power_months: float | None = Field(default=None, ge=0, le=240)
    """Months from construction start to the first energised hall (None: ``deployment``'s)."""
    build_MW_per_month: float | None = Field(default=None, gt=0)
    """Utility MW energised per month after first power (None: ``deployment``'s)."""

    @model_validator(mode="after")
    def _named(self) -> Site:
        if self.id is None and (self.name is None or self.power_MW is None):
            raise ValueError("a site needs a catalog id, or a name and power_MW")
        return self

    @property
    def label(self) -> str:
        return self.name or self.id or "site"


class Demand(_Strict):
    """Requests per day from users (weekly actives x daily fraction x requests per day), or a
    daily token volume (input + output); the fleet is sized at mean x peak_to_mean."""

    weekly_users: float | None = Field(default=None, gt=0)
    daily_active_fraction: float = Field(default=1.0, gt=0, le=1)
    requests_per_user_per_day: float | None = Field(default=None, gt=0)
    tokens_per_day: float | None = Field(default=None, gt=0)
    isl: int = Field(ge=1)
    osl: int = Field(ge=1)
    peak_to_mean: float = Field(default=1.5, ge=1)
    headroom: float = Field(default=0.1, ge=0, lt=10)

    @model_validator(mode="after")
    def _one_way(self) -> Demand:
        users = self.weekly_users is not None or self.requests_per_user_per_day is not None
        if users == (self.tokens_per_day is not None):
            raise ValueError("give weekly_users and requests_per_user_per_day, or tokens_per_day")
        if users and (self.weekly_users is None or self.requests_per_user_per_day is None):
            raise ValueError("weekly_users and requests_per_user_per_day go together")
        return self

    @property
    def requests_per_day(self) -> float:
        if self.tokens_per_day is not None:
            return self.tokens_per_day / (self.isl + self.osl)
        assert self.weekly_users is not None and self.requests_per_user_per_day is not None
        return self.weekly_users * self.daily_active_fraction * self.requests_per_user_per_day

    @property
    def mean_req_s(self) -> float:
        return self.requests_per_day / _DAY_S

    @property
    def peak_req_s(self) -> float:
        return self.mean_req_s * self.peak_to_mean


class ModelDemand(_Strict):
    name: str
    model: str
    """Catalog model id."""
    demand: Demand
    slo: dict[str, str] = Field(min_length=1)
    """e.g. {ttft_p99: 2s, tpot_p99: 50ms}."""
    api_price: str | None = None
    """A model of the dated public API price catalog (``econ/data/api_prices.yaml``) whose list
    price the served tokens are compared with (the margin); None: no comparison."""

    @model_validator(mode="after")
    def _slos(self) -> ModelDemand:
        for k, v in self.slo.items():
            try:
                parse_slo(f"{k}={v}")
            except HierroError as err:
                raise ValueError(str(err)) from None
        if self.api_price is not None:
            try:
                api_price(self.api_price)
            except HierroError as err:
                raise ValueError(f"api_price: {err}") from None
        return self

    def slo_targets(self) -> tuple[SloTarget, ...]:
        return tuple(parse_slo(f"{k}={v}") for k, v in self.slo.items())


class TrainingRun(_Strict):
    name: str
    model: str
    tokens: float = Field(gt=0)
    gpu: str
    gpus: int | None = Field(default=None, ge=1)
    deadline_days: float | None = Field(default=None, gt=0)
    """With no ``gpus``: the smallest cluster that finishes in time."""
    seq_len: int = Field(default=8192, ge=1)

    @model_validator(mode="after")
    def _sized(self) -> TrainingRun:
        if self.gpus is None and self.deadline_days is None:
            raise ValueError("give gpus or deadline_days")
        return self


class PlannerOptions(_Strict):
    """How hard the serving search works (the default keeps the whole plan near 10-30 s)."""

    weight_dtypes: list[str] = Field(default_factory=lambda: ["fp8", "fp4"], min_length=1)
    kv_dtypes: list[str] = Field(default_factory=lambda: ["fp8"], min_length=1)
    max_devices: int = Field(default=16, ge=1)
    max_pp: int = Field(default=1, ge=1)
    sim_top: int = Field(default=3, ge=1)
    sim_rounds: int = Field(default=2, ge=1)
    slice_replicas: int = Field(default=4, ge=1)
    """Replicas of the simulated slice of each fleet (see :mod:`hierro.plan.serving`)."""
    seed: int = 0


class Deployment(_Strict):
    """How fast owned capacity comes online; None takes the sourced defaults of
    ``econ/data/finance.yaml`` (``dc_first_power_months``, ``dc_build_MW_per_month``). A site's
    own figures take precedence."""

    first_power_months: float | None = Field(default=None, ge=0, le=240)
    build_MW_per_month: float | None = Field(default=None, gt=0)
    timeline_months: int | None = Field(default=None, ge=1, le=240)
    """Months the timeline covers (None: the horizon, or longer if capacity is still coming)."""


class Scenario(_Strict):
    name: str
    description: str = ""
    horizon_years: float = Field(default=4.0, gt=0, le=15)
    capital: Capital
    valuation: Valuation
    accelerators: list[Accelerator] = Field(min_length=1)
    sites: list[Site] = Field(default_factory=list)
    models: list[ModelDemand] = Field(default_factory=list)
    training: list[TrainingRun] = Field(default_factory=list)
    planner: PlannerOptions = Field(default_factory=PlannerOptions)
    deployment: Deployment = Field(default_factory=Deployment)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        new = sum(self.valuation.investors.values())
        if not math.isclose(new, self.capital.round_usd, rel_tol=1e-9):
            raise ValueError(
                f"valuation.investors add up to ${new:,.0f}, not the round's ${self.capital.round_usd:,.0f}"
            )
        ids = [a.id for a in self.accelerators]
        if len(set(ids)) != len(ids):
            raise ValueError("an accelerator is listed twice")
        for label, _, inst in self.capital.flat():
            if inst.gpu is not None and inst.gpu not in ids:
                raise ValueError(f"instrument {label!r} buys {inst.gpu!r}, which is not in accelerators")
        horizon_months = self.horizon_years * MONTHS_PER_YEAR
        for i, top in enumerate(self.capital.instruments):
            parts = [(f"{i}.parts.{j}", p) for j, p in enumerate(top.parts)] if isinstance(top, Hybrid) else [(f"{i}", top)]
            for where, inst in parts:
                if not isinstance(inst, CashEquity) and inst.start_month >= horizon_months:
                    raise ValueError(f"capital.instruments.{where}.start_month: {inst.start_month:g} is at or after "
                                     f"the end of the horizon (month {horizon_months:g}), so {inst.label!r} buys nothing")
        for run in self.training:
            if run.gpu not in ids:
                raise ValueError(f"training run {run.name!r} uses {run.gpu!r}, which is not in accelerators")
        names = [m.name for m in self.models] + [t.name for t in self.training]
        if len(set(names)) != len(names):
            raise ValueError("model and training names must be unique")
        return self


_KINDS = frozenset({"cash_equity", "cloud_credits", "compute_contract", "hybrid"})


def _message(err: ValidationError, where: str) -> str:
    """One line per problem, each naming the file and the field."""
    parts = []
    for e in err.errors():
        # pydantic puts the tag of a tagged union (an instrument's kind) in the path; the file has no such key
        loc = ".".join(str(p) for p in e["loc"]
                       if not str(p).startswith(("function-", "tagged-union")) and str(p) not in _KINDS)
        msg = str(e["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {loc or '(top level)'}: {msg}")
    return "\n".join(parts)


def scenario_from_dict(data: Any, where: str = "scenario") -> Scenario:
    """Validate ``data``; problems raise one line per bad field, each naming ``where``."""
    if not isinstance(data, Mapping):
        raise CatalogError(f"{where}: a scenario is a mapping of sections (capital, models, ...)")
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        raise CatalogError(_message(err, where)) from None


def _read(path: Path) -> Any:
    if not path.is_file():
        raise HierroError(f"scenario file {path} does not exist")
    return read_yaml(path)


@cache
def _default_data() -> Any:
    return read_yaml(files("hierro.plan") / "data" / "default.yaml")


def default_scenario() -> Scenario:
    """The built-in scenario (``hierro/plan/data/default.yaml``)."""
    return scenario_from_dict(_default_data(), "hierro/plan/data/default.yaml")


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: Any, overrides: Sequence[str]) -> Any:
    """``data`` with ``a.b.0.c=VALUE`` overrides applied (VALUE read as YAML; numbers like 1e9
    become floats)."""
    out = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise HierroError(f"cannot read override {item!r}; write PATH=VALUE, e.g. capital.round_usd=50e9")
        value = _parse_value(raw)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = float(value)
        node = out
        path = key.strip().split(".")
        for i, p in enumerate(path):
            last = i == len(path) - 1
            if isinstance(node, list):
                if not p.isdigit() or int(p) >= len(node):
                    raise HierroError(f"override {key!r}: {'.'.join(path[:i])} has no item {p}")
                if last:
                    node[int(p)] = value
                else:
                    node = node[int(p)]
            elif isinstance(node, dict):
                if last:
                    node[p] = value
                else:
                    if p not in node or not isinstance(node[p], (dict, list)):
                        node[p] = {}
                    node = node[p]
            else:
                raise HierroError(f"override {key!r}: {'.'.join(path[:i]) or '(top level)'} is not a section")
    return out


def load_scenario(path: Path | None = None, overrides: Sequence[str] = ()) -> Scenario:
    """The scenario at ``path`` (None: the built-in default), with ``overrides`` applied."""
    if path is None:
        data, where = _default_data(), "hierro/plan/data/default.yaml"
    else:
        data, where = _read(path), str(path)
    if overrides:
        data = apply_overrides(data, overrides)
    return scenario_from_dict(data, where)
