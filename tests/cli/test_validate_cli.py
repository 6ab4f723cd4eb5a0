"""`medgap validate` and `medgap.validate` end to end on 30 real CLIVE photos (LIVE In the Wild Image Quality
Challenge database, (c) 2015 The University of Texas at Austin, LIVE; see ../shared/data/iqa/clive/NOTICE.txt):
the command writes its files and prints the table, its numbers agree with scipy on the written per-image scores,
and a bad ratings table exits 2 naming the column or the files."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from medgap.cli import app

runner = CliRunner()
N = 30


def _text(r) -> str:
    return " ".join(r.output.split())


@pytest.fixture(scope="module")
def clive(shared_data):
    table = pd.read_csv(shared_data / "iqa" / "clive" / "mos.csv").head(N)
    return shared_data, table


@pytest.fixture()
def ratings(clive, tmp_path):
    """The first 30 rows of mos.csv with absolute paths, in a folder of the test's own."""
    data, table = clive
    path = tmp_path / "ratings.csv"
    table.assign(path=[str(data / p) for p in table.path]).to_csv(path, index=False)
    return path


def _strict(text: str):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_command_writes_files_and_prints_the_table(ratings, tmp_path):
    out = tmp_path / "out"
    r = runner.invoke(app, ["validate", "--ratings", str(ratings), "--metric", "brisque", "--metric", "niqe",
                            "--metric", "piqe", "--out", str(out), "--resamples", "100"],
                      env={"COLUMNS": "300"})  # a wide terminal: table cells on one line whatever ran before
    assert r.exit_code == 0, r.output
    text = _text(r)
    for word in ("SROCC", "KROCC", "PLCC", "RMSE", "brisque", "niqe", "piqe", "lower", "30"):
        assert word in text, r.output  # (a narrow column may wrap "lower is better" across lines)
    table = pd.read_csv(out / "validity.csv")
    assert list(table.metric) == ["brisque", "niqe", "piqe"] and set(table.n) == {N}
    assert list(table.direction) == ["lower is better"] * 3  # all three: lower scores are better quality
    assert (table.srocc_low < table.srocc).all() and (table.srocc < table.srocc_high).all()
    doc = _strict((out / "validity.json").read_text())
    assert doc["unit"] == "image" and doc["n_resamples"] == 100 and len(doc["metrics"]) == 3
    png = (out / "validity.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    scores = pd.read_csv(out / "validity_scores.csv")
    assert len(scores) == N and {"file", "path", "mos", "mos_std", "brisque", "niqe", "piqe"} <= set(scores.columns)
    # the table's rank correlations, recomputed with scipy from the written per-image scores (signed by direction)
    for row in table.itertuples():
        rho = stats.spearmanr(scores[row.metric], scores.mos).statistic
        tau = stats.kendalltau(scores[row.metric], scores.mos).statistic
        assert row.srocc == pytest.approx(-rho, abs=1e-12) and row.krocc == pytest.approx(-tau, abs=1e-12)


def test_library_call_reads_paths_relative_to_a_folder_above_the_table(clive, tmp_path):
    """Like ../shared/data/iqa/clive/mos.csv, whose paths (iqa/clive/N.JPG) are relative to the data folder."""
    import medgap

    data, table = clive
    sub = table.head(12)
    (tmp_path / "iqa" / "clive").mkdir(parents=True)
    for p in sub.path:
        shutil.copy(data / p, tmp_path / p)
    csv = tmp_path / "iqa" / "clive" / "mos.csv"
    sub.to_csv(csv, index=False)
    v = medgap.validate(csv, ["brisque"], n_resamples=0)
    assert v.root == tmp_path
    assert v.to_frame().n.tolist() == [12]
    assert math.isnan(v.to_frame().srocc_low[0])
    # the same images scored directly
    direct = medgap.score([str(tmp_path / p) for p in sub.path], ["brisque"])
    np.testing.assert_allclose(v.data.brisque.to_numpy(), direct.brisque.to_numpy())


@pytest.mark.parametrize("edit, words", [
    (lambda t: t.drop(columns="mos"), ["no column 'mos'", "path, mos_std", "--mos-column"]),
    (lambda t: t.assign(mos=t.mos.astype(object).where(t.index != 3, "good")),
     ["'mos' must hold numbers", "line(s) 5", "'good'"]),
    (lambda t: t.assign(path=t.path.str.replace(".JPG", ".png", regex=False).where(t.index < 4, t.path)),
     ["4 of 30 image files not found", "1000.png", "absolute ones are used as they are"]),
    (lambda t: pd.concat([t, t.head(1)]), ["listed more than once"]),
])
def test_a_bad_ratings_table_exits_2_naming_what_to_fix(ratings, tmp_path, edit, words):
    bad = tmp_path / "bad.csv"
    edit(pd.read_csv(ratings)).to_csv(bad, index=False)
    r = runner.invoke(app, ["validate", "--ratings", str(bad), "--metric", "brisque", "--out", str(tmp_path / "o"),
                            "--resamples", "0"])
    assert r.exit_code == 2, r.output
    text = _text(r)
    assert "error:" in text and str(bad) in text
    for w in words:
        assert w in text, (w, text)
    assert not (tmp_path / "o" / "validity.csv").exists()


def test_options_out_of_range_exit_2(ratings, tmp_path):
    r = runner.invoke(app, ["validate", "--ratings", str(ratings), "--interval", "bcaa", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "Did you mean 'bca'?" in _text(r)
    r = runner.invoke(app, ["validate", "--ratings", str(tmp_path / "none.csv"), "--out", str(tmp_path)])
    assert r.exit_code == 2 and "no such ratings table" in _text(r)
    r = runner.invoke(app, ["validate", "--ratings", str(ratings), "--metric", "niqe:model=none.npz", "--out",
                            str(tmp_path)])
    assert r.exit_code == 2 and "--metric niqe:model=none.npz" in _text(r), r.output


def test_a_metric_takes_parameters_as_in_quality(ratings, tmp_path):
    """brisque:model=...,range=... naming the packaged release files is the default model under another name:
    the same scores as plain brisque."""
    from importlib.resources import files

    data = files("medgap.quality.brisque") / "data"
    spec = f"brisque:model={data / 'allmodel'},range={data / 'allrange'}"
    for name, metric in (("named", spec), ("plain", "brisque")):
        r = runner.invoke(app, ["validate", "--ratings", str(ratings), "--metric", metric, "--resamples", "0",
                                "--out", str(tmp_path / name)])
        assert r.exit_code == 0, r.output
    named, plain = (pd.read_csv(tmp_path / n / "validity_scores.csv") for n in ("named", "plain"))
    np.testing.assert_allclose(named.brisque.to_numpy(), plain.brisque.to_numpy(), atol=1e-12)


def test_an_image_that_cannot_be_read_is_left_out_and_exits_1(ratings, tmp_path):
    table = pd.read_csv(ratings)
    broken = tmp_path / "broken.JPG"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg")
    table.loc[0, "path"] = str(broken)
    bad = tmp_path / "one_broken.csv"
    table.to_csv(bad, index=False)
    r = runner.invoke(app, ["validate", "--ratings", str(bad), "--metric", "brisque", "--out", str(tmp_path / "o"),
                            "--resamples", "0"])
    assert r.exit_code == 1, r.output
    assert "brisque: 1 of 30 rated image(s) have no score and are left out" in _text(r)
    assert pd.read_csv(tmp_path / "o" / "validity.csv").n.tolist() == [N - 1]
