"""A blind quality network: a timm backbone's feature map, weighted spatial pooling, five opinion bins.

The head of Su and Korhonen: a 1x1 convolution + BatchNorm + ReLU turns the feature map ``x`` (N, C, H, W)
into a non-negative weight map ``w`` (N, 1, H, W); each channel is pooled as ``sum(x w) / (sum(w) + 1e-4)``
over the positions; a linear layer maps the pooled vector to five bins, their softmax ``p`` is the predicted
distribution of opinions and the score is its expectation ``sum(i p_i)``, i = 1..5 (so scores lie in 1..5).
``pooling="avg"`` replaces the weighted pooling by global average pooling (the paper's ablation).

References: S. Su and J. Korhonen, "Blind natural image quality prediction using convolutional neural networks
and weighted spatial pooling", ICIP 2020, doi:10.1109/ICIP40778.2020.9190789.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

N_BINS = 5
"""Opinion bins 1..5 (bad, poor, fair, good, excellent)."""
POOLINGS = ("wsp", "avg")
WSP_EPS = 1e-4
"""The paper's constant in sum(x w) / (sum(w) + eps): a map of zeros pools to zeros instead of NaN."""


def weighted_spatial_pool(x: torch.Tensor, w: torch.Tensor, eps: float = WSP_EPS) -> torch.Tensor:
    """(N, C, H, W) features and (N, 1, H, W) non-negative weights -> (N, C): ``sum(x w) / (sum(w) + eps)``
    over the positions, per channel."""
    return (x * w).sum(dim=(2, 3)) / (w.sum(dim=(2, 3)) + eps)


class WeightedSpatialPooling(nn.Module):
    """The learned weight map (1x1 conv -> BatchNorm -> ReLU) and the weighted average of each channel."""

    def __init__(self, channels: int, eps: float = WSP_EPS):
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, kernel_size=1)
        self.bn = nn.BatchNorm2d(1)
        self.eps = eps

    def weight_map(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> the (N, 1, H, W) pooling weights (>= 0)."""
        return F.relu(self.bn(self.conv(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return weighted_spatial_pool(x, self.weight_map(x), self.eps)


class AveragePooling(nn.Module):
    """Global average pooling: the ablation of :class:`WeightedSpatialPooling`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def expected_score(logits: torch.Tensor) -> torch.Tensor:
    """(N, 5) bin logits -> (N,) scores ``sum(i p_i)`` with ``p = softmax(logits)``, i = 1..5."""
    bins = torch.arange(1, logits.shape[1] + 1, dtype=logits.dtype, device=logits.device)
    return torch.softmax(logits, dim=1) @ bins


class QualityNet(nn.Module):
    """``backbone`` (a timm model; its ``forward_features`` gives the feature map), a pooling head (``wsp`` or
    ``avg``) and a linear layer to :data:`N_BINS` logits. ``forward`` returns the logits; :meth:`score` the
    expected score (1..5); :meth:`weight_map` the pooling weights at the feature map's resolution."""

    def __init__(self, backbone: nn.Module, pooling: str = "wsp"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling {pooling!r}: use one of {', '.join(POOLINGS)} (wsp: the learned weight "
                             "map; avg: global average pooling, the ablation)")
        self.backbone = backbone
        self.pooling_name = pooling
        channels = int(backbone.num_features)
        self.pool = WeightedSpatialPooling(channels) if pooling == "wsp" else AveragePooling()
        self.fc = nn.Linear(channels, N_BINS)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)))

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return expected_score(self(x))

    def weight_map(self, x: torch.Tensor) -> torch.Tensor:
        """The (N, 1, h, w) pooling weights of the images ``x``; ``avg`` pooling weighs every position alike."""
        return self.logits_and_weights(x)[1]

    def logits_and_weights(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass: the (N, 5) bin logits and the (N, 1, h, w) pooling weights they were pooled with (ones for
        ``avg`` pooling)."""
        f = self.features(x)
        if isinstance(self.pool, WeightedSpatialPooling):
            w = self.pool.weight_map(f)
            return self.fc(weighted_spatial_pool(f, w, self.pool.eps)), w
        return self.fc(self.pool(f)), torch.ones_like(f[:, :1])


def relative_weight_map(w: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, 1, h, w) pooling weights -> (N, H, W) at the image size ``size`` = (H, W): upsampled bilinearly
    (``align_corners=False``: each weight covers its cell of the image, as the network resized the image to its
    input) and divided by the map's mean over the image, so 1 is the weight every position gets under average
    pooling, 2 twice that, 0 none; each map's mean is 1 (its sum H x W), and a map of zeros stays zero. A
    pixel's share of the pooled features is its value / (H x W) (the pooling's 1e-4 aside)."""
    up = F.interpolate(w.float(), size=tuple(int(v) for v in size), mode="bilinear", align_corners=False)[:, 0]
    mean = up.mean(dim=(1, 2), keepdim=True)
    return torch.where(mean > 0, up / mean.clamp_min(torch.finfo(up.dtype).tiny), torch.zeros_like(up))


def create_quality_net(backbone: str = "efficientnet_lite0", init: str | Path = "imagenet",
                       pooling: str = "wsp") -> QualityNet:
    """A :class:`QualityNet` on the timm ``backbone`` initialised by ``init`` (see
    :func:`medgap.models.create_model`: ``imagenet`` is offline for efficientnet_lite0/1/2)."""
    from medgap.models.backbones import create_model

    return QualityNet(create_model(backbone, init, num_classes=0), pooling)


def freeze_stages(net: QualityNet, trainable_stages: int | None) -> None:
    """Freeze the backbone except its last ``trainable_stages`` stages (and the layers after them); ``None``
    trains everything. Frozen BatchNorm layers keep their running statistics (see :func:`train_mode`)."""
    if trainable_stages is None:
        for p in net.parameters():
            p.requires_grad = True
        return
    from medgap.models.strategies import apply_strategy

    apply_strategy(net.backbone, "partial", trainable_stages)  # the backbone's head is Identity here


def train_mode(net: QualityNet) -> None:
    """``net.train()``, with BatchNorm layers whose parameters are frozen kept in eval mode."""
    from medgap.models.strategies import frozen_modules_in_eval

    net.train()
    frozen_modules_in_eval(net)


def resize255(images: Sequence[np.ndarray], size: int | None, device: torch.device | str = "cpu") -> torch.Tensor:
    """Frames (HxWx3 or HxW, 0-255; one shape when ``size`` is None) -> a float32 N x 3 x size x size tensor,
    still 0-255: resized (bilinear, antialiased) unless ``size`` is None (full resolution); gray repeated."""
    out = []
    for x in images:
        a = np.asarray(x, dtype=np.float32)
        if a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        t = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].to(device)
        if size is not None and tuple(t.shape[-2:]) != (size, size):
            t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out.append(t)
    return torch.cat(out)


def normalise(t: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """A 0-255 NCHW tensor -> (t / 255 - mean) / std, per channel (the backbone's preprocessing)."""
    m = torch.tensor(mean, dtype=t.dtype, device=t.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=t.dtype, device=t.device).view(1, -1, 1, 1)
    return (t / 255.0 - m) / s


def to_input(images: Sequence[np.ndarray], size: int | None, mean: Sequence[float], std: Sequence[float],
             device: torch.device | str = "cpu") -> torch.Tensor:
    """:func:`resize255` then :func:`normalise`: the one preprocessing of training and of the ``cnn-wsp``
    metric."""
    return normalise(resize255(images, size, device), mean, std)


def save_quality_model(net: QualityNet, path: str | Path, *, backbone: str, image_size: int,
                       mean: Sequence[float], std: Sequence[float], mos_min: float = 0.0,
                       mos_max: float = 100.0) -> Path:
    """Write what the ``cnn-wsp`` metric loads (:func:`medgap.quality.cnn_wsp.load_quality_model`): the weights
    and, in ``meta``, the backbone, pooling, input size (0: full resolution), normalisation and MOS scale; only
    tensors and plain values, so it loads with ``weights_only=True``."""
    meta = {"backbone": backbone, "pooling": net.pooling_name, "image_size": int(image_size),
            "mean": [float(v) for v in mean], "std": [float(v) for v in std], "mos_min": float(mos_min),
            "mos_max": float(mos_max)}
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "meta": meta}, path)
    return Path(path)
