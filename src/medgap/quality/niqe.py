"""NIQE: Natural Image Quality Evaluator (Mittal, Soundararajan, Bovik 2013), as MATLAB's ``niqe()``.

The image (cropped to a multiple of 96) is MSCN-normalised with a 7x7 Gaussian (replicated border) and cut
into 96x96 blocks; each block gives 18 features (AGGD fit of the MSCN values: alpha and the mean scale; AGGD
fits of the products with the block shifted by [0 1], [1 0], [1 1], [1 -1] with wrap-around: alpha, mean,
left and right scale). The same at half scale (MATLAB ``imresize(I, 0.5)``, 48x48 blocks) gives 36 features
per block. A multivariate Gaussian fitted to the blocks (NaN-aware) is compared with the pristine model:
``sqrt((mu_p - mu) pinv((C_p + C) / 2) (mu_p - mu)^T)``. Lower is better.

Flat areas follow medgap's BRISQUE policy: MSCN is exactly 0 where ``|I - mu| <= 1e-8`` (MATLAB's values
there are rounding noise whose signs move the AGGD fits; see docs/brisque.md).

The default pristine model is MATLAB's (``data/niqe_pris_params.npz``, see ``data/NOTICE-NIQE.txt``).
:func:`fit_niqe_model` fits one from a user's own good images (MATLAB ``fitniqe``: only blocks whose mean
local deviation exceeds 0.75 of the image's sharpest block).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.special import gamma

from medgap.quality.brisque import NOISE_FLOOR, matlab_imresize_half
from medgap.quality.registry import register_metric

BLOCK = 96
_GAM = 0.2 + 0.001 * np.arange(9801)
_R_AGGD = gamma(2.0 / _GAM) ** 2 / (gamma(1.0 / _GAM) * gamma(3.0 / _GAM))
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass(frozen=True)
class NiqeModel:
    mu: np.ndarray  # (36,)
    cov: np.ndarray  # (36, 36)
    window: np.ndarray  # (7, 7)

    def save(self, path: str | Path) -> None:
        np.savez(path, mu_pris_param=self.mu[None, :], cov_pris_param=self.cov, gaussian_window=self.window)

    @classmethod
    def load(cls, path: str | Path) -> NiqeModel:
        try:
            d = np.load(path)
            return cls(np.asarray(d["mu_pris_param"]).reshape(-1), np.asarray(d["cov_pris_param"]),
                       np.asarray(d["gaussian_window"]))
        except (OSError, KeyError, ValueError) as e:
            raise ValueError(f"{path}: not a NIQE model (.npz with mu_pris_param, cov_pris_param, gaussian_window): "
                             f"{e}; make one with `medgap fit-niqe`") from None


@functools.lru_cache(maxsize=4)
def _load(path: str | None) -> NiqeModel:
    if path is None:
        path = str(resources.files("medgap.quality") / "data" / "niqe_pris_params.npz")
    return NiqeModel.load(path)


def default_model() -> NiqeModel:
    return _load(None)


def _aggd(x: np.ndarray) -> tuple[float, float, float]:
    """MATLAB niqe's AGGD fit: (alpha, beta_l, beta_r); NaN when a side is empty."""
    x = x.ravel()
    neg, pos = x[x < 0], x[x > 0]
    if neg.size == 0 or pos.size == 0:
        return np.nan, np.nan, np.nan
    left, right = np.sqrt(np.mean(neg * neg)), np.sqrt(np.mean(pos * pos))
    gh = left / right
    rhat = np.mean(np.abs(x)) ** 2 / np.mean(x * x)
    rhatnorm = rhat * (gh**3 + 1) * (gh + 1) / (gh**2 + 1) ** 2
    alpha = _GAM[np.argmin((_R_AGGD - rhatnorm) ** 2)]
    k = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, left * k, right * k


def _block_features(block: np.ndarray) -> list[float]:
    a, bl, br = _aggd(block)
    feat = [a, (bl + br) / 2]
    for shift in _SHIFTS:
        a, bl, br = _aggd(block * np.roll(block, shift, axis=(0, 1)))
        feat += [a, (br - bl) * (gamma(2 / a) / gamma(1 / a)), bl, br]
    return feat


def _mscn(img: np.ndarray, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = ndimage.correlate(img, window, mode="nearest")
    sigma = np.sqrt(np.abs(ndimage.correlate(img * img, window, mode="nearest") - mu * mu))
    norm = (img - mu) / (sigma + 1)
    norm[np.abs(img - mu) <= NOISE_FLOOR] = 0.0  # flat areas: rounding noise only (BRISQUE's policy)
    return norm, sigma


def niqe_features(gray: np.ndarray, window: np.ndarray, sharpness: float | None = None) -> np.ndarray:
    """(blocks, 36) features of an image; with ``sharpness``, only blocks as sharp as that fraction of the
    sharpest (fitniqe's block selection)."""
    img = np.asarray(gray, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D gray image, got shape {img.shape}")
    if not np.isfinite(img).all():
        raise ValueError("image contains NaN or Inf values; NIQE is undefined")
    nh, nw = img.shape[0] // BLOCK, img.shape[1] // BLOCK
    if nh == 0 or nw == 0:
        raise ValueError(f"image is {img.shape[0]}x{img.shape[1]}; NIQE needs at least {BLOCK}x{BLOCK} pixels")
    img = img[: nh * BLOCK, : nw * BLOCK]
    per_scale = []
    keep = None
    for scale in (1, 2):
        norm, sigma = _mscn(img, window)
        b = BLOCK // scale
        feats, sharp = [], []
        for j in range(nw):  # column-major block order, as MATLAB
            for i in range(nh):
                sl = (slice(i * b, (i + 1) * b), slice(j * b, (j + 1) * b))
                feats.append(_block_features(norm[sl]))
                sharp.append(sigma[sl].mean())
        per_scale.append(np.array(feats))
        if scale == 1 and sharpness is not None:
            sharp = np.array(sharp)
            keep = sharp > sharpness * sharp.max()
        img = matlab_imresize_half(img)
    feats = np.concatenate(per_scale, axis=1)
    return feats if keep is None else feats[keep]


def niqe(gray: np.ndarray, model: NiqeModel | None = None) -> float:
    """NIQE score of a gray 0-255 image against a pristine model (default: MATLAB's)."""
    model = model or default_model()
    feats = niqe_features(gray, model.window)
    mu = np.nanmean(feats, axis=0)
    clean = feats[~np.isnan(feats).any(axis=1)]
    if len(clean) == 0:
        raise ValueError("no 96x96 block with finite features (flat image?): NIQE is undefined")
    # MATLAB's nancov of a single block (a 1x36 row) is the variance of its 36 values, a scalar that the
    # pooled covariance then adds to every element; kept for images of exactly one block.
    cov = np.cov(clean, rowvar=False) if len(clean) > 1 else np.var(clean[0], ddof=1)
    d = model.mu - mu
    return float(np.sqrt(d @ np.linalg.pinv((model.cov + cov) / 2) @ d))


def fit_niqe_model(images: Iterable[np.ndarray], sharpness: float = 0.75, window: np.ndarray | None = None) -> NiqeModel:
    """A pristine model from good images of a modality (MATLAB ``fitniqe``: 96x96 blocks, sharpness 0.75)."""
    window = default_model().window if window is None else window
    feats = [niqe_features(img, window, sharpness) for img in images]
    allf = np.concatenate([f for f in feats if len(f)], axis=0) if feats else np.empty((0, 36))
    allf = allf[~np.isnan(allf).any(axis=1)]
    if len(allf) < 37:
        raise ValueError(f"only {len(allf)} usable blocks; a 36-feature model needs more images (>= 37 blocks)")
    return NiqeModel(allf.mean(axis=0), np.cov(allf, rowvar=False), window)


def _score(gray: np.ndarray, model_path: str | None = None) -> dict[str, float]:
    return {"niqe": niqe(gray, _load(model_path))}


@register_metric(
    "niqe",
    version="1",
    columns=("niqe",),
    lower_is_better=True,
    range=(0.0, None),
    description="NIQE against a pristine model (default: MATLAB niqe()'s); 96x96 blocks, two scales",
    reference="Mittal, Soundararajan, Bovik, IEEE SPL 2013; MATLAB niqe",
)
def _make_niqe(model: str | Path | None = None):
    if model is None:
        return _score
    _load(str(model))  # fail early with the file named
    return functools.partial(_score, model_path=str(model))
