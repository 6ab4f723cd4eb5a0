"""medgap's BRISQUE against OpenCV contrib's ``cv2.quality.QualityBRISQUE`` on real images.

They are not expected to be equal: OpenCV's model was retrained on LIVE R2 with OpenCV's own feature code
(../shared/reference/opencv_brisque/SOURCE.md), its Gaussian filter replicates borders where the release
zero-pads, and its half-scale image comes from cv2.resize, not MATLAB's antialiased imresize. Measured with
benchmarks/brisque_agreement.py on all 785 images of ../shared/data: Spearman 0.83, Pearson 0.87, mean
|difference| 6.8 (CT, with its large constant background, differs most: mean difference -20.9). On the
every-8th-image subset used here we measured Spearman 0.82 and mean |difference| 6.8; the bounds below leave
a margin, and a broken grayscale, window or resize in medgap moves scores by far more.
"""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
from scipy import stats

from medgap.io import read_frames, to_gray255
from medgap.quality.brisque import brisque


def test_ranking_agrees_with_opencv_on_shared_images(shared_data, shared_reference):
    man = pd.read_csv(shared_data / "MANIFEST.csv")
    # the 785 still images the numbers above were measured on (not the videos or the CLIVE photos added later)
    paths = man.path[man.modality.isin(["natural", "cxr", "ct", "mr", "pocus"])].iloc[::8]
    model = cv2.quality.QualityBRISQUE_create(
        str(shared_reference / "opencv_brisque" / "brisque_model_live.yml"),
        str(shared_reference / "opencv_brisque" / "brisque_range_live.yml"),
    )
    ours, theirs = [], []
    for p in paths:
        gray = to_gray255(next(read_frames(shared_data / p)))
        ours.append(brisque(gray).score)
        theirs.append(float(model.compute(gray.astype(np.uint8))[0]))
    ours_a, theirs_a = np.array(ours), np.array(theirs)
    rho = stats.spearmanr(ours_a, theirs_a)[0]
    mad = np.abs(ours_a - theirs_a).mean()
    print(f"{len(paths)} images: Spearman {rho:.3f}, mean |diff| {mad:.2f}")
    assert len(paths) > 90
    assert rho >= 0.75
    assert mad <= 10.0
