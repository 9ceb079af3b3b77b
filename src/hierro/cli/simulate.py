"""``hierro simulate``: queueing, latency distributions and throughput of a serving fleet under a
workload, from the discrete-event simulator (:mod:`hierro.sim`)."""

from __future__ import annotations

import math
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hierro.cli._shared import (
    CalibOpt,
    DpAttentionOpt,
    Dtype,
    DtypeOpt,
    EpOpt,
    FrameworkOpt,
    GpuOpt,
    JsonOpt,
    KvDtypeOpt,
    MemFractionOpt,
    ModelOpt,
    PpOpt,
    TpOpt,
    calibration,
    emit_json,
    err_console,
    make_plan,
    out,
)
from hierro.errors import HierroError
from hierro.files import write_atomic
from hierro.perf import StepModel, default_max_seqs, mixes_prefill, reserves_kv
from hierro.report.sim import sim_dict, sim_tables
from hierro.sim import (
    TRACES,
    Fixed,
    LengthDist,
    LogNormal,
    SimResult,
    Slo,
    SpecDecode,
    UniformRatio,
    Workload,
    load_trace,
    parquet_available,
    simulate,
    simulate_disagg,
    synthetic,
    to_csv,
    to_parquet,
)
from hierro.sim.metrics import PARQUET_MISSING
from hierro.specs import get_accelerator, get_model
from hierro.units import GIB, GIGA

__all__ = ["parse_length_dist", "parse_seconds", "parse_slo", "simulate_cmd"]


class Arrival(StrEnum):
    poisson = "poisson"
    gamma = "gamma"
    constant = "constant"


class Preemption(StrEnum):
    recompute = "recompute"
    swap = "swap"


_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "min": 60.0, "h": 3600.0}


def parse_seconds(text: str) -> float:
    """``1s``, ``40ms``, ``250us``, ``2min``, ``0.5`` (seconds) -> seconds."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zµ]*)\s*", text)
    if m is None or m.group(2) not in ("", *_UNITS):
        raise HierroError(f"cannot read {text!r} as a duration; write e.g. 1s, 40ms, 250us")
    return float(m.group(1)) * _UNITS.get(m.group(2), 1.0)


def parse_slo(text: str) -> Slo:
    """``ttft_p99=1s,tpot_p99=40ms`` -> :class:`Slo` (per-request ceilings for goodput; a
    ``_pNN`` suffix is accepted and read as the per-request ceiling)."""
    ttft, tpot = math.inf, math.inf
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, val = part.partition("=")
        name = re.sub(r"_p[0-9.]+$", "", key.strip().lower())
        if not sep or name not in ("ttft", "tpot"):
            raise HierroError(f"--slo: cannot read {part.strip()!r}; write e.g. ttft_p99=1s,tpot_p99=40ms")
        v = parse_seconds(val)
        if not v > 0:
            raise HierroError(f"--slo: {name} must be > 0, got {val.strip()!r}")
        if name == "ttft":
            ttft = v
        else:
            tpot = v
    if math.isinf(ttft) and math.isinf(tpot):
        raise HierroError("--slo sets neither ttft nor tpot")
    return Slo(ttft_s=ttft, tpot_s=tpot)


def parse_length_dist(spec: str, tokens: int, max_tokens: int) -> LengthDist:
    """``fixed``, ``uniform:R`` (uniform in [R·tokens, tokens]), ``lognormal:SIGMA`` (median
    tokens) -> a length distribution."""
    if tokens < 1:
        raise HierroError(f"--isl and --osl must be >= 1 token, got {tokens}")
    kind, _, arg = spec.strip().lower().partition(":")
    try:
        if kind == "fixed" and not arg:
            return Fixed(tokens)
        if kind == "uniform":
            r = float(arg)
            if not 0.0 <= r <= 1.0:
                raise HierroError(f"--length-dist uniform:R needs R in [0, 1], got {arg}")
            return UniformRatio(tokens, r)
        if kind == "lognormal":
            sigma = float(arg)
            if not sigma >= 0.0:
                raise HierroError(f"--length-dist lognormal:SIGMA needs SIGMA >= 0, got {arg}")
            return LogNormal(float(tokens), sigma, max_tokens=max_tokens)
    except ValueError:
        pass
    raise HierroError(f"--length-dist {spec!r}: use fixed, uniform:R or lognormal:SIGMA")


def _workload(
    *, trace: str | None, requests: int | None, qps: float | None, concurrency: int | None,
    arrival: Arrival, cv: float, isl: int, osl: int, length_dist: str, duration: float | None,
    seed: int, max_tokens: int, ramp: float = 0.0,
) -> Workload:
    if qps is not None and concurrency is not None:
        raise HierroError("give --qps (open loop) or --concurrency (closed loop), not both")
    if ramp > 0.0 and concurrency is None:
        raise HierroError("--ramp spreads the start of a closed loop: give --concurrency")
    if qps is not None and not (qps > 0 and math.isfinite(qps)):
        raise HierroError(f"--qps must be a positive number of requests/s, got {qps}")
    if concurrency is not None and concurrency < 1:
        raise HierroError(f"--concurrency must be >= 1, got {concurrency}")
    if requests is not None and requests < 1:
        raise HierroError(f"--requests must be >= 1, got {requests}")
    if duration is not None and not duration > 0:
        raise HierroError(f"--duration must be > 0 s, got {duration}")
    rng = np.random.default_rng(seed)
    if trace is not None:
        wl = load_trace(trace)
        if requests is not None:
            wl = wl.head(requests) if requests <= len(wl) else wl.repeated(requests)
        if concurrency is not None:
            return Workload(wl.prompt_tokens, wl.output_tokens, concurrency=concurrency,
                            name=f"{wl.name} closed-loop x{concurrency}", ramp_s=ramp)
        return wl.with_rate(qps) if qps is not None else wl
    p = parse_length_dist(length_dist, isl, max_tokens)
    o = parse_length_dist(length_dist, osl, max_tokens)
    if concurrency is None and qps is None:
        raise HierroError("give --qps, --concurrency or --trace")
    n = requests
    if n is None:
        # enough arrivals to fill the duration (mean + 6 sigma of a Poisson count), else 1000
        n = 1000 if duration is None or qps is None else int(qps * duration + 6 * math.sqrt(qps * duration)) + 10
    if concurrency is not None:
        return synthetic(n, p, o, rng, concurrency=concurrency, ramp_s=ramp)
    return synthetic(n, p, o, rng, rate=qps, arrival=arrival.value, cv=cv)


def _write_records(res: SimResult, path: Path) -> None:
    """Per-request records to ``path`` atomically: a temporary file in the same folder, then a
    rename, so a failed write leaves nothing behind."""
    write = to_csv if path.suffix.lower() == ".csv" else to_parquet
    write_atomic(path, lambda tmp: write(res.records, tmp))


def simulate_cmd(
    model: ModelOpt = "llama-3.1-70b",
    gpu: GpuOpt = "h100-sxm",
    tp: TpOpt = 8,
    pp: PpOpt = 1,
    ep: EpOpt = 1,
    dp_attention: DpAttentionOpt = False,
    dtype: DtypeOpt = Dtype.fp8,
    kv_dtype: KvDtypeOpt = None,
    framework: FrameworkOpt = "vllm",
    mem_fraction: MemFractionOpt = 0.9,
    calib: CalibOpt = None,
    replicas: Annotated[int, typer.Option(help="model instances behind the router")] = 1,
    prefill_replicas: Annotated[int, typer.Option(help="disaggregated: prefill instances (with --decode-replicas)")] = 0,
    decode_replicas: Annotated[int, typer.Option(help="disaggregated: decode instances (with --prefill-replicas)")] = 0,
    router: Annotated[str, typer.Option(help="round_robin, least_outstanding or prefix_aware")] = "least_outstanding",
    qps: Annotated[float | None, typer.Option(help="open loop: mean arrival rate, requests/s")] = None,
    concurrency: Annotated[int | None, typer.Option(help="closed loop: users, each sending its next request when the last ends")] = None,
    ramp: Annotated[str | None, typer.Option(help="closed loop: start the users evenly over this time (e.g. 30s; about one request's latency starts the loop in its steady state)")] = None,
    arrival: Annotated[Arrival, typer.Option(help="arrival process of the open loop")] = Arrival.poisson,
    cv: Annotated[float, typer.Option(help="gamma arrivals: coefficient of variation of the gaps (burstiness)")] = 1.0,
    isl: Annotated[int, typer.Option(help="input tokens per request (median for lognormal)")] = 1024,
    osl: Annotated[int, typer.Option(help="output tokens per request (median for lognormal)")] = 1024,
    length_dist: Annotated[str, typer.Option(help="fixed, uniform:R (in [R·len, len]) or lognormal:SIGMA")] = "fixed",
    trace: Annotated[str | None, typer.Option(help=f"replay a trace: {'|'.join(TRACES)} or a file (Azure CSV, Mooncake JSONL)")] = None,
    requests: Annotated[int | None, typer.Option(help="requests to simulate (default 1000, or the whole trace)")] = None,
    duration: Annotated[str | None, typer.Option(help="stop sending requests at this simulated time (e.g. 600s, 10min)")] = None,
    seed: Annotated[int, typer.Option(help="seed of the workload's random draws")] = 0,
    max_num_seqs: Annotated[int | None, typer.Option(help="running sequences per instance (vLLM max_num_seqs; default 1024 per attention data-parallel rank, at most the token budget)")] = None,
    max_batched_tokens: Annotated[int, typer.Option(help="tokens per step (vLLM max_num_batched_tokens)")] = 8192,
    prefix_caching: Annotated[bool | None, typer.Option("--prefix-caching/--no-prefix-caching", help="prefix caching (default: on when the trace has prefix hashes)")] = None,
    spec_tokens: Annotated[int, typer.Option(help="speculative decoding / MTP: draft tokens per step")] = 0,
    spec_acceptance: Annotated[float | None, typer.Option(
        help="speculative decoding: acceptance rate of a draft token (default: the calibration's "
             "MTP acceptance, fitted on published MTP benchmarks)")] = None,
    spec_draft_cost: Annotated[float | None, typer.Option(help="a draft pass as a fraction of a decode step (default: MTP, 1/layers)")] = None,
    preemption: Annotated[Preemption, typer.Option(help="when KV blocks run out: recompute the victim (vLLM V1) or swap its KV to host memory (vLLM V0)")] = Preemption.recompute,
    mixed_chunk: Annotated[bool | None, typer.Option(
        "--mixed-chunk/--no-mixed-chunk",
        help="prompt chunks share a step with the running decodes (vLLM, TensorRT-LLM) or a step that can "
             "prefill prefills only while the decodes wait (SGLang without --enable-mixed-chunk); "
             "default: the framework's own")] = None,
    reserve_kv: Annotated[bool | None, typer.Option(
        "--reserve-kv/--no-reserve-kv",
        help="admit a request only with the KV cache of its whole length reserved (TensorRT-LLM's "
             "GUARANTEED_NO_EVICT) or allocate it as it grows and preempt (vLLM, SGLang); "
             "default: the framework's own")] = None,
    swap_space: Annotated[float, typer.Option(help="swap: host memory per GPU for swapped KV, GiB (vLLM --swap-space)")] = 4.0,
    host_bw: Annotated[float | None, typer.Option(help="swap: host link per GPU and direction, GB/s (default: the GPU's PCIe / NVLink-C2C link from the catalog)")] = None,
    warmup: Annotated[int, typer.Option(help="first requests left out of the statistics")] = 0,
    slo: Annotated[str | None, typer.Option(help="goodput SLO per request, e.g. ttft_p99=1s,tpot_p99=40ms")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="per-request records to FILE (.csv or .parquet)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Simulate a serving fleet under a workload: TTFT, TPOT, ITL, queueing, throughput, goodput."""
    if not 0.1 <= mem_fraction <= 1.0:
        raise HierroError(f"--mem-fraction must be in [0.1, 1], got {mem_fraction}")
    if out_file is not None and out_file.suffix.lower() not in (".csv", ".parquet"):
        raise HierroError(f"--out {out_file}: the records go to a .csv or .parquet file")
    if out_file is not None and not out_file.parent.is_dir():
        raise HierroError(f"--out {out_file}: folder {out_file.parent} does not exist")
    if out_file is not None and out_file.suffix.lower() == ".parquet" and not parquet_available():
        raise HierroError(PARQUET_MISSING)
    if not (math.isfinite(swap_space) and swap_space >= 0.0):
        raise HierroError(f"--swap-space must be >= 0 GiB, got {swap_space}")
    if host_bw is not None and not (math.isfinite(host_bw) and host_bw > 0.0):
        raise HierroError(f"--host-bw must be > 0 GB/s, got {host_bw}")
    disagg = prefill_replicas > 0 or decode_replicas > 0
    if disagg and (prefill_replicas < 1 or decode_replicas < 1):
        raise HierroError("a disaggregated layout needs both --prefill-replicas and --decode-replicas >= 1")
    if disagg and (mixed_chunk is not None or reserve_kv is not None):
        raise HierroError("--mixed-chunk and --reserve-kv set an aggregated instance's scheduler; a "
                          "disaggregated layout follows the framework's own: drop them or the replica split")
    if spec_tokens < 0 or (spec_acceptance is not None and not 0.0 <= spec_acceptance <= 1.0):
        raise HierroError(f"--spec-tokens must be >= 0 and --spec-acceptance in [0, 1], got "
                          f"{spec_tokens}, {spec_acceptance}")
    cap = parse_seconds(duration) if duration is not None else None
    ramp_s = parse_seconds(ramp) if ramp is not None else 0.0
    plan = make_plan(tp, pp, ep, dp_attention, dtype, kv_dtype)
    if max_num_seqs is None:
        max_num_seqs = default_max_seqs(plan, max_batched_tokens)
    arch = get_model(model)
    sm = StepModel(arch, get_accelerator(gpu), plan, framework=framework, calib=calibration(calib))
    wl = _workload(trace=trace, requests=requests, qps=qps, concurrency=concurrency, arrival=arrival, cv=cv,
                   isl=isl, osl=osl, length_dist=length_dist, duration=cap, seed=seed,
                   max_tokens=arch.max_context or (1 << 20), ramp=ramp_s)
    objective = parse_slo(slo) if slo is not None else None
    if spec_tokens and spec_acceptance is None:
        spec_acceptance = sm.calib.mtp_acceptance
        if spec_acceptance is None:
            raise HierroError("--spec-tokens needs --spec-acceptance: the calibration has no MTP acceptance rate")
    spec = SpecDecode(spec_tokens, spec_acceptance or 0.0, spec_draft_cost) if spec_tokens else None
    common: dict[str, Any] = {
        "max_num_batched_tokens": max_batched_tokens, "max_num_seqs": max_num_seqs,
        "mem_fraction": mem_fraction, "prefix_caching": prefix_caching, "warmup": warmup,
        "slo": objective, "spec": spec, "duration_s": cap, "preemption": preemption.value,
        "swap_space_bytes": swap_space * GIB, "host_bw_Bps": None if host_bw is None else host_bw * GIGA,
    }
    with Progress(
        TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=True, disable=as_json or not err_console.is_terminal,
    ) as bar:
        task = bar.add_task("requests", total=len(wl))

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, done))

        if disagg:
            res = simulate_disagg(sm, sm, wl, prefill_replicas, decode_replicas, router=router,
                                  progress=progress, **common)
        else:
            res = simulate(sm, wl, replicas=replicas, router=router, progress=progress, mixed=mixed_chunk,
                           reserve_kv=reserve_kv, **common)
    if out_file is not None:
        _write_records(res, out_file)
    n_rep = prefill_replicas + decode_replicas if disagg else replicas
    layout = (f"{prefill_replicas} prefill + {decode_replicas} decode" if disagg else f"{replicas}") + (
        " replica" if n_rep == 1 else " replicas")
    context = {
        "model": arch.id, "gpu": sm.accel.id, "framework": framework, "plan": plan.label(),
        "gpus_per_replica": plan.devices,
        "workload": wl.name, "router": router, "seed": seed,
        "spec_tokens": spec_tokens, "spec_acceptance": spec_acceptance if spec_tokens else None,
        "preemption": preemption.value,
        "mixed_chunk": mixes_prefill(framework) if mixed_chunk is None else mixed_chunk,
        "reserve_kv": reserves_kv(framework) if reserve_kv is None else reserve_kv,
    }
    if as_json:
        emit_json(sim_dict(res, context))
    else:
        title = f"{arch.id} on {sm.accel.id} ({plan.label()}, {framework}), {layout}, {wl.name}"
        out.print(sim_tables(res, title))
        if out_file is not None:
            out.print(f"[dim]{len(res.records):,} request records written to {out_file}[/dim]")
