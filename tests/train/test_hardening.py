"""Fine-tuning under hostile or damaged inputs (issue 8): a planted pickle in a run directory never runs, a
truncated checkpoint is named, a resumed run equals an uninterrupted one bit for bit, the configuration and the
data are checked before anything is written, and a decoder that panics on a damaged file does not stop training."""

from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import pandas as pd
import pydicom.data
import pytest
import torch

from medgap.io import CollectionError
from medgap.models import CheckpointError
from medgap.train import ConfigError, FinetuneConfig, run_finetune


def _tiny(tree, out, **kw) -> FinetuneConfig:
    base = dict(data=tree, out=out, init="scratch", folds=2, epochs=1, image_size=32, batch_size=8, patience=5)
    return FinetuneConfig(**{**base, **kw})


class _TouchPayload:
    """Unpickling this runs ``Path.touch(marker)``: a stand-in for any code an attacker plants."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_planted_pickle_in_last_ckpt_is_refused_and_never_runs(tiny_tree, tmp_path):
    out, marker = tmp_path / "run", tmp_path / "payload_ran"
    (out / "fold_0").mkdir(parents=True)
    torch.save({"epoch": 3, "state_dict": {}, "x": _TouchPayload(marker)}, out / "fold_0" / "last.ckpt")
    with pytest.raises(CheckpointError, match=r"(?is)fold_0/last\.ckpt: holds more than tensors.*delete .*fold_0"):
        run_finetune(_tiny(tiny_tree, out), log=lambda s: None)
    assert not marker.exists(), "the planted pickle was executed"


def test_truncated_checkpoint_is_named_with_the_fix(tiny_tree, tmp_path):
    out = tmp_path / "run"
    (out / "fold_0").mkdir(parents=True)
    good = tmp_path / "good.ckpt"
    torch.save({"epoch": 1, "state_dict": {"w": torch.ones(2000)}}, good)
    blob = good.read_bytes()
    (out / "fold_0" / "last.ckpt").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match=r"(?is)last\.ckpt: truncated or damaged.*delete"):
        run_finetune(_tiny(tiny_tree, out), log=lambda s: None)


def test_lightning_checkpoints_load_with_weights_only(tiny_tree, tmp_path):
    """medgap's own last.ckpt and best.ckpt hold only what the restricted unpickler accepts, and the fold records
    its seed."""
    out = tmp_path / "run"
    run_finetune(_tiny(tiny_tree, out, seed=7), log=lambda s: None)
    for k in (0, 1):
        for name in ("last.ckpt", "best.ckpt"):
            blob = torch.load(out / f"fold_{k}" / name, map_location="cpu", weights_only=True)
            assert "state_dict" in blob and "epoch" in blob
        assert json.loads((out / f"fold_{k}" / "metrics.json").read_text())["seed"] == 7 + k


def test_resumed_run_equals_an_uninterrupted_one_bit_for_bit(tiny_tree, tmp_path):
    """Run A uninterrupted; then the same run stopped after fold 0 (fold 1's outputs gone) and resumed: fold 0 is
    reused from disk, fold 1 trains fresh, and predictions.csv is byte-identical (each fold seeds everything
    with seed + k at its start)."""
    out = tmp_path / "run"
    cfg = _tiny(tiny_tree, out, augment=True)
    run_finetune(cfg, log=lambda s: None)
    uninterrupted = (out / "predictions.csv").read_bytes()
    shutil.rmtree(out / "fold_1")
    for name in ("predictions.csv", "metrics.json", "split.csv"):
        (out / name).unlink()
    said = []
    run_finetune(cfg, log=said.append)
    assert any(s.startswith("fold 0: finished earlier") for s in said)
    assert not any(s.startswith("fold 1: finished earlier") for s in said)
    a = pd.read_csv(pd.io.common.StringIO(uninterrupted.decode()))
    b = pd.read_csv(out / "predictions.csv")
    diff = (a.filter(like="prob_") - b.filter(like="prob_")).abs().to_numpy().max()
    assert (out / "predictions.csv").read_bytes() == uninterrupted, f"max probability difference {diff}"


# ---------------------------------------------------------------------------------------------------------
# validation before anything is written


@pytest.mark.parametrize("change, message", [
    ({"strategy": "fulll"}, "strategy 'fulll'"),
    ({"image_size": 0}, "image size"),
    ({"image_size": -32}, "image size"),
    ({"epochs": 0}, "epochs"),
    ({"folds": 1}, "folds"),
    ({"batch_size": 0}, "batch size"),
    ({"patience": 0}, "patience"),
    ({"lr": 0.0}, "learning rate"),
    ({"video_stride": 0}, "video stride"),
    ({"label_smoothing": 1.0}, "label smoothing"),
    ({"balance": "classes"}, "balance"),
    ({"classifier": "knn"}, "classifier"),
    ({"seed": -1}, "seed"),
    ({"init": "missing.ckpt"}, "missing.ckpt"),
    ({"backbone": "no_such_net"}, "no_such_net"),
    ({"filter": "modality"}, "filter"),
    ({"strategy": "partial", "trainable_stages": 99}, "trainable-stages"),
])
def test_a_bad_option_is_refused_before_anything_is_written(tiny_tree, tmp_path, change, message):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        run_finetune(_tiny(tiny_tree, out, **change), log=lambda s: None)
    assert not out.exists()


def test_a_typo_leaves_an_existing_run_untouched(tiny_tree, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text('{"keep": "me"}')
    with pytest.raises(ConfigError, match="strategy"):
        run_finetune(_tiny(tiny_tree, out, strategy="ful"), log=lambda s: None)
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]
    assert (out / "config.json").read_text() == '{"keep": "me"}'


def test_a_single_class_is_refused(tiny_tree, tmp_path):
    for c in ("class1", "class2"):
        shutil.rmtree(tiny_tree / c)
    out = tmp_path / "run"
    with pytest.raises(CollectionError, match="one class.*class0"):
        run_finetune(_tiny(tiny_tree, out), log=lambda s: None)
    assert not out.exists()


def _manifest(tree, tmp_path, patients_of_class2: int) -> pathlib.Path:
    rows = []
    for f in sorted(tree.glob("*/*.png")):
        c, i = f.parent.name, int(f.stem)
        n = patients_of_class2 if c == "class2" else 4
        rows.append({"path": str(f), "label": c, "group_id": f"{c}-p{i % n}", "modality": "us" if i < 6 else "ct"})
    csv = tmp_path / "manifest.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


def test_a_class_with_one_patient_is_refused_naming_it(tiny_tree, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(CollectionError, match=r"class 'class2' has 1 patient.*at least 2"):
        run_finetune(_tiny(_manifest(tiny_tree, tmp_path, 1), out), log=lambda s: None)
    assert not out.exists()


def test_filter_on_an_unknown_column_names_the_columns(tiny_tree, tmp_path):
    csv = _manifest(tiny_tree, tmp_path, 4)
    out = tmp_path / "run"
    with pytest.raises(CollectionError, match="no column 'nocol'.*path, label, group_id, modality"):
        run_finetune(_tiny(csv, out, filter="nocol=a"), log=lambda s: None)
    with pytest.raises(CollectionError, match="no row has modality in.*mr.*values are ct, us"):
        run_finetune(_tiny(csv, out, filter="modality=mr"), log=lambda s: None)
    assert not out.exists()


# ---------------------------------------------------------------------------------------------------------
# a decoder that panics


def damaged_rle(path: pathlib.Path) -> pathlib.Path:
    """pydicom's MR_small_RLE.dcm with 20 bytes flipped in its last two-thirds: pylibjpeg-rle's Rust decoder
    panics on it (pyo3 PanicException, a BaseException) with this choice of bytes."""
    blob = bytearray(pathlib.Path(pydicom.data.get_testdata_file("MR_small_RLE.dcm")).read_bytes())
    n = len(blob)
    for i in np.random.default_rng(1).choice(np.arange(n // 3, n), 20, replace=False):
        blob[i] ^= 0xFF
    path.write_bytes(bytes(blob))
    return path


def test_a_damaged_rle_dicom_is_reported_and_training_goes_on(tiny_tree, tmp_path):
    bad = damaged_rle(tiny_tree / "class0" / "damaged.dcm")
    out = tmp_path / "run"
    said = []
    preds = run_finetune(_tiny(tiny_tree, out, strategy="features"), log=said.append)
    assert len(preds) == 24 and str(bad) not in set(preds.path)
    assert any(s.startswith(f"skipped {bad}") for s in said), said
