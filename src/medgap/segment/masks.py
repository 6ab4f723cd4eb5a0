"""Masks in and out: reading a mask by its content, the region it marks, and the pairs table of a training run.

The lung masks of ../shared/data/masks/lungs are 8-bit PNG, some under a ``.jpg`` name: they are decoded by
content (OpenCV's ``imdecode`` looks at the bytes, not the name). Values: 255 lung, 127 an object over the lung
field (a box drawn on the film, a pacemaker), 0 elsewhere. ``threshold=127`` (the default everywhere here)
counts the object as lung, since the lung field continues under it, as "lung field" masks of most data sets
do; torchxrayvision keeps only 255 (``threshold=255``). A mask that is 0 everywhere means **not annotated**
(31 of the 32 CT masks and the lateral views there), never "no lung": such pairs are left out of training and
evaluation, and counted in the log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from medgap.segment.errors import SegmentError

DEFAULT_THRESHOLD = 127
DEFAULT_KEEP_LARGEST = 2
"""Predicted masks keep their 2 largest connected components by default (docs/segmentation.md: measured on the
held-out lung predictions)."""


def read_mask(path: str | Path) -> np.ndarray:
    """A mask file as a 2-D uint8 array, decoded by content (a PNG named ``.jpg`` is read as PNG). NIfTI and
    DICOM masks are read through :func:`medgap.io.read_frames` (first frame); colour masks keep their brightest
    channel."""
    path = Path(path)
    from medgap.io.readers import DICOM_SUFFIXES, NIFTI_SUFFIXES, suffix_of

    if suffix_of(path) in NIFTI_SUFFIXES or suffix_of(path) in DICOM_SUFFIXES:
        from medgap.io import read_frames

        arr = np.asarray(next(iter(read_frames(path))).pixels)
    else:
        try:
            raw = np.fromfile(path, np.uint8)
        except OSError as e:
            raise SegmentError(f"{path}: cannot read the mask ({e.strerror or e}); check the path in the pairs "
                               f"table") from None
        arr = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED) if raw.size else None
        if arr is None:
            raise SegmentError(f"{path}: not an image OpenCV can decode (PNG, JPEG, BMP, TIFF); give masks as 8-bit "
                               f"images, NIfTI or DICOM")
    if arr.ndim == 3:
        arr = arr[..., :3].max(axis=2)
    return np.asarray(arr)


def region(mask: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """The boolean region of a mask: values at or above ``threshold`` (see the module's note on 127)."""
    return np.asarray(mask) >= threshold


def keep_largest(mask: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` largest connected components of a boolean mask (8-connected, :func:`scipy.ndimage.label`;
    ties by label order); ``n <= 0`` or a mask with at most ``n`` components: the mask as it is. For lungs
    ``n = 2`` removes stray blobs outside the lung fields (a marker label, the abdomen) but would drop a real
    third component; a lateral view's one blob is kept."""
    mask = np.asarray(mask, bool)
    if n <= 0 or not mask.any():
        return mask
    from scipy import ndimage

    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if count <= n:
        return mask
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    keep = np.argsort(-sizes, kind="stable")[:n] + 1
    return np.isin(labels, keep)


def is_annotated(mask: np.ndarray) -> bool:
    """False for a mask that is 0 everywhere: not annotated (never "no region")."""
    return bool(np.asarray(mask).any())


@dataclass(frozen=True)
class MaskPair:
    image: Path
    mask: Path
    patient: str


def read_pairs(csv: str | Path, *, image_column: str = "image", mask_column: str = "mask",
               patient_column: str = "patient", manifest: str | Path | None = None,
               log: Callable[[str], None] = print) -> list[MaskPair]:
    """The (image, mask, patient) rows of a pairs table. Relative paths are read from the CSV's folder or the
    nearest folder above it holding every listed file (``masks/lungs/pairs.csv`` lists ``cxr/...`` and
    ``masks/lungs/cxr/...`` relative to ``data/``). The patient is, in order: the ``patient_column``; the
    ``group_id`` of the image in ``manifest``, or in a ``MANIFEST.csv`` beside the images' folder; else each
    image is its own patient (said in the log: folds then split by file only)."""
    from medgap.validation import RatingsError, _resolve_root

    csv = Path(csv)
    if not csv.is_file():
        raise SegmentError(f"{csv}: no such pairs table; give a CSV with columns {image_column}, {mask_column}")
    table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    missing = [c for c in (image_column, mask_column) if c not in table.columns]
    if missing:
        raise SegmentError(f"{csv}: no column {', '.join(missing)}; its columns are {', '.join(table.columns)}. Name "
                           f"them with --image-column/--mask-column")
    if table.empty:
        raise SegmentError(f"{csv}: no rows")
    try:
        root = _resolve_root(table[image_column].tolist() + table[mask_column].tolist(), csv.resolve().parent,
                             None, str(csv))
    except RatingsError as e:
        raise SegmentError(str(e).replace("image files", "files")) from None
    images = [Path(p) if Path(p).is_absolute() else (root / p).resolve() for p in table[image_column]]
    masks = [Path(p) if Path(p).is_absolute() else (root / p).resolve() for p in table[mask_column]]
    if patient_column in table.columns and (table[patient_column] != "").all():
        patients = table[patient_column].tolist()
        log(f"patients: column {patient_column!r} of {csv}")
    else:
        found = Path(manifest) if manifest is not None else root / "MANIFEST.csv"
        if manifest is not None and not found.is_file():
            raise SegmentError(f"--manifest {manifest}: no such file")
        if found.is_file():
            man = pd.read_csv(found, dtype=str, keep_default_na=False)
            if not {"path", "group_id"} <= set(man.columns):
                raise SegmentError(f"{found}: a manifest needs columns path and group_id; its columns are "
                                   f"{', '.join(man.columns)}")
            lookup = {str((found.parent / p).resolve()): g for p, g in zip(man["path"], man["group_id"]) if g}
            patients = [lookup.get(str(i), str(i)) for i in images]
            n_found = sum(str(i) in lookup for i in images)
            log(f"patients: group_id of {found} for {n_found} of {len(images)} images"
                + (f" (the other {len(images) - n_found}: each file is its own patient)" if n_found < len(images) else ""))
        else:
            patients = [str(i) for i in images]
            log(f"patients: no {patient_column!r} column and no manifest: each image is its own patient, so folds "
                f"split by file (pass --manifest or a {patient_column} column if one patient has several images)")
    return [MaskPair(i, m, p) for i, m, p in zip(images, masks, patients)]
