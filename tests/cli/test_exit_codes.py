"""Exit codes through the real command line (issue 8, defect 10): 0 all scored, 1 some items failed, 2 a usage
error or a path that cannot be read or written (named, with the OS reason), 3 a crash in medgap itself (one
line; the traceback with --debug), 130 interrupted (tests/cli/test_quality_interrupt.py).

Tests run as root here, so a chmod'ed folder would not stop a write: unwritable outputs are made real in other
ways: a path under a regular file (ENOTDIR), a name longer than the file system allows (ENAMETOOLONG), and
"disk full" as an output file that is a link to /dev/full (ENOSPC on write). A read-only mount could not be
made without privileges beyond root in this container.
"""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from medgap.cli import _MedgapGroup, app

runner = CliRunner()


def _text(r) -> str:
    return " ".join(r.output.split())


@pytest.fixture()
def scores_csv(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"group": np.repeat(["natural", "ct", "mr"], 5), "brisque": rng.normal(30, 5, 15)})
    path = tmp_path / "scores.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture()
def images(tmp_path):
    folder = tmp_path / "imgs" / "g"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(2):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (64, 64), dtype=np.uint8))
    return folder


def test_compare_without_group_column_exits_2_naming_the_columns(tmp_path):
    path = tmp_path / "s.csv"
    pd.DataFrame({"modality": ["a", "b"], "brisque": [1.0, 2.0]}).to_csv(path, index=False)
    r = runner.invoke(app, ["compare", str(path)])
    assert r.exit_code == 2, r.output
    assert "no 'group' column" in _text(r) and "modality, brisque" in _text(r)


def test_compare_on_a_file_that_is_not_a_table_exits_2(tmp_path):
    path = tmp_path / "s.parquet"
    path.write_bytes(b"PAR1 not really")
    r = runner.invoke(app, ["compare", str(path)])
    assert r.exit_code == 2 and "not a readable scores table" in _text(r), r.output


def test_output_under_a_file_exits_2_with_path_and_reason(scores_csv, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    r = runner.invoke(app, ["compare", str(scores_csv), "--out-dir", str(blocker / "stats")])
    assert r.exit_code == 2, r.output
    assert str(blocker) in _text(r) and ("Not a directory" in r.output or "File exists" in r.output)
    assert "internal error" not in r.output and "Traceback" not in r.output


def test_output_name_too_long_exits_2(scores_csv, tmp_path):
    r = runner.invoke(app, ["compare", str(scores_csv), "--out-dir", str(tmp_path / ("x" * 300))])
    assert r.exit_code == 2 and "File name too long" in r.output and "use a shorter path" in _text(r), r.output


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full to simulate a full disk")
def test_disk_full_while_writing_exits_2_naming_the_file(scores_csv, tmp_path):
    out = tmp_path / "stats"
    out.mkdir()
    (out / "brisque_groups.csv").symlink_to("/dev/full")
    r = runner.invoke(app, ["compare", str(scores_csv), "--out-dir", str(out)])
    assert r.exit_code == 2, r.output
    assert "No space left on device" in r.output and "brisque_groups.csv" in _text(r)
    assert "free some space" in _text(r)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full to simulate a full disk")
def test_fit_niqe_disk_full_exits_2(tmp_path):
    from skimage import data

    folder = tmp_path / "good"
    folder.mkdir()
    for name in ("camera", "moon", "coins"):
        cv2.imwrite(str(folder / f"{name}.png"), getattr(data, name)())
    (tmp_path / "m.npz").symlink_to("/dev/full")
    r = runner.invoke(app, ["fit-niqe", str(folder), "--out", str(tmp_path / "m.npz")])
    assert r.exit_code == 2 and "No space left on device" in r.output, r.output


def test_quality_output_under_a_file_exits_2(images, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    r = runner.invoke(app, ["quality", str(images), "--out", str(blocker / "s.parquet")])
    assert r.exit_code == 2, r.output
    assert str(blocker) in _text(r) and "internal error" not in r.output


@pytest.mark.parametrize("command", ["quality", "study"])
@pytest.mark.parametrize("args, message", [
    (["--nifti-axis", "3"], "--nifti-axis takes 0, 1 or 2"),
    (["--video-stride", "0"], "--video-stride must be at least 1"),
    (["--workers", "0"], "--workers must be at least 1"),
    (["--save-every", "0"], "--save-every must be a positive number"),
    (["--max-pixels", "-1"], "--max-pixels takes a number of pixels per frame"),
])
def test_option_ranges_are_usage_errors_and_nothing_is_written(images, tmp_path, command, args, message):
    out = tmp_path / "out"
    target = [*args, "--out", str(out / "s.parquet" if command == "quality" else out)]
    r = runner.invoke(app, [command, str(images), *target])
    assert r.exit_code == 2 and message in _text(r), r.output
    assert not out.exists()


def test_study_takes_the_nifti_axis_and_save_every_of_quality(images, tmp_path):
    import json

    out = tmp_path / "run"
    r = runner.invoke(app, ["study", "--group", f"a={images}", "--group", f"b={images}", "--out", str(out),
                            "--nifti-axis", "0", "--save-every", "1", "--max-pixels", "50000000"])
    assert r.exit_code == 0, r.output
    cfg = json.loads((out / "config.json").read_text())["quality"]
    assert cfg["nifti_axis"] == 0 and cfg["save_every"] == 1.0 and cfg["max_pixels"] == 50_000_000


def _crashing_app() -> typer.Typer:
    """The real error handling (medgap's Typer group and --debug) around a command with a bug in it."""
    crash = typer.Typer(cls=_MedgapGroup, pretty_exceptions_enable=False)

    @crash.callback()
    def _root(debug: bool = typer.Option(False, "--debug")) -> None:
        pass

    @crash.command("boom")
    def boom() -> None:
        {}["missing"]  # a KeyError raised outside medgap's own raise statements: a bug, not a usage error

    @crash.command("panic")
    def panic() -> None:
        class PanicException(BaseException):  # what pyo3 raises for a Rust panic (not an Exception)
            pass

        raise PanicException("called `Result::unwrap()` on an `Err` value")

    return crash


@pytest.mark.parametrize("command, kind", [("boom", "KeyError: 'missing'"), ("panic", "PanicException")])
def test_a_crash_in_medgap_exits_3_with_one_line(command, kind):
    r = runner.invoke(_crashing_app(), [command])
    assert r.exit_code == 3, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(" ".join(lines)) < 300 and "Traceback" not in r.output
    text = " ".join(r.output.split())
    assert text.startswith("medgap: internal error: ") and kind in text
    assert "rerun with --debug for the traceback; please report it" in text


def test_debug_shows_the_traceback_and_still_exits_3():
    r = runner.invoke(_crashing_app(), ["--debug", "boom"])
    assert r.exit_code == 3 and "Traceback" in r.output and "internal error" in r.output, r.output


def test_the_installed_command_uses_the_same_handling(scores_csv, tmp_path):
    """python -m medgap, as a user runs it: a usage error is one line on stderr and exit 2; --debug exists."""
    path = tmp_path / "nogroup.csv"
    pd.DataFrame({"x": [1.0]}).to_csv(path, index=False)
    r = subprocess.run([sys.executable, "-m", "medgap", "--debug", "compare", str(path)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "no 'group' column" in r.stderr and "Traceback" in r.stderr
    r = subprocess.run([sys.executable, "-m", "medgap", "compare", str(path)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "Exit codes: 0" in subprocess.run([sys.executable, "-m", "medgap", "compare", "--help"],
                                             capture_output=True, text=True, timeout=120).stdout


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_quality_out_that_is_not_a_regular_file_is_refused_before_reading_it(images, tmp_path):
    """A link to /dev/full as --out was read "to resume" until the kernel killed the process."""
    (tmp_path / "full.csv").symlink_to("/dev/full")
    for out in (tmp_path / "full.csv", images):
        r = runner.invoke(app, ["quality", str(images), "--out", str(out)])
        assert r.exit_code == 2 and "is not a regular file" in _text(r), r.output


def test_compare_with_a_single_group_exits_2_saying_why(tmp_path):
    path = tmp_path / "one.csv"
    pd.DataFrame({"group": ["a", "a", "a"], "brisque": [1.0, 2.0, 3.0]}).to_csv(path, index=False)
    r = runner.invoke(app, ["compare", str(path)])
    assert r.exit_code == 2, r.output
    assert "skipped brisque" in _text(r) and "nothing to compare" in _text(r)
    assert not (tmp_path / "comparison.json").exists()
