"""Calibration for the simulator-based predictor, in three stages.

1. **Kernels** (fast, analytic): the efficiencies of the roofline (per hardware family, op
   class, framework family) are fitted by :func:`hierro.accuracy.fit.fit_prepared` on the
   throughput, TPOT and TTFT measurements (:data:`STAGE1_FAMILIES`), with the analytic
   estimate's own front end per framework family fitted alongside. Time to first token is where
   a prompt's prefill speed shows: fitted on throughput and TPOT alone, the prefill-heavy
   kernels were left to whatever decode-bound rows implied, and the simulated engine's TTFT came
   out about half the measured one (in-sample, a constant front end then absorbed the rest).
2. **Front end** (simulated): with those efficiencies, every training row's benchmark is
   predicted with no front end, as :class:`~hierro.accuracy.simpredict.SimPredictor` predicts
   it (simulated, or by the analytic estimate for closed-loop rows whose length distribution is
   not stated); the time to first token then lacks only what happens outside the engine's
   steps. The :class:`~hierro.perf.FrontEnd` (a fixed time, a time per request in flight, a
   time per prompt token, and engine steps per request and per prompt token) is fitted per
   serving stack by robust least squares in log space on those gaps: per stack
   (``triton-trtllm`` apart from ``trtllm-serve``), per stack's disaggregated deployments, per
   framework family and overall (see :func:`_front_ends`). Queueing in the engine is never
   fitted: it is simulated.
3. **MTP acceptance** (simulated): the one probability that a multi-token-prediction draft is
   accepted, searched on the speculative rows' TPOT and throughput with the kernels and front
   ends of stages 1 and 2 (their draft lengths are the recipes':
   :func:`hierro.accuracy.predictor.mtp_draft_tokens`). Published acceptance rates are for
   natural text (DeepSeek-V3: 85-90% for the second token); benchmark prompts of random tokens
   accept fewer drafts, and no benchmark publishes its rate.
"""

from __future__ import annotations

import datetime as _dt
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares, minimize_scalar

from hierro.accuracy.crossval import crossval_predictions
from hierro.accuracy.fast import prepare
from hierro.accuracy.fit import (
    PER_INFLIGHT_MAX_S,
    PER_PROMPT_TOKEN_MAX_S,
    PER_STEP_MAX,
    PER_STEP_PER_TOKEN_MAX,
    REQUEST_OVERHEAD_MAX_S,
    SOFT_L1_SCALE,
    _soft_l1,
    fit_prepared,
)
from hierro.accuracy.measurements import Measurement, unique
from hierro.accuracy.predictor import is_mtp
from hierro.accuracy.simpredict import SimPredictor
from hierro.accuracy.validate import RowPrediction, ValidationResult, validate
from hierro.perf import Calibration, FrontEnd, framework_family
from hierro.perf.efficiency import DISAGGREGATED

__all__ = ["REQUEST_OVERHEAD_MAX_S", "SOURCE", "crossval_sim_report", "fit_sim_calibration"]

STAGE1_FAMILIES = ("throughput", "tpot", "ttft")
"""Metric families the kernel stage fits on (see the module docstring)."""
MIN_OVERHEAD_ROWS = 10
"""Rows a serving stack needs for a front end of its own; fewer fall back to its framework family."""
MIN_FALLBACK_ROWS = 5
"""Rows a fallback key (framework family, ``*``) needs: fewer cannot pin five numbers."""
SOURCE = "hierro three-stage fit on published measurements (hierro.accuracy.simfit)"


@dataclass(frozen=True)
class _Gap:
    simulated: float
    """Simulated TTFT with no front end, ms."""
    measured: float
    inflight: float
    """Requests in flight per instance (the closed loop's N; Little's law for open-loop rows)."""
    prompt: float
    """Mean prompt tokens."""
    step: float
    """Simulated engine step time (the row's time per output token with no front end), ms."""


def _fit_front_end(gaps: Sequence[_Gap]) -> FrontEnd:
    """The :class:`~hierro.perf.FrontEnd` minimising the soft-L1 log error of
    simulated + delay(N, L, t) against measured TTFT, each term within its bound."""
    sim = np.array([g.simulated for g in gaps])
    meas = np.array([g.measured for g in gaps])
    n = np.array([g.inflight for g in gaps])
    lk = np.array([g.prompt for g in gaps]) / 1e3
    t = np.array([g.step for g in gaps])

    # x: fixed ms, ms per request in flight, ms per 1,000 prompt tokens, steps, steps per 1,000
    # prompt tokens
    def resid(x: NDArray[np.float64]) -> NDArray[np.float64]:
        delay = x[0] + x[1] * n + x[2] * lk + t * (x[3] + x[4] * lk)
        return np.asarray(np.log(np.maximum(sim + delay, 1e-3) / meas), dtype=np.float64)

    hi = np.array([REQUEST_OVERHEAD_MAX_S * 1e3, PER_INFLIGHT_MAX_S * 1e3, PER_PROMPT_TOKEN_MAX_S * 1e6,
                   PER_STEP_MAX, PER_STEP_PER_TOKEN_MAX * 1e3])
    x0 = np.clip(np.array([statistics.median(meas - sim), 0.0, 0.0, 0.0, 0.0]), 1e-6, hi - 1e-6)
    res = least_squares(resid, x0, bounds=(np.zeros(5), hi), loss="soft_l1", f_scale=SOFT_L1_SCALE)
    x = res.x
    return FrontEnd(float(x[0]) / 1e3, float(x[1]) / 1e3, float(x[2]) / 1e6, float(x[3]), float(x[4]) / 1e3)


def _front_ends(rows: Sequence[Measurement], calib: Calibration) -> dict[str, FrontEnd]:
    """Front end per key, fitted on measured TTFT against the simulation with no front end: the
    serving stack (``triton-trtllm``, ``dynamo-sglang``) and its disaggregated deployments
    (``dynamo-sglang/disaggregated``) where they have :data:`MIN_OVERHEAD_ROWS` rows; the
    framework family and ``"*"``, over aggregated rows and (``<family>/disaggregated``,
    ``*/disaggregated``) over disaggregated ones, where they have :data:`MIN_FALLBACK_ROWS`."""
    # no front end anywhere: the simulated rows and the closed-loop rows without a stated length
    # distribution, which the predictor prices with the analytic estimate
    bare = calib.with_front_ends({})
    sp = SimPredictor(calib=bare)
    gaps: dict[str, list[_Gap]] = defaultdict(list)
    fallback: dict[str, list[_Gap]] = defaultdict(list)
    for row in rows:
        if row.load_kind not in ("concurrency", "server_qps"):
            continue
        meas = row.ttft_mean_ms if row.ttft_mean_ms is not None else row.ttft_p50_ms
        if meas is None:
            continue
        pred = sp.predict(row)
        if not isinstance(pred, RowPrediction):
            continue
        band = pred.values.get("ttft_mean_ms" if row.ttft_mean_ms is not None else "ttft_p50_ms")
        if band is None:
            continue
        step = pred.values.get("tpot_mean_ms") or pred.values.get("tpot_p50_ms")
        if step is None:
            continue
        gap = _Gap(band.value, meas, _inflight(row, pred), row.isl_mean or 0.0, step.value)
        if row.mode == "aggregated":
            gaps[row.framework].append(gap)
            fallback[framework_family(row.framework)].append(gap)
            fallback["*"].append(gap)
        else:
            gaps[f"{row.framework}/{DISAGGREGATED}"].append(gap)
            fallback[f"{framework_family(row.framework)}/{DISAGGREGATED}"].append(gap)
            fallback[f"*/{DISAGGREGATED}"].append(gap)
    fitted = {k: _fit_front_end(g) for k, g in fallback.items() if len(g) >= MIN_FALLBACK_ROWS}
    fitted.update({k: _fit_front_end(g) for k, g in gaps.items() if len(g) >= MIN_OVERHEAD_ROWS})
    fitted.setdefault("*", FrontEnd(0.0))
    return dict(sorted(fitted.items()))


def _inflight(row: Measurement, pred: RowPrediction) -> float:
    """Requests in flight per instance that takes requests: the concurrency per replica (per
    decode worker when disaggregated), or for an open-loop row req/s x E2E (Little's law) on the
    simulated values."""
    if row.load_kind == "concurrency":
        per = row.decode_workers if row.mode != "aggregated" else row.replicas
        return (row.load_value or 1.0) / max(1, per or 1)
    rate, e2e = pred.values.get("req_s"), pred.values.get("e2e_p50_ms")
    if rate is None or e2e is None:
        return 0.0
    return rate.value / max(1, row.replicas or 1) * e2e.value / 1e3


ACCEPTANCE_BOUNDS = (0.05, 0.95)
"""Range searched for the MTP acceptance rate."""
MTP_FAMILIES = ("tpot_mean_ms", "out_tok_s_per_gpu")
"""Measured columns the acceptance rate is fitted on: decode speed and throughput."""


def _fit_acceptance(rows: Sequence[Measurement], calib: Calibration) -> float | None:
    """The MTP acceptance rate minimising the soft-L1 log error of the simulated speculative
    rows' TPOT and throughput (with ``calib``'s kernels and front end), by a bounded scalar
    search; the calibration's own rate when fewer than :data:`MIN_FALLBACK_ROWS` rows are
    speculative."""
    spec = [r for r in rows if is_mtp(r) and any(getattr(r, m) for m in MTP_FAMILIES)]
    if len(spec) < MIN_FALLBACK_ROWS:
        return calib.mtp_acceptance

    def loss(a: float) -> float:
        sp = SimPredictor(calib=calib, acceptance=a)
        logs: list[float] = []
        for row in spec:
            pred = sp.predict(row)
            if not isinstance(pred, RowPrediction):
                continue
            for m in MTP_FAMILIES:
                meas, band = getattr(row, m), pred.values.get(m)
                if meas and band is not None:
                    logs.append(math.log(band.value / meas))
        return float(np.mean(_soft_l1(np.array(logs)) ** 2)) if logs else math.inf

    res = minimize_scalar(loss, bounds=ACCEPTANCE_BOUNDS, method="bounded", options={"xatol": 0.02})
    return float(res.x)


def fit_sim_calibration(rows: Sequence[Measurement], *, base: Calibration | None = None) -> Calibration:
    """Three-stage fit (see the module docstring) on ``rows``."""
    todo = unique(rows)
    prep = prepare(todo)
    stage1 = fit_prepared(prep, prep.ok_indices(), base=base, families=STAGE1_FAMILIES)
    c = stage1.calibration
    fe = _front_ends(todo, c)
    fitted_on = (f"{len(prep.ok_indices())} rows of {len({r.group_key for r in todo})} source x hardware x "
                 f"model groups, {_dt.date.today().isoformat()} (kernels: throughput, TPOT and TTFT, analytic; "
                 f"front end: simulated TTFT; MTP acceptance: simulated TPOT and throughput)")
    fitted = Calibration(SOURCE, c.as_of, c.entries, {}, fitted_on, {},
                         mtp_acceptance=c.mtp_acceptance).with_front_ends(fe)
    return replace(fitted, mtp_acceptance=_fit_acceptance(todo, fitted), _memo={})


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
    return cv, replace(full, error=error)
