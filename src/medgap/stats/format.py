"""Numbers printed the way medical journals print them (machine outputs keep full precision)."""

from __future__ import annotations

import math


def _decimal(x: float, digits: int) -> str:
    """``x`` to ``digits`` decimals without a leading zero: 0.03 -> ``.03``."""
    return f"{x:.{digits}f}".replace("0.", ".", 1) if x < 1 else f"{x:.{digits}f}"


def format_p(p: float | None, floor: float = 1e-6) -> str:
    """A P value in AMA (JAMA) style, with a lower bound for very small values.

    - ``P = .03``: 2 decimals from .01 up;
    - ``P = .002``: 3 decimals from .001 to .01 (and when 2 decimals would round a P < .05 up to .05,
      e.g. ``P = .046``, as AMA allows);
    - ``P < .001`` below .001;
    - ``P < .000001`` below ``floor`` (default 1e-6, the bound the study this project follows prints for
      its ANOVA; ``floor=1e-3`` or larger gives plain AMA style);
    - ``P > .99`` above .99, and ``P = n/a`` for None or NaN.

    References: AMA Manual of Style, 11th ed., 21.9.5 (P values).
    """
    if p is None or not math.isfinite(p):
        return "P = n/a"
    if not 0 < floor < 1:
        raise ValueError(f"floor must be between 0 and 1 (e.g. 1e-6), got {floor!r}")
    bound = min(floor, 0.001)
    if p < bound:
        return "P < " + _decimal(bound, max(3, -math.floor(math.log10(bound) + 1e-9)))
    if p < 0.001:
        return "P < .001"
    if p > 0.99:
        return "P > .99"
    digits = 3 if round(p, 3) < 0.01 else 2
    while p < 0.05 <= round(p, digits) and digits < 6:
        digits += 1
    return "P = " + _decimal(p, digits)


def _fixed(x: float, digits: int) -> str:
    s = f"{x:.{digits}f}"
    return s[1:] if s.startswith("-") and float(s) == 0 else s  # no "-0.0"


def decimals_for(*values: float, significant: int = 3) -> int:
    """Decimals that give the largest finite magnitude among ``values`` ``significant`` significant digits
    (0 for values of 10 ** significant and above): 21.7 -> 1, 0.2 -> 3, 0.0123 -> 4, 412 -> 0."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    if not finite:
        return significant - 1
    return max(0, significant - 1 - math.floor(math.log10(max(finite))))


def format_value(x: float, significant: int = 3) -> str:
    """``x`` to ``significant`` significant digits in fixed notation (0.0523 -> ``0.0523``, 21.66 -> ``21.7``,
    1234.5 -> ``1235``), scientific below 1e-4 or from 1e7; ``n/a`` for None/NaN."""
    if x is None or not math.isfinite(x):
        return "n/a" if x is None or math.isnan(x) else str(x)
    if x != 0 and not 1e-4 <= abs(x) < 1e7:
        return f"{x:.{significant - 1}e}"
    return _fixed(x, decimals_for(x, significant=significant))


def format_ci(estimate: float, low: float, high: float, digits: int | None = 1, *,
              significant: int = 3) -> str:
    """``21.7 (20.9 to 22.5)``: estimate and CI to ``digits`` decimals ("to", not a dash, so negative bounds
    read clearly). A missing bound prints the estimate alone, a missing estimate ``n/a``.

    ``digits=None``: one number of decimals for the three, enough for ``significant`` significant digits of
    the estimate, so small values keep their precision (0.2 with CI 0.19 to 0.21 prints
    ``0.200 (0.190 to 0.210)``, not ``0.2 (0.2 to 0.2)``) and a wide CI does not round the estimate away
    (``56.0 (-358.6 to 470.6)``, not ``56 (-359 to 471)``); at most two decimals more than the largest
    magnitude needs, so an estimate near 0 with a wide CI stays readable; magnitudes below 1e-4 or from 1e7
    print in scientific notation."""
    if estimate is None or not math.isfinite(estimate):
        return "n/a"
    has_ci = not (low is None or high is None or not (math.isfinite(low) and math.isfinite(high)))
    if digits is None:
        values = (estimate, low, high) if has_ci else (estimate,)
        largest = max(abs(v) for v in values)
        if largest != 0 and not 1e-4 <= largest < 1e7:
            parts = [f"{v:.{significant - 1}e}" for v in values]
            return f"{parts[0]} ({parts[1]} to {parts[2]})" if has_ci else parts[0]
        digits = min(decimals_for(estimate, significant=significant),
                     decimals_for(*values, significant=significant) + 2)
    if not has_ci:
        return _fixed(estimate, digits)
    return f"{_fixed(estimate, digits)} ({_fixed(low, digits)} to {_fixed(high, digits)})"


def format_n(units: int, frames: int) -> str:
    """``n = units (frames)`` without the ``n =``: ``12 (340)`` (12 patients or files holding 340 frames)."""
    return f"{units} ({frames})"
