"""Text from file names, group and column names is printed as plain text (issue 8, defect 11): rich markup
in it is not interpreted (``[old]`` was eaten, a group ``[/]`` crashed the table), and control characters
(an ANSI escape in a file name) are shown escaped instead of reaching the terminal. Output file names
derived from column names stay inside --out-dir (defect 12)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from medgap.cli import app
from medgap.cli._common import plain, safe_file_stem

runner = CliRunner()


def _png(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 256, (64, 64), dtype=np.uint8))


def test_plain_escapes_markup_and_control_characters():
    from rich.console import Console

    con = Console(record=True, width=200, color_system=None)
    for text in ["scan[old].png", "[/]", "[bold red]x[/]", "a\\", "\x1b[31mred\x1b[0m\r\t", "rlo\u202egnp.exe"]:
        con.print(plain(text), soft_wrap=True)
    out = con.export_text()
    assert "scan[old].png" in out and "[/]" in out and "[bold red]x[/]" in out and "a\\" in out
    assert "\\x1b[31mred\\x1b[0m\\r\\t" in out and "rlo\\u202egnp.exe" in out
    assert "\x1b" not in out and "\r" not in out and "\u202e" not in out


def test_failed_file_names_print_intact_and_escape_sequences_escaped(tmp_path):
    folder = tmp_path / "g"
    _png(folder / "fine.png")
    (folder / "scan[old].png").write_text("not an image")
    (folder / "evil\x1b[31mred.png").write_text("not an image either")
    r = runner.invoke(app, ["quality", str(folder), "--out", str(tmp_path / "s.csv")])
    assert r.exit_code == 1, r.output
    assert "scan[old].png" in r.output
    assert "evil\\x1b[31mred.png" in r.output and "\x1b" not in r.output


def test_group_named_like_markup_prints_in_quality_and_compare(tmp_path):
    _png(tmp_path / "a" / "1.png", 1)
    _png(tmp_path / "a" / "2.png", 2)
    _png(tmp_path / "b" / "1.png", 3)
    _png(tmp_path / "b" / "2.png", 4)
    out = tmp_path / "s.csv"
    r = runner.invoke(app, ["quality", "--group", f"[/]={tmp_path / 'a'}", "--group", f"[red]={tmp_path / 'b'}",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "[/]" in r.output and "[red]" in r.output
    r = runner.invoke(app, ["compare", str(out), "--out-dir", str(tmp_path / "stats")])
    assert r.exit_code == 0, r.output
    assert "[/]" in r.output and "[red]" in r.output


def test_safe_file_stem():
    taken = {"comparison"}
    stems = [safe_file_stem(n, taken) for n in ["brisque", "../../evil", "/etc/passwd", "..", "a b", "A B",
                                                 "comparison", "é", ""]]
    assert stems == ["brisque", "_.._evil", "_etc_passwd", "column", "a_b", "A_B-2", "comparison-2", "_",
                     "column-2"]


@pytest.mark.parametrize("column", ["../../evil", "/tmp/abs", "..", "sub/dir", "a\x1bb"])
def test_metric_named_like_a_path_stays_inside_out_dir(tmp_path, column):
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"group": np.repeat(["x", "y"], 4), column: rng.normal(0, 1, 8)})
    scores = tmp_path / "deep" / "er" / "scores.parquet"
    scores.parent.mkdir(parents=True)
    table.to_parquet(scores)
    out = tmp_path / "deep" / "er" / "stats"
    r = runner.invoke(app, ["compare", str(scores), "--metric", column, "--out-dir", str(out)])
    assert r.exit_code == 0, r.output
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    outside = written - {"deep/er/scores.parquet"} - {f"deep/er/stats/{p.name}" for p in out.iterdir()}
    assert not outside, outside
    stem = json.loads((out / "comparison.json").read_text())[column]["file_stem"]
    assert (out / f"{stem}_games_howell.csv").exists() and "/" not in stem and not stem.startswith(".")
    assert "\x1b" not in r.output
