"""The brisque-foreground variant (issue 10, item 3): with an all-True mask it is the release exactly; with the
surround of a framed image left out, its score barely moves when the frame is added, while the release's does."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

import medgap
from medgap.quality.brisque import brisque, brisque_features
from medgap.quality.brisque.foreground import brisque_foreground_features


@pytest.fixture(scope="module")
def photo():
    return skimage.data.camera().astype(np.float64)


def test_an_all_true_mask_is_the_release(photo):
    feats, _ = brisque_features(photo)
    masked, fraction = brisque_foreground_features(photo, np.ones(photo.shape, bool))
    np.testing.assert_allclose(masked, feats, rtol=1e-12, atol=1e-12)
    assert fraction == 1.0


def test_a_black_frame_moves_the_release_not_the_variant(photo):
    framed = np.zeros((photo.shape[0] + 200, photo.shape[1] + 200))
    framed[100:-100, 100:-100] = photo
    metric = medgap.create_metric("brisque-foreground")
    plain, on_frame = brisque(photo).score, brisque(framed).score
    variant = metric(framed)
    assert abs(on_frame - plain) > 5  # the surround drives the release's score
    assert abs(variant["brisque_foreground"] - plain) < 0.25 * abs(on_frame - plain)
    assert variant["brisque_foreground_fraction"] == pytest.approx(photo.size / framed.size, abs=0.02)


def test_the_variant_is_named_as_one():
    info = medgap.quality.get_metric_info("brisque-foreground")
    assert "not the release" in info.description and info.lower_is_better
