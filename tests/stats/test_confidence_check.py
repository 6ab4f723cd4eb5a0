"""Every function of medgap.stats that takes a confidence level checks it in one place, the same way: a
number strictly between 0 and 1 (issue 9, item 9). Before, four copies of `not 0 < confidence < 1` let a
string through to a TypeError from `<`, and NaN or True through as a level."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medgap import stats
from medgap.stats.bootstrap import percentile_interval
from medgap.stats.classification import wilson_interval
from medgap.stats.classifier_comparison import delong_test

_SCORES = pd.DataFrame({"group": ["a"] * 5 + ["b"] * 5, "brisque": np.arange(10.0)})

CALLS = {
    "describe_groups": lambda c: stats.describe_groups(_SCORES, "brisque", "group", confidence=c),
    "compare_metrics": lambda c: stats.compare_metrics(_SCORES, "brisque", confidence=c),
    "percentile_interval": lambda c: percentile_interval(np.ones((10, 2)), confidence=c),
    "wilson_interval": lambda c: wilson_interval(3, 10, confidence=c),
    "delong_test": lambda c: delong_test([1, 0, 1, 0], [0.9, 0.1, 0.8, 0.3], [0.7, 0.2, 0.6, 0.4], confidence=c),
}


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, float("nan"), "0.95", True, None])
def test_a_confidence_outside_0_1_or_not_a_number_is_the_same_value_error(name, bad):
    with pytest.raises(ValueError, match=r"confidence must be between 0 and 1 \(e\.g\. 0\.95\)"):
        CALLS[name](bad)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_numpy_float_level_is_accepted(name):
    CALLS[name](np.float32(0.9))
