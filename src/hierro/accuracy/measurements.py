"""Published serving measurements: one :class:`Measurement` per row of a measurements CSV.

The file format is the canonical validation schema (``data/measured/SCHEMA.md``): one column per
field of :class:`Measurement`, in the same order, with the same names and units (times in ms,
throughputs in tok/s or req/s). An empty cell is ``None`` for numbers and booleans and ``""``
for free text. Nothing is converted: a row maps 1:1 to its line in the file.

Loading validates every cell and fails loudly: a missing or unknown column, a cell that is not a
number, a non-positive number or an enum value outside the schema raises
:class:`~hierro.errors.CatalogError` naming the file, the line, the row id and the column.
Model, hardware and framework ids are free text here; whether a predictor knows them is the
predictor's business (it answers with a ``Skip``).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal, get_args

from hierro.errors import CatalogError

__all__ = [
    "COLUMNS",
    "METRICS",
    "Dtype",
    "LoadKind",
    "Measurement",
    "Mode",
    "RowProblem",
    "SourceKind",
    "load_measurements",
    "load_measurements_lenient",
    "load_mlperf_benchmarks",
    "unique",
]

SourceKind = Literal["mlperf", "inferencemax", "vendor_doc", "blog", "aiconfigurator_silicon"]
Mode = Literal["aggregated", "disaggregated"]
LoadKind = Literal["offline", "server_qps", "concurrency", "batch", "phase"]
Dtype = Literal["bf16", "fp16", "fp8", "fp4", "int8", "int4"]

METRICS: tuple[str, ...] = (
    "out_tok_s",
    "out_tok_s_per_gpu",
    "req_s",
    "ttft_mean_ms",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "tpot_mean_ms",
    "tpot_p50_ms",
    "tpot_p99_ms",
    "e2e_p50_ms",
    "e2e_p99_ms",
)
"""The measured columns a predictor may predict, in file order (units: tok/s, req/s, ms)."""

_DUPLICATE_PREFIX = "duplicate_of="
_NEEDS_LOAD_VALUE = frozenset({"server_qps", "concurrency", "batch"})


@dataclass(frozen=True, slots=True)
class Measurement:
    """One measured operating point; field names, order and units are the CSV's columns."""

    id: str
    source: str
    source_kind: SourceKind
    model: str
    hf_id: str
    weight_dtype: Dtype
    kv_dtype: Dtype | None
    hardware: str
    num_gpus: int
    framework: str
    framework_version: str
    mode: Mode
    replicas: int | None
    tp: int | None
    pp: int | None
    ep: int | None
    dp_attention: bool | None
    prefill_workers: int | None
    prefill_tp: int | None
    prefill_ep: int | None
    decode_workers: int | None
    decode_tp: int | None
    decode_ep: int | None
    load_kind: LoadKind
    load_value: float | None
    isl_mean: float | None
    osl_mean: float | None
    length_dist: str
    out_tok_s: float | None
    out_tok_s_per_gpu: float | None
    req_s: float | None
    ttft_mean_ms: float | None
    ttft_p50_ms: float | None
    ttft_p99_ms: float | None
    tpot_mean_ms: float | None
    tpot_p50_ms: float | None
    tpot_p99_ms: float | None
    e2e_p50_ms: float | None
    e2e_p99_ms: float | None
    ttft_limit_ms: float | None
    tpot_limit_ms: float | None
    notes: str

    @property
    def duplicate_of(self) -> str | None:
        """The canonical row id if ``notes`` starts with ``duplicate_of=<id>``, else None."""
        if not self.notes.startswith(_DUPLICATE_PREFIX):
            return None
        head = self.notes[len(_DUPLICATE_PREFIX) :].split(";", 1)[0].strip()
        return head.split()[0] if head else None

    @property
    def group_key(self) -> tuple[str, str, str]:
        """``(source_kind, hardware, model)``: the unit that cross-validation keeps whole."""
        return (self.source_kind, self.hardware, self.model)

    def measured(self) -> dict[str, float]:
        """The non-empty :data:`METRICS` of this row, metric name -> value (CSV units)."""
        out: dict[str, float] = {}
        for name in METRICS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def unique(rows: Iterable[Measurement]) -> tuple[Measurement, ...]:
    """The rows that are not duplicates (``duplicate_of`` is None), in their order.

    A duplicate republishes its canonical row's measurement, so statistics count it once.
    """
    return tuple(row for row in rows if row.duplicate_of is None)


# --- cell parsers: each returns the typed value or raises ValueError(problem) -------------------


def _text(cell: str) -> str:
    return cell


def _required_text(cell: str) -> str:
    if not cell:
        raise ValueError("empty, but required")
    return cell


def _number(cell: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise ValueError(f"{cell!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{cell!r} is not a positive finite number")
    return value


def _count(cell: str) -> int:
    try:
        value = int(cell)
    except ValueError:
        raise ValueError(f"{cell!r} is not an integer") from None
    if value < 1:
        raise ValueError(f"{cell!r} is not a positive integer")
    return value


def _boolean(cell: str) -> bool:
    if cell not in ("true", "false"):
        raise ValueError(f"{cell!r} is not one of true, false")
    return cell == "true"


def _choice(alias: Any) -> Callable[[str], str]:
    allowed: tuple[str, ...] = get_args(alias)

    def parse(cell: str) -> str:
        if cell not in allowed:
            raise ValueError(f"{cell!r} is not one of {', '.join(allowed)}")
        return cell

    return parse


def _length_dist(cell: str) -> str:
    if cell in ("", "fixed") or (cell.startswith("dataset:") and len(cell) > len("dataset:")):
        return cell
    if cell.startswith("random:"):
        try:
            ratio = float(cell[len("random:") :])
        except ValueError:
            ratio = math.nan
        if 0 < ratio <= 1:
            return cell
    raise ValueError(f"{cell!r} is not empty, fixed, random:<ratio in (0, 1]> or dataset:<name>")


def _required(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse_required(cell: str) -> Any:
        if not cell:
            raise ValueError("empty, but required")
        return parse(cell)

    return parse_required


def _optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse_optional(cell: str) -> Any:
        return None if cell == "" else parse(cell)

    return parse_optional


_BY_ANNOTATION: dict[str, Callable[[str], Any]] = {
    "str": _text,
    "int": _required(_count),
    "int | None": _optional(_count),
    "float | None": _optional(_number),
    "bool | None": _optional(_boolean),
    "SourceKind": _required(_choice(SourceKind)),
    "Mode": _required(_choice(Mode)),
    "LoadKind": _required(_choice(LoadKind)),
    "Dtype": _required(_choice(Dtype)),
    "Dtype | None": _optional(_choice(Dtype)),
}
_REQUIRED_TEXT = frozenset({"id", "source", "model", "hardware", "framework"})
_SPECIAL: dict[str, Callable[[str], Any]] = {"length_dist": _length_dist}


def _parser(name: str, annotation: str) -> Callable[[str], Any]:
    if name in _SPECIAL:
        return _SPECIAL[name]
    if name in _REQUIRED_TEXT:
        return _required_text
    return _BY_ANNOTATION[annotation]


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Measurement))
"""The schema's columns, in file order: the fields of :class:`Measurement`."""
_PARSERS: tuple[tuple[str, Callable[[str], Any]], ...] = tuple(
    (f.name, _parser(f.name, str(f.type))) for f in fields(Measurement)
)


# --- loading -----------------------------------------------------------------------------------


def _bundled(name: str) -> Traversable:
    return files("hierro.accuracy") / "data" / name


def _read_table(
    path: Path | Traversable, problems: list[RowProblem] | None = None
) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header and ``(line number, row)`` pairs of a CSV file; structural errors name the file.
    With ``problems`` given, a row of the wrong width is recorded there and skipped."""
    try:
        reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline=""))
        header = list(reader.fieldnames or [])
        rows: list[tuple[int, dict[str, str]]] = []
        for row in reader:
            width = ""
            if None in row:
                width = "more cells than columns"
            elif any(value is None for value in row.values()):
                width = "fewer cells than columns"
            if width:
                if problems is None:
                    raise CatalogError(f"{path}: line {reader.line_num}: {width}")
                problems.append(RowProblem(reader.line_num, str(row.get("id") or ""), width))
                continue
            rows.append((reader.line_num, row))
    except OSError as err:
        raise CatalogError(f"{path}: cannot read ({err.strerror or err})") from None
    except (csv.Error, UnicodeDecodeError) as err:
        raise CatalogError(f"{path}: not a readable CSV file ({err})") from None
    if not header:
        raise CatalogError(f"{path}: empty file, expected a header with columns {COLUMNS[0]}, ...")
    return header, rows


def _parse_row(path: Path | Traversable, line: int, cells: Mapping[str, str]) -> Measurement:
    row_id = cells.get("id", "")
    values: dict[str, Any] = {}
    for name, parse in _PARSERS:
        try:
            values[name] = parse(cells[name])
        except ValueError as err:
            raise CatalogError(
                f"{path}: line {line} (id {row_id!r}): column {name}: {err}"
            ) from None
    if values["load_kind"] in _NEEDS_LOAD_VALUE and values["load_value"] is None:
        raise CatalogError(
            f"{path}: line {line} (id {row_id!r}): column load_value: empty, "
            f"but required for load_kind={values['load_kind']}"
        )
    return Measurement(**values)


def _check_ids(path: Path | Traversable, rows: tuple[Measurement, ...]) -> None:
    by_id: dict[str, Measurement] = {}
    for row in rows:
        if row.id in by_id:
            raise CatalogError(f"{path}: id {row.id!r}: column id: appears twice")
        by_id[row.id] = row
    for row in rows:
        canonical = row.duplicate_of
        if canonical is None:
            if row.notes.startswith(_DUPLICATE_PREFIX):
                raise CatalogError(
                    f"{path}: id {row.id!r}: column notes: duplicate_of= names no id"
                )
            continue
        if canonical not in by_id:
            raise CatalogError(
                f"{path}: id {row.id!r}: column notes: duplicate_of={canonical} is not in the file"
            )
        if by_id[canonical].duplicate_of is not None:
            raise CatalogError(
                f"{path}: id {row.id!r}: column notes: duplicate_of={canonical} is itself a duplicate"
            )


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A row of a measurements file that could not be read: its line, id and what is wrong."""

    line: int
    id: str
    reason: str

    def label(self) -> str:
        return self.id or f"line {self.line}"


def load_measurements_lenient(
    path: str | Path,
) -> tuple[tuple[Measurement, ...], tuple[RowProblem, ...]]:
    """The readable rows of a measurements CSV and one :class:`RowProblem` per bad row.

    A file that cannot be read at all (missing file, no header, a required column missing)
    still raises :class:`~hierro.errors.CatalogError`; bad rows (an unparsable or out-of-range
    cell, a missing required value, a repeated id, a ``duplicate_of=`` to no row) are reported
    with their line and left out; unknown extra columns are reported once and ignored.
    """
    src = Path(path)
    problems: list[RowProblem] = []
    header, table = _read_table(src, problems)
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise CatalogError(f"{src}: line 1: missing column(s) {', '.join(missing)}")
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        problems.append(RowProblem(1, "", f"unknown column(s) {', '.join(unknown)} ignored"))
    rows: list[Measurement] = []
    seen: dict[str, Measurement] = {}
    for line, cells in table:
        try:
            row = _parse_row(src, line, cells)
        except CatalogError as err:
            problems.append(RowProblem(line, cells.get("id", ""), str(err).split(": ", 1)[-1]))
            continue
        if row.id in seen:
            problems.append(RowProblem(line, row.id, "column id: appears twice"))
            continue
        seen[row.id] = row
        rows.append(row)
    kept: list[Measurement] = []
    for row in rows:
        canonical = row.duplicate_of
        if row.notes.startswith(_DUPLICATE_PREFIX) and (canonical is None or canonical not in seen):
            problems.append(RowProblem(0, row.id, f"column notes: duplicate_of={canonical} is not in the file"))
            continue
        kept.append(row)
    problems.sort(key=lambda p: p.line)
    return tuple(kept), tuple(problems)


def _load(path: Path | Traversable) -> tuple[Measurement, ...]:
    header, table = _read_table(path)
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise CatalogError(f"{path}: line 1: missing column(s) {', '.join(missing)}")
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise CatalogError(f"{path}: line 1: unknown column(s) {', '.join(unknown)}")
    rows = tuple(_parse_row(path, line, cells) for line, cells in table)
    _check_ids(path, rows)
    return rows


@cache
def _load_bundled() -> tuple[Measurement, ...]:
    return _load(_bundled("calibration.csv"))


def load_measurements(path: str | Path | None = None) -> tuple[Measurement, ...]:
    """Every row of a measurements CSV, in file order, validated.

    ``path=None`` reads the bundled ``calibration.csv`` (package data, read once and cached).
    Duplicates are kept; :func:`unique` drops them. Raises
    :class:`~hierro.errors.CatalogError` with a one-line message on any malformed cell, header
    or cross-row reference (repeated id, ``duplicate_of=`` an id not in the file).
    """
    if path is None:
        return _load_bundled()
    return _load(Path(path))


def load_mlperf_benchmarks() -> tuple[dict[str, str], ...]:
    """The bundled ``mlperf_benchmarks.csv``: one dict per MLPerf LLM benchmark, cells verbatim.

    Columns include ``benchmark``, ``dataset``, the server/interactive p99 TTFT/TPOT limits (ms),
    stated length limits and the reference mean output tokens per sample; cells are free text
    (with caveats in parentheses), so a predictor parses only what it needs.
    """
    _header, rows = _read_table(_bundled("mlperf_benchmarks.csv"))
    return tuple(dict(row) for _line, row in rows)
