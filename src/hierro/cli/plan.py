"""``hierro plan [SCENARIO.yaml]``: what a funding round buys, what its tokens cost, what binds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hierro.cli._shared import JsonOpt, emit_json, err_console, out
from hierro.plan import load_scenario, plan
from hierro.report.plan import plan_dict, plan_renderable, write_charts

__all__ = ["plan_cmd"]


def plan_cmd(
    scenario: Annotated[
        Path | None, typer.Argument(help="scenario YAML (default: the built-in 2026 round)", show_default=False)
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="override a scenario field, e.g. --set capital.invest_surplus=false "
                     "or --set models.0.demand.weekly_users=1e9 (repeatable)"),
    ] = None,
    charts: Annotated[
        Path | None, typer.Option(help="write capital.png, fleet.png, cost_latency.png and timeline.png into this directory")
    ] = None,
    show_assumptions: Annotated[bool, typer.Option("--assumptions/--no-assumptions",
                                                   help="list every sourced assumption")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Allocate a round across instruments, size the serving fleets within their SLOs, fund the
    training runs, and say which constraint binds (money, power, supply or latency)."""
    sc = load_scenario(scenario, overrides or [])
    with err_console.status("planning…", spinner="dots") as status:

        def progress(message: str) -> None:
            if not as_json:
                status.update(f"{message}…")

        res = plan(sc, progress)
    paths = write_charts(res, charts) if charts is not None else []
    if as_json:
        d = plan_dict(res)
        d["files"] = [str(p) for p in paths]
        emit_json(d)
        return
    out.print(plan_renderable(res, show_assumptions=show_assumptions))
    for p in paths:
        out.print(f"wrote {p}")
