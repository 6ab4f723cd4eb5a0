"""Segment first: a U-Net (segmentation-models-pytorch) trained on image/mask pairs (``medgap segment train``),
masks predicted as PNG, NIfTI or DICOM-SEG (``medgap segment predict``), and the region of interest that
classification (``medgap finetune --roi``) and quality scoring (``medgap quality/study --roi``) keep.
See docs/segmentation.md."""

from __future__ import annotations

import importlib

_LAZY = {
    "SegmentError": "medgap.segment.errors",
    "SegmentTrainConfig": "medgap.segment.config",
    "SegmentPredictConfig": "medgap.segment.config",
    "read_mask": "medgap.segment.masks",
    "region": "medgap.segment.masks",
    "keep_largest": "medgap.segment.masks",
    "CrossFit": "medgap.segment.crossfit",
    "CrossFitSegmenter": "medgap.segment.crossfit",
    "heldout_metrics": "medgap.segment.crossfit",
    "read_pairs": "medgap.segment.masks",
    "dice": "medgap.segment.metrics",
    "iou": "medgap.segment.metrics",
    "hd95": "medgap.segment.metrics",
    "image_metrics": "medgap.segment.metrics",
    "summarise": "medgap.segment.metrics",
    "create_unet": "medgap.segment.model",
    "train_segmentation": "medgap.segment.train",
    "load_segmenter": "medgap.segment.predict",
    "predict_masks": "medgap.segment.predict",
    "write_dicom_seg": "medgap.segment.dicom_seg",
    "RoiSource": "medgap.segment.roi",
    "apply_roi": "medgap.segment.roi",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'medgap.segment' has no attribute {name!r}")
