"""`medgap quality` as a user runs it: the embedded default, exit codes, usage errors."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from medgap.cli import app

runner = CliRunner()


def test_embedded_default_prints_a_group_table(tmp_path):
    out = tmp_path / "scores.parquet"
    r = runner.invoke(app, ["quality", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "embedded default" in r.output and "brisque by group" in r.output
    df = pd.read_parquet(out)
    assert set(df.group) == {"natural", "cr", "ct", "mr", "us"}
    assert df.brisque.notna().all() and (df.frame.notna()).sum() >= 40  # multi-frame MR and US frames


def test_failures_give_exit_code_1_and_the_rest_is_written(tmp_path):
    import cv2
    import numpy as np

    (tmp_path / "g").mkdir()
    cv2.imwrite(str(tmp_path / "g" / "ok.png"), np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8))
    (tmp_path / "g" / "bad.png").write_text("nope")
    out = tmp_path / "s.csv"
    r = runner.invoke(app, ["quality", str(tmp_path / "g"), "--out", str(out)])
    assert r.exit_code == 1, r.output
    assert "bad.png" in r.output and "not a decodable image" in r.output
    df = pd.read_csv(out)
    assert len(df) == 2 and df.brisque.notna().sum() == 1
    assert list(df.columns) == ["item_id", "path", "frame", "group", "width", "height", "brisque",
                                "brisque_flat_fraction", "error", "file_size", "file_mtime_ns", "metric_versions"]
    # a rerun skips both files but still reports the failure and exits 1
    r = runner.invoke(app, ["quality", str(tmp_path / "g"), "--out", str(out)])
    text = " ".join(r.output.split())
    assert r.exit_code == 1 and "2 files already done" in text and "1 in an earlier run" in text and "bad.png" in text


def test_config_built_directly_copies_manifest_columns_as_strings(tmp_path):
    import cv2
    import numpy as np

    from medgap.cli.quality import QualityConfig

    rng = np.random.default_rng(1)
    for name in ("x.png", "y.png"):
        cv2.imwrite(str(tmp_path / name), rng.integers(0, 256, (48, 48), dtype=np.uint8))
    (tmp_path / "m.csv").write_text("file,modality,patient,label\nx.png,ct,007,1\ny.png,mr,008,0\n")
    cfg = QualityConfig(manifest=tmp_path / "m.csv", path_column="file", group_column="modality",
                        metrics=["brisque", "imagestats"], out=tmp_path / "s.parquet")
    code, summary = cfg.run()
    assert code == 0 and summary.items_scored == 2 and summary.rows == 2
    df = pd.read_parquet(tmp_path / "s.parquet").sort_values("path")
    assert df.group.tolist() == ["ct", "mr"] and df.patient.tolist() == ["007", "008"]  # leading zeros kept
    assert df.label.tolist() == ["1", "0"] and df.brisque.notna().all()
    meta = (tmp_path / "s.parquet.meta.json").read_text()
    assert '"brisque"' in meta and '"numpy"' in meta and '"finished"' in meta


@pytest.mark.parametrize(
    "args, message",
    [
        (["--metric", "brisqe"], "Did you mean brisque"),
        (["--group", "natural"], "NAME=PATH"),
        (["/definitely/not/here"], "no such file or folder"),
        (["--manifest", "missing.csv"], "no such manifest"),
        (["--format", "xlsx"], "--format 'xlsx' is not one of parquet, csv"),
        (["--device", "gpu"], "unknown device 'gpu': use 'auto', 'cpu', 'cuda' or 'cuda:N'"),
        (["--batch-size", "0"], "--batch-size must be at least 1 frame"),
        (["--format", "csv", "--out", "s.parquet"], "end --out in .csv"),
        (["--workers", "0"], "--workers must be at least 1"),
    ],
)
def test_usage_errors_exit_2_with_a_hint(tmp_path, args, message):
    if "--out" not in args:
        args = [*args, "--out", str(tmp_path / "s.parquet")]
    r = runner.invoke(app, ["quality", *args])
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split())
    assert "Traceback" not in r.output


def test_an_output_that_is_not_a_scores_table_is_not_overwritten(tmp_path):
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "x.png"), np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8))
    out = tmp_path / "results.csv"
    out.write_text("subject,score\n1,2\n")
    r = runner.invoke(app, ["quality", str(tmp_path / "x.png"), "--out", str(out)])
    assert r.exit_code == 2 and "not a medgap scores table" in " ".join(r.output.split())
    assert out.read_text() == "subject,score\n1,2\n"


def test_manifest_group_column_error_names_the_columns(tmp_path):
    (tmp_path / "m.csv").write_text("file,modality\na.png,ct\n")
    r = runner.invoke(app, ["quality", "--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "s.parquet")])
    assert r.exit_code == 2 and "columns are file, modality" in " ".join(r.output.split())


def test_help_and_version():
    r = runner.invoke(app, ["quality", "--help"])
    assert r.exit_code == 0 and "--workers" in r.output and "Examples" in r.output
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.startswith("medgap ")


def test_fit_niqe_then_score_with_the_model(shared_data, tmp_path):
    import shutil

    photos = tmp_path / "photos"
    photos.mkdir()
    for p in sorted((shared_data / "natural").glob("*.JPEG"))[:20]:
        shutil.copy(p, photos / p.name)
    model = tmp_path / "natural.npz"
    r = runner.invoke(app, ["fit-niqe", str(photos), "--out", str(model)])
    assert r.exit_code == 0 and model.exists(), r.output
    out = tmp_path / "s.parquet"
    r = runner.invoke(app, ["quality", str(photos), "--metric", f"niqe:model={model}", "--metric", "piqe",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(out)
    assert df.niqe.notna().all() and df.piqe.notna().all()
    r = runner.invoke(app, ["quality", str(photos), "--metric", "niqe:model", "--out", str(out)])
    assert r.exit_code == 2 and "NAME:KEY=VALUE" in " ".join(r.output.split())


def test_group_table_keeps_significant_digits_of_small_values():
    """An edge density around 0.05 printed with fixed 2 decimals read 0.05 with an SD of 0.00."""
    import io

    from rich.console import Console

    from medgap.cli.quality import group_table

    scores = pd.DataFrame({"group": ["a"] * 3 + ["b"] * 3,
                           "edge_density": [0.0512, 0.0531, 0.0498, 0.0701, 0.0688, 0.0725]})
    buf = io.StringIO()
    Console(file=buf, width=200).print(group_table(scores, "edge_density"))
    text = buf.getvalue()
    assert "0.05137" in text and "0.00166" in text  # mean and SD of group a to 4 significant digits
    assert "0.00 " not in text
