"""Cross-validated accuracy of hierro's predictions on the bundled measurements.

Grouped k-fold cross-validation (group = source kind x hardware x model; no fold is scored on
a group it was fitted on) of the two predictors:

* **simulated** (what ``hierro validate`` uses): :class:`~hierro.accuracy.simpredict.SimPredictor`
  with the three-stage fit of :mod:`hierro.accuracy.simfit` (kernel efficiencies on throughput,
  TPOT and TTFT; the serving front end per stack on simulated TTFT; the MTP acceptance rate on
  the speculative rows);
* **analytic** (``hierro estimate``'s steady state): :class:`EstimatePredictor` with every
  efficiency fitted on all metrics by :mod:`hierro.accuracy.fit`.

Writes ``ACCURACY.md``, the log-log plot ``docs/accuracy.png`` (simulated) and the simulated
predictor's calibration fitted on all rows to ``src/hierro/perf/data/efficiency_fitted.yaml``,
the default calibration of every command.

    PYTHONPATH=src python benchmarks/accuracy.py [--k 5] [--out-dir .]
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from hierro.accuracy import ValidationResult, load_measurements
from hierro.accuracy.fit import crossval_report
from hierro.accuracy.predictor import is_mtp
from hierro.accuracy.simfit import crossval_sim_report
from hierro.accuracy.stats import error_stats
from hierro.perf import Calibration
from hierro.perf.efficiency import dump_calibration

ROOT = Path(__file__).resolve().parent.parent
HEADLINE = ("out_tok_s_per_gpu", "tpot_mean_ms", "ttft_mean_ms", "e2e_p50_ms")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _table(title: str, stats: dict[str, dict[str, Any]]) -> list[str]:
    lines = [f"| {title} | n | median APE | p90 APE | bias |", "|---|---:|---:|---:|---:|"]
    for name, s in stats.items():
        lines.append(f"| {name} | {s['n']} | {_pct(s['median_ape'])} | {_pct(s['p90_ape'])} | "
                     f"{_pct(s['median_signed'])} |")
    return lines


def error_bands(cv: ValidationResult) -> dict[str, list[float]]:
    """Per metric, the 10th and 90th percentiles of measured / predicted over the
    cross-validated points: a prediction's band is [value x q10, value x q90]."""
    out: dict[str, list[float]] = {}
    for m in cv.metrics():
        ratios = np.array([p.measured / p.predicted for p in cv.points_of(m)])
        if len(ratios) >= 10:
            out[m] = [round(float(np.quantile(ratios, 0.1)), 4), round(float(np.quantile(ratios, 0.9)), 4)]
    return out


def _summary_lines(cv: ValidationResult) -> list[str]:
    summary = {m: s.to_json_dict() for m, s in cv.summary().items()}
    return _table("metric", {m: s["all"] for m, s in summary.items()})


def _subset_lines(cv: ValidationResult, ids: set[str]) -> list[str]:
    """Headline metrics of the points whose row id is (and is not) in ``ids``."""
    lines = ["| metric | rows | n | median APE | p90 APE | bias |", "|---|---|---:|---:|---:|---:|"]
    for m in HEADLINE:
        for label, inside in (("speculative (MTP)", True), ("the others", False)):
            pts = [p for p in cv.points_of(m) if (p.id in ids) == inside]
            if pts:
                s = error_stats([p.measured for p in pts], [p.predicted for p in pts])
                lines.append(f"| {m} | {label} | {s.n} | {_pct(s.median_ape)} | {_pct(s.p90_ape)} | "
                             f"{_pct(s.median_signed)} |")
    return lines


def markdown(cv: ValidationResult, calib: Calibration, analytic: ValidationResult, k: int,
             seconds: float, mtp_ids: set[str] | None = None) -> str:
    summary = {m: s.to_json_dict() for m, s in cv.summary().items()}
    out = [
        "# Accuracy of hierro's predictions",
        "",
        f"Grouped {k}-fold cross-validation on the bundled measurement set "
        "(`src/hierro/accuracy/data/calibration.csv`, duplicates counted once): each fold's "
        "calibration is fitted without any row of its test groups (group = source kind x "
        "hardware x model), then the test rows are predicted. APE = |p - m| / m; bias = median "
        "(p - m) / m. Targets (issue 3): median APE <= 10% for throughput per GPU and TPOT, "
        "<= 20% for TTFT, p90 <= 30%.",
        "",
        f"{cv.n_rows} unique rows, {len({p.id for p in cv.points})} predicted; "
        f"calibration shipped (fitted on all rows): {calib.fitted_on}. Run time {seconds:.0f} s.",
        "",
        "Reproduce: `PYTHONPATH=src python benchmarks/accuracy.py`",
        "",
        "## Simulated predictor (`hierro validate`), all metrics",
        "",
        "Closed-loop rows are simulated as the benchmark that produced them (N users, 10 N "
        "requests started at once, the row's length distribution); server rows as Poisson "
        "arrivals; offline rows and closed-loop rows without a stated length distribution use "
        "the analytic steady state. Rows served with multi-token prediction (MTP) are simulated "
        "with speculative decoding: their recipe's draft tokens per step, accepted at the rate "
        f"the fit finds on the other folds' MTP rows (all rows: {calib.mtp_acceptance or 0:.2f}). "
        "aiconfigurator rows that copy an InferenceX run of an MTP-only container image count as "
        "MTP rows (`hierro.accuracy.predictor.INFERENCEX_MTP_RUNS`, sourced there).",
        "",
        *_table("metric", {m: s["all"] for m, s in summary.items()}),
        "",
        *(["### Speculative (MTP) rows and the others", "", *_subset_lines(cv, mtp_ids), ""] if mtp_ids else []),
        "## Analytic predictor (`hierro estimate` steady state), all metrics",
        "",
        *_summary_lines(analytic),
        "",
    ]
    for attr in ("hardware", "source_kind", "framework"):
        out += [f"## Simulated predictor by {attr.replace('_', ' ')}", ""]
        for m in HEADLINE:
            if m in summary:
                out += [f"### {m}", "", *_table(attr, summary[m][f"by_{attr}"]), ""]
    bands = calib.error.get("bands", {}).get("simulated", {})
    if bands:
        out += ["## Error bands", "",
                "Every prediction carries a band [value x q10, value x q90], q10 and q90 the 10th and 90th "
                "percentiles of measured / predicted over these cross-validated points (so about 80% of them "
                "fall inside by construction; `hierro estimate` uses the analytic predictor's).", "",
                "| metric | q10 | q90 |", "|---|---:|---:|"]
        out += [f"| {m} | {q[0]:.2f} | {q[1]:.2f} |" for m, q in bands.items()]
        out += [""]
    out += ["## Skipped", "",
            "Reasons that differ only in their numbers share a line, shown by their first example.", "",
            "| reason | count |", "|---|---:|"]
    out += [f"| {r.replace('|', '/')} | {n} |" for r, n in _grouped_reasons(cv.skip_counts()).items()]
    out += ["", "![predicted vs measured](docs/accuracy.png)", ""]
    return "\n".join(out)


def _grouped_reasons(counts: dict[str, int]) -> dict[str, int]:
    """Skip reasons that differ only in their figures (GB short, KV per sequence) as one line,
    keyed by the first example, most frequent first."""
    first: dict[str, str] = {}
    total: dict[str, int] = {}
    for reason, n in counts.items():
        key = re.sub(r"\d+(\.\d+)?", "#", reason)
        first.setdefault(key, reason)
        total[key] = total.get(key, 0) + n
    return {first[k]: n for k, n in sorted(total.items(), key=lambda kv: -kv[1])}


def plot(cv: ValidationResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(HEADLINE), figsize=(4.2 * len(HEADLINE), 4.2))
    for ax, m in zip(axes, HEADLINE, strict=True):
        pts = cv.points_of(m)
        if not pts:
            ax.set_visible(False)
            continue
        xs = [p.measured for p in pts]
        ys = [p.predicted for p in pts]
        ax.loglog(xs, ys, ".", ms=3, alpha=0.5)
        lo, hi = min(xs + ys), max(xs + ys)
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        for f in (0.7, 1.3):
            ax.plot([lo, hi], [lo * f, hi * f], "k:", lw=0.6)
        ax.set_title(f"{m} (n={len(pts)})")
        ax.set_xlabel("measured")
        ax.set_ylabel("predicted (cross-validated)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--out-dir", type=Path, default=ROOT)
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = load_measurements()
    def say(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", flush=True)

    analytic, _ = crossval_report(rows, k=args.k, progress=lambda m: say(f"analytic {m}"))
    cv, calib = crossval_sim_report(rows, k=args.k, progress=lambda m: say(f"simulated {m}"))
    bands = {"simulated": error_bands(cv), "analytic": error_bands(analytic)}
    calib = dataclasses.replace(calib, error={**calib.error, "bands": bands})
    seconds = time.perf_counter() - t0
    out: Path = args.out_dir
    mtp_ids = {r.id for r in rows if is_mtp(r)}
    (out / "ACCURACY.md").write_text(markdown(cv, calib, analytic, args.k, seconds, mtp_ids), encoding="utf-8")
    plot(cv, out / "docs" / "accuracy.png")
    fitted = out / "src" / "hierro" / "perf" / "data" / "efficiency_fitted.yaml"
    fitted.parent.mkdir(parents=True, exist_ok=True)
    fitted.write_text(
        dump_calibration(calib, header="Efficiencies fitted by benchmarks/accuracy.py (hierro.accuracy.simfit); do not edit."),
        encoding="utf-8",
    )
    for m, s in cv.summary().items():
        o = s.overall
        print(f"{m:20s} n={o.n:5d} median APE {100 * o.median_ape:5.1f}%  p90 {100 * o.p90_ape:6.1f}%  "
              f"bias {100 * o.median_signed:+6.1f}%")
    print(f"wrote {out / 'ACCURACY.md'}, {out / 'docs' / 'accuracy.png'}, {fitted}")
    print(f"total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
