"""The fine-tuning run's options, declared once (see :mod:`medgap._options`): ``medgap finetune``'s options
and ``--config FILE`` come from these fields, and a run directory's ``config.json`` records them. No torch here,
so ``medgap --help`` lists the command without importing it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medgap._options import option

STRATEGIES = ("linear", "partial", "full", "features")
"""See :mod:`medgap.models.strategies`."""
BALANCE_MODES = ("none", "patient", "class")
"""See :mod:`medgap.data.balance`."""
TASK_NAMES = ("classify", "multilabel", "regress")
"""See :mod:`medgap.train.tasks`."""
REGRESSION_LOSSES = ("mse", "huber")


class ConfigError(ValueError):
    """A fine-tuning option with a value that cannot work; the message names the option and the fix."""


@dataclass
class FinetuneConfig:
    data: Path = option(help="Folder tree root/<class>/... or a CSV manifest (path, label and patient columns).")
    out: Path = option(help="Run directory (rerunning with the same options resumes it).", flags=("-o",))
    task: str = option("classify", "What the network learns: classify (one class per item, --label-column), "
                                   "multilabel (one 0/1 column per finding, --label-columns; empty = not known) or "
                                   "regress (a numeric score in --label-column).", choices=TASK_NAMES)
    backbone: str = option("efficientnet_lite0", "Any timm model name.")
    init: str = option("imagenet", "scratch, imagenet, hub[:TAG|OWNER/REPO], or a checkpoint file.")
    strategy: str = option("full", "What trains: linear (head), partial (last stages + head), full, or features "
                                   "(frozen embeddings + a scikit-learn classifier).", choices=STRATEGIES)
    trainable_stages: int = option(2, "partial: how many last stages train.")
    folds: int = option(5, "Cross-validation folds, grouped by patient.")
    image_size: int = option(128, "Square input size in pixels.")
    epochs: int = option(15, "Maximum epochs (early stopping on the inner validation split).")
    batch_size: int = option(32, "Images per batch.")
    lr: float = option(1e-3, "AdamW learning rate of the new head (warm-up, then cosine decay).")
    backbone_lr_scale: float = option(0.1, "Pretrained layers learn at lr x this (ignored for --init scratch, "
                                           "where all layers use lr).")
    label_smoothing: float = option(0.1, "Cross-entropy label smoothing.")
    patience: int = option(5, "Stop after this many epochs without a lower validation loss.")
    balance: str = option("class", "none, patient (every patient/clip counts once, however many frames) or class "
                                   "(patients equal, then classes equal): the training sampler and the validation "
                                   "loss.", choices=BALANCE_MODES)
    augment: bool = option(True, "Random crop, rotation, flip, brightness/contrast while training.")
    bn_stats: str = option("auto", "BatchNorm running statistics while fine-tuning: frozen (pretrained ones kept; "
                                   "scale and shift still train), train, or auto (frozen for pretrained weights, "
                                   "train for scratch).", choices=("auto", "frozen", "train"))
    head_init: str = option("logreg", "Pretrained backbones: start fine-tuning from a logistic regression fitted "
                                      "on the frozen features of the training part (logreg) or from a random head "
                                      "(random). Scratch models always start random.", choices=("logreg", "random"))
    video_stride: int = option(10, "Use every Nth video frame.")
    seed: int = option(0, "Fold k seeds everything with seed + k.")
    classifier: str = option("logreg", "features strategy: logreg or svm.", choices=("logreg", "svm"))
    path_column: str = option("path", "Manifest column holding the file path (relative to the CSV).")
    label_column: str = option("label", "Manifest column holding the class (classify) or the score (regress).")
    label_columns: str | None = option(None, "multilabel: the manifest's finding columns, comma-separated (1 "
                                             "present, 0 absent, empty not known).", metavar="A,B,...")
    loss: str = option("mse", "regress: the loss, mse or huber (in units of the training part's standard "
                              "deviation of the score).", choices=REGRESSION_LOSSES)
    group_column: str = option("group_id", "Manifest column with the patient id; folds never split a patient. A "
                                           "manifest without it is refused.")
    each_file_is_a_patient: bool = option(False, "A manifest without patient ids: every file comes from a "
                                                 "different patient (otherwise refused; a video's frames stay "
                                                 "together).")
    filter: str | None = option(None, "Manifest rows to use, COLUMN=V1,V2 (e.g. modality=pocus,pocus_video).",
                                metavar="COLUMN=V1,V2")
    roi: Path | None = option(None, "Classify the region of interest only: a folder of masks named after the images "
                                    "(all-zero = not annotated) or a segment-train run (masks predicted on the fly); "
                                    "images without a region are left out (listed).", metavar="MASK_DIR|RUN")
    roi_mode: str = option("crop", "--roi: crop (the mask's bounding box) or mask (outside the mask set to black, "
                                   "then the box), before resizing.", choices=("crop", "mask"))
    accelerator: str = option("auto", "auto (GPU when there is one), gpu or cpu.",
                              choices=("auto", "cpu", "gpu", "cuda", "mps"), resumable=True)
    devices: int | str = option(1, "Devices per node (GPUs, or CPU processes with --ddp); 'auto' for all.",
                                resumable=True)
    num_nodes: int = option(1, "Nodes for multi-node DDP.", resumable=True)
    ddp: bool = option(False, "Distributed data parallel across devices/nodes (Lightning).", resumable=True)
    precision: str = option("auto", "auto (bf16-mixed on CUDA, 32-true on CPU), 32-true, 16-mixed, bf16-mixed, "
                                    "bf16-true, 16-true or 64-true.",
                            choices=("auto", "32-true", "32", "16-mixed", "bf16-mixed", "bf16-true", "16-true",
                                     "64-true"), resumable=True)

    def __post_init__(self) -> None:
        if isinstance(self.devices, str) and self.devices.isdigit():  # "2" from the command line or a YAML file
            self.devices = int(self.devices)

    @property
    def label_column_list(self) -> list[str]:
        """``label_columns`` as a list (a comma-separated string, or a list from Python or a YAML file)."""
        spec = self.label_columns
        if spec is None:
            return []
        parts = spec.split(",") if isinstance(spec, str) else [str(v) for v in spec]
        return [v.strip() for v in parts if v.strip()]

    @property
    def filter_column(self) -> str | None:
        return _parse_filter(self.filter)[0]

    @property
    def filter_values(self) -> list[str]:
        return _parse_filter(self.filter)[1]


def _parse_filter(spec: str | None) -> tuple[str | None, list[str]]:
    """``COLUMN=V1,V2`` -> (column, values); anything else is a ConfigError, never ignored."""
    if spec is None:
        return None, []
    column, sep, rest = str(spec).partition("=")
    values = [v.strip() for v in rest.split(",") if v.strip()]
    if not sep or not column.strip() or not values:
        raise ConfigError(f"--filter takes COLUMN=V1,V2 (for example --filter modality=pocus,pocus_video), got "
                          f"{spec!r}")
    return column.strip(), values


# Keys of config.json files recorded before a field was renamed or added: read as today's fields so that such a
# run still resumes. A value of None removes the key.
def upgrade_recorded(old: dict) -> dict:
    old = {"each_file_is_a_patient": False, "task": "classify", "label_columns": None, "loss": "mse", "roi": None,
           "roi_mode": "crop", **old}
    if "filter_column" in old or "filter_values" in old:
        col, vals = old.pop("filter_column", None), old.pop("filter_values", None) or []
        old["filter"] = f"{col}={','.join(vals)}" if col else None
    return old
