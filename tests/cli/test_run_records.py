"""One environment record (medgap.environment) for every run medgap writes (issue 9, item 9): the scoring
run's metadata records the git commit of the checkout, OpenCV and the package versions; torch is never
imported for it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from medgap.cli import app
from medgap.environment import environment, file_sha256, git_commit

runner = CliRunner()
SRC = Path(__file__).resolve().parents[2] / "src" / "medgap"


def _in_git_checkout() -> bool:
    r = subprocess.run(["git", "-C", str(SRC), "rev-parse", "HEAD"], capture_output=True, text=True)
    return r.returncode == 0 and Path(__import__("medgap").__file__).resolve().parent == SRC


def test_the_scoring_metadata_records_the_environment(tmp_path):
    (tmp_path / "g").mkdir()
    cv2.imwrite(str(tmp_path / "g" / "a.png"), np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8))
    out = tmp_path / "s.parquet"
    r = runner.invoke(app, ["quality", str(tmp_path / "g"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    meta = json.loads((tmp_path / "s.parquet.meta.json").read_text())
    env = meta["versions"]
    assert env["python"] and env["platform"] and env["packages"]["numpy"] == np.__version__
    assert env["opencv"] == cv2.__version__ and "pydicom" in env["packages"]
    if _in_git_checkout():
        head = subprocess.run(["git", "-C", str(SRC), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert env["git"]["commit"] == head.stdout.strip() and isinstance(env["git"]["dirty"], bool)
    assert meta["config"]["paths"] == [str(tmp_path / "g")]  # the config record went through jsonable


def test_weights_are_recorded_by_content_hash(tmp_path):
    w = tmp_path / "model.npz"
    w.write_bytes(b"weights" * 1000)
    env = environment(["numpy"], weights={"niqe": w})
    assert env["packages"] == {"numpy": np.__version__}
    assert env["weights"] == {"niqe": {"path": str(w), "sha256": hashlib.sha256(w.read_bytes()).hexdigest()}}
    assert file_sha256(w) == env["weights"]["niqe"]["sha256"]
    json.dumps(env, allow_nan=False)


def test_no_torch_import_and_no_git_for_an_installed_copy(tmp_path):
    code = ("import sys; from medgap.environment import environment; e = environment(); "
            "assert 'torch' not in sys.modules and e['gpu'] is None, e")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # the same module copied into a site-packages folder inside a git repository is not that repository's code
    site = tmp_path / "lib" / "site-packages" / "medgap_copy"
    site.mkdir(parents=True)
    (site / "environment.py").write_text((SRC / "environment.py").read_text())
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    code = ("import importlib.util as u, sys; s = u.spec_from_file_location('m', sys.argv[1]); m = u.module_from_spec(s); "
            "s.loader.exec_module(m); print(m.git_commit())")
    r = subprocess.run([sys.executable, "-c", code, str(site / "environment.py")], capture_output=True, text=True)
    assert r.stdout.strip() == "None", r.stderr
    assert git_commit() is None or len(git_commit()["commit"]) == 40
