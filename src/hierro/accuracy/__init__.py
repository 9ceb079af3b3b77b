"""Accuracy of predictions against published serving measurements (``hierro validate``).

* :mod:`~hierro.accuracy.measurements`: the measurement set (bundled ``calibration.csv`` or a
  user file in the same schema) as typed, validated :class:`Measurement` rows.
* :mod:`~hierro.accuracy.stats`: APE = |p - m| / m and bias = median of (p - m) / m.
* :mod:`~hierro.accuracy.validate`: any :class:`Predictor` against the rows, per metric, with
  breakdowns by source kind, model, hardware and framework, and error-band coverage.
* :mod:`~hierro.accuracy.crossval`: grouped k-fold, so a fitted predictor is scored only on
  groups it never saw.
"""

from __future__ import annotations

from hierro.accuracy.crossval import Fold, crossval_predictions, group_kfold
from hierro.accuracy.measurements import (
    COLUMNS,
    METRICS,
    Dtype,
    LoadKind,
    Measurement,
    Mode,
    RowProblem,
    SourceKind,
    load_measurements,
    load_measurements_lenient,
    load_mlperf_benchmarks,
    unique,
)
from hierro.accuracy.stats import ErrorStats, error_stats
from hierro.accuracy.validate import (
    BREAKDOWNS,
    Band,
    MetricSummary,
    PointResult,
    Predictor,
    RowPrediction,
    Skip,
    SkipRecord,
    ValidationResult,
    validate,
)

__all__ = [
    "BREAKDOWNS",
    "COLUMNS",
    "METRICS",
    "Band",
    "Dtype",
    "ErrorStats",
    "Fold",
    "LoadKind",
    "Measurement",
    "MetricSummary",
    "Mode",
    "PointResult",
    "Predictor",
    "RowPrediction",
    "RowProblem",
    "Skip",
    "SkipRecord",
    "SourceKind",
    "ValidationResult",
    "crossval_predictions",
    "error_stats",
    "group_kfold",
    "load_measurements",
    "load_measurements_lenient",
    "load_mlperf_benchmarks",
    "unique",
    "validate",
]
