"""A tiny CPU run of ``medgap segment train`` on synthetic pairs, its run directory, resume and refusals, and
``medgap segment predict`` (PNG masks of the image's size, NIfTI with the input's affine and orientation)."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from medgap.cli import app
from medgap.segment.config import SegmentTrainConfig
from medgap.segment.errors import SegmentError
from medgap.segment.train import train_segmentation

runner = CliRunner()


def _pairs(root, n_patients=4, per_patient=2):
    """Gray images with a bright ellipse, their 0/255 masks (one saved as PNG bytes under a .jpg name, as in
    ../shared), one all-zero (not annotated) mask, and a pairs CSV with a patient column."""
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True)
    (root / "msk").mkdir()
    rows = []
    for p in range(n_patients):
        for j in range(per_patient):
            h, w = 70 + 3 * p, 60 + 5 * j  # not square, not the network's size
            yy, xx = np.mgrid[:h, :w]
            cy, cx = rng.uniform(0.35, 0.65) * h, rng.uniform(0.35, 0.65) * w
            m = ((yy - cy) / (0.25 * h)) ** 2 + ((xx - cx) / (0.2 * w)) ** 2 <= 1
            img = np.clip(60 + 120 * m + rng.normal(0, 10, m.shape), 0, 255).astype(np.uint8)
            name = f"p{p}_{j}"
            cv2.imwrite(str(root / "img" / f"{name}.png"), img)
            ok, png = cv2.imencode(".png", (m * 255).astype(np.uint8))
            mask_name = f"{name}.jpg" if j == 0 else f"{name}.png"  # PNG content under .jpg: read by content
            (root / "msk" / mask_name).write_bytes(png.tobytes())
            rows.append({"image": f"img/{name}.png", "mask": f"msk/{mask_name}", "patient": f"P{p}"})
    cv2.imwrite(str(root / "img" / "blank.png"), np.full((64, 64), 90, np.uint8))
    cv2.imwrite(str(root / "msk" / "blank.png"), np.zeros((64, 64), np.uint8))
    rows.append({"image": "img/blank.png", "mask": "msk/blank.png", "patient": "P0"})
    pd.DataFrame(rows).to_csv(root / "pairs.csv", index=False)
    return root / "pairs.csv"


def _cfg(pairs, out, **kw):
    options = dict(encoder="efficientnet_lite0", image_size=64, folds=2, epochs=2, batch_size=4, bootstrap=200)
    return SegmentTrainConfig(pairs=pairs, out=out, **{**options, **kw})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg")
    pairs = _pairs(root / "data")
    logs: list[str] = []
    summary = train_segmentation(_cfg(pairs, root / "run"), log=logs.append)
    return root, pairs, summary, logs


def test_run_directory_and_held_out_metrics(trained):
    root, pairs, summary, logs = trained
    run = root / "run"
    for name in ("config.json", "versions.json", "preprocessing.json", "split.csv", "per_image.csv", "metrics.csv",
                 "metrics.json", "fold_0/model.pt", "fold_0/last.pt", "fold_1/history.csv", "fold_1/per_image.csv"):
        assert (run / name).exists(), name
    assert any("1 masks are 0 everywhere (not annotated)" in s for s in logs)
    overlays = sorted((run / "fold_0").glob("overlays/*.png")) + sorted((run / "fold_1").glob("overlays/*.png"))
    assert len(overlays) == 8  # every held-out image, to look at
    per_image = pd.read_csv(run / "per_image.csv")
    assert len(per_image) == 8 and "blank" not in " ".join(per_image["image"])  # each annotated image once
    split = pd.read_csv(run / "split.csv")
    for k, part in split.groupby("fold"):  # a patient never on both sides
        assert not set(part.loc[part.role == "test", "patient"]) & set(part.loc[part.role != "test", "patient"])
    assert set(summary["metric"]) == {"dice", "iou", "hd95"}
    assert (summary["ci_low"] <= summary["mean"] + 1e-12).all() and (summary["mean"] <= summary["ci_high"] + 1e-12).all()
    assert summary.set_index("metric").loc["dice", "n_patients"] == 4
    assert len(json.loads((run / "versions.json").read_text())["packages"]) > 3


def test_rerun_resumes_and_another_config_is_refused(trained):
    root, pairs, summary, _ = trained
    logs: list[str] = []
    again = train_segmentation(_cfg(pairs, root / "run"), log=logs.append)
    assert sum("finished earlier" in s for s in logs) == 2
    pd.testing.assert_frame_equal(again, summary)
    with pytest.raises(SegmentError, match="another configuration"):
        train_segmentation(_cfg(pairs, root / "run", lr=0.5))


def test_an_interrupted_fold_continues_to_the_same_result(trained, tmp_path):
    """Stopped after fold 0's first epoch (its last.pt written), the rerun continues it and ends where the
    uninterrupted run ended."""
    root, pairs, _, _ = trained

    class Stop(Exception):
        pass

    def stop_after_first_epoch(line: str) -> None:
        if line.startswith("fold 0 epoch 1/"):
            raise Stop

    partial = tmp_path / "partial"
    with pytest.raises(Stop):
        train_segmentation(_cfg(pairs, partial), log=stop_after_first_epoch)
    logs: list[str] = []
    train_segmentation(_cfg(pairs, partial), log=logs.append)
    assert any("fold 0: resuming from" in s and "(1 epoch(s) done)" in s for s in logs)
    a = pd.read_csv(partial / "per_image.csv")
    b = pd.read_csv(root / "run" / "per_image.csv")
    np.testing.assert_allclose(a["dice"], b["dice"], atol=1e-6)


def test_a_mask_of_another_size_is_refused(tmp_path):
    pairs = _pairs(tmp_path / "data")
    cv2.imwrite(str(tmp_path / "data" / "msk" / "p1_1.png"), np.full((10, 10), 255, np.uint8))
    with pytest.raises(SegmentError, match="a mask must have its image's size"):
        train_segmentation(_cfg(pairs, tmp_path / "run"), log=lambda s: None)


def test_predict_writes_png_masks_of_the_image_size(trained, tmp_path):
    root, _, _, _ = trained
    r = runner.invoke(app, ["segment", "predict", str(root / "run"), "--images", str(root / "data" / "img"),
                            "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(tmp_path / "out" / "masks.csv")
    assert len(table) == 9
    for image, mask in zip(table["image"], table["mask"]):
        a, m = cv2.imread(image, cv2.IMREAD_UNCHANGED), cv2.imread(mask, cv2.IMREAD_UNCHANGED)
        assert m.shape == a.shape[:2] and set(np.unique(m)) <= {0, 255}
        assert (tmp_path / "out" / "overlays" / (tmp_path / mask).name).exists()


def test_nifti_masks_keep_the_affine_and_the_voxel_order(tmp_path):
    """Slice masks go back to the voxel array in the order read_frames took them out."""
    import nibabel as nib

    from medgap.io import read_frames
    from medgap.segment.predict import _write_nifti

    vol = np.zeros((20, 30, 3), np.int16)
    vol[2:8, 5:25, 1] = 100  # asymmetric: a transposed or flipped slice would land elsewhere
    vol[10:18, 20:28, 2] = 100
    affine = np.diag([0.7, 0.8, 2.5, 1.0])
    affine[:3, 3] = [-10, 5, 30]
    src = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(vol, affine), str(src))
    frames = list(read_frames(src))
    masks = [f.pixels > 50 for f in frames]
    out = _write_nifti(src, frames, masks, tmp_path / "m.nii.gz")
    back = nib.load(str(out))
    np.testing.assert_allclose(back.affine, affine)
    assert np.array_equal(np.asarray(back.dataobj) > 0, vol > 50)
