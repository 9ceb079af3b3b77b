"""``hierro search``: the cheapest serving configuration for a demand and latency SLOs; with
``--shared FLEET.yaml``, the fleet several models share (:mod:`hierro.search.fleetfile`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from hierro.cli._shared import CalibOpt, JsonOpt, ModelOpt, calibration, emit_json, err_console, out
from hierro.errors import HierroError
from hierro.report.search import (
    curve_table,
    search_dict,
    search_table,
    shared_dict,
    shared_tables,
    write_frontiers,
)
from hierro.search import (
    Budget,
    SearchRequest,
    SearchSpace,
    load_shared,
    make_backend,
    parse_slos,
    search,
    search_shared,
)
from hierro.search.demand import demand_from

__all__ = ["search_cmd"]


def _csv(text: str | None) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip()) if text else ()


_DEFAULT_QPS = 10.0
# options that describe one model's request; --shared takes them from the file instead
_PER_MODEL = ("model", "isl", "osl", "qps", "tokens_per_day", "peak_to_mean", "peak_hour", "demand_curve", "slo",
              "gpus", "dtypes", "kv_dtypes", "max_gpus", "max_usd_per_hour", "max_gpus_per_replica", "headroom",
              "objective", "framework", "token_budgets", "top", "sim_top", "preset", "disagg", "mixed_pools",
              "out_dir")


def _ints(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(v) for v in _csv(text))
    except ValueError:
        raise HierroError(f"cannot read token budgets {text!r}; write a comma list of integers, e.g. 2048,8192") from None


def search_cmd(
    ctx: typer.Context,
    model: ModelOpt = "llama-3.1-70b",
    isl: Annotated[int, typer.Option(help="input tokens per request")] = 2048,
    osl: Annotated[int, typer.Option(help="output tokens per request")] = 512,
    qps: Annotated[
        float | None, typer.Option(help="peak demand, requests/s (default 10 when no other demand is given)")
    ] = None,
    tokens_per_day: Annotated[
        float | None, typer.Option(help="demand as input + output tokens per day (mean; see --peak-to-mean)")
    ] = None,
    peak_to_mean: Annotated[
        float | None,
        typer.Option(help="with --qps or --tokens-per-day: a sinusoidal day of 24 hourly slots with this "
                     "peak-to-mean ratio (1 to 2; --qps is then its peak)"),
    ] = None,
    peak_hour: Annotated[float | None, typer.Option(help="hour of the diurnal peak (0-24)")] = None,
    demand_curve: Annotated[
        Path | None, typer.Option(help="CSV of requests/s per slot (a req_s column); sized at its peak")
    ] = None,
    slo: Annotated[
        list[str] | None, typer.Option(help="latency objective METRIC_PCT=DURATION, repeatable (ttft_p99=1s)")
    ] = None,
    gpus: Annotated[str | None, typer.Option(help="comma list of accelerator ids (default: all that fit)")] = None,
    dtypes: Annotated[str, typer.Option(help="weight dtypes to try (native ones only)")] = "bf16,fp8,fp4",
    kv_dtypes: Annotated[str, typer.Option(help="KV-cache dtypes to try")] = "bf16,fp8",
    max_gpus: Annotated[int | None, typer.Option(help="GPU budget of the whole fleet")] = None,
    max_usd_per_hour: Annotated[float | None, typer.Option(help="$ budget of the fleet per hour")] = None,
    max_gpus_per_replica: Annotated[int, typer.Option(help="most accelerators one replica spans")] = 64,
    headroom: Annotated[float, typer.Option(help="capacity above the peak demand (0.1 = 10%)")] = 0.1,
    objective: Annotated[str, typer.Option(help="cost, gpus or goodput")] = "cost",
    framework: Annotated[str, typer.Option(help="serving engines, comma list")] = "vllm",
    token_budgets: Annotated[
        str | None,
        typer.Option(help="token budgets per step (= chunked-prefill sizes) to sweep, comma list "
                     "(default 2048,4096,8192,16384)"),
    ] = None,
    top: Annotated[int, typer.Option(help="rows of the table")] = 10,
    sim_top: Annotated[int, typer.Option(help="candidates simulated per round")] = 20,
    preset: Annotated[str | None, typer.Option(help="economics preset for $/GPU-hour (`hierro tco`)")] = None,
    backend: Annotated[str, typer.Option(help="serial, local (all cores) or ray")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster address (with --backend ray)")] = None,
    disagg: Annotated[
        bool, typer.Option("--disagg/--no-disagg", help="also search disaggregated prefill/decode fleets")
    ] = False,
    mixed_pools: Annotated[
        bool,
        typer.Option("--mixed-pools/--no-mixed-pools",
                     help="with --disagg, also prefill on one accelerator type and decode on another"),
    ] = True,
    shared: Annotated[
        Path | None,
        typer.Option(help="YAML of several models sharing one fleet (models, lengths, SLOs, demands); "
                     "replaces the per-model options"),
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the simulated arrivals")] = 0,
    out_dir: Annotated[Path | None, typer.Option(help="write frontier CSVs and PNGs here")] = None,
    calib: CalibOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search accelerators, precisions and layouts for the cheapest fleet within the SLOs."""
    be = make_backend(backend, address)
    if shared is not None:
        given = [n for n in _PER_MODEL if getattr(ctx.get_parameter_source(n), "name", None) == "COMMANDLINE"]
        if given:
            flags = ", ".join("--" + n.replace("_", "-") for n in given)
            raise HierroError(f"--shared takes the models, demands and space from {shared}; drop {flags}")
        spec = load_shared(shared)
        reqs = spec.requests(shared.parent, calibration(calib))
        with _progress_bar(as_json) as progress:
            fleet = search_shared(reqs, names=spec.names, backend=be, progress=progress)
        if as_json:
            emit_json(shared_dict(fleet))
            return
        for t in shared_tables(fleet):
            out.print(t)
        return
    slos = parse_slos(slo or ["ttft_p99=1s", "tpot_p99=50ms"])
    if objective not in ("cost", "gpus", "goodput"):
        raise HierroError(f"unknown objective {objective!r}; use cost, gpus or goodput")
    dspec: dict[str, Any] = {"headroom": headroom}
    for k, v in (("qps", qps), ("tokens_per_day", tokens_per_day), ("curve_file", demand_curve),
                 ("peak_to_mean", peak_to_mean), ("peak_hour", peak_hour)):
        if v is not None:
            dspec[k] = v
    if qps is None and tokens_per_day is None and demand_curve is None:
        dspec["qps"] = _DEFAULT_QPS
    demand = demand_from(dspec, isl, osl, "demand options")
    budgets = _ints(token_budgets)
    space_kw: dict[str, Any] = {} if budgets is None else {"max_batched_tokens": budgets}
    req = SearchRequest(
        model=model, isl=isl, osl=osl, demand=demand, slos=slos,
        space=SearchSpace(
            gpus=_csv(gpus), weight_dtypes=_csv(dtypes), kv_dtypes=_csv(kv_dtypes),
            max_devices=max_gpus_per_replica, frameworks=_csv(framework), **space_kw,
        ),
        budget=Budget(max_gpus, max_usd_per_hour), objective=objective,  # type: ignore[arg-type]
        top=top, sim_top=sim_top, seed=seed, disagg=disagg, mixed_pools=mixed_pools, preset=preset,
        calib=calibration(calib),
    )
    with _progress_bar(as_json) as progress:
        res = search(req, be, progress)
    paths = write_frontiers(res, out_dir) if out_dir is not None else []
    if as_json:
        d = search_dict(res)
        d["files"] = [str(p) for p in paths]
        emit_json(d)
        return
    out.print(search_table(res))
    if req.demand.curve:
        out.print(curve_table(res))
    for p in paths:
        out.print(f"wrote {p}")


class _progress_bar:  # noqa: N801 - used as a context manager, like a function
    """A rich progress bar per stage, with ETA, on stderr (off with --json)."""

    def __init__(self, quiet: bool) -> None:
        self.bar = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=True, disable=quiet,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> Callable[[str, int, int], None]:
        self.bar.__enter__()

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in self.tasks:
                self.tasks[stage] = self.bar.add_task(stage, total=total)
            self.bar.update(self.tasks[stage], completed=done, total=total)

        return progress

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)
