"""Options of ``medgap pretrain`` and ``medgap benchmark``, declared once (see :mod:`medgap._options`). No torch
here, so ``medgap --help`` lists the commands without importing it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medgap._options import option


class PretrainError(ValueError):
    """A pretraining or benchmark option, input or run directory that cannot work; the message names it and the
    fix."""


_DEVICE_HELP = "auto (GPU when there is one), gpu or cpu."
_PRECISIONS = ("auto", "32-true", "32", "16-mixed", "bf16-mixed", "bf16-true", "16-true", "64-true")


@dataclass
class PretrainConfig:
    """Semi-supervised contrastive pretraining on videos (USCL, Chen et al. 2021): see :func:`run_pretrain`."""

    videos: Path = option(help="Videos: a folder (DIR/<class>/clip.mp4 labelled, DIR/clip.mp4 unlabelled) or a CSV "
                               "manifest (path, label (empty = unlabelled) and patient columns).")
    out: Path = option(help="Run directory (rerunning with the same options resumes it).", flags=("-o",))
    backbone: str = option("efficientnet_lite0", "Any timm model name.")
    init: str = option("imagenet", "Where pretraining starts: imagenet, scratch (or any --init of medgap finetune).")
    image_size: int = option(128, "Square input size in pixels (frames are cached at this size).")
    epochs: int = option(20, "Pretraining epochs (the checkpoint with the lowest validation NT-Xent is kept).")
    batch_size: int = option(32, "Videos per batch (one item per video; the other videos are the negatives).")
    lr: float = option(3e-4, "Adam learning rate (cosine decay to 0), as USCL.")
    weight_decay: float = option(1e-4, "Adam weight decay.")
    temperature: float = option(0.5, "NT-Xent temperature.")
    projection_dim: int = option(128, "Output size of the projection head (an MLP on the pooled features).")
    ce_weight: float = option(0.2, "Weight of the cross-entropy on labelled videos (0: purely self-supervised).")
    frames_per_video: int = option(16, "Frames kept per video (evenly spaced over the clip), decoded once and "
                                       "cached; the three frames of a pair are drawn from them.")
    mix_alpha: float = option(0.5, "Mixing weight lambda ~ Beta(alpha, alpha) (USCL: 0.5).")
    val_fraction: float = option(0.2, "Share of patients held out for the validation NT-Xent (checkpoint choice).")
    separate_patients: bool = option(False, "Never put two videos of one patient in a batch (negatives then come "
                                            "from other patients only).")
    augment: bool = option(True, "Random crop, rotation, flip, brightness/contrast of each frame before mixing.")
    seed: int = option(0, "Seeds the split, the sampler, frames, mixing and augmentation.")
    path_column: str = option("path", "Manifest column holding the file path (relative to the CSV).")
    label_column: str = option("label", "Manifest column holding the class (empty: unlabelled video).")
    group_column: str = option("group_id", "Manifest column with the patient id (held-out videos are held out by "
                                           "patient).")
    each_file_is_a_patient: bool = option(False, "A manifest without patient ids: every video is its own patient.")
    filter: str | None = option(None, "Manifest rows to use, COLUMN=V1,V2 (e.g. modality=pocus_video).",
                                metavar="COLUMN=V1,V2")
    accelerator: str = option("auto", _DEVICE_HELP, choices=("auto", "cpu", "gpu", "cuda", "mps"), resumable=True)
    devices: int | str = option(1, "Devices per node; 'auto' for all.", resumable=True)
    num_nodes: int = option(1, "Nodes for multi-node DDP.", resumable=True)
    ddp: bool = option(False, "Distributed data parallel (negatives gathered from every device).", resumable=True)
    precision: str = option("auto", "auto (bf16-mixed on CUDA, 32-true on CPU) or a Lightning precision.",
                            choices=_PRECISIONS, resumable=True)

    def __post_init__(self) -> None:
        if isinstance(self.devices, str) and self.devices.isdigit():
            self.devices = int(self.devices)


PRESETS: dict[str, dict] = {
    # the whole benchmark of one task in about ten minutes on one CPU thread (docs/pretraining.md)
    "cpu": {"backbone": "efficientnet_lite0", "image_size": 64, "folds": 3, "seeds": 2, "epochs": 5, "patience": 2,
            "pretrain_epochs": 8, "strategy": "partial", "trainable_stages": 2, "lr": 1e-3,
            "backbone_lr_scale": 0.1, "batch_size": 32, "video_stride": 50, "frames_per_video": 8,
            "pretrain_batch_size": 32},
    # USCL's schedule: ResNet18 at 224 px, Adam 3e-4, 300 pretraining epochs, the last block and a new head fine-tune
    "paper": {"backbone": "resnet18", "image_size": 224, "folds": 5, "seeds": 3, "epochs": 50, "patience": 10,
              "pretrain_epochs": 300, "strategy": "partial", "trainable_stages": 1, "lr": 3e-4,
              "backbone_lr_scale": 1.0, "batch_size": 32, "video_stride": 10, "frames_per_video": 16,
              "pretrain_batch_size": 32},
}


@dataclass
class BenchmarkConfig:
    """Scratch vs ImageNet vs in-domain pretraining under one fine-tuning protocol: see :func:`run_benchmark`."""

    data: Path = option(help="Folder tree root/<class>/... or a CSV manifest (path, label and patient columns).")
    out: Path = option(help="Benchmark directory (rerunning the same command resumes it).", flags=("-o",))
    preset: str = option("cpu", "cpu (64 px EfficientNet-Lite0, few epochs: minutes on a CPU) or paper (ResNet18, "
                                "224 px, USCL's schedule; for a GPU).", choices=tuple(PRESETS))
    inits: str = option("scratch,imagenet,pretrain", "Initialisations compared (comma-separated): scratch, "
                                                    "imagenet, pretrain (in-domain, pretrained inside each outer "
                                                    "fold), and any --init of medgap finetune (a checkpoint, "
                                                    "pretrain:RUN_DIR).")
    pretrain_videos: Path | None = option(None, "Pretrain once on these videos (folder or CSV) instead of inside "
                                                "each fold; their patients must not be in --data.")
    pretrain_init: str = option("imagenet", "Where in-domain pretraining starts (imagenet or scratch).")
    backbone: str | None = option(None, "Backbone (default: the preset's).")
    image_size: int | None = option(None, "Input size (default: the preset's).")
    folds: int | None = option(None, "Outer folds, grouped by patient (default: the preset's).")
    seeds: int | None = option(None, "Repeats of the cross-validation with other folds (seed 0, 1, ...).")
    epochs: int | None = option(None, "Maximum fine-tuning epochs (early stopping on the inner validation split).")
    pretrain_epochs: int | None = option(None, "Pretraining epochs (default: the preset's).")
    video_stride: int | None = option(None, "Fine-tuning uses every Nth frame of a clip (default: the preset's).")
    ce_weight: float = option(0.2, "Pretraining: weight of the cross-entropy on the labelled training videos.")
    bootstrap: int = option(1000, "Patient-bootstrap resamples for the CIs.")
    path_column: str = option("path", "Manifest column holding the file path (relative to the CSV).")
    label_column: str = option("label", "Manifest column holding the class.")
    group_column: str = option("group_id", "Manifest column with the patient id.")
    filter: str | None = option(None, "Manifest rows to use, COLUMN=V1,V2 (e.g. modality=pocus,pocus_video).",
                                metavar="COLUMN=V1,V2")
    accelerator: str = option("auto", _DEVICE_HELP, choices=("auto", "cpu", "gpu", "cuda", "mps"), resumable=True)
    precision: str = option("auto", "auto (bf16-mixed on CUDA, 32-true on CPU) or a Lightning precision.",
                            choices=_PRECISIONS, resumable=True)

    def setting(self, name: str):
        """An option's value, or the preset's when the option is left unset (None)."""
        value = getattr(self, name, None)
        return PRESETS[self.preset][name] if value is None else value

    @property
    def init_list(self) -> list[str]:
        return [v.strip() for v in str(self.inits).split(",") if v.strip()]
