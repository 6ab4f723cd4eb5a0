"""Group data shaped like the published study (means ImageNet 21.7, CXR 13.2, CT 35.1, MR 31.6, POCUS 56.6)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

# mean, SD, n per group; SDs 10-15 and unequal n, as BRISQUE in the study
STUDY_GROUPS = {"natural": (21.7, 12.0, 150), "cxr": (13.2, 10.0, 80), "ct": (35.1, 15.0, 60),
                "mr": (31.6, 11.0, 70), "pocus": (56.6, 14.0, 200)}


@pytest.fixture(scope="session")
def study() -> pd.DataFrame:
    """One row per image (group, brisque), seeded; two failed images (NaN) and one +inf score."""
    rng = np.random.default_rng(20240607)
    frames = [pd.DataFrame({"group": g, "brisque": rng.normal(m, s, n)}) for g, (m, s, n) in STUDY_GROUPS.items()]
    df = pd.concat(frames, ignore_index=True)
    df.loc[[3, 170], "brisque"] = np.nan  # natural, cxr
    df.loc[500, "brisque"] = np.inf  # pocus (rows 360-559)
    return df


@pytest.fixture(scope="session")
def clean(study: pd.DataFrame) -> pd.DataFrame:
    """The study table without missing scores, for the reference implementations."""
    return study[np.isfinite(study.brisque)].reset_index(drop=True)


@pytest.fixture(scope="session")
def samples(clean: pd.DataFrame) -> dict[str, np.ndarray]:
    """Finite scores per group in sorted group order (the order medgap.stats, pingouin and statsmodels use)."""
    return {g: v.to_numpy() for g, v in clean.groupby("group").brisque}


@pytest.fixture(scope="session")
def clips() -> pd.DataFrame:
    """Frames of clips (one row per frame: group, group_id, path, frame, brisque), seeded.

    natural: 24 one-frame photos of 24 patients; ct: 8 patients x 2 files x 1-3 frames; pocus: 6 patients, 10
    clips, one of them 60 frames long at a high level and nine of 3 frames. Frames of a clip share its level
    (clip SD 8, frame SD 2: intra-clip correlation about 0.94), so the long clip dominates a per-frame analysis.
    """
    rng = np.random.default_rng(11)
    rows = []

    def clip(group: str, patient: str, path: str, n: int, mean: float) -> None:
        level = rng.normal(mean, 8.0)
        rows.extend(dict(group=group, group_id=patient, path=path, frame=f, brisque=level + rng.normal(0, 2.0))
                    for f in range(n))

    for i in range(24):
        clip("natural", f"n{i}", f"natural/{i}.jpg", 1, 25.0)
    for p in range(8):
        for j in range(2):
            clip("ct", f"c{p}", f"ct/{p}_{j}.dcm", 1 + (p + j) % 3, 30.0)
    clip("pocus", "u0", "pocus/long.mp4", 60, 55.0)
    for k in range(9):
        clip("pocus", f"u{k % 6}", f"pocus/{k}.mp4", 3, 32.0)
    return pd.DataFrame(rows)
