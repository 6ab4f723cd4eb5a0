"""Masks as DICOM Segmentation objects (highdicom): binary, one segment, referencing the source image, with the
source's geometry (rows, columns, pixel spacing, image orientation and position), so that radiology viewers
open the mask over its image."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from medgap.segment.errors import SegmentError


def write_dicom_seg(source: str | Path, mask: np.ndarray, out: str | Path, *, label: str = "Lung",
                    algorithm: str = "medgap U-Net", version: str | None = None) -> Path:
    """Write ``mask`` (boolean, the source's rows x columns, or frames x rows x columns for a multi-frame
    source) as a binary DICOM-SEG of the DICOM file ``source`` to ``out``. The segment's property is
    SNOMED CT "Lung" for ``label="Lung"`` (else a generic "Organ" with that label); the algorithm is recorded
    as automatic (artificial intelligence). Returns ``out``."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    from medgap import __version__

    source, out = Path(source), Path(out)
    try:
        ds = pydicom.dcmread(source)
    except Exception as e:  # noqa: BLE001 - pydicom raises InvalidDicomError, EOFError, ...
        raise SegmentError(f"{source}: not a readable DICOM file ({type(e).__name__}: {e})") from None
    mask = np.asarray(mask, bool)
    n_frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    expected = (ds.Rows, ds.Columns) if n_frames == 1 else (n_frames, ds.Rows, ds.Columns)
    if mask.shape != expected and not (n_frames == 1 and mask.shape == (1, ds.Rows, ds.Columns)):
        raise SegmentError(f"{source}: mask of shape {mask.shape} for an image of {expected}; predict the mask on "
                           "this file")
    prop_type = codes.SCT.Lung if label.lower() == "lung" else codes.SCT.Organ
    description = hd.seg.SegmentDescription(
        segment_number=1, segment_label=label, segmented_property_category=codes.SCT.Organ,
        segmented_property_type=prop_type, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name=algorithm, version=version or __version__, family=codes.cid7162.ArtificialIntelligence))
    with warnings.catch_warnings():  # the source's one-part patient name (e.g. TCGA ids) is copied as it is
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name")
        seg = _segmentation(hd, ds, mask, description, algorithm, __version__)
    out.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(out)
    return out


def _segmentation(hd, ds, mask, description, algorithm, version):
    return hd.seg.Segmentation(
        source_images=[ds], pixel_array=mask.astype(np.uint8), segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description], series_instance_uid=hd.UID(), series_number=900,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="medgap", manufacturer_model_name=algorithm,
        software_versions=version, device_serial_number="0", omit_empty_frames=False)
