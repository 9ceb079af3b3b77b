"""Importing a Hugging Face config.json, and the errors users see for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hierro.catalog import model_files
from hierro.errors import CatalogError, HierroError, PlanError, UnknownIdError
from hierro.specs import Plan, arch_from_hf_config, get_model

MODEL_IDS = sorted(model_files())


def _write_config(tmp_path: Path, config: dict[str, object], name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_config_json_file_imports_like_catalog(tmp_path: Path, model_id: str) -> None:
    path = _write_config(tmp_path, model_files()[model_id].config)
    from_file = get_model(str(path))
    from_catalog = get_model(model_id)
    assert from_file.params() == from_catalog.params()
    assert from_file.groups == from_catalog.groups
    assert from_file.kv_elems_per_token_full() == from_catalog.kv_elems_per_token_full()
    assert from_file.id == tmp_path.name  # a path's id is its folder's name


def test_config_folder_imports(tmp_path: Path) -> None:
    _write_config(tmp_path, model_files()["llama-3.1-8b"].config)
    assert get_model(str(tmp_path)).params().total == 8_030_261_248


def test_catalog_alias_and_hf_id_resolve() -> None:
    f = model_files()["llama-3.1-8b"]
    assert get_model(f.hf_id).params() == get_model("llama-3.1-8b").params()
    assert get_model(f.hf_id.upper()).params() == get_model("llama-3.1-8b").params()


def test_missing_hidden_size_names_the_field(tmp_path: Path) -> None:
    config = dict(model_files()["llama-3.1-8b"].config)
    del config["hidden_size"]
    path = _write_config(tmp_path, config)
    with pytest.raises(CatalogError, match="hidden_size") as info:
        get_model(str(path))
    assert str(path) in str(info.value)


def test_missing_layer_count_names_the_field() -> None:
    config = dict(model_files()["llama-3.1-8b"].config)
    del config["num_hidden_layers"]
    with pytest.raises(CatalogError, match="num_hidden_layers"):
        arch_from_hf_config(config, model_id="x")


def test_negative_field_is_rejected() -> None:
    config = dict(model_files()["llama-3.1-8b"].config)
    config["num_attention_heads"] = -4
    with pytest.raises(CatalogError, match="num_attention_heads"):
        arch_from_hf_config(config, model_id="x")


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{\n  "hidden_size": 4096,\n  "num_hidden_layers": 32,,\n}\n', encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        get_model(str(path))
    msg = str(info.value)
    assert str(path) in msg
    assert "line 3" in msg


def test_missing_json_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "config.json"
    with pytest.raises(CatalogError, match="no such file"):
        get_model(str(path))


def test_non_object_json_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("[1, 2, 3]", encoding="utf-8")
    with pytest.raises(CatalogError, match="JSON object"):
        get_model(str(path))


def test_unknown_model_suggests_closest() -> None:
    with pytest.raises(UnknownIdError) as info:
        get_model("llama-3.1-70")
    msg = str(info.value)
    assert "did you mean" in msg
    assert "llama-3.1-70b" in msg
    assert info.value.kind == "model"
    assert isinstance(info.value, HierroError)


def test_tp_not_dividing_heads_is_a_plan_error() -> None:
    with pytest.raises(PlanError, match="64") as info:
        Plan(tp=3).check(get_model("llama-3.1-70b"))
    assert "tp=3" in str(info.value)


def test_ep_beyond_experts_is_a_plan_error() -> None:
    mixtral = get_model("mixtral-8x7b")  # 8 experts, 32 heads
    with pytest.raises(PlanError, match="8 experts"):
        Plan(tp=16, ep=16).check(mixtral)
    with pytest.raises(PlanError):
        Plan(ep=16).check(mixtral)  # ep must also divide tp


def test_ep_on_dense_model_is_a_plan_error() -> None:
    with pytest.raises(PlanError, match="dense"):
        Plan(tp=8, ep=8).check(get_model("llama-3.1-70b"))


def test_valid_plans_pass() -> None:
    Plan(tp=8).check(get_model("llama-3.1-70b"))
    Plan(tp=8, ep=8).check(get_model("mixtral-8x7b"))
    Plan(tp=8, ep=8, dp_attention=True, weight_dtype="fp8").check(get_model("deepseek-r1"))


def test_repo_id_resolves_from_local_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ``org/name`` not in the catalog is read from the local Hugging Face cache, offline."""
    cfg = model_files()["qwen3-8b"].config
    snap = tmp_path / "models--acme--tiny-qwen" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps(cfg))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    arch = get_model("acme/tiny-qwen")
    assert arch.params().total == get_model("qwen3-8b").params().total
