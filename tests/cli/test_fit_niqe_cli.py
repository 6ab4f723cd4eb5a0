"""`medgap fit-niqe` (issue 8, defect 14): an image with NaN pixels is skipped and named instead of aborting
the fit, and the path printed is the file numpy actually wrote (it appends .npz)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data
from typer.testing import CliRunner

from medgap.cli import app
from medgap.quality.niqe import NiqeModel

runner = CliRunner()


@pytest.fixture()
def good(tmp_path):
    folder = tmp_path / "good"
    folder.mkdir()
    for name in ("camera", "moon", "coins", "page"):
        cv2.imwrite(str(folder / f"{name}.png"), getattr(data, name)())
    return folder


def _nan_nifti(path):
    nib = pytest.importorskip("nibabel")
    vol = np.random.default_rng(0).normal(100, 20, (128, 128, 1)).astype(np.float32)
    vol[10:20, 10:20, 0] = np.nan
    nib.save(nib.Nifti1Image(vol, np.eye(4)), str(path))


def test_a_nan_image_is_skipped_and_named(good, tmp_path):
    _nan_nifti(good / "holes.nii.gz")
    out = tmp_path / "m.npz"
    r = runner.invoke(app, ["fit-niqe", str(good), "--out", str(out)])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "skipped" in text and "holes.nii.gz" in text and "NaN or infinite pixel values" in text
    assert "4 of 5 files" in text
    model = NiqeModel.load(out)
    assert np.isfinite(model.mu).all() and np.isfinite(model.cov).all()


def test_out_without_npz_prints_the_file_written(good, tmp_path):
    r = runner.invoke(app, ["fit-niqe", str(good), "--out", str(tmp_path / "ct_model")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "ct_model.npz").exists() and not (tmp_path / "ct_model").exists()
    assert f"niqe:model={tmp_path / 'ct_model.npz'}" in "".join(r.output.split())


def test_too_few_usable_images_is_a_usage_error(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    _nan_nifti(folder / "holes.nii.gz")
    cv2.imwrite(str(folder / "tiny.png"), np.zeros((20, 20), np.uint8))
    r = runner.invoke(app, ["fit-niqe", str(folder), "--out", str(tmp_path / "m.npz")])
    assert r.exit_code == 2, r.output
    text = " ".join(r.output.split())
    assert "holes.nii.gz" in text and "tiny.png" in text and "add images" in text
    assert not (tmp_path / "m.npz").exists()
