"""Shared fixtures. Real data lives in ../shared beside the checkout (CI and developers); a user's clone has
none, so tests that need it skip with the reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MEDGAP_SHARED", REPO.parent / "shared")).resolve()


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs {path} (the project's shared test data beside the checkout; set MEDGAP_SHARED to move it)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data: real public images with MANIFEST.csv."""
    return _need(SHARED / "data")


@pytest.fixture(scope="session")
def shared_reference() -> Path:
    """../shared/reference: the BRISQUE release files, OpenCV's model and MATLAB anchor values."""
    return _need(SHARED / "reference")


@pytest.fixture
def runs(tmp_path):
    """Two evaluation run directories (tests/_eval_runs.py): (run, other run, run's test rows, other's test rows);
    the other run lacks the first 4 patients."""
    from _eval_runs import write_run

    a = write_run(tmp_path / "lite0", seed=1, skill=1.5)
    b = write_run(tmp_path / "scratch", seed=2, skill=0.6, drop_patients=4)
    return tmp_path / "lite0", tmp_path / "scratch", a, b
