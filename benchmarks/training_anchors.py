"""The training planner against the published runs it is checked on, and its speed.

For each anchor of :mod:`hierro.training.anchors`: what was published, what the planner predicts
at the published layout (the rest searched), the error against the anchor's stated tolerance,
the role (the one fit, or a check), and the time one plan takes. Then the two fitted numbers,
refitted from scratch: the shared compute efficiency (on Llama 3 405B, 8k GPUs) and the
block-scaled FP8 rate (on the Megatron-Bridge DeepSeek-V3 pair).

    PYTHONPATH=src python benchmarks/training_anchors.py
"""

from __future__ import annotations

import time

from hierro.training.anchors import (
    ANCHORS,
    fit_compute_efficiency,
    fit_fp8_block_efficiency,
    predict_anchor,
)

UNITS = {"mfu": "MFU", "gpu_hours": "GPU-hours", "tokens_per_s_per_gpu": "tokens/s/GPU"}


def _fmt(metric: str, x: float) -> str:
    if metric == "mfu":
        return f"{100 * x:.1f}%"
    if metric == "gpu_hours":
        return f"{x / 1e6:.3f}M"
    return f"{x:,.0f}"


def main() -> None:
    print("| anchor | role | metric | published | predicted | error | tolerance | plan time |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for a in ANCHORS:
        t0 = time.perf_counter()
        got = predict_anchor(a)
        dt = time.perf_counter() - t0
        err = got / a.published - 1
        ok = "" if abs(err) <= a.rel_tol else " (outside)"
        print(f"| {a.name} | {a.role} | {UNITS[a.metric]} | {_fmt(a.metric, a.published)} | "
              f"{_fmt(a.metric, got)} | {100 * err:+.1f}%{ok} | ±{100 * a.rel_tol:.0f}% | {dt:.2f} s |")
    t0 = time.perf_counter()
    c = fit_compute_efficiency()
    b = fit_fp8_block_efficiency()
    print(f"\nrefitted: compute efficiency {c:.4f}, block-scaled FP8 rate {b:.4f} "
          f"({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
