"""Resolving a model name: a catalog id or alias, a config.json path, or a cached HF repo."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from hierro.catalog import ModelFile, model_files
from hierro.errors import UnknownIdError
from hierro.specs.hf import arch_from_hf_config, find_hf_cache_config, read_config_json
from hierro.specs.model import ModelArch

__all__ = ["get_model", "model_file", "resolve_model_id"]


def _aliases() -> dict[str, str]:
    out: dict[str, str] = {}
    for mid, f in model_files().items():
        out[mid] = mid
        out[f.hf_id.lower()] = mid
        for a in f.aliases:
            out[a.lower()] = mid
    return out


def resolve_model_id(name: str) -> str | None:
    """The catalog id for a name, alias or HF repo id; None if not in the catalog."""
    return _aliases().get(name.lower())


def model_file(model_id: str) -> ModelFile:
    mid = resolve_model_id(model_id)
    if mid is None:
        raise UnknownIdError("model", model_id, model_files())
    return model_files()[mid]


@cache
def _catalog_arch(mid: str) -> ModelArch:
    f = model_files()[mid]
    return arch_from_hf_config(f.config, model_id=mid, name=f.name, where=f"catalog model {mid}")


def get_model(name: str) -> ModelArch:
    """A model architecture from a catalog id (or alias), a config.json path, or a repo id
    found in the local Hugging Face cache (no network)."""
    mid = resolve_model_id(name)
    if mid is not None:
        return _catalog_arch(mid)
    path = Path(name).expanduser()
    if path.is_dir():
        path = path / "config.json"
    if path.suffix == ".json" or path.exists():
        cfg = read_config_json(path)
        return arch_from_hf_config(cfg, model_id=path.parent.name or path.stem, where=str(path))
    if "/" in name:
        cached = find_hf_cache_config(name)
        if cached is not None:
            return arch_from_hf_config(read_config_json(cached), model_id=name, where=str(cached))
    raise UnknownIdError("model", name, model_files())
