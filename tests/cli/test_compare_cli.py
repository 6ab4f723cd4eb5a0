"""`medgap compare` as a user runs it (issue 9, item 7): an unknown --reference is an error naming the groups,
the outputs go to a folder of their own and an earlier, different comparison is not overwritten, small values
keep significant digits, piped output is not wrapped, and --format text|markdown|json."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from medgap.cli import app

runner = CliRunner()


def _text(r) -> str:
    return " ".join(r.output.split())


@pytest.fixture()
def scores(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"group": np.repeat(["natural", "ct", "mr"], 20), "brisque": rng.normal(30, 5, 60),
                       "edge_density": rng.normal(0.052, 0.004, 60)})
    path = tmp_path / "scores.csv"
    df.to_csv(path, index=False)
    return path


def test_unknown_reference_exits_2_naming_the_groups(scores, tmp_path):
    r = runner.invoke(app, ["compare", str(scores), "--reference", "natral"])
    assert r.exit_code == 2, r.output
    assert ("reference group 'natral' is not one of the groups ('ct', 'mr', 'natural'); did you mean 'natural'?"
            in _text(r))
    assert not (tmp_path / "scores-comparison").exists()  # refused before anything is written


def test_without_natural_the_default_reference_is_the_first_group_with_a_note(tmp_path):
    path = tmp_path / "s.csv"
    pd.DataFrame({"group": np.repeat(["mr", "ct"], 4), "brisque": np.arange(8.0)}).to_csv(path, index=False)
    r = runner.invoke(app, ["compare", str(path)])
    assert r.exit_code == 0, r.output
    assert "no group 'natural': effect sizes are against 'ct', the first group" in _text(r)
    assert "d vs ct" in r.output


def test_default_output_is_a_folder_per_scores_table(scores, tmp_path):
    other = tmp_path / "other.csv"
    pd.read_csv(scores).assign(brisque=lambda d: d.brisque + 1).to_csv(other, index=False)
    for path in (scores, other):
        r = runner.invoke(app, ["compare", str(path)])
        assert r.exit_code == 0, r.output
    assert not (tmp_path / "comparison.json").exists()
    first = json.loads((tmp_path / "scores-comparison" / "comparison.json").read_text())
    second = json.loads((tmp_path / "other-comparison" / "comparison.json").read_text())
    assert second["brisque"]["describe"][0]["mean"] == pytest.approx(first["brisque"]["describe"][0]["mean"] + 1)
    assert (tmp_path / "scores-comparison" / "edge_density_tukey.csv").exists()
    assert f"CSV and JSON: {tmp_path / 'other-comparison'}" in _text(r)


def test_a_different_earlier_comparison_is_not_overwritten(scores, tmp_path):
    out = tmp_path / "stats"
    r = runner.invoke(app, ["compare", str(scores), "--out-dir", str(out)])
    assert r.exit_code == 0, r.output
    before = (out / "comparison.json").read_text()
    r = runner.invoke(app, ["compare", str(scores), "--out-dir", str(out)])  # the same comparison: rewritten
    assert r.exit_code == 0 and (out / "comparison.json").read_text() == before, r.output
    r = runner.invoke(app, ["compare", str(scores), "--out-dir", str(out), "--metric", "brisque", "--reference", "ct"])
    assert r.exit_code == 2, r.output
    assert "already holds a different comparison" in _text(r) and "--overwrite" in _text(r)
    assert (out / "comparison.json").read_text() == before
    r = runner.invoke(app, ["compare", str(scores), "--out-dir", str(out), "--metric", "brisque", "--reference", "ct",
                            "--overwrite"])
    assert r.exit_code == 0, r.output
    assert list(json.loads((out / "comparison.json").read_text())) == ["brisque"]
    assert not (out / "edge_density_groups.csv").exists()  # the earlier comparison's files went with it
    assert sorted(p.name for p in out.iterdir()) == [
        "brisque_assumptions.csv", "brisque_dunn.csv", "brisque_effect_sizes.csv", "brisque_games_howell.csv",
        "brisque_groups.csv", "brisque_tukey.csv", "brisque_vs_reference.csv", "comparison.json"]


def test_small_values_print_with_significant_digits(scores, tmp_path):
    r = runner.invoke(app, ["compare", str(scores), "--metric", "edge_density", "--out-dir", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    d = pd.read_csv(tmp_path / "o" / "edge_density_groups.csv").set_index("group")
    assert f"{d.loc['ct', 'mean']:.4f} ({d.loc['ct', 'ci_low']:.4f} to {d.loc['ct', 'ci_high']:.4f})" in r.output
    assert "0.1 (0.0 to 0.1)" not in r.output and "0.1 (0.1 to 0.1)" not in r.output


def test_piped_output_is_not_wrapped(tmp_path):
    """python -m medgap compare ... > file: no line of the statistics or the table is cut at 80 columns."""
    long = "a-group-with-a-rather-long-descriptive-name-from-a-manifest"
    rng = np.random.default_rng(1)
    path = tmp_path / "s.csv"
    pd.DataFrame({"group": np.repeat([long + "-1", long + "-2", "natural"], 6),
                  "brisque": rng.normal(30, 5, 18)}).to_csv(path, index=False)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    r = subprocess.run([sys.executable, "-m", "medgap", "compare", str(path)], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(line.startswith("One-way ANOVA: F(2, 15) = ") and "eta-squared = " in line for line in lines)
    assert any(line.startswith("Welch's ANOVA: F(") and "Kruskal-Wallis: H(2) = " in line for line in lines)
    rows = [line for line in lines if long + "-1" in line and line.startswith("│")]  # the table's row
    assert len(rows) == 1 and "reference" not in rows[0] and rows[0].rstrip().endswith("│")
    assert max(len(line) for line in lines) > 80


def test_format_json_is_machine_readable(scores):
    r = runner.invoke(app, ["compare", str(scores), "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert list(doc) == ["brisque", "edge_density"] and doc["brisque"]["lower_is_better"] is True
    assert doc["edge_density"]["lower_is_better"] is None and doc["brisque"]["reference"] == "natural"
    written = json.loads((scores.parent / "scores-comparison" / "comparison.json").read_text())
    assert doc["brisque"]["anova"] == written["brisque"]["anova"]


def test_format_markdown(scores):
    r = runner.invoke(app, ["compare", str(scores), "--format", "markdown", "--metric", "brisque"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "## brisque (lower is better)"
    assert "| group | n | mean (95% CI) | d vs natural (95% CI) |" in lines
    assert "| --- | ---: | ---: | ---: |" in lines
    assert any(line.startswith("| natural | 20 | ") and line.endswith("| reference |") for line in lines)
    assert any(line.startswith("One-way ANOVA: F(2, 57) = ") for line in lines)


def test_unknown_format_is_a_usage_error(scores):
    r = runner.invoke(app, ["compare", str(scores), "--format", "xlsx"])
    assert r.exit_code == 2 and "--format 'xlsx' is not one of text, markdown, json" in _text(r), r.output
    r = runner.invoke(app, ["compare", str(scores), "--format", "markdwn"])
    assert r.exit_code == 2 and "Did you mean 'markdown'?" in _text(r), r.output
