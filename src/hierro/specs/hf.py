"""Import a Hugging Face ``config.json`` into a :class:`~hierro.specs.model.ModelArch`.

Reads the architecture from the keys themselves rather than from ``model_type``, so families
that share a layout (Llama, Mistral, Qwen, DeepSeek, Kimi, GLM, gpt-oss, MiniMax) import the
same way. Multimodal configs use their ``text_config``. No network: a path or a dict.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hierro.errors import CatalogError
from hierro.specs.model import Attention, Layer, Mlp, ModelArch

__all__ = ["arch_from_hf_config", "find_hf_cache_config", "read_config_json"]


class _Cfg:
    """Typed access to config keys; a missing required key names itself."""

    def __init__(self, raw: Mapping[str, Any], where: str) -> None:
        self.raw = raw
        self.where = where

    def has(self, *keys: str) -> bool:
        return any(self.raw.get(k) is not None for k in keys)

    def int(self, *keys: str, default: int | None = None) -> int:
        for k in keys:
            v = self.raw.get(k)
            if v is not None:
                if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                    raise CatalogError(f"{self.where}: field {k!r} must be a non-negative integer, got {v!r}")
                return int(v)
        if default is not None:
            return default
        raise CatalogError(
            f"{self.where}: cannot express this architecture, missing field {' or '.join(map(repr, keys))}"
        )

    def bool(self, key: str, default: bool = False) -> bool:
        v = self.raw.get(key, default)
        return bool(v) if v is not None else default


def read_config_json(path: str | Path) -> dict[str, Any]:
    """Read a config.json; a syntax error names the file and line."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"{p}: no such file") from None
    except json.JSONDecodeError as err:
        raise CatalogError(f"{p} line {err.lineno}: not valid JSON ({err.msg})") from None
    if not isinstance(data, dict):
        raise CatalogError(f"{p}: a config.json must hold a JSON object")
    return data


def find_hf_cache_config(repo_id: str) -> Path | None:
    """The newest cached ``config.json`` of ``org/name`` in the local Hugging Face cache."""
    home = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub")
    snapshots = home / ("models--" + repo_id.replace("/", "--")) / "snapshots"
    if not snapshots.is_dir():
        return None
    found = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def _layer_types(c: _Cfg, n_layers: int) -> list[str]:
    types = c.raw.get("layer_types")
    if isinstance(types, list) and types:
        if len(types) != n_layers:
            raise CatalogError(f"{c.where}: layer_types has {len(types)} entries for {n_layers} layers")
        return [str(t) for t in types]
    if c.has("attention_chunk_size"):
        # Llama 4: every 4th layer is a global NoPE layer, the others chunked local attention
        # (transformers Llama4TextConfig default no_rope_layers).
        nope = c.raw.get("no_rope_layers")
        if isinstance(nope, list) and len(nope) == n_layers:
            return ["chunked_attention" if r else "full_attention" for r in nope]
        return ["full_attention" if (i + 1) % 4 == 0 else "chunked_attention" for i in range(n_layers)]
    if c.has("full_attention_interval"):
        k = c.int("full_attention_interval")
        return ["full_attention" if (i + 1) % k == 0 else "linear_attention" for i in range(n_layers)]
    sw = c.raw.get("sliding_window")
    if sw and c.bool("use_sliding_window", default=c.raw.get("model_type") in {"mistral", "mixtral"}):
        max_window_layers = c.int("max_window_layers", default=n_layers)
        return ["sliding_attention" if i < max_window_layers else "full_attention" for i in range(n_layers)]
    return ["full_attention"] * n_layers


def _attention(c: _Cfg, kind: str, hidden: int) -> Attention:
    H = c.int("num_attention_heads", "n_head", "num_heads")
    if kind == "linear_attention":
        return Attention(
            kind="linear",
            n_heads=H,
            n_kv_heads=c.int("linear_num_value_heads"),
            head_dim_qk=c.int("linear_key_head_dim"),
            head_dim_v=c.int("linear_value_head_dim"),
            lin_key_heads=c.int("linear_num_key_heads"),
            lin_key_dim=c.int("linear_key_head_dim"),
            lin_value_heads=c.int("linear_num_value_heads"),
            lin_value_dim=c.int("linear_value_head_dim"),
            conv_kernel=c.int("linear_conv_kernel_dim", default=4),
        )
    window: int | None = None
    if kind == "sliding_attention":
        window = c.int("sliding_window")
    elif kind == "chunked_attention":
        window = c.int("attention_chunk_size")
    elif kind != "full_attention":
        raise CatalogError(f"{c.where}: unknown layer type {kind!r} in layer_types")
    if c.has("kv_lora_rank"):
        rope = c.int("qk_rope_head_dim")
        nope = c.int("qk_nope_head_dim")
        return Attention(
            kind="mla",
            n_heads=H,
            n_kv_heads=H,
            head_dim_qk=nope + rope,
            head_dim_v=c.int("v_head_dim"),
            window=window,
            q_lora_rank=c.int("q_lora_rank", default=0),
            kv_lora_rank=c.int("kv_lora_rank"),
            rope_dim=rope,
            indexer_heads=c.int("index_n_heads", default=0),
            indexer_dim=c.int("index_head_dim", default=0),
            indexer_topk=c.int("index_topk", default=0),
        )
    head_dim = c.int("head_dim", default=0) or hidden // H
    bias = c.bool("attention_bias") or c.bool("bias")
    qkv_bias = bias or c.raw.get("model_type") in {"qwen2", "qwen2_moe"}
    return Attention(
        kind="gqa",
        n_heads=H,
        n_kv_heads=c.int("num_key_value_heads", "num_kv_heads", default=H),
        head_dim_qk=head_dim,
        head_dim_v=head_dim,
        window=window,
        qkv_bias=qkv_bias,
        o_bias=bias,
        qk_norm=c.bool("use_qk_norm") or str(c.raw.get("model_type", "")).startswith("qwen3"),
        output_gate=c.bool("attn_output_gate"),
        sinks=c.raw.get("model_type") == "gpt_oss",
    )


def _moe_layer_indices(c: _Cfg, n_layers: int) -> set[int]:
    if c.has("first_k_dense_replace"):
        k = c.int("first_k_dense_replace")
        freq = c.int("moe_layer_freq", default=1) or 1
        return {i for i in range(k, n_layers) if i % freq == 0}
    if c.has("interleave_moe_layer_step"):
        step = c.int("interleave_moe_layer_step") or 1
        return set(range(step - 1, n_layers, step))
    dense_only = set(c.raw.get("mlp_only_layers") or [])
    step = c.int("decoder_sparse_step", default=1) or 1
    return {i for i in range(n_layers) if i not in dense_only and (i + 1) % step == 0}


def _mlps(c: _Cfg, hidden: int) -> tuple[Mlp | None, Mlp]:
    """(MoE block or None, dense block)."""
    n_exp = c.int("n_routed_experts", "num_local_experts", "num_experts", default=0)
    model_type = str(c.raw.get("model_type", ""))
    dense_width = c.int("intermediate_size_mlp", "intermediate_size", "ffn_dim", default=0)
    dense = Mlp(kind="dense", intermediate=dense_width, bias=c.bool("mlp_bias"))
    if n_exp <= 1:
        if not dense_width:
            raise CatalogError(f"{c.where}: cannot express this architecture, missing field 'intermediate_size'")
        return None, dense
    width = c.int("moe_intermediate_size", default=0) or c.int("intermediate_size")
    if c.has("n_shared_experts"):
        shared = c.int("n_shared_experts") * width
    elif c.has("shared_expert_intermediate_size"):
        shared = c.int("shared_expert_intermediate_size")
    elif c.has("shared_intermediate_size"):
        shared = c.int("shared_intermediate_size")
    elif model_type.startswith("llama4"):
        shared = c.int("intermediate_size")  # Llama 4: one shared expert of the expert width
    else:
        shared = 0
    moe = Mlp(
        kind="moe",
        intermediate=width,
        n_experts=n_exp,
        top_k=c.int("num_experts_per_tok", "experts_per_token", "moe_top_k"),
        shared_intermediate=shared,
        bias=model_type == "gpt_oss",
        router_bias=model_type == "gpt_oss",
        shared_gate=c.has("shared_expert_intermediate_size"),
    )
    return moe, dense


def arch_from_hf_config(
    config: Mapping[str, Any], *, model_id: str, name: str = "", where: str = ""
) -> ModelArch:
    """Build a :class:`ModelArch` from a Hugging Face config dict.

    Raises :class:`~hierro.errors.CatalogError` naming the missing or malformed field when the
    config does not describe a decoder-only transformer that hierro can express.
    """
    where = where or model_id
    text = config.get("text_config")
    raw: Mapping[str, Any] = text if isinstance(text, Mapping) and text.get("hidden_size") else config
    c = _Cfg(raw, where)
    if not c.has("hidden_size", "n_embd", "d_model"):
        raise CatalogError(f"{where}: cannot express this architecture, missing field 'hidden_size'")
    hidden = c.int("hidden_size", "n_embd", "d_model")
    n_layers = c.int("num_hidden_layers", "n_layer", "num_layers")
    vocab = c.int("vocab_size")
    if hidden == 0 or n_layers == 0 or vocab == 0:
        raise CatalogError(f"{where}: hidden_size, num_hidden_layers and vocab_size must be positive")
    types = _layer_types(c, n_layers)
    moe, dense = _mlps(c, hidden)
    moe_at = _moe_layer_indices(c, n_layers) if moe is not None else set()
    if moe is not None and not moe_at:
        raise CatalogError(f"{where}: an MoE config with no MoE layer (check first_k_dense_replace)")
    if moe is not None and len(moe_at) < n_layers and not dense.intermediate:
        raise CatalogError(f"{where}: dense layers need 'intermediate_size'")
    layers: list[Layer] = []
    for i, kind in enumerate(types):
        mlp = moe if (moe is not None and i in moe_at) else dense
        layers.append(Layer(attn=_attention(c, kind, hidden), mlp=mlp))
    groups: list[tuple[Layer, int]] = []
    for layer in layers:
        if groups and groups[-1][0] == layer:
            groups[-1] = (layer, groups[-1][1] + 1)
        else:
            groups.append((layer, 1))
    mtp = c.int("num_nextn_predict_layers", "mtp_num_hidden_layers", default=0)
    if not mtp and c.bool("use_mtp"):
        mtp = c.int("num_mtp_modules", default=1)
    tied = config.get("tie_word_embeddings", raw.get("tie_word_embeddings", False))
    return ModelArch(
        id=model_id,
        name=name or model_id,
        hidden=hidden,
        vocab=vocab,
        groups=tuple(groups),
        tied_embeddings=bool(tied),
        mtp_layers=mtp,
        max_context=c.int("max_position_embeddings", "n_positions", default=0),
    )
