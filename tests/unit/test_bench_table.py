"""`python -m bench`: a benchmark that cannot run is a FAILED row and a non-zero exit, never a
blank "not run" (issue 11). The benchmarks themselves run under `make bench`, not here."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import bench.__main__ as bench_main
import pytest
from bench.common import Row


def _fine(args: argparse.Namespace) -> list[Row]:
    return [Row("1", "measured", "1 s", "1 s", "1.00x", "<= 2x", True)]


def _broken(args: argparse.Namespace) -> list[Row]:
    raise FileNotFoundError("wrk: not found")


def _run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, benchmarks: dict[str, object]) -> int:
    (tmp_path / "src").mkdir()
    (tmp_path / "bench").mkdir()
    monkeypatch.setattr(bench_main, "ROOT", tmp_path)
    monkeypatch.setattr(bench_main, "BENCHMARKS", benchmarks)
    monkeypatch.setattr(sys, "argv", ["bench", *benchmarks])
    return bench_main.main()


def test_a_benchmark_that_cannot_run_is_a_failure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(monkeypatch, tmp_path, {"fine": _fine, "broken": _broken})
    out, err = capsys.readouterr()
    assert code == 1
    row = next(line for line in out.splitlines() if line.startswith("broken"))
    assert row.rstrip().endswith("| FAILED")
    assert "[broken] wrk: not found" in out
    assert "rows that could not run: broken" in err
    assert any(
        line.startswith("1 ") and line.rstrip().endswith("| yes") for line in out.splitlines()
    )


def test_every_row_measured_exits_zero(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(monkeypatch, tmp_path, {"fine": _fine}) == 0
    assert "FAILED" not in capsys.readouterr().out
