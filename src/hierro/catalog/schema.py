"""Schemas of the catalog files: one YAML file per accelerator, system and model.

Every figure is a :class:`Figure`: a value in SI units with its ``source``, ``as_of`` date and a
``quality`` tag. ``spec`` is a vendor or datasheet figure, ``measured`` was measured by someone
named in the source, ``estimate`` is an analyst's or our own estimate (the note says whose).
A value of ``null`` means unknown or not supported, and the note says which.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "AcceleratorFile",
    "CloudPrice",
    "Figure",
    "ModelFile",
    "PublishedParams",
    "Quality",
    "SystemFile",
]

Quality = Literal["spec", "measured", "estimate"]

_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def _check_date(value: str) -> str:
    if not _DATE.match(value):
        raise ValueError(f"as_of must be YYYY, YYYY-MM or YYYY-MM-DD, got {value!r}")
    return value


AsOf = Annotated[str, AfterValidator(_check_date)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Figure(_Frozen):
    """One sourced number, in SI units (the field name carries the unit)."""

    value: float | None
    source: str = Field(min_length=3)
    as_of: AsOf
    quality: Quality
    note: str = ""

    @model_validator(mode="after")
    def _non_negative(self) -> Figure:
        if self.value is not None and self.value < 0:
            raise ValueError(f"value must be >= 0, got {self.value}")
        return self


class CloudPrice(_Frozen):
    """A rental price of one accelerator for one hour."""

    provider: str
    tier: Literal["on_demand", "spot", "reserved_1yr", "reserved_3yr", "contract", "market_median"]
    usd_per_hour: float = Field(gt=0, lt=1000)
    source: str = Field(min_length=3)
    as_of: AsOf
    quality: Quality
    note: str = ""


Dtype = Literal["tf32", "bf16", "fp16", "fp8", "int8", "fp4", "int4"]
Vendor = Literal["nvidia", "amd", "google", "aws", "intel"]


class AcceleratorFile(_Frozen):
    """``catalog/gpus/<id>.yaml``: one accelerator SKU."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")
    name: str
    vendor: Vendor
    family: str = Field(
        description="hardware family that shares calibrated efficiencies "
        "(ampere, ada, hopper, blackwell, blackwell-ultra, cdna3, cdna4, tpu, trainium, gaudi)"
    )
    system: str = Field(description="id of the default system (node or rack) it ships in")
    peak_flops: dict[Dtype, Figure] = Field(
        description="dense tensor-core peak in FLOP/s per dtype (never the sparse figure)"
    )
    hbm_bytes: Figure
    hbm_bw_Bps: Figure
    scale_up_bw_Bps: Figure = Field(description="per accelerator, per direction, bytes/s")
    scale_out_bw_Bps: Figure = Field(description="per accelerator, bytes/s")
    host_bw_Bps: Figure = Field(
        description="device <-> host memory link (PCIe or NVLink-C2C), per accelerator, per "
        "direction, bytes/s: the path of KV blocks swapped to host memory; null where unknown"
    )
    tdp_W: Figure
    price_usd: Figure | None = None
    cloud_prices: tuple[CloudPrice, ...] = ()
    notes: str = ""

    @model_validator(mode="after")
    def _has_bf16(self) -> AcceleratorFile:
        fig = self.peak_flops.get("bf16")
        if fig is None or fig.value is None:
            raise ValueError("peak_flops.bf16 is required (every accelerator here runs bf16)")
        if not 1e12 <= fig.value <= 1e16:
            raise ValueError(f"peak_flops.bf16 = {fig.value:g} FLOP/s is not plausible")
        hbm = self.hbm_bytes.value
        if hbm is None or not 1e9 <= hbm <= 1e12:
            raise ValueError(f"hbm_bytes = {hbm} is not plausible (bytes, e.g. 80e9)")
        bw = self.hbm_bw_Bps.value
        if bw is None or not 1e11 <= bw <= 1e14:
            raise ValueError(f"hbm_bw_Bps = {bw} is not plausible (bytes/s, e.g. 3.35e12)")
        return self


class SystemFile(_Frozen):
    """``catalog/systems/<id>.yaml``: the node or rack an accelerator ships in."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")
    name: str
    accelerator: str
    accelerators_per_node: int = Field(ge=1, le=1024)
    scale_up_domain: int = Field(
        ge=1, le=65536, description="accelerators joined by the scale-up fabric"
    )
    scale_up_fabric: str
    scale_out_fabric: str = ""
    node_power_W: Figure
    source: str = Field(min_length=3)
    as_of: AsOf
    notes: str = ""


class PublishedParams(_Frozen):
    total: float = Field(gt=0)
    active: float = Field(gt=0)
    source: str = Field(min_length=3)
    as_of: AsOf
    quality: Quality = "spec"
    includes: tuple[Literal["vision_encoder", "mtp"], ...] = ()
    """Parts counted in the published total that hierro does not model (their size unpublished)."""
    note: str = ""


class ModelFile(_Frozen):
    """``catalog/models/<id>.yaml``: metadata plus the model's Hugging Face ``config.json``."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")
    name: str
    hf_id: str
    aliases: tuple[str, ...] = ()
    source: str = Field(min_length=3, description="where the config.json was read")
    as_of: AsOf
    license: str = ""
    published_params: PublishedParams
    notes: str = ""
    config: dict[str, Any]
