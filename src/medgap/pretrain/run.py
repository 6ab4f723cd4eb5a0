"""``run_pretrain``: USCL-style semi-supervised contrastive pretraining of a timm backbone on videos, with
Lightning (checkpoints, resume, DDP) and a run directory that ``--init pretrain:RUN_DIR`` loads.

Run directory: ``config.json`` (the options; ``--config`` reads it), ``versions.json``, ``split.csv`` (video,
patient, label, role train/val), ``classes.json`` (the classes the cross-entropy used), ``preprocessing.json``,
``history.csv`` (per epoch: train loss, NT-Xent, CE, validation NT-Xent), ``last.ckpt`` (every epoch, to
resume), ``best.ckpt`` (lowest validation NT-Xent), then ``backbone.pt`` (the best epoch's backbone as a plain
state dict) and ``pretrain.json`` (written last: the run is finished)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from medgap._options import check_choices, check_resumable, write_run_config
from medgap.models.pretrained_run import PRETRAIN_RECORD, PRETRAIN_WEIGHTS
from medgap.pretrain.config import PretrainConfig, PretrainError
from medgap.pretrain.videos import UNLABELLED, FrameCache, VideoRecord, load_videos

SPLIT_FILE = "split.csv"
HISTORY_FILE = "history.csv"
FRAME_CACHE = "frame_cache"


@dataclass
class PretrainResult:
    run_dir: Path
    best_epoch: int
    best_val_loss: float
    epochs: int
    history: pd.DataFrame
    split: pd.DataFrame




def _parse_filter(spec: str | None) -> tuple[str | None, list[str]]:
    """``COLUMN=V1,V2`` as fine-tuning reads it (:func:`medgap.train.config._parse_filter`)."""
    from medgap.train.config import ConfigError
    from medgap.train.config import _parse_filter as parse

    try:
        return parse(spec)
    except ConfigError as e:
        raise PretrainError(str(e)) from None


def check_pretrain_config(cfg: PretrainConfig) -> None:
    """Every option's value, before anything is read or written (a :class:`PretrainError` names the option)."""
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise PretrainError(message)

    check_choices(cfg, PretrainError)
    _parse_filter(cfg.filter)
    for name, low in (("image_size", 16), ("epochs", 1), ("batch_size", 2), ("projection_dim", 1),
                      ("frames_per_video", 1), ("num_nodes", 1)):
        v = getattr(cfg, name)
        need(isinstance(v, int) and not isinstance(v, bool) and v >= low,
             f"--{name.replace('_', '-')} {v!r}: must be an integer >= {low}")
    need(cfg.lr > 0 and math.isfinite(cfg.lr), f"--lr {cfg.lr}: must be a positive number")
    need(cfg.weight_decay >= 0, f"--weight-decay {cfg.weight_decay}: must be 0 or more")
    need(cfg.temperature > 0, f"--temperature {cfg.temperature}: must be positive (0.5 is USCL's)")
    need(cfg.ce_weight >= 0, f"--ce-weight {cfg.ce_weight}: must be 0 (self-supervised only) or more")
    need(cfg.mix_alpha > 0, f"--mix-alpha {cfg.mix_alpha}: Beta(alpha, alpha) needs alpha > 0 (0.5 is USCL's)")
    need(0 < cfg.val_fraction < 1, f"--val-fraction {cfg.val_fraction}: a share of the patients in (0, 1)")
    need(cfg.devices == "auto" or (isinstance(cfg.devices, int) and cfg.devices >= 1),
         f"--devices {cfg.devices!r}: a number of devices (1 or more) or 'auto'")
    from medgap.models import UnknownInit, is_known_backbone, resolve_init

    try:
        resolve_init(cfg.init)
    except UnknownInit as e:
        raise PretrainError(str(e)) from None
    need(is_known_backbone(cfg.backbone), f"--backbone {cfg.backbone!r}: timm has no such model")




def patient_split(patients: Sequence[str], val_fraction: float, seed: int) -> dict[str, str]:
    """patient -> ``train`` or ``val``: about ``val_fraction`` of the patients (at least one) held out, at least
    two kept for training."""
    unique = sorted(set(map(str, patients)))
    if len(unique) < 3:
        raise PretrainError(f"{len(unique)} patient(s): pretraining needs at least 3 (two to train, one to hold out "
                            f"for the validation loss that chooses the checkpoint)")
    order = np.random.default_rng(seed).permutation(len(unique))
    n_val = min(len(unique) - 2, max(1, int(round(val_fraction * len(unique)))))
    val = {unique[i] for i in order[:n_val]}
    return {p: "val" if p in val else "train" for p in unique}


def _history(out: Path) -> pd.DataFrame:
    """Per-epoch metrics from Lightning's CSV logs (every version: a resumed run writes a new one)."""
    frames = [pd.read_csv(f) for f in sorted((out / "logs").glob("version_*/metrics.csv")) if f.stat().st_size]
    if not frames:
        return pd.DataFrame(columns=["epoch"])
    df = pd.concat(frames, ignore_index=True)
    df = df.drop(columns=[c for c in ("step",) if c in df.columns])
    hist = df.groupby("epoch", sort=True).last().reset_index()
    hist["epoch"] = hist["epoch"].astype(int) + 1  # epochs counted from 1
    return hist


def run_pretrain(cfg: PretrainConfig, log: Callable[[str], None] = print, callbacks: Sequence = (), *,
                 videos: Sequence[VideoRecord] | None = None, roles: dict[str, str] | None = None,
                 cache_dir: str | Path | None = None) -> PretrainResult:
    """Pretrain ``cfg.backbone`` from ``cfg.init`` on the videos of ``cfg.videos`` (or ``videos``): one item per
    video and epoch (:class:`medgap.pretrain.pairs.VideoPairDataset`), NT-Xent plus ``ce_weight`` x
    cross-entropy on the labelled videos, Adam with cosine decay. A share of the patients (``val_fraction``; or
    ``roles``: patient -> train/val, every patient given) is held out: its NT-Xent chooses the checkpoint whose
    backbone is saved. Rerunning resumes from ``last.ckpt``; a finished run is returned as it is.
    ``cache_dir``: where decoded frames are kept (default ``out/frame_cache``)."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.utilities import rank_zero_only

    from medgap.models import create_model, preprocessing
    from medgap.pretrain.module import ContrastiveModule
    from medgap.pretrain.pairs import VideoBatchSampler, VideoPairDataset

    check_pretrain_config(cfg)
    main = rank_zero_only.rank == 0
    if not main:
        log = lambda s: None  # noqa: E731
    out = Path(cfg.out)
    check_resumable(out, cfg, error=PretrainError, what="a pretraining run")
    if videos is None:
        column, values = _parse_filter(cfg.filter)
        videos = load_videos(cfg.videos, path_column=cfg.path_column, label_column=cfg.label_column,
                             group_column=cfg.group_column, filter_column=column, filter_values=values,
                             each_file_is_a_patient=cfg.each_file_is_a_patient)
    videos = list(videos)
    if roles is None:
        roles = patient_split([v.patient for v in videos], cfg.val_fraction, cfg.seed)
    missing = sorted({v.patient for v in videos} - set(roles))
    if missing:
        raise PretrainError(f"roles: no role for patient(s) {missing[:3]}; every patient is train or val")
    if (out / PRETRAIN_RECORD).is_file():
        log(f"{out}: finished earlier, reusing it")
        return _finished(out)
    frames = FrameCache([v.path for v in videos], cfg.image_size, cfg.frames_per_video,
                        cache_dir if cache_dir is not None else out / FRAME_CACHE)
    failures = dict(frames.check(log))
    for path, reason in failures.items():
        log(f"skipped {path}: {reason}")
    ok = np.array([str(v.path) not in failures for v in videos], dtype=bool)
    role = np.array([roles[v.patient] for v in videos])
    train_idx, val_idx = np.flatnonzero(ok & (role == "train")), np.flatnonzero(ok & (role == "val"))
    if len(train_idx) < 2 or len(val_idx) < 2:
        raise PretrainError(f"{len(train_idx)} training and {len(val_idx)} validation video(s) could be read; each "
                            f"part needs at least 2 (NT-Xent needs another video as a negative)")
    classes = sorted({v.label for v in videos if v.label != UNLABELLED})
    targets = np.array([classes.index(v.label) if v.label != UNLABELLED else -1 for v in videos])
    patients = np.array([v.patient for v in videos])
    pre = preprocessing(cfg.backbone, cfg.init)
    split = pd.DataFrame({"video": [str(v.path) for v in videos], "patient": patients,
                          "label": [v.label for v in videos], "role": role})[ok]
    if main:
        out.mkdir(parents=True, exist_ok=True)
        from medgap.environment import environment

        write_run_config(out, cfg)
        (out / "versions.json").write_text(json.dumps(environment(), indent=1))
        split.to_csv(out / SPLIT_FILE, index=False)
        (out / "classes.json").write_text(json.dumps(classes))
        (out / "preprocessing.json").write_text(json.dumps(
            {"image_size": cfg.image_size, "channels": 3, "mean": list(pre["mean"]), "std": list(pre["std"])}))
    log(f"pretraining on {len(train_idx)} videos ({len(set(patients[train_idx]))} patients, "
        f"{int((targets[train_idx] >= 0).sum())} labelled, cross-entropy weight {cfg.ce_weight:g}), validation "
        f"NT-Xent on {len(val_idx)} videos "
        f"({len(set(patients[val_idx]))} patients)")

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    world = _world_size(cfg)
    sub = lambda idx: _Subset(frames, idx)  # noqa: E731
    train_set = VideoPairDataset(sub(train_idx), targets[train_idx], pre["mean"], pre["std"], augment=cfg.augment,
                                 alpha=cfg.mix_alpha)
    val_set = VideoPairDataset(sub(val_idx), targets[val_idx], pre["mean"], pre["std"], alpha=cfg.mix_alpha,
                               fixed_seed=cfg.seed)
    # a batch holds each video once, and with --separate-patients each patient once (across all processes)
    room = len(set(patients[train_idx])) if cfg.separate_patients else len(train_idx)
    batch = min(cfg.batch_size, room // world)
    if batch < 2:
        raise PretrainError(f"{len(train_idx)} training videos of {len(set(patients[train_idx]))} patients on "
                            f"{world} device(s): fewer than 2 per batch"
                            + (" with --separate-patients (one video per patient per batch)"
                               if cfg.separate_patients else ""))
    if batch < cfg.batch_size:
        log(f"batch size {batch} per device (--batch-size {cfg.batch_size}: more than the training "
            f"{'patients' if cfg.separate_patients else 'videos'} allow)")

    def loaders():
        rank = rank_zero_only.rank
        train_sampler = VideoBatchSampler(patients[train_idx], batch, seed=cfg.seed,
                                          separate_patients=cfg.separate_patients, drop_last=True,
                                          world_size=world, rank=rank)
        val_sampler = VideoBatchSampler(patients[val_idx], cfg.batch_size, seed=cfg.seed, shuffle=False,
                                        separate_patients=cfg.separate_patients, drop_last=False)
        return (torch.utils.data.DataLoader(train_set, batch_sampler=train_sampler, num_workers=0),
                torch.utils.data.DataLoader(val_set, batch_sampler=val_sampler, num_workers=0))

    backbone = create_model(cfg.backbone, cfg.init, num_classes=0)
    module = ContrastiveModule(backbone, len(classes), cfg.projection_dim, cfg.temperature, cfg.ce_weight, cfg.lr,
                               cfg.weight_decay, gather_distributed=world > 1)
    best = ModelCheckpoint(dirpath=out, filename="best", monitor="val_loss", enable_version_counter=False)
    latest = ModelCheckpoint(dirpath=out, filename="last", monitor=None, save_top_k=1, enable_version_counter=False)
    precision = cfg.precision
    if precision == "auto":
        precision = "bf16-mixed" if torch.cuda.is_available() else "32-true"
    trainer = L.Trainer(max_epochs=cfg.epochs, accelerator=cfg.accelerator, devices=cfg.devices,
                        num_nodes=cfg.num_nodes, strategy="ddp" if cfg.ddp else "auto", precision=precision,
                        callbacks=[best, latest, *callbacks], default_root_dir=out,
                        logger=L.pytorch.loggers.CSVLogger(out, name="logs"), enable_model_summary=False,
                        log_every_n_steps=1, use_distributed_sampler=False, num_sanity_val_steps=0)
    last = out / "last.ckpt"
    if last.exists():
        from medgap.models.checkpoints import load_checkpoint_file

        done = load_checkpoint_file(last, f"delete {last} to start again")["epoch"] + 1
        log(f"resuming from {last} ({done} epoch(s) done)")
    train_loader, val_loader = loaders()
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(last) if last.exists() else None,
                weights_only=True)
    best_path = Path(best.best_model_path) if best.best_model_path else out / "best.ckpt"
    if not best_path.is_file():
        raise PretrainError(f"{out}: no checkpoint was written (no training batch or no validation loss); check "
                            f"the number of videos and --batch-size")
    if main:
        _export(out, cfg, best_path, best)
    return _finished(out) if main else PretrainResult(out, -1, float("nan"), cfg.epochs, pd.DataFrame(), split)


def _export(out: Path, cfg: PretrainConfig, best_path: Path, best_cb) -> None:
    """backbone.pt from the best checkpoint, history.csv, then pretrain.json (the run is finished)."""
    from medgap.models.checkpoints import load_checkpoint_file

    blob = load_checkpoint_file(best_path, f"delete {out} and pretrain again")
    state = {k[len("backbone."):]: v for k, v in blob["state_dict"].items() if k.startswith("backbone.")}
    torch.save(state, out / PRETRAIN_WEIGHTS)
    hist = _history(out)
    hist.to_csv(out / HISTORY_FILE, index=False)
    best_epoch = int(blob.get("epoch", -1)) + 1
    val = hist.set_index("epoch")["val_loss"] if "val_loss" in hist else pd.Series(dtype=float)
    record = {"backbone": cfg.backbone, "init": str(cfg.init), "in_chans": 3, "image_size": cfg.image_size,
              "best_epoch": best_epoch, "best_val_loss": float(val.get(best_epoch, float("nan"))),
              "epochs": int(hist.epoch.max()) if len(hist) else 0, "weights": PRETRAIN_WEIGHTS,
              "checkpoint": best_path.name}
    (out / PRETRAIN_RECORD).write_text(json.dumps(record, indent=1))


def _finished(out: Path) -> PretrainResult:
    record = json.loads((out / PRETRAIN_RECORD).read_text())
    hist = pd.read_csv(out / HISTORY_FILE) if (out / HISTORY_FILE).exists() else pd.DataFrame()
    split = pd.read_csv(out / SPLIT_FILE, dtype=str)
    return PretrainResult(out, record["best_epoch"], record["best_val_loss"], record["epochs"], hist, split)


def _world_size(cfg: PretrainConfig) -> int:
    if not cfg.ddp:
        return 1
    devices = cfg.devices
    if devices == "auto":
        devices = torch.cuda.device_count() if torch.cuda.is_available() and cfg.accelerator != "cpu" else 1
    return int(devices) * int(cfg.num_nodes)


class _Subset:
    """The videos ``idx`` of a :class:`FrameCache` (sharing its memory and disk cache)."""

    def __init__(self, cache: FrameCache, idx: np.ndarray):
        self.cache, self.idx = cache, np.asarray(idx)
        self.size = cache.size

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.cache[int(self.idx[i])]
