"""PIQE: Perception-based Image Quality Evaluator (Venkatanath et al., NCC 2015), as MATLAB's ``piqe()``.

Training-free, 0 (best) to 100 (worst). The image is padded symmetrically to a multiple of 16, rescaled as
``round(255 * I / max(I))``, MSCN-normalised with a 7x7 Gaussian (sigma 7/6, replicated border), and cut into
16x16 blocks. Blocks whose MSCN variance exceeds 0.1 are spatially active. An active block is distorted by
noticeable artifacts when any 6-pixel segment of its four edges has a standard deviation below 0.1, and by
noise when its standard deviation exceeds twice the relative difference between it and the centre/surround
deviation ratio. Score = 100 (1 + sum over active blocks of [artifact](1 - var) + [noise] var) / (1 + active).

Vectorised over blocks (MATLAB and ``pypiqe`` loop block by block). MATLAB quirk kept: the "surround" of a
block drops columns 8 and 10 (1-based), because MATLAB deletes column 8 and then column 9 of what remains.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from medgap.quality.registry import register_metric

BLOCK = 16
ACTIVITY_THRESHOLD = 0.1
IMPAIRED_THRESHOLD = 0.1
SEGMENT = 6


def piqe(gray: np.ndarray) -> tuple[float, float, float, float]:
    """(score, fraction of active blocks, fraction of active blocks with artifacts, with noise)."""
    img = np.asarray(gray, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D gray image, got shape {img.shape}")
    if not np.isfinite(img).all():
        raise ValueError("image contains NaN or Inf values; PIQE is undefined")
    h, w = img.shape
    img = np.pad(img, ((0, -h % BLOCK), (0, -w % BLOCK)), mode="symmetric")
    peak = img.max()
    if peak <= 0:
        return 100.0, 0.0, 0.0, 0.0  # uniform black: no active block, MATLAB's score for uniform images
    img = np.round(255.0 * (img / peak))
    mu = cv2.GaussianBlur(img, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE)
    sigma = np.sqrt(np.abs(cv2.GaussianBlur(img * img, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE) - mu * mu))
    norm = (img - mu) / (sigma + 1.0)
    hb, wb = norm.shape[0] // BLOCK, norm.shape[1] // BLOCK
    blocks = norm.reshape(hb, BLOCK, wb, BLOCK).transpose(0, 2, 1, 3).reshape(-1, BLOCK, BLOCK)
    var = blocks.reshape(len(blocks), -1).var(axis=1, ddof=1)
    active = var > ACTIVITY_THRESHOLD
    b, v = blocks[active], var[active]
    if b.size == 0:
        return 100.0, 0.0, 0.0, 0.0
    edges = np.stack([b[:, 0, :], b[:, :, BLOCK - 1], b[:, BLOCK - 1, :], b[:, :, 0]], axis=1)  # top right down left
    seg_sd = sliding_window_view(edges, SEGMENT, axis=2).std(axis=3, ddof=1)
    artifact = (seg_sd < IMPAIRED_THRESHOLD).any(axis=(1, 2))
    c1, c2 = (BLOCK - 1 + 1) // 2, (BLOCK - 1 + 1) // 2 + 1  # MATLAB: center1 = (blockSize+1)/2 with blockSize 15
    center = np.concatenate([b[:, :, c1 - 1], b[:, :, c2 - 1]], axis=1)
    keep = np.delete(np.arange(BLOCK), [c1 - 1, c2])  # sequential deletion of columns c1 and then c2
    surround = b[:, :, keep].reshape(len(b), -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        csd = center.std(axis=1, ddof=1) / surround.std(axis=1, ddof=1)
    csd = np.where(np.isnan(csd), 0.0, csd)
    bsigma = np.sqrt(v)
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.abs(bsigma - csd) / np.maximum(bsigma, csd)
    noise = bsigma > 2 * beta
    dist = (artifact * (1 - v) + noise * v).sum()
    score = (dist + 1.0) / (1.0 + active.sum()) * 100.0
    return float(score), float(active.mean()), float(artifact.mean()), float(noise.mean())


def _score(gray: np.ndarray) -> dict[str, float]:
    s, act, art, noi = piqe(gray)
    return {"piqe": s, "piqe_active_fraction": act, "piqe_artifact_fraction": art, "piqe_noise_fraction": noi}


@register_metric(
    "piqe",
    version="1",
    columns=("piqe", "piqe_active_fraction", "piqe_artifact_fraction", "piqe_noise_fraction"),
    lower_is_better=True,
    range=(0.0, 100.0),
    description="PIQE (training-free; block-wise artifact and noise criteria), as MATLAB piqe()",
    reference="Venkatanath N. et al., NCC 2015; MATLAB Image Processing Toolbox piqe",
)
def _make_piqe():
    return _score
