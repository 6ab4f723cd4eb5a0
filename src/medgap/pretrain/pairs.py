"""USCL's positive pairs from one video, and batches whose negatives are other videos (optionally other patients).

One item per video and epoch: three distinct frames f1, f2, f3 are drawn from the video's cached frames, each
augmented once, and mixed with lambda ~ Beta(alpha, alpha)::

    view_i = lambda * f1 + (1 - lambda) * f2
    view_j = lambda * f3 + (1 - lambda) * f2

so the two views share the anchor frame f2 (the same augmented copy of it). Short videos as USCL's
``USDataset_video`` handles them: two frames give the two frames themselves as views (no mixing), one frame two
augmentations of it. The negatives of a pair are the other items of its batch: :class:`VideoBatchSampler` puts a
video in a batch once, and with ``separate_patients`` never two videos of one patient together.

References: Chen Y. et al., "USCL: Pretraining Deep Ultrasound Image Diagnosis Model through Video Contrastive
Representation Learning", MICCAI 2021 (arXiv:2011.13066); their ``data_aug/dataset_wrapper_Ultrasound_Video_Mixup.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from medgap.data.tensors import TrainAugmentation
from medgap.pretrain.videos import FrameCache


@dataclass(frozen=True)
class PairDraw:
    """What one item drew: the frame indices (f1, f2, f3) into the video's cached frames and lambda. Two-frame
    videos have f3 = f1 and one-frame videos f1 = f2 = f3; ``mixed`` says whether the views are mixtures."""

    frames: tuple[int, int, int]
    lam: float
    mixed: bool


def draw_pair(n_frames: int, rng: np.random.Generator, alpha: float = 0.5) -> PairDraw:
    """The frames and lambda of one pair from a video of ``n_frames`` cached frames (see the module doc)."""
    lam = float(rng.beta(alpha, alpha))
    if n_frames >= 3:
        a, b, c = (int(v) for v in rng.choice(n_frames, 3, replace=False))
        return PairDraw((a, b, c), lam, True)
    if n_frames == 2:
        a, b = (int(v) for v in rng.permutation(2))
        return PairDraw((a, b, a), lam, False)
    return PairDraw((0, 0, 0), lam, False)


def mix_views(f1: torch.Tensor, f2: torch.Tensor, f3: torch.Tensor, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lam f1 + (1 - lam) f2, lam f3 + (1 - lam) f2)``: two views sharing the anchor ``f2``."""
    return lam * f1 + (1 - lam) * f2, lam * f3 + (1 - lam) * f2


class VideoPairDataset(torch.utils.data.Dataset):
    """Item ``i`` (a video) -> ``(view_i, view_j, target, i)``: normalised float32 views (3, S, S), the video's
    class index (-1 unlabelled). Training draws fresh frames, lambda and augmentation from torch's generator
    (``seed_everything`` makes them reproducible); ``fixed_seed`` (validation) draws the same ones for an item
    every epoch, without augmentation, so the validation loss of two epochs compares like with like."""

    def __init__(self, frames: FrameCache, targets: Sequence[int], mean, std, *, augment: bool = True,
                 alpha: float = 0.5, fixed_seed: int | None = None):
        self.frames, self.targets = frames, torch.as_tensor(np.asarray(targets, dtype=np.int64))
        self.alpha, self.fixed_seed = float(alpha), fixed_seed
        self.augment = TrainAugmentation(frames.size) if augment and fixed_seed is None else None
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1) * 255
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1) * 255

    def __len__(self) -> int:
        return len(self.frames)

    def _rng(self, i: int) -> np.random.Generator:
        if self.fixed_seed is not None:
            return np.random.default_rng([self.fixed_seed, i])
        return np.random.default_rng(int(torch.randint(0, 2**62, (1,))))

    def draw(self, i: int) -> tuple[PairDraw, list[torch.Tensor]]:
        """The draw of item ``i`` and its three augmented frames (float32, 0..255, not normalised)."""
        video = self.frames[i]
        d = draw_pair(len(video), self._rng(i), self.alpha)
        # a frame used twice (the short-video cases) is augmented separately each time, as USCL does for one frame
        imgs = []
        for slot, j in enumerate(d.frames):
            if d.mixed or slot < 2:
                raw = torch.from_numpy(video[j])
                imgs.append(raw.float() if self.augment is None else self.augment(raw))
            else:
                imgs.append(imgs[0])
        return d, imgs

    def __getitem__(self, i: int):
        d, (f1, f2, f3) = self.draw(i)
        if d.mixed:
            vi, vj = mix_views(f1, f2, f3, d.lam)
        else:  # USCL: a two-frame video's frames, a one-frame video's two augmentations, unmixed
            vi, vj = f1, f2
        return (vi - self.mean) / self.std, (vj - self.mean) / self.std, self.targets[i], i


class VideoBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Batches of video indices, each video once per epoch (so a pair's negatives are never its own video).

    ``separate_patients``: no two videos of one patient share a batch (greedy: each video goes to the first open
    batch without its patient). Under DDP (``world_size`` > 1) each global batch of ``batch_size * world_size``
    videos is built with these rules and split into one part per process: the negatives that lightly's loss
    gathers across processes obey them too. ``drop_last`` drops batches smaller than ``batch_size`` (training:
    a batch of one has no negative and breaks BatchNorm). ``set_epoch`` (Lightning calls it) reshuffles."""

    def __init__(self, patients: Sequence[str], batch_size: int, *, seed: int = 0, separate_patients: bool = False,
                 drop_last: bool = True, shuffle: bool = True, world_size: int = 1, rank: int = 0):
        self.patients = np.asarray([str(p) for p in patients])
        self.batch_size, self.seed, self.separate = int(batch_size), int(seed), bool(separate_patients)
        self.drop_last, self.shuffle = drop_last, shuffle
        self.world_size, self.rank = int(world_size), int(rank)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def global_batches(self) -> list[list[int]]:
        n = len(self.patients)
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle else np.arange(n))
        size = self.batch_size * self.world_size
        if not self.separate:
            batches = [order[s:s + size].tolist() for s in range(0, n, size)]
        else:
            batches, members = [], []
            for i in order:
                p = self.patients[i]
                for b, m in zip(batches, members):
                    if len(b) < size and p not in m:
                        b.append(int(i))
                        m.add(p)
                        break
                else:
                    batches.append([int(i)])
                    members.append({p})
        if self.drop_last:
            batches = [b for b in batches if len(b) == size]
        else:
            batches = [b for b in batches if len(b) >= self.world_size]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        for b in self.global_batches():
            part = len(b) // self.world_size
            yield b[self.rank * part:(self.rank + 1) * part]

    def __len__(self) -> int:
        return len(self.global_batches())
