"""Contracts every registered metric keeps, tested over ``list_metrics()`` as timm tests every model of
``list_models()`` (issue 9, item 8):

- the columns it declares are the keys it returns, in order (``columns[0]`` is the score);
- it pickles (the scoring engine sends it to worker processes) and the copy scores the same;
- its version changes with its parameters, so that a resumed run rescores files scored with other parameters,
  including a model file rewritten at the same path; the file is hashed once, when the metric is made;
- a network metric (tests/_network_metric.py's ``testnet`` is registered here, so every test below covers one)
  scores the same one frame at a time as in a batch.

Each factory's parameters must have non-default values below (``PARAMETERS``): a new metric with parameters
fails ``test_every_parameter_of_every_metric_is_exercised`` until it is added there.
"""

from __future__ import annotations

import inspect
import math
import pickle
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from skimage import data as skdata

from _metrics import cnn_wsp_file, make_metric

from medgap.quality import create_metric, get_metric_info, list_metrics
from medgap.quality.niqe import default_model as niqe_default_model

try:  # a real network metric (a fixed-seed torch conv net), so the contracts cover the network kind too
    import _network_metric  # noqa: F401
except ImportError:  # no torch: the hand-crafted metrics only
    pass

METRICS = list_metrics()


def _image(name: str) -> np.ndarray:
    """A real photo as the scoring engine passes it: float64 on the 0-255 scale, gray (HxW) or RGB (HxWx3),
    cropped to 256x256 to keep the tests fast (NIQE needs 96x96 blocks, two of them at least)."""
    if get_metric_info(name).input == "rgb":
        return skdata.astronaut()[:256, 128:384].astype(np.float64)
    return skdata.camera()[96:352, 128:384].astype(np.float64)


def _brisque_files(folder: Path, rho_shift: float) -> dict[str, Path]:
    """The release's LIBSVM model with its bias moved by ``rho_shift`` (the score moves by -rho_shift), and its
    range file, written to ``folder``."""
    src = resources.files("medgap.quality.brisque") / "data"
    model = (src / "allmodel").read_text().replace("rho -153.591", f"rho {-153.591 + rho_shift}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "allmodel").write_text(model)
    (folder / "allrange").write_text((src / "allrange").read_text())
    return {"model": folder / "allmodel", "range": folder / "allrange"}


def _niqe_file(folder: Path, mu_shift: float) -> dict[str, Path]:
    """The release's pristine model with its mean moved by ``mu_shift``, saved as .npz."""
    base = niqe_default_model()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pristine.npz"
    type(base)(base.mu + mu_shift, base.cov).save(path)
    return {"model": path}


PARAMETERS: dict[str, Callable[[Path, int], dict]] = {
    # metric -> (folder, variant 1 or 2) -> non-default parameters; two variants differ from each other
    "brisque": lambda folder, k: _brisque_files(folder, 3.0 * k),
    "niqe": lambda folder, k: _niqe_file(folder, 0.05 * k),
    "testnet": lambda folder, k: {"seed": k},  # another seed, other weights
    "cnn-wsp": lambda folder, k: {**cnn_wsp_file(folder, k), "fold": 0},  # required: a trained model file
}
FILE_PARAMETERS = ["brisque", "niqe", "cnn-wsp"]
"""Metrics whose parameters name model files."""


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


@pytest.mark.parametrize("name", METRICS)
def test_declared_columns_are_the_returned_keys(name, tmp_path):
    metric = make_metric(name, tmp_path)
    result = metric(_image(name))
    assert list(result) == list(metric.info.columns)
    assert all(isinstance(v, float) and math.isfinite(v) for v in result.values()), result


@pytest.mark.parametrize("name", METRICS)
def test_metric_pickles_and_the_copy_scores_the_same(name, tmp_path):
    variants = [make_metric(name, tmp_path)]
    if name in PARAMETERS:
        variants.append(create_metric(name, **PARAMETERS[name](tmp_path, 1)))
    image = _image(name)
    for metric in variants:
        copy = pickle.loads(pickle.dumps(metric))
        assert copy.version == metric.version and copy.name == metric.name
        assert _same(copy(image), metric(image))


def test_every_parameter_of_every_metric_is_exercised(tmp_path):
    for name in METRICS:
        declared = set(inspect.signature(get_metric_info(name).factory).parameters)
        covered = set(PARAMETERS[name](tmp_path / name, 1)) if name in PARAMETERS else set()
        assert declared == covered, f"{name}: give non-default values of {sorted(declared - covered)} in PARAMETERS"


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_version_changes_with_every_parameter(name, tmp_path):
    """Other parameter values, other versions (a resumed run rescores); the same values, the same version."""
    default = make_metric(name, tmp_path)  # a required parameter gets a third value
    one = create_metric(name, **PARAMETERS[name](tmp_path / "one", 1))
    two = create_metric(name, **PARAMETERS[name](tmp_path / "two", 2))
    assert len({default.version, one.version, two.version}) == 3
    assert create_metric(name, **PARAMETERS[name](tmp_path / "one", 1)).version == one.version
    image = _image(name)
    scores = [m(image)[m.info.columns[0]] for m in (default, one, two)]
    assert len(set(scores)) == 3  # the parameters do change the score, so the versions must differ


@pytest.mark.parametrize("name", FILE_PARAMETERS)
def test_a_model_file_rewritten_in_place_is_read_again(name, tmp_path):
    """A notebook fits a model, scores, refits into the same file and scores again: the second metric uses the
    new file (the loaders cached by path only and kept the first)."""
    image = _image(name)
    first = create_metric(name, **PARAMETERS[name](tmp_path / "same", 1))
    before = first(image)
    params = PARAMETERS[name](tmp_path / "same", 2)  # rewrites the same path(s)
    after = create_metric(name, **params)(image)
    fresh = create_metric(name, **PARAMETERS[name](tmp_path / "other", 2))(image)
    assert _same(after, fresh) and not _same(after, before)


@pytest.mark.parametrize("name", FILE_PARAMETERS)
def test_version_changes_when_a_model_file_is_rewritten_in_place(name, tmp_path):
    """The version counts a model file's content, not only its path: a model refitted into the same file makes a
    resumed run rescore (the version hashed str(path) only, and kept the old model's scores)."""
    before = create_metric(name, **PARAMETERS[name](tmp_path / "same", 1)).version
    after = create_metric(name, **PARAMETERS[name](tmp_path / "same", 2)).version
    assert before != after


@pytest.mark.parametrize("name", FILE_PARAMETERS)
def test_the_model_file_is_hashed_once_when_the_metric_is_made(name, tmp_path):
    """The version is bound at creation (it was re-read and re-hashed each time it was asked for, ~0.3 ms per
    image): a metric keeps its version when its file changes or goes; a metric made after gets the new one."""
    params = PARAMETERS[name](tmp_path / "m", 1)
    metric = create_metric(name, **params)
    version = metric.version
    PARAMETERS[name](tmp_path / "m", 2)  # rewritten in place
    assert metric.version == version and pickle.loads(pickle.dumps(metric)).version == version
    assert create_metric(name, **params).version != version
    for path in params.values():
        if isinstance(path, (str, Path)):  # the file parameters (cnn-wsp's fold is a number)
            Path(path).unlink()
    assert metric.version == version


@pytest.mark.parametrize("name", list_metrics(network=True))
def test_a_network_metric_scores_a_batch_as_frame_by_frame(name, tmp_path):
    metric = make_metric(name, tmp_path)
    assert metric.network and metric.info.network
    images = [_image(name), _image(name)[::-1].copy(), _image(name)[:200, :180].copy()]
    one = [metric(x) for x in images]
    for size in (1, 2, 3):
        got = metric.batch(images, batch_size=size, device="cpu")
        assert [list(r) for r in got] == [list(metric.info.columns)] * 3
        for a, b in zip(got, one):
            assert a == pytest.approx(b, rel=1e-5, abs=1e-6)


def test_the_network_flag_is_the_registry_s():
    network = set(list_metrics(network=True))
    assert network == {n for n in METRICS if get_metric_info(n).network}
    assert {"brisque", "niqe", "piqe", "imagestats"}.isdisjoint(network)
    assert set(list_metrics(network=False)) | network == set(METRICS)
