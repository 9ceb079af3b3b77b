"""Per-request records and the frozen summary of a run.

Definitions (per request, seconds):

- TTFT = first token time - arrival (includes queueing and the whole prefill).
- TPOT = (end-to-end latency - TTFT) / (output tokens - 1), as MLPerf Inference defines it
  (its LLM rules, "time per output token"); undefined (nan) for one-token outputs.
- end-to-end latency = finish time - arrival.
- queueing delay = first scheduled - arrival (until the request's first chunk is admitted).
- goodput = requests per second that meet the SLO on TTFT and TPOT (Zhong et al., DistServe,
  OSDI 2024).

Percentiles use numpy's default linear interpolation.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hierro.sim.engine import SimError

__all__ = [
    "RECORD_DTYPE",
    "Distribution",
    "SimResult",
    "Slo",
    "e2e_s",
    "queue_s",
    "summarize",
    "to_csv",
    "to_parquet",
    "tpot_s",
    "ttft_s",
]

RECORD_DTYPE = np.dtype([
    ("id", np.int64),
    ("replica", np.int32),
    ("arrival_s", np.float64),
    ("prompt_tokens", np.int64),
    ("output_tokens", np.int64),
    ("cached_tokens", np.int64),
    ("preemptions", np.int32),
    ("first_scheduled_s", np.float64),
    ("first_token_s", np.float64),
    ("finish_s", np.float64),
])
"""One row per request; times are absolute simulated seconds (nan if it never finished)."""

Records = NDArray[np.void]
F64 = NDArray[np.float64]


def ttft_s(r: Records) -> F64:
    return np.asarray(r["first_token_s"] - r["arrival_s"], dtype=np.float64)


def e2e_s(r: Records) -> F64:
    return np.asarray(r["finish_s"] - r["arrival_s"], dtype=np.float64)


def queue_s(r: Records) -> F64:
    return np.asarray(r["first_scheduled_s"] - r["arrival_s"], dtype=np.float64)


def tpot_s(r: Records) -> F64:
    """MLPerf TPOT: (latency - TTFT) / (output tokens - 1); nan for single-token outputs."""
    gen = r["output_tokens"].astype(np.float64) - 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(gen > 0, (r["finish_s"] - r["first_token_s"]) / np.where(gen > 0, gen, 1.0), np.nan)


@dataclass(frozen=True, slots=True)
class Distribution:
    """Summary of a latency sample in seconds."""

    mean: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float

    @classmethod
    def of(cls, x: F64) -> Distribution:
        x = x[np.isfinite(x)]
        if len(x) == 0:
            nan = float("nan")
            return cls(nan, nan, nan, nan, nan, nan)
        p = np.percentile(x, [50.0, 90.0, 99.0, 99.9])
        return cls(float(np.mean(x)), float(p[0]), float(p[1]), float(p[2]), float(p[3]), float(np.max(x)))


@dataclass(frozen=True, slots=True)
class Slo:
    """A latency objective per request: TTFT and TPOT ceilings in seconds."""

    ttft_s: float = float("inf")
    tpot_s: float = float("inf")


@dataclass(frozen=True, slots=True)
class SimResult:
    """What a simulation run measured. ``records`` holds every request (warm-up included);
    the distributions and rates cover the measured requests only."""

    n_requests: int
    n_measured: int
    duration_s: float
    """Measurement window: first measured arrival to last measured finish."""
    ttft: Distribution
    tpot: Distribution
    e2e: Distribution
    queue: Distribution
    req_s: float
    out_tok_s: float
    in_tok_s: float
    goodput_req_s: float
    slo: Slo | None
    preemptions: int
    kv_peak_fraction: float
    """Highest share of the KV pool in use on any replica."""
    busy_fraction: float
    """Mean share of the run each replica spent stepping."""
    steps: int
    """Engine iterations simulated (all replicas)."""
    events: int
    """Events the kernel processed: the cost of the run."""
    replicas: int
    kv_blocks: int
    """KV blocks per replica."""
    records: Records = field(repr=False, compare=False)

    @property
    def out_tok_s_per_replica(self) -> float:
        return self.out_tok_s / self.replicas


def summarize(
    records: Records,
    *,
    warmup: int,
    slo: Slo | None,
    preemptions: int,
    kv_peak_fraction: float,
    busy_s: float,
    steps: int,
    events: int,
    replicas: int,
    kv_blocks: int,
) -> SimResult:
    """Build the frozen result; requests with ``id < warmup`` are left out of the statistics."""
    if np.any(~np.isfinite(records["finish_s"])):
        raise SimError("some requests never finished")
    m = records[records["id"] >= warmup]
    if len(m) == 0:
        raise SimError(f"warm-up of {warmup} requests leaves nothing to measure of {len(records)}")
    t0 = float(np.min(m["arrival_s"]))
    t1 = float(np.max(m["finish_s"]))
    dur = max(t1 - t0, 1e-12)
    ttft, tpot = ttft_s(m), tpot_s(m)
    good = len(m)
    if slo is not None:
        good = int(np.sum((ttft <= slo.ttft_s) & ~(tpot > slo.tpot_s)))
    end = float(np.max(records["finish_s"]))
    return SimResult(
        n_requests=len(records),
        n_measured=len(m),
        duration_s=dur,
        ttft=Distribution.of(ttft),
        tpot=Distribution.of(tpot),
        e2e=Distribution.of(e2e_s(m)),
        queue=Distribution.of(queue_s(m)),
        req_s=len(m) / dur,
        out_tok_s=float(np.sum(m["output_tokens"])) / dur,
        in_tok_s=float(np.sum(m["prompt_tokens"])) / dur,
        goodput_req_s=good / dur,
        slo=slo,
        preemptions=preemptions,
        kv_peak_fraction=kv_peak_fraction,
        busy_fraction=busy_s / (replicas * end) if end > 0 else 0.0,
        steps=steps,
        events=events,
        replicas=replicas,
        kv_blocks=kv_blocks,
        records=records,
    )


def to_csv(records: Records, path: str | Path) -> None:
    """Write the per-request records as CSV (one header row, one row per request)."""
    names = list(RECORD_DTYPE.names or ())
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(names)
        cols = [records[n].tolist() for n in names]
        w.writerows(zip(*cols, strict=True))


def to_parquet(records: Records, path: str | Path) -> None:
    """Write the per-request records as Parquet (needs the optional ``pyarrow`` package)."""
    try:
        import pyarrow as pa  # type: ignore[import-not-found, unused-ignore]
        import pyarrow.parquet as pq  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise SimError("Parquet output needs pyarrow: pip install pyarrow (or write CSV)") from None
    names = list(RECORD_DTYPE.names or ())
    table = pa.table({n: records[n] for n in names})
    pq.write_table(table, str(path))
