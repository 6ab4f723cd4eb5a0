"""PIQE against MATLAB ``piqe()`` values (../shared/reference/matlab_anchors) and the PyPI port ``pypiqe``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medgap.io import read_frames, to_gray255
from medgap.quality import create_metric
from medgap.quality.piqe import piqe


def test_matlab_anchors(shared_reference):
    table = pd.read_csv(shared_reference / "matlab_anchors" / "niqe_piqe_matlab.csv")
    for name, expected in zip(table.file, table.matlab_piqe):
        gray = to_gray255(next(read_frames(shared_reference / "matlab_anchors" / name)))
        assert piqe(gray)[0] == pytest.approx(expected, abs=0.005), name  # MATLAB printed 2 decimals


def test_matches_pypiqe_on_shared_images(shared_data):
    pypiqe = pytest.importorskip("pypiqe", reason="pypiqe is the independent port (pip install --no-deps pypiqe)")
    man = pd.read_csv(shared_data / "MANIFEST.csv")
    paths = man.path[man.modality != "pocus_video"].iloc[::10]
    for p in paths:
        gray = to_gray255(next(read_frames(shared_data / p)))
        assert piqe(gray)[0] == pytest.approx(pypiqe.piqe(gray.copy())[0], abs=1e-9), p
    assert len(paths) > 70


def test_uniform_and_invalid_images():
    assert piqe(np.zeros((40, 40)))[0] == 100.0
    assert piqe(np.full((40, 40), 128.0))[0] == 100.0  # uniform: no active block
    with pytest.raises(ValueError, match="NaN"):
        piqe(np.full((40, 40), np.nan))
    out = create_metric("piqe")(np.random.default_rng(0).random((50, 70)) * 255)  # padded to 64x80
    assert 0 <= out["piqe"] <= 100 and 0 <= out["piqe_active_fraction"] <= 1
