"""Segment first: a U-Net (segmentation-models-pytorch) trained on image/mask pairs (``medgap segment train``),
masks predicted as PNG, NIfTI or DICOM-SEG (``medgap segment predict``), and the region of interest that
classification (``medgap finetune --roi``) and quality scoring (``medgap quality/study --roi``) keep.
See docs/segmentation.md."""

from __future__ import annotations

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submod_attrs={
        "config": ["SegmentPredictConfig", "SegmentTrainConfig"],
        "crossfit": ["CrossFit", "CrossFitSegmenter", "heldout_metrics"],
        "dicom_seg": ["write_dicom_seg"],
        "errors": ["SegmentError"],
        "masks": ["keep_largest", "read_mask", "read_pairs", "region"],
        "metrics": ["dice", "hd95", "image_metrics", "iou", "summarise"],
        "model": ["create_unet"],
        "predict": ["load_segmenter", "predict_masks"],
        "roi": ["RoiSource", "apply_roi"],
        "train": ["train_segmentation"],
    },
)
