"""Predict every measured operating point and compare: the core of ``hierro validate``.

Any object with ``predict(row) -> RowPrediction | Skip`` is a :class:`Predictor`; this module
never imports a performance model. For each unique row (duplicates dropped) the predictor either
returns a :class:`Band` per metric it predicts, in the CSV column's units (ms, tok/s, req/s), or
declines with a :class:`Skip` and a reason. Each metric measured in the row is paired with its
prediction into a :class:`PointResult`; a measured metric without a prediction is recorded as a
per-metric skip, so nothing drops out silently. Predictions for metrics the row does not measure
are ignored.

Error definitions (see :mod:`hierro.accuracy.stats`): APE = |p - m| / m, signed error =
(p - m) / m. Band coverage of a metric = fraction of its points with lo <= measured <= hi.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from hierro.accuracy.measurements import METRICS, Measurement, RowProblem, unique
from hierro.accuracy.stats import ErrorStats, error_stats

__all__ = [
    "BREAKDOWNS",
    "Band",
    "MetricSummary",
    "PointResult",
    "Predictor",
    "RowPrediction",
    "Skip",
    "SkipRecord",
    "ValidationResult",
    "validate",
]

BREAKDOWNS: tuple[str, ...] = ("source_kind", "model", "hardware", "framework")
"""The row attributes the summary breaks each metric's errors down by."""


@dataclass(frozen=True, slots=True)
class Band:
    """A predicted value with its error band, lo <= value <= hi, in the CSV column's units."""

    value: float
    lo: float
    hi: float

    def __post_init__(self) -> None:
        if not all(math.isfinite(x) for x in (self.value, self.lo, self.hi)):
            raise ValueError(f"band values must be finite, got {self}")
        if not self.lo <= self.value <= self.hi:
            raise ValueError(f"band must satisfy lo <= value <= hi, got {self}")

    @classmethod
    def point(cls, value: float) -> Band:
        """A prediction without an error band (lo = hi = value)."""
        return cls(value, value, value)

    def contains(self, x: float) -> bool:
        """Whether lo <= x <= hi."""
        return self.lo <= x <= self.hi


@dataclass(frozen=True, slots=True)
class RowPrediction:
    """A predictor's answer for one row: metric name (one of ``METRICS``) -> :class:`Band`."""

    values: Mapping[str, Band]

    def __post_init__(self) -> None:
        unknown = sorted(set(self.values) - set(METRICS))
        if unknown:
            raise ValueError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))


@dataclass(frozen=True, slots=True)
class Skip:
    """A predictor declining a row, e.g. ``Skip("unknown hardware tpu-v9")``."""

    reason: str


class Predictor(Protocol):
    """Anything that predicts measured metrics of a row (or says why it cannot)."""

    def predict(self, row: Measurement) -> RowPrediction | Skip:
        """Bands for some of ``METRICS`` of ``row``, or a :class:`Skip` with the reason."""
        ...


@dataclass(frozen=True, slots=True)
class PointResult:
    """One (row, metric) pair of a measured and a predicted value, with the row's attributes."""

    id: str
    metric: str
    measured: float
    predicted: float
    lo: float
    hi: float
    source_kind: str
    model: str
    hardware: str
    framework: str
    weight_dtype: str
    load_kind: str

    @property
    def signed_error(self) -> float:
        """(predicted - measured) / measured."""
        return (self.predicted - self.measured) / self.measured

    @property
    def ape(self) -> float:
        """|predicted - measured| / measured."""
        return abs(self.signed_error)

    @property
    def in_band(self) -> bool:
        """Whether lo <= measured <= hi."""
        return self.lo <= self.measured <= self.hi

    def to_json_dict(self) -> dict[str, Any]:
        """``{"id", "metric", "measured", "predicted", "lo", "hi"}``."""
        return {
            "id": self.id,
            "metric": self.metric,
            "measured": self.measured,
            "predicted": self.predicted,
            "lo": self.lo,
            "hi": self.hi,
        }


@dataclass(frozen=True, slots=True)
class SkipRecord:
    """A row (``metric`` None) or one measured metric of a row that was not predicted, and why."""

    id: str
    reason: str
    metric: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """``{"id", "reason"}``."""
        return {"id": self.id, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """Error statistics of one metric: over all its points and per value of each breakdown."""

    overall: ErrorStats
    by_source_kind: Mapping[str, ErrorStats]
    by_model: Mapping[str, ErrorStats]
    by_hardware: Mapping[str, ErrorStats]
    by_framework: Mapping[str, ErrorStats]

    def to_json_dict(self) -> dict[str, Any]:
        """``{"all": stats, "by_source_kind": {value: stats}, ..., "by_framework": {...}}``."""
        out: dict[str, Any] = {"all": self.overall.to_dict()}
        for attr in BREAKDOWNS:
            groups: Mapping[str, ErrorStats] = getattr(self, f"by_{attr}")
            out[f"by_{attr}"] = {value: stats.to_dict() for value, stats in groups.items()}
        return out


def _stats(points: Iterable[PointResult]) -> ErrorStats:
    pts = list(points)
    return error_stats([p.measured for p in pts], [p.predicted for p in pts])


def _summarise(points: list[PointResult]) -> MetricSummary:
    by: dict[str, Mapping[str, ErrorStats]] = {}
    for attr in BREAKDOWNS:
        groups: dict[str, list[PointResult]] = defaultdict(list)
        for p in points:
            groups[getattr(p, attr)].append(p)
        by[attr] = MappingProxyType({k: _stats(groups[k]) for k in sorted(groups)})
    return MetricSummary(
        overall=_stats(points),
        by_source_kind=by["source_kind"],
        by_model=by["model"],
        by_hardware=by["hardware"],
        by_framework=by["framework"],
    )


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """Every compared point and every skip of a validation run over ``n_rows`` unique rows."""

    points: tuple[PointResult, ...]
    skipped: tuple[SkipRecord, ...]
    n_rows: int

    def metrics(self) -> tuple[str, ...]:
        """The metrics with at least one point, in ``METRICS`` order."""
        present = {p.metric for p in self.points}
        return tuple(m for m in METRICS if m in present)

    def points_of(self, metric: str) -> tuple[PointResult, ...]:
        """The points of one metric."""
        return tuple(p for p in self.points if p.metric == metric)

    def summary(self) -> dict[str, MetricSummary]:
        """Metric -> its error statistics, overall and per source kind, model, hardware, framework."""
        return {m: _summarise(list(self.points_of(m))) for m in self.metrics()}

    def skip_counts(self) -> dict[str, int]:
        """Skip reason -> number of skip records with it, most frequent first."""
        return dict(Counter(s.reason for s in self.skipped).most_common())

    def band_coverage(self) -> dict[str, float]:
        """Metric -> fraction of its points whose measured value lies in [lo, hi]."""
        out: dict[str, float] = {}
        for m in self.metrics():
            pts = self.points_of(m)
            out[m] = sum(p.in_band for p in pts) / len(pts)
        return out

    def with_unreadable(self, problems: Iterable[RowProblem]) -> ValidationResult:
        """The same result with the rows a lenient load could not read listed first as skips."""
        bad = tuple(SkipRecord(p.label(), f"malformed row (line {p.line}): {p.reason}") for p in problems)
        n_bad = len({p.line for p in problems if p.line > 1})
        return ValidationResult(self.points, bad + self.skipped, self.n_rows + n_bad)

    def to_json_dict(self) -> dict[str, Any]:
        """``{"rows": [point...], "skipped": [{"id", "reason"}...], "summary": {metric: ...}}``."""
        return {
            "rows": [p.to_json_dict() for p in self.points],
            "skipped": [s.to_json_dict() for s in self.skipped],
            "summary": {m: s.to_json_dict() for m, s in self.summary().items()},
        }


def _compare(
    row: Measurement, answer: RowPrediction | Skip
) -> tuple[list[PointResult], list[SkipRecord]]:
    if isinstance(answer, Skip):
        return [], [SkipRecord(row.id, answer.reason)]
    if not isinstance(answer, RowPrediction):
        raise TypeError(
            f"predict({row.id!r}) returned {type(answer).__name__}, not RowPrediction or Skip"
        )
    points: list[PointResult] = []
    skipped: list[SkipRecord] = []
    for metric, measured in row.measured().items():
        band = answer.values.get(metric)
        if band is None:
            skipped.append(SkipRecord(row.id, f"{metric}: not predicted", metric))
            continue
        points.append(
            PointResult(
                id=row.id,
                metric=metric,
                measured=measured,
                predicted=band.value,
                lo=band.lo,
                hi=band.hi,
                source_kind=row.source_kind,
                model=row.model,
                hardware=row.hardware,
                framework=row.framework,
                weight_dtype=row.weight_dtype,
                load_kind=row.load_kind,
            )
        )
    return points, skipped


def validate(
    rows: Iterable[Measurement],
    predictor: Predictor,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ValidationResult:
    """Predict each unique row once and pair every measured metric with its prediction.

    Duplicate rows (``duplicate_of`` set) are dropped first. ``progress(done, total)`` is called
    after each row. Points and skips come in row order, metrics in ``METRICS`` order.
    """
    todo = unique(rows)
    seen: set[str] = set()
    for row in todo:
        if row.id in seen:
            raise ValueError(f"row id {row.id!r} appears twice")
        seen.add(row.id)
    points: list[PointResult] = []
    skipped: list[SkipRecord] = []
    for done, row in enumerate(todo, start=1):
        row_points, row_skips = _compare(row, predictor.predict(row))
        points.extend(row_points)
        skipped.extend(row_skips)
        if progress is not None:
            progress(done, len(todo))
    return ValidationResult(points=tuple(points), skipped=tuple(skipped), n_rows=len(todo))
