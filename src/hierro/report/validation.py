"""Rendering a :class:`~hierro.accuracy.ValidationResult`: error tables per metric and group."""

from __future__ import annotations

from rich.console import Group
from rich.markup import escape
from rich.table import Table

from hierro.accuracy import ErrorStats, ValidationResult

__all__ = ["validation_tables"]


def _pct(x: float) -> str:
    return "-" if x != x else f"{x:+.0%}" if x < 0 else f"{x:.0%}"


def _row(name: str, s: ErrorStats) -> list[str]:
    return [name, str(s.n), _pct(s.median_ape), _pct(s.p90_ape), f"{s.median_signed:+.0%}" if s.n else "-"]


def validation_tables(res: ValidationResult, *, breakdown: str = "hardware") -> Group:
    """Overall error per metric, the chosen breakdown, and the skip reasons."""
    summary = res.summary()
    head = Table(
        title=f"accuracy over {res.n_rows} unique rows (APE = |pred - meas| / meas; bias = median signed error)",
        title_justify="left",
    )
    for col in ("metric", "n", "median APE", "p90 APE", "bias"):
        head.add_column(col, justify="right" if col != "metric" else "left")
    for metric, s in summary.items():
        head.add_row(*_row(metric, s.overall))
    parts: list[Table | str] = [head]
    for metric, s in summary.items():
        groups = getattr(s, f"by_{breakdown}")
        if len(groups) < 2:
            continue
        t = Table(title=f"{metric} by {breakdown}", title_justify="left", show_edge=False)
        for col in (breakdown, "n", "median APE", "p90 APE", "bias"):
            t.add_column(col, justify="right" if col != breakdown else "left")
        for name, stats in groups.items():
            t.add_row(*_row(escape(name), stats))
        parts += ["", t]
    skips = Table(title="rows and metrics not predicted", title_justify="left", show_edge=False)
    skips.add_column("count", justify="right")
    skips.add_column("reason", overflow="fold")
    for reason, n in res.skip_counts().items():
        skips.add_row(str(n), escape(reason))
    parts += ["", skips]
    return Group(*parts)
