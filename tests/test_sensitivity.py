"""The study's sensitivity analysis (issue 10, item 3): each display choice's d equals a comparison of scores
computed independently with that display (medgap.score + medgap.compare), "as run" equals the main comparison,
and the choices change one thing at a time."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import skimage.data
from PIL import Image

import medgap
from medgap.io import Display, Source
from medgap.report.study import sensitivity_table
from medgap.sensitivity import display_choices, run_sensitivity


@pytest.fixture(scope="module")
def collection(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("sens")
    (root / "ct").mkdir()
    (root / "natural").mkdir()
    for f in sorted((shared_data / "ct").glob("*.dcm"))[:3]:
        shutil.copy(f, root / "ct" / f.name)
    for name in ("camera", "coffee", "chelsea"):
        Image.fromarray(getattr(skimage.data, name)()).save(root / "natural" / f"{name}.png")
    return root


def test_choices_change_one_thing_at_a_time():
    labels = [(label, changed) for label, changed, _ in display_choices(Display())]
    assert labels == [("as run", "nothing"), ("window=minmax", "window"), ("window=lung", "window"),
                      ("short side 384 px", "scale"), ("foreground crop", "foreground")]
    resized = display_choices(Display(window="lung", resize_short=256), short_side=256)
    assert [c for c, *_ in resized] == ["as run", "window=file", "window=minmax", "native size", "foreground crop"]
    assert all(d.resize_short == 256 for label, _, d in resized if label != "native size")


def test_each_choice_matches_an_independent_comparison(collection, tmp_path):
    sources = medgap.collect([collection])
    metrics = [medgap.create_metric("brisque")]
    df = run_sensitivity(sources, metrics, tmp_path / "sens", reference="natural", compare_kwargs={"unit": "file"},
                         short_side=256)
    assert set(df.choice) == {"as run", "window=minmax", "window=lung", "short side 256 px", "foreground crop"}
    assert (tmp_path / "sens" / "sensitivity.csv").exists()
    for label, display in (("window=lung", Display(window="lung")), ("short side 256 px", Display(resize_short=256)),
                           ("as run", Display())):
        scores = medgap.score(sources, metrics, display=display)
        expected = medgap.compare(scores, reference="natural", unit="file").vs_reference()
        got = df[df.choice == label].set_index("group")
        row = expected.set_index("group_b").loc["ct"]
        assert got.loc["ct", "cohen_d"] == pytest.approx(row.cohen_d, abs=1e-9)
        assert got.loc["ct", "d_ci_low"] == pytest.approx(row.d_ci_low, abs=1e-9)
    lung, file_window = (df[(df.choice == c) & (df.group == "ct")].cohen_d.item() for c in ("window=lung", "as run"))
    assert abs(lung - file_window) > 0.05  # the CT window moves CT's d
    table = sensitivity_table(df)
    assert list(table.group) == ["ct"] and list(table.columns)[:3] == ["metric", "group", "as run"]
