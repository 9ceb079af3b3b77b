"""Reading the economics data files (package data under ``hierro/econ/data``), validated on
first use and cached; nothing is read at import time."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from hierro.catalog import read_yaml
from hierro.catalog.load import validation_message
from hierro.econ.schema import (
    ApiPrice,
    ApiPriceFile,
    FinanceFile,
    HardwareEntry,
    OwnedPreset,
    Preset,
    Site,
    SiteFile,
    Tier,
    TierFile,
)
from hierro.errors import CatalogError, UnknownIdError

__all__ = [
    "ALL_IN_PUE",
    "api_price",
    "api_prices",
    "finance",
    "hardware_entries",
    "presets",
    "site",
    "sites",
    "tier",
    "tier_file",
]

T = TypeVar("T", bound=BaseModel)

ALL_IN_PUE = "semianalysis_all_in"
"""The ``pue`` key of a preset that derives PUE from SemiAnalysis' all-in utility W per GPU."""


def _read(name: str) -> object:
    return read_yaml(files("hierro.econ") / "data" / name)


def _validate(name: str, schema: type[T]) -> T:
    try:
        return schema.model_validate(_read(name))
    except ValidationError as err:
        raise CatalogError(f"econ/data/{name}: {validation_message(err)}") from None


@cache
def finance() -> FinanceFile:
    """The defaults of the first-principles TCO model (``finance.yaml``)."""
    return _validate("finance.yaml", FinanceFile)


@cache
def presets() -> dict[str, Preset]:
    """TCO presets by name (``presets.yaml``); owned presets' keys are checked against finance."""
    adapter: TypeAdapter[dict[str, Preset]] = TypeAdapter(dict[str, Preset])
    try:
        out = adapter.validate_python(_read("presets.yaml"))
    except ValidationError as err:
        raise CatalogError(f"econ/data/presets.yaml: {validation_message(err)}") from None
    fin = finance()
    for name, p in out.items():
        if isinstance(p, OwnedPreset):
            for table, key in (
                *((("pue", p.pue),) if p.pue != ALL_IN_PUE else ()),
                ("power_usd_per_kwh", p.power_price),
                ("cost_of_capital", p.wacc),
                ("depreciation_life_years", p.life),
            ):
                if key not in getattr(fin, table):
                    raise CatalogError(f"econ/data/presets.yaml: {name}: {key!r} is not in finance.yaml {table}")
    return dict(out)


@cache
def tier_file() -> TierFile:
    """SemiAnalysis $/GPU-hour tiers (``tiers.yaml``)."""
    return _validate("tiers.yaml", TierFile)


def tier(gpu: str) -> Tier | None:
    """The SemiAnalysis tier row of ``gpu``, or None if they publish none."""
    return next((t for t in tier_file().tiers if t.gpu == gpu), None)


@cache
def hardware_entries() -> dict[str, HardwareEntry]:
    """Per-accelerator TCO inputs (``hardware.yaml``) by catalog id."""
    adapter: TypeAdapter[dict[str, HardwareEntry]] = TypeAdapter(dict[str, HardwareEntry])
    try:
        return adapter.validate_python(_read("hardware.yaml"))
    except ValidationError as err:
        raise CatalogError(f"econ/data/hardware.yaml: {validation_message(err)}") from None


@cache
def api_prices() -> tuple[ApiPrice, ...]:
    """Dated public API list prices (``api_prices.yaml``)."""
    return _validate("api_prices.yaml", ApiPriceFile).prices


def api_price(model: str) -> ApiPrice:
    """The API price of ``model``; an unknown name lists the closest ones."""
    for p in api_prices():
        if p.model == model:
            return p
    raise UnknownIdError("api price", model, (p.model for p in api_prices()))


@cache
def sites() -> tuple[Site, ...]:
    """AI data-centre campuses (``sites.yaml``)."""
    return _validate("sites.yaml", SiteFile).sites


def site(site_id: str) -> Site:
    """The campus ``site_id``; an unknown id lists the closest ones."""
    for s in sites():
        if s.id == site_id:
            return s
    raise UnknownIdError("site", site_id, (s.id for s in sites()))
