"""NIQE: Natural Image Quality Evaluator (Mittal, Soundararajan, Bovik 2013), as the authors' MATLAB release.

medgap follows LIVE's NIQE release (``computequality.m``, ``computefeature.m``, ``estimateaggdparam.m``,
``estimatemodelparam.m``) with its pristine model, the one BasicSR ships as ``niqe_pris_params.npz`` and
whose MATLAB outputs are the anchors in ../shared/reference/matlab_anchors:

1. The gray image (double, 0-255, not rounded) is cropped to a multiple of 96 in each direction.
2. Per scale: ``mu = imfilter(I, w, 'replicate')`` with ``w = fspecial('gaussian', 7, 7/6)``,
   ``sigma = sqrt(|imfilter(I.^2, w) - mu.^2|)``, ``MSCN = (I - mu) ./ (sigma + 1)``. Per 96x96 block
   (48x48 at the second scale, which is ``imresize(I, 0.5)``), 18 features: AGGD fit of the MSCN values
   (alpha, mean of the two scales) and of its products with ``circshift`` by [0 1], [1 0], [1 1], [1 -1]
   (alpha, mean, left and right scale).
3. ``estimateaggdparam``: left values ``< 0``, right values ``> 0`` (zeros count on neither side); an empty
   side gives a NaN scale, and then alpha is 0.2 (MATLAB's ``min`` of an all-NaN vector returns the first
   grid point). Flat zero areas (a black background) therefore give alpha = 0.2 with NaN scales.
4. ``score = sqrt((mu_p - mu) pinv((C_p + C) / 2) (mu_p - mu)')`` with ``mu = nanmean`` and ``C = nancov``
   (rows with a NaN dropped) of the blocks' features. Every block is used: the release computes each
   block's sharpness but uses it only when fitting a model.

MATLAB's Image Processing Toolbox ``niqe()`` (R2017b+) is a reimplementation with its own default model
(``defaultNIQEModel.mat``, not this one), rounding of the input, a ``>= 0`` right side, whole-side blocks
for images under 192 px and a model-held sharpness threshold; it gives other numbers (7.2 against the
release's 15.75 on the I03 anchor, per IQA-PyTorch's calibration table). medgap does not reproduce it.

Exact zeros: where ``I - mu`` is 0 in exact arithmetic (a constant replicate-padded 7x7 window, or an exact
cancellation in a symmetric one), MATLAB's MSCN is floating-point rounding noise whose signs depend on the
summation order. medgap applies BRISQUE's rule at both scales (``medgap.quality.brisque``, docs/brisque.md):
MSCN is exactly 0 where the window spans at most ``FLAT_REL_TOL * (1 + max |I|)`` or ``|I - mu| <= CANCEL_TOL
* sqrt(I^2 + E[I^2])``, so those values count on neither side, as exact zeros do. (Metric version 2 used a
fixed ``|I - mu| <= 1e-8``, which also zeroed genuine small deviations at the half scale.)

:func:`fit_niqe_model` fits a model from a user's own good images as ``estimatemodelparam.m`` does.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numba import njit

from medgap.quality._matlab import (
    AGGD_MEAN,
    AGGD_SCALE,
    GAM,
    R_AGGD,
    fspecial_gaussian,
    imgaussfilt,
    imresize_half,
)
from medgap.quality.brisque import CANCEL_TOL, FLAT_REL_TOL
from medgap.quality.registry import register_metric

__all__ = ["NiqeModel", "default_model", "fit_niqe_model", "niqe", "niqe_features"]

BLOCK = 96
"""Block side at full scale (the release's recommended 96x96, no overlap)."""
SHARPNESS_THRESHOLD = 0.75
"""``estimatemodelparam.m``'s ``sh_th`` for fitting: blocks sharper than this fraction of the sharpest."""
N_FEATURES = 36

_GAM, _R_AGGD, _SCALE, _MEAN = GAM, R_AGGD, AGGD_SCALE, AGGD_MEAN  # the AGGD tables (one place: _matlab)
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass(frozen=True)
class NiqeModel:
    """A pristine multivariate Gaussian of the 36 NIQE features (``mu_prisparam``, ``cov_prisparam``)."""

    mu: np.ndarray
    """(36,) mean feature vector."""
    cov: np.ndarray
    """(36, 36) covariance."""

    def __post_init__(self) -> None:
        mu = np.asarray(self.mu, dtype=np.float64).reshape(-1)
        cov = np.asarray(self.cov, dtype=np.float64)
        if mu.shape != (N_FEATURES,) or cov.shape != (N_FEATURES, N_FEATURES):
            raise ValueError(f"a NIQE model needs a 36-vector mean and a 36x36 covariance, got {mu.shape}, {cov.shape}")
        if not (np.isfinite(mu).all() and np.isfinite(cov).all()):
            raise ValueError("a NIQE model's mean and covariance must be finite")
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "cov", cov)

    def save(self, path: str | Path) -> None:
        """Write an ``.npz`` with BasicSR's keys (``mu_pris_param``, ``cov_pris_param``, ``gaussian_window``)."""
        np.savez(path, mu_pris_param=self.mu[None, :], cov_pris_param=self.cov, gaussian_window=fspecial_gaussian())

    @classmethod
    def load(cls, path: str | Path, file: BinaryIO | None = None) -> NiqeModel:
        """Read a model written by :meth:`save` or BasicSR's ``niqe_pris_params.npz`` (from ``file`` when given,
        already read from ``path``)."""
        try:
            with np.load(path if file is None else file) as d:
                return cls(d["mu_pris_param"], d["cov_pris_param"])
        except (OSError, KeyError, ValueError, EOFError) as e:
            raise ValueError(f"{path}: not a NIQE model (.npz with mu_pris_param and cov_pris_param): {e}. "
                             "Make one with `medgap fit-niqe DIR`.") from None


def _load(path: str | None) -> NiqeModel:
    """The model in ``path`` (None: the release's), cached by path and content: a file rewritten in place (a
    refitted model) is read again, never served from the cache."""
    if path is None:
        return default_model()
    try:
        blob = Path(path).read_bytes()
    except OSError as e:
        raise ValueError(f"{path}: cannot read the NIQE model ({e.strerror}). Make one with `medgap fit-niqe DIR`."
                         ) from None
    return _parse(path, hashlib.sha256(blob).digest(), blob)


@functools.lru_cache(maxsize=8)
def _parse(path: str, digest: bytes, blob: bytes) -> NiqeModel:
    return NiqeModel.load(path, io.BytesIO(blob))


@functools.cache
def default_model() -> NiqeModel:
    """The NIQE release's pristine model (LIVE; fitted on 125 pristine photos, 96x96 blocks, sharpness 0.75)."""
    with resources.as_file(resources.files("medgap.quality") / "data" / "niqe_pris_params.npz") as p:
        return NiqeModel.load(p)


def _grid_index(rhat: np.ndarray) -> np.ndarray:
    """MATLAB ``[~, i] = min((r_gam - rhat).^2)`` for each value: the nearest grid point (the lower one on a
    tie) and the first one for NaN."""
    hi = np.clip(np.searchsorted(_R_AGGD, rhat), 1, _R_AGGD.size - 1)
    lo = hi - 1
    idx = np.where((_R_AGGD[lo] - rhat) ** 2 <= (_R_AGGD[hi] - rhat) ** 2, lo, hi)
    return np.where(np.isnan(rhat), 0, idx)


def _aggd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``estimateaggdparam`` of each row of ``x``: (index of alpha on the grid, beta_left, beta_right)."""
    sq = x * x
    neg, pos = x < 0, x > 0
    n_left, n_right = neg.sum(axis=1), pos.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):  # an empty side: mean([]) is NaN, as in MATLAB
        std_left = np.sqrt(np.einsum("ij,ij->i", sq, neg) / n_left)
        std_right = np.sqrt(np.einsum("ij,ij->i", sq, pos) / n_right)
        gh = std_left / std_right
        rhat = np.abs(x).mean(axis=1) ** 2 / sq.mean(axis=1)
        rhat_norm = rhat * (gh**3 + 1) * (gh + 1) / (gh**2 + 1) ** 2
    i = _grid_index(rhat_norm)
    return i, std_left * _SCALE[i], std_right * _SCALE[i]


def _block_features(blocks: np.ndarray) -> np.ndarray:
    """(n_blocks, 18): ``computefeature`` of each block of a (n_blocks, h, w) stack."""
    nb = blocks.shape[0]
    feats = np.empty((nb, 18))
    i, bl, br = _aggd(blocks.reshape(nb, -1))
    feats[:, 0], feats[:, 1] = _GAM[i], (bl + br) / 2
    for k, shift in enumerate(_SHIFTS):
        prod = blocks * np.roll(blocks, shift, axis=(1, 2))  # circshift within the block
        i, bl, br = _aggd(prod.reshape(nb, -1))
        feats[:, 2 + 4 * k : 6 + 4 * k] = np.stack([_GAM[i], (br - bl) * _MEAN[i], bl, br], axis=1)
    return feats


@njit(cache=True, nogil=True)
def _zero_exact(img, dev, second, flat_tol, cancel, norm):
    """Set ``norm`` to 0 where I - mu is 0 in exact arithmetic: ``|I - mu|`` below mu's rounding error, or a
    constant replicate-padded 7x7 window (range <= flat_tol). Both have ``|I - mu| <= flat_tol``, so only those
    pixels are tested; a non-constant window usually stops at its first few values."""
    h, w = img.shape
    c2 = cancel * cancel
    for i in range(h):
        for j in range(w):
            d = dev[i, j]
            if abs(d) > flat_tol:
                continue
            x = img[i, j]
            if d * d <= c2 * (x * x + second[i, j]):
                norm[i, j] = 0.0
                continue
            lo = x
            hi = x
            flat = True
            for r in range(i - 3, i + 4):
                rr = min(max(r, 0), h - 1)  # 'replicate' padding
                for c in range(j - 3, j + 4):
                    v = img[rr, min(max(c, 0), w - 1)]
                    lo = min(lo, v)
                    hi = max(hi, v)
                if hi - lo > flat_tol:
                    flat = False
                    break
            if flat:
                norm[i, j] = 0.0


def _mscn(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(MSCN, sigma) with imfilter(., fspecial('gaussian', 7, 7/6), 'replicate'); exact zeros as the module says."""
    mu = imgaussfilt(img)
    second = imgaussfilt(img * img)
    sigma = np.sqrt(np.abs(second - mu * mu))
    dev = img - mu
    norm = dev / (sigma + 1.0)
    flat_tol = FLAT_REL_TOL * (1.0 + max(img.max(), -img.min()))
    _zero_exact(np.ascontiguousarray(img), dev, second, flat_tol, CANCEL_TOL, norm)
    return norm, sigma


def _blocks(a: np.ndarray, b: int) -> np.ndarray:
    """(n_blocks, b, b) in MATLAB's column-major block order (blkproc's output reshaped)."""
    nr, nc = a.shape[0] // b, a.shape[1] // b
    return a[: nr * b, : nc * b].reshape(nr, b, nc, b).transpose(2, 0, 1, 3).reshape(nr * nc, b, b)


def cropped_input(gray: np.ndarray) -> np.ndarray:
    """The image NIQE computes on: float64, cropped to a multiple of 96 in each direction (C-contiguous); a
    ``ValueError`` for what NIQE cannot score (not 2-D, smaller than one block, NaN/Inf). The torch backend
    checks with the same function, so both raise the same errors."""
    img = np.asarray(gray, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D gray image, got shape {img.shape}")
    if min(img.shape) < BLOCK:
        raise ValueError(f"image is {img.shape[0]}x{img.shape[1]}; NIQE needs at least {BLOCK}x{BLOCK} pixels "
                         "(one block)")
    if not np.isfinite(img).all():
        raise ValueError("image contains NaN or Inf values; NIQE is undefined")
    return np.ascontiguousarray(img[: img.shape[0] // BLOCK * BLOCK, : img.shape[1] // BLOCK * BLOCK])


def niqe_features(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(features (blocks, 36), sharpness (blocks,)) of a 0-255 gray image: 96x96 blocks after cropping to a
    multiple of 96, column-major block order; sharpness is each block's mean local deviation ``sigma``."""
    img = cropped_input(gray)
    norm, sigma = _mscn(img)
    first = _block_features(_blocks(norm, BLOCK))
    sharpness = _blocks(sigma, BLOCK).mean(axis=(1, 2))
    second = _block_features(_blocks(_mscn(imresize_half(img))[0], BLOCK // 2))
    return np.concatenate([first, second], axis=1), sharpness


def _nanmean(feats: np.ndarray) -> np.ndarray:
    """MATLAB ``nanmean`` down the columns (NaN where a column has no finite value)."""
    valid = ~np.isnan(feats)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid, feats, 0.0).sum(axis=0) / valid.sum(axis=0)


def _nancov(feats: np.ndarray) -> np.ndarray | float:
    """MATLAB ``nancov``: rows with a NaN dropped; a single row (a 1x36 vector) gives its scalar variance."""
    if len(feats) == 1:
        return float(np.var(feats[0], ddof=1))
    clean = feats[~np.isnan(feats).any(axis=1)]
    if len(clean) < 2:
        raise ValueError(f"{len(clean)} of {len(feats)} blocks have all 36 NIQE features finite (flat image?); "
                         "their covariance is undefined")
    return np.cov(clean, rowvar=False)


def niqe(gray: np.ndarray, model: NiqeModel | None = None) -> float:
    """NIQE score of a gray 0-255 image against a pristine model (default: the release's); lower is better.

    Raises ValueError for NaN/Inf, a side under 96 px, and where MATLAB's result would be NaN.
    """
    return _niqe(gray, model or default_model())[0]


def _niqe(gray: np.ndarray, model: NiqeModel) -> tuple[float, float]:
    """(score, fraction of blocks with a NaN feature). Those blocks (flat or one-sided areas) enter the mean
    but not the covariance, as in MATLAB."""
    return _niqe_from_features(niqe_features(gray)[0], model)


def _niqe_from_features(feats: np.ndarray, model: NiqeModel) -> tuple[float, float]:
    """(score, NaN-block fraction) from an image's (blocks, 36) features (also the torch backend's)."""
    d = model.mu - _nanmean(feats)
    score = float(np.sqrt(d @ np.linalg.pinv((model.cov + _nancov(feats)) / 2) @ d))
    if not math.isfinite(score):
        raise ValueError("NIQE is undefined for this image: a feature is NaN in every block (flat image?)")
    return score, float(np.isnan(feats).any(axis=1).mean())


def fit_niqe_model(
    images: Iterable[np.ndarray],
    *,
    sharpness_threshold: float = SHARPNESS_THRESHOLD,
    sharpness: float | None = None,
) -> NiqeModel:
    """A pristine model from good images of one modality, as the release's ``estimatemodelparam.m``: from each
    image the 96x96 blocks with mean ``sigma`` above ``sharpness_threshold`` times the image's sharpest, then
    ``nanmean`` and ``nancov`` of all their features.

    0.75 is the release's value, with which the default model was fitted. MATLAB's toolbox ``fitniqe``
    defaults to 0 (every block) and keeps blocks ``>=`` the threshold; pass 0 for all blocks. Images with a
    side under 96 px give no block and are skipped. ``sharpness`` is the former name of
    ``sharpness_threshold``.

    Raises ValueError when fewer than two blocks have all 36 features finite. Fewer than 37 give a
    rank-deficient covariance; ``pinv`` copes, as in MATLAB, but more images make a better model.
    """
    if sharpness is not None:
        sharpness_threshold = sharpness
    if not 0.0 <= sharpness_threshold <= 1.0:
        raise ValueError(f"sharpness_threshold must be in [0, 1], got {sharpness_threshold}")
    selected = []
    for img in images:
        if min(np.shape(img)[:2]) < BLOCK:
            continue
        feats, sharp = niqe_features(img)
        selected.append(feats[sharp > sharpness_threshold * sharp.max()])
    allf = np.concatenate(selected, axis=0) if selected else np.empty((0, N_FEATURES))
    complete = int((~np.isnan(allf).any(axis=1)).sum())
    if complete < 2:
        raise ValueError(f"{complete} selected block(s) with all 36 features finite in {len(selected)} image(s) "
                         f"of at least {BLOCK}x{BLOCK} px; a NIQE model needs more (37 or more is best): add images")
    return NiqeModel(_nanmean(allf), _nancov(allf))


def _score(gray: np.ndarray, model_path: str | None = None) -> dict[str, float]:
    score, nan_fraction = _niqe(gray, _load(model_path))
    return {"niqe": score, "niqe_nan_block_fraction": nan_fraction}


@register_metric(
    "niqe",
    version="3",  # 3: exact zeros decided from the window, not by a fixed 1e-8 floor
    columns=("niqe", "niqe_nan_block_fraction"),
    lower_is_better=True,
    range=(0.0, None),
    description="NIQE against a pristine model (default: the LIVE release's, as MATLAB computequality); "
    "96x96 blocks, two scales",
    reference="Mittal, Soundararajan, Bovik, IEEE SPL 2013; LIVE NIQE release (MATLAB)",
    torch_backend="medgap.quality.torch_features:niqe_backend",  # --device cpu|cuda: batched float64 torch
)
def _make_niqe(model: str | Path | None = None):
    if model is None:
        return _score
    _load(str(model))  # fail early, naming the file
    return functools.partial(_score, model_path=str(model))
