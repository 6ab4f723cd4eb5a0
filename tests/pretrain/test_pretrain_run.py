"""medgap pretrain end to end on tiny real clips: the run directory, the checkpoint round trip through the
initialisation registry (library, medgap finetune), resume, and refusals."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from medgap.pretrain import PretrainConfig, PretrainError, run_pretrain

BACKBONE = "test_efficientnet"  # timm's tiny test network: seconds per epoch


def _cfg(manifest, out, **kw):
    return PretrainConfig(videos=manifest, out=out, backbone=BACKBONE, init="scratch", image_size=24,
                          epochs=kw.pop("epochs", 1), batch_size=4, frames_per_video=4, **kw)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from _videos import textured_frames, write_video

    tmp = tmp_path_factory.mktemp("run")
    rows = []
    for p in range(6):
        for c in range(2):
            path = write_video(tmp / "v" / f"p{p}_{c}.mp4", textured_frames(5, (200, 60, 60) if p % 2 else
                                                                              (60, 60, 200), 10 * p + c))
            rows.append({"path": str(path), "label": "" if p == 5 else f"c{p % 2}", "group_id": f"p{p}"})
    pd.DataFrame(rows).to_csv(tmp / "videos.csv", index=False)
    torch.manual_seed(0)
    result = run_pretrain(_cfg(tmp / "videos.csv", tmp / "out", epochs=2), log=lambda s: None)
    return tmp, result


def test_run_directory(finished):
    tmp, result = finished
    out = tmp / "out"
    for name in ("config.json", "versions.json", "split.csv", "history.csv", "classes.json", "best.ckpt",
                 "last.ckpt", "backbone.pt", "pretrain.json", "preprocessing.json"):
        assert (out / name).is_file(), name
    split = pd.read_csv(out / "split.csv", dtype=str)
    assert list(split.columns) == ["video", "patient", "label", "role"] and len(split) == 12
    # validation videos are held out by patient
    assert not set(split.patient[split.role == "val"]) & set(split.patient[split.role == "train"])
    hist = pd.read_csv(out / "history.csv")
    assert hist.epoch.tolist() == [1, 2] and {"train_loss", "train_ntxent", "train_ce", "val_loss"} <= set(hist)
    record = json.loads((out / "pretrain.json").read_text())
    assert record["backbone"] == BACKBONE and record["best_val_loss"] == pytest.approx(hist.val_loss.min())
    assert json.loads((out / "classes.json").read_text()) == ["c0", "c1"]  # p5's unlabelled clips: no class
    assert result.best_epoch == int(hist.val_loss.idxmin()) + 1


def test_checkpoint_round_trip_through_the_registry(finished):
    import medgap
    from medgap.models import PretrainRunError, resolve_init
    from medgap.models.checkpoints import load_checkpoint_file

    tmp, _ = finished
    out = tmp / "out"
    saved = torch.load(out / "backbone.pt", weights_only=True)
    best = load_checkpoint_file(out / "best.ckpt", "")["state_dict"]
    assert saved and all(torch.equal(best[f"backbone.{k}"], v) for k, v in saved.items())
    fresh = medgap.create_model(BACKBONE, "scratch", num_classes=3).state_dict()
    for spec in (f"pretrain:{out}", str(out), out):
        assert resolve_init(spec)[0].name == "pretrain"
        model = medgap.create_model(BACKBONE, spec, num_classes=3)
        state = model.state_dict()
        assert all(torch.equal(state[k], v) for k, v in saved.items())  # every backbone tensor loaded
        assert state["classifier.weight"].shape == (3, saved["conv_head.weight"].shape[0])
        assert not torch.equal(state["conv_stem.weight"], fresh["conv_stem.weight"])
    with pytest.raises(PretrainRunError, match="pretrained 'test_efficientnet', not 'test_resnet'"):
        medgap.create_model("test_resnet", f"pretrain:{out}", num_classes=3)
    with pytest.raises(PretrainRunError, match="not a finished"):
        medgap.create_model(BACKBONE, f"pretrain:{tmp}", num_classes=3)


def test_resume_and_refusals(finished, tmp_path):
    import lightning as L

    tmp, _ = finished

    class Stop(L.Callback):
        def on_train_epoch_start(self, trainer, module):
            if trainer.current_epoch == 1:
                raise RuntimeError("interrupted")

    cfg = _cfg(tmp / "videos.csv", tmp_path / "r", epochs=2)
    with pytest.raises(RuntimeError, match="interrupted"):
        run_pretrain(cfg, log=lambda s: None, callbacks=[Stop()])
    assert (tmp_path / "r" / "last.ckpt").exists() and not (tmp_path / "r" / "pretrain.json").exists()
    lines = []
    result = run_pretrain(cfg, log=lines.append)
    assert any("resuming from" in s and "(1 epoch(s) done)" in s for s in lines)
    assert result.history.epoch.tolist() == [1, 2] and result.epochs == 2
    lines.clear()
    run_pretrain(cfg, log=lines.append)
    assert any("finished earlier" in s for s in lines)
    with pytest.raises(PretrainError, match="another configuration .*temperature"):
        run_pretrain(_cfg(tmp / "videos.csv", tmp_path / "r", epochs=2, temperature=0.1), log=lambda s: None)
    with pytest.raises(PretrainError, match="--temperature"):
        run_pretrain(_cfg(tmp / "videos.csv", tmp_path / "x", temperature=0), log=lambda s: None)


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_gathers_negatives(finished, tmp_path):
    """Two gloo processes, 3 videos each per step, --separate-patients across both: lightly's loss gathers the
    other process's videos as negatives, so a first-epoch NT-Xent of near-random embeddings sits near
    ln(2 * 6 - 1) = 2.40, above the ln(2 * 3 - 1) = 1.61 that one process's batch alone could reach."""
    import math
    import subprocess
    import sys

    tmp, _ = finished
    out = tmp_path / "ddp"
    r = subprocess.run([sys.executable, "-m", "medgap", "pretrain", "--videos", str(tmp / "videos.csv"), "--out",
                        str(out), "--backbone", BACKBONE, "--init", "scratch", "--image-size", "24", "--epochs", "1",
                        "--batch-size", "3", "--frames-per-video", "3", "--ddp", "--devices", "2", "--accelerator",
                        "cpu", "--separate-patients"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    hist = pd.read_csv(out / "history.csv")
    assert hist.epoch.tolist() == [1] and hist.train_ntxent.iloc[0] > math.log(5) + 0.2
    assert " ".join((r.stdout + r.stderr).split()).count("best epoch") == 1  # only the first process reports
