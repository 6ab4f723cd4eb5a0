"""PIQE against MATLAB ``piqe()`` values (../shared/reference/matlab_anchors), a literal block-by-block
restatement of MATLAB's ``piqe.m``, and the PyPI port ``pypiqe`` where its preprocessing equals MATLAB's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage
from skimage import data

from medgap.io import read_frames, to_gray255
from medgap.quality import create_metric
from medgap.quality._matlab import fspecial_gaussian
from medgap.quality.piqe import piqe


def _gray(path):
    return to_gray255(next(read_frames(path)))


def _sample(shared_data, per_modality):
    man = pd.read_csv(shared_data / "MANIFEST.csv")
    # the still-image modalities (../shared/data also holds videos and the CLIVE photos, tested elsewhere)
    man = man[man.modality.isin(["natural", "cxr", "ct", "mr", "pocus"])]
    return [p for _, g in man.groupby("modality") for p in g.path.iloc[:: max(1, len(g) // per_modality)][:per_modality]]


def test_matlab_anchors(shared_reference):
    table = pd.read_csv(shared_reference / "matlab_anchors" / "niqe_piqe_matlab.csv")
    for name, expected in zip(table.file, table.matlab_piqe):
        gray = _gray(shared_reference / "matlab_anchors" / name)
        assert piqe(gray)[0] == pytest.approx(expected, abs=0.005), name  # MATLAB printed 2 decimals


def _matlab_piqe(gray):
    """MATLAB piqe.m line by line (loops over blocks and segments; MATLAB's 1-based indices shifted)."""
    r, c = gray.shape
    im = np.pad(gray, ((0, -r % 16), (0, -c % 16)), mode="edge")  # padarray(..., 'replicate', 'post')
    im = np.floor(im + 0.5)  # round(255 * im2double(I)) of 0-255 levels
    w = fspecial_gaussian(7, 7 / 6)
    mu = ndimage.correlate(im, w, mode="nearest")
    sigma = np.sqrt(np.abs(ndimage.correlate(im * im, w, mode="nearest") - mu * mu))
    imnorm = (im - mu) / (sigma + 1)
    dist, nhsa = 0.0, 0
    for i in range(0, im.shape[0], 16):
        for j in range(0, im.shape[1], 16):
            block = imnorm[i:i + 16, j:j + 16]
            var = np.var(block, ddof=1)
            if var <= 0.1:
                continue
            nhsa += 1
            impaired = any(np.std(edge[s:s + 6], ddof=1) < 0.1
                           for edge in (block[0, :], block[:, 15], block[15, :], block[:, 0]) for s in range(11))
            centre = np.concatenate([block[:, 7], block[:, 8]])
            surround = np.delete(np.delete(block, 7, axis=1), 8, axis=1)  # Block(:,8) = []; Block(:,9) = []
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.std(centre, ddof=1) / np.std(surround, ddof=1)
                ratio = 0.0 if np.isnan(ratio) else ratio
                bsigma = np.sqrt(var)
                beta = abs(bsigma - ratio) / max(bsigma, ratio)
            dist += impaired * (1 - var) + (bsigma > 2 * beta) * var
    return (dist + 1) / (1 + nhsa) * 100


def test_matches_literal_restatement(shared_data):
    """Every modality, including sizes that need padding and images whose maximum is below 255."""
    paths = _sample(shared_data, 4)
    padded = below_255 = 0
    for p in paths:
        gray = _gray(shared_data / p)
        if gray.size > 1_500_000:
            gray = gray[:1000, :1000]  # keeps the loop short; PIQE is defined on any crop
        padded += bool(gray.shape[0] % 16 or gray.shape[1] % 16)
        below_255 += gray.max() < 255
        assert piqe(gray)[0] == pytest.approx(_matlab_piqe(gray), abs=1e-9), p
    assert len(paths) == 20 and padded >= 3 and below_255 >= 3


def test_matches_pypiqe_where_its_preprocessing_is_matlabs(shared_data):
    """pypiqe pads symmetrically and rescales by 255 / max: equal to MATLAB for replicate-padded input with
    maximum 255 (measured on 40 images: within 3e-12)."""
    pypiqe = pytest.importorskip("pypiqe", reason="pypiqe is the independent port (pip install --no-deps pypiqe)")
    compared = 0
    for p in _sample(shared_data, 8):
        gray = _gray(shared_data / p)
        if gray.max() != 255 or not (gray == np.round(gray)).all():
            continue
        h, w = gray.shape
        prepadded = np.pad(gray, ((0, -h % 16), (0, -w % 16)), mode="edge")
        assert piqe(gray)[0] == pytest.approx(pypiqe.piqe(prepadded)[0], abs=1e-9), p
        compared += 1
    assert compared >= 20


def test_matlab_preprocessing_not_pypiqes():
    """MATLAB neither stretches to the image maximum nor pads symmetrically (pypiqe does both)."""
    camera = data.camera().astype(np.float64)[100:228, 200:328]  # bundled with scikit-image
    assert piqe(camera)[0] == pytest.approx(51.393, abs=1e-3)
    assert piqe(np.round(camera * 0.5))[0] == pytest.approx(57.234, abs=1e-3)  # not 51.393
    odd = camera[:50, :45]  # padded to 64x48 by repeating the last row and column
    assert piqe(odd)[0] == pytest.approx(piqe(np.pad(odd, ((0, 14), (0, 3)), mode="edge"))[0], abs=1e-12)
    assert piqe(odd)[0] != pytest.approx(piqe(np.pad(odd, ((0, 14), (0, 3)), mode="symmetric"))[0], abs=1)
    assert piqe(camera + 0.4)[0] == piqe(camera)[0]  # levels are rounded first


def test_uniform_and_invalid_images():
    assert piqe(np.zeros((40, 40)))[0] == 100.0
    assert piqe(np.full((40, 40), 128.0)) == (100.0, 0.0, 0.0, 0.0)  # uniform: no active block
    with pytest.raises(ValueError, match="NaN"):
        piqe(np.full((40, 40), np.nan))
    with pytest.raises(ValueError, match="2-D"):
        piqe(np.zeros((4, 4, 3)))
    out = create_metric("piqe")(np.random.default_rng(0).random((50, 70)) * 255)  # padded to 64x80
    assert 0 <= out["piqe"] <= 100 and 0 < out["piqe_active_fraction"] <= 1
    assert set(out) == {"piqe", "piqe_active_fraction", "piqe_artifact_fraction", "piqe_noise_fraction"}
