"""Report layer: tables, JSON and plots of result objects; rendering only, no modelling."""

from hierro.report.catalog import catalog_json, gpus_table, models_table, systems_table
from hierro.report.estimate import estimate_dict, estimate_tables
from hierro.report.validation import validation_tables

__all__ = [
    "catalog_json",
    "estimate_dict",
    "estimate_tables",
    "gpus_table",
    "models_table",
    "systems_table",
    "validation_tables",
]
