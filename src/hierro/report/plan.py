"""Rendering a :class:`~hierro.plan.PlanResult`: rich tables, a JSON-ready dict, PNG charts
(matplotlib, Agg backend, imported only when plotting, written atomically). No modelling here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from hierro.econ import Margin
from hierro.errors import HierroError
from hierro.files import write_atomic
from hierro.plan import FleetLine, ModelPlan, PlanResult
from hierro.report.timeline import timeline_chart, timeline_dict, timeline_table

__all__ = ["assumptions", "plan_dict", "plan_renderable", "write_charts"]


def _b(usd: float) -> str:
    return f"${usd / 1e9:,.2f}B"


def _ms(s: float | None) -> str:
    return "-" if s is None else f"{s * 1e3:,.0f} ms"


def _mtok(x: float | None) -> str:
    return "-" if x is None else f"${x:,.3f}"


def _n(x: float) -> str:
    return f"{x:,.0f}"


def assumptions(res: PlanResult) -> list[tuple[str, str, str]]:
    """(field path, value, source) for every sourced figure of the scenario, in file order."""
    out: list[tuple[str, str, str]] = []

    def show(value: Any) -> str:
        return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for k, src in (node.get("sources") or {}).items():
                value = node.get(k)
                if value is None and k == "amount_usd" and "parts" in node:
                    value = sum(p.get("amount_usd", 0.0) for p in node["parts"])
                out.append((f"{path}{k}", show(value), src))
            for k, v in node.items():
                if k != "sources":
                    walk(v, f"{path}{k}.")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                label = (v.get("name") or v.get("label") or v.get("id")) if isinstance(v, dict) else None
                walk(v, f"{path}{label or i}.")

    walk(res.scenario.model_dump(), "")
    return out


def _line(f: FleetLine) -> dict[str, Any]:
    return {"gpu": f.gpu, "instrument": f.source, "site": f.site, "accelerators": f.accelerators, "usd": f.usd,
            "MW": f.MW, "usd_per_gpu_hour": f.usd_per_gpu_hour}


def _margin(x: Margin | None) -> dict[str, Any] | None:
    if x is None:
        return None
    return {"margin": x.margin, "input_margin": x.input_margin, "output_margin": x.output_margin,
            "revenue_usd_per_request": x.revenue_usd_per_request, "cost_usd_per_request": x.cost_usd_per_request}


def _model(m: ModelPlan) -> dict[str, Any]:
    api = None if m.api is None else {
        "model": m.api.model, "provider": m.api.provider, "input_usd_per_mtok": m.api.input_usd_per_mtok,
        "output_usd_per_mtok": m.api.output_usd_per_mtok, "as_of": str(m.api.as_of), "source": m.api.source}
    return {
        "name": m.name, "model": m.model_id, "isl": m.isl, "osl": m.osl,
        "mean_req_s": m.mean_req_s, "peak_req_s": m.peak_req_s, "peak_to_mean": m.peak_to_mean,
        "slos_s": dict(m.slos), "served_fraction": m.served_fraction, "accelerators": m.accelerators,
        "MW": m.MW, "usd": m.usd, "capacity_req_s": m.capacity_req_s,
        "utilisation_peak": m.utilisation_peak, "utilisation_mean": m.utilisation_mean,
        "ttft_p99_s": m.ttft_p99_s, "tpot_p99_s": m.tpot_p99_s,
        "usd_per_mtok_input": m.usd_per_mtok_input, "usd_per_mtok_output": m.usd_per_mtok_output,
        "fleet_usd_per_mtok_input": m.fleet_usd_per_mtok_input,
        "fleet_usd_per_mtok_output": m.fleet_usd_per_mtok_output, "fleet_usd_per_mtok": m.fleet_usd_per_mtok,
        "fleet": [_line(f) for f in m.fleet],
        "options": [
            {"gpu": o.gpu, "configuration": o.configuration, "plan": o.plan, "devices": o.devices,
             "concurrency": o.concurrency, "replicas": o.replicas, "accelerators": o.accelerators,
             "req_s_per_replica": o.req_s_per_replica, "out_tok_s_per_gpu": o.out_tok_s_per_gpu,
             "ttft_p99_s": o.ttft_p99_s, "tpot_p99_s": o.tpot_p99_s, "e2e_p99_s": o.e2e_p99_s,
             "simulated_replicas": o.simulated_replicas, "input_cost_share": o.input_cost_share,
             "ref_usd_per_mtok_output_only": o.ref_usd_per_mtok_output_only}
            for o in m.options
        ],
        "rejected": [{"gpu": g, "reason": r} for g, r in m.rejected],
        "binding": None if m.binding is None else m.binding.detail,
        "online_month": m.online_month,
        "peak_months": m.peak_months,
        "horizon_tokens": m.horizon_tokens,
        "horizon_usd_per_mtok": m.horizon_usd_per_mtok,
        "api_price": api,
        "margin_fleet_mean_load": _margin(m.margin),
        "margin_slo_point": _margin(m.margin_slo_point),
    }


def plan_dict(res: PlanResult) -> dict[str, Any]:
    """Everything the plan computed, units in the key names."""
    v = res.valuation
    return {
        "scenario": res.scenario.name,
        "horizon_years": res.horizon_years,
        "round_usd": res.round_usd,
        "spent_usd": res.spent_usd,
        "left_usd": res.left_usd,
        "accelerators": res.accelerators,
        "MW": res.MW,
        "owned_MW": res.owned_MW,
        "served_month": res.served_month,
        "horizon_tokens": res.horizon_tokens,
        "horizon_usd_per_mtok": res.horizon_usd_per_mtok,
        "steady_usd_per_mtok": res.steady_usd_per_mtok,
        "binding": {"constraint": res.binding.constraint, "scope": res.binding.scope, "detail": res.binding.detail},
        "bindings": [{"constraint": b.constraint, "scope": b.scope, "detail": b.detail} for b in res.bindings],
        "models": [_model(m) for m in res.models],
        "training": [
            {"name": t.name, "model": t.plan.model_id if t.plan else None, "gpu": t.gpu_id, "gpus": t.gpus,
             "wall_clock_days": t.wall_clock_days, "gpu_hours": t.gpu_hours, "funded_fraction": t.funded_fraction,
             "usd": t.usd, "MW": t.MW, "energy_MWh": t.energy_MWh, "mfu": t.plan.mfu if t.plan else None,
             "start_month": t.start_month, "end_month": t.end_month,
             "fleet": [_line(f) for f in t.fleet], "binding": None if t.binding is None else t.binding.detail}
            for t in res.training
        ],
        "growth": {"fleet": [_line(f) for f in res.growth], "accelerators": sum(f.accelerators for f in res.growth),
                   "MW": sum(f.MW for f in res.growth), "usd": sum(f.usd for f in res.growth),
                   "out_tok_s_first_model": res.growth_out_tok_s},
        "instruments": [
            {"label": i.label, "kind": i.kind, "investor": i.investor, "amount_usd": i.amount_usd,
             "spent_usd": i.spent_usd, "left_usd": i.left_usd, "accelerators": i.accelerators,
             "gpu_hours": i.gpu_hours, "MW": i.MW, "capex_usd": i.capex_usd,
             "usd_per_gpu_hour": i.usd_per_gpu_hour, "term_years": i.term_years, "peak_tok_s": i.peak_tok_s,
             "peak_out_tok_s": i.peak_out_tok_s, "tokens_per_day": i.tokens_per_day, "usd_per_mtok": i.usd_per_mtok,
             "horizon_tokens": i.horizon_tokens,
             "first_online_month": i.first_online_month, "full_online_month": i.full_online_month}
            for i in res.instruments
        ],
        "sites": [{"site": s.label, "power_MW": s.power_MW, "used_MW": s.used_MW, "usd_per_kwh": s.usd_per_kwh,
                   "pue": s.pue} for s in res.sites],
        "supply": [{"gpu": s.gpu, "cap": s.cap, "used": s.used} for s in res.supply],
        "valuation": {
            "pre_money_usd": v.pre_money_usd, "new_money_usd": v.new_money_usd, "post_money_usd": v.post_money_usd,
            "stakes": dict(v.stakes), "dilution": v.dilution,
            "reported_post_money_usd": res.scenario.valuation.reported_post_money_usd,
            "implied_pre_money_usd": res.implied_pre_money_usd,
        },
        "timeline": timeline_dict(res.timeline),
        "assumptions": [{"field": f, "value": val, "source": s} for f, val, s in assumptions(res)],
        "elapsed_s": res.elapsed_s,
    }


def _table(title: str, *cols: str) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold")
    for i, c in enumerate(cols):
        t.add_column(c, justify="left" if i == 0 else "right")
    return t


def plan_renderable(res: PlanResult, *, show_assumptions: bool = True) -> Group:
    """The terminal report."""
    parts: list[Any] = []
    sc = res.scenario
    parts.append(Panel(
        f"[bold]{sc.name}[/]\n{sc.description}\n"
        f"round {_b(res.round_usd)} over {res.horizon_years:g} years: spent {_b(res.spent_usd)}, left "
        f"{_b(res.left_usd)}; {_n(res.accelerators)} accelerators, {res.MW:,.0f} MW all-in "
        f"({res.owned_MW:,.0f} MW owned on the sites)\n{_served(res)}",
        title="hierro plan", expand=False,
    ))
    colour = {"money": "yellow", "power": "red", "supply": "magenta", "latency": "cyan", "deadline": "cyan"}
    parts.append(Panel(res.binding.detail, title=f"binds: [bold]{res.binding.constraint}[/]",
                       border_style=colour.get(res.binding.constraint, "green"), expand=False))
    others = [b for b in res.bindings if b is not res.binding]
    if others:
        parts.append("\n".join(f"  also: {b.detail}" for b in others))

    t = _table("Serving at peak", "model", "req/s mean/peak", "served", "fleet", "MW",
               "$/Mtok in/out (SLO point)", "$/Mtok in/out (fleet, mean load)", "TTFT p99", "TPOT p99",
               "util peak/mean")
    for m in res.models:
        fleet = ", ".join(f"{_n(n)} {g}" for g, n in _by_gpu(m.fleet).items()) or "-"
        slo = dict(m.slos)
        t.add_row(
            f"{m.name}\n[dim]{m.model_id} {m.isl}/{m.osl} tok[/]", f"{m.mean_req_s:,.0f}/{m.peak_req_s:,.0f}",
            f"{m.served_fraction:.0%}", fleet, f"{m.MW:,.1f}",
            f"{_mtok(m.usd_per_mtok_input)}/{_mtok(m.usd_per_mtok_output)}",
            f"{_mtok(m.fleet_usd_per_mtok_input)}/{_mtok(m.fleet_usd_per_mtok_output)}",
            f"{_ms(m.ttft_p99_s)}\n[dim]≤ {_ms(slo.get('ttft_p99'))}[/]",
            f"{_ms(m.tpot_p99_s)}\n[dim]≤ {_ms(slo.get('tpot_p99'))}[/]",
            f"{m.utilisation_peak:.0%}/{m.utilisation_mean:.0%}",
        )
    parts.append(t)

    t = _table(f"Tokens over the {res.horizon_years:g}-year horizon (paid for only while online: owned from the month "
               "it comes online, rented within its term) next to the steady state", "model", "peak carried",
               "tokens delivered", "paid", "$/Mtok over the horizon", "$/Mtok steady state (fleet, mean load)")
    for m in res.models:
        t.add_row(m.name, f"{m.peak_months:,.1f} of {res.timeline.horizon_months:g} months",
                  f"{m.horizon_tokens / 1e15:,.2f}P", _b(m.usd), _mtok(m.horizon_usd_per_mtok),
                  _mtok(m.fleet_usd_per_mtok))
    t.add_row("[bold]all models[/]", "", f"{res.horizon_tokens / 1e15:,.2f}P", _b(sum(m.usd for m in res.models)),
              _mtok(res.horizon_usd_per_mtok), _mtok(res.steady_usd_per_mtok))
    parts.append(t)

    t = _table("Configurations searched (cheapest per accelerator; p99 simulated on a slice at peak load)",
               "model", "accelerator", "configuration", "replicas", "accelerators", "out tok/s/GPU", "TTFT p99",
               "TPOT p99")
    for m in res.models:
        for o in m.options:
            t.add_row(m.name, o.gpu, o.configuration, _n(o.replicas), _n(o.accelerators), _n(o.out_tok_s_per_gpu),
                      _ms(o.ttft_p99_s), _ms(o.tpot_p99_s))
        for g, why in m.rejected:
            t.add_row(m.name, g, f"[red]{why}[/]", "-", "-", "-", "-", "-")
    parts.append(t)

    if res.training:
        t = _table("Training", "run", "cluster", "days", "months", "GPU-hours", "funded", "cost", "MW", "MWh", "MFU")
        for r in res.training:
            t.add_row(r.name + (f"\n[dim]{r.plan.model_id}, {r.plan.tokens:.3g} tokens[/]" if r.plan else ""),
                      f"{_n(r.gpus)} {r.gpu_id}", f"{r.wall_clock_days:,.1f}",
                      "-" if r.start_month is None or r.end_month is None else f"{r.start_month}-{r.end_month:.1f}",
                      f"{r.gpu_hours / 1e6:,.2f}M",
                      f"{r.funded_fraction:.0%}", _b(r.usd), f"{r.MW:,.1f}", _n(r.energy_MWh),
                      f"{r.plan.mfu:.0%}" if r.plan else "-")
        parts.append(t)

    if res.growth:
        served = next((m.name for m in res.models if m.options), None)
        extra = (f"; {res.growth_out_tok_s / 1e6:,.1f}M output tok/s if it served {served}"
                 if served and res.growth_out_tok_s > 0 else "")
        t = _table(f"Growth pool (what serving and training leave{extra})",
                   "accelerator", "instrument", "site", "accelerators", "$/GPU-h", "cost", "MW")
        for f in res.growth:
            t.add_row(f.gpu, f.source, f.site or "(provider's)", _n(f.accelerators), f"${f.usd_per_gpu_hour:.2f}",
                      _b(f.usd), f"{f.MW:,.0f}")
        parts.append(t)

    t = _table("Capital by instrument", "instrument", "investor", "amount", "spent", "left", "accelerators",
               "$/GPU-h", "capex")
    for i in res.instruments:
        t.add_row(i.label, i.investor or "-", _b(i.amount_usd), _b(i.spent_usd), _b(i.left_usd),
                  _n(i.accelerators), "-" if i.usd_per_gpu_hour is None else f"${i.usd_per_gpu_hour:.2f}",
                  _b(i.capex_usd))
    parts.append(t)

    t = _table("What each instrument buys (tokens at the SLO point of what its accelerators serve; "
               "growth pool at the first model's; over the hours paid within the horizon)", "instrument", "GPU-hours",
               "MW", "peak tok/s", "tokens/day", "tokens", "$/Mtok", "online (first-all)", "term")
    for i in res.instruments:
        t.add_row(i.label, f"{i.gpu_hours / 1e9:,.2f}B", f"{i.MW:,.0f}", f"{i.peak_tok_s / 1e6:,.1f}M",
                  f"{i.tokens_per_day / 1e12:,.1f}T", f"{i.horizon_tokens / 1e15:,.1f}P", _mtok(i.usd_per_mtok),
                  _months(i.first_online_month, i.full_online_month),
                  "owned" if i.kind == "cash_equity" else f"{i.term_years:g} y")
    parts.append(t)

    priced = [m for m in res.models if m.api is not None]
    if priced:
        t = _table("Margin against a dated public API price (revenue at its list price per request of the model's "
                   "shape; cost of the fleet at mean load, and at the SLO point)", "model", "compared with",
                   "API $/Mtok in/out", "cost $/Mtok in/out", "margin (fleet)", "margin (SLO point)")
        for m in priced:
            assert m.api is not None
            t.add_row(m.name, f"{m.api.model} ({m.api.provider}, {m.api.as_of})",
                      f"${m.api.input_usd_per_mtok:g}/${m.api.output_usd_per_mtok:g}",
                      f"{_mtok(m.fleet_usd_per_mtok_input)}/{_mtok(m.fleet_usd_per_mtok_output)}",
                      _pct(m.margin), _pct(m.margin_slo_point))
        parts.append(t)

    parts.append(timeline_table(res))

    t = _table("Power and supply", "limit", "available", "used")
    for s in res.sites:
        t.add_row(f"site {s.label}", f"{s.power_MW:,.0f} MW", f"{s.used_MW:,.0f} MW")
    for u in res.supply:
        t.add_row(f"supply {u.gpu}", "no cap" if u.cap is None else _n(u.cap), _n(u.used))
    parts.append(t)

    v = res.valuation
    t = _table("Valuation", "item", "value")
    t.add_row("pre-money", _b(v.pre_money_usd))
    t.add_row("new money", _b(v.new_money_usd))
    t.add_row("post-money = pre + new", _b(v.post_money_usd))
    for who, stake in v.stakes:
        t.add_row(f"stake: {who}", f"{stake:.2%}")
    t.add_row("dilution of existing holders", f"{v.dilution:.2%}")
    rep = res.scenario.valuation.reported_post_money_usd
    if rep is not None and res.implied_pre_money_usd is not None:
        t.add_row("reported post-money", f"{_b(rep)} (implies pre-money {_b(res.implied_pre_money_usd)})")
    parts.append(t)

    if show_assumptions:
        t = _table("Assumptions and sources (override with --set PATH=VALUE)", "field", "value", "source")
        for c in t.columns:
            c.justify = "left"
            c.overflow = "fold"
        for field, val, src in assumptions(res):
            t.add_row(field, val, src)
        parts.append(t)
    parts.append(f"[dim]planned in {res.elapsed_s:.1f} s[/]")
    return Group(*parts)


def _served(res: PlanResult) -> str:
    m = res.served_month
    if m is None:
        return "[bold]peak demand is never fully met[/] (see what binds)"
    return f"peak demand of every model first met in month {m} after the round"


def _months(first: int | None, full: int | None) -> str:
    return f"{'-' if first is None else first}-{'-' if full is None else full}"


def _pct(x: Margin | None) -> str:
    return "-" if x is None else f"{x.margin:.0%}"


def _by_gpu(lines: tuple[FleetLine, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    for f in lines:
        out[f.gpu] = out.get(f.gpu, 0.0) + f.accelerators
    return out


def _purposes(res: PlanResult) -> list[tuple[str, tuple[FleetLine, ...]]]:
    return ([(m.name, m.fleet) for m in res.models] + [(t.name, t.fleet) for t in res.training]
            + [("growth pool", res.growth)])


def _save(fig: Any, path: Path) -> None:
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120, bbox_inches="tight"))


def write_charts(res: PlanResult, out_dir: Path) -> list[Path]:
    """capital.png (spend by instrument and purpose), fleet.png (accelerators by kind and purpose),
    cost_latency.png ($/Mtok output vs TPOT p99 per configuration), timeline.png (capacity online
    by month)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise HierroError("charts need matplotlib: pip install 'hierro[plot]'") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    purposes = _purposes(res)

    fig, ax = plt.subplots(figsize=(9, 4.5))
    labels = [i.label for i in res.instruments]
    bottom = [0.0] * len(labels)
    for name, lines in purposes:
        vals = [sum(f.usd for f in lines if f.source == lab) / 1e9 for lab in labels]
        ax.barh(labels, vals, left=bottom, label=name)
        bottom = [a + b for a, b in zip(bottom, vals, strict=True)]
    ax.barh(labels, [i.left_usd / 1e9 for i in res.instruments], left=bottom, label="left", color="lightgrey")
    ax.set_xlabel("USD billions")
    ax.set_title(f"Capital allocation: {res.scenario.name}")
    ax.legend(fontsize=8)
    path = out_dir / "capital.png"
    _save(fig, path)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(8, 4.5))
    gpus = [a.id for a in res.scenario.accelerators]
    bottom = [0.0] * len(gpus)
    for name, lines in purposes:
        by = _by_gpu(lines)
        vals = [by.get(g, 0.0) / 1e3 for g in gpus]
        ax.bar(gpus, vals, bottom=bottom, label=name)
        bottom = [a + b for a, b in zip(bottom, vals, strict=True)]
    ax.set_ylabel("accelerators (thousands)")
    ax.set_title("Fleet by accelerator")
    ax.legend(fontsize=8)
    path = out_dir / "fleet.png"
    _save(fig, path)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for m in res.models:
        xs = [o.tpot_p99_s * 1e3 for o in m.options]
        ys = [o.ref_usd_per_mtok_output_only for o in m.options]
        ax.scatter(xs, ys, label=m.name)
        for o, x, y in zip(m.options, xs, ys, strict=True):
            ax.annotate(o.gpu, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("TPOT p99 at peak (ms, simulated)")
    ax.set_ylabel("$/Mtok output (owned, hyperscaler TCO)")
    ax.set_title("$/Mtok vs latency, cheapest configuration per accelerator")
    ax.legend(fontsize=8)
    path = out_dir / "cost_latency.png"
    _save(fig, path)
    plt.close(fig)
    written.append(path)
    written.append(timeline_chart(res, out_dir / "timeline.png", plt, _save))
    return written
