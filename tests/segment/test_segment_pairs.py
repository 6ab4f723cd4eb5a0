"""The pairs table: paths relative to the nearest folder holding them, patients from a column, from the
MANIFEST.csv beside the images (group_id), or one per file with a log line."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from medgap.segment.errors import SegmentError
from medgap.segment.masks import read_pairs


@pytest.fixture()
def data(tmp_path):
    root = tmp_path / "data"
    for name in ("cxr/a.png", "cxr/b.png", "masks/lungs/cxr/a.png", "masks/lungs/cxr/b.png"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / name), np.zeros((4, 4), np.uint8))
    pd.DataFrame({"image": ["cxr/a.png", "cxr/b.png"], "mask": ["masks/lungs/cxr/a.png", "masks/lungs/cxr/b.png"]}
                 ).to_csv(root / "masks" / "lungs" / "pairs.csv", index=False)
    return root


def test_patients_come_from_the_manifest_beside_the_images(data):
    pd.DataFrame({"path": ["cxr/a.png", "cxr/b.png"], "group_id": ["p1", "p1"]}).to_csv(data / "MANIFEST.csv",
                                                                                        index=False)
    logs: list[str] = []
    pairs = read_pairs(data / "masks" / "lungs" / "pairs.csv", log=logs.append)
    assert [p.patient for p in pairs] == ["p1", "p1"]
    assert pairs[0].image == (data / "cxr" / "a.png").resolve()
    assert pairs[0].mask == (data / "masks" / "lungs" / "cxr" / "a.png").resolve()
    assert "group_id of" in logs[0] and "for 2 of 2 images" in logs[0]


def test_a_patient_column_wins_and_without_any_each_file_is_a_patient(data):
    csv = data / "masks" / "lungs" / "pairs.csv"
    logs: list[str] = []
    pairs = read_pairs(csv, log=logs.append)
    assert len({p.patient for p in pairs}) == 2 and "each image is its own patient" in logs[0]
    table = pd.read_csv(csv).assign(patient=["x", "y"])
    table.to_csv(csv, index=False)
    assert [p.patient for p in read_pairs(csv, log=lambda s: None)] == ["x", "y"]


def test_missing_columns_and_files_are_named(data, tmp_path):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"img": ["a"], "mask": ["b"]}).to_csv(bad, index=False)
    with pytest.raises(SegmentError, match="no column image"):
        read_pairs(bad)
    pd.DataFrame({"image": ["cxr/zzz.png"], "mask": ["cxr/a.png"]}).to_csv(bad, index=False)
    with pytest.raises(SegmentError, match="not found"):
        read_pairs(bad)
