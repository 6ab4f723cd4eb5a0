"""`medgap study --reference` (issue 9, item 7): a group that is not in the collection is refused before
anything is scored or written, naming the groups; without --reference and without a `natural` group the
first group is the reference, said so."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from medgap.cli import app

runner = CliRunner()


def _text(r) -> str:
    return " ".join(r.output.split())


@pytest.fixture()
def collection(tmp_path):
    rng = np.random.default_rng(2)
    for group in ("ct", "mr"):
        folder = tmp_path / "data" / group
        folder.mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (48, 48), dtype=np.uint8))
    return tmp_path / "data"


def test_unknown_reference_is_refused_before_scoring(collection, tmp_path):
    out = tmp_path / "run"
    r = runner.invoke(app, ["study", str(collection), "--out", str(out), "--reference", "natural"])
    assert r.exit_code == 2, r.output
    assert "--reference natural: reference group 'natural' is not one of the groups ('ct', 'mr')" in _text(r)
    assert not out.exists()  # nothing scored, no run folder


def test_did_you_mean(collection, tmp_path):
    r = runner.invoke(app, ["study", str(collection), "--out", str(tmp_path / "run"), "--reference", "CT"])
    assert r.exit_code == 2 and "did you mean 'ct'?" in _text(r), r.output


def test_default_reference_without_natural_is_the_first_group_with_a_note(collection, tmp_path):
    out = tmp_path / "run"
    r = runner.invoke(app, ["study", str(collection), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "no group 'natural': effect sizes are against 'ct', the first group" in _text(r)
    assert json.loads((out / "comparison.json").read_text())["brisque"]["reference"] == "ct"
    assert json.loads((out / "config.json").read_text())["reference"] is None
    r = runner.invoke(app, ["study", str(collection), "--out", str(out), "--reference", "mr"])  # rerun, another
    assert r.exit_code == 0, r.output  # reference: the run folder's own comparison is redone, not refused
    assert json.loads((out / "comparison.json").read_text())["brisque"]["reference"] == "mr"
