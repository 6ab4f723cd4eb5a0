"""Packages that import their names lazily: every name resolves to what it names (not a submodule of the same
name), and the processes that must start fast import none of the heavy libraries they do not use."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import types

import pytest

LAZY_PACKAGES = ("medgap.stats", "medgap.scoring", "medgap.segment", "medgap.pretrain", "medgap.train", "medgap.data",
                 "medgap.ensemble", "medgap.explain")


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_name_resolves_after_all_submodules_loaded(package):
    # importing a submodule sets it as an attribute of its package: a submodule named like one of the package's
    # functions (stats.effect_size was) would then shadow the function for everyone importing it afterwards
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        if package == "medgap.scoring" and info.name == "dask_engine":
            pytest.importorskip("distributed")
        importlib.import_module(f"{package}.{info.name}")
    for name in pkg.__all__:
        value = getattr(pkg, name)
        assert not isinstance(value, types.ModuleType), f"{package}.{name} is a module, not the name it exports"
        assert getattr(value, "__name__", name) == name, f"{package}.{name} is {value!r}"


def _modules_after(statement: str) -> set[str]:
    code = f"{statement}\nimport sys\nprint(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize(("statement", "absent"), [
    # the closing table of `medgap quality` (group descriptives): no SciPy stats, no statsmodels (about 1.5 s)
    ("from medgap.stats import describe_groups, decimals_for", {"scipy.stats", "statsmodels"}),
    # the command line starts the workers' fork server with this, before importing anything else
    ("from medgap.scoring.engine import prestart", {"numpy", "pandas", "medgap.scoring.run"}),
    # what the fork server and every worker import: the scoring loop, no table library (about 0.4 s each)
    ("import medgap.scoring.run", {"pandas", "pyarrow"}),
])
def test_fast_paths_import_no_heavy_library(statement, absent):
    loaded = _modules_after(statement)
    assert not (absent & loaded), f"{statement!r} imported {sorted(absent & loaded)}"


def test_the_worker_preload_scores_without_pandas():
    loaded = _modules_after("import medgap.scoring._preload")
    assert "medgap.quality.brisque" in loaded and "medgap.scoring.run" in loaded
    assert "pandas" not in loaded
