"""`medgap study` end to end: scores, statistics that match SciPy/pingouin, and a self-contained report
without patient identifiers."""

from __future__ import annotations

import shutil

import pandas as pd
import pingouin as pg
import pydicom
import pytest
from scipy import stats
from typer.testing import CliRunner

from medgap.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def small_study(shared_data, tmp_path_factory):
    """12 images per modality of ../shared/data (CT incl. DICOM) in group folders."""
    root = tmp_path_factory.mktemp("study") / "data"
    man = pd.read_csv(shared_data / "MANIFEST.csv")
    for mod in ("natural", "cxr", "ct", "mr", "pocus"):
        paths = man.path[man.modality == mod]
        picked = list(paths[paths.str.endswith(".dcm")][:6]) + list(paths[~paths.str.endswith(".dcm")][:12])
        for p in picked[:12]:
            (root / mod).mkdir(parents=True, exist_ok=True)
            shutil.copy(shared_data / p, root / mod / p.split("/")[-1])
    out = root.parent / "run"
    r = runner.invoke(app, ["study", str(root), "--out", str(out), "--metric", "brisque", "--metric", "imagestats"])
    assert r.exit_code == 0, r.output
    return root, out, r.output


def test_study_writes_scores_stats_and_report(small_study):
    root, out, output = small_study
    for name in ("scores.parquet", "report.html", "comparison.json", "brisque_groups.csv", "brisque_tukey.csv",
                 "brisque_games_howell.csv", "brisque_effect_sizes.csv", "entropy_groups.csv", "config.json"):
        assert (out / name).exists(), name
    assert "Report:" in output and "One-way ANOVA" in output


def test_study_numbers_match_independent_implementations(small_study):
    _, out, _ = small_study
    scores = pd.read_parquet(out / "scores.parquet")
    groups = pd.read_csv(out / "brisque_groups.csv").set_index("group")
    clean = scores.dropna(subset=["brisque"])
    F, p = stats.f_oneway(*[v.to_numpy() for _, v in clean.groupby("group").brisque])
    import json

    cmp = json.loads((out / "comparison.json").read_text())["brisque"]
    assert cmp["anova"]["F"] == pytest.approx(F, rel=1e-8)
    assert groups.loc["pocus", "mean"] == pytest.approx(clean[clean.group == "pocus"].brisque.mean(), rel=1e-12)
    eff = pd.read_csv(out / "brisque_effect_sizes.csv")
    row = eff[(eff.group_a == "ct") & (eff.group_b == "natural")].iloc[0]
    d = pg.compute_effsize(clean[clean.group == "natural"].brisque, clean[clean.group == "ct"].brisque)
    assert row.cohen_d == pytest.approx(d, rel=1e-8)


def test_report_is_self_contained_and_has_no_patient_identifiers(small_study, shared_data):
    root, out, _ = small_study
    page = (out / "report.html").read_text()
    assert "<img src=\"data:image/" in page and "http://" not in page and "https://" not in page
    assert "d vs natural (95% CI)" in page and "One-way ANOVA: F(4, " in page
    for dcm in root.rglob("*.dcm"):
        ds = pydicom.dcmread(dcm, stop_before_pixels=True)
        for tag in ("PatientName", "PatientID", "PatientBirthDate"):
            value = str(ds.get(tag, "")).strip()
            if len(value) > 3:
                assert value not in page, (dcm.name, tag)


def test_rerun_reuses_scores(small_study):
    root, out, _ = small_study
    r = runner.invoke(app, ["study", str(root), "--out", str(out), "--metric", "brisque", "--metric", "imagestats"])
    assert r.exit_code == 0 and "60 files already done" in " ".join(r.output.split())


def test_study_report_has_the_paper_parts_and_figure_files(small_study):
    _, out, _ = small_study
    page = (out / "report.html").read_text()
    assert "<nav>" in page and "<b>Figure 1.</b>" in page and 'id="methods"' in page
    assert page.count("Unit of analysis:") == 1 and "counts as one observation" not in page
    for suffix in (".png", ".svg"):
        assert (out / "figures" / f"figure_1_forest{suffix}").stat().st_size > 0
