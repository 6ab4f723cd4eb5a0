"""Small real training data built by the tests."""

from __future__ import annotations

import cv2
import numpy as np
import pytest


@pytest.fixture()
def tiny_tree(tmp_path):
    """3 classes x 8 images: a class is a dominant colour, so a scratch model can learn something in 2 epochs."""
    rng = np.random.default_rng(0)
    for c, colour in enumerate([(200, 40, 40), (40, 200, 40), (40, 40, 200)]):
        d = tmp_path / "data" / f"class{c}"
        d.mkdir(parents=True)
        for i in range(8):
            img = np.clip(rng.normal(colour, 30, (40, 40, 3)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(d / f"{i}.png"), img[..., ::-1])
    return tmp_path / "data"
