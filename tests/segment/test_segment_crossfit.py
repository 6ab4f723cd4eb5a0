"""Cross-fitted masks of a segment-train run (``--roi RUN``): an image the run held out in fold k is predicted by
fold k's model, an image of a held-out patient by that patient's fold, any other image by the mean of the folds;
predictions are cached once and recorded; ``keep_largest`` against OpenCV's connected components."""

from __future__ import annotations

import functools
import json
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from medgap.data.items import LabelledItem
from medgap.data.tensors import decode_items
from medgap.io import read_frames
from medgap.segment.masks import keep_largest
from medgap.segment.model import create_unet, normalisation
from medgap.segment.roi import RoiSource

SIZE = 64


def _image(path, seed):
    rng = np.random.default_rng(seed)
    h, w = 70, 90
    yy, xx = np.mgrid[:h, :w]
    m = ((yy - 35) / 20.0) ** 2 + ((xx - 30 - 10 * seed) / 15.0) ** 2 <= 1
    img = np.clip(60 + 120 * m + rng.normal(0, 25, m.shape), 0, 255).astype(np.uint8)
    cv2.imwrite(str(path), img)
    cv2.imwrite(str(path.parent.parent / "msk" / path.name), (m * 255).astype(np.uint8))
    return path


def _logits(model, path, norm):
    frame = next(iter(read_frames(path)))
    from medgap.data.tensors import to_square_uint8

    x = torch.from_numpy(to_square_uint8(frame, SIZE).transpose(2, 0, 1)).float()[None]
    mean = torch.tensor(norm["mean"]).view(1, 3, 1, 1) * 255
    std = torch.tensor(norm["std"]).view(1, 3, 1, 1) * 255
    with torch.no_grad():
        return model.eval()((x - mean) / std)[0, 0].numpy().astype(np.float64), frame


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A two-fold run directory written by hand (random U-Nets, each head's bias set so that about half of the
    first image is in its mask: the folds' masks differ), images a (held out by fold 0), b (held out by fold 1),
    c (not a training pair; its patient P1 was held out by fold 1, says MANIFEST.csv), d (unknown)."""
    root = tmp_path_factory.mktemp("crossfit")
    data = root / "data"
    (data / "img").mkdir(parents=True)
    (data / "msk").mkdir()
    paths = {name: _image(data / "img" / f"{name}.png", i) for i, name in enumerate("abcd")}
    pd.DataFrame({"image": ["img/a.png", "img/b.png"], "mask": ["msk/a.png", "msk/b.png"]}).to_csv(
        data / "pairs.csv", index=False)
    pd.DataFrame({"path": ["img/a.png", "img/b.png", "img/c.png", "img/d.png"],
                  "group_id": ["P0", "P1", "P1", "P9"]}).to_csv(data / "MANIFEST.csv", index=False)
    out = root / "run"
    norm = normalisation("efficientnet_lite0")
    for k in (0, 1):
        torch.manual_seed(10 + k)
        model = create_unet("efficientnet_lite0", "scratch")
        logits, _ = _logits(model, paths["a"], norm)
        with torch.no_grad():
            model.segmentation_head[0].bias -= float(np.median(logits))
        (out / f"fold_{k}").mkdir(parents=True)
        torch.save(model.state_dict(), out / f"fold_{k}" / "model.pt")
    (out / "preprocessing.json").write_text(json.dumps({"image_size": SIZE, "channels": 3, **norm,
                                                        "encoder": "efficientnet_lite0", "init": "scratch",
                                                        "mask_threshold": 127}))
    (out / "config.json").write_text(json.dumps({"pairs": str(data / "pairs.csv"), "manifest": None,
                                                 "mask_threshold": 127}))
    rows = [(paths["a"], data / "msk/a.png", "P0", 0, "test"), (paths["b"], data / "msk/b.png", "P1", 0, "train"),
            (paths["a"], data / "msk/a.png", "P0", 1, "train"), (paths["b"], data / "msk/b.png", "P1", 1, "test")]
    pd.DataFrame(rows, columns=["image", "mask", "patient", "fold", "role"]).to_csv(out / "split.csv", index=False)
    return out, paths, norm


@functools.cache
def _model(file):
    model = create_unet("efficientnet_lite0", "scratch")
    model.load_state_dict(torch.load(file, weights_only=True))
    return model


def _direct(run_dir, norm, path, folds, keep):
    """The mask predicted straight from the folds' model.pt files: mean sigmoid, resized to the image, >= 0.5."""
    probs = []
    for k in folds:
        logits, frame = _logits(_model(run_dir / f"fold_{k}" / "model.pt"), path, norm)
        probs.append(1 / (1 + np.exp(-logits)))
    prob = np.mean(probs, axis=0).astype(np.float32)
    raw = cv2.resize(prob, (frame.width, frame.height), interpolation=cv2.INTER_LINEAR) >= 0.5
    return keep_largest(raw, keep), frame


def test_each_image_is_predicted_by_a_model_that_never_saw_it(run):
    out, paths, norm = run
    roi = RoiSource(out, keep_largest=0)
    expected = {"a": [0], "b": [1], "c": [1], "d": [0, 1]}
    for name, folds in expected.items():
        want, frame = _direct(out, norm, paths[name], folds, 0)
        np.testing.assert_array_equal(roi.mask(paths[name], frame), want, err_msg=name)
        assert roi.records[-1]["folds"] == " ".join(map(str, folds))
    # the folds' models disagree on a: a wrong fold would be seen
    a0, _ = _direct(out, norm, paths["a"], [0], 0)
    a1, _ = _direct(out, norm, paths["a"], [1], 0)
    assert (a0 != a1).mean() > 0.05
    models = [r["model"] for r in roi.records]
    assert models[0] == "fold 0 (held out this image)" and models[2] == "fold 1 (held out patient P1)"
    assert models[3].startswith("mean of folds 0, 1")
    assert "crossfit|keep0" in str(roi)


def test_masks_are_cached_once_and_decode_items_records_them(run):
    out, paths, norm = run
    shutil.rmtree(out / "roi_masks", ignore_errors=True)  # the other tests may have filled it
    first = RoiSource(out, keep_largest=0)
    frame = next(iter(read_frames(paths["a"])))
    m1 = first.mask(paths["a"], frame)
    cache = first.records[-1]["cache_file"]
    assert cache and first.records[-1]["cached"] is False
    again = RoiSource(out, keep_largest=0)
    np.testing.assert_array_equal(again.mask(paths["a"], frame), m1)
    assert again.records[-1]["cached"] is True and again.records[-1]["cache_file"] == cache
    ds = decode_items([LabelledItem(paths["b"], "x", "P1"), LabelledItem(paths["d"], "x", "P9")], 32,
                      roi=RoiSource(out, keep_largest=0))
    table = pd.DataFrame(ds.roi_masks)
    assert list(table["folds"]) == ["1", "0 1"] and list(table["image"]) == [str(paths["b"]), str(paths["d"])]


def test_keep_largest_against_opencv_components():
    rng = np.random.default_rng(3)
    mask = np.zeros((60, 80), bool)
    mask[5:20, 5:25] = True  # 300 px
    mask[30:50, 40:60] = True  # 400 px
    mask[40:45, 5:10] = True  # 25 px
    mask[20, 25] = True  # touches the first block only diagonally: 8-connected, part of it
    mask[55:58, 70:73] = True  # 9 px
    mask |= rng.random(mask.shape) > 0.995  # specks
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    order = np.argsort(-stats[1:, cv2.CC_STAT_AREA], kind="stable") + 1
    for k in (1, 2, 3):
        np.testing.assert_array_equal(keep_largest(mask, k), np.isin(labels, order[:k]))
    assert keep_largest(mask, 2)[20, 25]
    np.testing.assert_array_equal(keep_largest(mask, 0), mask)
    assert not keep_largest(np.zeros((4, 4), bool), 2).any()


def test_heldout_metrics_use_the_fold_that_held_each_image_out(run):
    from medgap.segment.crossfit import heldout_metrics
    from medgap.segment.masks import read_mask, region
    from medgap.segment.metrics import dice

    out, paths, norm = run
    table = heldout_metrics(out, keep=(0,)).set_index("image")
    for name, k in (("a", 0), ("b", 1)):
        want, _ = _direct(out, norm, paths[name], [k], 0)
        truth = region(read_mask(paths[name].parent.parent / "msk" / f"{name}.png"))
        assert table.loc[str(paths[name]), "dice"] == pytest.approx(dice(want, truth), abs=1e-12)
        assert table.loc[str(paths[name]), "fold"] == k


def test_finetune_roi_writes_which_mask_each_image_got(tmp_path):
    """``finetune --roi MASK_DIR``: roi_masks.csv in the run lists every image with its mask file, and the
    image without one with the reason it was left out."""
    from medgap.train import FinetuneConfig, run_finetune

    rng = np.random.default_rng(0)
    rows = []
    for c in range(2):
        for i in range(6):
            img = np.clip(rng.normal(60 + 120 * c, 30, (40, 48)), 0, 255).astype(np.uint8)
            path = tmp_path / "data" / f"class{c}" / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), img)
            if (c, i) != (1, 5):  # one image without a mask
                mask = np.zeros_like(img)
                mask[5:30, 8:40] = 255
                (tmp_path / "masks" / f"class{c}").mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(tmp_path / "masks" / f"class{c}" / f"{i}.png"), mask)
            rows.append({"path": str(path), "label": f"class{c}", "group_id": f"p{c}{i // 2}"})
    pd.DataFrame(rows).to_csv(tmp_path / "data.csv", index=False)
    out = tmp_path / "run"
    run_finetune(FinetuneConfig(data=tmp_path / "data.csv", out=out, strategy="features", init="scratch", folds=2,
                                image_size=32, batch_size=8, roi=tmp_path / "masks"), log=lambda s: None)
    table = pd.read_csv(out / "roi_masks.csv", keep_default_na=False)
    assert len(table) == 12 and set(table["image"]) == {r["path"] for r in rows}
    have = table[table["mask"] != ""]
    assert all(m.replace("/masks/", "/data/") == i for m, i in zip(have["mask"], have["image"]))
    assert list(table.loc[table["mask"] == "", "image"]) == [str(tmp_path / "data" / "class1" / "5.png")]
