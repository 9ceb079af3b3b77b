"""The serving simulator as a :class:`~hierro.accuracy.validate.Predictor`: queueing is
simulated, not guessed.

Each aggregated row becomes the benchmark that produced it, run through
:func:`hierro.sim.simulate` on one model instance:

* ``concurrency`` rows: a closed loop of N users (per replica) issuing ``waves x N`` requests,
  all N started at once, lengths uniform in [r·L, L] for ``random:r`` rows, fixed otherwise
  (vLLM/SGLang ``bench_serving --max-concurrency N --num-prompts 10N``, InferenceMAX's client).
* ``server_qps`` rows with stated lengths: Poisson arrivals at the row's rate per replica.
* ``offline`` rows: the analytic estimate (no queueing to simulate).
* rows whose length distribution the source does not state: the analytic estimate. Simulating
  them as fixed lengths would lock the closed loop into synchronised waves (every prompt of a
  wave prefilled together), a property of the benchmark the source does not report; the
  estimate's steady state assumes desynchronised arrivals instead.

Every metric of the row is predicted from the simulated requests, percentiles included.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hierro.accuracy.measurements import Measurement
from hierro.accuracy.predictor import (
    BENCHMARK_WAVES,
    EstimatePredictor,
    banded,
    row_lengths,
    row_plan,
)
from hierro.accuracy.validate import Band, RowPrediction, Skip
from hierro.errors import HierroError
from hierro.perf import Calibration, StepModel, default_calibration
from hierro.perf.estimate import DEFAULT_MAX_SEQS
from hierro.sim import Fixed, LengthDist, SimResult, UniformRatio, simulate, synthetic
from hierro.specs import get_accelerator, get_model
from hierro.units import to_ms

__all__ = ["SERVER_REQUESTS", "SimPredictor", "benchmark_workload_lengths"]

SERVER_REQUESTS = 2000
"""Requests simulated per replica for an open-loop (server_qps) row."""


def benchmark_workload_lengths(row: Measurement) -> tuple[LengthDist, LengthDist] | None:
    """The request-length distributions of a row's benchmark (None if not stated)."""
    if row.isl_mean is None or row.osl_mean is None:
        return None
    isl, osl = max(1, round(row.isl_mean)), max(1, round(row.osl_mean))
    if row.length_dist.startswith("random:"):
        r = float(row.length_dist.split(":", 1)[1])
        return UniformRatio(isl, r), UniformRatio(osl, r)
    return Fixed(isl), Fixed(osl)


@dataclass
class SimPredictor:
    """Predicts aggregated rows by simulating their benchmark; offline rows analytically."""

    calib: Calibration = field(default_factory=default_calibration)
    waves: float = BENCHMARK_WAVES
    seed: int = 0
    request_overhead_s: float | None = None
    """Override of the calibration's per-request overhead (the fit's second stage uses 0)."""

    def predict(self, row: Measurement) -> RowPrediction | Skip:
        if row.load_kind == "offline" or (row.load_kind == "concurrency" and not row.length_dist):
            return EstimatePredictor(calib=self.calib).predict(row)
        reason = self._unsupported(row)
        if reason:
            return Skip(reason)
        lengths = benchmark_workload_lengths(row)
        assert lengths is not None
        try:
            res, replicas = self._run(row, lengths)
        except HierroError as err:
            return Skip(f"cannot model: {err}")
        return RowPrediction(self._values(row, res, replicas))

    def _run(self, row: Measurement, lengths: tuple[LengthDist, LengthDist]) -> tuple[SimResult, int]:
        sm = StepModel(get_model(row.model), get_accelerator(row.hardware), row_plan(row),
                       framework=row.framework, calib=self.calib)
        replicas = row.replicas or max(1, row.num_gpus // sm.plan.devices)
        rng = np.random.default_rng(self.seed)
        if row.load_kind == "concurrency":
            n = max(1, round((row.load_value or 1) / replicas))
            wl = synthetic(max(n, round(self.waves * n)), lengths[0], lengths[1], rng, concurrency=n)
            max_seqs = max(n, 1) if n <= DEFAULT_MAX_SEQS else DEFAULT_MAX_SEQS
        else:
            rate = (row.load_value or 0.0) / replicas
            if rate <= 0:
                raise HierroError(f"row {row.id}: server_qps rows need a positive load_value")
            wl = synthetic(SERVER_REQUESTS, lengths[0], lengths[1], rng, rate=rate)
            max_seqs = DEFAULT_MAX_SEQS
        res = simulate(sm, wl, max_num_seqs=max_seqs, seed=self.seed,
                       request_overhead_s=self.request_overhead_s)
        return res, replicas

    def _values(self, row: Measurement, res: SimResult, replicas: int) -> dict[str, Band]:
        total = res.out_tok_s * replicas
        point = {
            "out_tok_s": total,
            "out_tok_s_per_gpu": total / row.num_gpus,
            "req_s": res.req_s * replicas,
            "ttft_mean_ms": to_ms(res.ttft.mean),
            "ttft_p50_ms": to_ms(res.ttft.p50),
            "ttft_p99_ms": to_ms(res.ttft.p99),
            "tpot_mean_ms": to_ms(res.tpot.mean),
            "tpot_p50_ms": to_ms(res.tpot.p50),
            "tpot_p99_ms": to_ms(res.tpot.p99),
            "e2e_p50_ms": to_ms(res.e2e.p50),
            "e2e_p99_ms": to_ms(res.e2e.p99),
        }
        kept = {k: v for k, v in point.items() if np.isfinite(v) and v > 0}
        return banded(kept, self.calib, "simulated")

    @staticmethod
    def _unsupported(row: Measurement) -> str:
        reason = EstimatePredictor.unsupported_reason(row, allow_server=True)
        if reason:
            return reason
        if row_lengths(row) is None:  # pragma: no cover - covered by unsupported_reason
            return "request lengths not stated"
        return ""
