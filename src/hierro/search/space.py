"""The configuration space of a serving search, pruned before anything is priced.

A configuration is an accelerator, a weight and a KV-cache precision, a parallel layout
(TP x PP, EP and data-parallel attention for mixture-of-experts models), a serving engine with
its token budget per step, and a load point: the concurrency per replica (requests in flight)
the fleet is sized for. The screen prices the closed loop at that concurrency; the replicas
are then as many as carry the demand with headroom, so each runs below that point.
Configurations here are aggregated (prefill and decode on the same replicas); disaggregated
prefill/decode pools pair these layouts up in :mod:`hierro.search.disagg`.

The token budget (vLLM ``max_num_batched_tokens``, TensorRT-LLM ``max_num_tokens``) is also the
chunked-prefill size of the engines modelled here: a step fills the budget with the running
decodes first and cuts the next prompt chunk from what is left (Sarathi-Serve; vLLM V1's
scheduler), so sweeping the budget sweeps the chunk size. The default sweep, 2048 to 16384,
spans vLLM's tuning advice: "smaller values (e.g., 2048) achieve better inter-token latency ...
higher values achieve better time to first token", and above 8192 for throughput (vLLM docs,
Optimization and Tuning, Chunked Prefill, docs.vllm.ai/en/stable/configuration/optimization/,
2025). A separate per-prompt chunk cap below the budget (vLLM ``long_prefill_token_threshold``,
SGLang ``chunked_prefill_size``) is not modelled by the step-cost model or the simulator.

Configurations that share a step-cost model (same model, accelerator, plan, engine and token
budget) form a :class:`Group`, which the screen prices in one vectorised call.

Pruning, before pricing: divisibility and layout rules (:meth:`Plan.check`), then memory
(:func:`memory_breakdown` at the context isl + osl, by each engine's KV sizing rule, must hold
weights, workspace and at least one sequence). Load points above the memory's sequence cap are
left out: they change nothing but the queue in front of a full replica.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from hierro.errors import HierroError, PlanError
from hierro.perf import DEFAULT_MAX_SEQS, default_max_seqs, kv_of_free_memory
from hierro.specs import (
    Accelerator,
    ModelArch,
    Plan,
    get_accelerator,
    get_system,
    list_accelerators,
    memory_breakdown,
)

__all__ = ["FP4_FAMILIES", "Candidate", "Group", "SearchSpace", "Space", "enumerate_space"]

FP4_FAMILIES = frozenset({"blackwell", "blackwell-ultra", "cdna4"})
"""Families with native fp4 tensor cores (NVFP4 on Blackwell, MXFP4 on CDNA4); elsewhere fp4
weights would be dequantised and are not searched."""


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """What to enumerate. Empty ``gpus`` means every catalog accelerator the model fits on."""

    gpus: tuple[str, ...] = ()
    weight_dtypes: tuple[str, ...] = ("bf16", "fp8", "fp4")
    kv_dtypes: tuple[str, ...] = ("bf16", "fp8")
    max_devices: int = 64
    """Accelerators one replica may span (tp x pp)."""
    max_pp: int = 8
    tp_across_nodes: bool = False
    """Allow tensor parallelism beyond the scale-up domain (off: TP stays on NVLink/IF/ICI)."""
    frameworks: tuple[str, ...] = ("vllm",)
    max_batched_tokens: tuple[int, ...] = (2048, 4096, 8192, 16384)
    """Token budgets per step (= chunked-prefill sizes) to sweep; see the module docstring."""
    concurrency_step: float = 2.0**0.25
    """Ratio between successive load points of the log grid."""
    max_concurrency: int | None = None
    """Highest load point per replica; None: each layout's engine cap (:func:`default_max_seqs`,
    1,024 sequences per attention data-parallel rank)."""
    mem_fraction: float = 0.9

    def __post_init__(self) -> None:
        if self.max_devices < 1 or self.max_pp < 1:
            raise HierroError(f"max devices and pp must be >= 1, got {self.max_devices}, {self.max_pp}")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise HierroError(f"the highest load point must be >= 1 request, got {self.max_concurrency}")
        if not self.concurrency_step > 1.0:
            raise HierroError(f"the concurrency grid step must be > 1, got {self.concurrency_step}")
        if not self.weight_dtypes or not self.kv_dtypes or not self.frameworks or not self.max_batched_tokens:
            raise HierroError("the search space needs at least one dtype, framework and token budget")
        if min(self.max_batched_tokens) < DEFAULT_MAX_SEQS:
            raise HierroError(
                f"token budgets must be >= the engine's sequence limit {DEFAULT_MAX_SEQS} (every running "
                f"decode takes one token of the budget), got {min(self.max_batched_tokens)}"
            )


@dataclass(frozen=True, slots=True)
class Group:
    """Configurations sharing one step-cost model; ``max_seqs`` is the memory's sequence cap."""

    gpu: str
    plan: Plan
    framework: str
    max_batched_tokens: int
    max_seqs: int

    @property
    def devices(self) -> int:
        return self.plan.devices

    def label(self) -> str:
        p = self.plan
        return f"{self.gpu} {p.weight_dtype}/kv-{p.kv_dtype} {p.label()}"

    @property
    def engine_max_seqs(self) -> int:
        """The engine's running-sequence cap of this layout (:func:`default_max_seqs`)."""
        return default_max_seqs(self.plan)

    def concurrencies(self, step: float, cap: int | None = None) -> NDArray[np.int64]:
        """Load points of the log grid 1, step, step², ... up to the memory cap and ``cap``
        (default: the engine's cap, :attr:`engine_max_seqs`)."""
        top = max(1, min(self.max_seqs, self.engine_max_seqs if cap is None else cap))
        n = math.floor(math.log(top) / math.log(step) + 1e-9) + 1
        grid = np.unique(np.round(step ** np.arange(n)).astype(np.int64))
        grid = grid[grid <= top]
        return np.unique(np.append(grid, top))


@dataclass(frozen=True, slots=True)
class Candidate:
    """One configuration: a group and its load point (closed-loop concurrency per replica)."""

    group: Group
    concurrency: int

    def label(self) -> str:
        g = self.group
        return f"{g.label()} {g.framework} tb{g.max_batched_tokens} c{self.concurrency}"


@dataclass(frozen=True, slots=True)
class Space:
    """The enumerated, pruned space."""

    model: ModelArch
    isl: int
    osl: int
    spec: SearchSpace
    groups: tuple[Group, ...]
    pruned_plan: int
    """Layouts rejected by divisibility rules."""
    pruned_memory: int
    """Layouts whose weights, workspace and one sequence exceed the device."""
    skipped_gpus: tuple[tuple[str, str], ...] = field(default=())
    """(gpu, reason) for accelerators left out."""

    def concurrencies(self, group: Group) -> NDArray[np.int64]:
        return group.concurrencies(self.spec.concurrency_step, self.spec.max_concurrency)

    @property
    def n_configs(self) -> int:
        return sum(len(self.concurrencies(g)) for g in self.groups)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def native_dtypes(accel: Accelerator, wanted: tuple[str, ...]) -> list[str]:
    """The weight dtypes of ``wanted`` with a native tensor-core path on ``accel``."""
    out: list[str] = []
    for dt in wanted:
        if dt == "fp4" and accel.family not in FP4_FAMILIES:
            continue
        if dt != "bf16" and dt not in accel.peak_flops:
            continue
        out.append(dt)
    return out


def _head_counts(model: ModelArch) -> int:
    """gcd of the attention head counts of all layer kinds (TP must divide each)."""
    g = 0
    for layer, _ in model.groups:
        a = layer.attn
        g = math.gcd(g, a.lin_value_heads if a.kind == "linear" else a.n_heads)
    return g


def _layouts(model: ModelArch, accel: Accelerator, spec: SearchSpace) -> list[tuple[int, int, int, bool]]:
    """(tp, pp, ep, dp_attention) candidates before Plan.check."""
    domain = get_system(accel.system_id).scale_up_domain
    tp_cap = spec.max_devices if spec.tp_across_nodes else min(domain, spec.max_devices)
    mla = any(layer.attn.kind == "mla" for layer, _ in model.groups)
    experts = [layer.mlp.n_experts for layer, _ in model.groups if layer.mlp.kind == "moe"]
    heads = _head_counts(model)
    out: list[tuple[int, int, int, bool]] = []
    tps = [t for t in range(1, tp_cap + 1) if (heads % t == 0) or (model.is_moe and mla and t & (t - 1) == 0)]
    for tp in tps:
        for pp in range(1, spec.max_pp + 1):
            if tp * pp > spec.max_devices or pp > model.n_layers or pp & (pp - 1):
                continue
            eps = [1]
            if model.is_moe:
                eps = [e for e in _divisors(tp) if all(n % e == 0 for n in experts)]
            dps = [False, True] if (model.is_moe and mla and tp > 1) else [False]
            out.extend((tp, pp, ep, dp) for ep in eps for dp in dps)
    return out


def _gpu_ids(model: ModelArch, spec: SearchSpace) -> list[str]:
    if spec.gpus:
        return [get_accelerator(g).id for g in spec.gpus]
    return sorted(a.id for a in list_accelerators())


def enumerate_space(model: ModelArch, isl: int, osl: int, spec: SearchSpace | None = None) -> Space:
    """Every layout of ``model`` the space allows that passes divisibility and memory checks."""
    spec = spec or SearchSpace()
    if isl < 1 or osl < 1:
        raise HierroError(f"isl and osl must be >= 1 token, got isl={isl}, osl={osl}")
    groups: list[Group] = []
    bad_plan = bad_mem = 0
    skipped: list[tuple[str, str]] = []
    # the KV pool follows each engine's sizing rule (hierro.specs.memory)
    of_free = {fw: kv_of_free_memory(fw) for fw in spec.frameworks}
    for gid in _gpu_ids(model, spec):
        accel = get_accelerator(gid)
        wdts = native_dtypes(accel, spec.weight_dtypes)
        kdts = [k for k in spec.kv_dtypes if k == "bf16" or k in accel.peak_flops]
        if not wdts or not kdts:
            skipped.append((gid, "no native path for the requested dtypes"))
            continue
        before = len(groups)
        for tp, pp, ep, dp in _layouts(model, accel, spec):
            for wdt in wdts:
                for kdt in kdts:
                    plan = Plan(tp=tp, pp=pp, ep=ep, dp_attention=dp, weight_dtype=wdt, kv_dtype=kdt)
                    try:
                        plan.check(model)
                    except PlanError:
                        bad_plan += 1
                        continue
                    for mbt in spec.max_batched_tokens:
                        mems = {
                            rule: memory_breakdown(
                                model, accel, plan, context=isl + osl, mem_fraction=spec.mem_fraction,
                                max_batched_tokens=mbt, of_free=rule,
                            )
                            for rule in set(of_free.values())
                        }
                        if not any(m.fits for m in mems.values()):
                            bad_mem += 1
                            continue
                        groups.extend(Group(gid, plan, fw, mbt, mems[of_free[fw]].max_seqs)
                                      for fw in spec.frameworks if mems[of_free[fw]].fits)
        if len(groups) == before:
            skipped.append((gid, f"{model.id} fits no layout of at most {spec.max_devices} devices"))
    return Space(model, isl, osl, spec, tuple(groups), bad_plan, bad_mem, tuple(skipped))
