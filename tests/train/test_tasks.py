"""Training as tasks (issue 9, item 5): classify, multilabel and regress share one run (folds, seeds, resume,
run directory); each task's predictions.csv columns, its reload through load_run, the masked BCE and the
weighted validation loss sum(w * loss) / sum(w) over the epoch, checked against plain float64 restatements."""

from __future__ import annotations

import json
import math
import shutil
from types import SimpleNamespace

import cv2
import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import medgap
from medgap.data.balance import balance_weights
from medgap.data.predictions import PREDICTIONS_COLUMNS
from medgap.train import ConfigError, FinetuneConfig, load_run, run_finetune
from medgap.train.module import TaskModule
from medgap.train.tasks import MultilabelTask, RegressTask, masked_bce

COMMON = list(PREDICTIONS_COLUMNS)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """12 patients x 2 images (24 px): a score in 0..3 sets the brightness; finding a is 'red', b is 'textured';
    some findings are not known (empty)."""
    root = tmp_path_factory.mktemp("tasks")
    rng = np.random.default_rng(0)
    rows = []
    for p in range(12):
        score = p % 4
        a, b = p % 2, (p // 2) % 2
        for i in range(2):
            img = np.full((24, 24, 3), 40 + 50 * score, np.float64)
            img[..., 2] += 60 * a
            img += rng.normal(0, 40 if b else 5, img.shape)
            path = root / f"p{p}_{i}.png"
            cv2.imwrite(str(path), np.clip(img, 0, 255).astype(np.uint8))
            rows.append({"path": path.name, "group_id": f"p{p}", "label": f"c{score % 2}", "score": score,
                         "a": "" if (p, i) in ((0, 1), (5, 0)) else a, "b": "" if p == 3 else b})
    csv = root / "manifest.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


def _cfg(data, out, **kw) -> FinetuneConfig:
    base = dict(data=data, out=out, init="scratch", folds=2, epochs=1, image_size=32, batch_size=8, patience=5,
                balance="patient")
    return FinetuneConfig(**{**base, **kw})


def _frames(paths):
    return [next(iter(medgap.read_frames(p))) for p in paths]


@pytest.fixture(scope="module")
def regress_run(manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("regress") / "run"
    run_finetune(_cfg(manifest, out, task="regress", label_column="score", loss="huber"), log=lambda s: None)
    return out


def test_regress_run_writes_the_contract_and_reloads(regress_run, manifest):
    out = regress_run
    for name in ("config.json", "versions.json", "classes.json", "split.csv", "metrics.json", "predictions.csv",
                 "preprocessing.json", "fold_0/best.ckpt", "fold_1/last.ckpt", "fold_1/metrics.json"):
        assert (out / name).exists(), name
    assert json.loads((out / "classes.json").read_text()) == ["score"]
    assert json.loads((out / "config.json").read_text())["task"] == "regress"
    preds = pd.read_csv(out / "predictions.csv")
    assert list(preds.columns) == COMMON + ["target"]
    assert len(preds) == 24 and preds.item_id.is_unique
    truth = pd.read_csv(manifest).set_index("path").score
    names = preds.path.map(lambda p: p.rsplit("/", 1)[-1])
    np.testing.assert_array_equal(preds.target.to_numpy(), truth[names].to_numpy())
    assert np.issubdtype(preds.pred.dtype, np.floating)
    metrics = json.loads((out / "metrics.json").read_text())
    err = preds.pred - preds.target
    assert metrics["overall_mae"] == pytest.approx(err.abs().mean(), rel=1e-9)
    assert metrics["overall_rmse"] == pytest.approx(np.sqrt((err ** 2).mean()), rel=1e-9)
    loaded = load_run(out, fold=1)
    assert loaded.task == "regress" and loaded.classes == ["score"]
    rows = preds[preds.fold == 1]
    np.testing.assert_allclose(loaded.predict(_frames(rows.path)), rows.pred, atol=1e-4)
    with pytest.raises(medgap.train.RunLoadError, match="scores, not probabilities"):
        loaded.predict_proba(_frames(rows.path[:1]))


def test_evaluate_run_refuses_a_regression_run_by_name(regress_run):
    from medgap.evaluation import EvaluationError, evaluate_run

    with pytest.raises(EvaluationError, match=r"--task regress run.*classification.*evaluate_task_run.*target"):
        evaluate_run(regress_run, bootstrap=100)


def test_a_resumed_regression_run_equals_the_uninterrupted_one(regress_run, manifest, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(regress_run, out)
    uninterrupted = (out / "predictions.csv").read_bytes()
    shutil.rmtree(out / "fold_1")
    for name in ("predictions.csv", "metrics.json", "split.csv"):
        (out / name).unlink()
    said = []
    # the copy records the original --out: only a resumable difference, as when a run directory is moved
    cfg = _cfg(manifest, out, task="regress", label_column="score", loss="huber")
    recorded = json.loads((out / "config.json").read_text())
    recorded["out"] = str(out)
    (out / "config.json").write_text(json.dumps(recorded))
    run_finetune(cfg, log=said.append)
    assert any(s.startswith("fold 0: finished earlier") for s in said)
    assert not any(s.startswith("fold 1: finished earlier") for s in said)
    assert (out / "predictions.csv").read_bytes() == uninterrupted


def test_multilabel_run_keeps_unknown_findings_empty_and_reloads(manifest, tmp_path):
    out = tmp_path / "run"
    run_finetune(_cfg(manifest, out, task="multilabel", label_columns="a,b"), log=lambda s: None)
    preds = pd.read_csv(out / "predictions.csv")
    assert list(preds.columns) == COMMON + ["label_a", "prob_a", "label_b", "prob_b"]
    assert json.loads((out / "classes.json").read_text()) == ["a", "b"]
    src = pd.read_csv(manifest, dtype=str, keep_default_na=False).set_index("path")
    names = preds.path.map(lambda p: p.rsplit("/", 1)[-1])
    for f in ("a", "b"):
        expected = src.loc[names, f].replace("", np.nan).astype(float).to_numpy()
        np.testing.assert_array_equal(preds[f"label_{f}"].to_numpy(), expected)  # NaN where not known
        assert preds[f"prob_{f}"].between(0, 1).all()
    assert preds.label_a.isna().sum() == 2 and preds.label_b.isna().sum() == 2
    present = [("+".join(f for f in "ab" if r[f"prob_{f}"] >= 0.5) or "-") for _, r in preds.iterrows()]
    assert list(preds.pred) == present
    logs = pd.read_csv(next((out / "fold_0" / "logs").glob("version_*/metrics.csv")))
    assert {"val_loss", "val_auc_a", "val_auc_b", "val_auc"} <= set(logs.columns)
    loaded = load_run(out, fold=0)
    rows = preds[preds.fold == 0]
    np.testing.assert_allclose(loaded.predict_proba(_frames(rows.path)), rows[["prob_a", "prob_b"]], atol=1e-5)
    both = load_run(out)  # the folds' average of the sigmoid probabilities
    frames = _frames(rows.path[:3])
    per_fold = np.stack([load_run(out, fold=k).predict(frames) for k in (0, 1)])
    np.testing.assert_allclose(both.predict(frames), per_fold.mean(0), atol=1e-5)


def test_masked_bce_ignores_unknown_findings_float64_restatement():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, (6, 3))
    target = rng.integers(0, 2, (6, 3)).astype(float)
    target[[0, 2, 5], [1, 0, 2]] = np.nan
    target[4] = np.nan  # an item with no known finding: no loss, no count
    loss_sum, count = masked_bce(torch.tensor(logits), torch.tensor(target))
    for i in range(6):
        terms = [-(t * math.log(1 / (1 + math.exp(-z))) + (1 - t) * math.log(1 - 1 / (1 + math.exp(-z))))
                 for z, t in zip(logits[i], target[i]) if not math.isnan(t)]
        assert float(loss_sum[i]) == pytest.approx(sum(terms), rel=1e-12)
        assert float(count[i]) == len(terms)
    # an unknown finding is not a negative: marking it 0 changes the loss
    as_negative = np.nan_to_num(target, nan=0.0)
    assert float(masked_bce(torch.tensor(logits), torch.tensor(as_negative))[0].sum()) > float(loss_sum.sum()) + 0.1


def _validate(task, x, y, w, model):
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y, w), batch_size=4, shuffle=False)
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu")
    return trainer.validate(TaskModule(model, task), loader, verbose=False)[0]


_GROUPS = np.array(list("aaaaaaaaabbc"))


def test_weighted_validation_loss_of_multilabel_is_the_epoch_ratio_over_known_findings():
    torch.manual_seed(0)
    model = nn.Linear(5, 2)
    x = torch.randn(12, 5)
    y = torch.tensor(np.random.default_rng(1).integers(0, 2, (12, 2)), dtype=torch.float32)
    y[[1, 4, 9], [0, 1, 1]] = float("nan")
    w = torch.as_tensor(balance_weights(np.zeros(12), _GROUPS, "patient"))
    task = MultilabelTask(SimpleNamespace(label_column_list=["a", "b"]))
    task.outputs = ["a", "b"]
    logged = _validate(task, x, y, w, model)
    with torch.no_grad():
        z = model(x).double().numpy()
    t, w64 = y.double().numpy(), w.numpy().astype(np.float64)
    p = 1 / (1 + np.exp(-z))
    bce = -(np.nan_to_num(t) * np.log(p) + (1 - np.nan_to_num(t)) * np.log(1 - p))
    known = ~np.isnan(t)
    expected = (w64[:, None] * bce * known).sum() / (w64[:, None] * known).sum()
    assert logged["val_loss"] == pytest.approx(expected, rel=1e-6)
    from sklearn.metrics import roc_auc_score

    auc_a = roc_auc_score(t[known[:, 0], 0], z[known[:, 0], 0])
    assert logged["val_auc_a"] == pytest.approx(auc_a, rel=1e-6)


@pytest.mark.parametrize("loss", ["mse", "huber"])
def test_weighted_validation_loss_of_regress_is_the_epoch_ratio_of_sums(loss):
    torch.manual_seed(0)
    model = nn.Linear(5, 1)
    x = torch.randn(12, 5)
    y = torch.tensor(np.random.default_rng(2).uniform(-3, 3, 12), dtype=torch.float32)
    w = torch.as_tensor(balance_weights(np.zeros(12), _GROUPS, "patient"))
    task = RegressTask(SimpleNamespace(label_column="score", loss=loss))
    task.outputs, task.scale = ["score"], 2.0
    logged = _validate(task, x, y, w, model)
    with torch.no_grad():
        d = (model(x).double().numpy()[:, 0] - y.double().numpy()) / 2.0
    per_item = d ** 2 if loss == "mse" else np.where(np.abs(d) < 1, 0.5 * d ** 2, np.abs(d) - 0.5)
    w64 = w.numpy().astype(np.float64)
    expected = (w64 * per_item).sum() / w64.sum()
    batch_means = [(w64[i:i + 4] * per_item[i:i + 4]).sum() / w64[i:i + 4].sum() for i in (0, 4, 8)]
    assert abs(np.mean(batch_means) - expected) > 1e-3  # the data tell the two apart
    assert logged["val_loss"] == pytest.approx(expected, rel=1e-6)
    from scipy.stats import spearmanr

    pred = model(x).detach().double().numpy()[:, 0]
    assert logged["val_mae"] == pytest.approx(np.abs(pred - y.numpy()).mean(), rel=1e-5)
    assert logged["val_spearman"] == pytest.approx(spearmanr(pred, y.numpy()).statistic, rel=1e-5)


@pytest.mark.parametrize("change, message", [
    ({"task": "regress", "strategy": "features"}, r"--strategy features .*--task regress"),
    ({"task": "regress", "balance": "class"}, r"--balance class .*--task regress.*--balance patient"),
    ({"task": "multilabel", "balance": "patient"}, r"--task multilabel needs --label-columns"),
    ({"task": "classify", "label_columns": "a,b"}, r"--label-columns .*--task multilabel"),
    ({"task": "classify", "loss": "huber"}, r"--loss huber is for --task regress"),
    ({"task": "regres"}, r"--task 'regres' is not one of .*Did you mean 'regress'"),
])
def test_options_that_do_not_go_with_the_task_are_refused(manifest, tmp_path, change, message):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=message):
        run_finetune(_cfg(manifest, out, **{"balance": "class", **change}), log=lambda s: None)
    assert not out.exists()


def test_regress_needs_a_manifest_and_numbers(manifest, tmp_path):
    with pytest.raises(ConfigError, match=r"--task regress needs a CSV manifest"):
        run_finetune(_cfg(tmp_path, tmp_path / "a", task="regress"), log=lambda s: None)
    with pytest.raises(medgap.io.CollectionError, match=r"score 'c0' in column 'label' is not a number"):
        run_finetune(_cfg(manifest, tmp_path / "b", task="regress"), log=lambda s: None)


def test_the_evaluate_command_evaluates_a_regression_run(regress_run, tmp_path):
    """`medgap evaluate RUN` on a --task regress run: MAE/RMSE/Spearman with patient-bootstrap CIs, printed and
    written; the MAE equals mean |pred - target| of predictions.csv; classification-only options are refused."""
    from typer.testing import CliRunner

    from medgap.cli import app

    run = tmp_path / "run"
    shutil.copytree(regress_run, run)
    r = CliRunner().invoke(app, ["evaluate", str(run), "--bootstrap", "200"])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(run / "evaluation_regress.csv")
    preds = pd.read_csv(run / "predictions.csv")
    preds = preds[preds.split == "test"]
    mae = table.set_index("metric").loc["mae"]
    assert mae.value == pytest.approx(float(np.abs(preds.pred - preds.target).mean()), rel=1e-9)
    assert mae.ci_low <= mae.value <= mae.ci_high
    doc = json.loads((run / "evaluation_regress.json").read_text())
    assert doc["task"] == "regress" and "patients" in doc["unit_of_analysis"]
    assert "mae" in r.output and "rmse" in r.output
    r = CliRunner().invoke(app, ["evaluate", str(run), "--aggregate", "patient"])
    assert r.exit_code == 2 and "classification runs only" in " ".join(r.output.split()), r.output
