"""The study report ready for a paper (issue 10, item 7): contents, the forest plot of d against the reference
with a compact table whose numbers are the comparison's, a methods text naming the unit, the counts, the metric
versions and the display choices, numbered captions with PNG and SVG files, post hoc tables, the unit caveat
once, no violin below n = 5, lowest/highest for a measure without direction, and nothing fetched from the
network.

The scores are synthetic values on real (tiny) PNG files, with patients of one or two files; Cohen's d is
restated here in plain float64 on the patients' means."""

from __future__ import annotations

import base64
import html
import re
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from PIL import Image

from medgap.quality import get_metric_info
from medgap.report.study import (
    MIN_VIOLIN,
    forest_table,
    plot_distribution,
    plot_forest,
    plot_sensitivity,
    write_study_report,
)
from medgap.stats import compare_metrics

# group -> (patients, files per patient, BRISQUE-like mean)
DESIGN = {"natural": (6, 2, 20.0), "ct": (6, 1, 45.0), "us": (3, 2, 35.0)}
CONFIG = {"quality": {"video_stride": 5, "nifti_axis": 2, "window": "file", "resize_short": 384,
                      "foreground": False}, "comparison": {"unit": None}}
ENVIRONMENT = {"python": "3.11.7", "packages": {"medgap": "0.1.0", "numpy": "2.4.6", "statsmodels": "0.15.0"},
               "git": {"commit": "0123456789abcdef", "dirty": False}, "opencv": "5.0.0"}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper")
    rng = np.random.default_rng(7)
    rows = []
    for group, (patients, files, mean) in DESIGN.items():
        for p in range(patients):
            for f in range(files):
                path = root / f"{group}_p{p}_{f}.png"
                cv2.imwrite(str(path), rng.integers(0, 255, (24, 32), dtype=np.uint8))
                rows.append({"item_id": str(path), "path": str(path), "frame": np.nan, "group": group,
                             "group_id": f"{group}-p{p}", "brisque": mean + rng.normal(0, 8),
                             "entropy": rng.normal(6, 1), "metric_versions": "brisque=2+0badcafe,imagestats=2",
                             "error": None})
    scores = pd.DataFrame(rows)
    result = compare_metrics(scores, ["brisque", "entropy"], "natural", n_boot=200)
    steps: list[str] = []
    path = write_study_report(root / "run", scores, result, config=CONFIG, environment=ENVIRONMENT,
                              progress=steps.append, n_examples=1)
    return scores, result, path, path.read_text(), steps


def _patient_d(scores: pd.DataFrame, column: str, group: str, reference: str = "natural") -> float:
    """Cohen's d on patient means, pooled SD (ddof 1), restated in plain float64."""
    means = scores.groupby(["group", "group_id"])[column].mean()
    a, b = means[reference].to_numpy(np.float64), means[group].to_numpy(np.float64)
    pooled = np.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2))
    return float((b.mean() - a.mean()) / pooled)


def test_contents_link_to_every_section(study):
    _, result, _, doc, _ = study
    nav = doc[doc.index("<nav>"): doc.index("</nav>")]
    targets = re.findall(r'href="#([^"]+)"', nav)
    assert {"overview", "methods"} <= set(targets) and len(targets) >= 2 + len(result)
    for t in targets:
        assert f'id="{t}"' in doc, t
    assert doc.index("</nav>") < doc.index('id="overview"') < doc.index('id="methods"')


def test_forest_plot_draws_the_comparisons_d_and_ci(study):
    scores, result, _, _, _ = study
    fig = plot_forest(result)
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    assert list(panels) == ["brisque (primary)", "entropy"]
    ax = panels["brisque (primary)"]
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["ct", "us"]  # groups as rows, the reference left out
    row = {lab: y for y, lab in zip(fig.axes[0].get_yticks(), labels)}
    markers = {line.get_ydata()[0]: line.get_xdata()[0] for line in ax.lines if line.get_marker() == "o"}
    bars = {line.get_ydata()[0]: sorted(line.get_xdata()) for line in ax.lines
            if line.get_marker() in ("None", "", None) and len(line.get_xdata()) == 2 and line.get_ydata()[0]
            == line.get_ydata()[1]}
    v = result["brisque"].vs_reference.set_index("group_b")
    for g in ("ct", "us"):
        assert markers[row[g]] == pytest.approx(_patient_d(scores, "brisque", g), rel=1e-9)
        assert bars[row[g]] == pytest.approx([v.loc[g, "d_ci_low"], v.loc[g, "d_ci_high"]], rel=1e-12)
    assert any(line.get_xdata()[0] == 0 for line in ax.lines if line.get_linestyle() == "--")  # the zero line
    assert "better" in ax.get_xlabel() and "no better direction" in panels["entropy"].get_xlabel()


def test_compact_table_prints_the_results_numbers(study):
    scores, result, _, doc, _ = study
    table = doc[doc.index("Table 1."): doc.index("</table>", doc.index("Table 1."))]
    v = result["brisque"].vs_reference.set_index("group_b")
    for g, n in (("ct", "6 (6)"), ("us", "3 (6)")):
        d = _patient_d(scores, "brisque", g)
        want = f"{d:.2f} ({v.loc[g, 'd_ci_low']:.2f} to {v.loc[g, 'd_ci_high']:.2f})"
        row = re.search(rf"<td>{g}</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>",
                        table)
        assert row is not None and row.group(1) == n and row.group(2) == want, (g, row and row.groups())
        assert row.group(3) == "noncentral t"  # groups below 20 patients
    assert forest_table(result).metric.tolist()[:2] == ["brisque", "brisque"]


def test_methods_name_software_metrics_unit_counts_and_display(study):
    _, result, _, doc, _ = study
    methods = doc[doc.index('id="methods"'): doc.index("</div>", doc.index('id="methods"'))]
    assert "medgap 0.1.0 (git commit 0123456789)" in methods and "Python 3.11.7" in methods
    assert "statsmodels 0.15.0" in methods
    # the version the scores table recorded (with its parameters' hash), and the registry's citation
    assert "version 2+0badcafe" in methods and get_metric_info("brisque").reference in methods
    assert "imagestats version 2" in methods and "no better direction" in methods
    assert "unit of analysis was the patient" in methods
    assert "ct 6 (6), natural 6 (12), us 3 (6)" in methods
    assert "window stored in the file" in methods and "short side of 384 pixels" in methods
    assert "every 5th video frame" in methods and "no foreground crop" in methods
    assert "Holm" in methods and "noncentral t" in methods and "bootstrap" in methods and "200 resamples" in methods


def test_numbered_figures_have_captions_and_valid_png_and_svg_files(study):
    _, result, path, doc, _ = study
    numbers = [int(n) for n in re.findall(r"<b>Figure (\d+)\.</b>", doc)]
    assert numbers == list(range(1, 2 + len(result)))  # the forest plot and one distribution per metric
    for n in numbers:
        (png,) = (path.parent / "figures").glob(f"figure_{n}_*.png")
        with Image.open(png) as im:
            im.verify()
        with Image.open(png) as im:
            assert im.size[0] > 1000  # ~200 dpi
        root = ET.parse(png.with_suffix(".svg")).getroot()
        assert root.tag.endswith("svg")
        assert f"figures/{png.name}" in doc


def test_report_is_offline_and_says_the_unit_once(study):
    _, _, _, doc, _ = study
    assert "http://" not in doc and "https://" not in doc and "<script" not in doc and "<link" not in doc
    assert all(src.startswith("data:image/") for src in re.findall(r'src="([^"]*)"', doc))
    assert doc.count("Unit of analysis:") == 1
    assert "counts as one observation" not in doc  # the old, wrong caveat
    assert "Thumbnails show what the metric sees" in doc


def test_posthoc_tables_are_in_the_report(study):
    doc = html.unescape(study[3])
    for heading in ("Games-Howell", "Dunn's test", "Assumption checks", "Shapiro-Wilk", "Brown-Forsythe"):
        assert doc.count(heading) >= 2, heading  # for each of the two metrics
    assert "<td>ct - natural</td>" in doc


def test_lowest_and_highest_for_a_measure_without_direction(study):
    _, _, _, doc, _ = study
    entropy = doc[doc.index('id="s-entropy"'):]
    assert "<b>ct</b>: lowest</p>" in entropy and ": best</p>" not in entropy
    brisque = doc[doc.index('id="s-brisque"'): doc.index('id="s-entropy"')]
    assert "<b>ct</b>: best</p>" in brisque


def test_no_violin_below_five_units():
    rng = np.random.default_rng(0)
    values = {"natural": rng.normal(size=8), "small": rng.normal(size=MIN_VIOLIN - 1), "five": rng.normal(size=5)}
    fig = plot_distribution(values, "brisque", True, "patient")
    ax = fig.axes[0]
    bodies = [c for c in ax.collections if isinstance(c, PolyCollection)]  # violin bodies (points: PathCollection)
    assert len(bodies) == 2  # natural and five, not small
    xs = sorted({round(float(np.mean(b.get_paths()[0].vertices[:, 0]))) for b in bodies})
    assert xs == [1, 3]
    scatters = [c for c in ax.collections if type(c).__name__ == "PathCollection"]
    assert sum(len(c.get_offsets()) for c in scatters) == 8 + MIN_VIOLIN - 1 + 5  # every value is drawn


def test_progress_is_called_before_each_slow_step(study):
    _, result, _, _, steps = study
    assert any("forest" in s for s in steps)
    for m in result:
        assert any(s.startswith(f"report: {m}") for s in steps), m
    assert steps[-1] == "report: writing"


def test_sensitivity_section_and_plot(study, tmp_path):
    scores, result, _, _, _ = study
    rows = []
    for shift, choice in ((0.0, "window=file"), (0.8, "window=lung")):
        for r in result.vs_reference().itertuples():
            rows.append({"choice": choice, "metric": r.metric, "group": r.group_b, "cohen_d": r.cohen_d + shift,
                         "d_ci_low": r.d_ci_low + shift, "d_ci_high": r.d_ci_high + shift})
    df = pd.DataFrame(rows)
    fig = plot_sensitivity(df)
    assert len(fig.axes) == 4 and [ax.get_title() for ax in fig.axes[:2]] == ["window=file", "window=lung"]
    lung = fig.axes[1]
    plotted = sorted(line.get_xdata()[0] for line in lung.lines if line.get_marker() == "o")
    want = sorted(df[(df.choice == "window=lung") & (df.metric == "brisque")].cohen_d)
    assert plotted == pytest.approx(want, rel=1e-12)
    doc = write_study_report(tmp_path, scores, result, config=CONFIG, environment=ENVIRONMENT, sensitivity=df,
                             n_examples=1).read_text()
    assert 'href="#sensitivity"' in doc and "Sensitivity to display and scale" in doc
    assert "repeated under 2 choices (window=file and window=lung)" in doc
    assert (tmp_path / "figures" / "figure_2_sensitivity.svg").exists()
    with pytest.raises(ValueError, match="cohen_d"):
        plot_sensitivity(df.drop(columns="cohen_d"))


def test_thumbnails_show_the_image_after_the_runs_display_rules(tmp_path):
    """A bright square on a black field: with the run's foreground crop the thumbnail is the square alone."""
    rows = []
    for group, level in (("natural", 200), ("natural", 180), ("ct", 120), ("ct", 140)):
        path = tmp_path / f"{group}_{level}.png"
        img = np.zeros((120, 120), np.uint8)
        img[40:80, 40:80] = level
        cv2.imwrite(str(path), img)
        rows.append({"item_id": str(path), "path": str(path), "frame": np.nan, "group": group,
                     "brisque": float(level), "error": None})
    scores = pd.DataFrame(rows)
    result = compare_metrics(scores, ["brisque"], "natural", n_boot=50)
    means = {}
    for foreground in (False, True):
        doc = write_study_report(tmp_path / str(foreground), scores, result, environment=ENVIRONMENT,
                                 config={"quality": {"foreground": foreground}}, n_examples=1).read_text()
        uri = re.search(r'<img src="data:image/jpeg;base64,([^"]+)" alt="natural_180.png">', doc).group(1)
        pixels = cv2.imdecode(np.frombuffer(base64.b64decode(uri), np.uint8), cv2.IMREAD_GRAYSCALE)
        means[foreground] = float(pixels.mean())
    assert means[False] == pytest.approx(180 * (40 * 40) / (120 * 120), abs=4)  # the whole field
    assert means[True] == pytest.approx(180, abs=4)  # what the metric saw: the square
