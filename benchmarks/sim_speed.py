"""Speed of the serving simulator: simulated requests per second of wall time.

Each run also prints its CPU time (``time.process_time``): on a shared machine wall time
includes the time other processes hold the core, CPU time does not.

Two runs (issue 4's targets, one core):

1. 10,000 requests, Poisson arrivals, 2048 input / 512 output tokens, Llama-3.1-70B TP8 on
   H100-SXM: target under 1 s. Vidur (microsoft/vidur) takes about 35 s for the same run on
   this machine class, about 300 simulated requests per second.
2. 1,000,000 requests of the Azure LLM inference 2023 conversation trace, replayed back to back
   with timestamps rescaled so a fleet of replicas runs near 80% of its saturated throughput:
   target under 30 s and under 2 GB.

    python benchmarks/sim_speed.py [--requests 1000000] [--replicas 64]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from hierro.perf import StepModel
from hierro.sim import Fixed, Workload, load_trace, simulate, synthetic
from hierro.specs import Plan, get_accelerator, get_model

VIDUR_REQ_PER_S = 10_000 / 35.0


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux: KiB


def bench_poisson(sm: StepModel, n: int, rate: float) -> None:
    wl = synthetic(n, Fixed(2048), Fixed(512), np.random.default_rng(0), rate=rate)
    t0, c0 = time.perf_counter(), time.process_time()
    res = simulate(sm, wl)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"[1] {n:,} requests Poisson {rate:g}/s 2048/512, {sm.model.id} {sm.plan.label()} {sm.accel.id}")
    print(f"    wall {wall:.3f} s = {n / wall:,.0f} simulated req/s (Vidur ~{VIDUR_REQ_PER_S:,.0f} req/s: "
          f"{n / wall / VIDUR_REQ_PER_S:,.0f}x); CPU {cpu:.3f} s; {res.steps:,} engine steps in "
          f"{res.events:,} events")
    print(f"    TTFT p50 {res.ttft.p50 * 1e3:.0f} ms p99 {res.ttft.p99 * 1e3:.0f} ms; TPOT p50 "
          f"{res.tpot.p50 * 1e3:.1f} ms; {res.out_tok_s:,.0f} output tok/s; busy {res.busy_fraction:.0%}")


def replica_capacity(sm: StepModel, trace: Workload) -> float:
    """Saturated requests/s of one replica on the trace's lengths (closed loop, 512 users)."""
    head = trace.head(4000)
    closed = Workload(head.prompt_tokens, head.output_tokens, concurrency=512, name="capacity")
    return simulate(sm, closed, warmup=1000).req_s


def bench_trace(sm: StepModel, n: int, replicas: int, load: float) -> None:
    trace = load_trace("azure-conv")
    cap = replica_capacity(sm, trace)
    rate = load * cap * replicas
    t0 = time.perf_counter()
    wl = trace.repeated(n).with_rate(rate)
    t1, c1 = time.perf_counter(), time.process_time()
    res = simulate(sm, wl, replicas=replicas, router="least_outstanding")
    wall, cpu = time.perf_counter() - t1, time.process_time() - c1
    print(f"[2] {n:,} requests of azure-conv at {rate:,.0f}/s on {replicas} replicas "
          f"({load:.0%} of {cap:.2f} req/s each), {res.duration_s:,.0f} s simulated")
    print(f"    wall {wall:.2f} s (+{t1 - t0:.2f} s to build the workload) = {n / wall:,.0f} simulated "
          f"req/s; CPU {cpu:.2f} s; {res.steps:,} engine steps in {res.events:,} events; peak RSS "
          f"{peak_rss_gb():.2f} GB")
    print(f"    TTFT p50 {res.ttft.p50 * 1e3:.0f} ms p99 {res.ttft.p99 * 1e3:.0f} ms; TPOT p50 "
          f"{res.tpot.p50 * 1e3:.1f} ms p99 {res.tpot.p99 * 1e3:.1f} ms; busy {res.busy_fraction:.0%}; "
          f"preemptions {res.preemptions}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--replicas", type=int, default=64)
    ap.add_argument("--load", type=float, default=0.8)
    ap.add_argument("--rate", type=float, default=4.0, help="Poisson rate of run 1 (req/s)")
    args = ap.parse_args()
    sm = StepModel(get_model("llama-3.1-70b"), get_accelerator("h100-sxm"), Plan(tp=8))
    bench_poisson(sm, 10_000, args.rate)
    bench_trace(sm, args.requests, args.replicas, args.load)


if __name__ == "__main__":
    main()
