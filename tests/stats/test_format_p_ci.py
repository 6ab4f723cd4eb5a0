"""P values and CIs printed in AMA (JAMA) style, with the study's P < .000001 floor."""

from __future__ import annotations

import pytest

from medgap.stats import format_ci, format_p


@pytest.mark.parametrize(
    "p, text",
    [
        (0.5, "P = .50"), (0.03, "P = .03"), (0.0123, "P = .01"), (0.01, "P = .01"),
        (0.00999, "P = .01"),  # rounds to .010: printed with 2 decimals
        (0.046, "P = .046"), (0.0496, "P = .0496"),  # 2 decimals would read .05
        (0.0094, "P = .009"), (0.002, "P = .002"), (0.001, "P = .001"),
        (0.000999, "P < .001"), (2e-4, "P < .001"), (1e-6, "P < .001"),
        (9.99e-7, "P < .000001"), (1e-123, "P < .000001"), (0.0, "P < .000001"),
        (0.99, "P = .99"), (0.991, "P > .99"), (1.0, "P > .99"),
        (float("nan"), "P = n/a"), (None, "P = n/a"),
    ],
)
def test_format_p_boundaries(p, text):
    assert format_p(p) == text


def test_format_p_floor():
    assert format_p(5e-5, floor=1e-4) == "P < .0001" and format_p(5e-4, floor=1e-4) == "P < .001"
    assert format_p(1e-9, floor=0.01) == "P < .001"  # floors above .001 give plain AMA style
    with pytest.raises(ValueError, match="floor must be between 0 and 1"):
        format_p(0.5, floor=0)


@pytest.mark.parametrize(
    "args, text",
    [
        ((21.7, 20.9, 22.5), "21.7 (20.9 to 22.5)"),
        ((21.66, 20.94, 22.46), "21.7 (20.9 to 22.5)"),
        ((-0.757, -1.039, -0.476, 2), "-0.76 (-1.04 to -0.48)"),
        ((0.01, -0.04, 0.06), "0.0 (0.0 to 0.1)"),  # no "-0.0"
        ((22.0, 17.0, 27.0, 0), "22 (17 to 27)"),
        ((13.0, float("nan"), float("nan")), "13.0"),
        ((float("nan"), 1.0, 2.0), "n/a"),
    ],
)
def test_format_ci(args, text):
    assert format_ci(*args) == text
