"""Contracts every registered metric keeps, tested over ``list_metrics()`` as timm tests every model of
``list_models()`` (issue 9, item 8):

- the columns it declares are the keys it returns, in order (``columns[0]`` is the score);
- it pickles (the scoring engine sends it to worker processes) and the copy scores the same;
- its version changes with its parameters, so that a resumed run rescores files scored with other parameters,
  including a model file rewritten at the same path.

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

from medgap.quality import create_metric, get_metric_info, list_metrics
from medgap.quality.niqe import default_model as niqe_default_model

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
}


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


@pytest.mark.parametrize("name", METRICS)
def test_declared_columns_are_the_returned_keys(name):
    metric = create_metric(name)
    result = metric(_image(name))
    assert list(result) == list(metric.info.columns)
    assert all(isinstance(v, float) and math.isfinite(v) for v in result.values()), result


@pytest.mark.parametrize("name", METRICS)
def test_metric_pickles_and_the_copy_scores_the_same(name, tmp_path):
    variants = [create_metric(name)]
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
    default = create_metric(name)
    one = create_metric(name, **PARAMETERS[name](tmp_path / "one", 1))
    two = create_metric(name, **PARAMETERS[name](tmp_path / "two", 2))
    assert len({default.version, one.version, two.version}) == 3
    assert create_metric(name, **PARAMETERS[name](tmp_path / "one", 1)).version == one.version
    image = _image(name)
    scores = [m(image)[m.info.columns[0]] for m in (default, one, two)]
    assert len(set(scores)) == 3  # the parameters do change the score, so the versions must differ


@pytest.mark.parametrize("name", sorted(PARAMETERS))
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


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_version_changes_when_a_model_file_is_rewritten_in_place(name, tmp_path):
    """The version counts a model file's content, not only its path: a model refitted into the same file makes a
    resumed run rescore (the version hashed str(path) only, and kept the old model's scores)."""
    before = create_metric(name, **PARAMETERS[name](tmp_path / "same", 1)).version
    after = create_metric(name, **PARAMETERS[name](tmp_path / "same", 2)).version
    assert before != after
