"""load_run: a finished run reloads as (model, transform, classes) whose probabilities on each fold's held-out
items are the run's predictions.csv (features with logistic regression and SVM, a Lightning-trained fold)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

import medgap
from medgap.models import CheckpointError
from medgap.train import FinetuneConfig, LoadedRun, RunLoadError, load_run, run_finetune


def _run(tiny_tree, out, **options):
    cfg = FinetuneConfig(data=tiny_tree, out=out, init="scratch", folds=2, epochs=1, image_size=32, batch_size=8,
                         patience=5, **options)
    run_finetune(cfg, log=lambda s: None)
    return pd.read_csv(out / "predictions.csv")


def _check_held_out(out, preds, fold):
    loaded = load_run(out, fold=fold)
    model, transform, classes = loaded
    rows = preds[preds.fold == fold]
    frames = [next(iter(medgap.read_frames(p))) for p in rows.path]
    prob = loaded.predict_proba(frames)
    expected = rows[[f"prob_{c}" for c in classes]].to_numpy()
    np.testing.assert_allclose(prob, expected, atol=1e-5)
    with torch.no_grad():  # the plain (model, transform) path gives the same
        direct = torch.softmax(model(torch.stack([transform(f) for f in frames])), 1).numpy()
    np.testing.assert_allclose(direct, expected, atol=1e-5)
    assert [classes[i] for i in prob.argmax(1)] == list(rows.pred)


@pytest.mark.parametrize("classifier", ["logreg", "svm"])
def test_features_run_reloads_with_its_held_out_probabilities(tiny_tree, tmp_path, classifier):
    out = tmp_path / "run"
    preds = _run(tiny_tree, out, strategy="features", classifier=classifier)
    for k in (0, 1):
        _check_held_out(out, preds, k)
    saved = {p.name for p in (out / "fold_0").iterdir()}
    assert "model.ckpt" in saved and ("classifier.skops" in saved) == (classifier == "svm")


def test_a_classifier_file_with_untrusted_types_is_refused(tiny_tree, tmp_path):
    import os

    import skops.io
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    out = tmp_path / "run"
    _run(tiny_tree, out, strategy="features", classifier="svm")
    skops.io.dump(make_pipeline(FunctionTransformer(os.system)), out / "fold_0" / "classifier.skops")
    with pytest.raises(CheckpointError, match=r"classifier.skops: holds types that are not plain scikit-learn "
                                              r"\(.*system.*\); it was not loaded.*delete .*fold_0"):
        load_run(out, fold=0)
    (out / "fold_1" / "classifier.skops").write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(CheckpointError, match=r"classifier.skops: damaged or not a skops file"):
        load_run(out, fold=1)


def test_trained_run_reloads_its_best_checkpoint(tiny_tree, tmp_path):
    out = tmp_path / "run"
    preds = _run(tiny_tree, out, strategy="linear")
    _check_held_out(out, preds, 1)
    moved = tmp_path / "moved"
    shutil.move(out, moved)  # metrics.json holds the absolute checkpoint path; the file is found by name
    _check_held_out(moved, preds, 0)


def test_default_is_the_folds_average_and_unpacks(tiny_tree, tmp_path):
    out = tmp_path / "run"
    preds = _run(tiny_tree, out, strategy="features")
    loaded = load_run(out)
    assert isinstance(loaded, LoadedRun) and loaded.folds == [0, 1]
    model, transform, classes = loaded
    assert classes == ["class0", "class1", "class2"] and not model.training
    frame = next(iter(medgap.read_frames(preds.path[0])))
    x = transform(frame)
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    recorded = json.loads((out / "preprocessing.json").read_text())
    assert recorded == {"image_size": 32, "channels": 3, "mean": [0.5] * 3, "std": [0.5] * 3}
    assert (transform.image_size, transform.mean, transform.std) == (32, (0.5,) * 3, (0.5,) * 3)
    (out / "preprocessing.json").unlink()  # a run from before the file: the backbone's mean/std, same input
    assert torch.equal(load_run(out, fold=0).transform(frame), x)
    per_fold = np.stack([load_run(out, fold=k).predict_proba(frame) for k in (0, 1)])
    np.testing.assert_allclose(loaded.predict_proba(frame), per_fold.mean(0), atol=1e-6)
    np.testing.assert_allclose(loaded.predict_proba(frame.pixels), loaded.predict_proba(frame), atol=0)


def test_missing_unfinished_and_damaged_runs_name_the_fix(tiny_tree, tmp_path):
    with pytest.raises(RunLoadError, match="no such run directory"):
        load_run(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunLoadError, match=r"config.json: missing; .*--out folder"):
        load_run(tmp_path / "empty")
    out = tmp_path / "run"
    _run(tiny_tree, out, strategy="features")
    with pytest.raises(RunLoadError, match=r"fold=2; the run has folds 0..1"):
        load_run(out, fold=2)
    (out / "fold_1" / "metrics.json").unlink()
    with pytest.raises(RunLoadError, match=r"fold\(s\) 1 of 2 are not finished.*fold=k \(finished: \[0\]\)"):
        load_run(out)
    with pytest.raises(RunLoadError, match="fold 1 is not finished"):
        load_run(out, fold=1)
    assert load_run(out, fold=0).folds == [0]
    metrics = json.loads((out / "fold_0" / "metrics.json").read_text())
    del metrics["best_checkpoint"]  # a features fold saved before the classifier was
    (out / "fold_0" / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(RunLoadError, match=r"did not save the features classifier.*delete .*fold_0 and rerun"):
        load_run(out, fold=0)


def test_a_planted_checkpoint_is_refused_not_run(tiny_tree, tmp_path):
    import pickle

    out = tmp_path / "run"
    _run(tiny_tree, out, strategy="features")
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (out / "fold_0" / "model.ckpt").write_bytes(pickle.dumps({"state_dict": Payload()}, protocol=2))
    with pytest.raises(CheckpointError, match=r"model.ckpt: .*not loaded.*delete .*fold_0"):
        load_run(out, fold=0)
    assert not marker.exists()
