"""Labelled items from folder trees and manifests, decoded through medgap.io: DICOM, NIfTI slices, video frames,
gray replicated to three channels, unreadable files reported and skipped."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import av
import cv2
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from medgap.data import decode_items, items_from_folder, load_items
from medgap.io import CollectionError

PYDICOM_FILES = Path(importlib.util.find_spec("pydicom").origin).parent / "data" / "test_files"


def test_folder_tree_with_dicom_nifti_png_and_a_corrupt_file(tmp_path):
    root = tmp_path / "tree"
    (root / "ct").mkdir(parents=True)
    (root / "mr").mkdir()
    shutil.copy(PYDICOM_FILES / "CT_small.dcm", root / "ct" / "slice.dcm")
    vol = np.arange(20 * 24 * 5, dtype=np.int16).reshape(20, 24, 5)
    nib.save(nib.Nifti1Image(vol, np.eye(4)), root / "mr" / "brain.nii.gz")
    gray = (np.arange(30 * 40) % 256).astype(np.uint8).reshape(30, 40)
    cv2.imwrite(str(root / "mr" / "gray.png"), gray)
    (root / "ct" / "broken.dcm").write_bytes(b"DICM but not really")
    (root / "loose.png").write_bytes((root / "mr" / "gray.png").read_bytes())  # no class folder: ignored

    items = items_from_folder(root)
    assert sorted((i.path.name, i.label) for i in items) == [("brain.nii.gz", "mr"), ("broken.dcm", "ct"),
                                                            ("gray.png", "mr"), ("slice.dcm", "ct")]
    ds = decode_items(items, size=32)
    assert [Path(p).name for p, _ in ds.failures] == ["broken.dcm"] and ds.failures[0][1]
    names = [Path(p).name for p in ds.paths]
    assert names.count("brain.nii.gz") == 5 and names.count("slice.dcm") == 1 and names.count("gray.png") == 1
    assert ds.images.shape == (7, 3, 32, 32) and ds.images.dtype == torch.uint8
    nifti = [i for i, n in enumerate(names) if n == "brain.nii.gz"]
    assert len({ds.groups[i] for i in nifti}) == 1 and len(set(ds.item_ids)) == 7  # one group, distinct items
    png = ds.images[names.index("gray.png")].numpy()
    assert (png[0] == png[1]).all() and (png[1] == png[2]).all()  # gray replicated, not colourised
    ref = cv2.resize(gray.astype(np.float64), (32, 32), interpolation=cv2.INTER_AREA)
    assert np.abs(png[0].astype(float) - ref).max() <= 1


def test_manifest_of_the_shared_pocus_set_with_video_frames(shared_data):
    manifest = shared_data / "MANIFEST.csv"
    items = load_items(manifest, filter_column="modality", filter_values=("pocus", "pocus_video"))
    rows = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    rows = rows[rows.modality.isin(["pocus", "pocus_video"])]
    assert len(items) == len(rows)
    ds = decode_items(items, size=32, video_stride=10)
    assert not ds.failures
    expected = 0
    for r in rows.itertuples():
        if r.modality == "pocus_video":
            with av.open(str(shared_data / r.path)) as c:  # count the decoded frames independently
                n = sum(1 for _ in c.decode(video=0))
            expected += -(-n // 10)
        else:
            expected += 1
    assert len(ds.labels) == expected
    by_path = dict(zip(rows.path.map(lambda p: str((shared_data / p).resolve())), rows.group_id))
    assert all(by_path[p] == g for p, g in zip(ds.paths, ds.groups))  # frames keep their video's patient


def test_manifest_errors_name_the_columns(tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text("file,diagnosis\na.png,covid\n")
    with pytest.raises(CollectionError, match="no column path, label; columns are file, diagnosis"):
        load_items(csv)
    with pytest.raises(CollectionError, match="no such manifest"):
        load_items(tmp_path / "absent.csv")


def test_manifest_filter_is_never_ignored(tmp_path):
    """A filter without values, on an unknown column, matching no row, or on a folder tree is an error (issue 8:
    `--filter modality` used to train on every row)."""
    csv = tmp_path / "m.csv"
    csv.write_text("path,label,group_id,modality\na.png,covid,p1,us\nb.png,regular,p2,ct\n")
    assert [i.label for i in load_items(csv, filter_column="modality", filter_values=("us",))] == ["covid"]
    with pytest.raises(CollectionError, match="needs a column and values"):
        load_items(csv, filter_column="modality", filter_values=())
    with pytest.raises(CollectionError,
                       match="no column 'site' to filter on; columns are path, label, group_id, modality"):
        load_items(csv, filter_column="site", filter_values=("a",))
    with pytest.raises(CollectionError, match=r"no row has modality in \['mr'\]; its values are ct, us"):
        load_items(csv, filter_column="modality", filter_values=("mr",))
    (tmp_path / "tree" / "covid").mkdir(parents=True)
    with pytest.raises(CollectionError, match="a filter selects manifest rows, and this is a folder"):
        load_items(tmp_path / "tree", filter_column="modality", filter_values=("us",))


def test_manifest_without_the_patient_column_is_refused_unless_each_file_is_a_patient(tmp_path):
    """Issue 9, item 5: a manifest whose patient column has another name (here ``group``) used to fall back
    silently to one patient per file, so frames of one patient landed on both sides of a split (held-out POCUS:
    accuracy 0.73 split by file against 0.50 by patient). It is refused, naming the columns it has and the
    option; saying that each file is its own patient, or naming the column, runs."""
    csv = tmp_path / "m.csv"
    csv.write_text("path,label,group\na.png,covid,p1\nb.png,covid,p1\nc.png,regular,p2\n")
    with pytest.raises(CollectionError, match=r"no patient column 'group_id'; its columns are path, label, group\b"
                                              r".*--group-column.*--each-file-is-a-patient") as e:
        load_items(csv)
    assert str(csv) in str(e.value)
    per_file = load_items(csv, each_file_is_a_patient=True)
    assert [i.group_id for i in per_file] == [str(tmp_path / n) for n in ("a.png", "b.png", "c.png")]
    assert [i.group_id for i in load_items(csv, group_column="group")] == ["p1", "p1", "p2"]


def test_manifest_whose_patient_column_is_empty_in_every_used_row_is_refused(tmp_path):
    """A column that is there but empty for every row used (the shared manifest's MR rows) gives one patient per
    file just as silently; a row with an empty id among rows with ids keeps its file as its patient."""
    csv = tmp_path / "m.csv"
    csv.write_text("path,label,group_id,modality\na.png,covid,,mr\nb.png,regular,,mr\nc.png,covid,p1,us\n"
                   "d.png,regular,,us\n")
    with pytest.raises(CollectionError, match="column 'group_id' is empty in every row used.*--each-file-is-a-patient"):
        load_items(csv, filter_column="modality", filter_values=("mr",))
    assert len(load_items(csv, filter_column="modality", filter_values=("mr",), each_file_is_a_patient=True)) == 2
    assert [i.group_id for i in load_items(csv, filter_column="modality", filter_values=("us",))] == [
        "p1", str(tmp_path / "d.png")]


def test_multilabel_manifest_keeps_each_finding_and_unknowns(tmp_path):
    """Several label columns: each item keeps their texts ('' = not known), its label names the findings
    present, a row with every finding empty is skipped, and decoded frames carry the values."""
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 8, 3), 50 * i, np.uint8))
    pd.DataFrame({"path": [f"{i}.png" for i in range(4)], "group_id": ["a", "a", "b", "c"],
                  "a_lines": ["1", "0", "", ""], "b_lines": ["1", "", "0", ""]}).to_csv(tmp_path / "m.csv",
                                                                                       index=False)
    items = load_items(tmp_path / "m.csv", label_column=["a_lines", "b_lines"])
    assert [it.path.name for it in items] == ["0.png", "1.png", "2.png"]
    assert [it.values for it in items] == [("1", "1"), ("0", ""), ("", "0")]
    assert [it.label for it in items] == ["a_lines+b_lines", "-", "-"]
    ds = decode_items(items, 16)
    assert ds.values == [("1", "1"), ("0", ""), ("", "0")]
    assert decode_items(load_items(tmp_path / "m.csv", label_column="a_lines"), 16).values is None
