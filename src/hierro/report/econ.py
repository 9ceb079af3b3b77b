"""Rendering TCO build-ups: a rich table with the source of every input, and a JSON-ready dict."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from hierro.econ import TcoBreakdown, TcoInputs
from hierro.units import KILO

__all__ = ["tco_dict", "tco_tables"]

_SKIP = {"gpu_id", "preset", "kind", "sources"}
_OWNED_ONLY = {
    "price_usd", "price_basis", "server_multiplier", "network_share", "storage_share",
    "dc_capex_usd_per_mw", "pue", "power_usd_per_kwh", "power_load_factor", "it_life_years",
    "dc_life_years", "wacc", "om_share_per_year", "build_time_years",
}


def _inputs(x: TcoInputs) -> list[tuple[str, Any, str]]:
    rows: list[tuple[str, Any, str]] = []
    for f in fields(TcoInputs):
        if f.name in _SKIP or (x.kind == "rented" and f.name in _OWNED_ONLY):
            continue
        if f.name == "server_multiplier" and x.price_basis == "server":
            continue  # not applied to a server-level price
        value = getattr(x, f.name)
        if value is None:
            continue
        rows.append((f.name, value, x.source(f.name)))
    return rows


def tco_dict(b: TcoBreakdown) -> dict[str, Any]:
    """Every figure of a TCO build-up; units in the key names."""
    x = b.inputs
    return {
        "gpu": x.gpu_id,
        "preset": x.preset,
        "kind": x.kind,
        "usd_per_gpu_hour": b.usd_per_gpu_hour,
        "components_usd_per_gpu_hour": dict(b.components()),
        "capex_usd_per_gpu": b.capex_usd,
        "it_capex_usd_per_gpu": b.it_capex_usd,
        "facility_capex_usd_per_gpu": b.facility_capex_usd,
        "it_kw_per_gpu": x.it_W / KILO,
        "all_in_kw_per_gpu": b.all_in_W / KILO,
        "semianalysis_tier_usd_per_gpu_hour": b.tier_usd_per_gpu_hour,
        "inputs": {name: {"value": value, "source": src} for name, value, src in _inputs(x)},
    }


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def tco_tables(b: TcoBreakdown) -> Group:
    """The $/GPU-hour build-up, then each input with its source."""
    x = b.inputs
    total = b.usd_per_gpu_hour
    head = Text(f"TCO of {x.gpu_id}, {x.preset} ({x.kind}): ${total:.3f} per busy GPU-hour", style="bold")
    t = Table(show_edge=False)
    t.add_column("component")
    t.add_column("$/GPU-h", justify="right")
    t.add_column("share", justify="right")
    for name, usd in b.components():
        t.add_row(name, f"{usd:.3f}", f"{usd / total:.0%}")
    t.add_row("[bold]total[/bold]", f"[bold]{total:.3f}[/bold]", "100%")
    parts: list[Any] = [head, t]
    notes = [
        f"utilisation {x.utilisation:.0%}; all-in power {b.all_in_W / KILO:.2f} kW per GPU",
    ]
    if x.kind == "owned":
        notes.append(
            f"capex per GPU ${b.capex_usd:,.0f} (IT ${b.it_capex_usd:,.0f}, facility ${b.facility_capex_usd:,.0f}); "
            f"recovered as an annuity at {x.wacc:.1%} over {x.it_life_years:g} y (IT) and {x.dc_life_years:g} y (facility)"
        )
    if b.tier_usd_per_gpu_hour is not None:
        ref = b.tier_usd_per_gpu_hour
        notes.append(f"SemiAnalysis {x.preset} tier: ${ref:.2f} ({(total - ref) / ref:+.0%} here)")
    parts.append(Text("\n".join(notes)))
    s = Table(title="inputs", title_justify="left", show_edge=False)
    s.add_column("input")
    s.add_column("value", justify="right")
    s.add_column("source")
    for name, value, src in _inputs(x):
        s.add_row(name, _fmt(value), escape(src))
    parts.append(s)
    return Group(*parts)
