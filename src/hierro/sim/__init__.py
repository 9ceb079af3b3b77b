"""Sim layer: a discrete-event simulator of LLM serving.

Workloads (arrival processes, length distributions, trace replay) go through a router to
replicas that batch continuously over a paged KV pool; each engine step is priced by the perf
layer's step-time model (the simulator never sees FLOPs). Decode advances in closed form between
scheduling events, so a run costs O(requests), not O(decode iterations).

    >>> from hierro.perf import StepModel
    >>> from hierro.sim import Fixed, simulate, synthetic
    >>> wl = synthetic(1000, Fixed(2048), Fixed(512), np.random.default_rng(0), rate=2.0)
    >>> res = simulate(StepModel(model, accel, plan), wl)       # doctest: +SKIP
    >>> res.ttft.p99, res.tpot.p50, res.out_tok_s                # doctest: +SKIP
"""

from hierro.sim.cluster import (
    DEFAULT_SWAP_SPACE_BYTES,
    PREEMPTION,
    ROUTERS,
    Progress,
    SpecDecode,
    host_link_Bps,
    kv_block_bytes,
    kv_pool_blocks,
    simulate,
    simulate_disagg,
)
from hierro.sim.engine import Engine, Event, SimError
from hierro.sim.metrics import (
    RECORD_DTYPE,
    Distribution,
    KvSeries,
    LogHist,
    SimResult,
    Slo,
    SteadyState,
    closed_loop_steady,
    e2e_s,
    itl_mean_s,
    parquet_available,
    queue_s,
    to_csv,
    to_parquet,
    tpot_s,
    ttft_s,
)
from hierro.sim.steptime import DecodeTable, StepTime, expected_accepted
from hierro.sim.workload import (
    TRACES,
    Empirical,
    Fixed,
    LengthDist,
    LogNormal,
    Request,
    UniformRatio,
    Workload,
    constant_arrivals,
    diurnal_rate,
    gamma_arrivals,
    load_trace,
    poisson_arrivals,
    synthetic,
    varying_rate_arrivals,
)

__all__ = [
    "DEFAULT_SWAP_SPACE_BYTES",
    "PREEMPTION",
    "RECORD_DTYPE",
    "ROUTERS",
    "TRACES",
    "DecodeTable",
    "Distribution",
    "Empirical",
    "Engine",
    "Event",
    "Fixed",
    "KvSeries",
    "LengthDist",
    "LogHist",
    "LogNormal",
    "Progress",
    "Request",
    "SimError",
    "SimResult",
    "Slo",
    "SpecDecode",
    "SteadyState",
    "StepTime",
    "UniformRatio",
    "Workload",
    "closed_loop_steady",
    "constant_arrivals",
    "diurnal_rate",
    "e2e_s",
    "expected_accepted",
    "gamma_arrivals",
    "host_link_Bps",
    "itl_mean_s",
    "kv_block_bytes",
    "kv_pool_blocks",
    "load_trace",
    "parquet_available",
    "poisson_arrivals",
    "queue_s",
    "simulate",
    "simulate_disagg",
    "synthetic",
    "to_csv",
    "to_parquet",
    "tpot_s",
    "ttft_s",
    "varying_rate_arrivals",
]
