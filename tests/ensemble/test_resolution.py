"""medgap resolution end to end on a tiny real set (scratch models, 2 folds, 1 epoch): one run per size with
the same split, validation predictions saved per fold, weights fitted per fold on them, the ensemble written as
a run that medgap evaluate reads, and the evaluation of every size and the ensemble."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from medgap.cli import app
from medgap.ensemble import ResolutionConfig, fit_stacking, run_resolution
from medgap.ensemble.errors import EnsembleError
from medgap.ensemble.resolution import stack_runs
from medgap.train.config import ConfigError


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """16 patients x 2 images: class c1 has a small bright square (visible at 32 px, blurred away at 16 px);
    finding 'big' a large dark half (visible at every size); some findings unknown."""
    root = tmp_path_factory.mktemp("res")
    rng = np.random.default_rng(0)
    rows = []
    for p in range(16):
        c, big = p % 2, (p // 2) % 2
        for i in range(2):
            img = rng.normal(120, 20, (48, 48)).clip(0, 255)
            if c:
                y, x = rng.integers(4, 40, 2)
                img[y:y + 4, x:x + 4] = 255
            if big:
                img[:, :24] *= 0.4
            path = root / f"p{p}_{i}.png"
            cv2.imwrite(str(path), img.astype(np.uint8))
            rows.append({"path": path.name, "group_id": f"p{p}", "label": f"c{c}", "small": c,
                         "big": "" if (p, i) == (3, 0) else big})
    csv = root / "manifest.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


def _cfg(data, out, **kw):
    base = dict(data=data, out=out, init="scratch", folds=2, epochs=1, batch_size=8, balance="patient",
                sizes="16,32", bootstrap=200)
    return ResolutionConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def classify_run(manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("resrun") / "run"
    return run_resolution(_cfg(manifest, out), log=lambda s: None)


def test_every_size_shares_one_split_and_saves_validation_predictions(classify_run):
    out = classify_run.out
    splits = [pd.read_csv(out / f"size_{s}" / "split.csv") for s in (16, 32)]
    pd.testing.assert_frame_equal(splits[0], splits[1])
    assert json.loads((out / "size_32" / "config.json").read_text())["image_size"] == 32
    for k in (0, 1):
        val = pd.read_csv(out / "size_16" / f"fold_{k}" / "val_predictions.csv")
        expected = set(splits[0].item_id[(splits[0].fold == k) & (splits[0].role == "val")])
        assert set(val.item_id) == expected and (val.split == "val").all()  # exactly the inner-validation items
        np.testing.assert_allclose(val[["prob_c0", "prob_c1"]].sum(1), 1, atol=1e-5)


def test_weights_are_refitted_per_fold_on_validation_predictions_only(classify_run):
    """Each fold's weights equal fit_stacking on that fold's val_predictions.csv of the two sizes; a change to
    a test prediction cannot move them (they never see it)."""
    out = classify_run.out
    per_fold = pd.read_csv(out / "scale_weights_per_fold.csv")
    for k in (0, 1):
        val = [pd.read_csv(out / f"size_{s}" / f"fold_{k}" / "val_predictions.csv").sort_values("item_id")
               for s in (16, 32)]
        p = np.stack([v[["prob_c0", "prob_c1"]].to_numpy() for v in val])
        y = val[0].label.map({"c0": 0, "c1": 1}).to_numpy()
        expected = fit_stacking(p, y, task="classify", l2=1e-3).weights
        got = per_fold[per_fold.fold == k].set_index("class")[["size_16", "size_32"]].loc[["c0", "c1"]].to_numpy()
        np.testing.assert_allclose(got, expected, atol=1e-6)
    mean = pd.read_csv(out / "scale_weights.csv", index_col=0)
    np.testing.assert_allclose(mean.sum(axis=1), 1.0)
    np.testing.assert_allclose(mean.to_numpy(), per_fold.groupby("class")[["size_16", "size_32"]].mean()
                               .loc[mean.index].to_numpy())


def test_ensemble_is_the_weighted_mixture_of_the_test_predictions(classify_run):
    out = classify_run.out
    ens = pd.read_csv(out / "ensemble" / "predictions.csv").set_index("item_id")
    sizes = [pd.read_csv(out / f"size_{s}" / "predictions.csv").set_index("item_id").loc[ens.index]
             for s in (16, 32)]
    for k in (0, 1):
        w = pd.read_csv(out / "ensemble" / f"fold_{k}" / "scale_weights.csv", index_col=0)
        rows = ens.fold == k
        mix = np.column_stack([w.loc[c, "size_16"] * sizes[0].loc[rows, f"prob_{c}"]
                               + w.loc[c, "size_32"] * sizes[1].loc[rows, f"prob_{c}"] for c in ("c0", "c1")])
        mix /= mix.sum(1, keepdims=True)  # classify: renormalised over classes
        np.testing.assert_allclose(ens.loc[rows, ["prob_c0", "prob_c1"]].to_numpy(), mix, atol=1e-6)
    avg = pd.read_csv(out / "average" / "predictions.csv").set_index("item_id").loc[ens.index]
    np.testing.assert_allclose(avg.prob_c1, (sizes[0].prob_c1 + sizes[1].prob_c1) / 2, atol=1e-6)


def test_evaluation_covers_every_model_with_paired_differences(classify_run):
    r = classify_run
    assert set(r.metrics.model) == {"size_16", "size_32", "ensemble", "average"}
    acc = r.metrics[(r.metrics["class"] == "overall") & (r.metrics.metric == "accuracy")].set_index("model")
    ens = pd.read_csv(r.out / "ensemble" / "predictions.csv")
    assert acc.loc["ensemble", "value"] == pytest.approx((ens.label == ens.pred).mean())
    d = r.differences[(r.differences["class"] == "overall") & (r.differences.metric == "accuracy")]
    row = d[(d.model_a == "ensemble") & (d.model_b == "size_16")].iloc[0]
    assert row.difference == pytest.approx(acc.loc["ensemble", "value"] - acc.loc["size_16", "value"])
    assert row.ci_low <= row.difference <= row.ci_high
    assert (r.out / "scale_weights.png").stat().st_size > 5000
    assert list(r.summary().index) == ["size_16", "size_32", "ensemble", "average"]


def test_a_rerun_reuses_the_sizes_and_other_options_are_refused(classify_run, manifest):
    before = (classify_run.out / "size_16" / "fold_0" / "metrics.json").stat().st_mtime_ns
    logs = []
    run_resolution(_cfg(manifest, classify_run.out), log=logs.append)
    assert (classify_run.out / "size_16" / "fold_0" / "metrics.json").stat().st_mtime_ns == before
    assert any("finished earlier" in line for line in logs)
    with pytest.raises(ConfigError, match="another configuration"):
        run_resolution(_cfg(manifest, classify_run.out, epochs=2), log=lambda s: None)
    # a config.json recorded before finetune gained a field (roi_mode, say) still resumes
    path = classify_run.out / "config.json"
    recorded = json.loads(path.read_text())
    path.write_text(json.dumps({k: v for k, v in recorded.items() if k not in ("roi", "roi_mode")}))
    run_resolution(_cfg(manifest, classify_run.out), log=lambda s: None)


def test_runs_of_different_splits_are_refused(classify_run, tmp_path):
    split = pd.read_csv(classify_run.out / "size_32" / "split.csv")
    split.loc[0, "role"] = "train" if split.loc[0, "role"] != "train" else "val"
    bad = tmp_path / "size_32"
    import shutil

    shutil.copytree(classify_run.out / "size_32", bad)
    split.to_csv(bad / "split.csv", index=False)
    with pytest.raises(EnsembleError, match="split.csv differs"):
        stack_runs({"size_16": classify_run.out / "size_16", "size_32": bad}, tmp_path / "stack")


def test_sizes_parse_and_each_size_gets_its_own_folder():
    cfg = ResolutionConfig(data="m.csv", out="runs/res", sizes=" 128,32 ,64,32")
    assert cfg.size_list == [32, 64, 128]
    sub = cfg.for_size(64)
    assert type(sub).__name__ == "FinetuneConfig" and sub.image_size == 64 and str(sub.out) == "runs/res/size_64"
    with pytest.raises(ConfigError, match="comma-separated"):
        ResolutionConfig(data="m.csv", out="o", sizes="64,big").size_list


@pytest.mark.parametrize("change, message", [({"sizes": "32"}, "at least two"), ({"strategy": "features"},
                                                                                   "features"),
                                              ({"task": "regress", "label_column": "small"}, "regress")])
def test_options_that_cannot_work_are_refused_before_writing(manifest, tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        run_resolution(_cfg(manifest, tmp_path / "r", **change), log=lambda s: None)
    assert not (tmp_path / "r").exists()


def test_multilabel_resolution_masks_unknown_findings(manifest, tmp_path):
    r = run_resolution(_cfg(manifest, tmp_path / "ml", task="multilabel", label_columns="small,big",
                            head_init="random"), log=lambda s: None)
    assert set(r.weights.index) == {"small", "big"}
    np.testing.assert_allclose(r.weights.sum(axis=1), 1.0)
    auc = r.metrics[(r.metrics.metric == "auc") & (r.metrics["class"] == "big")]
    assert (auc.n == 31).all()  # one image has 'big' unknown: left out
    assert set(r.differences.model_b) >= {"size_16", "size_32", "average"}


def test_the_command_runs_and_prints_the_table(classify_run, manifest):
    result = CliRunner().invoke(app, ["resolution", "--data", str(manifest), "--out", str(classify_run.out),
                                      "--init", "scratch", "--folds", "2", "--epochs", "1", "--batch-size", "8",
                                      "--balance", "patient", "--sizes", "16,32", "--bootstrap", "200"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "ensemble" in text and "paired differences" in text and "scale_weights.png" in text
