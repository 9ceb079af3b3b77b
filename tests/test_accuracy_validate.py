"""validate() and grouped cross-validation with toy predictors defined here."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

import pytest

from hierro.accuracy import (
    METRICS,
    Band,
    Measurement,
    Predictor,
    RowPrediction,
    Skip,
    crossval_predictions,
    group_kfold,
    load_measurements,
    unique,
    validate,
)

SKIPPED_HW = "h100-sxm"


class TenPercentHigh:
    """Predicts tpot_mean_ms = 1.1 x measured (band ±20 %); skips one hardware."""

    def predict(self, row: Measurement) -> RowPrediction | Skip:
        if row.hardware == SKIPPED_HW:
            return Skip(f"unknown hardware {row.hardware}")
        if row.tpot_mean_ms is None:
            return RowPrediction({})
        value = 1.1 * row.tpot_mean_ms
        return RowPrediction({"tpot_mean_ms": Band(value, 0.8 * value, 1.2 * value)})


@pytest.fixture(scope="module")
def rows() -> tuple[Measurement, ...]:
    return load_measurements()


def test_toy_predictor_has_ten_percent_error(rows: tuple[Measurement, ...]) -> None:
    calls: list[tuple[int, int]] = []
    result = validate(rows, TenPercentHigh(), progress=lambda i, n: calls.append((i, n)))
    kept = unique(rows)
    assert result.n_rows == len(kept)
    assert calls[-1] == (len(kept), len(kept)) and len(calls) == len(kept)

    expected = [r for r in kept if r.hardware != SKIPPED_HW and r.tpot_mean_ms is not None]
    assert [p.id for p in result.points] == [r.id for r in expected]
    assert result.metrics() == ("tpot_mean_ms",)
    stats = result.summary()["tpot_mean_ms"]
    assert stats.overall.n == len(expected)
    assert stats.overall.median_ape == pytest.approx(0.10)
    assert stats.overall.p90_ape == pytest.approx(0.10)
    assert stats.overall.median_signed == pytest.approx(0.10)
    assert SKIPPED_HW not in stats.by_hardware
    assert sum(s.n for s in stats.by_source_kind.values()) == len(expected)
    assert result.band_coverage() == {"tpot_mean_ms": 1.0}


def test_skips_are_counted_and_duplicates_excluded(rows: tuple[Measurement, ...]) -> None:
    result = validate(rows, TenPercentHigh())
    kept = unique(rows)
    counts = result.skip_counts()
    n_hw = sum(r.hardware == SKIPPED_HW for r in kept)
    assert counts[f"unknown hardware {SKIPPED_HW}"] == n_hw
    # Every other measured metric is skipped per metric, once per unique row measuring it.
    for metric in METRICS:
        if metric == "tpot_mean_ms":
            continue
        measured = sum(getattr(r, metric) is not None for r in kept if r.hardware != SKIPPED_HW)
        assert counts.get(f"{metric}: not predicted", 0) == measured
    duplicate_ids = {r.id for r in rows if r.duplicate_of is not None}
    assert duplicate_ids
    seen = {p.id for p in result.points} | {s.id for s in result.skipped}
    assert not seen & duplicate_ids


def test_json_shape(rows: tuple[Measurement, ...]) -> None:
    doc = validate(rows[:200], TenPercentHigh()).to_json_dict()
    assert set(doc) == {"rows", "skipped", "summary"}
    assert set(doc["rows"][0]) == {"id", "metric", "measured", "predicted", "lo", "hi"}
    assert all(set(s) == {"id", "reason"} for s in doc["skipped"])
    summary = doc["summary"]["tpot_mean_ms"]
    assert set(summary) == {"all", "by_source_kind", "by_model", "by_hardware", "by_framework"}
    assert set(summary["all"]) == {"n", "median_ape", "p90_ape", "median_signed"}
    json.dumps(doc, allow_nan=False)


def test_band_coverage_counts_points_outside() -> None:
    class Narrow:
        def predict(self, row: Measurement) -> RowPrediction | Skip:
            return RowPrediction({m: Band.point(2.0 * v) for m, v in row.measured().items()})

    result = validate(load_measurements()[:50], Narrow())
    assert set(result.band_coverage().values()) == {0.0}
    assert all(p.ape == pytest.approx(1.0) for p in result.points)


def test_bad_predictions_fail_loudly() -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        RowPrediction({"ttft_ms": Band.point(1.0)})
    with pytest.raises(ValueError, match="lo <= value <= hi"):
        Band(1.0, 2.0, 3.0)


def test_group_kfold_keeps_groups_whole_and_covers_rows(rows: tuple[Measurement, ...]) -> None:
    kept = unique(rows)
    folds = group_kfold(kept, 5)
    assert len(folds) == 5
    tested = Counter(r.id for _train, test in folds for r in test)
    assert set(tested) == {r.id for r in kept} and set(tested.values()) == {1}
    for train, test in folds:
        assert len(train) + len(test) == len(kept)
        assert not {r.group_key for r in train} & {r.group_key for r in test}
    sizes = [len(test) for _train, test in folds]
    assert max(sizes) - min(sizes) <= max(Counter(r.group_key for r in kept).values())
    assert group_kfold(kept, 5) == folds  # deterministic for a seed
    with pytest.raises(ValueError, match="number of groups"):
        group_kfold(kept[:1], 2)


class Memoriser:
    """Recalls exactly the rows (and groups) it was fitted on; cannot predict anything else."""

    def __init__(self, train: Sequence[Measurement]) -> None:
        self.seen = {r.id: r for r in train}
        self.groups = {r.group_key for r in train}

    def predict(self, row: Measurement) -> RowPrediction | Skip:
        if row.group_key in self.groups:
            raise AssertionError(f"leak: group {row.group_key} was in the training split")
        if row.id not in self.seen:
            return Skip("not in training rows")
        return RowPrediction({m: Band.point(v) for m, v in row.measured().items()})


def test_crossval_never_predicts_a_row_from_its_own_group(rows: tuple[Measurement, ...]) -> None:
    def fit(train: Sequence[Measurement]) -> Predictor:
        return Memoriser(train)

    result = crossval_predictions(rows, fit, k=5)
    kept = unique(rows)
    assert result.points == ()
    assert result.n_rows == len(kept)
    assert [s.id for s in result.skipped] == [r.id for r in kept]
    assert result.skip_counts() == {"not in training rows": len(kept)}


def test_crossval_with_a_generalising_predictor_scores_every_row(
    rows: tuple[Measurement, ...],
) -> None:
    result = crossval_predictions(rows, lambda train: TenPercentHigh(), k=4)
    direct = validate(rows, TenPercentHigh())
    assert result.points == direct.points
    assert result.skipped == direct.skipped


def test_public_api_is_exactly_all() -> None:
    import types

    import hierro.accuracy as acc

    public = {
        n for n, v in vars(acc).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType) and n != "annotations"
    }
    assert sorted(acc.__all__) == sorted(public)
    assert acc.validate is validate  # the function, not the submodule of the same name
