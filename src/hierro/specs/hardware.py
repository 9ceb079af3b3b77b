"""Accelerators and systems as frozen values in SI units, built from the catalog."""

from __future__ import annotations

from dataclasses import dataclass, field

from hierro.catalog import AcceleratorFile, SystemFile, accelerator_files, system_files
from hierro.errors import PlanError, UnknownIdError

__all__ = ["Accelerator", "System", "get_accelerator", "get_system", "list_accelerators"]


@dataclass(frozen=True, slots=True)
class Accelerator:
    """One accelerator SKU: peaks, memory and links, per device, SI units."""

    id: str
    name: str
    vendor: str
    family: str
    peak_flops: dict[str, float] = field(hash=False)
    """Dense peak FLOP/s by dtype (only dtypes the chip supports natively)."""
    hbm_bytes: float
    hbm_bw_Bps: float
    scale_up_bw_Bps: float
    scale_out_bw_Bps: float
    tdp_W: float
    system_id: str
    price_usd: float | None = None
    host_bw_Bps: float | None = None
    """Device <-> host memory link per direction (PCIe or NVLink-C2C); None where the catalog
    has no sourced figure."""

    def flops(self, dtype: str) -> float:
        """Dense peak FLOP/s for GEMMs in ``dtype``.

        A dtype the chip has no tensor-core path for runs at the next wider one it has (fp4
        weights on Hopper are dequantised to fp8 or bf16 in the kernel), so its peak is that
        dtype's.
        """
        for d in _WIDER.get(dtype, (dtype,)):
            if d in self.peak_flops:
                return self.peak_flops[d]
        return self.peak_flops["bf16"]

    def ridge_point(self, dtype: str = "bf16") -> float:
        """Arithmetic intensity (FLOP/byte) where compute and memory time are equal."""
        return self.flops(dtype) / self.hbm_bw_Bps


# Fallback order when a dtype has no native path.
_WIDER: dict[str, tuple[str, ...]] = {
    "fp4": ("fp4", "fp8", "bf16"),
    "int4": ("int4", "int8", "fp8", "bf16"),
    "fp8": ("fp8", "bf16"),
    "int8": ("int8", "fp8", "bf16"),
    "fp16": ("fp16", "bf16"),
    "bf16": ("bf16",),
    "tf32": ("tf32", "bf16"),
}


@dataclass(frozen=True, slots=True)
class System:
    """The node or rack an accelerator ships in."""

    id: str
    name: str
    accelerator_id: str
    accelerators_per_node: int
    scale_up_domain: int
    node_power_W: float | None


def _accelerator(f: AcceleratorFile) -> Accelerator:
    peaks: dict[str, float] = {str(k): v.value for k, v in f.peak_flops.items() if v.value is not None}
    return Accelerator(
        id=f.id,
        name=f.name,
        vendor=f.vendor,
        family=f.family,
        peak_flops=peaks,
        hbm_bytes=_req(f.hbm_bytes.value, f.id, "hbm_bytes"),
        hbm_bw_Bps=_req(f.hbm_bw_Bps.value, f.id, "hbm_bw_Bps"),
        scale_up_bw_Bps=f.scale_up_bw_Bps.value or 0.0,
        scale_out_bw_Bps=f.scale_out_bw_Bps.value or 0.0,
        tdp_W=f.tdp_W.value or 0.0,
        system_id=f.system,
        price_usd=f.price_usd.value if f.price_usd is not None else None,
        host_bw_Bps=f.host_bw_Bps.value,
    )


def _req(v: float | None, item: str, name: str) -> float:
    if v is None:
        raise PlanError(f"accelerator {item!r} has no {name} in the catalog; cannot model it")
    return v


def get_accelerator(accel_id: str) -> Accelerator:
    """The accelerator ``accel_id``; an unknown id names the closest ones."""
    files = accelerator_files()
    f = files.get(accel_id.lower())
    if f is None:
        raise UnknownIdError("gpu", accel_id, files)
    return _accelerator(f)


def list_accelerators() -> list[Accelerator]:
    return [_accelerator(f) for f in accelerator_files().values()]


def _system(f: SystemFile) -> System:
    return System(
        id=f.id,
        name=f.name,
        accelerator_id=f.accelerator,
        accelerators_per_node=f.accelerators_per_node,
        scale_up_domain=f.scale_up_domain,
        node_power_W=f.node_power_W.value,
    )


def get_system(system_id: str) -> System:
    files = system_files()
    f = files.get(system_id)
    if f is None:
        raise UnknownIdError("system", system_id, files)
    return _system(f)
