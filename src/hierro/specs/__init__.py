"""Specs layer: frozen accelerator, system, model-architecture and plan values, and the
architecture math on them (parameters, FLOPs, KV bytes, memory fit)."""

from hierro.specs.hardware import (
    Accelerator,
    System,
    get_accelerator,
    get_system,
    list_accelerators,
)
from hierro.specs.hf import arch_from_hf_config, read_config_json
from hierro.specs.memory import (
    MemoryBreakdown,
    check_fits,
    kv_bytes_per_seq,
    memory_breakdown,
    weight_bytes_per_device,
)
from hierro.specs.model import Attention, Layer, Mlp, ModelArch, ParamCount
from hierro.specs.models import get_model, model_file, resolve_model_id
from hierro.specs.plan import WEIGHT_BYTES, Plan, weight_bytes_per_param

__all__ = [
    "WEIGHT_BYTES",
    "Accelerator",
    "Attention",
    "Layer",
    "MemoryBreakdown",
    "Mlp",
    "ModelArch",
    "ParamCount",
    "Plan",
    "System",
    "arch_from_hf_config",
    "check_fits",
    "get_accelerator",
    "get_model",
    "get_system",
    "kv_bytes_per_seq",
    "list_accelerators",
    "memory_breakdown",
    "model_file",
    "read_config_json",
    "resolve_model_id",
    "weight_bytes_per_device",
    "weight_bytes_per_param",
]
