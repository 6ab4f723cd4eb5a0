"""The luma coefficients and the GGD/AGGD shape tables live in one place (issue 9, item 9): BRISQUE and NIQE
use medgap.quality._matlab's tables, and BRISQUE's rgb2gray uses medgap.io's LUMA, so they cannot drift."""

from __future__ import annotations

import numpy as np
from scipy.special import gamma

import medgap.quality.brisque as brisque
import medgap.quality.niqe as niqe
from medgap.io.frame import LUMA
from medgap.quality import _matlab


def test_one_table_of_each():
    assert brisque._GAM is _matlab.GAM and niqe._GAM is _matlab.GAM
    assert brisque._R_AGGD is _matlab.R_AGGD and niqe._R_AGGD is _matlab.R_AGGD
    assert brisque._R_GGD is _matlab.R_GGD and _matlab.LUMA is LUMA
    # the release's grid and ratios
    assert _matlab.GAM.size == 9801 and _matlab.GAM[0] == 0.2 and abs(_matlab.GAM[-1] - 10) < 1e-12
    g = 1.5
    assert np.interp(g, _matlab.GAM, _matlab.R_AGGD) == np.float64(
        np.interp(g, _matlab.GAM, gamma(2 / _matlab.GAM) ** 2 / (gamma(1 / _matlab.GAM) * gamma(3 / _matlab.GAM))))
    assert np.all(np.diff(_matlab.R_AGGD) > 0)


def test_brisque_rgb2gray_is_matlab_luma_rounded():
    rgb = np.random.default_rng(0).integers(0, 256, (8, 9, 3), dtype=np.uint8)
    f = rgb.astype(np.float64)
    want = np.floor(0.298936021293775 * f[..., 0] + 0.587043074451121 * f[..., 1] + 0.114020904255103 * f[..., 2]
                    + 0.5)
    assert np.array_equal(brisque.matlab_gray(rgb), want)
