"""Fit the efficiencies of the step-cost model on measurements, and cross-validate the fit.

Parameters (few, shared across models; each is written as one or more
:class:`~hierro.perf.EfficiencyEntry` rows that override the base calibration):

* per accelerator family ``h``: dense GEMM compute efficiency ``e_c[h]`` (BF16 and the other
  16-bit formats) and, apart, ``e_c[h, fp8]`` and ``e_c[h, fp4]`` for the 8- and 4-bit tensor-core
  GEMMs; HBM efficiency ``e_m[h]`` (shared by the ``gemm`` and ``attn_decode`` op classes) and
  MoE compute efficiency ``e_moe[h]``;
* per framework family ``w`` (vllm, sglang, trtllm, atom): the per-step host overhead
  ``t_step[w]``, the per-request overhead before the first token ``t_req[w]``, the fixed time
  of one GEMM or attention op ``t_k[w]`` (launch, pipeline fill and last-wave tail; how many
  kernels an op takes depends on the engine's fusions) and the latency of one all-reduce call
  ``t_ar[w]`` (each engine ships its own small-message all-reduce kernels);
  and the share ``x[w]`` of the shorter of a GEMM's compute and memory times that its kernels do
  not hide behind the longer (:func:`hierro.perf.roofline.op_time`; each engine ships its own
  GEMM and fused-MoE kernels);
* global: attention-prefill compute efficiency, all-reduce link efficiency, all-to-all link
  efficiency, and fallback kernel and all-reduce latencies and exposed share for other engines.

Only parameters that some training row's ops look up are fitted; the others keep the base
values. Load and lengths enter only through the model: there is no per-row or per-model term.

Objective (robust least squares in log space, scipy ``least_squares``): for each training row
``i`` and metric family ``f`` in {throughput, TPOT, TTFT, E2E} (one measured column per
family: ``out_tok_s_per_gpu`` else ``out_tok_s`` else ``req_s``; mean else p50)

    r_if = log(pred_if / meas_if),   ρ(r) = 2 s² (sqrt(1 + (r/s)²) - 1)   (soft-L1, s = 0.1)

    minimise  Σ_f (1/n_f) Σ_i ρ(r_if) + λ Σ_j ((x_j - x0_j) / σ_j)²

so each metric family weighs the same whatever its count ``n_f``; the weak prior
(λ = 0.001) pulls parameters that the data barely constrain back to the base values. Variables:
``x = log e`` for efficiencies (bounds ``0.2 <= e <= 1``, σ = 1), the exposed share itself
(``0 <= x <= 1``, σ = 1) and milliseconds for latencies (bounds ``0 <= t <= 50 ms``, per-request
overhead ``<= 250 ms``; σ = 20 ms, 100 ms).

The fit evaluates the model with the precomputed surrogate of :mod:`hierro.accuracy.fast`
(the same roofline, the closed-loop root on a fixed 48-point grid); reported errors use the
exact model (:func:`hierro.accuracy.fast.exact_predictions`).
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares

from hierro.accuracy.crossval import crossval_predictions
from hierro.accuracy.fast import FastPredictor, Prepared, RowSet, SlotKey, prepare, slot_values
from hierro.accuracy.measurements import Measurement, unique
from hierro.accuracy.validate import ValidationResult, validate
from hierro.perf import Calibration, EfficiencyEntry, starting_calibration

__all__ = [
    "FAMILIES",
    "Param",
    "crossval_report",
    "fit_calibration",
    "fit_prepared",
    "parameters",
]

F = NDArray[np.float64]

FAMILIES: dict[str, tuple[str, ...]] = {
    "throughput": ("out_tok_s_per_gpu", "out_tok_s", "req_s"),
    "tpot": ("tpot_mean_ms", "tpot_p50_ms"),
    "ttft": ("ttft_mean_ms", "ttft_p50_ms"),
    "e2e": ("e2e_p50_ms",),
}
"""Metric family -> the measured columns standing for it, first present wins."""

HW_FAMILIES = ("hopper", "blackwell", "blackwell-ultra", "cdna3", "cdna4", "ampere", "ada")
FW_FAMILIES = ("vllm", "sglang", "trtllm", "atom")
MOE_WEIGHT_DTYPES = ("bf16", "fp8", "fp4", "int4")
LOW_PRECISION_GEMM_DTYPES = ("fp8", "fp4")
"""GEMM formats with a compute efficiency of their own per accelerator family."""
SOFT_L1_SCALE = 0.1
PRIOR_WEIGHT = 1e-3
EFF_MIN = 0.2
"""Lower bound of a fitted efficiency: production kernels (cuBLAS/CUTLASS GEMMs, FlashAttention,
fused MoE) reach well above 20% of peak on the shapes served; a fit that wants less is absorbing
something the model does not express (queueing, overheads), not measuring a kernel."""
LATENCY_MAX_S = 0.05
REQUEST_OVERHEAD_MAX_S = 0.25
PER_INFLIGHT_MAX_S = 0.02
"""Upper bound of the front end's time per request in flight (20 ms: at 128 streams, 2.6 s)."""
PER_PROMPT_TOKEN_MAX_S = 1e-4
"""Upper bound of the front end's time per prompt token (0.1 ms: 0.8 s for an 8k prompt)."""
PER_STEP_MAX = 50.0
"""Upper bound of the front end's engine steps per request."""
PER_STEP_PER_TOKEN_MAX = 0.01
"""Upper bound of the front end's engine steps per prompt token (10 per 1,000 tokens)."""
FRONT_END_ATTRS = ("ttft", "ttft_n", "ttft_l")


@dataclass(frozen=True)
class Param:
    """One fitted number, written as entries ``(family, framework, op_class[, dtype])`` of
    ``attr`` (``compute``, ``memory``, ``latency_s``), or, for ``attr`` ``ttft`` / ``ttft_n``,
    as the front end's fixed time / time per request in flight of the framework family
    ``patterns[0][1]`` (:class:`~hierro.perf.FrontEnd`)."""

    name: str
    attr: str
    patterns: tuple[tuple[str, ...], ...]

    @property
    def is_efficiency(self) -> bool:
        return self.attr in ("compute", "memory")

    @property
    def upper(self) -> float:
        if self.is_efficiency or self.attr == "exposed":
            return 1.0
        if self.attr == "ttft":
            return REQUEST_OVERHEAD_MAX_S
        return {"ttft_n": PER_INFLIGHT_MAX_S, "ttft_l": PER_PROMPT_TOKEN_MAX_S}.get(self.attr, LATENCY_MAX_S)

    @property
    def scale(self) -> float:
        """Optimiser units per second: ms for latencies, ms per 1,000 prompt tokens for ttft_l
        (1 for the dimensionless exposed share)."""
        if self.attr == "exposed":
            return 1.0
        return 1e6 if self.attr == "ttft_l" else 1e3

    def to_x(self, value: float) -> float:
        """Optimiser variable: log e for efficiencies, scaled latencies otherwise."""
        return math.log(value) if self.is_efficiency else value * self.scale

    def entries(self, value: float) -> tuple[EfficiencyEntry, ...]:
        if self.attr in FRONT_END_ATTRS:
            return ()
        return tuple(
            EfficiencyEntry(family=pat[0], framework=pat[1], op_class=pat[2],
                            dtype=pat[3] if len(pat) > 3 else "*",
                            note=f"fitted: {self.name}", **{self.attr: value})
            for pat in self.patterns
        )


def parameters() -> tuple[Param, ...]:
    """The full parameter set (before restricting to what the data reach)."""
    out: list[Param] = []
    for h in HW_FAMILIES:
        out.append(Param(f"{h}.gemm.compute", "compute", ((h, "*", "gemm"),)))
        out.append(Param(f"{h}.memory", "memory", ((h, "*", "gemm"), (h, "*", "attn_decode"))))
        out.append(Param(f"{h}.moe.compute", "compute", ((h, "*", "moe"),)))
        # A low-precision GEMM reaches a different fraction of its own (2x or 4x higher) peak
        # than a BF16 one: the per-block scales are applied in the main loop (FP8 block scaling
        # promotes partial sums to FP32 every few k-steps on Hopper, NVFP4/MXFP4 micro-block
        # scales on Blackwell) and the operands arrive quantised by a separate kernel. Fitted
        # where the family has rows in the format; otherwise the family's one value stands.
        for dt in LOW_PRECISION_GEMM_DTYPES:
            out.append(Param(f"{h}.gemm.compute.{dt}", "compute", ((h, "*", "gemm", dt),)))
    # A fused MoE kernel streams many small expert matrices with their quantisation scales
    # (block-scaled FP8, NVFP4/MXFP4 micro-blocks, group-wise INT4 dequantised in the kernel):
    # the fraction of HBM bandwidth it reaches depends on the weight format more than on the
    # chip, so it is one number per format, shared by every hardware family.
    for dt in MOE_WEIGHT_DTYPES:
        out.append(Param(f"moe.memory.{dt}", "memory", (("*", "*", "moe", dt),)))
    for w in FW_FAMILIES:
        out.append(Param(f"{w}.step_overhead", "latency_s", (("*", w, "overhead"),)))
        out.append(Param(f"{w}.request_overhead", "ttft", (("*", w, "*"),)))
        out.append(Param(f"{w}.per_inflight", "ttft_n", (("*", w, "*"),)))
        out.append(Param(f"{w}.per_prompt_token", "ttft_l", (("*", w, "*"),)))
        out.append(Param(f"{w}.host_per_seq", "latency_s", (("*", w, "host"),)))
    out.append(Param("attn_prefill.compute", "compute", (("*", "*", "attn_prefill"),)))
    # Every GEMM and attention op pays a fixed time besides its roofline time: the kernel
    # launch (small under CUDA/HIP graphs), the prologue that fills the tensor-core pipeline and
    # the tail of the last wave of thread blocks. Decode steps are hundreds of short kernels, so
    # this floor sets a small batch's step time as much as the weight bytes do. How many kernels
    # an op of the step model takes depends on the engine's fusions (TensorRT-LLM fuses the
    # norms, RoPE and quantisation into its GEMMs and attention; vLLM through torch.compile),
    # so it is one number per engine family, the global one standing for other engines.
    kernel_ops = ("gemm", "attn_decode", "attn_prefill")
    out.append(Param("kernel.latency", "latency_s", tuple(("*", "*", op) for op in kernel_ops)))
    for w in FW_FAMILIES:
        out.append(Param(f"{w}.kernel.latency", "latency_s", tuple(("*", w, op) for op in kernel_ops)))
    out.append(Param("allreduce.link", "memory", (("*", "*", "allreduce"),)))
    out.append(Param("allreduce.latency", "latency_s", (("*", "*", "allreduce"),)))
    # The small all-reduces of decode are latency-bound, and each engine ships its own kernels
    # for them (TensorRT-LLM's one-/two-shot AllReduce fused with the next RMSNorm, vLLM's
    # CUDA-IPC custom all-reduce, SGLang's custom or FlashInfer-fused one, AITER's on ROCm),
    # so the per-call latency is one number per engine family; the global one above stands for
    # engines without tensor-parallel rows.
    for w in FW_FAMILIES:
        out.append(Param(f"{w}.allreduce.latency", "latency_s", (("*", w, "allreduce"),)))
    out.append(Param("alltoall.link", "memory", (("*", "*", "alltoall"),)))
    # How much of the shorter of a GEMM's compute and memory times its longer one fails to hide
    # (hierro.perf.roofline): how a tiled kernel pipelines its loads behind its math near the
    # ridge point, which each engine's own GEMM and fused-MoE kernels do differently (TensorRT-LLM's
    # and AITER's tuned kernels, vLLM's and SGLang's Triton fused MoE and CUTLASS/cuBLAS
    # GEMMs), so one number per engine family for dense and expert GEMMs on every chip; the
    # global one stands for other engines.
    out.append(Param("roofline.exposed", "exposed", (("*", "*", "gemm"), ("*", "*", "moe"))))
    for w in FW_FAMILIES:
        out.append(Param(f"{w}.roofline.exposed", "exposed", (("*", w, "gemm"), ("*", w, "moe"))))
    return tuple(out)


def _owner(base: Calibration, params: Sequence[Param], key: SlotKey) -> int:
    """Index of the parameter whose entry wins the lookup ``key`` once the parameters' entries
    follow the base entries (the lookup rule of :class:`~hierro.perf.Calibration`), or -1."""
    attr, fam, fw, op_class, dtype = key
    if attr == "one":
        return -1
    if attr in FRONT_END_ATTRS:
        return next((j for j, p in enumerate(params) if p.attr == attr and p.patterns[0][1] == fw), -1)
    if attr in ("ttft_s", "ttft_sl"):  # the front end's engine steps: not fitted in this stage
        return -1
    best: tuple[int, int] | None = None  # (specificity, owner)
    cands: list[tuple[EfficiencyEntry, int]] = [(e, -1) for e in base.entries]
    for j, p in enumerate(params):
        if p.attr == attr:
            cands.extend((e, j) for e in p.entries(0.5))
    for e, j in cands:
        if getattr(e, attr) is None or not e.matches(fam, fw, op_class, dtype):
            continue
        if best is None or e.specificity() >= best[0]:
            best = (e.specificity(), j)
    return -1 if best is None else best[1]


def _calibration(base: Calibration, params: Sequence[Param], values: Sequence[float],
                 fitted_on: str, error: dict[str, object]) -> Calibration:
    entries = list(base.entries)
    ttft = dict(base.ttft_overhead)
    per_inflight = dict(base.ttft_per_inflight)
    per_token = dict(base.ttft_per_prompt_token)
    for p, v in zip(params, values, strict=True):
        entries.extend(p.entries(v))
        if p.attr == "ttft":
            ttft[p.patterns[0][1]] = v
        elif p.attr == "ttft_n":
            per_inflight[p.patterns[0][1]] = v
        elif p.attr == "ttft_l":
            per_token[p.patterns[0][1]] = v
    # what this stage does not fit (the front end's engine steps, the MTP acceptance) carries over
    return replace(
        base,
        source=f"hierro fit on published measurements (base: {base.source})",
        as_of=_dt.date.today().isoformat(),
        entries=tuple(entries),
        ttft_overhead=ttft,
        fitted_on=fitted_on,
        error=dict(error),
        ttft_per_inflight=per_inflight,
        ttft_per_prompt_token=per_token,
        _memo={},
    )


@dataclass(frozen=True)
class _Targets:
    pos: NDArray[np.int64]
    metric: tuple[str, ...]
    log_meas: F
    weight: F


def _targets(prep: Prepared, rs: RowSet, families: Sequence[str]) -> _Targets:
    pos: list[int] = []
    metric: list[str] = []
    meas: list[float] = []
    fam: list[str] = []
    for k, i in enumerate(rs.idx):
        row = prep.rows[int(i)]
        have = row.measured()
        for name, cols in FAMILIES.items():
            if name not in families:
                continue
            if prep.offline[i] and name != "throughput":
                continue
            col = next((c for c in cols if c in have), None)
            if col is not None:
                pos.append(k)
                metric.append(col)
                meas.append(have[col])
                fam.append(name)
    counts = {f: fam.count(f) for f in set(fam)}
    weight = np.array([1.0 / counts[f] for f in fam])
    return _Targets(np.array(pos, dtype=np.int64), tuple(metric), np.log(np.array(meas)), weight)


def _soft_l1(r: F) -> F:
    """Signed square root of the soft-L1 loss: g(r)² = 2s²(sqrt(1 + (r/s)²) - 1)."""
    s = SOFT_L1_SCALE
    return np.asarray(np.sign(r) * s * np.sqrt(2.0 * (np.sqrt(1.0 + (r / s) ** 2) - 1.0)), dtype=np.float64)


@dataclass(frozen=True)
class FitResult:
    """A fitted calibration and the optimiser's account."""

    calibration: Calibration
    params: tuple[Param, ...]
    values: tuple[float, ...]
    cost: float
    nfev: int


def fit_prepared(prep: Prepared, rows: Sequence[int] | None = None, *,
                 base: Calibration | None = None, max_nfev: int = 30,
                 families: Sequence[str] = tuple(FAMILIES)) -> FitResult:
    """Fit the parameters that ``rows`` (predictable indices of ``prep``; default all) reach."""
    base = base or starting_calibration()
    rs = RowSet.of(prep, rows)
    used = {int(s) for arr in (rs.slot_c, rs.slot_m, rs.slot_l, rs.slot_x) for s in np.unique(arr)}
    used |= {int(s) for s in np.unique(prep.slot_step[rs.idx])}
    used |= {int(s) for s in np.unique(prep.slot_ttft[rs.idx])}
    used |= {int(s) for s in np.unique(prep.slot_ttft_n[rs.idx])}
    used |= {int(s) for s in np.unique(prep.slot_ttft_l[rs.idx])}
    every = parameters()
    owner_all = [_owner(base, every, prep.slots[s]) for s in sorted(used)]
    latency_fitted = "ttft" in families or "e2e" in families
    active = tuple(p for j, p in enumerate(every) if j in set(owner_all)
                   and (latency_fitted or p.attr not in FRONT_END_ATTRS))
    slot_owner = np.array([_owner(base, active, k) for k in prep.slots], dtype=np.int64)
    base_v = slot_values(base, prep.slots)
    mapped = slot_owner >= 0
    x0 = np.array([p.to_x(base_v[slot_owner == j][0]) if np.any(slot_owner == j)
                   else p.to_x(0.5) for j, p in enumerate(active)])
    lo = np.array([math.log(EFF_MIN) if p.is_efficiency else 0.0 for p in active])
    hi = np.array([0.0 if p.is_efficiency else p.upper * p.scale for p in active])
    x0 = np.clip(x0, lo + 1e-6 * (hi - lo), hi - 1e-6 * (hi - lo))
    sigma = np.array([1.0 if p.is_efficiency else {"ttft": 100.0, "ttft_n": 5.0, "ttft_l": 20.0, "exposed": 1.0}.get(p.attr, 20.0)
                      for p in active])
    is_eff = np.array([p.is_efficiency for p in active])
    scale = np.array([p.scale for p in active])
    tg = _targets(prep, rs, families)
    sw = np.sqrt(tg.weight)
    metric_idx = {m: np.array([k for k, x in enumerate(tg.metric) if x == m]) for m in set(tg.metric)}

    def values(x: F) -> F:
        return np.where(is_eff, np.exp(x), x / scale)

    def residuals(x: F) -> F:
        v = base_v.copy()
        v[mapped] = values(x)[slot_owner[mapped]]
        pred = rs.predict(v)
        logp = np.empty(len(tg.metric))
        for m, k in metric_idx.items():
            logp[k] = np.log(pred[m][tg.pos[k]])
        r = logp - tg.log_meas
        r = np.where(np.isfinite(r), r, 10.0)
        prior = math.sqrt(PRIOR_WEIGHT) * (x - x0) / sigma
        return np.concatenate([sw * _soft_l1(r), prior])

    if len(active):
        sol = least_squares(residuals, x0, bounds=(lo, hi), method="trf", x_scale=sigma,
                            diff_step=1e-3, max_nfev=max_nfev, ftol=1e-6, xtol=1e-6)
        x, cost, nfev = sol.x, float(sol.cost), int(sol.nfev)
    else:
        x, cost, nfev = x0, 0.0, 0
    vals = tuple(float(min(max(val, EFF_MIN if p.is_efficiency else 0.0), p.upper))
                 for p, val in zip(active, values(x), strict=True))
    n_rows = len(rs.idx)
    fitted_on = (f"{n_rows} rows ({len(tg.metric)} metric values) of "
                 f"{len({prep.rows[int(i)].group_key for i in rs.idx})} source x hardware x model groups, "
                 f"{_dt.date.today().isoformat()}")
    calib = _calibration(base, active, vals, fitted_on, {})
    return FitResult(calib, active, vals, cost, nfev)


def _error(result: ValidationResult) -> dict[str, object]:
    out: dict[str, object] = {}
    for metric, s in result.summary().items():
        out[metric] = s.overall.to_dict()
    return out


def fit_calibration(rows: Sequence[Measurement], *, base: Calibration | None = None) -> Calibration:
    """Fit on ``rows`` (duplicates dropped, unpredictable rows ignored); the result's ``error``
    holds the in-sample statistics per metric (exact model)."""
    todo = unique(rows)
    prep = prepare(todo)
    fit = fit_prepared(prep, base=base)
    res = validate(todo, FastPredictor.build(prep, fit.calibration))
    c = fit.calibration
    return replace(c, error={"in_sample": _error(res)})


def crossval_report(
    rows: Sequence[Measurement], k: int = 5, *, base: Calibration | None = None, seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> tuple[ValidationResult, Calibration]:
    """Grouped k-fold cross-validated predictions (group = source kind x hardware x model;
    each fold's calibration is fitted without any row of its test groups), and the calibration
    fitted on all rows, whose ``error`` holds both the cross-validated and in-sample statistics.
    """
    todo = unique(rows)
    prep = prepare(todo)
    where = {r.id: i for i, r in enumerate(todo)}
    fold_no = [0]

    def fit(train: Sequence[Measurement]) -> FastPredictor:
        idx = [where[r.id] for r in train if prep.skips[where[r.id]] is None]
        f = fit_prepared(prep, idx, base=base)
        fold_no[0] += 1
        if progress is not None:
            progress(f"fold {fold_no[0]}/{k}: {len(idx)} training rows, {len(f.params)} parameters, "
                     f"{f.nfev} evaluations")
        seen = {where[r.id] for r in train}
        test = [i for i in range(len(todo)) if i not in seen]
        return FastPredictor.build(prep, f.calibration, test)

    cv = crossval_predictions(todo, fit, k, seed=seed)
    full = fit_prepared(prep, base=base)
    insample = validate(todo, FastPredictor.build(prep, full.calibration))
    error = {"crossval": {"k": k, "group": "source_kind x hardware x model", **_error(cv)},
             "in_sample": _error(insample)}
    return cv, replace(full.calibration, error=error)

