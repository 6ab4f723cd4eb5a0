"""collect/scan_folder report the files they leave out (unsupported types; hidden files are not counted)."""

from __future__ import annotations

import cv2
import numpy as np

from medgap.io import Source, collect
from medgap.io.collection import SkippedFile, scan_folder, summarise_skipped


def test_collect_lists_the_unsupported_files_with_reasons_and_keeps_its_return_type(tmp_path):
    g = tmp_path / "g"
    g.mkdir()
    cv2.imwrite(str(g / "a.png"), np.zeros((32, 32), np.uint8))
    (g / "notes.txt").write_text("x")
    (g / "README").write_text("not dicom")
    (g / ".hidden.txt").write_text("x")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("x")
    skipped: list[SkippedFile] = []
    found = collect([tmp_path], skipped=skipped)
    assert found == [Source((g / "a.png").resolve(), "g")]
    assert sorted((s.path.name, s.kind) for s in skipped) == [("README", "(no suffix)"), ("notes.txt", ".txt")]
    assert all(s.reason for s in skipped) and "unsupported type .txt" in {s.path.name: s.reason for s in skipped}["notes.txt"]
    assert summarise_skipped(skipped) == "2 files skipped (unsupported type: (no suffix) 1, .txt 1)"
    assert collect([tmp_path]) == found  # without the list: as before
    assert scan_folder(g) == [g / "a.png"]


def test_groups_report_their_skipped_files_too(tmp_path):
    (tmp_path / "x.csv").write_text("a,b")
    skipped: list[SkippedFile] = []
    assert collect(groups=[("n", tmp_path)], skipped=skipped) == []
    assert [s.kind for s in skipped] == [".csv"]
