"""Latency objectives (``ttft_p99=1s``) and the demand a fleet must carry.

The screen knows steady-state means only, so it applies a margin per percentile: a
configuration passes the screen when ``mean x SCREEN_FACTOR <= limit``. The factors are
deliberately lenient (the closed-loop operating point the screen prices is more loaded than the
fleet will be, since replicas are sized with headroom); the simulator then measures the
percentiles at the target load and has the last word.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from hierro.errors import HierroError
from hierro.units import HOUR, MICRO, MILLI

__all__ = [
    "SCREEN_FACTOR",
    "Demand",
    "SloTarget",
    "parse_duration",
    "parse_slo",
    "parse_slos",
]

Metric = Literal["ttft", "tpot", "e2e"]
Pct = Literal["mean", "p50", "p90", "p99"]
_METRICS: tuple[Metric, ...] = ("ttft", "tpot", "e2e")
_PCTS: tuple[Pct, ...] = ("mean", "p50", "p90", "p99")

SCREEN_FACTOR: dict[Pct, float] = {"mean": 1.0, "p50": 0.9, "p90": 1.0, "p99": 1.0}
"""Screen margin per percentile, applied to the analytic mean. Not a fitted tail model: the
simulator confirms the percentiles of the candidates that pass."""

_UNITS = {"s": 1.0, "ms": MILLI, "us": MICRO, "µs": MICRO, "m": 60.0, "min": 60.0}


def parse_duration(text: str) -> float:
    """Seconds of ``1s``, ``40ms``, ``250us``, ``2min`` (a bare number is seconds)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zµ]*)\s*", text)
    if not m or m.group(2) not in {"", *_UNITS}:
        raise HierroError(f"cannot read duration {text!r}; write e.g. 1s, 40ms, 250us")
    return float(m.group(1)) * _UNITS.get(m.group(2) or "s", 1.0)


@dataclass(frozen=True, slots=True)
class SloTarget:
    """``pct`` of ``metric`` must not exceed ``limit_s`` seconds."""

    metric: Metric
    pct: Pct
    limit_s: float

    def __post_init__(self) -> None:
        if not self.limit_s > 0:
            raise HierroError(f"the {self.name} limit must be > 0 s, got {self.limit_s}")

    @property
    def name(self) -> str:
        return f"{self.metric}_{self.pct}"

    def describe(self) -> str:
        return f"{self.name} <= {_fmt(self.limit_s)}"


def _fmt(s: float) -> str:
    return f"{s * 1e3:.3g} ms" if s < 1 else f"{s:.3g} s"


def parse_slo(text: str) -> SloTarget:
    """``ttft_p99=1s``, ``tpot_p90=40ms``, ``e2e_mean=20s`` (``ttft=1s`` means p99)."""
    key, sep, val = text.partition("=")
    if not sep:
        raise HierroError(f"cannot read SLO {text!r}; write METRIC_PCT=DURATION, e.g. ttft_p99=1s")
    metric, _, pct = key.strip().lower().partition("_")
    pct = pct or "p99"
    if metric not in _METRICS or pct not in _PCTS:
        raise HierroError(
            f"unknown SLO {key!r}; use one of {', '.join(m + '_' + p for m in _METRICS for p in _PCTS)}"
        )
    return SloTarget(metric, pct, parse_duration(val))


def parse_slos(texts: Sequence[str]) -> tuple[SloTarget, ...]:
    out = tuple(parse_slo(t) for t in texts)
    names = [s.name for s in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise HierroError(f"SLO given twice: {', '.join(sorted(dup))}")
    return out


@dataclass(frozen=True, slots=True)
class Demand:
    """Requests per second the fleet must carry at its peak, with a headroom on top.

    Replicas are sized for peak x (1 + headroom): the headroom absorbs bursts beyond the Poisson
    variability the simulator already has, and keeps replicas off the knee of the latency curve.
    ``curve`` (optional) is the rate in each slot of a period (e.g. 24 hours) whose largest value is
    the peak: the fleet is sized for that peak, and :func:`hierro.search.demand.curve_fleet` says
    how many replicas each slot needs (:mod:`hierro.search.demand` builds curves).
    """

    peak_req_s: float
    headroom: float = 0.1
    curve: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not (self.peak_req_s > 0 and math.isfinite(self.peak_req_s)):
            raise HierroError(f"demand must be a finite rate > 0 requests/s, got {self.peak_req_s}")
        if not 0 <= self.headroom < 10:
            raise HierroError(f"headroom must be in [0, 10), got {self.headroom}")
        if self.curve:
            if any(not (math.isfinite(v) and v >= 0) for v in self.curve):
                raise HierroError("the demand curve has a negative or non-finite rate")
            if not math.isclose(max(self.curve), self.peak_req_s, rel_tol=1e-9):
                raise HierroError(
                    f"the peak {self.peak_req_s:g} req/s is not the curve's largest rate {max(self.curve):g}"
                )

    @property
    def mean_req_s(self) -> float:
        """The curve's mean rate (the peak when there is no curve)."""
        return sum(self.curve) / len(self.curve) if self.curve else self.peak_req_s

    @classmethod
    def from_curve(cls, req_s: Sequence[float], headroom: float = 0.1) -> Demand:
        """Size for the peak of a demand curve (e.g. a diurnal profile, requests/s per slot)."""
        if not len(req_s):
            raise HierroError("the demand curve is empty")
        curve = tuple(float(v) for v in req_s)
        if any(not (math.isfinite(v) and v >= 0) for v in curve):
            raise HierroError("the demand curve has a negative or non-finite rate")
        if not max(curve) > 0:
            raise HierroError("the demand curve is zero in every slot")
        return cls(max(curve), headroom, curve)

    @classmethod
    def from_tokens_per_day(cls, tokens_per_day: float, isl: int, osl: int, *, peak_to_mean: float = 1.0,
                            headroom: float = 0.1) -> Demand:
        """Requests/s of a daily token volume (input + output) with a peak-to-mean ratio."""
        if not (tokens_per_day > 0 and math.isfinite(tokens_per_day)) or not peak_to_mean >= 1:
            raise HierroError("tokens per day must be a finite number > 0 and the peak-to-mean ratio >= 1")
        mean = tokens_per_day / (24 * HOUR) / (isl + osl)
        return cls(mean * peak_to_mean, headroom)
