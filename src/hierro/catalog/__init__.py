"""Catalog layer: sourced data files (accelerators, systems, models) and their schemas."""

from hierro.catalog.load import accelerator_files, model_files, read_yaml, system_files
from hierro.catalog.schema import (
    AcceleratorFile,
    CloudPrice,
    Figure,
    ModelFile,
    PublishedParams,
    SystemFile,
)

__all__ = [
    "AcceleratorFile",
    "CloudPrice",
    "Figure",
    "ModelFile",
    "PublishedParams",
    "SystemFile",
    "accelerator_files",
    "model_files",
    "read_yaml",
    "system_files",
]
