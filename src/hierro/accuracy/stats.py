"""Error statistics of predictions against measurements.

For one pair (measured m > 0, predicted p):

* signed relative error  e = (p - m) / m      (> 0: the prediction is high)
* absolute percentage error  APE = |p - m| / m = |e|

Over n pairs, :class:`ErrorStats` reports the median APE, the 90th percentile of APE (linear
interpolation between order statistics, numpy's default) and the median signed error (the
bias). Values are fractions: 0.10 means 10 %. Count each measurement once: drop duplicate rows
with :func:`hierro.accuracy.measurements.unique` before pairing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hierro.accuracy.measurements import unique

__all__ = ["ErrorStats", "error_stats", "unique"]


@dataclass(frozen=True, slots=True)
class ErrorStats:
    """Summary of n (measured, predicted) pairs; NaN statistics when n == 0."""

    n: int
    median_ape: float
    p90_ape: float
    median_signed: float

    def to_dict(self) -> dict[str, int | float | None]:
        """``{"n", "median_ape", "p90_ape", "median_signed"}``; NaN becomes None (valid JSON)."""
        return {
            "n": self.n,
            "median_ape": _finite_or_none(self.median_ape),
            "p90_ape": _finite_or_none(self.p90_ape),
            "median_signed": _finite_or_none(self.median_signed),
        }


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def error_stats(measured: Sequence[float], predicted: Sequence[float]) -> ErrorStats:
    """APE and bias statistics of paired sequences (same length, measured > 0, all finite)."""
    m = np.asarray(measured, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    if m.shape != p.shape or m.ndim != 1:
        raise ValueError(
            f"measured and predicted must be 1-D of one length, got {m.shape}, {p.shape}"
        )
    if m.size == 0:
        return ErrorStats(n=0, median_ape=math.nan, p90_ape=math.nan, median_signed=math.nan)
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(p))):
        raise ValueError("measured and predicted values must be finite")
    if np.any(m <= 0):
        raise ValueError("measured values must be positive: relative errors divide by them")
    signed = (p - m) / m
    ape = np.abs(signed)
    return ErrorStats(
        n=int(m.size),
        median_ape=float(np.median(ape)),
        p90_ape=float(np.percentile(ape, 90)),
        median_signed=float(np.median(signed)),
    )
