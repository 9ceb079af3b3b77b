"""Calibration for the simulator-based predictor, in two stages.

1. **Kernels** (fast, analytic): the efficiencies of the roofline (per hardware family, op
   class, framework family) are fitted by :func:`hierro.accuracy.fit.fit_prepared` on the
   throughput and TPOT measurements only: in steady state these depend on step times, which
   the analytic estimate and the simulator compute identically.
2. **Serving overhead** (simulated): with those efficiencies, every training row's benchmark is
   simulated with no per-request overhead; the time to first token then lacks only what happens
   outside the engine's steps (HTTP, tokenisation, detokenisation, the client). That overhead is
   one number per framework family: the median of measured - simulated TTFT over its rows
   (clipped to [0, 0.25 s]), a robust one-parameter fit. Queueing is never fitted: it is
   simulated.
"""

from __future__ import annotations

import datetime as _dt
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence

from hierro.accuracy.crossval import crossval_predictions
from hierro.accuracy.fast import prepare
from hierro.accuracy.fit import fit_prepared
from hierro.accuracy.measurements import Measurement, unique
from hierro.accuracy.simpredict import SimPredictor
from hierro.accuracy.validate import RowPrediction, ValidationResult, validate
from hierro.perf import Calibration, framework_family

__all__ = ["REQUEST_OVERHEAD_MAX_S", "SOURCE", "crossval_sim_report", "fit_sim_calibration"]

REQUEST_OVERHEAD_MAX_S = 0.25
SOURCE = "hierro two-stage fit on published measurements (hierro.accuracy.simfit)"


def _overheads(rows: Sequence[Measurement], calib: Calibration) -> dict[str, float]:
    sp = SimPredictor(calib=calib, request_overhead_s=0.0)
    gaps: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if row.load_kind not in ("concurrency", "server_qps") or row.mode != "aggregated":
            continue  # the front end's overhead, not a KV transfer's: aggregated serving rows
        if row.load_kind == "concurrency" and not row.length_dist:
            continue
        meas = row.ttft_mean_ms if row.ttft_mean_ms is not None else row.ttft_p50_ms
        if meas is None:
            continue
        pred = sp.predict(row)
        if not isinstance(pred, RowPrediction):
            continue
        key = "ttft_mean_ms" if row.ttft_mean_ms is not None else "ttft_p50_ms"
        band = pred.values.get(key)
        if band is None:
            continue
        gaps[framework_family(row.framework)].append((meas - band.value) / 1e3)
    out = {fam: min(max(statistics.median(g), 0.0), REQUEST_OVERHEAD_MAX_S) for fam, g in gaps.items()}
    every = [x for g in gaps.values() for x in g]
    out["*"] = min(max(statistics.median(every), 0.0), REQUEST_OVERHEAD_MAX_S) if every else 0.0
    return out


def fit_sim_calibration(rows: Sequence[Measurement], *, base: Calibration | None = None) -> Calibration:
    """Two-stage fit (see the module docstring) on ``rows``."""
    todo = unique(rows)
    prep = prepare(todo)
    stage1 = fit_prepared(prep, prep.ok_indices(), base=base, families=("throughput", "tpot"))
    c = stage1.calibration
    over = _overheads(todo, c)
    fitted_on = (f"{len(prep.ok_indices())} rows of {len({r.group_key for r in todo})} source x hardware x "
                 f"model groups, {_dt.date.today().isoformat()} (kernels: throughput and TPOT, analytic; "
                 f"per-request overhead: simulated TTFT)")
    return Calibration(SOURCE, c.as_of, c.entries, over, fitted_on, {})


def crossval_sim_report(
    rows: Sequence[Measurement], k: int = 5, *, seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> tuple[ValidationResult, Calibration]:
    """Grouped k-fold cross-validation of :class:`SimPredictor` with :func:`fit_sim_calibration`
    (no fold sees its test groups), and the calibration fitted on all rows with its error."""
    todo = unique(rows)
    fold = [0]

    def fit(train: Sequence[Measurement]) -> SimPredictor:
        calib = fit_sim_calibration(train)
        fold[0] += 1
        if progress is not None:
            progress(f"fold {fold[0]}/{k}: fitted on {len(train)} rows")
        return SimPredictor(calib=calib)

    cv = crossval_predictions(todo, fit, k, seed=seed)
    full = fit_sim_calibration(todo)
    if progress is not None:
        progress("fitted on all rows")
    insample = validate(todo, SimPredictor(calib=full))

    def stats(res: ValidationResult) -> dict[str, object]:
        return {m: s.overall.to_dict() for m, s in res.summary().items()}

    error = {"crossval": {"k": k, "group": "source_kind x hardware x model", **stats(cv)},
             "in_sample": stats(insample)}
    return cv, Calibration(full.source, full.as_of, full.entries, full.ttft_overhead, full.fitted_on, error)
