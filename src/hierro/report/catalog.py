"""Rendering the catalogs: tables with sources, and JSON-ready lists."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from hierro.catalog import AcceleratorFile, ModelFile, SystemFile
from hierro.specs import ModelArch
from hierro.units import GB, GIB, TERA

__all__ = ["catalog_json", "gpus_table", "models_table", "systems_table"]


def _v(x: float | None, scale: float, fmt: str) -> str:
    return "-" if x is None else format(x / scale, fmt)


def gpus_table(items: list[AcceleratorFile]) -> Table:
    t = Table(title="accelerators (dense peaks)", title_justify="left")
    for col in ("id", "name", "family", "BF16 TF/s", "FP8 TF/s", "FP4 TF/s", "HBM GiB", "HBM TB/s",
                "scale-up GB/s", "TDP W", "source (BF16)"):
        t.add_column(col, overflow="fold")
    for f in items:
        pf = f.peak_flops
        peak = {d: _v(fig.value, TERA, ",.0f") for d, fig in pf.items()}
        t.add_row(
            f.id, f.name, f.family, peak.get("bf16", "-"), peak.get("fp8", "-"), peak.get("fp4", "-"),
            _v(f.hbm_bytes.value, GIB, ".0f"), _v(f.hbm_bw_Bps.value, 1e12, ".2f"),
            _v(f.scale_up_bw_Bps.value, GB, ",.0f"), _v(f.tdp_W.value, 1.0, ",.0f"),
            f"{pf['bf16'].source} ({pf['bf16'].as_of}, {pf['bf16'].quality})",
        )
    return t


def systems_table(items: list[SystemFile]) -> Table:
    t = Table(title="systems", title_justify="left")
    for col in ("id", "name", "accelerator", "per node", "scale-up domain", "node kW", "source"):
        t.add_column(col, overflow="fold")
    for f in items:
        t.add_row(f.id, f.name, f.accelerator, str(f.accelerators_per_node), str(f.scale_up_domain),
                  _v(f.node_power_W.value, 1e3, ".1f"), f"{f.source} ({f.as_of})")
    return t


def models_table(items: list[tuple[ModelFile, ModelArch]]) -> Table:
    t = Table(title="models", title_justify="left")
    for col in ("id", "layers", "attention", "experts", "total B", "active B", "published", "KV KB/token (bf16)", "source"):
        t.add_column(col, overflow="fold")
    for f, a in items:
        p = a.params()
        kinds = sorted({lay.attn.kind + ("+window" if lay.attn.window else "") for lay, _ in a.groups})
        moe = next((lay.mlp for lay, _ in a.groups if lay.mlp.kind == "moe"), None)
        experts = f"{moe.top_k}/{moe.n_experts}" if moe else "-"
        pub = f"{f.published_params.total / 1e9:,.1f} / {f.published_params.active / 1e9:,.1f}"
        t.add_row(
            f.id, str(a.n_layers), ", ".join(kinds), experts, f"{p.total / 1e9:,.1f}", f"{p.active / 1e9:,.1f}",
            pub, f"{a.kv_elems_per_token_full() * 2 / 1e3:,.1f}", f.published_params.source,
        )
    return t


def catalog_json(items: list[Any]) -> list[dict[str, Any]]:
    """Catalog files as JSON-ready dicts (the validated file contents)."""
    return [i.model_dump(mode="json") for i in items]
