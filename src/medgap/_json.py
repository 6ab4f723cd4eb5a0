"""One JSON normaliser for everything medgap writes (comparison.json, evaluation.json, config.json, the
scoring metadata): plain Python values that ``json.dumps(..., allow_nan=False)`` accepts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import PurePath

import numpy as np


def jsonable(value: object, *, keep_infinity: bool = False) -> object:
    """``value`` as JSON-ready Python: mapping keys become ``str``, lists/tuples/sets and NumPy arrays become
    lists, paths become ``str``, NumPy scalars their Python value, and NaN ``None`` (strict JSON has no NaN).
    +/-inf becomes ``None`` too, unless ``keep_infinity`` (a group comparison keeps an infinite effect size,
    which ``json.dumps`` writes as ``Infinity``, distinct from an undefined one). Anything else is returned as
    it is."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, keep_infinity=keep_infinity) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v, keep_infinity=keep_infinity) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist(), keep_infinity=keep_infinity)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or (math.isinf(value) and not keep_infinity)):
        return None
    return value
