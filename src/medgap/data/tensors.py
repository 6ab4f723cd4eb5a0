"""Decode labelled items once into a compact uint8 tensor cache (frames of videos at a stride)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from medgap.data.items import LabelledItem
from medgap.io import ImageReadError, item_id, read_frames, to_rgb255


@dataclass
class DecodedSet:
    images: torch.Tensor  # (N, 3, S, S) uint8
    item_ids: list[str]
    paths: list[str]
    frames: list[int | None]
    labels: list[str]
    groups: list[str]
    failures: list[tuple[str, str]]


def to_square_uint8(frame, size: int) -> np.ndarray:
    """RGB 0-255 (gray replicated to 3 channels: ImageNet backbones expect three) resized to size x size."""
    rgb = to_rgb255(frame)
    rgb = cv2.resize(np.nan_to_num(rgb), (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def decode_items(items: Sequence[LabelledItem], size: int, video_stride: int = 10,
                 progress: Callable[[int, int], None] | None = None) -> DecodedSet:
    imgs, ids, paths, frames, labels, groups, failures = [], [], [], [], [], [], []
    for n, it in enumerate(items):
        try:
            for fr in read_frames(it.path, video_stride=video_stride):
                imgs.append(to_square_uint8(fr, size).transpose(2, 0, 1))
                ids.append(item_id(it.path, fr.frame))
                paths.append(str(it.path))
                frames.append(fr.frame)
                labels.append(it.label)
                groups.append(it.group_id)
        except ImageReadError as e:
            failures.append((str(it.path), e.reason))
        if progress:
            progress(n + 1, len(items))
    if not imgs:
        raise ValueError("no image could be decoded: " + "; ".join(f"{p}: {r}" for p, r in failures[:5]))
    return DecodedSet(torch.from_numpy(np.stack(imgs)), ids, paths, frames, labels, groups, failures)


class TensorDataset(torch.utils.data.Dataset):
    """Normalised float tensors from the uint8 cache; optional flips for training."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, mean, std, augment: bool = False):
        self.images, self.targets, self.augment = images, targets, augment
        self.mean = torch.tensor(mean).view(3, 1, 1) * 255
        self.std = torch.tensor(std).view(3, 1, 1) * 255

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i):
        x = (self.images[i].float() - self.mean) / self.std
        if self.augment and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return x, self.targets[i]
