"""Issue 9's done-when, as a notebook would do it and without medgap.cli: score a folder into a DataFrame,
compare its groups, fine-tune with the features strategy, evaluate the run, load it and predict one image read
with medgap.read_frames (the prediction is that item's row of predictions.csv).

It runs in a fresh interpreter, so that what this process already imported cannot hide an import of medgap.cli.
Real PNG files: 2 x 8 textures (sharp noise, and the same noise blurred) written by the test."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np

WORKFLOW = r"""
import json, sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import medgap
from medgap.train import FinetuneConfig, run_finetune

root, run = Path(sys.argv[1]), Path(sys.argv[2])
scores = medgap.score(root, metrics=["brisque", "imagestats"])
assert isinstance(scores, pd.DataFrame) and len(scores) == 16
result = medgap.compare(scores, reference="sharp")
brisque = result["brisque"]

run_finetune(FinetuneConfig(data=root, out=run, strategy="features", init="scratch", folds=2, image_size=32,
                            batch_size=8), log=lambda s: None)
evaluation = medgap.evaluate_run(run, bootstrap=200)
accuracy = float(evaluation.overall.set_index("metric").loc["accuracy", "value"])

preds = pd.read_csv(run / "predictions.csv")
row = preds.iloc[3]
frame = next(iter(medgap.read_frames(row.path)))
model, transform, classes = medgap.load_run(run, fold=int(row.fold))
with torch.no_grad():
    prob = torch.softmax(model(transform(frame)[None]), 1)[0].numpy()
expected = row[[f"prob_{c}" for c in classes]].to_numpy(float)
ensemble = medgap.load_run(run).predict_proba(frame)[0]
print(json.dumps({
    "groups": sorted(scores.group.unique()), "compared": sorted(result),
    "median_brisque": scores.groupby("group").brisque.median().to_dict(),
    "accuracy": accuracy, "held_out_accuracy": float((preds.label == preds.pred).mean()),
    "pred": classes[int(prob.argmax())], "row_pred": row.pred, "max_diff": float(np.abs(prob - expected).max()),
    "ensemble_sum": float(ensemble.sum()),
    "cli_imported": sorted(m for m in sys.modules if m == "medgap.cli" or m.startswith("medgap.cli.")),
}))
"""


def _textures(root):
    rng = np.random.default_rng(0)
    for group in ("sharp", "blurred"):
        (root / group).mkdir(parents=True)
    for i in range(8):
        noise = np.clip(rng.normal(128, 50, (48, 48)), 0, 255).astype(np.uint8)
        cv2.imwrite(str(root / "sharp" / f"{i}.png"), noise)
        cv2.imwrite(str(root / "blurred" / f"{i}.png"), cv2.GaussianBlur(noise, (0, 0), 2))


def test_notebook_workflow_without_the_cli(tmp_path):
    _textures(tmp_path / "images")
    done = subprocess.run([sys.executable, "-c", WORKFLOW, str(tmp_path / "images"), str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["groups"] == ["blurred", "sharp"] and "brisque" in out["compared"]
    assert out["median_brisque"]["blurred"] != out["median_brisque"]["sharp"]
    assert out["accuracy"] == out["held_out_accuracy"]  # evaluate_run read the run's own predictions
    assert out["pred"] == out["row_pred"] and out["max_diff"] < 1e-5
    assert abs(out["ensemble_sum"] - 1) < 1e-5
    assert out["cli_imported"] == []
