"""compare_metrics(scores, "brisque"): a plain string is one column, not its characters (issue 9, item 7)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from medgap.stats import compare_metrics


def test_a_single_column_name_as_a_string_is_one_column():
    rng = np.random.default_rng(0)
    scores = pd.DataFrame({"group": ["natural"] * 8 + ["ct"] * 8,
                           "brisque": np.r_[rng.normal(20, 3, 8), rng.normal(40, 3, 8)]})
    result = compare_metrics(scores, "brisque")
    assert list(result) == ["brisque"]
    assert result.lower_is_better == {"brisque": True}
