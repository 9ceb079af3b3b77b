"""The bundled measurement set loads, and malformed measurement files fail loudly."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from hierro.accuracy import (
    COLUMNS,
    METRICS,
    Measurement,
    error_stats,
    load_measurements,
    load_mlperf_benchmarks,
    unique,
)
from hierro.errors import CatalogError

BUNDLED = Path(__file__).parents[1] / "src" / "hierro" / "accuracy" / "data" / "calibration.csv"


def test_bundled_file_loads_every_row_with_unique_ids() -> None:
    rows = load_measurements()
    assert len(rows) == 3078
    assert len({r.id for r in rows}) == len(rows)
    assert all(isinstance(r, Measurement) for r in rows)
    assert load_measurements(BUNDLED) == rows


def test_fields_are_the_schema_columns_in_file_order() -> None:
    with BUNDLED.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    assert list(COLUMNS) == header
    assert set(METRICS) <= set(COLUMNS)


def test_duplicates_point_at_canonical_rows_in_the_file() -> None:
    rows = load_measurements()
    by_id = {r.id: r for r in rows}
    dups = [r for r in rows if r.notes.startswith("duplicate_of=")]
    assert len(dups) > 0
    for r in dups:
        assert r.duplicate_of in by_id
        assert by_id[r.duplicate_of].duplicate_of is None
        assert r.ttft_mean_ms == pytest.approx(by_id[r.duplicate_of].ttft_mean_ms, abs=0.011)
    assert len(unique(rows)) == len(rows) - len(dups)


def test_typed_cells_and_measured_metrics() -> None:
    rows = load_measurements()
    first = rows[0]
    assert first.id == "mlperf41-amd-1xmi300x-2xepyc-9374f-llama2-70b-99-offline"
    assert first.num_gpus == 1 and first.tp == 1 and first.ep is None
    assert first.dp_attention is False and first.load_value is None
    assert first.measured() == {
        "out_tok_s": 3062.72,
        "out_tok_s_per_gpu": 3062.72,
        "req_s": 10.4445,
    }
    assert first.group_key == ("mlperf", "mi300x", "llama-2-70b")
    assert all(r.measured() for r in rows)
    assert all(v > 0 and math.isfinite(v) for r in rows for v in r.measured().values())


def test_mlperf_benchmarks_are_bundled() -> None:
    names = [b["benchmark"] for b in load_mlperf_benchmarks()]
    assert "llama2-70b" in names and "deepseek-r1" in names


def _write(tmp_path: Path, cells: dict[str, str] | None = None, drop: str | None = None) -> Path:
    """A copy of the bundled file's first three rows, with cells of row 2 replaced (file line 3)
    and optionally one column dropped."""
    with BUNDLED.open(encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))[:3]
    for name, value in (cells or {}).items():
        table[1][name] = value
    header = [c for c in COLUMNS if c != drop]
    path = tmp_path / "bad.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(table)
    return path


def test_a_good_copy_loads(tmp_path: Path) -> None:
    assert len(load_measurements(_write(tmp_path))) == 3


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("ttft_p50_ms", "12,5", "not a number"),
        ("out_tok_s", "abc", "not a number"),
        ("out_tok_s", "-3", "not a positive"),
        ("num_gpus", "8.5", "not an integer"),
        ("num_gpus", "", "required"),
        ("load_kind", "poisson", "not one of"),
        ("mode", "hybrid", "not one of"),
        ("weight_dtype", "fp6", "not one of"),
        ("dp_attention", "yes", "not one of"),
        ("source_kind", "tweet", "not one of"),
        ("length_dist", "gaussian", "length_dist"),
        ("id", "", "required"),
    ],
)
def test_bad_cells_name_file_line_and_column(
    tmp_path: Path, column: str, value: str, problem: str
) -> None:
    path = _write(tmp_path, {column: value})
    with pytest.raises(CatalogError) as err:
        load_measurements(path)
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message and "line 3" in message
    assert f"column {column}" in message and problem in message


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, drop="load_kind")
    with pytest.raises(CatalogError, match=r"missing column\(s\) load_kind"):
        load_measurements(path)


def test_load_value_required_under_load(tmp_path: Path) -> None:
    path = _write(tmp_path, {"load_kind": "concurrency", "load_value": ""})
    with pytest.raises(CatalogError, match="column load_value"):
        load_measurements(path)


def test_dangling_duplicate_and_repeated_id(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="duplicate_of=nowhere is not in the file"):
        load_measurements(_write(tmp_path, {"notes": "duplicate_of=nowhere; copied"}))
    first_id = load_measurements()[0].id
    with pytest.raises(CatalogError, match="appears twice"):
        load_measurements(_write(tmp_path, {"id": first_id}))


def test_unreadable_path(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_measurements(tmp_path / "absent.csv")


def test_error_stats_on_known_numbers() -> None:
    stats = error_stats([100, 100, 100], [110, 90, 150])
    assert stats.n == 3
    assert stats.median_ape == pytest.approx(0.10)
    assert stats.median_signed == pytest.approx(0.10)
    # APE sorted [0.1, 0.1, 0.5]: the 90th percentile interpolates 80 % of the way to 0.5.
    assert stats.p90_ape == pytest.approx(0.42)
    assert stats.to_dict() == {
        "n": 3,
        "median_ape": stats.median_ape,
        "p90_ape": stats.p90_ape,
        "median_signed": stats.median_signed,
    }


def test_error_stats_edges() -> None:
    empty = error_stats([], [])
    assert empty.n == 0 and math.isnan(empty.median_ape)
    assert empty.to_dict()["median_ape"] is None
    with pytest.raises(ValueError, match="positive"):
        error_stats([0.0], [1.0])
    with pytest.raises(ValueError, match="one length"):
        error_stats([1.0, 2.0], [1.0])
