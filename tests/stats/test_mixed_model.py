"""The mixed model (issue 10, item 1) against statsmodels' formula interface called directly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from medgap.stats import compare_metrics, mixed_model


def test_contrasts_match_statsmodels_formula(clips):
    result = compare_metrics(clips, "brisque", unit="file", n_boot=100)["brisque"]
    fit = smf.mixedlm("brisque ~ C(group, Treatment('natural'))", clips, groups=clips["path"]).fit(reml=True)
    m = result.mixed
    assert m is not None and m.converged and m.n_units == 50 and m.n_frames == len(clips)
    contrasts = m.contrasts.set_index("group")
    for g in ("ct", "pocus"):
        name = f"C(group, Treatment('natural'))[T.{g}]"
        assert contrasts.loc[g, "estimate"] == pytest.approx(fit.fe_params[name], rel=1e-5)
        assert contrasts.loc[g, "se"] == pytest.approx(fit.bse_fe[name], rel=1e-3)
        low, high = fit.conf_int().loc[name]
        assert (contrasts.loc[g, "ci_low"], contrasts.loc[g, "ci_high"]) == pytest.approx((low, high), rel=1e-3)
        assert contrasts.loc[g, "p"] == pytest.approx(fit.pvalues[name], rel=1e-3, abs=1e-12)
    assert m.intercept == pytest.approx(fit.fe_params["Intercept"], rel=1e-6)
    assert m.unit_variance == pytest.approx(float(fit.cov_re.iloc[0, 0]), rel=1e-3)
    assert m.icc > 0.8  # the clips' frames share their clip's level
    row = result.vs_reference.set_index("group_b").loc["pocus"]
    assert row.mixed_estimate == contrasts.loc["pocus", "estimate"]


def test_no_mixed_model_when_every_unit_has_one_frame_and_odd_labels_work():
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"group": np.repeat(["natural", "it's \"ct\""], 12), "path": [f"{i}.png" for i in range(24)],
                       "brisque": rng.normal(30, 5, 24)})
    result = compare_metrics(df, "brisque", n_boot=100)["brisque"]
    assert result.mixed is None and any("every file has one frame" in n for n in result.notes)
    m = mixed_model(df.brisque.to_numpy(), df.group.to_numpy(), np.arange(24) // 2, "natural")
    assert list(m.contrasts.group) == ["it's \"ct\""] and np.isfinite(m.contrasts.estimate).all()
