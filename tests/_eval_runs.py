"""Run directories shaped like `medgap finetune`'s, written without training (predictions.csv from noisy logits,
classes.json, config.json, split.csv, metrics.json): shared by tests/cli/test_evaluate.py and tests/evaluation/.
Importable because tests/ (the rootdir conftest's folder) is on sys.path under pytest's default import mode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

CLASSES = ["covid", "pneumonia", "regular"]
N_BOOT = 200  # enough to exercise the CIs; the default 2000 is for reports


def write_run(run: Path, seed: int, skill: float, n_patients: int = 36, folds: int = 3,
              drop_patients: int = 0) -> pd.DataFrame:
    """A 3-class CV run: patients with 1-8 frames of one video each, folds grouped by patient, predictions from
    noisy logits with a per-patient shift, a few validation rows, and split.csv. The patients and their frames are
    the same for every seed, so two runs share items; ``seed`` drives the model's scores. Returns the test rows."""
    layout = np.random.default_rng(100)
    sizes = layout.integers(1, 9, n_patients)
    label = layout.integers(0, 3, n_patients)
    fold = layout.permutation(np.arange(n_patients) % folds)
    keep = np.repeat(np.arange(n_patients) >= drop_patients, sizes)
    rng = np.random.default_rng(seed)
    patient = np.repeat(np.arange(n_patients), sizes)
    frame = np.concatenate([np.arange(s) for s in sizes])
    y = label[patient]
    logits = rng.normal(size=(y.size, 3)) + rng.normal(0, 0.8, (n_patients, 3))[patient]
    logits[np.arange(y.size), y] += skill
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    paths = [f"data/pocus/p{p:02d}_video.mp4" for p in patient]
    df = pd.DataFrame({"item_id": [f"{p}#{f}" for p, f in zip(paths, frame)], "path": paths, "frame": frame,
                       "group_id": [f"pocus-p{p:02d}" for p in patient], "fold": fold[patient], "split": "test",
                       "label": np.array(CLASSES)[y], "pred": np.array(CLASSES)[prob.argmax(axis=1)]})
    for j, c in enumerate(CLASSES):
        df[f"prob_{c}"] = prob[:, j]
    df = df[keep].reset_index(drop=True)
    run.mkdir(parents=True, exist_ok=True)
    pd.concat([df, df.head(5).assign(split="val", fold=1)]).to_csv(run / "predictions.csv", index=False)
    (run / "classes.json").write_text(json.dumps(CLASSES))
    (run / "config.json").write_text(json.dumps({"backbone": "efficientnet_lite0", "folds": folds, "seed": seed}))
    write_split(run, df)
    (run / "metrics.json").write_text(json.dumps({"overall_accuracy": float((df.label == df.pred).mean())}))
    return df


def write_split(run: Path, df: pd.DataFrame) -> None:
    """split.csv as `medgap finetune` writes it for the test rows ``df``: one row per item and fold."""
    rows = [{"item_id": r.item_id, "group_id": r.group_id, "label": r.label, "fold": k,
             "role": "test" if r.fold == k else "train"} for k in sorted(df.fold.unique()) for r in df.itertuples()]
    pd.DataFrame(rows).to_csv(run / "split.csv", index=False)
