"""Grouped k-fold cross-validation: errors of a fitted predictor on groups it never saw.

A group is, by default, ``(source_kind, hardware, model)``: rows of one group share a source's
method, a chip and a model, so fitting on some of them and testing on the others would measure
interpolation within a sweep, not generalisation. :func:`group_kfold` puts each whole group into
exactly one test fold; :func:`crossval_predictions` fits on the other folds and predicts it.

Duplicates are dropped before splitting: a duplicate can carry a different group key than its
canonical row (an aiconfigurator copy of an InferenceMAX run), so keeping it would put the same
measurement on both sides of a split.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np

from hierro.accuracy.measurements import METRICS, Measurement, unique
from hierro.accuracy.validate import (
    PointResult,
    Predictor,
    SkipRecord,
    ValidationResult,
    validate,
)

__all__ = ["Fold", "crossval_predictions", "group_kfold"]

Fold = tuple[tuple[Measurement, ...], tuple[Measurement, ...]]
"""``(train rows, test rows)``, each in the input order."""


def _group_key(row: Measurement) -> Hashable:
    return row.group_key


def group_kfold(
    rows: Sequence[Measurement],
    k: int,
    key: Callable[[Measurement], Hashable] = _group_key,
    seed: int = 0,
) -> list[Fold]:
    """Split rows into k folds of whole groups, balanced by row count; deterministic per seed.

    Groups are shuffled with ``seed``, stably sorted largest first, and each is given to the fold
    with the fewest rows so far (lowest index on ties). Every row is in exactly one test split,
    and no group key is in both the train and the test split of a fold. Requires
    2 <= k <= number of groups.
    """
    groups: dict[Hashable, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(key(row), []).append(i)
    if not 2 <= k <= len(groups):
        raise ValueError(f"k must be between 2 and the number of groups ({len(groups)}), got {k}")
    keys = list(groups)
    order = [keys[i] for i in np.random.default_rng(seed).permutation(len(keys))]
    order.sort(key=lambda g: -len(groups[g]))
    load = [0] * k
    fold_of_row = [0] * len(rows)
    for g in order:
        fold = min(range(k), key=lambda f: (load[f], f))
        load[fold] += len(groups[g])
        for i in groups[g]:
            fold_of_row[i] = fold
    folds: list[Fold] = []
    for fold in range(k):
        test = tuple(r for r, f in zip(rows, fold_of_row, strict=True) if f == fold)
        train = tuple(r for r, f in zip(rows, fold_of_row, strict=True) if f != fold)
        shared = {key(r) for r in train} & {key(r) for r in test}
        if shared:
            raise AssertionError(f"fold {fold}: group(s) in both train and test: {shared}")
        folds.append((train, test))
    return folds


def crossval_predictions(
    rows: Sequence[Measurement],
    fit: Callable[[Sequence[Measurement]], Predictor],
    k: int = 5,
    *,
    key: Callable[[Measurement], Hashable] = _group_key,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> ValidationResult:
    """Out-of-group predictions: for each fold, ``fit(train)`` predicts the fold's test rows.

    Duplicates are dropped first; each unique row is then predicted exactly once, by a
    predictor fitted without any row of its group. Points and skips come back in row order.
    ``progress(done, total)`` counts rows over all folds.
    """
    todo = unique(rows)
    position = {row.id: i for i, row in enumerate(todo)}
    if len(position) != len(todo):
        raise ValueError("row ids must be unique")
    points: list[PointResult] = []
    skipped: list[SkipRecord] = []
    done = 0
    for train, test in group_kfold(todo, k, key=key, seed=seed):
        offset = done

        def fold_progress(i: int, _n: int, offset: int = offset) -> None:
            if progress is not None:
                progress(offset + i, len(todo))

        part = validate(test, fit(train), progress=fold_progress)
        points.extend(part.points)
        skipped.extend(part.skipped)
        done += len(test)
    if done != len(todo):
        raise AssertionError(f"folds cover {done} rows, expected {len(todo)}")
    metric_pos = {m: i for i, m in enumerate(METRICS)}
    points.sort(key=lambda p: (position[p.id], metric_pos[p.metric]))
    skipped.sort(key=lambda s: (position[s.id], -1 if s.metric is None else metric_pos[s.metric]))
    return ValidationResult(points=tuple(points), skipped=tuple(skipped), n_rows=len(todo))
