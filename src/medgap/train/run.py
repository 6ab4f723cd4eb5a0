"""``run_finetune``: k-fold cross-validation grouped by patient, one Lightning fit per fold (or a scikit-learn
classifier on frozen embeddings for the ``features`` strategy), held-out predictions of every fold in the run
directory: config.json, versions.json, classes.json, split.csv, metrics.json, predictions.csv, fold_<k>/."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from medgap.data import decode_items, grouped_folds, inner_validation, load_items
from medgap.data.tensors import TensorDataset
from medgap.models import apply_strategy, create_model, preprocessing


@dataclass
class FinetuneConfig:
    data: Path
    """Folder tree root/<class>/... or a CSV manifest (path, label, group columns)."""
    out: Path
    backbone: str = "efficientnet_lite0"
    init: str = "imagenet"
    strategy: str = "full"
    trainable_stages: int = 2
    folds: int = 5
    image_size: int = 128
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    patience: int = 3
    video_stride: int = 10
    seed: int = 0
    classifier: str = "logreg"
    """features strategy: logreg or svm."""
    path_column: str = "path"
    label_column: str = "label"
    group_column: str = "group_id"
    filter_column: str | None = None
    filter_values: list[str] = field(default_factory=list)
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    ddp: bool = False
    precision: str = "auto"
    """auto: bf16-mixed on CUDA, 32 on CPU."""


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("medgap", "torch", "torchvision", "timm", "lightning", "numpy", "scikit-learn"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _embeddings(model, loader) -> np.ndarray:
    model.eval()
    outs = []
    with torch.no_grad():
        for x, _ in loader:
            outs.append(model.forward_head(model.forward_features(x), pre_logits=True).numpy())
    return np.concatenate(outs)


def run_finetune(cfg: FinetuneConfig, log: Callable[[str], None] = print) -> pd.DataFrame:
    """Train and evaluate every fold; returns the held-out predictions (also written to the run dir)."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from medgap.train.module import Classifier

    L.seed_everything(cfg.seed, workers=True)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({k: str(v) if isinstance(v, Path) else v
                                                 for k, v in asdict(cfg).items()}, indent=1))
    (out / "versions.json").write_text(json.dumps(_versions(), indent=1))
    items = load_items(cfg.data, path_column=cfg.path_column, label_column=cfg.label_column,
                       group_column=cfg.group_column, filter_column=cfg.filter_column,
                       filter_values=tuple(cfg.filter_values))
    ds = decode_items(items, cfg.image_size, cfg.video_stride)
    for path, reason in ds.failures:
        log(f"skipped {path}: {reason}")
    classes = sorted(set(ds.labels))
    (out / "classes.json").write_text(json.dumps(classes))
    y = np.array([classes.index(c) for c in ds.labels])
    groups = np.array(ds.groups)
    fold = grouped_folds(y, groups, cfg.folds, cfg.seed)
    counts = pd.crosstab(pd.Series(ds.labels, name="label"), pd.Series(fold, name="fold"))
    log("class counts per test fold:\n" + counts.to_string())
    pre = preprocessing(cfg.backbone, cfg.init)
    split_rows, pred_rows, metrics = [], [], {}
    for k in range(cfg.folds):
        test = fold == k
        train_all = ~test
        val_mask = np.zeros(len(y), bool)
        val_mask[np.flatnonzero(train_all)[inner_validation(y[train_all], groups[train_all], cfg.seed + k)]] = True
        train = train_all & ~val_mask
        assert not set(groups[test]) & set(groups[train_all]), "a patient group crosses folds"
        split_rows += [{"item_id": ds.item_ids[i], "group_id": groups[i], "label": ds.labels[i], "fold": k,
                        "role": "test" if test[i] else "val" if val_mask[i] else "train"} for i in range(len(y))]
        make = lambda m, aug: TensorDataset(ds.images[m], torch.from_numpy(y[m]), pre["mean"], pre["std"], aug)  # noqa: E731
        # training batches drop the last partial batch: a batch of one breaks BatchNorm on 1x1 feature maps
        dl = lambda m, aug, shuffle: torch.utils.data.DataLoader(make(m, aug), batch_size=cfg.batch_size,  # noqa: E731
                                                                 shuffle=shuffle, drop_last=bool(shuffle and m.sum() > cfg.batch_size),
                                                                 num_workers=0)
        model = create_model(cfg.backbone, cfg.init, num_classes=len(classes))
        apply_strategy(model, cfg.strategy, cfg.trainable_stages)
        fold_dir = out / f"fold_{k}"
        fold_dir.mkdir(exist_ok=True)
        if cfg.strategy == "features":
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler
            from sklearn.svm import SVC

            clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000) if cfg.classifier == "logreg"
                                else SVC(probability=True, random_state=cfg.seed))
            clf.fit(_embeddings(model, dl(train_all, False, False)), y[train_all])
            prob = np.zeros((int(test.sum()), len(classes)))
            prob[:, clf.classes_] = clf.predict_proba(_embeddings(model, dl(test, False, False)))
            metrics[f"fold_{k}"] = {"accuracy": float((prob.argmax(1) == y[test]).mean())}
        else:
            ckpt = ModelCheckpoint(dirpath=fold_dir, filename="best", monitor="val_loss", save_last=True)
            precision = cfg.precision
            if precision == "auto":
                precision = "bf16-mixed" if torch.cuda.is_available() else "32-true"
            trainer = L.Trainer(
                max_epochs=cfg.epochs, accelerator=cfg.accelerator, devices=cfg.devices, num_nodes=cfg.num_nodes,
                strategy="ddp" if cfg.ddp else "auto", precision=precision, deterministic=True,
                callbacks=[EarlyStopping(monitor="val_loss", patience=cfg.patience), ckpt],
                default_root_dir=fold_dir, logger=L.pytorch.loggers.CSVLogger(fold_dir, name="logs"),
                enable_model_summary=False, log_every_n_steps=1,
            )
            module = Classifier(model, lr=cfg.lr)
            last = fold_dir / "last.ckpt"
            trainer.fit(module, dl(train, True, True), dl(val_mask, False, False),
                        ckpt_path=str(last) if last.exists() else None)
            best = ckpt.best_model_path or str(last)
            module = Classifier.load_from_checkpoint(best, model=model, weights_only=False) if best else module
            prob = torch.cat(trainer.predict(module, dl(test, False, False))).float().numpy()
            metrics[f"fold_{k}"] = {"accuracy": float((prob.argmax(1) == y[test]).mean()),
                                    "epochs": int(trainer.current_epoch), "best_checkpoint": best,
                                    "best_val_loss": float(ckpt.best_model_score) if ckpt.best_model_score is not None
                                    else None}
        for j, i in enumerate(np.flatnonzero(test)):
            row = {"item_id": ds.item_ids[i], "path": ds.paths[i], "frame": ds.frames[i], "group_id": groups[i],
                   "fold": k, "split": "test", "label": ds.labels[i], "pred": classes[int(prob[j].argmax())]}
            row.update({f"prob_{c}": float(prob[j, c_i]) for c_i, c in enumerate(classes)})
            pred_rows.append(row)
        log(f"fold {k}: accuracy {metrics[f'fold_{k}']['accuracy']:.3f} on {int(test.sum())} held-out items")
    preds = pd.DataFrame(pred_rows)
    preds.to_csv(out / "predictions.csv", index=False)
    pd.DataFrame(split_rows).to_csv(out / "split.csv", index=False)
    metrics["overall_accuracy"] = float((preds.label == preds.pred).mean())
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return preds
