"""PIQE: Perception-based Image Quality Evaluator (Venkatanath et al., NCC 2015), as MATLAB's ``piqe()``.

Training-free, 0 (best) to 100 (worst). MATLAB's ``piqe.m`` (Image Processing Toolbox, 2018), step by step:

1. Pad the image at the bottom and right to a multiple of 16 by replicating the last row and column
   (``padarray(I, pad, 'replicate', 'post')``), then ``round(255 * im2double(I))``: for the 0-255 gray image
   medgap scores, its grey levels rounded (halves away from zero). No rescaling to the image's maximum.
2. ``mu = imgaussfilt(I, 7/6, 'FilterSize', 7, 'Padding', 'replicate')``, ``sigma = sqrt(|gauss(I.^2) -
   mu.^2|)``, ``MSCN = (I - mu) ./ (sigma + 1)``; 16x16 blocks.
3. A block is spatially active when its MSCN variance (n - 1) exceeds 0.1. An active block has noticeable
   artifacts when one of the 11 six-pixel segments of any of its four edges has a standard deviation below
   0.1; it is noisy when its SD exceeds ``2 beta``, ``beta = |SD - r| / max(SD, r)`` with ``r`` the ratio of
   the SDs of the centre (columns 8 and 9) and the surround (a NaN ratio counts as 0). MATLAB quirk kept:
   the surround drops columns 8 and 10 (1-based), because MATLAB deletes column 8 and then column 9 of what
   remains.
4. ``score = 100 (1 + sum over active blocks of [artifact] (1 - var) + [noise] var) / (1 + active blocks)``;
   a uniform image has no active block and scores 100.

The PyPI port ``pypiqe`` differs in step 1 (symmetric padding, and ``round(255 I / max I)``), so it agrees with
MATLAB on images whose maximum is 255 and whose size needs at most one padded row and column.
medgap is vectorised over blocks (MATLAB and ``pypiqe`` loop block by block).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from medgap.quality._matlab import imgaussfilt, matlab_round
from medgap.quality.registry import register_metric

__all__ = ["piqe"]

BLOCK = 16
ACTIVITY_THRESHOLD = 0.1
IMPAIRED_THRESHOLD = 0.1
SEGMENT = 6
_CENTRE = (7, 8)  # 0-based columns 8 and 9 (MATLAB: center1 = (15 + 1) / 2, center2 = center1 + 1)
_SURROUND = np.delete(np.arange(BLOCK), [7, 9])  # MATLAB deletes column 8, then column 9 of the remainder


def piqe(gray: np.ndarray) -> tuple[float, float, float, float]:
    """(score, fraction of blocks that are active, fraction of active blocks with noticeable artifacts,
    fraction of active blocks with noise) of a gray 0-255 image. Raises ValueError for NaN/Inf or non-2-D input.
    """
    img = np.asarray(gray, dtype=np.float64)
    if img.ndim != 2 or img.size == 0:
        raise ValueError(f"expected a non-empty 2-D gray image, got shape {img.shape}")
    if not np.isfinite(img).all():
        raise ValueError("image contains NaN or Inf values; PIQE is undefined")
    h, w = img.shape
    img = matlab_round(np.pad(img, ((0, -h % BLOCK), (0, -w % BLOCK)), mode="edge"))
    mu = imgaussfilt(img)
    sigma = np.sqrt(np.abs(imgaussfilt(img * img) - mu * mu))
    norm = (img - mu) / (sigma + 1.0)
    hb, wb = norm.shape[0] // BLOCK, norm.shape[1] // BLOCK
    blocks = norm.reshape(hb, BLOCK, wb, BLOCK).transpose(0, 2, 1, 3).reshape(-1, BLOCK, BLOCK)
    var = blocks.reshape(len(blocks), -1).var(axis=1, ddof=1)
    active = var > ACTIVITY_THRESHOLD
    b, v = blocks[active], var[active]
    n_active = len(b)
    if n_active == 0:
        return 100.0, 0.0, 0.0, 0.0
    edges = np.stack([b[:, 0, :], b[:, :, BLOCK - 1], b[:, BLOCK - 1, :], b[:, :, 0]], axis=1)  # top right down left
    seg_sd = sliding_window_view(edges, SEGMENT, axis=2).std(axis=3, ddof=1)
    artifact = (seg_sd < IMPAIRED_THRESHOLD).any(axis=(1, 2))
    centre = b[:, :, _CENTRE].transpose(0, 2, 1).reshape(n_active, -1)
    surround = b[:, :, _SURROUND].reshape(n_active, -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = centre.std(axis=1, ddof=1) / surround.std(axis=1, ddof=1)
        ratio = np.where(np.isnan(ratio), 0.0, ratio)
        block_sd = np.sqrt(v)
        beta = np.abs(block_sd - ratio) / np.maximum(block_sd, ratio)
    noise = block_sd > 2 * beta
    dist = (artifact * (1 - v) + noise * v).sum()
    score = (dist + 1.0) / (1.0 + n_active) * 100.0
    return float(score), n_active / len(blocks), float(artifact.mean()), float(noise.mean())


def _score(gray: np.ndarray) -> dict[str, float]:
    s, act, art, noi = piqe(gray)
    return {"piqe": s, "piqe_active_fraction": act, "piqe_artifact_fraction": art, "piqe_noise_fraction": noi}


@register_metric(
    "piqe",
    version="2",
    columns=("piqe", "piqe_active_fraction", "piqe_artifact_fraction", "piqe_noise_fraction"),
    lower_is_better=True,
    range=(0.0, 100.0),
    description="PIQE (training-free; block-wise artifact and noise criteria), as MATLAB piqe()",
    reference="Venkatanath N. et al., NCC 2015; MATLAB Image Processing Toolbox piqe",
)
def _make_piqe():
    return _score
