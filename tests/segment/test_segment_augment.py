"""Image and mask move together under the training augmentation (one draw, nearest-neighbour for the mask)."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from medgap.data.tensors import TrainAugmentation


def _planted(size: int = 64):
    """An L-shaped object (no symmetry: a flip or rotation left out of the mask would show) in image and mask."""
    mask = np.zeros((size, size), np.uint8)
    mask[10:40, 12:20] = 1
    mask[32:40, 12:44] = 1
    img = np.where(mask[None].astype(bool), 200, 40).astype(np.uint8).repeat(3, axis=0)
    return torch.from_numpy(img), torch.from_numpy(mask)


def test_a_planted_shape_moves_identically_in_image_and_mask():
    img, mask = _planted()
    aug = TrainAugmentation(64)
    moved_any = False
    for seed in range(20):
        torch.manual_seed(seed)
        x, m = aug.pair(img, mask)
        m = m.numpy()
        assert set(np.unique(m)) <= {0, 1}  # labels stay labels (nearest-neighbour)
        x = x.numpy()[0]
        bright = x > (x.min() + x.max()) / 2  # the object in the image, whatever the brightness/contrast draw
        disagree = bright != m.astype(bool)
        # only along the object's border, where the image's linear interpolation and the mask's nearest neighbour
        # round differently: a few pixels, never the object's inside
        border = m.astype(bool) ^ ndimage.binary_erosion(m.astype(bool))
        edge = ndimage.binary_dilation(border)
        assert not (disagree & ~edge).any(), f"seed {seed}: image and mask moved apart"
        assert disagree.sum() <= 0.1 * m.sum()
        moved_any |= not np.array_equal(m, mask.numpy())
    assert moved_any


def test_without_a_mask_the_image_is_augmented_as_before():
    img, mask = _planted()
    aug = TrainAugmentation(64)
    torch.manual_seed(3)
    alone = aug(img)
    torch.manual_seed(3)
    paired, _ = aug.pair(img, mask)
    assert torch.equal(alone, paired)
