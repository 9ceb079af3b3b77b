"""The shared-fleet file of ``hierro search --shared FLEET.yaml``: several models, each with its
lengths, SLOs and demand, searched over one space and pooled by :func:`search_shared`.

::

    headroom: 0.1                 # every model's, unless its demand says otherwise
    gpus: [h100-sxm, h200-sxm]    # the space (default: every accelerator a model fits on)
    dtypes: [fp8]
    kv_dtypes: [fp8]
    max_gpus_per_replica: 8
    objective: cost
    models:
      - name: chat
        model: llama-3.1-70b
        isl: 2048
        osl: 512
        slo: {ttft_p99: 1s, tpot_p99: 50ms}
        demand: {qps: 20, peak_to_mean: 1.5, peak_hour: 14}   # a diurnal day peaking at 20 req/s
      - name: batch
        model: llama-3.1-8b
        isl: 4096
        osl: 256
        slo: {e2e_p99: 60s}
        demand: {curve_file: batch.csv}                          # req_s per slot, 24 rows

A demand is one of ``qps``, ``tokens_per_day``, ``curve`` or ``curve_file``
(:class:`~hierro.search.demand.DemandSpec`); curve files are read relative to the fleet file.
Curves of the models must have the same slots (a diurnal day has 24). The file is validated
whole (pydantic, unknown keys refused); a bad one raises :class:`CatalogError` in one line
naming the file and every bad field.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hierro.catalog import read_yaml
from hierro.errors import CatalogError, HierroError
from hierro.perf import Calibration
from hierro.search.demand import DemandSpec, validation_message
from hierro.search.optimize import SearchRequest
from hierro.search.slo import parse_slos
from hierro.search.space import SearchSpace

__all__ = ["SharedEntry", "SharedSpec", "load_shared", "shared_from_dict"]


class SharedEntry(BaseModel):
    """One model of the fleet."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    model: str = Field(min_length=1)
    """Catalog id, config.json path or cached HF repo id."""
    isl: int = Field(ge=1)
    osl: int = Field(ge=1)
    slo: dict[str, str] = Field(min_length=1)
    """e.g. {ttft_p99: 1s, tpot_p99: 50ms}."""
    demand: DemandSpec

    @field_validator("slo")
    @classmethod
    def _slos(cls, v: dict[str, str]) -> dict[str, str]:
        try:
            parse_slos([f"{k}={d}" for k, d in v.items()])
        except HierroError as err:
            raise ValueError(str(err)) from None
        return v

    @property
    def label(self) -> str:
        return self.name or self.model


class SharedSpec(BaseModel):
    """A shared fleet: the models and the space they are searched over."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: tuple[SharedEntry, ...] = Field(min_length=1)
    headroom: float = Field(default=0.1, ge=0, lt=10)
    gpus: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ("bf16", "fp8", "fp4")
    kv_dtypes: tuple[str, ...] = ("bf16", "fp8")
    frameworks: tuple[str, ...] = ("vllm",)
    token_budgets: tuple[int, ...] | None = Field(default=None, min_length=1)
    """Token budgets per step to sweep (default: the space's)."""
    max_gpus_per_replica: int = Field(default=64, ge=1)
    max_pp: int = Field(default=8, ge=1)
    objective: Literal["cost", "gpus", "goodput"] = "cost"
    disagg: bool = False
    mixed_pools: bool = True
    sim_top: int = Field(default=20, ge=1)
    preset: str | None = None
    seed: int = 0

    @model_validator(mode="after")
    def _names(self) -> SharedSpec:
        labels = [m.label for m in self.models]
        dup = sorted({n for n in labels if labels.count(n) > 1})
        if dup:
            raise ValueError(f"model names must be unique; give `name` to tell apart: {', '.join(dup)}")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.label for m in self.models)

    def space(self) -> SearchSpace:
        kw: dict[str, Any] = {}
        if self.token_budgets is not None:
            kw["max_batched_tokens"] = self.token_budgets
        return SearchSpace(gpus=self.gpus, weight_dtypes=self.dtypes, kv_dtypes=self.kv_dtypes,
                           max_devices=self.max_gpus_per_replica, max_pp=self.max_pp, frameworks=self.frameworks,
                           **kw)

    def requests(self, base_dir: Path | None = None, calib: Calibration | None = None) -> list[SearchRequest]:
        """One search request per model (curve files relative to ``base_dir``)."""
        space = self.space()
        out = []
        for m in self.models:
            ds = m.demand
            if "headroom" not in ds.model_fields_set:
                ds = ds.model_copy(update={"headroom": self.headroom})
            out.append(SearchRequest(
                m.model, m.isl, m.osl, ds.demand(m.isl, m.osl, base_dir),
                parse_slos([f"{k}={v}" for k, v in m.slo.items()]), space=space, objective=self.objective,
                sim_top=self.sim_top, seed=self.seed, preset=self.preset, calib=calib, disagg=self.disagg,
                mixed_pools=self.mixed_pools,
            ))
        return out


def shared_from_dict(data: Any, where: str = "shared fleet") -> SharedSpec:
    """Validate ``data``; problems raise one line naming ``where`` and every bad field."""
    if not isinstance(data, Mapping):
        raise CatalogError(f"{where}: a shared fleet is a mapping with a `models` list")
    try:
        return SharedSpec.model_validate(data)
    except ValidationError as err:
        raise CatalogError(validation_message(err, where)) from None


def load_shared(path: Path) -> SharedSpec:
    if not path.is_file():
        raise HierroError(f"shared fleet file {path} does not exist")
    return shared_from_dict(read_yaml(path), str(path))
