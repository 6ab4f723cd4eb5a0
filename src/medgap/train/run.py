"""``run_finetune``: k-fold cross-validation grouped by patient, one Lightning fit per fold (or a scikit-learn
classifier on frozen embeddings for the ``features`` strategy), held-out predictions of every fold in the run
directory: config.json, versions.json, classes.json, split.csv, metrics.json, predictions.csv, fold_<k>/."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from medgap.data.balance import balance_weights
from medgap.data.items import load_items
from medgap.data.predictions import (
    CLASSES_FILE,
    HELD_OUT,
    PREDICTIONS_FILE,
    SPLIT_FILE,
    read_predictions,
    write_predictions,
)
from medgap.data.splits import grouped_folds, inner_validation
from medgap.data.tensors import DecodedSet, decode_items, make_loader
from medgap.io import CollectionError
from medgap._options import check_choices, check_resumable, write_run_config
from medgap.models import CheckpointError, apply_strategy, create_model, load_checkpoint_file, preprocessing
from medgap.train.config import ConfigError, FinetuneConfig, _parse_filter, upgrade_recorded
from medgap.train.linear_head import embeddings, fit_classifier, predict_proba, set_head_from_logreg
from medgap.train.tasks.base import Task


def _versions(cfg: FinetuneConfig) -> dict:
    """The run's environment record (packages, git commit, GPU, and the hash of an --init checkpoint file or of
    a pretraining run's backbone.pt)."""
    from medgap.environment import environment
    from medgap.models import resolve_init
    from medgap.models.pretrained_run import PRETRAIN_WEIGHTS

    init = Path(str(cfg.init))
    info, argument = resolve_init(cfg.init)
    if info.name == "pretrain" and (Path(str(argument)) / PRETRAIN_WEIGHTS).is_file():
        init = Path(str(argument)) / PRETRAIN_WEIGHTS
    return environment(weights={"init": init} if init.is_file() else None)


# Fields that may change between an interrupted run and its resumption without changing its results.




def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_config(cfg: FinetuneConfig) -> None:
    """Every option's value, before anything is read or written: a :class:`ConfigError` names the option and
    the values it takes."""
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    check_choices(cfg, ConfigError)  # every option declared with choices, with "did you mean"
    _parse_filter(cfg.filter)
    need(_is_int(cfg.folds) and cfg.folds >= 2,
         f"--folds {cfg.folds}: cross-validation needs at least 2 folds (5 is the default)")
    need(_is_int(cfg.image_size) and cfg.image_size >= 16,
         f"--image-size {cfg.image_size}: the image size must be at least 16 pixels (the backbones downsample "
         f"32 times; 128 is the default)")
    need(_is_int(cfg.epochs) and cfg.epochs >= 1, f"--epochs {cfg.epochs}: train at least 1 epoch")
    need(_is_int(cfg.batch_size) and cfg.batch_size >= 1,
         f"--batch-size {cfg.batch_size}: the batch size must be at least 1 (32 is the default)")
    need(_is_int(cfg.patience) and cfg.patience >= 1,
         f"--patience {cfg.patience}: patience must be at least 1 epoch")
    need(cfg.lr > 0 and np.isfinite(cfg.lr), f"--lr {cfg.lr}: the learning rate must be a positive number")
    need(cfg.backbone_lr_scale >= 0 and np.isfinite(cfg.backbone_lr_scale),
         f"--backbone-lr-scale {cfg.backbone_lr_scale}: must be 0 (backbone fixed) or more")
    need(0 <= cfg.label_smoothing < 1, f"--label-smoothing {cfg.label_smoothing}: label smoothing must be in [0, 1)")
    need(_is_int(cfg.video_stride) and cfg.video_stride >= 1,
         f"--video-stride {cfg.video_stride}: the video stride must be at least 1 (every frame)")
    need(_is_int(cfg.trainable_stages) and cfg.trainable_stages >= 1,
         f"--trainable-stages {cfg.trainable_stages}: at least 1 stage trains")
    need(_is_int(cfg.seed) and 0 <= cfg.seed and cfg.seed + cfg.folds < 2**32,
         f"--seed {cfg.seed}: the seed must be an integer in 0..{2**32 - 1 - cfg.folds} (fold k uses seed + k)")
    need(_is_int(cfg.num_nodes) and cfg.num_nodes >= 1, f"--num-nodes {cfg.num_nodes}: at least 1 node")
    need(cfg.devices == "auto" or (_is_int(cfg.devices) and cfg.devices >= 1),
         f"--devices {cfg.devices!r}: a number of devices (1 or more) or 'auto'")
    _check_task(cfg)
    need(cfg.roi is None or Path(cfg.roi).is_dir(),
         f"--roi {cfg.roi}: no such folder; give a folder of masks named after the images or a segment-train run")
    from medgap.models import UnknownInit, is_known_backbone, resolve_init

    init = str(cfg.init)
    try:
        info, arg = resolve_init(cfg.init)  # the registry of initialisations: did-you-mean for a typo
    except UnknownInit as e:
        raise ConfigError(str(e)) from None
    need(info.name != "file" or Path(arg).is_file(),
         f"--init {init!r}: no such checkpoint file; --init takes scratch, imagenet, hub[:TAG|OWNER/REPO] or a "
         "checkpoint file")
    need(is_known_backbone(cfg.backbone),
         f"--backbone {cfg.backbone!r}: timm has no such model; see timm.list_models('*lite*') for names "
         f"(efficientnet_lite0 is the default)")


def _check_task(cfg: FinetuneConfig) -> None:
    """Options that go with the task (--task) and options that do not."""
    task = cfg.task
    if task == "multilabel" and len(cfg.label_column_list) < 1:
        raise ConfigError("--task multilabel needs --label-columns A,B,... (the manifest's 0/1 columns, one per "
                          "finding; label_columns=... from Python)")
    if task != "multilabel" and cfg.label_columns is not None:
        raise ConfigError(f"--label-columns {cfg.label_columns!r} is for --task multilabel; --task {task} reads "
                          f"--label-column ({cfg.label_column!r})")
    if task != "regress" and cfg.loss != "mse":
        raise ConfigError(f"--loss {cfg.loss} is for --task regress; --task {task} has its own loss")
    if task == "classify":
        return
    if cfg.strategy == "features":
        raise ConfigError(f"--strategy features fits a scikit-learn classifier, which --task {task} has not; use "
                          f"--strategy linear (frozen backbone, trained head), partial or full")
    if cfg.balance == "class":
        raise ConfigError(f"--balance class equalises classes, which --task {task} has not; use --balance patient "
                          f"(every patient counts once) or none")
    if Path(cfg.data).suffix.lower() != ".csv":
        what = "one 0/1 column per finding" if task == "multilabel" else "a numeric score column"
        raise ConfigError(f"--data {cfg.data}: --task {task} needs a CSV manifest with {what}; class folders give "
                          f"only classes")


def _check_model(cfg: FinetuneConfig, n_classes: int) -> None:
    """Build the fold model once before anything is written: the weights exist and fit, the strategy applies
    (--trainable-stages within the backbone's stages), and a fitted head has a linear layer to go into."""
    from torch import nn

    model = create_model(cfg.backbone, cfg.init, num_classes=n_classes)
    try:
        apply_strategy(model, cfg.strategy, cfg.trainable_stages)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    fitted_head = cfg.strategy != "features" and cfg.head_init == "logreg" and str(cfg.init) != "scratch"
    if fitted_head and not isinstance(model.get_classifier(), nn.Linear):
        raise ConfigError(f"--backbone {cfg.backbone}: its {type(model.get_classifier()).__name__} head cannot take "
                          f"a fitted logistic regression; use --head-init random")


def check_classes(labels, groups, folds: int, failures=()) -> None:
    """At least two classes, and every class with at least two patients (groups): a class whose only patient is
    held out has no training example in that fold. A :class:`CollectionError` names the class and the fix."""
    labels, groups = np.asarray(labels, dtype=object), np.asarray(groups, dtype=object)
    excluded = (f" ({len(failures)} file(s) could not be read and were left out, e.g. {failures[0][0]}: "
                f"{failures[0][1]})" if failures else "")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise CollectionError(f"only one class ({', '.join(map(repr, classes))}) in the data{excluded}; "
                              f"fine-tuning a classifier needs at least 2 classes (root/<class>/... folders, or "
                              f"a manifest label column with 2 or more values)")
    patients = {c: len(set(groups[labels == c])) for c in classes}
    few = {c: n for c, n in patients.items() if n < 2}
    if few:
        c, n = next(iter(few.items()))
        raise CollectionError(
            f"class {c!r} has {n} patient (group), and each class needs at least 2 so that it can be split by "
            f"patient{excluded}; {len(few)} such class(es): {', '.join(map(repr, few))}. Add patients of that "
            f"class, leave it out (--filter or remove its folder), or check the manifest's group column")
    n_groups = len(set(groups))
    if folds > n_groups:
        raise ConfigError(f"--folds {folds}: more folds than patients ({n_groups}); use --folds {n_groups} or fewer")


def run_finetune(cfg: FinetuneConfig, log: Callable[[str], None] = print, callbacks: Sequence = ()) -> pd.DataFrame:
    """Train and evaluate every fold of ``cfg.task`` (classify, multilabel or regress, see
    :mod:`medgap.train.tasks`); returns the held-out predictions (also written to the run dir).
    ``callbacks``: extra Lightning callbacks for every fold's Trainer (the CLI's progress bar, say).

    Everything is checked before the run directory is written: the options (:func:`check_config`), the items
    and their targets (the task's check), that the run directory holds the same experiment, and that the
    model can be built. See :func:`run_cv` for the run itself."""
    from medgap.train.tasks import create_task

    check_config(cfg)
    return run_cv(cfg, create_task(cfg), log=log, callbacks=callbacks)


@dataclass
class FoldContext:
    """What one fold's work needs (built by :func:`run_cv`, given to :func:`fit_fold` and the task's
    ``init_head``): the data, the fold's masks over its items, where to write, and its seed."""

    cfg: FinetuneConfig
    task: Task
    ds: DecodedSet
    targets: np.ndarray
    """The task's targets, one per item of ``ds``."""
    strata: np.ndarray
    """The task's stratification labels (the classes that ``--balance class`` equalises)."""
    groups: np.ndarray
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    pre: dict
    """The backbone's preprocessing (mean, std)."""
    fold_dir: Path
    k: int
    seed: int
    """seed + k: everything random in this fold starts from it."""
    log: Callable[[str], None] = print
    callbacks: Sequence = ()
    val_pred: np.ndarray | None = None
    """Set by :func:`fit_fold`: the task's predictions of the inner-validation items by the checkpoint that
    predicts the test fold (None for the ``features`` strategy, whose classifier is fitted on them). run_cv
    writes them to fold_<k>/val_predictions.csv, for stacking fitted on validation predictions only."""

    def loader(self, mask: np.ndarray, *, training: bool = False):
        """The DataLoader of the items in ``mask`` (training: balanced sampler and augmentation)."""
        cfg = self.cfg
        return make_loader(self.ds.images[mask], self.targets[mask], self.groups[mask], self.pre["mean"],
                           self.pre["std"], batch_size=cfg.batch_size, training=training, augment=cfg.augment,
                           balance=cfg.balance, seed=self.seed, labels=self.strata[mask])

    def weights(self, mask: np.ndarray) -> np.ndarray:
        """The balance weights of the items in ``mask`` (see :mod:`medgap.data.balance`)."""
        return balance_weights(self.strata[mask], self.groups[mask], self.cfg.balance)


def run_cv(cfg: FinetuneConfig, task: Task, log: Callable[[str], None] = print,
           callbacks: Sequence = (), decoded: dict | None = None) -> pd.DataFrame:
    """The run every task shares: k-fold cross-validation grouped by patient, fold k seeded with ``seed + k``
    (torch, numpy, random, the sampler, augmentation, the inner split and a fitted head), an inner validation
    part for early stopping, finished folds reused and an interrupted one continued from its last.ckpt, and
    the run directory: config.json, versions.json, preprocessing.json, classes.json (the task's outputs),
    split.csv, metrics.json, predictions.csv (:mod:`medgap.data.predictions`) and fold_<k>/. Returns the
    held-out predictions. ``cfg`` is checked by :func:`check_config` first (run_finetune does it).
    ``decoded``: a dict that keeps the decoded items between calls on the same items, size and stride."""
    import lightning as L
    from lightning.pytorch.utilities import rank_zero_only

    # Under DDP, Lightning starts this same function in one process per device; every process trains every fold
    # (fit is collective), only the first writes files and prints.
    main = rank_zero_only.rank == 0
    if not main:
        log = lambda s: None  # noqa: E731
    out = Path(cfg.out)
    check_resumable(out, cfg, error=ConfigError, upgrade=upgrade_recorded)
    label_column = cfg.label_column_list if cfg.task == "multilabel" else cfg.label_column
    items = load_items(cfg.data, path_column=cfg.path_column, label_column=label_column,
                       group_column=cfg.group_column, filter_column=cfg.filter_column,
                       filter_values=tuple(cfg.filter_values), each_file_is_a_patient=cfg.each_file_is_a_patient)
    task.check_items(items, cfg.folds)
    key = (tuple(items), cfg.image_size, cfg.video_stride, str(cfg.roi), cfg.roi_mode)
    if decoded is not None and key in decoded:  # several runs on the same items (medgap benchmark) decode once
        ds = decoded[key]
    else:
        from medgap.segment.roi import roi_transform  # --roi: the region of interest only, before resizing

        ds = decode_items(items, cfg.image_size, cfg.video_stride, roi=roi_transform(cfg.roi, cfg.roi_mode))
        if decoded is not None:
            decoded[key] = ds
    for path, reason in ds.failures:
        log(f"skipped {path}: {reason}")
    targets = task.prepare(ds)
    task.check(ds, targets, cfg.folds)
    _check_model(cfg, task.num_outputs)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_run_config(out, cfg)
        (out / "versions.json").write_text(json.dumps(_versions(cfg), indent=1))
        (out / CLASSES_FILE).write_text(json.dumps(task.outputs))
        if ds.roi_masks is not None:  # --roi: which mask (file, or segmentation model) each image got
            pd.DataFrame(ds.roi_masks).to_csv(out / "roi_masks.csv", index=False)
    pre = preprocessing(cfg.backbone, cfg.init)
    if main:  # the input the models were trained on, as used: load_run's transform does not depend on later code
        (out / "preprocessing.json").write_text(json.dumps(
            {"image_size": cfg.image_size, "channels": 3, "mean": list(pre["mean"]), "std": list(pre["std"])}))
    strata = task.strata(targets)
    groups = np.array(ds.groups)
    fold = grouped_folds(strata, groups, cfg.folds, cfg.seed)
    table = pd.DataFrame({"label": ds.labels, "fold": fold, "group": groups})
    counts = table.pivot_table(index="label", columns="fold", values="group", aggfunc="size", fill_value=0)
    patients = table.pivot_table(index="label", columns="fold", values="group", aggfunc="nunique", fill_value=0)
    log(f"{'class' if task.name == 'classify' else 'label'} counts per test fold, items (patients):\n"
        + (counts.astype(str) + " (" + patients.astype(str) + ")").to_string())
    split_rows, fold_preds, metrics = [], [], {}
    for k in range(cfg.folds):
        seed_k = cfg.seed + k  # everything random in fold k starts here: a reused fold 0 cannot change fold 1
        L.seed_everything(seed_k, workers=True, verbose=False)
        test = fold == k
        train_all = ~test
        val_mask = np.zeros(len(groups), bool)
        val_mask[np.flatnonzero(train_all)[inner_validation(strata[train_all], groups[train_all], seed_k)]] = True
        train = train_all & ~val_mask
        assert not set(groups[test]) & set(groups[train_all]), "a patient group crosses folds"
        split_rows += [{"item_id": ds.item_ids[i], "group_id": groups[i], "label": ds.labels[i], "fold": k,
                        "role": "test" if test[i] else "val" if val_mask[i] else "train"} for i in range(len(groups))]
        fold_dir = out / f"fold_{k}"
        fold_dir.mkdir(exist_ok=True)
        done_preds, done_metrics = fold_dir / PREDICTIONS_FILE, fold_dir / "metrics.json"
        if done_preds.exists() and done_metrics.exists():  # finished before an interruption: reuse, never retrain
            fold_preds.append(read_predictions(done_preds, task.name))
            metrics[f"fold_{k}"] = json.loads(done_metrics.read_text())
            log(f"fold {k}: finished earlier, reusing {done_preds}")
            continue
        log(f"fold {k}: " + ", ".join(f"{name} {int(m.sum())} items ({len(set(groups[m]))} patients)"
                                       for name, m in (("train", train), ("validation", val_mask), ("test", test))))
        ctx = FoldContext(cfg, task, ds, targets, strata, groups, train, val_mask, test, pre, fold_dir, k, seed_k,
                          log, callbacks)
        pred, fitted = fit_fold(ctx)
        idx = np.flatnonzero(test)
        fold_df = pd.DataFrame({"item_id": [ds.item_ids[i] for i in idx], "path": [ds.paths[i] for i in idx],
                                "frame": [ds.frames[i] for i in idx], "group_id": groups[idx], "fold": k,
                                "split": HELD_OUT, "label": [ds.labels[i] for i in idx],
                                **task.prediction_columns(pred, targets[idx])})
        metrics[f"fold_{k}"] = {**task.score(fold_df), **fitted, "seed": seed_k}
        if main and ctx.val_pred is not None:  # before metrics.json, which marks the fold as finished
            write_predictions(_rows(ds, groups, np.flatnonzero(val_mask), k, "val", task, ctx.val_pred, targets),
                              fold_dir / VAL_PREDICTIONS_FILE, task.name, task.outputs)
        if main:  # predictions first, metrics last: metrics.json marks the fold as finished
            write_predictions(fold_df, done_preds, task.name, task.outputs)
            fold_df = read_predictions(done_preds, task.name)  # one path (and one set of dtypes) for new and reused
            done_metrics.write_text(json.dumps(metrics[f"fold_{k}"], indent=1))
        fold_preds.append(fold_df)
        name, value = next(iter(metrics[f"fold_{k}"].items()))
        log(f"fold {k}: {name} {value:.3f} on {int(test.sum())} held-out items")
    preds = pd.concat(fold_preds, ignore_index=True)
    overall = task.score(preds)
    metrics.update({f"overall_{name}": value for name, value in overall.items()})
    if main:
        write_predictions(preds, out / PREDICTIONS_FILE, task.name, task.outputs)
        pd.DataFrame(split_rows).to_csv(out / SPLIT_FILE, index=False)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    name, value = next(iter(overall.items()))
    log(f"held-out {name} {value:.3f} over {len(preds)} items; run: {out}  "
        + (f"(next: medgap evaluate {out})" if task.name == "classify" else ""))
    return preds


VAL_PREDICTIONS_FILE = "val_predictions.csv"
"""fold_<k>/val_predictions.csv: the fold's inner-validation items predicted by the checkpoint that predicts
its test fold (split ``val``, same schema as predictions.csv); what a stacking ensemble is fitted on."""


def _rows(ds, groups: np.ndarray, idx: np.ndarray, k: int, split: str, task: Task, pred: np.ndarray,
          targets: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"item_id": [ds.item_ids[i] for i in idx], "path": [ds.paths[i] for i in idx],
                         "frame": [ds.frames[i] for i in idx], "group_id": groups[idx], "fold": k, "split": split,
                         "label": [ds.labels[i] for i in idx], **task.prediction_columns(pred, targets[idx])})


def _checkpoint(path: Path, fold_dir: Path, k: int, key: str) -> dict:
    """A fold's Lightning checkpoint, loaded without running code (see medgap.models.checkpoints)."""
    fix = (f"Delete {fold_dir} to train fold {k} again (finished folds are kept), or choose a new --out; never "
           f"load this file with weights_only=False unless you made it yourself")
    blob = load_checkpoint_file(path, fix)
    if not isinstance(blob, dict) or key not in blob:
        raise CheckpointError(path, f"not a Lightning checkpoint (no {key!r} entry). {fix}")
    return blob


FEATURES_MODEL = "model.ckpt"
FEATURES_CLASSIFIER = "classifier.skops"


def _save_features_model(model: torch.nn.Module, clf, n_classes: int, fold_dir: Path) -> dict:
    """Save what reloads a ``features`` fold (see :func:`medgap.train.load_run`), without pickle: the backbone's
    tensors in FEATURES_MODEL (a ``state_dict`` entry, as in Lightning's checkpoints); a logistic regression goes
    into the model's linear head (same probabilities, see :func:`set_head_from_logreg`), any other classifier
    into FEATURES_CLASSIFIER (skops). Returns the fold's metrics entries naming the files."""
    from lightning.pytorch.utilities import rank_zero_only

    entries = {"best_checkpoint": str(fold_dir / FEATURES_MODEL)}
    head_fits = type(clf.steps[-1][1]).__name__ == "LogisticRegression" and isinstance(model.get_classifier(),
                                                                                          torch.nn.Linear)
    if head_fits:
        set_head_from_logreg(model, clf, n_classes)
    else:
        entries["classifier"] = str(fold_dir / FEATURES_CLASSIFIER)
    if rank_zero_only.rank != 0:  # under DDP every process fits the same classifier; the first one writes
        return entries
    if not head_fits:
        import skops.io

        skops.io.dump(clf, fold_dir / FEATURES_CLASSIFIER)
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, fold_dir / FEATURES_MODEL)
    return entries


def _predict(model: torch.nn.Module, task: Task, loader, device: torch.device) -> np.ndarray:
    model.to(device).eval()
    with torch.no_grad():
        return torch.cat([task.predict(model(x.to(device))).float().cpu() for x, *_ in loader]).numpy()


def fit_fold(ctx: FoldContext) -> tuple[np.ndarray, dict]:
    """Train one fold (or fit the features classifier); returns the task's predictions of the held-out items
    (``task.predict`` of the best checkpoint's outputs) and the fold's metrics.json entries."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from medgap.train.module import TaskModule

    cfg, task, fold_dir, k = ctx.cfg, ctx.task, ctx.fold_dir, ctx.k
    model = create_model(cfg.backbone, cfg.init, num_classes=task.num_outputs)
    apply_strategy(model, cfg.strategy, cfg.trainable_stages)
    if cfg.strategy == "features":  # classify only (check_config)
        train_all = ctx.train | ctx.val  # no early stopping here: the classifier fits on the whole training part
        clf = fit_classifier(embeddings(model, ctx.loader(train_all)), ctx.targets[train_all],
                             ctx.weights(train_all), cfg.classifier, ctx.seed)
        prob = predict_proba(clf, embeddings(model, ctx.loader(ctx.test)), task.num_outputs)
        return prob, _save_features_model(model, clf, task.num_outputs, fold_dir)
    head = task.init_head(ctx, model) or {}

    ckpt = ModelCheckpoint(dirpath=fold_dir, filename="best", monitor="val_loss")
    # A second checkpoint, refreshed every epoch, to resume from: Lightning 2.6's save_last only rewrites last.ckpt
    # in epochs where the monitored loss improved, so a resume would go back to the best epoch.
    latest = ModelCheckpoint(dirpath=fold_dir, filename="last", monitor=None, save_top_k=1,
                             enable_version_counter=False)
    precision = cfg.precision
    if precision == "auto":
        precision = "bf16-mixed" if torch.cuda.is_available() else "32-true"
    trainer = L.Trainer(
        max_epochs=cfg.epochs, accelerator=cfg.accelerator, devices=cfg.devices, num_nodes=cfg.num_nodes,
        strategy="ddp" if cfg.ddp else "auto", precision=precision, deterministic=True,
        callbacks=[EarlyStopping(monitor="val_loss", patience=cfg.patience), ckpt, latest, *ctx.callbacks],
        default_root_dir=fold_dir, logger=L.pytorch.loggers.CSVLogger(fold_dir, name="logs"),
        enable_model_summary=False, log_every_n_steps=1,
    )
    scale = 1.0 if str(cfg.init) == "scratch" else cfg.backbone_lr_scale
    freeze_bn = cfg.bn_stats == "frozen" or (cfg.bn_stats == "auto" and str(cfg.init) != "scratch")
    module = TaskModule(model, task, lr=cfg.lr, backbone_lr_scale=scale, freeze_bn_stats=freeze_bn)
    last = fold_dir / "last.ckpt"
    if last.exists():
        done = _checkpoint(last, fold_dir, k, "epoch")["epoch"] + 1
        ctx.log(f"fold {k}: resuming from {last} ({done} epoch(s) done)")
    # weights_only: Lightning's own checkpoints hold only tensors and primitives (checked above for last.ckpt)
    trainer.fit(module, ctx.loader(ctx.train, training=True), ctx.loader(ctx.val),
                ckpt_path=str(last) if last.exists() else None, weights_only=True)
    best = ckpt.best_model_path or latest.last_model_path or latest.best_model_path
    module.load_state_dict(_checkpoint(Path(best), fold_dir, k, "state_dict")["state_dict"])
    # Held-out predictions in this process, on its device, over the whole test part: trainer.predict under DDP
    # would give each process a shard.
    device = torch.device("cuda", torch.cuda.current_device()) if (
        torch.cuda.is_available() and cfg.accelerator in ("auto", "gpu", "cuda")) else torch.device("cpu")
    pred = _predict(module.model, task, ctx.loader(ctx.test), device)
    ctx.val_pred = _predict(module.model, task, ctx.loader(ctx.val), device)
    return pred, {"epochs": int(trainer.current_epoch), "best_checkpoint": best,
                  "best_val_loss": float(ckpt.best_model_score) if ckpt.best_model_score is not None else None,
                  **head}
