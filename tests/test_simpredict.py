"""The simulator as a predictor of measurement rows, and its two-stage calibration."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from hierro.accuracy import RowPrediction, Skip, load_measurements, unique, validate
from hierro.accuracy.predictor import (
    INFERENCEX_MTP_RUNS,
    EstimatePredictor,
    is_mtp,
    mtp_draft_tokens,
)
from hierro.accuracy.simfit import _front_ends
from hierro.accuracy.simpredict import SimPredictor, benchmark_workload_lengths
from hierro.perf import FrontEnd, starting_calibration
from hierro.sim import Fixed, UniformRatio

ROWS = unique(load_measurements())


def _first(pred: object) -> object:
    return next(r for r in ROWS if pred(r))  # type: ignore[operator]


def test_lengths_follow_the_benchmark() -> None:
    rnd = _first(lambda r: r.length_dist == "random:0.8" and r.isl_mean)
    fixed = _first(lambda r: r.length_dist == "fixed" and r.isl_mean and r.osl_mean)
    a, _ = benchmark_workload_lengths(rnd)  # type: ignore[arg-type, misc]
    b, _ = benchmark_workload_lengths(fixed)  # type: ignore[arg-type, misc]
    assert isinstance(a, UniformRatio) and isinstance(b, Fixed)


def test_concurrency_row_predicts_percentiles_and_agrees_with_estimate_on_tpot() -> None:
    row = _first(lambda r: r.load_kind == "concurrency" and r.model == "llama-3.1-70b"
                 and r.length_dist.startswith("random") and (r.load_value or 0) <= 8 and r.tpot_mean_ms)
    calib = starting_calibration()
    sim = SimPredictor(calib=calib).predict(row)  # type: ignore[arg-type]
    est = EstimatePredictor(calib=calib).predict(row)  # type: ignore[arg-type]
    assert isinstance(sim, RowPrediction) and isinstance(est, RowPrediction)
    assert {"ttft_p99_ms", "tpot_p99_ms", "e2e_p99_ms"} <= set(sim.values)
    assert sim.values["tpot_mean_ms"].value == pytest.approx(est.values["tpot_mean_ms"].value, rel=0.25)


def test_server_rows_are_simulated() -> None:
    server = _first(lambda r: r.load_kind == "server_qps" and r.isl_mean and r.osl_mean and r.mode == "aggregated")
    assert isinstance(SimPredictor(calib=starting_calibration()).predict(server), RowPrediction)  # type: ignore[arg-type]


def _small_disagg(r: object) -> bool:
    return (r.mode == "disaggregated" and r.load_kind == "concurrency"
            and (r.load_value or 0) <= 16 and "mtp" not in r.id
            and bool(r.prefill_workers) and bool(r.tpot_mean_ms))


def test_disaggregated_rows_are_simulated_through_both_pools() -> None:
    row = _first(_small_disagg)
    p = SimPredictor(calib=starting_calibration())
    pred = p.predict(row)  # type: ignore[arg-type]
    assert isinstance(pred, RowPrediction)
    v = pred.values
    assert v["out_tok_s_per_gpu"].value == pytest.approx(v["out_tok_s"].value / row.num_gpus)  # type: ignore[attr-defined]
    assert 0 < v["tpot_mean_ms"].value < v["ttft_mean_ms"].value * 10
    # more decode instances never lower a closed loop's throughput
    more = dataclasses.replace(row, decode_workers=2 * row.decode_workers,  # type: ignore[attr-defined, type-var]
                               num_gpus=row.num_gpus + row.decode_workers * row.decode_tp)  # type: ignore[attr-defined]
    bigger = p.predict(more)
    assert isinstance(bigger, RowPrediction)
    assert bigger.values["out_tok_s"].value >= 0.98 * v["out_tok_s"].value


def test_disaggregated_rows_without_workers_are_skipped_with_the_reason() -> None:
    row = _first(_small_disagg)
    p = SimPredictor(calib=starting_calibration())
    blind = p.predict(dataclasses.replace(row, prefill_workers=None))  # type: ignore[type-var]
    assert isinstance(blind, Skip) and "worker counts" in blind.reason


def test_mtp_rows_speed_decoding_by_the_acceptance_and_need_one() -> None:
    """An MTP row is simulated with its recipe's drafts at the calibration's acceptance rate: a
    higher rate, shorter TPOT. Without a rate it is skipped with the reason; the analytic
    estimate does not model speculation and says so."""
    row = _first(_small_disagg)
    mtp_row = dataclasses.replace(row, id=row.id + "-mtp")  # type: ignore[attr-defined, type-var]
    assert mtp_draft_tokens(mtp_row) >= 1
    calib = starting_calibration()
    low = SimPredictor(calib=calib, acceptance=0.3).predict(mtp_row)
    high = SimPredictor(calib=calib, acceptance=0.9).predict(mtp_row)
    plain = SimPredictor(calib=calib).predict(row)
    assert isinstance(low, RowPrediction) and isinstance(high, RowPrediction) and isinstance(plain, RowPrediction)
    assert high.values["tpot_mean_ms"].value < low.values["tpot_mean_ms"].value < plain.values["tpot_mean_ms"].value
    none = SimPredictor(calib=dataclasses.replace(calib, mtp_acceptance=None, _memo={})).predict(mtp_row)
    assert isinstance(none, Skip) and "acceptance" in none.reason
    agg = _first(lambda r: r.mode == "aggregated" and r.load_kind == "concurrency" and r.length_dist)
    skipped = EstimatePredictor(calib).predict(dataclasses.replace(agg, id=agg.id + "-mtp"))  # type: ignore[attr-defined, type-var]
    assert isinstance(skipped, Skip) and "MTP" in skipped.reason


def test_aiconfigurator_copies_of_mtp_only_inferencex_runs_are_mtp() -> None:
    """aiconfigurator's silicon rows drop InferenceX's config name: a row whose image and run date
    belong only to InferenceX's MTP configs is an MTP row; the same image outside those dates, or
    another image on the same day, is not. The labelled InferenceX rows agree with the table."""
    aic = _first(lambda r: r.source_kind == "aiconfigurator_silicon" and r.hardware == "b200"
                 and r.model == "deepseek-r1" and "release:1.2.0rc6.post3" in r.notes)
    assert is_mtp(aic)  # type: ignore[arg-type]
    before = dataclasses.replace(aic, notes=aic.notes.replace("measured=2026-02-0", "measured=2026-01-2"))  # type: ignore[attr-defined, type-var]
    assert "measured=2026-01-2" in before.notes and not is_mtp(before)
    stp = dataclasses.replace(aic, notes=aic.notes.replace("rc6.post3", "rc6.post2"))  # type: ignore[attr-defined, type-var]
    assert not is_mtp(stp)
    elsewhere = dataclasses.replace(aic, hardware="h200-sxm")  # type: ignore[type-var]
    assert not is_mtp(elsewhere)
    for run in INFERENCEX_MTP_RUNS:
        labelled = [r for r in ROWS if r.source_kind == "inferencemax" and r.hardware == run.hardware
                    and run.image in r.notes.replace("#", "/")]
        inside = [r for r in labelled if run.first <= re.search(r"run (\S+)", r.notes).group(1) <= run.last]  # type: ignore[union-attr]
        assert inside and all(is_mtp(r) for r in inside)


def test_static_batch_rows_run_as_one_wave() -> None:
    """benchmark_latency: B prompts together; throughput = B x osl / the batch's latency."""
    row = _first(lambda r: r.load_kind == "batch" and r.length_dist == "fixed" and "static batch" in r.notes
                 and (r.load_value or 0) >= 8)
    pred = SimPredictor(calib=starting_calibration()).predict(row)  # type: ignore[arg-type]
    assert isinstance(pred, RowPrediction)
    b, osl = row.load_value, row.osl_mean  # type: ignore[attr-defined]
    latency_s = pred.values["e2e_p99_ms"].value / 1e3
    assert pred.values["out_tok_s"].value == pytest.approx(b * osl / latency_s, rel=0.02)
    engine_limit = _first(lambda r: r.load_kind == "batch" and "static batch" not in r.notes)
    assert isinstance(SimPredictor(calib=starting_calibration()).predict(engine_limit), Skip)  # type: ignore[arg-type]


def test_request_overhead_adds_to_ttft() -> None:
    row = _first(lambda r: r.load_kind == "concurrency" and r.model == "llama-3.1-70b"
                 and r.length_dist.startswith("random") and (r.load_value or 0) <= 4)
    calib = starting_calibration()
    a = SimPredictor(calib=calib, request_overhead_s=0.0).predict(row)  # type: ignore[arg-type]
    b = SimPredictor(calib=calib, request_overhead_s=0.05).predict(row)  # type: ignore[arg-type]
    assert isinstance(a, RowPrediction) and isinstance(b, RowPrediction)
    gap = b.values["ttft_mean_ms"].value - a.values["ttft_mean_ms"].value
    assert 40.0 < gap < 60.0


def test_front_end_fit_recovers_a_known_front_end() -> None:
    """Measurements generated by the simulator with a known front end (70 ms, 1 ms per request in
    flight, 20 us per prompt token, 2 engine steps and 1 more per 1,000 prompt tokens) give back
    its delay on those rows (in a closed loop the delay also shifts when requests meet the
    engine, so TTFT is not exactly additive in it; the per-token and per-step-per-token terms are
    nearly collinear when the step time varies little, so the check is on the delay they add)."""
    base = starting_calibration()
    truth_fe = FrontEnd(0.07, 1e-3, 2e-5, 2.0, 1e-3)
    truth = dataclasses.replace(base, ttft_overhead={"vllm": truth_fe.fixed_s},
                                ttft_per_inflight={"vllm": truth_fe.per_inflight_s},
                                ttft_per_prompt_token={"vllm": truth_fe.per_prompt_token_s},
                                ttft_per_step={"vllm": truth_fe.per_step},
                                ttft_per_step_per_token={"vllm": truth_fe.per_step_per_token})
    chosen = [r for r in ROWS if r.load_kind == "concurrency" and r.framework == "vllm"
              and r.model == "llama-3.1-70b" and r.length_dist.startswith("random") and r.ttft_mean_ms]
    assert len({r.load_value for r in chosen}) >= 3 and len({r.isl_mean for r in chosen}) >= 2
    synthetic, points = [], []
    for r in chosen:
        pred = SimPredictor(calib=truth).predict(r)
        assert isinstance(pred, RowPrediction)
        synthetic.append(dataclasses.replace(r, ttft_mean_ms=pred.values["ttft_mean_ms"].value))
        points.append(((r.load_value or 1.0), r.isl_mean or 0.0, pred.values["tpot_mean_ms"].value / 1e3))
    got = _front_ends(synthetic, base)["vllm"]
    assert got.fixed_s == pytest.approx(truth_fe.fixed_s, abs=0.02)
    want = np.array([truth_fe.delay(n, L, t) for n, L, t in points])
    have = np.array([got.delay(n, L, t) for n, L, t in points])
    assert float(np.median(np.abs(have / want - 1.0))) < 0.05


def test_validate_runs_with_the_simulator() -> None:
    rows = [r for r in ROWS if r.model == "llama-3.1-70b" and r.load_kind == "concurrency"
            and r.length_dist.startswith("random")][:10]
    res = validate(rows, SimPredictor(calib=starting_calibration()))
    assert res.points and all(p.predicted > 0 for p in res.points)
