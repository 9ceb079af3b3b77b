"""A parallel plan: how one model instance (a replica) is laid out over accelerators.

Conventions follow the serving launchers (vLLM, SGLang, TensorRT-LLM) and the measurement
schema: ``tp`` is the number of GPUs per pipeline stage. Attention is tensor-parallel over them,
or data-parallel when ``dp_attention`` is set (each rank runs attention for its own sequences,
DeepSeek-style). MoE experts are split over ``ep`` ranks, and each expert is further sharded
over ``tp / ep`` ranks (TensorRT-LLM's moe_tp x moe_ep = tp). ``pp`` pipeline stages split the
layers.
"""

from __future__ import annotations

from dataclasses import dataclass

from hierro.errors import PlanError
from hierro.specs.model import ModelArch
from hierro.units import DTYPE_BYTES

__all__ = ["WEIGHT_BYTES", "Plan", "weight_bytes_per_param"]


# Bytes per weight element including its quantisation scales.
# fp8: per-tensor or 128x128 fp32 block scales (DeepSeek-V3 report, section 3.3.2): 4 B / 16384.
# fp4: NVFP4, one E4M3 scale per 16 elements (NVIDIA TensorRT Model Optimizer docs; also the
#      OCP MX spec's MXFP4 uses one E8M0 per 32, i.e. 0.53 B): 0.5 + 1/16.
# int4: group-wise (AWQ, arXiv:2306.00978; GPTQ) group 128 with an fp16 scale and a 4-bit zero.
# int8: per-channel scales, negligible.
WEIGHT_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0 + 4.0 / (128 * 128),
    "int8": 1.0,
    "fp4": 0.5 + 1.0 / 16,
    "int4": 0.5 + (2.0 + 0.5) / 128,
}


def weight_bytes_per_param(dtype: str) -> float:
    try:
        return WEIGHT_BYTES[dtype]
    except KeyError:
        raise PlanError(f"unknown weight dtype {dtype!r}; use one of {', '.join(WEIGHT_BYTES)}") from None


@dataclass(frozen=True, slots=True)
class Plan:
    """Parallel layout and numeric formats of one model instance."""

    tp: int = 1
    pp: int = 1
    ep: int = 1
    dp_attention: bool = False
    weight_dtype: str = "bf16"
    kv_dtype: str = "bf16"
    act_dtype: str = "bf16"

    @property
    def devices(self) -> int:
        """Accelerators one instance occupies."""
        return self.tp * self.pp

    @property
    def attn_tp(self) -> int:
        """Tensor-parallel degree of attention (1 under data-parallel attention)."""
        return 1 if self.dp_attention else self.tp

    @property
    def attn_dp(self) -> int:
        """Data-parallel attention ranks per stage (each holds its own sequences' KV)."""
        return self.tp if self.dp_attention else 1

    @property
    def moe_tp(self) -> int:
        """Ranks that shard one expert's weights (tp / ep)."""
        return self.tp // self.ep

    def label(self) -> str:
        parts = [f"tp{self.tp}"]
        if self.pp > 1:
            parts.append(f"pp{self.pp}")
        if self.ep > 1:
            parts.append(f"ep{self.ep}")
        if self.dp_attention:
            parts.append("dpattn")
        return "-".join(parts)

    def check(self, model: ModelArch) -> None:
        """Raise :class:`PlanError` if this plan cannot run ``model``."""
        for name, value in (("tp", self.tp), ("pp", self.pp), ("ep", self.ep)):
            if value < 1:
                raise PlanError(f"{name} must be >= 1, got {value}")
        for name, dt in (("weight dtype", self.weight_dtype), ("kv dtype", self.kv_dtype)):
            if dt not in DTYPE_BYTES:
                raise PlanError(f"unknown {name} {dt!r}; use one of {', '.join(DTYPE_BYTES)}")
        if self.pp > model.n_layers:
            raise PlanError(f"pp={self.pp} exceeds the {model.n_layers} layers of {model.id}")
        if not self.dp_attention:
            for layer, _ in model.groups:
                a = layer.attn
                heads = a.lin_value_heads if a.kind == "linear" else a.n_heads
                if heads % self.tp:
                    raise PlanError(
                        f"tp={self.tp} does not divide the {heads} attention heads of {model.id}; "
                        f"use a tp that divides {heads}, or --dp-attention"
                    )
        if self.tp % self.ep:
            raise PlanError(f"ep={self.ep} must divide tp={self.tp} (experts are split over the tp ranks)")
        if self.ep > 1 and not model.is_moe:
            raise PlanError(f"ep={self.ep} needs a mixture-of-experts model; {model.id} is dense")
        for layer, _ in model.groups:
            m = layer.mlp
            if m.kind == "moe" and self.ep > m.n_experts:
                raise PlanError(f"ep={self.ep} exceeds the {m.n_experts} experts of {model.id}")
            if m.kind == "moe" and m.n_experts % self.ep:
                raise PlanError(f"ep={self.ep} does not divide the {m.n_experts} experts of {model.id}")
