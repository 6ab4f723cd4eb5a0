"""medgap explain on real (tiny) runs: a resolution run of two sizes gets CAMs, kernels and ERFs per size and one
page; a single finetune run gets its own; options that cannot work are refused by name."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from medgap.cli import app
from medgap.ensemble import ResolutionConfig, run_resolution
from medgap.explain import ExplainConfig, ExplainError, explain_run
from medgap.explain.run import run_members


@pytest.fixture(scope="module")
def res_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    rng = np.random.default_rng(0)
    rows = []
    (root / "img").mkdir()
    for p in range(8):
        for i in range(2):
            img = rng.normal(110, 25, (40, 40)).clip(0, 255)
            if p % 2:
                img[10:20, 22:32] = 250
            path = root / "img" / f"p{p}_{i}.png"
            cv2.imwrite(str(path), img.astype(np.uint8))
            rows.append({"path": f"img/{path.name}", "group_id": f"p{p}", "label": f"c{p % 2}"})
    pd.DataFrame(rows).to_csv(root / "m.csv", index=False)
    cfg = ResolutionConfig(data=root / "m.csv", out=root / "run", init="scratch", folds=2, epochs=1, batch_size=8,
                           balance="patient", sizes="32,48", bootstrap=100)
    run_resolution(cfg, log=lambda s: None)
    return root


def test_a_resolution_run_is_explained_per_size(res_run):
    r = explain_run(ExplainConfig(res_run / "run", images=[res_run / "img"], max_images=2, erf_images=4,
                                  methods="gradcam,layercam,eigencam"), log=lambda s: None)
    names = {f.path.name for f in r.figures}
    assert {"cam_32px.png", "cam_48px.png", "kernels_32px.png", "kernels_48px.png", "erf_maps.png",
            "erf_sigma.png"} <= names
    assert all(f.path.stat().st_size > 3000 for f in r.figures)
    assert set(r.erf.network) == {"trained", "ImageNet-initialised", "random"}
    assert sorted(r.erf.input_size.unique()) == [32, 48]
    assert (r.erf.sigma_px > 0).all() and np.allclose(r.erf.sigma_fraction, r.erf.sigma_px / r.erf.input_size)
    page = r.page.read_text()
    assert page.count("<figure>") == len(r.figures) and "Effective receptive field" in page
    assert pd.read_csv(r.out / "erf.csv").shape[0] == 6


def test_one_finetune_run_and_the_command(res_run, tmp_path):
    assert list(run_members(res_run / "run" / "size_32")) == ["size_32"]
    result = CliRunner().invoke(app, ["explain", str(res_run / "run" / "size_32"), "--images",
                                      str(res_run / "img" / "p1_0.png"), "--images", str(res_run / "img" / "p2_0.png"),
                                      "--methods", "gradcam++", "--erf-images", "2", "--out", str(tmp_path / "x"),
                                      "--target", "c1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "x" / "cam_size_32.png").exists() and (tmp_path / "x" / "explanation.html").exists()


@pytest.mark.parametrize("change, message", [({"methods": "gradcm"}, "Did you mean 'gradcam'"),
                                             ({"target_layer": "bn3"}, "no such module"),
                                             ({"target": "c7"}, "classes are")])
def test_bad_options_are_refused_by_name(res_run, tmp_path, change, message):
    cfg = ExplainConfig(res_run / "run" / "size_32", images=[res_run / "img"], out=tmp_path / "o", max_images=1,
                        erf_images=1, **change)
    with pytest.raises(ExplainError, match=message):
        explain_run(cfg, log=lambda s: None)
