"""The step-cost model as a :class:`~hierro.accuracy.validate.Predictor` of measurement rows.

A row names a model, an accelerator, a serving stack, a plan, a load and request lengths; the
predictor builds the same instance with :class:`~hierro.perf.StepModel` and predicts the row's
metrics with :func:`~hierro.perf.estimate`. Rows it cannot model are skipped with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hierro.accuracy.measurements import Measurement
from hierro.accuracy.validate import Band, RowPrediction, Skip
from hierro.errors import HierroError
from hierro.perf import (
    Calibration,
    Estimate,
    StepModel,
    default_calibration,
    estimate,
    framework_family,
)
from hierro.specs import Plan, get_accelerator, get_model, resolve_model_id
from hierro.units import to_ms

__all__ = [
    "BENCHMARK_WAVES",
    "INFERENCEX_MTP_RUNS",
    "EstimatePredictor",
    "InferenceXMtpRuns",
    "banded",
    "is_mtp",
    "mtp_draft_tokens",
    "row_lengths",
    "row_plan",
]

BENCHMARK_WAVES = 10.0
"""Closed-loop rows come from serving benchmarks run with ``--num-prompts 10 x concurrency``
(InferenceMAX's client configuration; aiconfigurator's silicon rows reuse InferenceX runs): an
assumption for sources that do not state it."""

# Uniform lengths in [r·L, L] have mean (1 + r)/2 · L (InferenceX bench_serving --random-range-ratio).
def row_lengths(row: Measurement) -> tuple[float, float] | None:
    """Mean input and output lengths of a row's requests, or None if unknown."""
    if row.isl_mean is None or row.osl_mean is None:
        return None
    scale = 1.0
    if row.length_dist.startswith("random:"):
        scale = (1.0 + float(row.length_dist.split(":", 1)[1])) / 2.0
    return row.isl_mean * scale, row.osl_mean * scale


def row_plan(row: Measurement) -> Plan:
    """The plan of one instance of an aggregated row."""
    tp = row.tp or max(1, row.num_gpus // max(row.replicas or 1, 1))
    weight = row.weight_dtype or "bf16"
    kv = row.kv_dtype or ("fp8" if weight in ("fp8", "fp4") else "bf16")
    if weight == "fp16":
        weight = "bf16"
    if kv == "fp16":
        kv = "bf16"
    return Plan(
        tp=tp,
        pp=row.pp or 1,
        ep=row.ep or 1,
        dp_attention=bool(row.dp_attention),
        weight_dtype=weight,
        kv_dtype=kv,
    )


@dataclass(frozen=True, slots=True)
class InferenceXMtpRuns:
    """InferenceX runs of one container image that only its MTP configs made: aiconfigurator's
    silicon rows copy InferenceX runs but drop the config name, so the image and run date are
    what tells their speculative decoding apart."""

    hardware: str
    image: str
    first: str
    last: str
    source: str


INFERENCEX_MTP_RUNS = (
    InferenceXMtpRuns(
        "b200", "tensorrt-llm/release:1.2.0rc6.post3", "2026-02-05", "2026-05-17",
        "SemiAnalysisAI/InferenceX perf-changelog.yaml, PR #642 (2026-02-05): dsr1-fp4-b200-trt-mtp "
        "moves to release:1.2.0rc6.post3; PRs #1488/#1489 (2026-05-18): dsr1-fp4/fp8-b200-trt were on "
        "1.2.0rc6.post2 and the -trt-mtp configs on 1.2.0rc6.post3 until both moved to 1.3.0rc14",
    ),
    InferenceXMtpRuns(
        "b200", "tensorrt-llm/release:1.1.0rc2.post2", "2026-01-14", "2026-01-14",
        "InferenceX run 21012094241 (2026-01-14): its B200 TRT-LLM DeepSeek-R1 rows in the bundled "
        "set are MTP runs (spec_decoding=mtp); the standard configs last ran on this image on "
        "2025-12-15 and moved to 1.2.0rc6.post2 in PR #594 (2026-01-28)",
    ),
)
"""The known MTP-only InferenceX runs of a DeepSeek model, by image and run date."""

_IMAGE = re.compile(r"image=([^;\"]+)")
_MEASURED = re.compile(r"measured=(\d{4}-\d{2}-\d{2})")


def is_mtp(row: Measurement) -> bool:
    """Whether a row was served with multi-token-prediction speculative decoding: said so by its
    id or notes, or an aiconfigurator copy of an MTP-only InferenceX run (``INFERENCEX_MTP_RUNS``)."""
    if "-mtp" in row.id or "spec_decoding=mtp" in row.notes or "mtp" in row.notes.lower().split(";")[0]:
        return True
    if row.source_kind != "aiconfigurator_silicon" or not row.model.startswith("deepseek"):
        return False
    image, measured = _IMAGE.search(row.notes), _MEASURED.search(row.notes)
    if image is None or measured is None:
        return False
    tag, day = image.group(1).replace("#", "/"), measured.group(1)
    return any(
        r.hardware == row.hardware and tag.endswith(r.image) and r.first <= day <= r.last
        for r in INFERENCEX_MTP_RUNS
    )


def mtp_draft_tokens(row: Measurement) -> int:
    """Draft tokens per step of an MTP row, as the InferenceX recipes that produced the rows set
    them (SemiAnalysisAI/InferenceX launch scripts and Dynamo recipes, 2026):

    * TensorRT-LLM (``trtllm-serve``, Dynamo-TRT-LLM): ``num_nextn_predict_layers`` 3, or 1 with
      attention data parallelism (``benchmarks/dsr1_*_b200_trt_mtp.sh``: "MTP=3, 1 with DP
      attention"; the Dynamo recipes vary from 1 to 3 and are not stated per row);
    * SGLang on NVIDIA (single node, Dynamo-SGLang): ``--speculative-num-steps 2`` (EAGLE-style
      chaining of the one MTP module: 2 drafts a step);
    * SGLang on AMD (MI325X, MI355X, MoRI) and ATOM: 3 drafts (``--speculative-num-steps 3``,
      ``--num-speculative-tokens 3``).
    """
    fam = framework_family(row.framework)
    if fam == "trtllm":
        return 1 if row.dp_attention else 3
    if fam == "atom" or row.hardware.startswith("mi"):
        return 3
    return 2


def common_reason(row: Measurement, *, speculative: bool = False) -> str:
    """Why a row's lengths, speculative decoding, model or hardware rule it out whatever its
    load (empty if nothing does). ``speculative``: the predictor models MTP rows."""
    if row_lengths(row) is None:
        return "request lengths not stated (MLPerf dataset rows need their length distribution)"
    if is_mtp(row) and not speculative:
        return "speculative decoding (MTP): simulated only, and this predictor does not simulate the row"
    if resolve_model_id(row.model) is None:
        return f"unknown model {row.model}"
    try:
        get_accelerator(row.hardware)
    except HierroError:
        return f"unknown hardware {row.hardware}"
    return ""


def banded(point: dict[str, float], calib: Calibration, predictor: str) -> dict[str, Band]:
    """Each predicted value with the calibration's cross-validated error band for
    ``predictor`` (``analytic`` or ``simulated``)."""
    out: dict[str, Band] = {}
    for k, v in point.items():
        lo, hi = calib.band(predictor, k)
        out[k] = Band(v, v * lo, v * hi)
    return out


@dataclass
class EstimatePredictor:
    """Predicts aggregated closed-loop and offline rows with the analytic estimate."""

    calib: Calibration = field(default_factory=default_calibration)

    def predict(self, row: Measurement) -> RowPrediction | Skip:
        reason = self.unsupported_reason(row)
        if reason:
            return Skip(reason)
        lengths = row_lengths(row)
        assert lengths is not None
        isl, osl = lengths
        try:
            accel = get_accelerator(row.hardware)
            sm = StepModel(get_model(row.model), accel, row_plan(row), framework=row.framework, calib=self.calib)
            replicas = row.replicas or max(1, row.num_gpus // sm.plan.devices)
            if row.load_kind == "offline":
                e = estimate(sm, isl=round(isl), osl=max(1, round(osl)), offline=True)
            else:
                conc = max(1, round((row.load_value or 1) / replicas))
                e = estimate(sm, isl=round(isl), osl=max(1, round(osl)), concurrency=conc, waves=BENCHMARK_WAVES)
        except HierroError as err:
            return Skip(f"cannot model: {err}")
        return RowPrediction(self._values(row, e, replicas))

    def _values(self, row: Measurement, e: Estimate, replicas: int) -> dict[str, Band]:
        total = e.out_tok_s * replicas
        point = {
            "out_tok_s": total,
            "out_tok_s_per_gpu": total / row.num_gpus,
            "req_s": e.req_s * replicas,
            "ttft_mean_ms": to_ms(e.ttft_s),
            "ttft_p50_ms": to_ms(e.ttft_s),
            "tpot_mean_ms": to_ms(e.tpot_s),
            "tpot_p50_ms": to_ms(e.tpot_s),
            "e2e_p50_ms": to_ms(e.e2e_s),
        }
        if row.load_kind == "offline":
            point = {k: v for k, v in point.items() if k in ("out_tok_s", "out_tok_s_per_gpu", "req_s")}
        return banded(point, self.calib, "analytic")

    @staticmethod
    def unsupported_reason(row: Measurement, *, allow_server: bool = False, speculative: bool = False) -> str:
        """Why a row cannot be predicted (empty if it can). ``allow_server`` and ``speculative``
        for predictors that simulate open-loop (server_qps) rows and MTP rows."""
        if row.mode == "disaggregated":
            return "disaggregated prefill/decode is not modelled yet"
        if row.load_kind == "server_qps" and not allow_server:
            return "server_qps rows (Poisson arrivals) need the serving simulator"
        if row.load_kind in ("batch", "phase"):
            return f"load_kind={row.load_kind} (static batch or isolated phase) not modelled yet"
        return common_reason(row, speculative=speculative)
