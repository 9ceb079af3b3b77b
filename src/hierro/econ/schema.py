"""Schemas of the economics data files under ``hierro/econ/data``.

Every default is a :class:`~hierro.catalog.Figure` (value, source, as_of, quality, note);
tables whose rows share one source (SemiAnalysis tiers) carry it once. Validation is strict
(``extra="forbid"``) and the objects are frozen.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hierro.catalog import Figure
from hierro.catalog.schema import AsOf, Quality

__all__ = [
    "ApiPrice",
    "ApiPriceFile",
    "FinanceFile",
    "HardwareEntry",
    "OwnedPreset",
    "Preset",
    "RentedPreset",
    "Site",
    "SiteFile",
    "Tier",
    "TierFile",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FinanceFile(_Frozen):
    """``finance.yaml``: the defaults of the first-principles TCO model."""

    server_multiplier: Figure
    network_share: Figure
    storage_share: Figure
    dc_capex_usd_per_mw: Figure
    dc_capex_usd_per_mw_low: Figure
    dc_capex_usd_per_mw_high: Figure
    dc_all_in_usd_per_mw: Figure
    build_time_years: Figure
    dc_first_power_months: Figure
    dc_build_MW_per_month: Figure
    dc_life_years: Figure
    power_load_factor: Figure
    om_share_per_year: Figure
    utilisation: Figure
    cached_input_cost_ratio: Figure
    chip_to_server_power: dict[str, Figure]
    pue: dict[str, Figure]
    power_usd_per_kwh: dict[str, Figure]
    depreciation_life_years: dict[str, Figure]
    cost_of_capital: dict[str, Figure]

    @model_validator(mode="after")
    def _complete(self) -> FinanceFile:
        if "default" not in self.chip_to_server_power:
            raise ValueError("chip_to_server_power needs a 'default' entry")
        for name, item in self:
            figs = item.items() if isinstance(item, dict) else [("", item)]
            for key, fig in figs:
                if isinstance(fig, Figure) and fig.value is None:
                    where = f"{name}.{key}" if key else name
                    raise ValueError(f"{where}: a default needs a value, not null")
        return self


class OwnedPreset(_Frozen):
    """An owner tier: keys into ``finance.yaml``'s tables.

    ``pue: semianalysis_all_in`` takes SemiAnalysis' stated all-in utility W per GPU (``tiers.yaml``) as
    the provisioned power, i.e. PUE = all-in W / IT W. ``om_share_per_year``, when given, replaces the
    finance default. ``tier`` names the SemiAnalysis tier the preset is compared with."""

    kind: Literal["owned"]
    description: str
    pue: str
    power_price: str
    wacc: str
    life: str
    tier: Literal["hyperscaler", "neocloud"] | None = None
    om_share_per_year: Figure | None = None
    note: str = ""

    @model_validator(mode="after")
    def _om_has_value(self) -> OwnedPreset:
        if self.om_share_per_year is not None and self.om_share_per_year.value is None:
            raise ValueError("om_share_per_year: a preset figure needs a value, not null")
        return self


class RentedPreset(_Frozen):
    """A rented tier: the price of an accelerator-hour, all in."""

    kind: Literal["rented"]
    description: str
    price: Literal["rental_3yr", "on_demand"]


Preset = Annotated[OwnedPreset | RentedPreset, Field(discriminator="kind")]


class Tier(_Frozen):
    """One accelerator's row of the SemiAnalysis TCO tiers."""

    gpu: str
    hyperscaler_owned_usd_per_gpu_hour: float = Field(gt=0)
    neocloud_owned_usd_per_gpu_hour: float = Field(gt=0)
    rental_3yr_usd_per_gpu_hour: float = Field(gt=0)
    all_in_W_per_gpu: float = Field(gt=0)
    note: str = ""


class TierFile(_Frozen):
    """``tiers.yaml``: SemiAnalysis $/GPU-hour tiers, one source for all rows."""

    source: str = Field(min_length=3)
    as_of: AsOf
    quality: Quality
    tiers: tuple[Tier, ...]


class HardwareEntry(_Frozen):
    """``hardware.yaml``: TCO inputs of one accelerator that the catalog lacks."""

    price_usd: Figure
    basis: Literal["chip", "server"]
    it_W: Figure | None = None
    gpus_per_rack: Figure | None = None


class ApiPrice(_Frozen):
    """A public API list price, USD per million tokens."""

    model: str
    provider: str
    input_usd_per_mtok: float = Field(ge=0)
    output_usd_per_mtok: float = Field(ge=0)
    cached_input_usd_per_mtok: float | None = Field(default=None, ge=0)
    source: str = Field(min_length=3)
    as_of: AsOf
    quality: Quality
    note: str = ""


class ApiPriceFile(_Frozen):
    prices: tuple[ApiPrice, ...]


class Site(_Frozen):
    """An AI data-centre campus with its reported power, accelerators and capex."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")
    name: str
    operator: str
    tenant: str
    accelerator: str | None = None
    accelerators: float | None = Field(default=None, gt=0)
    power_W: float | None = Field(default=None, gt=0)
    capex_usd: float | None = Field(default=None, gt=0)
    buildings: int | None = Field(default=None, ge=1)
    build_time_years: float | None = Field(default=None, gt=0)
    source: str = Field(min_length=3)
    as_of: AsOf
    quality: Quality
    note: str = ""

    @property
    def W_per_accelerator(self) -> float | None:
        """Utility power per accelerator, all in (site power / accelerators)."""
        if self.power_W is None or self.accelerators is None:
            return None
        return self.power_W / self.accelerators


class SiteFile(_Frozen):
    sites: tuple[Site, ...]
