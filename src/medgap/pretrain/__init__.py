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

import lazy_loader as lazy

from medgap.pretrain.config import PRESETS, BenchmarkConfig, PretrainConfig, PretrainError  # noqa: F401  (in __all__)

__getattr__, _lazy_dir, _lazy_all = lazy.attach(
    __name__,
    submod_attrs={
        "benchmark": ["BenchmarkResult", "run_benchmark"],
        "loss": ["USCLLoss"],
        "pairs": ["VideoBatchSampler", "VideoPairDataset", "draw_pair", "mix_views"],
        "run": ["PretrainResult", "patient_split", "run_pretrain"],
        "videos": ["FrameCache", "VideoRecord", "load_videos"],
    },
)
__all__ = sorted(["PRESETS", "BenchmarkConfig", "PretrainConfig", "PretrainError", *_lazy_all])


def __dir__() -> list[str]:
    return __all__.copy()
