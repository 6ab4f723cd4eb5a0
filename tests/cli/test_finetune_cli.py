"""`medgap finetune` refuses bad options with exit code 2 and a message naming the fix, before it writes
anything (issue 8, defects 10 and 13)."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from medgap.cli import app

runner = CliRunner()


@pytest.fixture()
def manifest(tmp_path):
    """2 classes x 4 patients x 1 image, with a modality column."""
    rng = np.random.default_rng(0)
    rows = []
    for c in ("a", "b"):
        for i in range(4):
            f = tmp_path / "img" / f"{c}{i}.png"
            f.parent.mkdir(exist_ok=True)
            cv2.imwrite(str(f), rng.integers(0, 255, (24, 24, 3), dtype=np.uint8))
            rows.append({"path": f"img/{f.name}", "label": c, "group_id": f"{c}{i}", "modality": "us" if i else "ct"})
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    return tmp_path / "m.csv"


def _finetune(manifest, out, *extra):
    args = ["finetune", "--data", str(manifest), "--out", str(out), "--init", "scratch", "--folds", "2",
            "--epochs", "1", "--image-size", "32", "--batch-size", "4", *extra]
    return runner.invoke(app, args)


@pytest.mark.parametrize("extra, message", [
    (("--filter", "modality"), "--filter takes COLUMN=V1,V2"),
    (("--filter", "=us"), "--filter takes COLUMN=V1,V2"),
    (("--filter", "nocol=a"), "no column 'nocol' to filter on; columns are path, label, group_id, modality"),
    (("--image-size", "0"), "--image-size 0"),
    (("--image-size", "-5"), "--image-size -5"),
    (("--epochs", "0"), "--epochs 0"),
    (("--folds", "1"), "--folds 1"),
    (("--folds", "9"), "more folds than patients"),
    (("--strategy", "fulll"), "--strategy 'fulll' is not one of linear, partial, full, features. Did you mean 'full'?"),
    (("--devices", "two"), "--devices 'two': a number of devices"),
])
def test_bad_options_exit_2_and_write_nothing(manifest, tmp_path, extra, message):
    out = tmp_path / "run"
    r = _finetune(manifest, out, *extra)
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split()), r.output
    assert not out.exists()
