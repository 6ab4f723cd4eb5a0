"""A rerun into the same output gives the rows a fresh run over the current collection would give: renamed
groups and changed manifest columns are relabelled (no decoding), a changed video stride or NIfTI axis rescores
those files, rows of deleted or renamed files go, a different metric set is refused with both named."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medgap.io import collect
from medgap.quality import create_metric
from medgap.scoring import StoreError, score_collection

STATS = [create_metric("imagestats")]


def _png(path: Path, seed: int, size: int = 48) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8))
    return path


def _video(path: Path, frames: int = 9) -> Path:
    import av

    rng = np.random.default_rng(1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(frames):
            img = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode())
    return path


def _nifti(path: Path) -> Path:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(2).normal(100, 20, (40, 36, 6)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    return path


def _table(out: Path) -> pd.DataFrame:
    df = pd.read_parquet(out) if out.suffix == ".parquet" else pd.read_csv(out)
    return df[sorted(df.columns)].sort_values("item_id").reset_index(drop=True)


def assert_as_fresh(sources, metrics, out: Path, tmp_path: Path, **kw) -> None:
    """``out`` holds exactly the rows (and columns) of a fresh run over ``sources``."""
    fresh = tmp_path / f"fresh{out.suffix}"
    for p in (fresh, fresh.with_name(fresh.name + ".parts")):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    score_collection(sources, metrics, fresh, **kw)
    pd.testing.assert_frame_equal(_table(out), _table(fresh))


@pytest.fixture()
def folder(tmp_path) -> Path:
    root = tmp_path / "data"
    for i in range(3):
        _png(root / "cxr" / f"c{i}.png", i)
        _png(root / "photo" / f"p{i}.png", 10 + i)
    return root


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_renamed_groups_are_relabelled_without_rescoring(folder, tmp_path, suffix):
    out = tmp_path / f"s{suffix}"
    score_collection(collect(groups=[("cxr", folder / "cxr"), ("natural", folder / "photo")]), STATS, out)
    renamed = collect(groups=[("chest x-ray", folder / "cxr"), ("natural", folder / "photo")])
    s = score_collection(renamed, STATS, out)
    assert sorted(set(_table(out).group)) == ["chest x-ray", "natural"]
    assert (s.files_skipped, s.files_scored) == (6, 0)
    assert s.notes == ["3 files relabelled (group or manifest columns changed; scores kept)"]
    assert_as_fresh(renamed, STATS, out, tmp_path)
    assert score_collection(renamed, STATS, out).notes == []  # nothing left to relabel


def test_changed_manifest_columns_are_relabelled(folder, tmp_path):
    files = sorted(folder.rglob("*.png"))
    manifest = tmp_path / "m.csv"
    pd.DataFrame({"path": files, "group": "g", "label": [f"l{i % 2}" for i in range(6)], "site": "A"}).to_csv(
        manifest, index=False)
    out = tmp_path / "s.parquet"
    score_collection(collect(manifest=manifest), STATS, out)
    # a label corrected, a column gone, a column added
    pd.DataFrame({"path": files, "group": "g", "label": ["l9"] + [f"l{i % 2}" for i in range(1, 6)],
                  "patient": [f"p{i // 2}" for i in range(6)]}).to_csv(manifest, index=False)
    s = score_collection(collect(manifest=manifest), STATS, out)
    df = _table(out)
    assert "site" not in df and df.patient.notna().all() and (df.label == "l9").sum() == 1
    assert s.files_scored == 0 and s.notes == ["6 files relabelled (group or manifest columns changed; scores kept)"]
    assert_as_fresh(collect(manifest=manifest), STATS, out, tmp_path)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_deleted_and_renamed_files_leave_no_rows(folder, tmp_path, suffix):
    out = tmp_path / f"s{suffix}"
    score_collection(collect([folder]), STATS, out)
    (folder / "cxr" / "c0.png").unlink()
    os.rename(folder / "cxr" / "c1.png", folder / "cxr" / "c1-renamed.png")
    s = score_collection(collect([folder]), STATS, out)
    assert (s.files_total, s.files_skipped, s.files_scored, s.rows) == (5, 4, 1, 5)  # before: 7 rows
    assert s.notes == ["2 rows of 2 files no longer in the collection dropped"]
    assert_as_fresh(collect([folder]), STATS, out, tmp_path)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_changed_video_stride_rescores_the_videos_only(folder, tmp_path, suffix):
    _video(folder / "pocus" / "clip.mp4", frames=9)
    out = tmp_path / f"s{suffix}"
    score_collection(collect([folder]), STATS, out, video_stride=1)
    assert (_table(out).path.str.endswith("clip.mp4")).sum() == 9
    s = score_collection(collect([folder]), STATS, out, video_stride=4)
    assert (s.files_skipped, s.files_scored) == (6, 1)
    assert s.notes == ["1 file rescored: read options changed (video_stride=1 -> video_stride=4)"]
    assert sorted(_table(out).query("path.str.endswith('clip.mp4')").frame) == [0, 4, 8]
    assert_as_fresh(collect([folder]), STATS, out, tmp_path, video_stride=4)


def test_a_changed_nifti_axis_rescores_the_volumes_only(folder, tmp_path):
    _nifti(folder / "mr" / "vol.nii.gz")
    out = tmp_path / "s.parquet"
    score_collection(collect([folder]), STATS, out, nifti_axis=2)
    assert (_table(out).path.str.endswith("vol.nii.gz")).sum() == 6
    s = score_collection(collect([folder]), STATS, out, nifti_axis=0)
    assert (s.files_skipped, s.files_scored) == (6, 1)
    assert s.notes == ["1 file rescored: read options changed (nifti_axis=2 -> nifti_axis=0)"]
    assert (_table(out).path.str.endswith("vol.nii.gz")).sum() == 40
    assert_as_fresh(collect([folder]), STATS, out, tmp_path, nifti_axis=0)
    assert score_collection(collect([folder]), STATS, out, nifti_axis=-3).files_scored == 0  # the same axis


def test_a_different_metric_set_is_refused_with_both_named(folder, tmp_path):
    out = tmp_path / "s.parquet"
    score_collection(collect([folder]), STATS, out)
    before = out.read_bytes()
    with pytest.raises(StoreError, match=r"holds scores of the metrics imagestats.*computes colourfulness, "
                                         r"imagestats.*another --out"):
        score_collection(collect([folder]), [*STATS, create_metric("colourfulness")], out)
    assert out.read_bytes() == before and not out.with_name(out.name + ".parts").exists()


def test_changed_metric_parameters_rescore(folder, tmp_path):
    out = tmp_path / "s.parquet"
    metric = create_metric("brisque")
    score_collection(collect([folder / "photo"]), [metric], out)
    tuned = create_metric("brisque", model=None)  # no parameter: the same version, nothing rescored
    assert score_collection(collect([folder / "photo"]), [tuned], out).files_scored == 0
    from medgap.quality.registry import Metric

    other = Metric(metric.info, metric.fn, {"model": "other.yml"})  # a parameter changes the version
    s = score_collection(collect([folder / "photo"]), [other], out)
    assert s.files_scored == 3 and s.notes[0].startswith("3 files rescored: metric versions or parameters changed")


def test_an_output_of_the_previous_format_resumes(folder, tmp_path):
    """Outputs written before read options were recorded: images resume, videos and volumes (whose stride or
    axis is unknown) are rescored once."""
    _video(folder / "pocus" / "clip.mp4", frames=3)
    _nifti(folder / "mr" / "vol.nii.gz")
    out = tmp_path / "s.parquet"
    score_collection(collect([folder]), STATS, out)
    pd.read_parquet(out).drop(columns="read_options").to_parquet(out, index=False)  # what medgap wrote before
    s = score_collection(collect([folder]), STATS, out)
    assert (s.files_skipped, s.files_scored) == (6, 2)
    assert s.notes == ["2 files rescored: read options changed (not recorded by an older medgap -> nifti_axis=2; "
                       "not recorded by an older medgap -> video_stride=1)"]
    assert_as_fresh(collect([folder]), STATS, out, tmp_path)
