"""`medgap quality`'s --out suffix and the files a folder scan leaves out (issue 9, item 7)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from medgap.cli import app

runner = CliRunner()


def _png(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 256, (64, 64), dtype=np.uint8))


def test_out_with_an_unknown_suffix_is_a_usage_error_naming_the_formats(tmp_path):
    _png(tmp_path / "g" / "a.png")
    out = tmp_path / "x.xlsx"
    r = runner.invoke(app, ["quality", str(tmp_path / "g"), "--out", str(out)])
    text = " ".join(r.output.split())
    assert r.exit_code == 2, r.output
    assert ".parquet" in text and ".csv" in text and "x.xlsx" in text
    assert not out.exists()  # was: Parquet written under the name x.xlsx


def test_out_with_an_unknown_suffix_and_an_explicit_format_is_written_in_that_format(tmp_path):
    import pandas as pd

    _png(tmp_path / "g" / "a.png")
    out = tmp_path / "scores.tab"
    r = runner.invoke(app, ["quality", str(tmp_path / "g"), "--out", str(out), "--format", "csv"])
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(out)) == 1


def test_unsupported_files_are_counted_by_type_and_listed(tmp_path):
    root = tmp_path / "data"
    _png(root / "g" / "a.png")
    for name in ("notes.txt", "more.txt", "readme.txt"):
        (root / "g" / name).write_text("text")
    (root / "g" / "sheet.xlsx").write_bytes(b"PK\x03\x04")
    (root / "g" / ".DS_Store").write_bytes(b"\0")  # hidden: not reported
    r = runner.invoke(app, ["quality", str(root), "--out", str(tmp_path / "s.csv")])
    text = " ".join(r.output.split())
    assert r.exit_code == 0, r.output
    assert "4 files skipped (unsupported type: .txt 3, .xlsx 1)" in text
    assert "sheet.xlsx" in text and ".DS_Store" not in text


def test_study_reports_the_skipped_files_too(tmp_path):
    root = tmp_path / "data"
    for i, g in enumerate(("natural", "ct", "natural", "ct")):
        _png(root / g / f"{i}.png", seed=i)
    (root / "ct" / "notes.txt").write_text("text")
    r = runner.invoke(app, ["study", str(root), "--out", str(tmp_path / "run")])
    text = " ".join(r.output.split())
    assert r.exit_code == 0, r.output
    assert "1 file skipped (unsupported type: .txt 1)" in text and "notes.txt" in text
