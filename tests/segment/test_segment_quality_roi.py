"""``medgap quality --roi``: each frame is scored inside its mask's bounding box (the same score as the crop
scored alone), a file without a mask gets an error row, and --roi is part of the resume key."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from medgap.cli import app

runner = CliRunner()


def test_quality_roi_scores_the_crop(tmp_path):
    rng = np.random.default_rng(0)
    data, masks = tmp_path / "data" / "g", tmp_path / "masks"
    data.mkdir(parents=True)
    masks.mkdir()
    img = np.full((160, 200), 15, np.uint8)  # flat background, textured organ
    img[40:120, 50:170] = np.clip(cv2.GaussianBlur(rng.normal(128, 40, (80, 120)), (5, 5), 1.2), 0, 255).astype(np.uint8)
    mask = np.zeros_like(img)
    mask[40:120, 50:170] = 255
    mask[40:50, 50:60] = 0  # not a rectangle: the box, not the mask, decides the crop
    cv2.imwrite(str(data / "a.png"), img)
    cv2.imwrite(str(data / "b.png"), img)  # no mask: an error row
    cv2.imwrite(str(masks / "a.png"), mask)
    out = tmp_path / "scores.csv"
    r = runner.invoke(app, ["quality", str(tmp_path / "data"), "--roi", str(masks), "-o", str(out)])
    assert r.exit_code == 1, r.output  # one file without a mask
    table = pd.read_csv(out).set_index(pd.read_csv(out)["path"].map(lambda p: p.rsplit("/", 1)[-1]))
    from medgap.quality import create_metric

    direct = create_metric("brisque")(img[40:120, 50:170].astype(np.float64))["brisque"]
    assert table.loc["a.png", "brisque"] == pytest.approx(direct, abs=1e-9)
    assert (table.loc["a.png", "width"], table.loc["a.png", "height"]) == (120, 80)
    error = table.loc["b.png", "error"]  # not "could not be read": the image, the folder and the fix
    assert error.startswith("NoMask: ") and str(data / "b.png") in error and str(masks) in error
    assert "b.png or b.png" not in error and "Add its mask there" in error
    assert "NoMask" in r.output and "Add its mask there" in r.output.replace("\n", " ")
    whole = create_metric("brisque")(img.astype(np.float64))["brisque"]
    assert abs(direct - whole) > 1  # the background changes the score: the test can tell the two apart

    cv2.imwrite(str(masks / "a.png"), np.where(mask > 0, 127, 0).astype(np.uint8))  # same file name, new region
    r = runner.invoke(app, ["quality", str(tmp_path / "data"), "--roi", str(masks), "--roi-mode", "mask", "-o",
                            str(out)])
    again = pd.read_csv(out)
    assert set(again["read_options"].dropna()) == {f"roi=masks:{masks.resolve()}|mask|127"}  # rescored under the new key
