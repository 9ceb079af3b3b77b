"""What every command shares: the console, JSON output, common options."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from hierro.perf import Calibration, default_calibration, load_calibration

__all__ = ["CalibOpt", "Dtype", "JsonOpt", "calibration", "emit_json", "err_console", "out"]

out = Console()
err_console = Console(stderr=True)


def emit_json(data: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=float) + "\n")


def calibration(path: Path | None) -> Calibration:
    """The efficiency table of ``--calibration``, or the bundled one."""
    return load_calibration(path) if path is not None else default_calibration()


class Dtype(StrEnum):
    bf16 = "bf16"
    fp16 = "fp16"
    fp8 = "fp8"
    int8 = "int8"
    fp4 = "fp4"
    int4 = "int4"


CalibOpt = Annotated[
    Path | None, typer.Option("--calibration", help="efficiency table from `hierro calibrate` (default: bundled)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object instead of tables")]
