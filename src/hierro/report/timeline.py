"""Rendering a plan's deployment timeline: a JSON-ready dict, a rich table of milestones and a
PNG chart (accelerators online by purpose, tokens/day, the month demand is met). No modelling."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.table import Table

from hierro.plan import PlanResult, Timeline
from hierro.units import KILO, MEGA, TERA

__all__ = ["milestones", "timeline_chart", "timeline_dict", "timeline_table"]

_MILESTONES = (0, 3, 6, 9, 12, 18, 24, 36, 48)


def timeline_dict(tl: Timeline) -> dict[str, Any]:
    return {
        "months": list(tl.months),
        "accelerators": list(tl.accelerators),
        "MW": list(tl.MW),
        "tokens_per_day": list(tl.tokens_per_day),
        "served_month": tl.served_month,
        "demand_met_month": dict(tl.demand_met),
        "training": [{"run": r, "start_month": a, "end_month": b} for r, a, b in tl.training],
        "by_purpose": {name: list(series) for name, series in tl.purposes},
        "site_MW_online": {name: list(series) for name, series in tl.site_MW},
        "sites": [
            {"site": name, "power_MW": b.power_W / MEGA, "construction_start_month": b.start_month,
             "first_power_month": b.first_power_month, "full_power_month": b.full_power_month,
             "build_MW_per_month": b.build_W_per_month / MEGA, "defaults": dict(b.sources)}
            for name, b in tl.build_outs
        ],
        "supply": [{"gpu": g, "first_month": r.first_month, "per_quarter": list(r.per_quarter)} for g, r in tl.ramps],
        "horizon_months": tl.horizon_months,
        "delivered": [{"model": name, "tokens": n, "peak_months": months} for name, n, months in tl.delivered],
        "tranches": [
            {"purpose": t.purpose, "instrument": t.label, "kind": t.kind, "gpu": t.gpu, "site": t.site,
             "accelerators": t.accelerators, "MW": t.MW, "first_month": t.first_month, "full_month": t.full_month,
             "end_month": t.end_month}
            for t in tl.tranches
        ],
    }


def milestones(tl: Timeline) -> list[int]:
    """Months worth a row: quarters of the first year, then yearly, plus the months demand is met
    and the last month."""
    marks = {m for m in _MILESTONES if m <= tl.months[-1]} | {tl.months[-1]}
    marks |= {m for _, m in tl.demand_met if m is not None}
    runs = {r for r, _, _ in tl.training}
    marks |= {math.ceil(tr.end_month - 1e-9) for tr in tl.tranches
              if tr.end_month is not None and tr.end_month < tl.months[-1] and tr.purpose not in runs}
    return sorted(marks)


def timeline_table(res: PlanResult) -> Table:
    tl = res.timeline
    sites = "; ".join(
        f"{name}: first power month {b.first_power_month:g}, full {b.full_power_month:.0f}" for name, b in tl.build_outs
    )
    t = Table(title=f"Deployment timeline (months after the round; {sites})", title_justify="left",
              header_style="bold")
    for i, c in enumerate(("month", "accelerators online", "MW online", "tokens/day (capacity)", "site MW energised",
                           "events")):
        t.add_column(c, justify="left" if i in (0, 5) else "right")
    events: dict[int, list[str]] = {}
    for name, m in tl.demand_met:
        if m is not None:
            events.setdefault(m, []).append(f"{name}: peak demand met")
    for run, a, b in tl.training:
        if a is not None and b is not None:
            events.setdefault(a, []).append(f"{run} starts (ends month {b:.1f})")
    ended: dict[int, set[str]] = {}
    runs = {r for r, _, _ in tl.training}
    for tr in tl.tranches:
        if tr.end_month is not None and tr.purpose not in runs and tr.end_month < tl.months[-1] + 1:
            ended.setdefault(math.ceil(tr.end_month - 1e-9), set()).add(tr.label)
    for m, labels in ended.items():
        events.setdefault(m, []).append(f"{', '.join(sorted(labels))}: term ends")
    for m in milestones(tl):
        t.add_row(str(m), f"{tl.accelerators[m]:,.0f}", f"{tl.MW[m]:,.0f}", f"{tl.tokens_per_day[m] / TERA:,.1f}T",
                  f"{sum(series[m] for _, series in tl.site_MW):,.0f}", "; ".join(events.get(m, [])))
    return t


def timeline_chart(res: PlanResult, path: Path, plt: Any, save: Any) -> Path:
    """timeline.png: accelerators online stacked by purpose, tokens/day on a second axis, and
    a line at the month every model's peak is met."""
    tl = res.timeline
    fig, ax = plt.subplots(figsize=(9, 4.5))
    xs = list(tl.months)
    ax.stackplot(xs, *[[v / KILO for v in series] for _, series in tl.purposes],
                 labels=[name for name, _ in tl.purposes], alpha=0.8)
    ax.set_xlabel("months after the round")
    ax.set_ylabel("accelerators online (thousands)")
    ax2 = ax.twinx()
    ax2.plot(xs, [v / TERA for v in tl.tokens_per_day], color="black", lw=1.5, label="tokens/day (capacity)")
    ax2.set_ylabel("tokens/day (trillions, at the SLO points)")
    ax.set_ylim(bottom=0)
    ax2.set_ylim(bottom=0)
    if tl.served_month is not None:
        ax.axvline(tl.served_month, color="red", ls="--", lw=1)
        ax.annotate(f"peak demand met: month {tl.served_month}", (tl.served_month, 0), xytext=(4, 8),
                    textcoords="offset points", fontsize=8, color="red")
    ax.set_title(f"Deployment timeline: {res.scenario.name}")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper left")
    save(fig, path)
    plt.close(fig)
    return path
