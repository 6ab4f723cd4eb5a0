"""medgap pretrain / finetune --init pretrain:RUN / benchmark through the command line on tiny real clips, and
the benchmark's protocol: no test patient reaches pretraining or epoch selection."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from _videos import textured_frames, write_video
from typer.testing import CliRunner

from medgap.cli import app

runner = CliRunner()
TINY = ["--backbone", "test_efficientnet", "--image-size", "24"]


@pytest.fixture()
def clips(tmp_path):
    """12 patients x 2 clips of 6 frames, two classes by colour (class = patient % 2)."""
    rows = []
    for p in range(12):
        for c in range(2):
            path = write_video(tmp_path / "clips" / f"p{p}_{c}.mp4",
                               textured_frames(6, (200, 60, 60) if p % 2 else (60, 60, 200), 10 * p + c))
            rows.append({"path": str(path.relative_to(tmp_path)), "label": f"c{p % 2}", "group_id": f"p{p}"})
    csv = tmp_path / "clips.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


def test_pretrain_then_finetune_cli(clips, tmp_path):
    run = tmp_path / "uscl"
    r = runner.invoke(app, ["pretrain", "--videos", str(clips), "--out", str(run), *TINY, "--init", "scratch",
                            "--epochs", "1", "--batch-size", "4", "--frames-per-video", "3"])
    assert r.exit_code == 0, r.output
    assert "best epoch 1" in r.output and f"--init pretrain:{run}" in r.output.replace("\n", "")
    ft = tmp_path / "ft"
    r = runner.invoke(app, ["finetune", "--data", str(clips), "--out", str(ft), *TINY, "--init", f"pretrain:{run}",
                            "--folds", "2", "--epochs", "1", "--video-stride", "3", "--head-init", "random"])
    assert r.exit_code == 0, r.output
    assert json.loads((ft / "config.json").read_text())["init"] == f"pretrain:{run}"
    assert json.loads((ft / "versions.json").read_text())["weights"]["init"]["path"] == str(run / "backbone.pt")
    r = runner.invoke(app, ["finetune", "--data", str(clips), "--out", str(tmp_path / "ft2"), "--backbone",
                            "test_resnet", "--image-size", "24", "--init", f"pretrain:{run}", "--folds", "2"])
    assert r.exit_code == 2 and "pretrained 'test_efficientnet', not 'test_resnet'" in r.output.replace("\n", "")


def test_benchmark_keeps_test_patients_out_of_pretraining(clips, tmp_path):
    out = tmp_path / "bench"
    r = runner.invoke(app, ["benchmark", "--data", str(clips), "--out", str(out), *TINY, "--inits",
                            "scratch,pretrain", "--pretrain-init", "scratch", "--folds", "3", "--seeds", "1",
                            "--epochs", "1", "--pretrain-epochs", "1", "--video-stride", "2", "--bootstrap", "100"])
    assert r.exit_code == 0, r.output
    assert "Paired differences" in r.output and "Accuracy per outer fold" in r.output and (out / "benchmark.png").stat().st_size > 10_000
    split = pd.read_csv(out / "seed_0" / "pretrain" / "split.csv", dtype=str)
    pretraining = pd.read_csv(out / "pretraining.csv", dtype=str)
    assert len(pretraining) == 3
    for k in range(3):
        fold = split[split.fold == str(k)]
        test = set(fold.group_id[fold.role == "test"])
        val = set(fold.group_id[fold.role == "val"])
        assert test and not test & val  # fine-tuning's epoch choice never sees a test patient
        seen = pd.read_csv(out / "seed_0" / "pretrain" / f"fold_{k}" / "pretrain" / "split.csv", dtype=str)
        assert not test & set(seen.patient), f"fold {k}: pretraining saw test patients"
        test_files = {p.split("#frame=")[0] for p in fold.item_id[fold.role == "test"]}
        assert not test_files & set(seen.video)
        # the pretraining checkpoint is chosen on the inner validation patients only
        assert set(seen.patient[seen.role == "val"]) == val
        assert set(seen.patient[seen.role == "train"]) == set(fold.group_id[fold.role == "train"])
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary.init) == {"scratch", "pretrain (in fold)"} and set(summary.unit) == {"item", "file", "patient"}
    diffs = pd.read_csv(out / "differences.csv")
    assert {"difference", "ci_low", "ci_high"} <= set(diffs.columns)
    results = pd.read_csv(out / "results.csv")
    assert {"sensitivity", "specificity", "f1"} <= set(results.metric)


def test_pretrain_videos_of_test_patients_are_refused(clips, tmp_path):
    r = runner.invoke(app, ["benchmark", "--data", str(clips), "--out", str(tmp_path / "b"), *TINY,
                            "--pretrain-videos", str(clips), "--seeds", "1"])
    assert r.exit_code == 2 and "also in --data" in r.output
