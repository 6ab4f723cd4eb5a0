"""What a metric accepts from a user (medgap.quality.inputs): paths, Frames, arrays and tensors, checked so
that a float image in [0, 1], a raw 16-bit image or the wrong channels raise with the fix instead of a
silently wrong score, and batches give one result per image. Real images: scikit-image's camera and
astronaut photographs."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from PIL import Image

from medgap.io import Frame, read_frames, to_gray255, to_rgb255
from _metrics import make_metric

from medgap.quality import create_metric, get_metric_info, list_metrics
from medgap.quality.inputs import MetricInputError

try:  # tests/_network_metric.py's real torch net: the input checks hold for network metrics too
    import _network_metric  # noqa: F401
except ImportError:  # no torch
    pass

CAMERA = skimage.data.camera()  # 512x512 uint8 gray
ASTRONAUT = skimage.data.astronaut()  # 512x512x3 uint8


def _image(name: str) -> np.ndarray:
    """A 200x200 uint8 crop the metric can score: colour for colour metrics, gray otherwise."""
    return ASTRONAUT[100:300, 150:350] if get_metric_info(name).input == "rgb" else CAMERA[150:350, 150:350]


def test_float_image_in_0_1_is_refused_instead_of_scored_as_almost_black():
    """Before: BRISQUE scored camera/255 as a 0-255 image (111.6) while camera as uint8 scores -7.3."""
    brisque = create_metric("brisque")
    expected = brisque(CAMERA)["brisque"]
    assert expected == pytest.approx(-7.308870984669738, abs=1e-9)
    assert brisque.compute(CAMERA / 255.0)["brisque"] > 100  # what the silent path gave
    with pytest.raises(MetricInputError, match=r"\[0, 1\].*multiply by 255 or pass data_range=1"):
        brisque(CAMERA / 255.0)
    assert brisque(CAMERA / 255.0, data_range=1)["brisque"] == pytest.approx(expected, abs=1e-6)
    assert brisque(CAMERA.astype(np.float32))["brisque"] == pytest.approx(expected, abs=1e-9)
    assert brisque(CAMERA.astype(np.int64))["brisque"] == expected


@pytest.mark.parametrize("name", list_metrics())
def test_every_metric_checks_its_input(name, tmp_path):
    metric = make_metric(name, tmp_path)
    img = _image(name)
    one = metric(img)
    assert set(one) == set(metric.info.columns)
    with pytest.raises(MetricInputError, match="data_range=1"):
        metric(img / 255.0)
    with pytest.raises(MetricInputError, match=r"raw 16-bit.*to_gray255\(x, window="):
        metric(img.astype(np.uint16) * 256)
    with pytest.raises(MetricInputError, match="not 0-255"):
        metric(img.astype(np.int16) - 1024)  # CT numbers
    with pytest.raises(MetricInputError, match="2 channels"):
        metric(np.stack([CAMERA[:200, :200]] * 2, axis=-1))
    with pytest.raises(MetricInputError, match="5 channels"):
        metric(np.stack([CAMERA[:200, :200]] * 5, axis=-1))
    with pytest.raises(MetricInputError, match="channel-first"):
        metric(np.moveaxis(ASTRONAUT[:200, :200], -1, 0))
    with pytest.raises(MetricInputError, match="mask"):
        metric(img > 128)
    # a batch: one result per image, the same as one by one
    pair = np.stack([img, img[::-1]])
    expected = [one, metric(img[::-1])]
    # a network computes a batch in one forward pass: equal to float32 rounding, not bit for bit
    same = (lambda got: got == expected) if not metric.network else (
        lambda got: all(g == pytest.approx(e, rel=1e-5, abs=1e-6) for g, e in zip(got, expected, strict=True)))
    assert same(metric.batch(pair))
    if pair.ndim == 4:
        assert same(metric(pair))  # an unambiguous 4-D array is a batch
    else:
        assert same(metric(pair[..., None]))  # NxHxWx1
        with pytest.raises(MetricInputError, match="metric.batch"):
            metric(np.stack([img] * 5))  # NxHxW is not one image


@pytest.mark.parametrize("name", list_metrics())
def test_every_metric_takes_torch_tensors(name, tmp_path):
    torch = pytest.importorskip("torch")
    metric = make_metric(name, tmp_path)
    img = _image(name)
    chw = torch.from_numpy(np.ascontiguousarray(img if img.ndim == 3 else img[..., None])).permute(2, 0, 1)
    assert metric(chw) == metric(img)  # uint8 CxHxW
    batch = torch.stack([chw, chw.flip(1)]).float() / 255  # NxCxHxW in [0, 1], as pyiqa users have them
    with pytest.raises(MetricInputError, match="data_range=1"):
        metric(batch)
    scores = metric(batch, data_range=1)
    assert isinstance(scores, list) and len(scores) == 2
    first = metric.info.columns[0]
    assert scores[0][first] == pytest.approx(metric(img)[first], rel=1e-6, abs=1e-6)
    with pytest.raises(MetricInputError, match="2 channels"):
        metric(torch.zeros(2, 64, 64))


def test_path_and_frame_give_what_scoring_a_collection_gives(tmp_path):
    brisque = create_metric("brisque")
    colour = create_metric("colourfulness")
    Image.fromarray(ASTRONAUT).save(tmp_path / "a.png")
    frame = next(read_frames(tmp_path / "a.png"))
    assert brisque(tmp_path / "a.png") == brisque(frame) == brisque.compute(to_gray255(frame))
    assert brisque(ASTRONAUT) == brisque(frame)  # uint8 colour: MATLAB's rounded luma, as from the file
    assert colour(str(tmp_path / "a.png")) == colour.compute(to_rgb255(frame))
    with pytest.raises(MetricInputError, match="HxWx3"):
        colour(CAMERA)  # a colour metric is not given gray data as colour silently
    frames = [Frame(np.ascontiguousarray(CAMERA[i * 100:(i + 1) * 100 + 100])) for i in range(3)]
    assert brisque.batch(frames) == [brisque(f.pixels) for f in frames]


def test_multi_frame_file_needs_batch(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    path = get_testdata_file("emri_small.dcm")  # 10 frames, 64x64, 16-bit
    imagestats = create_metric("imagestats")
    with pytest.raises(MetricInputError, match="several frames.*metric.batch"):
        imagestats(path)
    rows = imagestats.batch(path)
    assert len(rows) == int(pydicom.dcmread(path).NumberOfFrames)
    assert rows[0] == imagestats.compute(to_gray255(next(read_frames(path))))


def test_engine_inputs_are_never_refused():
    """The scoring engine passes converted float64 0-255 images: dark ones and constant ones included."""
    stats = create_metric("imagestats")
    dark = np.zeros((64, 64))
    dark[20:40, 20:40] = 1.0  # a 0-255 image with values 0 and 1: refused when a user passes it, not here
    assert stats.compute(dark)["entropy"] > 0
    with pytest.raises(MetricInputError):
        stats(dark)
    assert stats(dark, data_range=255)["entropy"] == stats.compute(dark)["entropy"]
    assert stats(np.zeros((64, 64)))["entropy"] == 0.0  # all zero reads the same on either scale
    hair_above = to_gray255(CAMERA.astype(np.float64) * 3.7 + 11)  # min-max: can end at 255.00000000000003
    assert stats(hair_above) == stats.compute(hair_above)


def test_to_gray255_takes_plain_arrays():
    ct = CAMERA.astype(np.int16) * 8 - 1024  # 16-bit values, as CT numbers
    assert np.array_equal(to_gray255(CAMERA), CAMERA.astype(np.float64))
    assert np.array_equal(to_gray255(ct), to_gray255(Frame(ct)))  # min-max, as a 16-bit file
    windowed = to_gray255(ct, window=(40, 400))
    assert np.array_equal(windowed, to_gray255(Frame(ct, meta={"window": (40.0, 400.0)})))
    assert np.allclose(to_gray255(CAMERA / 255.0, data_range=1), CAMERA, atol=1e-9)
    assert np.array_equal(to_gray255(ASTRONAUT), to_gray255(Frame(ASTRONAUT)))
    assert np.array_equal(to_rgb255(ASTRONAUT), ASTRONAUT.astype(np.float64))
    with pytest.raises(ValueError, match="channel-first"):
        to_gray255(np.moveaxis(ASTRONAUT, -1, 0))
    with pytest.raises(ValueError, match="data_range"):
        to_gray255(CAMERA / 255.0, data_range=(1, 0))
