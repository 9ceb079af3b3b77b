"""Per-request records and the frozen summary of a run.

Definitions (per request, seconds):

- TTFT = first token time - arrival (includes queueing and the whole prefill).
- TPOT = (end-to-end latency - TTFT) / (output tokens - 1), as MLPerf Inference defines it
  (its LLM rules, "time per output token"); undefined (nan) for one-token outputs.
- end-to-end latency = finish time - arrival.
- queueing delay = first scheduled - arrival (until the request's first chunk is admitted).
- goodput = requests per second that meet the SLO on TTFT and TPOT (Zhong et al., DistServe,
  OSDI 2024).
- ITL (inter-token latency) = the gap between two consecutive token emissions of a request: the
  duration of each engine step that gives it tokens (a speculative step emits several tokens at
  once, one gap); a preemption adds the stall from its last token to the next. Per request the
  records keep the number of gaps and the largest; the mean gap is (finish - first token) / gaps.
  The run's ITL distribution weighs every step by the sequences it emitted for: a histogram of
  log-spaced bins (:class:`LogHist`, 1% wide), so percentiles are exact to a bin.

Percentiles use numpy's default linear interpolation.
"""

from __future__ import annotations

import csv
import importlib.util
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hierro.sim.engine import SimError

__all__ = [
    "RECORD_DTYPE",
    "Distribution",
    "KvSeries",
    "LogHist",
    "SeriesBuilder",
    "SimResult",
    "Slo",
    "SteadyState",
    "closed_loop_steady",
    "e2e_s",
    "itl_mean_s",
    "parquet_available",
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
    ("token_gaps", np.int64),
    ("itl_max_s", np.float64),
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


def itl_mean_s(r: Records) -> F64:
    """Mean gap between consecutive token emissions; nan for requests with one emission."""
    gaps = r["token_gaps"].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(gaps > 0, (r["finish_s"] - r["first_token_s"]) / np.where(gaps > 0, gaps, 1.0), np.nan)


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


_FLUSH = 1 << 16
"""Buffered values per numpy binning pass of :class:`LogHist`."""


class LogHist:
    """A weighted histogram of positive durations in log-spaced bins (``per_decade`` bins per
    factor of ten from ``lo`` seconds, 1% wide by default).

    Values are buffered in plain lists (an append per step) and binned with numpy every 65,536
    of them, so memory stays O(bins). ``add_range`` spreads a weight evenly over [lo, hi]: the k
    steps of a closed-form decode segment last α + β·i, i < k, evenly spaced between α and
    α + β(k-1); it is binned as four equal parts at the octile midpoints."""

    __slots__ = ("_inv", "_sh", "_sl", "_st", "_sw", "_v", "_w", "count", "lo", "max", "total", "w")

    FLUSH = _FLUSH

    def __init__(self, lo: float = 1e-6, decades: int = 10, per_decade: int = 230) -> None:
        self.lo = lo
        self._inv = per_decade / math.log(10.0)
        self.w = np.zeros(decades * per_decade + 1)
        self.total = 0.0
        """Σ weight·value: the exact mean is total / count."""
        self.count = 0.0
        self.max = 0.0
        self._v: list[float] = []
        self._w: list[float] = []
        self._sl: list[float] = []
        self._sh: list[float] = []
        self._sw: list[float] = []
        self._st: list[float] = []

    def add(self, v: float, weight: float) -> None:
        vs = self._v
        vs.append(v)
        self._w.append(weight)
        if len(vs) >= _FLUSH:
            self.flush()

    def add_range(self, lo: float, hi: float, weight: float, total: float) -> None:
        """``weight`` values spread evenly over [lo, hi] whose weighted sum is ``total``."""
        sl = self._sl
        sl.append(lo)
        self._sh.append(hi)
        self._sw.append(weight)
        self._st.append(total)
        if len(sl) >= _FLUSH:
            self.flush()

    def _bins(self, v: F64) -> NDArray[np.int64]:
        with np.errstate(divide="ignore"):
            i = np.floor(np.log(np.maximum(v, self.lo) / self.lo) * self._inv).astype(np.int64) + 1
        i[v <= self.lo] = 0
        return np.minimum(i, len(self.w) - 1)

    def _add_bins(self, v: F64, w: F64) -> None:
        """Add weights ``w`` to the bins of values ``v`` (``np.add.at``, through one bincount:
        the weights here are whole emissions or quarters of them, so the sums are exact in
        either order)."""
        self.w += np.bincount(self._bins(v), weights=w, minlength=len(self.w))

    def flush(self) -> None:
        if self._v:
            v, w = np.asarray(self._v), np.asarray(self._w)
            self._add_bins(v, w)
            # Σ value·weight as numpy's pairwise sum of the products, not ``v @ w``: OpenBLAS
            # runs a dot of 65,536 values on all its threads, whose workers then spin idle for
            # a while after every flush (about 0.3 s of CPU per 100,000 requests), and its last
            # bits depend on the thread count
            self.total += float(np.sum(v * w))
            self.count += float(w.sum())
            self.max = max(self.max, float(v.max()))
            self._v, self._w = [], []
        if self._sl:
            lo, hi, w = np.asarray(self._sl), np.asarray(self._sh), np.asarray(self._sw)
            for f in (0.125, 0.375, 0.625, 0.875):
                self._add_bins(lo + f * (hi - lo), 0.25 * w)
            self.total += float(np.sum(self._st))
            self.count += float(w.sum())
            self.max = max(self.max, float(hi.max()))
            self._sl, self._sh, self._sw, self._st = [], [], [], []

    def merge(self, other: LogHist) -> None:
        self.flush()
        other.flush()
        self.w += other.w
        self.total += other.total
        self.count += other.count
        self.max = max(self.max, other.max)

    def distribution(self) -> Distribution:
        """Mean (exact), percentiles (geometric centre of the bin that holds them), max."""
        self.flush()
        if self.count <= 0:
            nan = float("nan")
            return Distribution(nan, nan, nan, nan, nan, nan)
        cum = np.cumsum(self.w)
        out = []
        for q in (0.5, 0.9, 0.99, 0.999):
            i = int(np.searchsorted(cum, q * cum[-1]))
            v = self.lo * math.exp((i - 0.5) / self._inv) if i else self.lo
            out.append(min(v, self.max))
        return Distribution(self.total / self.count, out[0], out[1], out[2], out[3], self.max)


@dataclass(frozen=True, slots=True, eq=False)
class KvSeries:
    """Coarse time series of a run, in ``len(t_s)`` equal bins of ``bin_s`` seconds.

    Each bin holds the KV-pool utilisation sampled at every replica step boundary inside it
    (mean and max over replicas and samples), the preemptions in it, and the mean queue length
    per replica sampled the same way."""

    bin_s: float
    t_s: F64
    kv_mean: F64
    kv_max: F64
    preemptions: NDArray[np.int64]
    waiting_mean: F64


class SeriesBuilder:
    """Fixed-size sampler behind :class:`KvSeries`: ``bins`` bins whose width doubles (pairs
    merge) whenever a sample lands past the last, so memory stays O(bins) for any run length.
    Replicas sample at step boundaries at most every ``width / 8`` seconds (see ``due``), so a
    bin's mean is close to a time average."""

    __slots__ = ("bins", "kv_max", "kv_sum", "n", "pre", "wait", "width")

    def __init__(self, bins: int = 256, width_s: float = 0.25) -> None:
        self.bins = bins
        self.width = width_s
        self.kv_sum = [0.0] * bins
        self.kv_max = [0.0] * bins
        self.n = [0] * bins
        self.pre = [0] * bins
        self.wait = [0] * bins

    def _slot(self, t: float) -> int:
        b = int(t / self.width)
        while b >= self.bins:
            self._coarsen()
            b = int(t / self.width)
        return b

    def _coarsen(self) -> None:
        h = self.bins // 2
        for name in ("kv_sum", "n", "pre", "wait"):
            v = getattr(self, name)
            setattr(self, name, [v[2 * i] + v[2 * i + 1] for i in range(h)] + [0] * (self.bins - h))
        m = self.kv_max
        self.kv_max = [max(m[2 * i], m[2 * i + 1]) for i in range(h)] + [0.0] * (self.bins - h)
        self.width *= 2.0

    def due(self, t: float) -> float:
        """Time of a replica's next sample after one at ``t``."""
        return t + self.width * 0.125

    def sample(self, t: float, kv: float, waiting: int) -> float:
        """Record a sample at ``t``; returns when this replica's next one is due (``due(t)``)."""
        b = int(t / self.width)
        if b >= self.bins:
            b = self._slot(t)
        self.kv_sum[b] += kv
        self.n[b] += 1
        self.wait[b] += waiting
        if kv > self.kv_max[b]:
            self.kv_max[b] = kv
        return t + self.width * 0.125

    def preempt(self, t: float) -> None:
        b = self._slot(t)  # first: _slot may coarsen and replace the lists
        self.pre[b] += 1

    def build(self, end_s: float) -> KvSeries:
        used = max(1, min(self.bins, int(end_s / self.width) + 1))
        n = np.asarray(self.n[:used], dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            kv = np.where(n > 0, np.asarray(self.kv_sum[:used]) / np.maximum(n, 1.0), np.nan)
            wait = np.where(n > 0, np.asarray(self.wait[:used], dtype=np.float64) / np.maximum(n, 1.0), np.nan)
        return KvSeries(
            bin_s=self.width, t_s=np.arange(used, dtype=np.float64) * self.width, kv_mean=kv,
            kv_max=np.asarray(self.kv_max[:used]), preemptions=np.asarray(self.pre[:used], dtype=np.int64),
            waiting_mean=wait,
        )


@dataclass(frozen=True, slots=True)
class Slo:
    """A latency objective per request: TTFT and TPOT ceilings in seconds."""

    ttft_s: float = float("inf")
    tpot_s: float = float("inf")


@dataclass(frozen=True, slots=True)
class SteadyState:
    """A closed loop of ``users`` measured over whole cycles (SI units).

    With zero think time every user has exactly one request in the system, so by Little's law
    the throughput is users / mean end-to-end latency; taken over whole cycles (each user's
    requests counted alike) it is the steady state's, free of the start and of the drain at the
    end, where fewer users remain."""

    users: int
    cycles: int
    """Cycles measured (each of ``users`` requests)."""
    req_s: float
    out_tok_s: float
    ttft_s: float
    """Means over the measured requests."""
    tpot_s: float
    e2e_s: float


def closed_loop_steady(records: Records, users: int, *, skip_cycles: int = 2) -> SteadyState | None:
    """The steady state of a closed loop from its records, or None if the run is too short.

    Request ids are issued in cycles of ``users``: cycle k is ids [k·users, (k+1)·users) (a
    user sends its next request when its last one finishes). The first ``skip_cycles`` cycles
    (start-up) and the last (the drain: users stop as the requests run out) are left out."""
    if users < 1 or skip_cycles < 0:
        raise SimError(f"need users >= 1 and skip_cycles >= 0, got {users}, {skip_cycles}")
    cycles = len(records) // users - 1 - skip_cycles
    if cycles < 1:
        return None
    ids = records["id"]
    m = records[(ids >= skip_cycles * users) & (ids < (skip_cycles + cycles) * users)]
    e2e = float(np.mean(e2e_s(m)))
    x = users / e2e
    return SteadyState(
        users=users, cycles=cycles, req_s=x, out_tok_s=x * float(np.mean(m["output_tokens"])),
        ttft_s=float(np.mean(ttft_s(m))), tpot_s=float(np.nanmean(tpot_s(m))), e2e_s=e2e,
    )


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
    itl: Distribution | None = None
    """Gaps between consecutive token emissions, over every emission of the run (warm-up
    included), from a 1%-bin histogram."""
    series: KvSeries | None = field(default=None, repr=False, compare=False)
    """KV utilisation, queue length and preemptions over time."""
    mode: str = "aggregated"
    """``aggregated`` (prefill and decode share replicas) or ``disaggregated``."""
    swap_outs: int = 0
    """Preemptions that swapped the victim's KV to host memory (the rest recomputed)."""
    host_peak_fraction: float = 0.0
    """Highest share of the host swap space in use on any replica (0 without swap)."""
    steady: SteadyState | None = None
    """A closed loop's steady state over whole cycles (None for an open loop or a run of too
    few cycles); the rates above are over the whole run, start and drain included, as a
    serving benchmark reports them."""

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
    swap_outs: int = 0,
    host_peak_fraction: float = 0.0,
    steps: int,
    events: int,
    replicas: int,
    kv_blocks: int,
    itl: Distribution | None = None,
    series: KvSeries | None = None,
    mode: str = "aggregated",
    users: int | None = None,
) -> SimResult:
    """Build the frozen result; requests with ``id < warmup`` are left out of the statistics.
    ``users``: a closed loop's concurrency (its steady state skips max(2, ⌈warmup/users⌉)
    cycles)."""
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
        swap_outs=swap_outs,
        host_peak_fraction=host_peak_fraction,
        kv_peak_fraction=kv_peak_fraction,
        busy_fraction=busy_s / (replicas * end) if end > 0 else 0.0,
        steps=steps,
        events=events,
        replicas=replicas,
        kv_blocks=kv_blocks,
        records=records,
        itl=itl,
        series=series,
        mode=mode,
        steady=None if users is None else closed_loop_steady(
            records, users, skip_cycles=max(2, -(-warmup // users))),
    )


def to_csv(records: Records, path: str | Path) -> None:
    """Write the per-request records as CSV (one header row, one row per request)."""
    names = list(RECORD_DTYPE.names or ())
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(names)
        cols = [records[n].tolist() for n in names]
        w.writerows(zip(*cols, strict=True))


PARQUET_MISSING = "Parquet output needs pyarrow: pip install 'hierro[parquet]' (or write .csv)"


def parquet_available() -> bool:
    """Whether :func:`to_parquet` can write (pyarrow is installed)."""
    return importlib.util.find_spec("pyarrow") is not None


def to_parquet(records: Records, path: str | Path) -> None:
    """Write the per-request records as Parquet (needs pyarrow: the ``hierro[parquet]`` extra)."""
    try:
        import pyarrow as pa  # type: ignore[import-not-found, unused-ignore]
        import pyarrow.parquet as pq  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise SimError(PARQUET_MISSING) from None
    names = list(RECORD_DTYPE.names or ())
    table = pa.table({n: records[n] for n in names})
    pq.write_table(table, str(path))
