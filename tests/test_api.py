"""The notebook API (``import medgap``): lazy top-level names, scoring into a DataFrame in memory, comparing
groups, without medgap.cli. Real images: scikit-image's photographs written as PNG files."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import skimage.data
from PIL import Image

import medgap
from medgap.io import Source, collect
from medgap.quality import create_metric
from medgap.scoring import score_collection
from medgap.scoring.memory import RESUME_COLUMNS

PHOTOS = ("astronaut", "camera", "coffee", "chelsea")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """natural/: 4 photos; blurred/: the same photos blurred and with noise (worse quality); one broken file."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for sub in ("natural", "blurred"):
        (root / sub).mkdir()
    for name in PHOTOS:
        img = getattr(skimage.data, name)()[:160, :160]
        Image.fromarray(img).save(root / "natural" / f"{name}.png")
        k = np.ones(5) / 5
        blurred = img.astype(float)
        for axis in (0, 1):
            blurred = np.apply_along_axis(lambda r: np.convolve(r, k, mode="same"), axis, blurred)
        blurred = np.clip(blurred + rng.normal(0, 12, blurred.shape), 0, 255).astype(np.uint8)
        Image.fromarray(blurred).save(root / "blurred" / f"{name}.png")
    (root / "blurred" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    return root


def test_import_medgap_is_light_and_lists_the_api():
    code = ("import sys, json, medgap; loaded = [m for m in ('numpy', 'pandas', 'numba', 'scipy', 'torch', 'typer') "
            "if m in sys.modules]; print(json.dumps([loaded, medgap.__all__, dir(medgap)]))")
    loaded, names, listed = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                      check=True).stdout)
    assert loaded == []
    assert {"score", "compare", "create_metric", "list_metrics", "read_frames", "to_gray255", "collect",
            "score_collection", "evaluate_run", "load_run", "validate"} <= set(names) <= set(listed)


@pytest.mark.parametrize("name", [n for n in medgap.__all__ if n != "__version__"])
def test_every_exported_name_resolves(name):
    if name == "evaluate_run" and importlib.util.find_spec("medgap.evaluation") is None:
        pytest.skip("medgap.evaluation is not in this checkout yet")
    assert callable(getattr(medgap, name))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        medgap.nope  # noqa: B018


def test_score_a_folder_into_a_dataframe_and_compare_groups(folder, tmp_path):
    scores = medgap.score(folder, metrics=["brisque", "imagestats"])
    assert isinstance(scores, pd.DataFrame)
    assert list(tmp_path.iterdir()) == [] and not list(folder.rglob("*.parquet"))  # nothing written
    assert len(scores) == 9 and scores.group.value_counts().to_dict() == {"blurred": 5, "natural": 4}
    assert not set(RESUME_COLUMNS) & set(scores.columns)
    broken = scores[scores.path.str.endswith("broken.png")]
    assert len(broken) == 1 and broken.error.notna().all() and broken.brisque.isna().all()
    # the same rows and columns as the resumable table, without its resume key
    score_collection(collect([folder]), [create_metric("brisque"), create_metric("imagestats")],
                     tmp_path / "s.parquet")
    stored = pd.read_parquet(tmp_path / "s.parquet").drop(columns=list(RESUME_COLUMNS), errors="ignore")
    assert list(stored.columns) == list(scores.columns)
    pd.testing.assert_frame_equal(stored.sort_values("item_id").reset_index(drop=True),
                                  scores.sort_values("item_id").reset_index(drop=True))
    # compare groups: the blurred, noisy copies score worse (higher BRISQUE) than the photos
    result = medgap.compare(scores, reference="natural")
    assert list(result) == ["brisque", "entropy", "rms_contrast", "background_fraction", "spectral_slope",
                            "edge_density"] and result.lower_is_better["brisque"] is True
    means = result["brisque"].describe.set_index("group")["mean"]
    assert set(means.index) == {"natural", "blurred"}
    assert means["blurred"] > means["natural"]


def test_score_takes_paths_groups_sources_and_metric_objects(folder):
    natural = sorted((folder / "natural").glob("*.png"))
    blurred = sorted((folder / "blurred").glob("c*.png"))
    by_mapping = medgap.score({"photo": natural[:2], "soft": folder / "blurred" / "camera.png"}, "piqe")
    assert list(by_mapping.group) == ["photo", "photo", "soft"]
    assert list(by_mapping.path) == [str(p) for p in natural[:2]] + [str(folder / "blurred" / "camera.png")]
    assert by_mapping.error.isna().all() and {"piqe", "piqe_noise_fraction"} <= set(by_mapping.columns)
    listed = medgap.score([*blurred, blurred[0]], metrics=[create_metric("piqe")], groups={"photo": natural[0]},
                          workers=2)
    assert list(listed.path) == [str(p) for p in blurred] + [str(natural[0])]  # sources' order, duplicate once
    assert list(listed.group) == ["blurred"] * len(blurred) + ["photo"]
    sources = [Source(natural[0], "a", {"site": "x"})]
    one = medgap.score(sources, "brisque")
    assert one.loc[0, "site"] == "x" and list(one.columns[:7]) == ["item_id", "path", "frame", "group", "width",
                                                                   "height", "site"]
    assert one.attrs["metric_versions"].startswith("brisque=")
    seen = []
    medgap.score(natural, "brisque", progress=lambda done, total, items: seen.append((done, total, items)))
    assert seen[-1] == (len(natural), len(natural), len(natural))


def test_score_says_what_is_wrong(tmp_path):
    from medgap.io import CollectionError
    from medgap.quality import UnknownMetricError

    with pytest.raises(CollectionError, match="no image files"):
        medgap.score(tmp_path)
    with pytest.raises(CollectionError, match="no such"):
        medgap.score(tmp_path / "missing")
    with pytest.raises(UnknownMetricError, match="brisque"):
        medgap.score(tmp_path, "brisqe")
    with pytest.raises(TypeError, match="cannot score a int"):
        medgap.score([3])


def test_notebook_workflow_does_not_import_the_cli(folder):
    code = (f"import sys, medgap; s = medgap.score({str(folder)!r}, ['brisque']); "
            "r = medgap.compare(s, ['brisque'], reference='natural'); "
            "m = medgap.create_metric('niqe'); g = medgap.to_gray255(next(medgap.read_frames(s.path[0]))); "
            "print(len(s), r.reference, round(m(g)['niqe'], 3) > 0, 'medgap.cli' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["9", "natural", "True", "False"]


def test_a_very_dark_file_is_scored_not_refused(tmp_path):
    """A real uint8 PNG whose values are 0 and 1 converts to a 0-255 float image that looks like [0, 1]: the
    engine's frames are converted already and must not go through the user-input check."""
    dark = (skimage.data.camera()[:160, :160] > 128).astype(np.uint8)
    Image.fromarray(dark).save(tmp_path / "dark.png")
    scores = medgap.score(tmp_path, "brisque")
    assert scores.error.isna().all(), scores.error.tolist()
    assert scores.brisque[0] == create_metric("brisque").compute(dark.astype(np.float64))["brisque"]
