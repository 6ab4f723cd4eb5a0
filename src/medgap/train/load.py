"""``load_run(run_dir)``: a finished fine-tuning run as ``(model, transform, classes)``, for predicting new images
in a notebook (and, later, explaining them).

The model is rebuilt as training built it (the recorded backbone and strategy, no weights downloaded) and
takes its weights from the fold's best checkpoint, loaded without running code (``weights_only``, see
:mod:`medgap.models.checkpoints`). ``transform`` is training's preprocessing: the same conversion to RGB 0-255,
resize and normalisation (:func:`medgap.data.tensors.to_square_uint8` and the dataset's normalisation)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medgap.data.predictions import TASKS, run_task
from medgap.data.tensors import TensorDataset, to_square_uint8
from medgap.io import Frame
from medgap.models import CheckpointError, apply_strategy, create_model, load_checkpoint_file, preprocessing


SKLEARN_TRUSTED = ("sklearn.calibration._CalibratedClassifier", "sklearn.calibration._SigmoidCalibration")
"""scikit-learn's own types that skops does not trust by default but the ``svm`` classifier holds (the Platt
scaling of CalibratedClassifierCV, which replaces SVC(probability=True)); plain data, no code."""


class RunLoadError(ValueError):
    """A run directory that cannot be loaded (missing, unfinished, or made without what a reload needs); the
    message names the run and the fix."""


class RunTransform:
    """A Frame (from :func:`medgap.read_frames`) or an image array (HxW gray or HxWx3 RGB, 0-255; raw values:
    :func:`medgap.to_gray255` with a window first) -> the float32 (3, S, S) tensor the model was trained on:
    RGB 0-255 (gray in all three channels), resized to S x S with area interpolation, rounded to uint8, then
    ``(x - 255 mean) / (255 std)``. Exactly training's path: the same functions do it."""

    def __init__(self, image_size: int, mean: Sequence[float], std: Sequence[float]):
        self.image_size, self.mean, self.std = int(image_size), tuple(mean), tuple(std)

    def __call__(self, image: Frame | np.ndarray) -> torch.Tensor:
        if isinstance(image, (str, Path)):
            raise TypeError(f"transform takes a Frame or an array, not a path ({image}); read the file with "
                            f"medgap.read_frames(path) and transform each frame")
        if isinstance(image, torch.Tensor):
            image = image.numpy()
        square = torch.from_numpy(to_square_uint8(image, self.image_size).transpose(2, 0, 1).copy())
        return TensorDataset(square[None], torch.zeros(1), self.mean, self.std)[0][0]

    def __repr__(self) -> str:
        return f"RunTransform(image_size={self.image_size}, mean={self.mean}, std={self.std})"


class FeaturesClassifier(nn.Module):
    """A ``features`` fold whose classifier is not linear (an SVM): the frozen backbone's embeddings through the
    saved scikit-learn pipeline. ``forward`` returns log-probabilities (softmax gives the classifier's
    probabilities); it runs scikit-learn on the CPU, so it has no gradient."""

    def __init__(self, backbone: nn.Module, classifier: Any, n_classes: int):
        super().__init__()
        self.backbone, self.classifier, self.n_classes = backbone, classifier, n_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from medgap.train.linear_head import predict_proba

        with torch.no_grad():
            feats = self.backbone.forward_head(self.backbone.forward_features(x), pre_logits=True)
        prob = predict_proba(self.classifier, feats.float().cpu().numpy(), self.n_classes)
        return torch.from_numpy(np.log(np.maximum(prob, 1e-30))).float().to(x.device)


class FoldEnsemble(nn.Module):
    """The folds' models as one. ``classify``: ``forward`` returns the log of their mean softmax probabilities,
    so softmax of the output is the average of the folds' probabilities (soft voting); ``multilabel``: the logit
    of their mean sigmoid probabilities (sigmoid of the output is their average); ``regress``: their mean
    output."""

    def __init__(self, models: Sequence[nn.Module], task: str = "classify"):
        super().__init__()
        self.folds = nn.ModuleList(models)
        self.task = task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [m(x).float() for m in self.folds]
        if self.task == "regress":
            return torch.stack(outs).mean(0)
        if self.task == "multilabel":
            prob = torch.stack([torch.sigmoid(o) for o in outs]).mean(0).clamp(1e-7, 1 - 1e-7)
            return torch.log(prob) - torch.log1p(-prob)
        prob = torch.stack([torch.softmax(o, dim=1) for o in outs]).mean(0)
        return torch.log(prob.clamp_min(1e-30))


@dataclass
class LoadedRun:
    """What :func:`load_run` returns; unpacks as ``model, transform, classes``.

    ``model(x)`` takes a (N, 3, S, S) batch of ``transform`` outputs and returns (N, len(classes)) outputs.
    ``task`` says what they are (the run's ``--task``): ``classify``: logits, ``torch.softmax(model(x), 1)``
    are the class probabilities in the order of ``classes``; ``multilabel``: one logit per finding (``classes``
    are the findings), ``torch.sigmoid(model(x))`` their probabilities; ``regress``: (N, 1) scores, and
    ``classes`` is ``[target column]``. ``folds`` are the folds the model comes from (one, or all of them
    averaged)."""

    model: nn.Module
    transform: RunTransform
    classes: list[str]
    run_dir: Path
    folds: list[int]
    config: dict = field(repr=False, default_factory=dict)
    task: str = "classify"

    def __iter__(self) -> Iterator[Any]:
        return iter((self.model, self.transform, self.classes))

    def predict(self, images: Sequence[Frame | np.ndarray] | Frame | np.ndarray, batch_size: int = 32) -> np.ndarray:
        """What predictions.csv records for a list of images (Frames or arrays; a single Frame or array is one
        image): classify, (N, len(classes)) softmax probabilities; multilabel, (N, len(classes)) sigmoid
        probabilities per finding; regress, (N,) scores."""
        if isinstance(images, (Frame, np.ndarray, torch.Tensor)):  # one image; a list for several
            images = [images]
        device = next(self.model.parameters()).device
        out = []
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                x = torch.stack([self.transform(im) for im in images[start:start + batch_size]]).to(device)
                y = self.model(x).float()
                y = (torch.softmax(y, dim=1) if self.task == "classify" else torch.sigmoid(y)
                     if self.task == "multilabel" else y[:, 0])
                out.append(y.cpu().numpy())
        if out:
            return np.concatenate(out)
        return np.zeros(0) if self.task == "regress" else np.zeros((0, len(self.classes)))

    def predict_proba(self, images: Sequence[Frame | np.ndarray] | Frame | np.ndarray,
                      batch_size: int = 32) -> np.ndarray:
        """Class probabilities (N, len(classes)) of a list of images (Frames or arrays); a single Frame or
        array is one image (one row). A multi-label run gives each finding's probability; a regression run
        has none (use :meth:`predict`)."""
        if self.task == "regress":
            raise RunLoadError(f"{self.run_dir}: a regression run predicts scores, not probabilities; use "
                               f"predict(images)")
        return self.predict(images, batch_size)


def load_run(run_dir: str | Path, fold: int | None = None) -> LoadedRun:
    """A finished ``medgap finetune`` run (any strategy, any task) as ``(model, transform, classes)``; for a
    ``regress`` run ``classes`` is ``[target column]`` and the model outputs the score (see :class:`LoadedRun`).

    ``fold=k`` gives fold k's model (its best checkpoint): its probabilities on fold k's held-out items are
    the run's predictions.csv. ``fold=None`` (the default, for new images) averages the softmax probabilities
    of every fold's model. The model is in eval mode on the CPU.

    Raises:
        RunLoadError: no run there, an unfinished fold, or a fold saved without what a reload needs; the
            message names the run and the fix.
        CheckpointError: a checkpoint that cannot be loaded safely (damaged, or holding more than tensors).
    """
    run_dir = Path(run_dir)
    config, classes = _read_run(run_dir)
    folds = _finished_folds(run_dir, config)
    if fold is None:
        chosen = list(range(int(config["folds"])))
        unfinished = [k for k in chosen if k not in folds]
        if unfinished:
            raise RunLoadError(f"{run_dir}: fold(s) {', '.join(map(str, unfinished))} of {config['folds']} are not "
                               f"finished (no metrics.json); rerun the run's `medgap finetune` command to finish it "
                               f"(finished folds are reused), or load one finished fold with fold=k "
                               f"(finished: {sorted(folds) or 'none'})")
    else:
        if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)) or not 0 <= fold < int(config["folds"]):
            raise RunLoadError(f"{run_dir}: fold={fold!r}; the run has folds 0..{int(config['folds']) - 1} "
                               f"(or fold=None for their average)")
        if fold not in folds:
            raise RunLoadError(f"{run_dir}: fold {fold} is not finished (no {run_dir / f'fold_{fold}' / 'metrics.json'}"
                               f"); rerun the run's `medgap finetune` command to finish it (finished folds are "
                               f"reused), or choose a finished fold ({sorted(folds) or 'none'})")
        chosen = [int(fold)]
    models = [_fold_model(run_dir, config, classes, k, folds[k]) for k in chosen]
    task = run_task(config)
    model = models[0] if len(models) == 1 else FoldEnsemble(models, task)
    model.eval()
    return LoadedRun(model, _transform(run_dir, config), classes, run_dir, chosen, config, task)


def _transform(run_dir: Path, config: dict) -> RunTransform:
    """Training's input: preprocessing.json as the run recorded it; a run from before that file was written
    used the backbone's mean/std of :func:`medgap.models.preprocessing`."""
    path = run_dir / "preprocessing.json"
    if not path.exists():
        pre = preprocessing(config["backbone"], config.get("init", "scratch"))
        return RunTransform(config["image_size"], pre["mean"], pre["std"])
    pre = _read_json(path, "rerun the run's `medgap finetune` command to rewrite it (finished folds are reused)")
    try:
        return RunTransform(pre["image_size"], [float(v) for v in pre["mean"]], [float(v) for v in pre["std"]])
    except (KeyError, TypeError, ValueError):
        raise RunLoadError(f"{path}: expected image_size, mean and std, got {pre!r}; rerun the run's `medgap "
                           f"finetune` command to rewrite it (finished folds are reused)") from None


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunLoadError(f"{path}: missing; {what}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunLoadError(f"{path}: damaged ({type(e).__name__}: {e}); {what}") from None


def _read_run(run_dir: Path) -> tuple[dict, list[str]]:
    if not run_dir.is_dir():
        raise RunLoadError(f"{run_dir}: no such run directory; pass the --out folder of `medgap finetune`")
    what = "load_run needs a run directory written by `medgap finetune` (its --out folder)"
    config = _read_json(run_dir / "config.json", what)
    classes = _read_json(run_dir / "classes.json", what)
    needed = ("backbone", "strategy", "image_size", "folds")
    if not isinstance(config, dict) or any(k not in config for k in needed):
        raise RunLoadError(f"{run_dir / 'config.json'}: not a `medgap finetune` configuration (needs "
                           f"{', '.join(needed)}); {what}")
    task = run_task(config)
    if task not in TASKS:
        raise RunLoadError(f"{run_dir / 'config.json'}: task {task!r}; this medgap loads runs of "
                           f"{', '.join(TASKS)} (a newer medgap may load it)")
    least = {"classify": 2, "multilabel": 1, "regress": 1}[task]
    if not isinstance(classes, list) or len(classes) < least or (task == "regress" and len(classes) != 1):
        what = {"classify": "the list of class names", "multilabel": "the list of finding names",
                "regress": "a list holding the target column's name"}[task]
        raise RunLoadError(f"{run_dir / 'classes.json'}: expected {what}, got {classes!r}")
    return config, [str(c) for c in classes]


def _finished_folds(run_dir: Path, config: dict) -> dict[int, dict]:
    """Fold -> its metrics.json, for the folds that finished (metrics.json is written last)."""
    out = {}
    for k in range(int(config["folds"])):
        path = run_dir / f"fold_{k}" / "metrics.json"
        if path.exists():
            out[k] = _read_json(path, f"delete {path.parent} and rerun the run's `medgap finetune` command to "
                                      f"redo fold {k}")
    return out


def _fold_model(run_dir: Path, config: dict, classes: list[str], k: int, metrics: dict) -> nn.Module:
    fold_dir = run_dir / f"fold_{k}"
    redo = (f"delete {fold_dir} and rerun the run's `medgap finetune` command (fold {k} is trained again, the "
            f"other finished folds are reused)")
    best = metrics.get("best_checkpoint") if isinstance(metrics, dict) else None
    if not best:
        made = ("by a medgap that did not save the features classifier" if config["strategy"] == "features"
                else "without a checkpoint")
        raise RunLoadError(f"{fold_dir}: fold {k} was saved {made}, so it cannot be reloaded; {redo}")
    path = fold_dir / Path(best).name  # by name: the run directory may have moved since
    if not path.exists():
        raise RunLoadError(f"{path}: missing (metrics.json names it as fold {k}'s model); {redo}")
    fix = f"{redo}; never load this file with weights_only=False unless you made it yourself"
    blob = load_checkpoint_file(path, fix)
    state = blob.get("state_dict") if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(path, f"no 'state_dict' entry; not a medgap checkpoint. {fix}")
    # training built the model with its init's weights; here the checkpoint brings every tensor
    model = create_model(config["backbone"], "scratch", num_classes=len(classes))
    apply_strategy(model, config["strategy"], config.get("trainable_stages", 1))
    weights = {key.removeprefix("model."): v for key, v in state.items() if key.startswith("model.")}
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise CheckpointError(path, f"does not fit backbone {config['backbone']!r} with {len(classes)} classes "
                                    f"({str(e).splitlines()[0]}). {fix}") from None
    model.eval()
    if "classifier" in metrics:
        model = FeaturesClassifier(model, _load_classifier(fold_dir / Path(metrics["classifier"]).name, fix),
                                   len(classes)).eval()
    return model


def _load_classifier(path: Path, fix: str) -> Any:
    """A scikit-learn classifier saved by skops, refused when it holds a type skops does not trust by default."""
    try:
        import skops.io
    except ImportError:
        raise RunLoadError(f"{path}: reading this classifier needs skops: pip install 'medgap[train]'") from None
    if not path.exists():
        raise RunLoadError(f"{path}: missing (metrics.json names it as the fold's classifier); {fix}")
    try:
        untrusted = [t for t in skops.io.get_untrusted_types(file=path) if t not in SKLEARN_TRUSTED]
        if untrusted:
            raise CheckpointError(path, f"holds types that are not plain scikit-learn ({', '.join(untrusted)}); "
                                        f"it was not loaded, since loading it could run code. {fix}")
        return skops.io.load(path, trusted=[t for t in SKLEARN_TRUSTED
                                            if t in skops.io.get_untrusted_types(file=path)])
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001  skops reports a damaged file in many ways (zip, JSON, KeyError, ...)
        raise CheckpointError(path, f"damaged or not a skops file ({type(e).__name__}: {e}). {fix}") from None
