"""``cnn-wsp``: a blind quality model trained on human ratings (``medgap train-quality``), as a network metric.

``create_metric("cnn-wsp", model=RUN_DIR)`` (or ``--metric cnn-wsp:model=RUN_DIR``) loads the run's fold model
(``RUN_DIR/fold_<fold>/model.pt``; ``model`` may also name a ``model.pt`` itself, which makes the metric's
version follow the file's content) once per process and device, and scores batches of colour frames: the
column ``cnn-wsp`` is the expected opinion bin (1..5, higher is better), ``cnn-wsp_mos`` the same on the MOS
scale the model was trained on. Frames are resized to the training size (bilinear, antialiased), as in
training (:func:`medgap.models.wsp.to_input`).

References: S. Su and J. Korhonen, ICIP 2020 (see :mod:`medgap.models.wsp`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medgap.quality.network import NetworkMetricFn
from medgap.quality.registry import register_metric

MODEL_FILE = "model.pt"


class QualityModelError(ValueError):
    """A ``model=`` that is not a trained quality run; the message names the path and the fix."""


def _model_file(model: str | Path, fold: int) -> Path:
    path = Path(model)
    if path.is_dir():
        path = path / f"fold_{int(fold)}" / MODEL_FILE
    if not path.is_file():
        raise QualityModelError(f"cnn-wsp: {path} does not exist; model= takes the run directory of medgap "
                                f"train-quality (holding fold_<k>/{MODEL_FILE}, fold={fold}) or such a file. Train "
                                "one with: medgap train-quality --ratings CSV --out RUN_DIR")
    return path


def load_quality_model(path: str | Path) -> tuple[Any, dict]:
    """(network in eval mode on the CPU, its meta: backbone, pooling, image_size, mean, std, mos_min, mos_max)
    from a ``model.pt`` written by :func:`medgap.train.quality.train_quality` (loaded ``weights_only``)."""
    from medgap.models.checkpoints import load_checkpoint_file
    from medgap.models.wsp import create_quality_net

    fix = "train it again with medgap train-quality, or give the right run directory"
    blob = load_checkpoint_file(path, fix)
    if not isinstance(blob, dict) or "state_dict" not in blob or "meta" not in blob:
        raise QualityModelError(f"{path}: not a medgap train-quality model (no state_dict/meta); {fix}")
    meta = blob["meta"]
    net = create_quality_net(meta["backbone"], "scratch", meta["pooling"])  # the weights come from the file
    net.load_state_dict(blob["state_dict"])
    return net.eval(), meta


@dataclass(frozen=True)
class CnnWsp(NetworkMetricFn):
    path: str
    sha1: str
    """The model file's content hash: a retrained model is another model in the per-process cache."""
    size: int
    """The training input size (0: full resolution, frames of one shape per batch)."""

    @property
    def same_size(self) -> bool:  # type: ignore[override]
        return self.size == 0  # resized frames may come in any mix of sizes

    def load(self, device):
        net, meta = load_quality_model(self.path)
        return net.to(device), meta

    def predict(self, model, images: Sequence[np.ndarray], device) -> list[dict[str, float]]:
        from medgap.models.wsp import expected_score, to_input

        net, meta = model
        x = to_input(images, meta["image_size"] or None, meta["mean"], meta["std"], device)
        s = expected_score(net(x).float()).cpu().numpy().astype(np.float64)
        lo, hi = float(meta["mos_min"]), float(meta["mos_max"])
        return [{"cnn-wsp": float(v), "cnn-wsp_mos": lo + (float(v) - 1.0) * (hi - lo) / 4.0} for v in s]


@dataclass(frozen=True)
class WeightMap:
    """Where the model looked in one image: its learned pooling weights and its score."""

    weights: np.ndarray
    """H x W float64 at the image's size: the pooling weights relative to average pooling
    (:func:`medgap.models.wsp.relative_weight_map`: mean 1 over the image, 1 = the weight average pooling gives
    every position, 0 = ignored; all ones for an ``avg``-pooling model)."""
    raw: np.ndarray
    """h x w float32: the weights as the pooling used them, at the feature map's resolution (>= 0)."""
    score: float
    """The expected opinion bin, 1..5 (the metric's ``cnn-wsp`` column)."""
    score_mos: float
    """The same on the training MOS scale (``cnn-wsp_mos``)."""


def weight_maps(model: str | Path | tuple[Any, dict], images: Sequence[np.ndarray], *, fold: int = 0,
                device: str = "cpu") -> list[WeightMap]:
    """The learned pooling weight map and the score of each image (HxWx3 or HxW, 0-255, as the metric takes
    them), from one forward pass per image with the metric's own preprocessing (resized to the training size).

    ``model``: a ``medgap train-quality`` run directory (fold ``fold``'s model), a ``model.pt``, or the
    ``(net, meta)`` pair of :func:`load_quality_model`. Overlay figures: :func:`medgap.report.weight_maps.
    write_weight_maps`."""
    import torch

    from medgap.models.wsp import expected_score, relative_weight_map, to_input
    from medgap.quality.network import resolve_device

    dev = resolve_device(device)
    net, meta = model if isinstance(model, tuple) else load_quality_model(_model_file(model, fold))
    net = net.to(dev).eval()
    lo, hi = float(meta["mos_min"]), float(meta["mos_max"])
    out = []
    with torch.no_grad():
        for image in images:
            x = to_input([image], meta["image_size"] or None, meta["mean"], meta["std"], dev)
            logits, w = net.logits_and_weights(x)
            rel = relative_weight_map(w, np.shape(image)[:2])[0]
            s = float(expected_score(logits.float())[0])
            out.append(WeightMap(rel.cpu().numpy().astype(np.float64), w[0, 0].float().cpu().numpy(), s,
                                 lo + (s - 1.0) * (hi - lo) / 4.0))
    return out


def _make_cnn_wsp(model: str | None = None, fold: int = 0) -> CnnWsp:
    """``model``: a ``medgap train-quality`` run directory (or its ``fold_<k>/model.pt``); ``fold``: which
    fold's model of the run."""
    if model is None:
        raise QualityModelError("cnn-wsp needs a trained model: --metric cnn-wsp:model=RUN_DIR (made by medgap "
                                "train-quality --ratings CSV --out RUN_DIR)")
    path = _model_file(model, int(fold))
    h = hashlib.sha1(path.read_bytes()).hexdigest()
    from medgap.models.checkpoints import load_checkpoint_file

    blob = load_checkpoint_file(path, "train it again with medgap train-quality, or give the right run directory")
    if not isinstance(blob, dict) or not isinstance(blob.get("meta"), dict):
        raise QualityModelError(f"{path}: not a medgap train-quality model (no meta entry); train one with medgap "
                                "train-quality --ratings CSV --out RUN_DIR")
    return CnnWsp(str(path.resolve()), h, int(blob["meta"].get("image_size") or 0))


_REGISTRATION = dict(
    version="1",
    columns=("cnn-wsp", "cnn-wsp_mos"),
    lower_is_better=False,
    range=(1.0, 5.0),
    description="learned blind quality: CNN with weighted spatial pooling and 5 opinion bins, trained on ratings "
                "(medgap train-quality); expected bin 1..5, and the MOS scale it was trained on",
    reference="Su & Korhonen, ICIP 2020 (doi:10.1109/ICIP40778.2020.9190789)",
    input="rgb",
    network=True,
    required=("model",),
)


def metric_info():
    """The registry entry of ``cnn-wsp`` (a :class:`~medgap.quality.MetricInfo`), whether registered or not."""
    from medgap.quality.registry import MetricInfo

    return MetricInfo(name="cnn-wsp", factory=_make_cnn_wsp, **_REGISTRATION)


def register() -> None:
    """Add ``cnn-wsp`` to the metric registry (once). Not done on import: the registry's contract tests create
    every metric without parameters, and cnn-wsp has no model to default to (see docs/quality_model.md)."""
    from medgap.quality.registry import _REGISTRY

    if "cnn-wsp" not in _REGISTRY:
        register_metric("cnn-wsp", **_REGISTRATION)(_make_cnn_wsp)
