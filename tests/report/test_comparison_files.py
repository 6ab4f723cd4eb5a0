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


def _strict(text: str) -> dict:
    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def test_comparison_json_is_strict_when_a_statistic_is_infinite(tmp_path):
    """Defect: constant groups with different means (F = inf) wrote Infinity, which strict parsers refuse."""
    df = pd.DataFrame({"group": ["natural"] * 3 + ["ct"] * 3, "path": [f"{i}.png" for i in range(6)],
                       "brisque": [1.0, 1, 1, 2, 2, 2]})
    result = compare_metrics(df, n_boot=50)
    assert result["brisque"].anova.F == np.inf
    write_comparisons(result, tmp_path / "out")
    doc = _strict((tmp_path / "out" / "comparison.json").read_text())
    assert doc["brisque"]["anova"]["F"] is None and doc["brisque"]["vs_reference"][0]["cohen_d"] is None
    _strict(json.dumps(result.to_dict(), allow_nan=False))  # what `medgap compare --format json` prints


def test_files_carry_units_mixed_model_holm_dunn_and_assumptions(tmp_path):
    rng = np.random.default_rng(8)
    rows = []
    for g, mean in (("natural", 30.0), ("ct", 40.0)):
        for clip in range(6):
            level = rng.normal(mean, 5)
            rows += [dict(group=g, path=f"{g}/{clip}.mp4", group_id=f"{g}-p{clip // 2}", brisque=level + rng.normal(0, 1),
                          entropy=rng.normal(6, 1)) for _ in range(4)]
    result = compare_metrics(pd.DataFrame(rows), n_boot=100)
    write_comparisons(result, tmp_path / "out")
    doc = _strict((tmp_path / "out" / "comparison.json").read_text())
    b = doc["brisque"]
    assert b["unit"] == "patient" and b["primary"] is True and doc["entropy"]["primary"] is False
    assert b["summary"]["unit_column"] == "group_id" and b["summary"]["families"]["primary"]["size"] == 1
    assert b["summary"]["counts"] == [{"group": "ct", "n_units": 3, "n_frames": 24},
                                      {"group": "natural", "n_units": 3, "n_frames": 24}]
    assert b["mixed_model"]["converged"] in (True, False) and b["mixed_model"]["contrasts"][0]["group"] == "ct"
    vs = pd.read_csv(tmp_path / "out" / "brisque_vs_reference.csv")
    assert vs.loc[0, ["group_b", "n_units_b", "n_frames_b", "d_ci_method"]].tolist() == ["ct", 3, 24, "noncentral t"]
    for column in ("p_holm", "holm_family", "mixed_estimate", "mixed_ci_low", "cliffs_delta", "cliffs_ci_low",
                   "d_nct_low", "d_boot_low"):
        assert column in vs
    assert vs.mixed_estimate.iloc[0] == pytest.approx(result["brisque"].mixed.contrasts.estimate.iloc[0], rel=1e-12)
    assert list(pd.read_csv(tmp_path / "out" / "brisque_dunn.csv").columns)[-3:] == ["p", "p_holm", "cliffs_delta"]
    checks = pd.read_csv(tmp_path / "out" / "entropy_assumptions.csv")
    assert checks.test.tolist() == ["Brown-Forsythe (Levene, median-centred)", "Shapiro-Wilk", "Shapiro-Wilk"]
    groups = pd.read_csv(tmp_path / "out" / "brisque_groups.csv")
    assert groups[["group", "n", "n_frames"]].values.tolist() == [["ct", 3, 24], ["natural", 3, 24]]
