"""``hierro search``: the cheapest serving configuration for a demand and latency SLOs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
from hierro.report.search import search_dict, search_table, write_frontiers
from hierro.search import (
    Budget,
    Demand,
    SearchRequest,
    SearchSpace,
    make_backend,
    parse_slos,
    search,
)

__all__ = ["search_cmd"]


def _csv(text: str | None) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip()) if text else ()


def search_cmd(
    model: ModelOpt = "llama-3.1-70b",
    isl: Annotated[int, typer.Option(help="input tokens per request")] = 2048,
    osl: Annotated[int, typer.Option(help="output tokens per request")] = 512,
    qps: Annotated[float, typer.Option(help="peak demand, requests/s")] = 10.0,
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
    top: Annotated[int, typer.Option(help="rows of the table")] = 10,
    sim_top: Annotated[int, typer.Option(help="candidates simulated per round")] = 20,
    preset: Annotated[str | None, typer.Option(help="economics preset for $/GPU-hour (`hierro tco`)")] = None,
    backend: Annotated[str, typer.Option(help="serial, local (all cores) or ray")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster address (with --backend ray)")] = None,
    disagg: Annotated[
        bool, typer.Option("--disagg/--no-disagg", help="also search disaggregated prefill/decode fleets")
    ] = False,
    seed: Annotated[int, typer.Option(help="seed of the simulated arrivals")] = 0,
    out_dir: Annotated[Path | None, typer.Option(help="write frontier CSVs and PNGs here")] = None,
    calib: CalibOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search accelerators, precisions and layouts for the cheapest fleet within the SLOs."""
    slos = parse_slos(slo or ["ttft_p99=1s", "tpot_p99=50ms"])
    if objective not in ("cost", "gpus", "goodput"):
        raise HierroError(f"unknown objective {objective!r}; use cost, gpus or goodput")
    req = SearchRequest(
        model=model, isl=isl, osl=osl, demand=Demand(qps, headroom), slos=slos,
        space=SearchSpace(
            gpus=_csv(gpus), weight_dtypes=_csv(dtypes), kv_dtypes=_csv(kv_dtypes),
            max_devices=max_gpus_per_replica, frameworks=_csv(framework),
        ),
        budget=Budget(max_gpus, max_usd_per_hour), objective=objective,  # type: ignore[arg-type]
        top=top, sim_top=sim_top, seed=seed, disagg=disagg, preset=preset, calib=calibration(calib),
    )
    be = make_backend(backend, address)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=True,
        disable=as_json,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        res = search(req, be, progress)
    paths = write_frontiers(res, out_dir) if out_dir is not None else []
    if as_json:
        d = search_dict(res)
        d["files"] = [str(p) for p in paths]
        emit_json(d)
        return
    out.print(search_table(res))
    for p in paths:
        out.print(f"wrote {p}")
