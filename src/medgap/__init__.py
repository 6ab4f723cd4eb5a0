"""medgap: measure and act on the gap between ImageNet photos and medical images.

The notebook API loads lazily (``import medgap`` imports no NumPy, pandas or numba; each name imports its
module on first use)::

    import medgap
    scores = medgap.score("images/", metrics=["brisque", "niqe"])   # a DataFrame, nothing written
    result = medgap.compare(scores, reference="natural")           # every metric column; result["brisque"]

``score`` (in memory) and ``score_collection`` (resumable, on disk); ``compare`` (the groups on every metric
column: :func:`medgap.stats.compare_metrics`); ``validate`` (metrics against human ratings: SROCC, PLCC, ... with
bootstrap CIs, :mod:`medgap.validation`); ``create_metric`` / ``list_metrics``; ``read_frames`` / ``to_gray255``
(files or plain arrays) / ``collect``; ``create_model`` (a timm backbone through the initialisation registry);
``finetune(FinetuneConfig(...))`` (the training run of ``medgap finetune``); ``evaluate_run``; ``load_run`` (a
trained run as (model, transform, classes)); ``run_pretrain`` / ``run_benchmark`` (USCL pretraining and the
initialisation benchmark), ``train_segmentation`` / ``predict_masks``, ``run_resolution`` (one model per input
size and the stacking ensemble), ``explain_run`` (CAMs, kernels, receptive fields), each with its config.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("medgap")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

# name -> module that defines it
_LAZY = {
    "score": "medgap.scoring.memory",
    "score_collection": "medgap.scoring",
    "compare": "medgap.stats",
    "validate": "medgap.validation",
    "create_metric": "medgap.quality",
    "list_metrics": "medgap.quality",
    "read_frames": "medgap.io",
    "to_gray255": "medgap.io",
    "collect": "medgap.io",
    "evaluate_run": "medgap.evaluation",
    "load_run": "medgap.train",
    "create_model": "medgap.models",
    "FinetuneConfig": "medgap.train",
    "finetune": "medgap.train",
    # the commands of the later issues, by their function names (medgap.pretrain, .segment, .explain are packages)
    "PretrainConfig": "medgap.pretrain",
    "run_pretrain": "medgap.pretrain",
    "BenchmarkConfig": "medgap.pretrain",
    "run_benchmark": "medgap.pretrain",
    "SegmentTrainConfig": "medgap.segment",
    "train_segmentation": "medgap.segment",
    "predict_masks": "medgap.segment",
    "ResolutionConfig": "medgap.ensemble",
    "run_resolution": "medgap.ensemble",
    "ExplainConfig": "medgap.explain",
    "explain_run": "medgap.explain",
}
_RENAMED = {"compare": "compare_metrics", "finetune": "run_finetune"}  # exported name -> the module's name for it

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ loads these
    from medgap.evaluation import evaluate_run
    from medgap.io import collect, read_frames, to_gray255
    from medgap.quality import create_metric, list_metrics
    from medgap.scoring import score_collection
    from medgap.scoring.memory import score
    from medgap.stats import compare_metrics as compare
    from medgap.validation import validate
    from medgap.models import create_model
    from medgap.train import FinetuneConfig, load_run
    from medgap.train import run_finetune as finetune
    from medgap.ensemble import ResolutionConfig, run_resolution
    from medgap.explain import ExplainConfig, explain_run
    from medgap.pretrain import BenchmarkConfig, PretrainConfig, run_benchmark, run_pretrain
    from medgap.segment import SegmentTrainConfig, predict_masks, train_segmentation


def __getattr__(name: str) -> Any:  # PEP 562
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'medgap' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), _RENAMED.get(name, name))
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
