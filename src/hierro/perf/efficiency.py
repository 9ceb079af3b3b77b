"""Efficiency parameters of the roofline: data, looked up by hardware family, framework, op class
and precision.

The roofline's peaks are never reached: a GEMM runs at a fraction of the tensor-core peak, a
memory-bound kernel at a fraction of HBM bandwidth, a collective at a fraction of link bandwidth
plus a latency, and each engine step pays a host overhead. These fractions are data: the
defaults shipped in ``perf/data/efficiency.yaml`` are fitted on published measurements by
``hierro calibrate`` (or, until then, documented estimates), and a user's own file replaces them.

Lookup: each entry names a family, framework, op class and dtype, any of which may be ``"*"``;
the entry that matches with the most specific fields wins (ties: the later entry).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hierro.catalog import read_yaml
from hierro.catalog.load import validation_message
from hierro.errors import CatalogError

__all__ = [
    "FRAMEWORK_FAMILIES",
    "OP_CLASSES",
    "Calibration",
    "EfficiencyEntry",
    "FrontEnd",
    "default_calibration",
    "dump_calibration",
    "framework_family",
    "kv_of_free_memory",
    "load_calibration",
    "mixes_prefill",
    "reserves_kv",
    "starting_calibration",
]

OpClass = Literal[
    "gemm", "moe", "attn_prefill", "attn_decode", "allreduce", "alltoall", "p2p", "overhead", "host"
]
OP_CLASSES: tuple[str, ...] = (
    "gemm", "moe", "attn_prefill", "attn_decode", "allreduce", "alltoall", "p2p", "overhead", "host",
)

# Serving stacks grouped by the engine that runs the model (Dynamo and Triton orchestrate one).
FRAMEWORK_FAMILIES: dict[str, str] = {
    "trtllm": "trtllm",
    "dynamo-trtllm": "trtllm",
    "triton-trtllm": "trtllm",
    "vllm": "vllm",
    "dynamo-vllm": "vllm",
    "llmboost": "vllm",
    "sglang": "sglang",
    "dynamo-sglang": "sglang",
    "sglang-mori": "sglang",
    "atom": "atom",
    "deepseek-inhouse": "sglang",
}


def framework_family(framework: str) -> str:
    """The engine family of a framework name (unknown names stand for themselves)."""
    return FRAMEWORK_FAMILIES.get(framework.lower(), framework.lower())


def kv_of_free_memory(framework: str) -> bool:
    """Whether the engine sizes its KV pool as a share of the memory left free after the weights
    and workspace (TensorRT-LLM's ``free_gpu_memory_fraction``) rather than of the whole device
    (vLLM, SGLang): see :mod:`hierro.specs.memory`."""
    return framework_family(framework) == "trtllm"


def mixes_prefill(framework: str) -> bool:
    """Whether the engine's steps carry prompt chunks together with the running decodes.

    vLLM V1 schedules the running decodes first and fills the rest of each step's token budget
    with prompt chunks (``Scheduler.schedule``); TensorRT-LLM's in-flight batching also puts
    context and generation requests in one batch. SGLang runs a new prefill batch *instead of*
    the decode batch whenever it can form one (``Scheduler.get_next_batch_to_run``: "Run
    prefill first if possible"); it mixes them only with ``--enable-mixed-chunk``, off by
    default (SGLang server arguments), so its decodes wait out every prefill step."""
    return framework_family(framework) != "sglang"


def reserves_kv(framework: str) -> bool:
    """Whether the engine admits a request only when the KV cache of its whole length (prompt
    and every output token it may generate) can be reserved, so that it never evicts: the
    default ``GUARANTEED_NO_EVICT`` capacity scheduler of TensorRT-LLM (``SchedulerConfig``;
    ``MAX_UTILIZATION`` is the opt-in alternative). vLLM and SGLang allocate KV blocks as a
    request grows and preempt (vLLM) or retract (SGLang) when they run out."""
    return framework_family(framework) == "trtllm"


class EfficiencyEntry(BaseModel):
    """One row of the efficiency table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: str = "*"
    framework: str = "*"
    op_class: str = "*"
    dtype: str = "*"
    compute: float | None = Field(default=None, gt=0, le=1)
    """Fraction of dense peak FLOP/s reached."""
    memory: float | None = Field(default=None, gt=0, le=1)
    """Fraction of HBM (or, for collectives, link) bandwidth reached."""
    latency_s: float | None = Field(default=None, ge=0, le=1)
    """Fixed time: per kernel launch (compute ops), per collective step (comm), or per engine step
    (op class ``overhead``)."""
    exposed: float | None = Field(default=None, ge=0, le=1)
    """Share of the shorter of an op's compute and memory times that its longer one does not hide
    (0: the roofline's perfect overlap; 1: the two run one after the other). See
    :func:`hierro.perf.roofline.op_time`."""
    note: str = ""

    def specificity(self) -> int:
        return sum(v != "*" for v in (self.family, self.framework, self.op_class, self.dtype))

    def matches(self, family: str, framework: str, op_class: str, dtype: str) -> bool:
        return (
            self.family in ("*", family)
            and self.framework in ("*", framework)
            and self.op_class in ("*", op_class)
            and self.dtype in ("*", dtype)
        )


@dataclass(frozen=True, slots=True)
class FrontEnd:
    """Time a request spends before its first token outside what the simulated engine steps
    account for: HTTP, tokenisation, handing the prompt to the scheduler, detokenising and
    streaming.

        delay(N, L, t) = fixed_s + per_inflight_s · N + per_prompt_token_s · L
                         + t · steps(L, C),  steps(L, C) = per_step + per_step_per_token · L · C_ref / C

    with N the requests in flight on the instance (its own included), L its prompt tokens and t
    the engine's current step time. The per-token part is the prompt's own path through the
    front end (tokenising it, copying its ids between processes) and, for a disaggregated stack,
    the KV hand-off's cost beyond its bandwidth time (per-block transfer setup grows with the
    prompt). The per-request part is the front end's work that grows with the streams it serves:
    one event loop tokenises new prompts and detokenises and streams every running request's
    tokens (vLLM's API server, SGLang's tokenizer manager, trtllm-serve), so a new prompt waits
    behind the other streams. The per-step part counts engine iterations: a request crosses
    process boundaries that each hand over once per iteration (API server to engine core and
    back; SGLang's tokenizer manager, scheduler and detokenizer), so its first token comes some
    iterations after the simulated engine samples it, and a longer prompt costs more of them, as
    many more as the chunks the engine's token budget C cuts it into (``per_step_per_token`` is
    per token at the reference budget :data:`FRONT_END_BUDGET`, C_ref; a larger budget, fewer
    chunks, fewer steps).
    The five numbers are fitted per serving stack on measured time to first token against the
    simulated engine (:mod:`hierro.accuracy.simfit`), never per row or model.

    Limitation: the per-request and per-step terms are empirical stand-ins for how measured TTFT
    grows with load beyond the simulated engine queue, and part of that growth is a tail, not a
    shift. In the InferenceMAX rows that report both, mean/median TTFT is 2-6 at hundreds of
    users against 1.1-1.4 simulated (a benchmark's first wave waits far longer than the
    simulator says), so a delay added to every request fits mean TTFT but over-predicts the
    median at high load.
    """

    fixed_s: float
    per_inflight_s: float = 0.0
    per_prompt_token_s: float = 0.0
    per_step: float = 0.0
    """Engine steps of delay per request (dimensionless)."""
    per_step_per_token: float = 0.0
    """Engine steps of delay per prompt token at a token budget of :data:`FRONT_END_BUDGET`."""

    @property
    def stepped(self) -> bool:
        """Whether the delay depends on the engine's step time."""
        return self.per_step > 0.0 or self.per_step_per_token > 0.0

    def steps(self, prompt_tokens: Any, budget: Any = None) -> Any:
        """Engine steps of delay for a prompt under token budget ``budget`` (default
        :data:`FRONT_END_BUDGET`)."""
        scale = 1.0 if budget is None else FRONT_END_BUDGET / budget
        return self.per_step + self.per_step_per_token * prompt_tokens * scale

    def delay(self, inflight: Any, prompt_tokens: Any = 0.0, step_s: Any = 0.0, budget: Any = None) -> Any:
        """Seconds (scalars or numpy arrays alike)."""
        return (self.fixed_s + self.per_inflight_s * inflight + self.per_prompt_token_s * prompt_tokens
                + step_s * self.steps(prompt_tokens, budget))


FRONT_END_BUDGET = 8192
"""Token budget (``max_num_batched_tokens``) the front end's steps per prompt token are stated
at: the budget of every benchmark row they are fitted on (vLLM's serving default)."""

DISAGGREGATED = "disaggregated"
"""Suffix of a per-request overhead key that applies to a stack's disaggregated deployments."""


class CalibrationFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=3)
    as_of: str
    fitted_on: str = ""
    rows: int = 0
    error: dict[str, Any] = Field(default_factory=dict)
    entries: tuple[EfficiencyEntry, ...]
    ttft_overhead_s: dict[str, float] = Field(default_factory=dict)
    """Per-request time outside the engine steps before the first token (HTTP, tokenisation,
    scheduling), by serving stack (``triton-trtllm``), by framework family (``trtllm``), and for a
    disaggregated deployment by ``<stack>/disaggregated`` (the router and the KV hand-off beyond
    its bandwidth time); ``"*"`` is the default. See :meth:`Calibration.front_end`."""
    ttft_per_inflight_s: dict[str, float] = Field(default_factory=dict)
    """Time before the first token per request in flight on the instance, by the same keys as
    ``ttft_overhead_s`` (a key's missing value is 0)."""
    ttft_per_prompt_token_s: dict[str, float] = Field(default_factory=dict)
    """Time before the first token per prompt token, by the same keys (missing: 0)."""
    ttft_per_step: dict[str, float] = Field(default_factory=dict)
    """Engine steps before the first token per request, by the same keys (missing: 0)."""
    ttft_per_step_per_token: dict[str, float] = Field(default_factory=dict)
    """Engine steps before the first token per prompt token, by the same keys (missing: 0)."""
    mtp_acceptance: float | None = Field(default=None, gt=0, lt=1)
    """Probability that a multi-token-prediction draft token is accepted (None: not known)."""


@dataclass(frozen=True)
class Calibration:
    """A looked-up view of an efficiency table; immutable, hashable by identity."""

    source: str
    as_of: str
    entries: tuple[EfficiencyEntry, ...]
    ttft_overhead: dict[str, float] = field(default_factory=dict)
    fitted_on: str = ""
    error: dict[str, Any] = field(default_factory=dict)
    ttft_per_inflight: dict[str, float] = field(default_factory=dict)
    """Seconds before the first token per request in flight, by the keys of ``ttft_overhead``."""
    ttft_per_prompt_token: dict[str, float] = field(default_factory=dict)
    """Seconds before the first token per prompt token, by the keys of ``ttft_overhead``."""
    ttft_per_step: dict[str, float] = field(default_factory=dict)
    """Engine steps before the first token per request, by the keys of ``ttft_overhead``."""
    ttft_per_step_per_token: dict[str, float] = field(default_factory=dict)
    """Engine steps before the first token per prompt token, by the keys of ``ttft_overhead``."""
    mtp_acceptance: float | None = None
    """Probability that a multi-token-prediction draft token is accepted (None: not known, and
    speculative rows are not predicted)."""
    _memo: dict[tuple[str, ...], float] = field(default_factory=dict, compare=False, repr=False)
    """Lookups already answered (sweeps ask the same few keys millions of times)."""

    def _pick(self, attr: str, family: str, framework: str, op_class: str, dtype: str,
              default: float | None = None) -> float:
        """The most specific entry's ``attr`` (remembered), or ``default`` when none has it (an
        error when ``default`` is None)."""
        key = (attr, family, framework, op_class, dtype)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = self._lookup(attr, family, framework, op_class, dtype, default)
        return hit

    def _lookup(self, attr: str, family: str, framework: str, op_class: str, dtype: str,
                default: float | None = None) -> float:
        best: EfficiencyEntry | None = None
        for e in self.entries:
            if getattr(e, attr) is None or not e.matches(family, framework, op_class, dtype):
                continue
            if best is None or e.specificity() >= best.specificity():
                best = e
        if best is None:
            if default is not None:
                return default
            raise CatalogError(
                f"calibration {self.source!r} has no {attr} entry for "
                f"{family}/{framework}/{op_class}/{dtype}; add a '*' default"
            )
        value = getattr(best, attr)
        assert value is not None
        return float(value)

    def compute(self, family: str, framework: str, op_class: str, dtype: str) -> float:
        return self._pick("compute", family, framework, op_class, dtype)

    def memory(self, family: str, framework: str, op_class: str, dtype: str) -> float:
        return self._pick("memory", family, framework, op_class, dtype)

    def latency(self, family: str, framework: str, op_class: str, dtype: str = "*") -> float:
        return self._pick("latency_s", family, framework, op_class, dtype)

    def latency_or(self, family: str, framework: str, op_class: str, dtype: str, default: float) -> float:
        """:meth:`latency`, or ``default`` when the table has no entry for the op class."""
        return self._pick("latency_s", family, framework, op_class, dtype, default)

    def exposed(self, family: str, framework: str, op_class: str, dtype: str = "*") -> float:
        """Share of the shorter of compute and memory time not hidden behind the longer; 0 (the
        plain roofline) when the table has no entry (one written before the share existed)."""
        return self._pick("exposed", family, framework, op_class, dtype, 0.0)

    def front_end(self, framework: str, *, disaggregated: bool = False) -> FrontEnd:
        """The serving front end of a stack: the most specific key the table has, in the order
        (disaggregated only) ``<stack>/disaggregated``, ``<family>/disaggregated``,
        ``*/disaggregated``, then ``<stack>``, its framework family, ``"*"``; no overhead when
        none. A disaggregated deployment of a stack the table lacks so takes what other stacks'
        disaggregated deployments cost (the router and the KV hand-off), not an aggregated one's."""
        fam = framework_family(framework)
        keys = [f"{framework}/{DISAGGREGATED}", f"{fam}/{DISAGGREGATED}", f"*/{DISAGGREGATED}"] if disaggregated else []
        keys += [framework, fam, "*"]
        for k in keys:
            if k in self.ttft_overhead:
                return FrontEnd(self.ttft_overhead[k], self.ttft_per_inflight.get(k, 0.0),
                                self.ttft_per_prompt_token.get(k, 0.0), self.ttft_per_step.get(k, 0.0),
                                self.ttft_per_step_per_token.get(k, 0.0))
        return FrontEnd(0.0, 0.0)

    def with_front_ends(self, front_ends: dict[str, FrontEnd]) -> Calibration:
        """This table with its front ends replaced by ``front_ends`` (by the keys
        :meth:`front_end` looks up; an empty dict leaves no front end anywhere)."""
        fe = front_ends
        return replace(
            self,
            ttft_overhead={k: f.fixed_s for k, f in fe.items()},
            ttft_per_inflight={k: f.per_inflight_s for k, f in fe.items() if f.per_inflight_s > 0.0},
            ttft_per_prompt_token={k: f.per_prompt_token_s for k, f in fe.items() if f.per_prompt_token_s > 0.0},
            ttft_per_step={k: f.per_step for k, f in fe.items() if f.per_step > 0.0},
            ttft_per_step_per_token={k: f.per_step_per_token for k, f in fe.items() if f.per_step_per_token > 0.0},
            _memo={},
        )

    def band(self, predictor: str, metric: str) -> tuple[float, float]:
        """Error band of a prediction as factors (lo, hi): the 10th and 90th percentiles of
        measured / predicted over the cross-validated points of ``metric`` for ``predictor``
        (``simulated`` or ``analytic``), as recorded by ``benchmarks/accuracy.py``; (1, 1) when
        the calibration has none (an uncalibrated prediction has no measured error)."""
        bands = self.error.get("bands", {})
        q = bands.get(predictor, {}).get(metric) if isinstance(bands, dict) else None
        if not q:
            return 1.0, 1.0
        lo, hi = float(q[0]), float(q[1])
        return min(lo, 1.0), max(hi, 1.0)


def _from_raw(raw: Any, where: str) -> Calibration:
    try:
        f = CalibrationFile.model_validate(raw)
    except ValidationError as err:
        raise CatalogError(f"{where}: {validation_message(err)}") from None
    return Calibration(
        source=f.source,
        as_of=f.as_of,
        entries=f.entries,
        ttft_overhead=dict(f.ttft_overhead_s),
        fitted_on=f.fitted_on,
        error=dict(f.error),
        ttft_per_inflight=dict(f.ttft_per_inflight_s),
        ttft_per_prompt_token=dict(f.ttft_per_prompt_token_s),
        ttft_per_step=dict(f.ttft_per_step),
        ttft_per_step_per_token=dict(f.ttft_per_step_per_token),
        mtp_acceptance=f.mtp_acceptance,
    )


def load_calibration(path: str | Path) -> Calibration:
    """Read an efficiency table written by ``hierro calibrate`` (or by hand)."""
    p = Path(path)
    if not p.is_file():
        raise CatalogError(f"{p}: no such calibration file (write one with `hierro calibrate`)")
    return _from_raw(read_yaml(p), str(p))


def dump_calibration(calib: Calibration, *, header: str = "") -> str:
    """A calibration as YAML in the schema :func:`load_calibration` reads."""
    doc = {
        "source": calib.source,
        "as_of": calib.as_of,
        "fitted_on": calib.fitted_on,
        "rows": int(calib.fitted_on.split()[0]) if calib.fitted_on[:1].isdigit() else 0,
        "error": calib.error,
        "entries": [e.model_dump(exclude_defaults=True) for e in calib.entries],
        "ttft_overhead_s": dict(calib.ttft_overhead),
    }
    if calib.ttft_per_inflight:
        doc["ttft_per_inflight_s"] = dict(calib.ttft_per_inflight)
    if calib.ttft_per_prompt_token:
        doc["ttft_per_prompt_token_s"] = dict(calib.ttft_per_prompt_token)
    if calib.ttft_per_step:
        doc["ttft_per_step"] = dict(calib.ttft_per_step)
    if calib.ttft_per_step_per_token:
        doc["ttft_per_step_per_token"] = dict(calib.ttft_per_step_per_token)
    if calib.mtp_acceptance is not None:
        doc["mtp_acceptance"] = calib.mtp_acceptance
    head = "".join(f"# {line}\n" for line in header.splitlines())
    return head + yaml.safe_dump(doc, sort_keys=False, width=100)


@cache
def starting_calibration() -> Calibration:
    """The documented starting estimates (``efficiency.yaml``): the prior every fit starts from,
    so that no fit inherits values fitted on other data."""
    res = files("hierro.perf") / "data" / "efficiency.yaml"
    return _from_raw(read_yaml(res), "hierro/perf/data/efficiency.yaml")


@cache
def default_calibration() -> Calibration:
    """The efficiency table shipped with hierro: the one fitted on the bundled measurements
    (``efficiency_fitted.yaml``, written by ``benchmarks/accuracy.py``), else the documented
    starting estimates (``efficiency.yaml``)."""
    data = files("hierro.perf") / "data"
    for name in ("efficiency_fitted.yaml", "efficiency.yaml"):
        res = data / name
        if res.is_file():
            return _from_raw(read_yaml(res), f"hierro/perf/data/{name}")
    raise CatalogError("hierro/perf/data holds no efficiency table; reinstall hierro")
