"""report.comparison writes a comparison's CSV/JSON and never silently replaces a different one (issue 9,
item 7); the demo's default outputs are git-ignored."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medgap.report.comparison import ComparisonExistsError, write_comparisons
from medgap.stats import compare_metrics

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scores() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return pd.DataFrame({"group": np.repeat(["natural", "ct"], 10), "brisque": rng.normal(30, 5, 20),
                         "entropy": rng.normal(6, 1, 20)})


def test_writes_tables_and_json_at_full_precision(scores, tmp_path):
    result = compare_metrics(scores)
    stems = write_comparisons(result, tmp_path / "out")
    assert stems == {"brisque": "brisque", "entropy": "entropy"}
    doc = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert doc["brisque"]["anova"]["F"] == result["brisque"].anova.F and doc["brisque"]["lower_is_better"] is True
    groups = pd.read_csv(tmp_path / "out" / "entropy_groups.csv")
    assert groups["mean"].tolist() == pytest.approx(result["entropy"].describe["mean"].tolist(), rel=1e-15)


def test_a_different_comparison_is_refused_unless_overwrite(scores, tmp_path):
    out = tmp_path / "out"
    write_comparisons(compare_metrics(scores), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    write_comparisons(compare_metrics(scores), out)  # the same again: allowed
    other = compare_metrics(scores, ["brisque"], reference="ct")
    with pytest.raises(ComparisonExistsError, match=r"already holds a different comparison \(comparison.json: "
                                                    r"brisque, entropy\)"):
        write_comparisons(other, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    write_comparisons(other, out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["brisque_assumptions.csv", "brisque_dunn.csv",
                                                     "brisque_effect_sizes.csv", "brisque_games_howell.csv",
                                                     "brisque_groups.csv", "brisque_tukey.csv",
                                                     "brisque_vs_reference.csv", "comparison.json"]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs the git checkout")
def test_default_outputs_are_git_ignored():
    paths = ["medgap-study/report.html", "scores.parquet", "scores.csv", "scores.parquet.parts/part-1.parquet",
             "scores-comparison/comparison.json"]
    r = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert sorted(r.stdout.split()) == sorted(paths), r.stdout + r.stderr
