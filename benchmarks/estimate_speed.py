"""Speed of the analytic estimate: estimates per second over 10,000 configurations.

Two paths: the vectorised one (``estimate_arrays``: one call evaluates every (ISL, OSL,
concurrency) case of a model x GPU x plan at once), which sweeps and the search use, and the
scalar ``estimate`` call that builds the full result object with its op breakdown.
Target (issue 2): 10,000 configurations in under one second on one core.

    python benchmarks/estimate_speed.py
"""

from __future__ import annotations

import itertools
import time

import numpy as np

from hierro.perf import StepModel, estimate, estimate_arrays
from hierro.specs import Plan, get_accelerator, get_model, memory_breakdown

CASES = [
    ("llama-3.1-8b", "h100-sxm", Plan(tp=1, weight_dtype="fp8", kv_dtype="fp8")),
    ("llama-3.1-70b", "h100-sxm", Plan(tp=4, weight_dtype="fp8", kv_dtype="fp8")),
    ("llama-3.1-70b", "mi300x", Plan(tp=2, weight_dtype="fp8", kv_dtype="fp8")),
    ("deepseek-r1", "h200-sxm", Plan(tp=8, ep=8, dp_attention=True, weight_dtype="fp8", kv_dtype="fp8")),
    ("gpt-oss-120b", "b200", Plan(tp=1, weight_dtype="fp4", kv_dtype="fp8")),
]


def vectorised(n_total: int) -> tuple[int, float]:
    per_case = n_total // len(CASES)
    isl_opts = [128, 512, 1024, 2048, 4096, 8192]
    osl_opts = [128, 256, 512, 1024, 2048]
    conc_opts = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    grid = list(itertools.product(isl_opts, osl_opts, conc_opts))
    done = 0
    t0 = time.perf_counter()
    for model, gpu, plan in CASES:
        sm = StepModel(get_model(model), get_accelerator(gpu), plan)
        reps = -(-per_case // len(grid))
        g = np.array(grid * reps, dtype=float)[:per_case]
        cap = np.array([memory_breakdown(sm.model, sm.accel, plan, context=c).max_seqs
                        for c in {int(a + b) for a, b, _ in grid}])
        res = estimate_arrays(sm, g[:, 0], g[:, 1], g[:, 2], max_seqs=float(cap.min()))
        assert np.all(res.tpot_s > 0)
        done += len(g)
    return done, time.perf_counter() - t0


def scalar(n: int) -> tuple[int, float]:
    model, gpu, plan = CASES[1]
    sm = StepModel(get_model(model), get_accelerator(gpu), plan)
    t0 = time.perf_counter()
    for i in range(n):
        estimate(sm, isl=1024, osl=1024, concurrency=1 + i % 256)
    return n, time.perf_counter() - t0


def main() -> None:
    # warm the catalog caches so the figures measure the model, not YAML parsing
    for model, gpu, _ in CASES:
        get_model(model), get_accelerator(gpu)
    n, dt = vectorised(10_000)
    print(f"vectorised estimate_arrays: {n:,} configurations in {dt:.3f} s = {n / dt:,.0f} estimates/s "
          f"(target: 10,000 in < 1 s)")
    n, dt = scalar(200)
    print(f"scalar estimate() with op breakdown: {n} in {dt:.3f} s = {n / dt:,.0f} estimates/s")


if __name__ == "__main__":
    main()
