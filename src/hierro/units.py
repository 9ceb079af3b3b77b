"""SI units and conversions: the only module where 1e9, 2**30 and "TFLOPS" appear.

Inside hierro every quantity is in SI base units: seconds, bytes, FLOP, FLOP/s, bytes/s,
watts, US dollars. Names at the edges (catalog fields, CLI options, JSON output) carry the
unit as a suffix (``hbm_bw_Bps``, ``ttft_ms``); the conversions live here.
"""

from __future__ import annotations

__all__ = [
    "BITS_PER_BYTE",
    "DTYPE_BYTES",
    "GB",
    "GIB",
    "GIGA",
    "HOUR",
    "KILO",
    "MEGA",
    "MIB",
    "MICRO",
    "MILLI",
    "PETA",
    "TB",
    "TERA",
    "YEAR",
    "dtype_bytes",
    "from_gbit_per_s",
    "from_tflops",
    "to_ms",
]

KILO = 1e3
MEGA = 1e6
GIGA = 1e9
TERA = 1e12
PETA = 1e15
MILLI = 1e-3
MICRO = 1e-6

GB = 1e9
"""Decimal gigabyte (bandwidths, link rates; vendors' HBM capacities are binary, see GIB)."""
TB = 1e12
GIB = 2**30
"""Binary gibibyte: HBM capacities ("80 GB" is 80 GiB) and engine memory budgets."""
MIB = 2**20

HOUR = 3600.0
YEAR = 365.25 * 24 * HOUR
"""Julian year in seconds (depreciation lives, contract terms)."""
BITS_PER_BYTE = 8

# Bytes per element of each numeric format. fp4/int4 pack two values per byte; their block
# scales are accounted for separately (see specs.model.weight_bytes).
DTYPE_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "tf32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "fp4": 0.5,
    "int4": 0.5,
}


def dtype_bytes(dtype: str) -> float:
    """Bytes per element of ``dtype`` (one of :data:`DTYPE_BYTES`)."""
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        known = ", ".join(DTYPE_BYTES)
        raise ValueError(f"unknown dtype {dtype!r}; known: {known}") from None


def from_tflops(tflops: float) -> float:
    """TFLOP/s -> FLOP/s."""
    return tflops * TERA


def from_gbit_per_s(gbit_s: float) -> float:
    """Gbit/s (network line rate) -> bytes/s."""
    return gbit_s * GIGA / BITS_PER_BYTE


def to_ms(seconds: float) -> float:
    """Seconds -> milliseconds, for output at the edges."""
    return seconds / MILLI
