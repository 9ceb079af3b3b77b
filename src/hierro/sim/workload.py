"""Workloads: who sends which request when.

A :class:`Workload` is columns (numpy arrays) rather than a million objects: arrival times (or,
for a closed loop, the number of users), prompt and output lengths, and optional prefix-block
hash ids in CSR form. Arrival processes and length distributions are small functions and
dataclasses that take an explicit ``numpy.random.Generator``.

Arrival processes:

- Poisson: exponential gaps of mean 1/rate.
- Gamma: gaps Gamma(k = 1/cv², θ = 1/(rate·k)), mean 1/rate and coefficient of variation cv
  (cv > 1 is burstier than Poisson; the "burstiness factor" of vLLM's ``benchmark_serving``).
- Constant rate: gaps exactly 1/rate.
- Time-varying rate: a non-homogeneous Poisson process sampled by thinning (Lewis and Shedler,
  Naval Research Logistics Quarterly 26(3), 1979): candidates at rate λ_max, each kept with
  probability λ(t)/λ_max. :func:`diurnal_rate` gives λ(t) = mean·(1 + a·sin(2πt/period)).
- Closed loop of N users with zero think time (vLLM ``--max-concurrency``, InferenceMAX): each
  sends its next request when its last one finishes. By default all N start at t = 0, as a
  serving benchmark does; with a start-up ramp of R seconds user i starts at i·R/N. At fixed
  lengths a loop started as one cohort stays in cohorts (nothing in a deterministic loop mixes
  the phases of the users, and a long prefill step gathers the arrivals that come during it);
  a ramp of about one request's latency starts it in the stationary state, with the users
  spread across the phases of a request, which is the state :func:`hierro.perf.estimate`
  describes.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hierro.sim.engine import SimError

__all__ = [
    "TRACES",
    "Empirical",
    "Fixed",
    "LengthDist",
    "LogNormal",
    "Request",
    "UniformRatio",
    "Workload",
    "constant_arrivals",
    "diurnal_rate",
    "gamma_arrivals",
    "load_trace",
    "poisson_arrivals",
    "synthetic",
    "varying_rate_arrivals",
]

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]

MOONCAKE_BLOCK_TOKENS = 512
"""Tokens per ``hash_ids`` entry in the Mooncake FAST'25 traces (their README)."""

TRACES: dict[str, str] = {
    "azure-code": "AzureLLMInferenceTrace_code.csv",
    "azure-conv": "AzureLLMInferenceTrace_conv.csv",
    "mooncake-conv": "mooncake_conversation_trace.jsonl",
    "mooncake-synthetic": "mooncake_synthetic_trace.jsonl",
}
"""Traces shipped as package data (see ``sim/data/README.md`` for sources and licences)."""


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the workload defines it (``arrival_s`` is nan in a closed loop)."""

    id: int
    arrival_s: float
    prompt_tokens: int
    output_tokens: int
    hash_ids: tuple[int, ...] = ()


# --- length distributions ------------------------------------------------------------------


class LengthDist(Protocol):
    """A distribution of token counts: ``sample(n, rng)`` gives n integers >= 1."""

    def sample(self, n: int, rng: np.random.Generator) -> I64: ...


@dataclass(frozen=True, slots=True)
class Fixed:
    """Every request has ``tokens`` tokens."""

    tokens: int

    def sample(self, n: int, rng: np.random.Generator) -> I64:
        _positive_int(self.tokens, "fixed length")
        return np.full(n, self.tokens, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class UniformRatio:
    """Uniform integers in [ratio·tokens, tokens]: InferenceMAX's ``random-range-ratio`` (and
    vLLM ``benchmark_serving --random-range-ratio`` before it took a symmetric range)."""

    tokens: int
    ratio: float

    def sample(self, n: int, rng: np.random.Generator) -> I64:
        _positive_int(self.tokens, "length")
        if not 0.0 <= self.ratio <= 1.0:
            raise SimError(f"range ratio must lie in [0, 1], got {self.ratio}")
        lo = max(1, math.floor(self.ratio * self.tokens))
        return rng.integers(lo, self.tokens + 1, size=n, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class LogNormal:
    """Lognormal lengths with the given median and log-space sigma, clipped to [1, max_tokens]."""

    median: float
    sigma: float
    max_tokens: int = 1 << 20

    def sample(self, n: int, rng: np.random.Generator) -> I64:
        if not (self.median > 0 and self.sigma >= 0):
            raise SimError(f"lognormal needs median > 0 and sigma >= 0, got {self.median}, {self.sigma}")
        x = rng.lognormal(math.log(self.median), self.sigma, size=n)
        return np.clip(np.rint(x), 1, self.max_tokens).astype(np.int64)


@dataclass(frozen=True, slots=True)
class Empirical:
    """Lengths drawn with replacement from observed values (e.g. a trace column)."""

    values: tuple[int, ...]

    @classmethod
    def from_array(cls, values: ArrayLike) -> Empirical:
        return cls(tuple(int(v) for v in np.asarray(values).ravel()))

    def sample(self, n: int, rng: np.random.Generator) -> I64:
        if not self.values or min(self.values) < 1:
            raise SimError("an empirical length distribution needs at least one value, all >= 1")
        return rng.choice(np.asarray(self.values, dtype=np.int64), size=n)


def _positive_int(x: int, what: str) -> None:
    if x < 1:
        raise SimError(f"{what} must be >= 1 token, got {x}")


# --- arrival processes -------------------------------------------------------------------


def _check_rate(rate: float) -> None:
    if not (rate > 0 and math.isfinite(rate)):
        raise SimError(f"arrival rate must be a positive number of requests/s, got {rate}")


def poisson_arrivals(rate: float, n: int, rng: np.random.Generator) -> F64:
    """Arrival times of a Poisson process of ``rate`` requests/s, starting at 0."""
    _check_rate(rate)
    return np.cumsum(rng.exponential(1.0 / rate, size=n))


def gamma_arrivals(rate: float, cv: float, n: int, rng: np.random.Generator) -> F64:
    """Gamma renewal process: mean gap 1/rate, coefficient of variation ``cv``."""
    _check_rate(rate)
    if not cv > 0:
        raise SimError(f"burstiness (coefficient of variation) must be > 0, got {cv}")
    k = 1.0 / (cv * cv)
    return np.cumsum(rng.gamma(k, 1.0 / (rate * k), size=n))


def constant_arrivals(rate: float, n: int) -> F64:
    """One request every 1/rate seconds, the first at 0."""
    _check_rate(rate)
    return np.arange(n, dtype=np.float64) / rate


def diurnal_rate(mean: float, amplitude: float = 0.5, period_s: float = 86400.0,
                 phase_s: float = 0.0) -> Callable[[F64], F64]:
    """λ(t) = mean·(1 + amplitude·sin(2π(t - phase)/period)), for :func:`varying_rate_arrivals`."""
    _check_rate(mean)
    if not 0.0 <= amplitude <= 1.0:
        raise SimError(f"diurnal amplitude must lie in [0, 1], got {amplitude}")

    def rate(t: F64) -> F64:
        return mean * (1.0 + amplitude * np.sin(2.0 * np.pi * (t - phase_s) / period_s))

    return rate


def varying_rate_arrivals(rate_fn: Callable[[F64], F64], rate_max: float, n: int,
                          rng: np.random.Generator) -> F64:
    """First ``n`` arrivals of a Poisson process of rate ``rate_fn(t) <= rate_max``, by thinning."""
    _check_rate(rate_max)
    out: list[F64] = []
    got, t0 = 0, 0.0
    while got < n:
        m = max(1024, 2 * (n - got))
        t = t0 + np.cumsum(rng.exponential(1.0 / rate_max, size=m))
        lam = rate_fn(t)
        if np.any(lam > rate_max * (1 + 1e-12)) or np.any(lam < 0):
            raise SimError(f"rate function leaves [0, rate_max={rate_max}]")
        keep = t[rng.random(m) * rate_max < lam]
        out.append(keep[: n - got])
        got += len(out[-1])
        t0 = float(t[-1])
    return np.concatenate(out) if out else np.zeros(0)


# --- the workload ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Workload:
    """Requests as columns. Exactly one of ``arrival_s`` (open loop) and ``concurrency``
    (closed loop) is set. ``hash_ids[hash_offsets[i]:hash_offsets[i+1]]`` are request i's
    prefix-block ids, each covering ``hash_block_tokens`` prompt tokens."""

    prompt_tokens: I64
    output_tokens: I64
    arrival_s: F64 | None = None
    concurrency: int | None = None
    hash_ids: I64 | None = None
    hash_offsets: I64 | None = None
    hash_block_tokens: int = MOONCAKE_BLOCK_TOKENS
    name: str = field(default="workload")
    ramp_s: float = 0.0
    """Closed loop: user i sends its first request at i·ramp_s/concurrency."""

    def __post_init__(self) -> None:
        n = len(self.prompt_tokens)
        if n == 0:
            raise SimError(f"workload {self.name!r} has no requests")
        if len(self.output_tokens) != n:
            raise SimError("prompt and output length columns differ in size")
        if int(np.min(self.prompt_tokens)) < 1 or int(np.min(self.output_tokens)) < 1:
            raise SimError(f"workload {self.name!r}: every prompt and output needs >= 1 token")
        if (self.arrival_s is None) == (self.concurrency is None):
            raise SimError("a workload has either arrival times (open loop) or a concurrency (closed loop)")
        if self.arrival_s is not None:
            a = self.arrival_s
            if len(a) != n or not np.all(np.isfinite(a)) or float(np.min(a)) < 0 or np.any(np.diff(a) < 0):
                raise SimError(f"workload {self.name!r}: arrival times must be finite, >= 0 and sorted")
        if self.concurrency is not None and self.concurrency < 1:
            raise SimError(f"closed-loop concurrency must be >= 1, got {self.concurrency}")
        if not (math.isfinite(self.ramp_s) and self.ramp_s >= 0.0):
            raise SimError(f"the start-up ramp must be finite and >= 0 s, got {self.ramp_s}")
        if self.ramp_s > 0.0 and self.concurrency is None:
            raise SimError("a start-up ramp applies to a closed loop (give a concurrency)")
        if (self.hash_ids is None) != (self.hash_offsets is None):
            raise SimError("hash_ids and hash_offsets go together")
        if self.hash_offsets is not None and len(self.hash_offsets) != n + 1:
            raise SimError("hash_offsets must have one entry per request plus one")

    def __len__(self) -> int:
        return len(self.prompt_tokens)

    @property
    def closed_loop(self) -> bool:
        return self.concurrency is not None

    @property
    def max_context(self) -> int:
        return int(np.max(self.prompt_tokens + self.output_tokens))

    @property
    def span_s(self) -> float:
        """Seconds from the first to the last arrival (0 for a closed loop)."""
        a = self.arrival_s
        return 0.0 if a is None else float(a[-1] - a[0])

    @property
    def rate(self) -> float:
        """Mean arrival rate of an open-loop workload (requests/s)."""
        if self.arrival_s is None or len(self) < 2 or self.span_s <= 0:
            raise SimError("the rate of a closed-loop or single-instant workload is not defined")
        return (len(self) - 1) / self.span_s

    def hashes(self, i: int) -> I64 | None:
        if self.hash_ids is None or self.hash_offsets is None:
            return None
        return self.hash_ids[self.hash_offsets[i]: self.hash_offsets[i + 1]]

    def request(self, i: int) -> Request:
        h = self.hashes(i)
        return Request(
            id=i,
            arrival_s=math.nan if self.arrival_s is None else float(self.arrival_s[i]),
            prompt_tokens=int(self.prompt_tokens[i]),
            output_tokens=int(self.output_tokens[i]),
            hash_ids=() if h is None else tuple(int(x) for x in h),
        )

    def __iter__(self) -> Iterator[Request]:
        return (self.request(i) for i in range(len(self)))

    def _replace(self, **kw: object) -> Workload:
        fields = {f: getattr(self, f) for f in self.__slots__}
        fields.update(kw)
        return Workload(**fields)

    def with_rate(self, rate: float) -> Workload:
        """The same requests with arrival times scaled so that the mean rate is ``rate``."""
        _check_rate(rate)
        a = self.arrival_s
        if a is None:
            raise SimError("a closed-loop workload has no arrival times to rescale")
        scale = self.rate / rate
        return self._replace(arrival_s=(a - a[0]) * scale, name=f"{self.name}@{rate:g}/s")

    def head(self, n: int) -> Workload:
        """The first ``n`` requests."""
        n = min(n, len(self))
        off = self.hash_offsets
        return self._replace(
            prompt_tokens=self.prompt_tokens[:n], output_tokens=self.output_tokens[:n],
            arrival_s=None if self.arrival_s is None else self.arrival_s[:n],
            hash_ids=None if self.hash_ids is None or off is None else self.hash_ids[: off[n]],
            hash_offsets=None if off is None else off[: n + 1],
        )

    def repeated(self, n: int) -> Workload:
        """``n`` requests: the workload replayed back to back (each copy shifted by the span plus
        one mean gap; hash ids of copy c offset so copies share no prefix with each other)."""
        reps = -(-n // len(self))
        m = len(self)
        idx = np.tile(np.arange(m), reps)[:n]
        copy = np.repeat(np.arange(reps), m)[:n]
        arr = None
        if self.arrival_s is not None:
            a = self.arrival_s - self.arrival_s[0]
            period = self.span_s * m / max(m - 1, 1) if self.span_s > 0 else 1.0
            arr = a[idx] + copy * period
        hid, hoff = None, None
        if self.hash_ids is not None and self.hash_offsets is not None:
            lens = np.diff(self.hash_offsets)[idx]
            hoff = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
            top = int(self.hash_ids.max()) + 1 if len(self.hash_ids) else 0
            parts = [self.hash_ids[self.hash_offsets[i]: self.hash_offsets[i + 1]] + c * top
                     for i, c in zip(idx.tolist(), copy.tolist(), strict=True)]
            hid = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
        return self._replace(
            prompt_tokens=self.prompt_tokens[idx], output_tokens=self.output_tokens[idx],
            arrival_s=arr, hash_ids=hid, hash_offsets=hoff, name=f"{self.name}x{reps}",
        )


def synthetic(
    n: int,
    prompt: LengthDist,
    output: LengthDist,
    rng: np.random.Generator,
    *,
    rate: float | None = None,
    arrival: str = "poisson",
    cv: float = 1.0,
    concurrency: int | None = None,
    ramp_s: float = 0.0,
) -> Workload:
    """``n`` requests of sampled lengths: an open loop at ``rate`` (``arrival`` one of poisson,
    gamma, constant) or a closed loop of ``concurrency`` users (starting over ``ramp_s``)."""
    if n < 1:
        raise SimError(f"the number of requests must be >= 1, got {n}")
    p, o = prompt.sample(n, rng), output.sample(n, rng)
    if concurrency is not None:
        return Workload(p, o, concurrency=concurrency, name=f"closed-loop x{concurrency}", ramp_s=ramp_s)
    if rate is None:
        raise SimError("give an arrival rate (open loop) or a concurrency (closed loop)")
    if arrival == "poisson":
        a = poisson_arrivals(rate, n, rng)
    elif arrival == "gamma":
        a = gamma_arrivals(rate, cv, n, rng)
    elif arrival == "constant":
        a = constant_arrivals(rate, n)
    else:
        raise SimError(f"unknown arrival process {arrival!r}; known: poisson, gamma, constant")
    return Workload(p, o, arrival_s=a - a[0] if arrival != "constant" else a, name=f"{arrival}@{rate:g}/s")


# --- traces ------------------------------------------------------------------------------


def load_trace(name: str | Path) -> Workload:
    """A shipped trace by name (``azure-code``, ``azure-conv``, ``mooncake-conv``,
    ``mooncake-synthetic``) or a file: an Azure-schema CSV or a Mooncake-schema JSON-lines file.
    Arrival times start at 0."""
    if isinstance(name, str) and name in TRACES:
        ref = resources.files("hierro.sim").joinpath("data", TRACES[name])
        text, label = ref.read_text(encoding="utf-8"), name
    else:
        path = Path(name)
        if not path.is_file():
            raise SimError(f"unknown trace {str(name)!r}: not a file and not one of {', '.join(TRACES)}")
        text, label = path.read_text(encoding="utf-8"), path.name
    if label.endswith(".jsonl") or label.startswith("mooncake"):
        return _parse_mooncake(text, label)
    return _parse_azure(text, label)


def _parse_azure(text: str, label: str) -> Workload:
    rows = list(csv.reader(text.splitlines()))
    if not rows or [c.strip() for c in rows[0]] != ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]:
        raise SimError(f"trace {label}: expected a CSV with header TIMESTAMP,ContextTokens,GeneratedTokens")
    body = [r for r in rows[1:] if r]
    if not body:
        raise SimError(f"trace {label} holds no requests")
    try:
        ts = np.array([r[0].strip() for r in body], dtype="datetime64[ns]")
        p = np.array([int(r[1]) for r in body], dtype=np.int64)
        o = np.array([int(r[2]) for r in body], dtype=np.int64)
    except (ValueError, IndexError) as exc:
        raise SimError(f"trace {label}: malformed row ({exc})") from None
    t = (ts - ts.min()).astype(np.int64) / 1e9
    order = np.argsort(t, kind="stable")
    return Workload(p[order], o[order], arrival_s=t[order], name=label)


def _parse_mooncake(text: str, label: str) -> Workload:
    ts: list[float] = []
    p: list[int] = []
    o: list[int] = []
    hashes: list[list[int]] = []
    for k, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            ts.append(float(rec["timestamp"]) / 1000.0)
            p.append(int(rec["input_length"]))
            o.append(int(rec["output_length"]))
            hashes.append([int(h) for h in rec.get("hash_ids", [])])
        except (ValueError, KeyError, TypeError) as exc:
            raise SimError(f"trace {label}: malformed line {k} ({exc!r})") from None
    if not p:
        raise SimError(f"trace {label} holds no requests")
    t = np.array(ts)
    order = np.argsort(t, kind="stable")
    lens = np.array([len(hashes[i]) for i in order], dtype=np.int64)
    off = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    flat = np.array([h for i in order for h in hashes[i]], dtype=np.int64)
    return Workload(
        np.array(p, dtype=np.int64)[order], np.array(o, dtype=np.int64)[order],
        arrival_s=t[order] - t.min(), hash_ids=flat, hash_offsets=off,
        hash_block_tokens=MOONCAKE_BLOCK_TOKENS, name=label,
    )
