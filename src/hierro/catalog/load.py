"""Reading the catalog: package data under ``hierro/catalog``, validated on first use.

Nothing is read at import time; each loader reads its folder once and caches the result.
``HIERRO_CATALOG`` may name an extra folder with ``gpus/``, ``systems/`` and ``models/``
subfolders whose files add to (or replace, by id) the bundled ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from hierro.catalog.schema import AcceleratorFile, ModelFile, SystemFile
from hierro.errors import CatalogError

__all__ = [
    "accelerator_files",
    "model_files",
    "read_yaml",
    "system_files",
    "validation_message",
]

T = TypeVar("T", bound=BaseModel)


def validation_message(err: ValidationError) -> str:
    """The first error of a pydantic validation, as ``field.path: message``."""
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return f"{where}: {first['msg']}"


def read_yaml(path: Path | Traversable) -> Any:
    """Parse one YAML file; a syntax error names the file."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise CatalogError(f"{path}{line}: not valid YAML ({getattr(err, 'problem', err)})") from None


def _folders(kind: str) -> Iterator[Path | Traversable]:
    yield files("hierro.catalog") / kind
    extra = os.environ.get("HIERRO_CATALOG")
    if extra:
        path = Path(extra) / kind
        if path.is_dir():
            yield path


def _load(kind: str, schema: type[T]) -> dict[str, T]:
    out: dict[str, T] = {}
    for folder in _folders(kind):
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if not entry.name.endswith((".yaml", ".yml")):
                continue
            raw = read_yaml(entry)
            try:
                item = schema.model_validate(raw)
            except ValidationError as err:
                raise CatalogError(f"{entry}: {validation_message(err)}") from None
            stem = entry.name.rsplit(".", 1)[0]
            item_id = getattr(item, "id")  # noqa: B009 - every catalog schema has an id
            if item_id != stem:
                raise CatalogError(f"{entry}: id {item_id!r} must match the file name {stem!r}")
            out[item_id] = item
    return out


@cache
def accelerator_files() -> dict[str, AcceleratorFile]:
    """Every accelerator in the catalog, by id."""
    return _load("gpus", AcceleratorFile)


@cache
def system_files() -> dict[str, SystemFile]:
    """Every system (node or rack) in the catalog, by id."""
    return _load("systems", SystemFile)


@cache
def model_files() -> dict[str, ModelFile]:
    """Every model in the catalog, by id."""
    return _load("models", ModelFile)
