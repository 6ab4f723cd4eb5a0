"""Display choices in scoring (issue 10, item 3): ``--window``, ``--resize-short`` and ``--foreground`` change
what the metrics see, identically to preparing each frame with :class:`medgap.io.Display` by hand, and they are
part of the resume key: another window rescores every file, the same one resumes."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import medgap
from medgap.cli import app
from medgap.io import Display, read_frames
from medgap.scoring import score_collection
from medgap.io import Source

runner = CliRunner()


@pytest.fixture(scope="module")
def ct_files(shared_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ct")
    for f in sorted((shared_data / "ct").glob("*.dcm"))[:3]:
        shutil.copy(f, folder / f.name)
    return sorted(folder.glob("*.dcm"))


def test_a_window_scores_what_display_prepares(ct_files):
    brisque = medgap.create_metric("brisque")
    lung = Display(window="lung", resize_short=256, foreground=True)
    df = medgap.score(ct_files, ["brisque"], display=lung)
    expected = [brisque(lung.prepare(next(read_frames(f))))["brisque"] for f in ct_files]
    np.testing.assert_allclose(df.brisque.to_numpy(), expected, rtol=0, atol=1e-9)
    default = medgap.score(ct_files, ["brisque"])
    assert np.abs(default.brisque.to_numpy() - df.brisque.to_numpy()).min() > 1  # the choice matters on CT


def test_the_display_is_part_of_the_resume_key(ct_files, tmp_path):
    sources = [Source(f, "ct") for f in ct_files]
    out = tmp_path / "s.parquet"
    metrics = [medgap.create_metric("brisque")]
    first = score_collection(sources, metrics, out, display=Display(window="lung"), prefetch=False)
    assert first.files_scored == 3
    again = score_collection(sources, metrics, out, display=Display(window="lung"), prefetch=False)
    assert again.files_scored == 0 and again.files_skipped == 3  # same display: resumed
    lung = pd.read_parquet(out).brisque.to_numpy()
    other = score_collection(sources, metrics, out, display=Display(window="bone"), prefetch=False)
    assert other.files_scored == 3  # another window: every file rescored
    assert not np.allclose(pd.read_parquet(out).brisque.to_numpy(), lung)


def test_the_command_line_options(ct_files, tmp_path):
    out = tmp_path / "s.csv"
    r = runner.invoke(app, ["quality", str(ct_files[0].parent), "--window", "lung", "--resize-short", "256",
                            "--foreground", "--out", str(out)])
    assert r.exit_code == 0, r.output
    by_cli = pd.read_csv(out).sort_values("path").brisque.to_numpy()
    by_api = medgap.score(ct_files, ["brisque"], display=Display("lung", 256, True)).sort_values("path")
    np.testing.assert_allclose(by_cli, by_api.brisque.to_numpy(), atol=1e-9)
    r = runner.invoke(app, ["quality", str(ct_files[0].parent), "--window", "lugn", "--out", str(out)])
    assert r.exit_code == 2 and "Did you mean 'lung'?" in " ".join(r.output.split()), r.output
