"""Output files are written whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from hierro.files import write_atomic


def test_write_atomic_replaces_whole_and_returns_the_path(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old")
    seen: list[str] = []

    def write(tmp: Path) -> None:
        seen.append(tmp.suffix)
        tmp.write_text("new")

    assert write_atomic(target, write) == target
    assert target.read_text() == "new" and seen == [".csv"]
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_text("old")

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(target, fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
