"""The region of interest: masks found by image name, not-annotated masks refused, crop/mask modes, and the
classification data path (decode_items) keeping only the region before resizing."""

from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest

from medgap.data.items import LabelledItem
from medgap.data.tensors import decode_items
from medgap.io import Frame
from medgap.segment.roi import MaskFolder, NoMask, RoiSource, apply_roi, bounding_box


def _write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), array)
    return path


def test_masks_are_found_by_name_stem_and_parent_folder(tmp_path):
    masks = tmp_path / "masks"
    a = _write(masks / "cxr" / "x.png", np.full((4, 4), 255, np.uint8))
    b = _write(masks / "ct" / "x.png", np.full((4, 4), 255, np.uint8))
    c = _write(masks / "y.png", np.full((4, 4), 255, np.uint8))
    png_as_jpg = masks / "z.jpg"  # PNG bytes under the image's .jpg name, as in ../shared
    png_as_jpg.write_bytes(cv2.imencode(".png", np.full((4, 4), 255, np.uint8))[1].tobytes())
    folder = MaskFolder(masks)
    assert folder.find(tmp_path / "data" / "cxr" / "x.png") == a  # the image's parent folder decides
    assert folder.find(tmp_path / "data" / "ct" / "x.png") == b
    assert folder.find(tmp_path / "data" / "y.jpg") == c  # by stem: predict names masks <stem>.png
    assert folder.find(tmp_path / "data" / "z.jpg") == png_as_jpg
    assert folder.find(tmp_path / "data" / "w.jpg") is None
    only_cxr = _write(masks / "cxr" / "v.png", np.full((4, 4), 255, np.uint8))
    folder = MaskFolder(masks)
    assert folder.find(tmp_path / "data" / "cxr" / "v.png") == only_cxr
    assert folder.find(tmp_path / "data" / "ct" / "v.png") is None  # masks mirror the folders: not cxr's mask
    assert folder.find(tmp_path / "data" / "y.jpg") == c
    with pytest.raises(Exception, match="several masks fit it equally"):
        folder.find(tmp_path / "elsewhere" / "x.png")


def test_a_not_annotated_mask_is_no_mask(tmp_path):
    _write(tmp_path / "masks" / "a.png", np.zeros((8, 8), np.uint8))
    roi = RoiSource(tmp_path / "masks")
    frame = Frame(np.ones((8, 8), np.uint8))
    with pytest.raises(NoMask, match="not annotated"):
        roi.apply(tmp_path / "a.png", frame)
    with pytest.raises(NoMask, match=r"b.jpg: no mask for this image in the mask folder .*masks \(looked for a file "
                                     r"named b.jpg or b.png.*Add its mask there"):
        roi.apply(tmp_path / "b.jpg", frame)
    assert str(pickle.loads(pickle.dumps(roi))) == str(roi)  # workers get it pickled; the key stays


def test_crop_and_mask_modes():
    pixels = np.arange(100, 200, dtype=np.uint16).reshape(10, 10)
    mask = np.zeros((10, 10), bool)
    mask[2:5, 3:8] = True
    mask[4, 3] = False
    assert bounding_box(mask) == (2, 5, 3, 8)
    crop = apply_roi(pixels, mask, "crop")
    np.testing.assert_array_equal(crop, pixels[2:5, 3:8])
    masked = apply_roi(pixels, mask, "mask")
    assert masked[2, 0] == pixels.min() and masked[0, 0] == pixels[2, 3]  # outside -> the frame's lowest
    rgb = np.dstack([pixels] * 3)
    assert apply_roi(rgb, mask, "mask").shape == (3, 5, 3)
    with pytest.raises(Exception, match="its image's size"):
        apply_roi(pixels[:5], mask)


def test_decode_items_keeps_only_the_region_before_resizing(tmp_path):
    """A bright square in a large dark frame: with --roi crop the 32 px input is the square alone; an image
    without a mask is left out with the reason."""
    img = np.full((200, 300), 20, np.uint8)
    img[50:90, 100:140] = 230
    mask = np.zeros_like(img)
    mask[50:90, 100:140] = 255
    a = _write(tmp_path / "data" / "a.png", img)
    b = _write(tmp_path / "data" / "b.png", img)
    _write(tmp_path / "masks" / "a.png", mask)
    items = [LabelledItem(a, "x", "p1"), LabelledItem(b, "x", "p2")]
    whole = decode_items(items, 32)
    assert whole.images[0].float().mean() < 60
    ds = decode_items(items, 32, roi=RoiSource(tmp_path / "masks").apply)
    assert len(ds.images) == 1 and ds.paths == [str(a)]
    assert (ds.images[0] == 230).all()
    assert ds.failures[0][0] == str(b) and "no mask for this image" in ds.failures[0][1]


def test_finetune_roi_options(tmp_path):
    from medgap.train.config import ConfigError, FinetuneConfig, upgrade_recorded
    from medgap.train.run import check_config

    with pytest.raises(ConfigError, match="--roi .*no such folder"):
        check_config(FinetuneConfig(data=tmp_path, out=tmp_path / "run", roi=tmp_path / "absent"))
    with pytest.raises(ConfigError, match="--roi-mode"):
        check_config(FinetuneConfig(data=tmp_path, out=tmp_path / "run", roi=tmp_path, roi_mode="box"))
    # a run recorded before --roi existed resumes as a run without it
    assert upgrade_recorded({"data": "x"})["roi"] is None
