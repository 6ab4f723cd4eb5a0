"""``brisque-foreground``: a BRISQUE *variant*, not the release. Its statistics use the imaged region only.

The release pools the MSCN coefficients of every pixel, so the near-constant surround of medical images
(air around a CT section, the black frame of an x-ray or an ultrasound fan) enters its features. On
../shared/data, BRISQUE correlates with the background fraction at Spearman 0.51 over 200 images, and 0.14
after a foreground crop (docs/io.md). This variant computes the MSCN map of the whole image exactly as the release
does. It then fits the GGD on the coefficients inside :func:`medgap.io.foreground_mask`, and each AGGD on the
pairs whose two pixels are both inside. The mask is halved with the image for the second scale. The release's
SVR model then maps the 36 features to a score. The model was trained on whole natural images, so a score is
comparable with other variant scores, not with published BRISQUE values. With an all-True mask it equals the
release (a test checks this).
"""

from __future__ import annotations

import numpy as np

from medgap.quality._matlab import imresize_half
from medgap.quality.registry import register_metric

# the release's pairs (see _kernels.moments): m[i, j] with m[i, j-1], m[i-1, j], m[i-1, j-1], m[i+1, j-1],
# as np.roll shifts (rows, columns), wrapping around the border like circshift
_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))


def _masked_moments(m: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """(GGD sums, AGGD sums, coefficients counted, pairs counted per shift) over the masked MSCN coefficients,
    the statistics of :func:`medgap.quality.brisque._kernels.moments` restricted to ``mask``."""
    v = m[mask]
    ggd = np.array([np.abs(v).sum(), (v * v).sum()])
    aggd = np.empty((4, 5))
    n_pairs = np.empty(4)
    for s, shift in enumerate(_SHIFTS):
        both = mask & np.roll(mask, shift, axis=(0, 1))
        x = (m * np.roll(m, shift, axis=(0, 1)))[both]
        neg, pos = x < 0, x > 0
        aggd[s] = (np.abs(x).sum(), (x[neg] ** 2).sum(), neg.sum(), (x[pos] ** 2).sum(), pos.sum())
        n_pairs[s] = both.sum()
    return ggd, aggd, float(v.size), n_pairs


def brisque_foreground_features(gray: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """The 36 features over the foreground (``mask``, default :func:`medgap.io.foreground_mask` of ``gray``) and
    the fraction of the image it covers."""
    from medgap.io.display import foreground_mask
    from medgap.quality.brisque import _check, _fit_moments, _mscn, matlab_gray

    gray = matlab_gray(gray)
    _check(gray)
    mask = foreground_mask(gray) if mask is None else np.asarray(mask, dtype=bool)
    if mask.shape != gray.shape:
        raise ValueError(f"mask shape {mask.shape} differs from the image's {gray.shape}")
    feats = np.empty(36)
    for k, (img, msk) in enumerate(((gray, mask), (imresize_half(gray), None))):
        if msk is None:  # the mask halved with the image: a pixel is inside when most of its footprint is
            msk = imresize_half(mask.astype(np.float64)) > 0.5
        if msk.sum() < 16:
            raise ValueError(f"the foreground covers {int(msk.sum())} pixels at scale {k + 1}: too few for BRISQUE")
        m, _ = _mscn(img)
        ggd, aggd, n, n_pairs = _masked_moments(m, msk)
        _fit_moments(ggd, aggd, n, n_pairs, feats[18 * k: 18 * (k + 1)])
    return feats, float(mask.mean())


def _score(gray: np.ndarray) -> dict[str, float]:
    from medgap.quality.brisque.model import default_model

    feats, fraction = brisque_foreground_features(gray)
    return {"brisque_foreground": default_model().predict_release(feats), "brisque_foreground_fraction": fraction}


@register_metric(
    "brisque-foreground",
    version="1",
    columns=("brisque_foreground", "brisque_foreground_fraction"),
    lower_is_better=True,
    range=(0.0, 100.0),
    description="BRISQUE variant (not the release): features pooled over the foreground (medgap.io."
                "foreground_mask) only, release SVR model",
    reference="Mittal, Moorthy, Bovik, IEEE TIP 2012 (features and model); foreground pooling: medgap",
)
def _make_brisque_foreground():
    return _score
