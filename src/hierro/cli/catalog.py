"""``hierro catalog``: the accelerators, systems and models hierro knows, with sources."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from hierro.catalog import accelerator_files, model_files, system_files
from hierro.cli._shared import JsonOpt, emit_json, out
from hierro.report import catalog_json, gpus_table, models_table, systems_table
from hierro.specs import get_model

__all__ = ["catalog_cmd"]


class CatalogKind(StrEnum):
    gpus = "gpus"
    systems = "systems"
    models = "models"


def catalog_cmd(
    kind: Annotated[CatalogKind, typer.Argument(help="gpus, systems or models")],
    as_json: JsonOpt = False,
) -> None:
    """List the accelerators, systems or models hierro knows, with sources."""
    if kind is CatalogKind.gpus:
        gpus = list(accelerator_files().values())
        emit_json(catalog_json(gpus)) if as_json else out.print(gpus_table(gpus))
    elif kind is CatalogKind.systems:
        systems = list(system_files().values())
        emit_json(catalog_json(systems)) if as_json else out.print(systems_table(systems))
    else:
        models = list(model_files().values())
        if as_json:
            rows = catalog_json(models)
            for row, f in zip(rows, models, strict=True):
                p = get_model(f.id).params()
                row["computed_params"] = {"total": p.total, "active": p.active}
            emit_json(rows)
        else:
            out.print(models_table([(f, get_model(f.id)) for f in models]))
