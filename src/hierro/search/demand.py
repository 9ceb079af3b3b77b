"""Demand over a day: where a curve of request rates comes from, and the fleet each slot needs.

A curve is the request rate in each of equal slots of a period (24 hourly slots for a day). The
search sizes the fleet for its peak with headroom (:class:`~hierro.search.slo.Demand`); here:

- :func:`load_curve`: a measured curve from a CSV file with a ``req_s`` column, one row per slot;
- :func:`diurnal`: a day of 24 hourly slots from a mean rate and a peak-to-mean ratio ``r``,
  ``λ(h) = mean x (1 + (r - 1) cos(2π (h - h_peak) / 24))``. This is the first harmonic of a daily
  cycle (the shape :func:`hierro.sim.diurnal_rate` also draws arrivals from), an idealisation and
  not a fit to any trace; it peaks at ``r x mean`` at ``h_peak`` and stays >= 0 for ``r <= 2``. For a
  measured day, give the CSV instead;
- :class:`DemandSpec`: the one validated description the CLI flags and the shared-fleet file
  (:mod:`hierro.search.fleetfile`) both use (a peak rate, a daily token volume, or a curve);
- :func:`curve_fleet`: the replicas a recommended configuration needs in every slot, by the
  screen's rule ``ceil(λ x (1 + headroom) / r)`` with at least one replica (the model stays
  loaded), and the GPUs held for the peak against the GPUs an autoscaled fleet uses on average.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hierro.errors import CatalogError, HierroError
from hierro.search.optimize import Recommendation, SearchResult
from hierro.search.slo import Demand
from hierro.units import HOUR, MEGA

__all__ = [
    "DEFAULT_PEAK_HOUR",
    "HOURS",
    "CurveFleet",
    "CurvePart",
    "DemandSpec",
    "curve_fleet",
    "diurnal",
    "load_curve",
    "validation_message",
]

HOURS = 24
"""Slots of a :func:`diurnal` day."""
DEFAULT_PEAK_HOUR = 12.0
"""Slot of the diurnal peak when none is given: a convention of the slot clock, not data. Only the
difference between the peak hours of models sharing a fleet changes a result."""


def validation_message(err: ValidationError, where: str) -> str:
    """One line naming ``where`` and every bad field."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith(("function-", "tagged-union")))
        msg = str(e["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return f"{where}: {'; '.join(parts)}"


def diurnal(mean_req_s: float, peak_to_mean: float, peak_hour: float = DEFAULT_PEAK_HOUR) -> tuple[float, ...]:
    """24 hourly rates of a sinusoidal day (see the module docstring)."""
    if not (mean_req_s > 0 and math.isfinite(mean_req_s)):
        raise HierroError(f"the mean demand must be a finite rate > 0 requests/s, got {mean_req_s}")
    if not 1.0 <= peak_to_mean <= 2.0:
        raise HierroError(
            f"a sinusoidal day has a peak-to-mean ratio in [1, 2], got {peak_to_mean:g}; "
            "give the measured curve as a CSV (--demand-curve) instead"
        )
    if not 0.0 <= peak_hour < HOURS:
        raise HierroError(f"the peak hour must lie in [0, 24), got {peak_hour:g}")
    a = peak_to_mean - 1.0
    return tuple(
        mean_req_s * max(0.0, 1.0 + a * math.cos(2.0 * math.pi * (h - peak_hour) / HOURS)) for h in range(HOURS)
    )


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True)

    req_s: float = Field(ge=0, allow_inf_nan=False)


def load_curve(path: Path) -> tuple[float, ...]:
    """Request rates per slot from a CSV with a ``req_s`` (or ``qps``) column, one row a slot;
    other columns (an hour label, say) are ignored."""
    if not path.is_file():
        raise HierroError(f"demand curve file {path} does not exist")
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
            header = [h.strip() for h in (rows[0].keys() if rows else [])]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise CatalogError(f"{path}: cannot read the CSV ({err})") from None
    if not rows:
        raise CatalogError(f"{path}: no rows; write a header with a req_s column and one row per slot")
    col = next((h for h in ("req_s", "qps") if h in header), None)
    if col is None:
        raise CatalogError(f"{path}: no req_s column (columns: {', '.join(header)})")
    out = []
    for n, row in enumerate(rows, 2):
        raw = {k.strip(): v for k, v in row.items() if k is not None}.get(col)
        try:
            out.append(_Row.model_validate({"req_s": (raw or "").strip()}).req_s)
        except ValidationError as err:
            raise CatalogError(validation_message(err, f"{path}: line {n}")) from None
    if not max(out) > 0:
        raise CatalogError(f"{path}: the demand is zero in every slot")
    return tuple(out)


class DemandSpec(BaseModel):
    """A model's demand: a peak rate (``qps``), a daily token volume (``tokens_per_day``, input
    plus output), or a curve (``curve`` inline or ``curve_file``, requests/s per slot). With
    ``qps`` or ``tokens_per_day``, a ``peak_to_mean`` above 1 makes a :func:`diurnal` day
    (``qps`` is then its peak); without it the demand is flat."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    qps: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    tokens_per_day: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    curve: tuple[float, ...] | None = Field(default=None, min_length=1)
    curve_file: Path | None = None
    peak_to_mean: float = Field(default=1.0, ge=1.0, le=2.0)
    peak_hour: float = Field(default=DEFAULT_PEAK_HOUR, ge=0, lt=HOURS)
    headroom: float = Field(default=0.1, ge=0, lt=10)

    @model_validator(mode="after")
    def _one_source(self) -> DemandSpec:
        given = [k for k in ("qps", "tokens_per_day", "curve", "curve_file") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of qps, tokens_per_day, curve or curve_file"
                + (f" (got {', '.join(given)})" if given else "")
            )
        shaped = {"peak_to_mean", "peak_hour"} & self.model_fields_set
        if shaped and given[0] in ("curve", "curve_file"):
            raise ValueError(f"{' and '.join(sorted(shaped))} shape a diurnal day; a curve has its own shape")
        if self.curve is not None and (
            any(not (math.isfinite(v) and v >= 0) for v in self.curve) or not max(self.curve) > 0
        ):
            raise ValueError("curve rates must be finite, >= 0 and not all zero")
        return self

    @property
    def kind(self) -> Literal["flat", "diurnal", "curve"]:
        if self.curve is not None or self.curve_file is not None:
            return "curve"
        return "diurnal" if self.peak_to_mean > 1.0 else "flat"

    def demand(self, isl: int, osl: int, base_dir: Path | None = None) -> Demand:
        """The :class:`Demand` (``curve_file`` relative to ``base_dir`` when not absolute)."""
        if self.curve is not None:
            return Demand.from_curve(self.curve, self.headroom)
        if self.curve_file is not None:
            p = self.curve_file if self.curve_file.is_absolute() or base_dir is None else base_dir / self.curve_file
            return Demand.from_curve(load_curve(p), self.headroom)
        if self.qps is not None:
            if self.peak_to_mean == 1.0:
                return Demand(self.qps, self.headroom)
            # qps is the peak slot's rate (an off-hour peak_hour falls between slots)
            shape = diurnal(1.0, self.peak_to_mean, self.peak_hour)
            return Demand.from_curve([v * self.qps / max(shape) for v in shape], self.headroom)
        assert self.tokens_per_day is not None
        mean = self.tokens_per_day / (HOURS * HOUR) / (isl + osl)
        if self.peak_to_mean > 1.0:
            return Demand.from_curve(diurnal(mean, self.peak_to_mean, self.peak_hour), self.headroom)
        return Demand(mean, self.headroom)


def demand_from(spec: dict[str, object], isl: int, osl: int, where: str, base_dir: Path | None = None) -> Demand:
    """Validate ``spec`` as a :class:`DemandSpec` (one-line error naming ``where``) and build it."""
    try:
        ds = DemandSpec.model_validate(spec)
    except ValidationError as err:
        raise HierroError(validation_message(err, where)) from None
    return ds.demand(isl, osl, base_dir)


@dataclass(frozen=True, slots=True)
class CurvePart:
    """Replicas of one kind (``replica``, or a disaggregated ``prefill`` / ``decode`` pool) per slot."""

    role: Literal["replica", "prefill", "decode"]
    gpu: str
    devices: int
    """Accelerators per replica."""
    replicas_per_slot: tuple[int, ...]
    usd_per_gpu_hour: float
    W_per_gpu: float

    @property
    def gpus_per_slot(self) -> tuple[int, ...]:
        return tuple(r * self.devices for r in self.replicas_per_slot)

    @property
    def held_gpus(self) -> int:
        return max(self.gpus_per_slot)


@dataclass(frozen=True, slots=True)
class CurveFleet:
    """A recommendation over a demand curve: the GPUs held for the peak, and per slot."""

    curve_req_s: tuple[float, ...]
    headroom: float
    parts: tuple[CurvePart, ...]

    @property
    def slots(self) -> int:
        return len(self.curve_req_s)

    @property
    def replicas_per_slot(self) -> tuple[int, ...]:
        return tuple(sum(p.replicas_per_slot[t] for p in self.parts) for t in range(self.slots))

    @property
    def gpus_per_slot(self) -> tuple[int, ...]:
        return tuple(sum(p.gpus_per_slot[t] for p in self.parts) for t in range(self.slots))

    @property
    def peak_slot(self) -> int:
        """The slot of the highest demand (first on ties); it needs the most GPUs."""
        return self.curve_req_s.index(max(self.curve_req_s))

    @property
    def held_gpus(self) -> int:
        """GPUs held all period: each part at its peak (they all peak in the busiest slot)."""
        return sum(p.held_gpus for p in self.parts)

    @property
    def mean_gpus(self) -> float:
        """GPUs an autoscaled fleet uses on average over the slots."""
        return sum(self.gpus_per_slot) / self.slots

    @property
    def held_usd_per_hour(self) -> float:
        return sum(p.held_gpus * p.usd_per_gpu_hour for p in self.parts)

    @property
    def mean_usd_per_hour(self) -> float:
        return sum(sum(p.gpus_per_slot) * p.usd_per_gpu_hour for p in self.parts) / self.slots

    @property
    def held_MW(self) -> float:
        return sum(p.held_gpus * p.W_per_gpu for p in self.parts) / MEGA

    @property
    def utilisation(self) -> float:
        """Mean GPUs in use over GPUs held (1 for a flat demand)."""
        return self.mean_gpus / self.held_gpus

    def gpus_by_type(self) -> dict[str, tuple[int, ...]]:
        """GPUs per slot of each accelerator type."""
        out: dict[str, list[int]] = {}
        for p in self.parts:
            acc = out.setdefault(p.gpu, [0] * self.slots)
            for t, g in enumerate(p.gpus_per_slot):
                acc[t] += g
        return {k: tuple(v) for k, v in out.items()}


def _scaled(n_peak: int, curve: Sequence[float], peak: float) -> tuple[int, ...]:
    return tuple(max(1, math.ceil(n_peak * v / peak - 1e-9)) for v in curve)


def curve_fleet(res: SearchResult, rec: Recommendation | None = None) -> CurveFleet:
    """The replicas ``rec`` (default: the best) needs in every slot of the request's demand curve
    (one slot at the peak when the demand has no curve).

    Aggregated: ``ceil(λ x (1 + headroom) / r)`` with ``r`` the screen's requests/s per replica,
    so the peak slot gives the recommendation's count. Disaggregated: both pools scale with the
    slot's share of the peak, rounded up (at least one replica each).
    """
    r = rec or res.best
    d = res.request.demand
    curve = d.curve or (d.peak_req_s,)
    h = d.headroom
    if r.disagg is None:
        g = r.candidate.group
        per = float(res.table.req_s[r.row])
        reps = tuple(max(1, math.ceil(v * (1.0 + h) / per - 1e-9)) for v in curve)
        usd, w = r.fleet_usd_per_hour / r.gpus, r.fleet_MW * MEGA / r.gpus
        parts: tuple[CurvePart, ...] = (CurvePart("replica", g.gpu, g.devices, reps, usd, w),)
    else:
        c = r.disagg
        parts = (
            CurvePart("prefill", c.prefill.gpu, c.prefill.devices, _scaled(c.prefill_replicas, curve, d.peak_req_s),
                      c.prefill_price.usd_per_gpu_hour, c.prefill_price.all_in_W),
            CurvePart("decode", c.decode.gpu, c.decode.devices, _scaled(c.decode_replicas, curve, d.peak_req_s),
                      c.decode_price.usd_per_gpu_hour, c.decode_price.all_in_W),
        )
    return CurveFleet(tuple(curve), h, parts)
