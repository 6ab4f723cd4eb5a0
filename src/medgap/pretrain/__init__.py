"""In-domain contrastive pretraining on ultrasound videos (USCL) and the benchmark that tells whether it helps.

- :mod:`medgap.pretrain.videos`: the videos (file, patient, label or none) and their frames, decoded once with
  PyAV and cached (memory and ``.npy`` files);
- :mod:`medgap.pretrain.pairs`: USCL's pairs (three frames, two mixed views sharing an anchor frame) and the batch
  sampler (one item per video; optionally one video per patient per batch);
- :mod:`medgap.pretrain.loss`: NT-Xent (lightly) plus cross-entropy on the labelled videos;
- :func:`run_pretrain`: the Lightning run and its directory, which ``--init pretrain:RUN_DIR`` loads;
- :func:`run_benchmark`: scratch vs ImageNet vs in-domain pretraining under one patient-grouped protocol.
"""

from __future__ import annotations

import importlib
from typing import Any

from medgap.pretrain.config import PRESETS, BenchmarkConfig, PretrainConfig, PretrainError

_LAZY = {
    "run_pretrain": "medgap.pretrain.run",
    "PretrainResult": "medgap.pretrain.run",
    "patient_split": "medgap.pretrain.run",
    "run_benchmark": "medgap.pretrain.benchmark",
    "BenchmarkResult": "medgap.pretrain.benchmark",
    "VideoPairDataset": "medgap.pretrain.pairs",
    "VideoBatchSampler": "medgap.pretrain.pairs",
    "draw_pair": "medgap.pretrain.pairs",
    "mix_views": "medgap.pretrain.pairs",
    "USCLLoss": "medgap.pretrain.loss",
    "FrameCache": "medgap.pretrain.videos",
    "VideoRecord": "medgap.pretrain.videos",
    "load_videos": "medgap.pretrain.videos",
}

__all__ = ["PRESETS", "BenchmarkConfig", "PretrainConfig", "PretrainError", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'medgap.pretrain' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
