"""Decode labelled items once into a compact uint8 tensor cache (frames of videos at a stride)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from medgap.data.items import LabelledItem
from medgap.io import CollectionError, Frame, ImageReadError, item_id, read_frames, to_rgb255


@dataclass
class DecodedSet:
    images: torch.Tensor  # (N, 3, S, S) uint8
    item_ids: list[str]
    paths: list[str]
    frames: list[int | None]
    labels: list[str]
    groups: list[str]
    failures: list[tuple[str, str]]
    values: list[tuple[str, ...]] | None = None
    """Each frame's item's ``values`` (several label columns of a multi-label manifest), else None."""
    roi_masks: list[dict] | None = None
    """With ``decode_items(roi=)``: one record per mask used (image, frame, the mask file or the segmentation
    model that predicted it; :attr:`medgap.segment.roi.RoiSource.records`), else None."""


def to_square_uint8(frame, size: int) -> np.ndarray:
    """RGB 0-255 (gray replicated to 3 channels: ImageNet backbones expect three) resized to size x size."""
    rgb = to_rgb255(frame)
    rgb = cv2.resize(np.nan_to_num(rgb), (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def decoder_failure(e: BaseException) -> str:
    """The reason recorded for a file whose decoder raised something other than ImageReadError."""
    text = str(e).strip().splitlines()
    detail = f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__
    return f"the decoder failed on this file, which is probably damaged ({detail})"


class _RoiFailed(Exception):
    """The region of interest of a frame could not be had (no mask, an empty one): the file is left out."""


def decode_items(items: Sequence[LabelledItem], size: int, video_stride: int = 10,
                 progress: Callable[[int, int], None] | None = None,
                 roi: Callable[[Path, Frame], Frame] | None = None) -> DecodedSet:
    """Every frame of every item as a ``size`` x ``size`` RGB uint8 image. A file that cannot be decoded,
    whatever its decoder raises (KeyboardInterrupt and SystemExit aside), is left out whole and listed in
    ``failures`` with its reason; only when no file decodes is a CollectionError raised. ``roi(path, frame)``:
    keeps the region of interest of each frame before resizing (a :class:`medgap.segment.roi.RoiSource`);
    a ValueError from it (no mask for the image) leaves the file out with that reason; its ``records`` (which
    mask each frame got) come back in ``roi_masks``."""
    imgs, ids, paths, frames, labels, groups, failures, values = [], [], [], [], [], [], [], []

    def kept(path: Path, fr: Frame) -> Frame:
        if roi is None:
            return fr
        try:
            return roi(path, fr)
        except ValueError as e:
            raise _RoiFailed(str(e)) from None

    for n, it in enumerate(items):
        try:
            decoded = [(to_square_uint8(kept(it.path, fr), size).transpose(2, 0, 1), fr.frame)
                       for fr in read_frames(it.path, video_stride=video_stride)]
        except ImageReadError as e:
            failures.append((str(it.path), e.reason))
            decoded = []
        except _RoiFailed as e:
            failures.append((str(it.path), f"no region of interest: {e}"))
            decoded = []
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # noqa: BLE001  a decoder's panic (pyo3 PanicException is a BaseException)
            failures.append((str(it.path), decoder_failure(e)))
            decoded = []
        for img, frame in decoded:  # all of a file's frames or none: a file failing half-way adds nothing
            imgs.append(img)
            ids.append(item_id(it.path, frame))
            paths.append(str(it.path))
            frames.append(frame)
            labels.append(it.label)
            groups.append(it.group_id)
            values.append(it.values)
        if progress:
            progress(n + 1, len(items))
    if not imgs:
        raise CollectionError("no image could be decoded: " + "; ".join(f"{p}: {r}" for p, r in failures[:5]))
    records = getattr(roi, "records", None)
    return DecodedSet(torch.from_numpy(np.stack(imgs)), ids, paths, frames, labels, groups, failures,
                      values if any(values) else None, None if records is None else list(records))


class TrainAugmentation:
    """Mild changes that keep a medical image's meaning: a crop of 70-100% of the area (aspect 0.85-1.15)
    resized back, +-10 degrees, horizontal flip, +-20% brightness and contrast; no colour changes (most medical
    images are gray). Geometry is one ``cv2.warpAffine`` per image: torchvision.transforms.v2's chain of the
    same four steps costs about 7 ms per 128 px image on a 2-core CPU, a third of a training step; this about 1 ms.
    Random numbers come from torch's generator, so ``seed_everything`` makes them reproducible."""

    def __init__(self, size: int, scale=(0.7, 1.0), ratio=(0.85, 1.15), degrees: float = 10.0,
                 brightness: float = 0.2, contrast: float = 0.2):
        self.size, self.scale, self.ratio, self.degrees = size, scale, ratio, degrees
        self.brightness, self.contrast = brightness, contrast

    def matrix(self, u: torch.Tensor) -> np.ndarray:
        """The 2x3 affine (output <- input) for six uniform(0, 1) numbers."""
        u = u.double().numpy()
        s = self.size
        area = self.scale[0] + (self.scale[1] - self.scale[0]) * u[0]
        aspect = np.exp(np.log(self.ratio[0]) + (np.log(self.ratio[1]) - np.log(self.ratio[0])) * u[1])
        w, h = min(s, s * np.sqrt(area * aspect)), min(s, s * np.sqrt(area / aspect))
        cx, cy = w / 2 + (s - w) * u[2], h / 2 + (s - h) * u[3]
        theta = np.deg2rad((2 * u[4] - 1) * self.degrees)
        flip = -1.0 if u[5] < 0.5 else 1.0
        c, si = np.cos(theta), np.sin(theta)
        lin = np.array([[c, -si], [si, c]]) @ np.diag([flip * s / w, s / h])
        offset = np.array([(s - 1) / 2, (s - 1) / 2]) - lin @ np.array([cx - 0.5, cy - 0.5])
        return np.hstack([lin, offset[:, None]])

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        """uint8 (3, S, S) -> float32 (3, S, S) in 0..255."""
        return self.pair(img)[0]

    def pair(self, img: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The image (uint8 (3, S, S) -> float32 0..255) and its mask (uint8 (S, S) or None) moved by one draw:
        the same affine for both (the mask with nearest-neighbour, so its labels stay labels), the intensity
        change on the image only. Without a mask, the same random numbers as :meth:`__call__`."""
        u = torch.rand(8)
        matrix = self.matrix(u[:6])
        hwc = np.ascontiguousarray(img.numpy().transpose(1, 2, 0))
        out = cv2.warpAffine(hwc, matrix, (self.size, self.size), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT_101)
        moved = None
        if mask is not None:
            moved = torch.from_numpy(cv2.warpAffine(np.ascontiguousarray(mask.numpy()), matrix, (self.size, self.size),
                                                    flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101))
        # intensity in numpy: small torch ops pay thread-pool overhead larger than the work at this size
        x = out.astype(np.float32)
        mean = float(x.mean())
        contrast = 1 + self.contrast * (2 * float(u[6]) - 1)
        brightness = 1 + self.brightness * (2 * float(u[7]) - 1)
        x = np.clip((x - mean) * contrast + mean, 0, 255) * brightness
        return torch.from_numpy(np.ascontiguousarray(np.clip(x, 0, 255, out=x).transpose(2, 0, 1))), moved


class TensorDataset(torch.utils.data.Dataset):
    """Normalised float tensors from the uint8 cache, with each item's weight (see medgap.data.balance):
    ``(image, target, weight)``. ``augment`` applies :class:`TrainAugmentation` (training only)."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, mean, std, augment: bool = False,
                 weights: torch.Tensor | None = None):
        self.images, self.targets = images, targets
        self.weights = torch.ones(len(targets)) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        self.augment = TrainAugmentation(images.shape[-1]) if augment else None
        self.mean = torch.tensor(mean).view(3, 1, 1) * 255
        self.std = torch.tensor(std).view(3, 1, 1) * 255

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i):
        img = self.images[i].float() if self.augment is None else self.augment(self.images[i])
        return (img - self.mean) / self.std, self.targets[i], self.weights[i]


def make_loader(images: torch.Tensor, targets: np.ndarray, groups: np.ndarray, mean, std, *, batch_size: int,
                training: bool = False, augment: bool = True, balance: str = "class",
                seed: int = 0, labels: np.ndarray | None = None) -> torch.utils.data.DataLoader:
    """The DataLoader of a training, validation or test part. Every item carries its balance weight (see
    medgap.data.balance); for training, a seeded weighted sampler draws as many items per epoch as the part
    holds, so patients (and classes) are equally likely, and :class:`TrainAugmentation` applies. ``labels``: the
    classes that ``balance="class"`` equalises (default ``targets``; a regression's targets are not classes)."""
    from medgap.data.balance import balance_weights

    weights = balance_weights(targets if labels is None else labels, groups, balance)
    data = TensorDataset(images, torch.as_tensor(targets), mean, std, training and augment,
                         torch.from_numpy(weights))
    sampler = None
    if training and balance != "none":
        sampler = torch.utils.data.WeightedRandomSampler(weights, num_samples=len(targets), replacement=True,
                                                         generator=torch.Generator().manual_seed(seed))
    # training batches drop the last partial batch: a batch of one breaks BatchNorm on 1x1 feature maps
    return torch.utils.data.DataLoader(data, batch_size=batch_size, sampler=sampler,
                                       shuffle=training and sampler is None,
                                       drop_last=bool(training and len(targets) > batch_size), num_workers=0)
