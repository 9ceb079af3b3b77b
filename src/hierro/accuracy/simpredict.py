"""The serving simulator as a :class:`~hierro.accuracy.validate.Predictor`: queueing is
simulated, not guessed.

Each aggregated row becomes the benchmark that produced it, run through
:func:`hierro.sim.simulate` on one model instance:

* ``concurrency`` rows: a closed loop of N users (per replica) issuing ``waves x N`` requests,
  all N started at once, lengths uniform in [r·L, L] for ``random:r`` rows, fixed otherwise
  (vLLM/SGLang ``bench_serving --max-concurrency N --num-prompts 10N``, InferenceMAX's client).
* ``server_qps`` rows with stated lengths: Poisson arrivals at the row's rate per replica.
* ``concurrency`` rows of a disaggregated deployment: the same closed loop through
  :func:`hierro.sim.simulate_disagg`, ``prefill_workers`` instances of the prefill plan and
  ``decode_workers`` of the decode plan (each pool's attention data parallelism as the source
  states it), the KV moving over the scale-up fabric when every GPU of the deployment shares
  one scale-up domain (NVL72 racks) and over the scale-out network otherwise.
* ``batch`` rows of a static batch (``benchmark_latency``: B prompts of fixed length prefilled
  and decoded together, throughput = B x osl / batch latency): one wave of B requests started
  at once.
* ``offline`` rows: the analytic estimate (no queueing to simulate).
* rows whose length distribution the source does not state: the analytic estimate. Simulating
  them as fixed lengths would lock the closed loop into synchronised waves (every prompt of a
  wave prefilled together), a property of the benchmark the source does not report; the
  estimate's steady state assumes desynchronised arrivals instead.

Every metric of the row is predicted from the simulated requests, percentiles included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from hierro.accuracy.measurements import Measurement
from hierro.accuracy.predictor import (
    BENCHMARK_WAVES,
    EstimatePredictor,
    banded,
    common_reason,
    is_mtp,
    mtp_draft_tokens,
    row_lengths,
    row_plan,
)
from hierro.accuracy.validate import Band, RowPrediction, Skip
from hierro.errors import HierroError
from hierro.perf import Calibration, StepModel, default_calibration, default_max_seqs
from hierro.sim import (
    Fixed,
    LengthDist,
    SimResult,
    SpecDecode,
    UniformRatio,
    Workload,
    simulate,
    simulate_disagg,
    synthetic,
)
from hierro.specs import Plan, get_accelerator, get_model, get_system
from hierro.units import to_ms

__all__ = ["SERVER_REQUESTS", "SimPredictor", "benchmark_workload_lengths"]

SERVER_REQUESTS = 2000
"""Requests simulated per replica for an open-loop (server_qps) row."""
DEFAULT_STATIC_BUDGET = 8192
"""Token budget of an offline static-batch call (vLLM's default max_num_batched_tokens); a batch
larger than that is still admitted whole, as the sequence cap allows."""


def _static_batch(row: Measurement) -> bool:
    """A ``batch`` row measured as one static batch (``benchmark_latency``), not an engine's
    per-worker batch limit recorded without its concurrency."""
    return row.length_dist == "fixed" and "static batch" in row.notes


def _seq_cap(n: int, plan: Plan) -> int:
    """The running-sequence cap of an instance serving ``n`` concurrent requests: the engine's
    default (:func:`hierro.perf.default_max_seqs`: the cap per scheduler, times the attention
    data-parallel ranks that each schedule their own batch), no more than ``n``."""
    return max(1, min(n, default_max_seqs(plan)))


def _pool_dp_attention(row: Measurement) -> tuple[bool, bool]:
    """Attention data parallelism of the prefill and decode pools: the notes' per-pool
    ``dp_attention prefill=.. decode=..`` where the source states it, else the row's flag."""
    m = re.search(r"dp_attention prefill=(\w+) decode=(\w+)", row.notes)
    if m:
        return m.group(1) == "true", m.group(2) == "true"
    flag = bool(row.dp_attention)
    return flag, flag


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
    acceptance: float | None = None
    """Override of the calibration's MTP acceptance rate (the fit's third stage searches it)."""

    def predict(self, row: Measurement) -> RowPrediction | Skip:
        if row.mode == "disaggregated":
            return self._predict_disagg(row)
        if row.load_kind == "batch" and _static_batch(row):
            return self._predict_static(row)
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

    def _sm(self, row: Measurement, plan: Plan) -> StepModel:
        return StepModel(get_model(row.model), get_accelerator(row.hardware), plan,
                         framework=row.framework, calib=self.calib)

    def _closed_loop(self, lengths: tuple[LengthDist, LengthDist], n: int) -> Workload:
        """A benchmark client's closed loop: ``waves`` x N requests, N started at once."""
        return synthetic(max(n, round(self.waves * n)), lengths[0], lengths[1],
                         np.random.default_rng(self.seed), concurrency=n)

    def _predict_static(self, row: Measurement) -> RowPrediction | Skip:
        reason = common_reason(row)
        if reason:
            return Skip(reason)
        lengths = benchmark_workload_lengths(row)
        assert lengths is not None
        b = max(1, round(row.load_value or 1))
        try:
            sm = self._sm(row, row_plan(row))
            wl = synthetic(b, lengths[0], lengths[1], np.random.default_rng(self.seed), concurrency=b)
            # an offline engine call: no front end, the batch admitted whole
            res = simulate(sm, wl, max_num_seqs=b, seed=self.seed, request_overhead_s=0.0,
                           max_num_batched_tokens=max(DEFAULT_STATIC_BUDGET, b))
        except HierroError as err:
            return Skip(f"cannot model: {err}")
        return RowPrediction(self._values(row, res, row.replicas or 1))

    def _predict_disagg(self, row: Measurement) -> RowPrediction | Skip:
        if row.load_kind != "concurrency":
            return Skip(f"disaggregated load_kind={row.load_kind} (an isolated phase) not modelled")
        if not (row.prefill_workers and row.decode_workers and row.prefill_tp and row.decode_tp):
            return Skip("disaggregated row without its prefill/decode worker counts and TP")
        reason = common_reason(row, speculative=True) or self._spec_reason(row)
        if reason:
            return Skip(reason)
        lengths = benchmark_workload_lengths(row)
        assert lengths is not None
        base = row_plan(row)
        p_dpa, d_dpa = _pool_dp_attention(row)
        pplan = Plan(tp=row.prefill_tp, ep=row.prefill_ep or 1, dp_attention=p_dpa,
                     weight_dtype=base.weight_dtype, kv_dtype=base.kv_dtype)
        dplan = Plan(tp=row.decode_tp, ep=row.decode_ep or 1, dp_attention=d_dpa,
                     weight_dtype=base.weight_dtype, kv_dtype=base.kv_dtype)
        n = max(1, round(row.load_value or 1))
        try:
            psm, dsm = self._sm(row, pplan), self._sm(row, dplan)
            domain = get_system(psm.accel.system_id).scale_up_domain
            wl = self._closed_loop(lengths, n)
            res = simulate_disagg(
                psm, dsm, wl, row.prefill_workers, row.decode_workers,
                max_num_seqs=_seq_cap(n, dplan),
                request_overhead_s=self.request_overhead_s,
                same_domain=row.num_gpus <= domain,
                spec=self._spec(row),
            )
        except HierroError as err:
            return Skip(f"cannot model: {err}")
        return RowPrediction(self._values(row, res, 1))

    def _run(self, row: Measurement, lengths: tuple[LengthDist, LengthDist]) -> tuple[SimResult, int]:
        sm = self._sm(row, row_plan(row))
        replicas = row.replicas or max(1, row.num_gpus // sm.plan.devices)
        if row.load_kind == "concurrency":
            n = max(1, round((row.load_value or 1) / replicas))
            wl = self._closed_loop(lengths, n)
            max_seqs = _seq_cap(n, sm.plan)
        else:
            rate = (row.load_value or 0.0) / replicas
            if rate <= 0:
                raise HierroError(f"row {row.id}: server_qps rows need a positive load_value")
            wl = synthetic(SERVER_REQUESTS, lengths[0], lengths[1], np.random.default_rng(self.seed), rate=rate)
            max_seqs = default_max_seqs(sm.plan)
        res = simulate(sm, wl, max_num_seqs=max_seqs, seed=self.seed,
                       request_overhead_s=self.request_overhead_s, spec=self._spec(row))
        return res, replicas

    def _spec(self, row: Measurement) -> SpecDecode | None:
        """The row's speculative decoding: its recipe's MTP drafts (:func:`mtp_draft_tokens`)
        accepted at the calibration's rate; None for rows served without it."""
        if not is_mtp(row):
            return None
        rate = self.acceptance if self.acceptance is not None else self.calib.mtp_acceptance
        assert rate is not None
        return SpecDecode(mtp_draft_tokens(row), rate)

    def _spec_reason(self, row: Measurement) -> str:
        if is_mtp(row) and self.acceptance is None and self.calib.mtp_acceptance is None:
            return "speculative decoding (MTP): the calibration has no acceptance rate"
        return ""

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

    def _unsupported(self, row: Measurement) -> str:
        reason = EstimatePredictor.unsupported_reason(row, allow_server=True, speculative=True)
        if reason:
            return reason
        reason = self._spec_reason(row)
        if reason:
            return reason
        if row_lengths(row) is None:  # pragma: no cover - covered by unsupported_reason
            return "request lengths not stated"
        return ""
