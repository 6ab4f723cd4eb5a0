"""DICOM-SEG round trip on a real CT slice of ../shared/data: pydicom/highdicom read back the mask, the
referenced source instance and the source's geometry."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture()
def ct_dicom(shared_data):
    path = shared_data / "ct" / "ID_0000_AGE_0060_CONTRAST_1_CT.dcm"
    if not path.exists():
        pytest.skip(f"needs {path}")
    return path


def test_dicom_seg_round_trip(ct_dicom, tmp_path):
    import highdicom as hd
    import pydicom

    from medgap.segment.dicom_seg import write_dicom_seg

    src = pydicom.dcmread(ct_dicom)
    mask = np.zeros((src.Rows, src.Columns), bool)
    mask[100:220, 60:200] = True  # two asymmetric blobs: rows/columns swapped or flipped would not match
    mask[300:330, 350:480] = True
    out = write_dicom_seg(ct_dicom, mask, tmp_path / "x.seg.dcm")

    seg = hd.seg.segread(out)
    assert np.array_equal(seg.pixel_array.reshape(src.Rows, src.Columns).astype(bool), mask)
    back = pydicom.dcmread(out)
    assert back.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"  # Segmentation Storage
    assert back.SegmentationType == "BINARY"
    assert (back.Rows, back.Columns) == (src.Rows, src.Columns)
    ref = back.ReferencedSeriesSequence[0]
    assert ref.SeriesInstanceUID == src.SeriesInstanceUID
    assert ref.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert back.StudyInstanceUID == src.StudyInstanceUID
    assert back.FrameOfReferenceUID == src.FrameOfReferenceUID
    shared = back.SharedFunctionalGroupsSequence[0]
    assert [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing] == [float(v) for v in src.PixelSpacing]
    assert [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient] == \
        [float(v) for v in src.ImageOrientationPatient]
    frame = back.PerFrameFunctionalGroupsSequence[0]
    assert [float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient] == \
        [float(v) for v in src.ImagePositionPatient]
    source = frame.DerivationImageSequence[0].SourceImageSequence[0]
    assert source.ReferencedSOPInstanceUID == src.SOPInstanceUID
    desc = back.SegmentSequence[0]
    assert desc.SegmentLabel == "Lung" and desc.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Lung"


def test_a_mask_of_another_size_is_refused(ct_dicom, tmp_path):
    from medgap.segment.dicom_seg import write_dicom_seg
    from medgap.segment.errors import SegmentError

    with pytest.raises(SegmentError, match="predict the mask on this file"):
        write_dicom_seg(ct_dicom, np.zeros((100, 100), bool), tmp_path / "x.seg.dcm")
