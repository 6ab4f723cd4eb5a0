"""A group comparison written as files: per column ``<stem>_groups.csv`` (n units and n frames per group),
``_tukey.csv``, ``_games_howell.csv``, ``_effect_sizes.csv`` (every pair), ``_vs_reference.csv`` (each group
against the reference: n units (frames), Cohen's d with its reported, noncentral-t, bootstrap and
large-sample CIs, Cliff's delta with CI, the mixed model's contrast, the declared test's P and Holm P with its
family), ``_dunn.csv`` (Dunn's test, Holm P, Cliff's delta per pair), ``_assumptions.csv`` (Brown-Forsythe,
Shapiro-Wilk), and ``comparison.json`` with every column at full precision (keyed by column; for a
``MetricComparison`` each column also holds ``summary``: unit, counts, primary metric, test, Holm families,
notes).

comparison.json is strict JSON (``json.loads`` of any parser reads it): an undefined or infinite value (an F
of a table whose groups are each constant) is ``null``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from medgap.report._files import inside, safe_file_stem, writing
from medgap._json import jsonable
from medgap.stats import GroupComparison, MetricComparison

COMPARISON_JSON = "comparison.json"
_TABLES = ("groups", "tukey", "games_howell", "effect_sizes", "vs_reference", "dunn", "assumptions")



class ComparisonExistsError(ValueError):
    """The output folder holds a different comparison, which writing would overwrite."""


def comparison_file_stems(columns: list[str]) -> dict[str, str]:
    """The file-name stem for each column: the name itself when it is a safe file name, else a sanitised one
    (a column named ``../../x`` must not write outside the output folder)."""
    taken = {"comparison"}
    return {c: safe_file_stem(c, taken) for c in columns}


def comparison_json(result: Mapping[str, GroupComparison]) -> str:
    """The text of ``comparison.json``: column -> the comparison's ``to_dict()`` and its ``file_stem`` (and
    ``lower_is_better``, ``primary`` and the result's ``summary()`` for a ``MetricComparison``). Strict JSON:
    NaN and +/-inf are null."""
    stems = comparison_file_stems(list(result))
    directions = getattr(result, "lower_is_better", None)
    primary = getattr(result, "primary", None)
    summary = result.summary() if isinstance(result, MetricComparison) else None
    doc = {}
    for c, r in result.items():
        doc[c] = {**r.to_dict(keep_infinity=False), "file_stem": stems[c]}
        if directions is not None:
            doc[c]["lower_is_better"] = directions.get(c)
            doc[c]["primary"] = c == primary
        if summary is not None:
            doc[c]["summary"] = summary
    return json.dumps(jsonable(doc), indent=1, allow_nan=False)


def _earlier(out_dir: Path) -> tuple[str | None, dict]:
    path = out_dir / COMPARISON_JSON
    if not path.is_file():
        return None, {}
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        doc = json.loads(text)
    except ValueError:
        return text, {}
    return text, doc if isinstance(doc, dict) else {}


def write_comparisons(result: Mapping[str, GroupComparison], out_dir: str | Path, *,
                      overwrite: bool = False) -> dict[str, str]:
    """Write the CSV tables of each column and ``comparison.json`` (keyed by the real column names, each with
    its ``file_stem``), all directly inside ``out_dir``; returns column -> file stem.

    A folder that already holds a different ``comparison.json`` (other scores, columns or reference) is
    refused with ``ComparisonExistsError`` unless ``overwrite``; then the earlier comparison's CSV files are
    removed with it, so no file of it is left beside the new one. Writing the same comparison again is
    allowed (it rewrites identical files)."""
    out_dir = Path(out_dir)
    text = comparison_json(result)
    earlier_text, earlier = _earlier(out_dir)
    if earlier_text is not None and earlier_text != text:
        if not overwrite:
            columns = ", ".join(map(str, earlier)) or "unreadable"
            raise ComparisonExistsError(f"{out_dir} already holds a different comparison ({COMPARISON_JSON}: "
                                        f"{columns}); writing would overwrite it")
        for old in earlier.values():
            stem = old.get("file_stem") if isinstance(old, dict) else None
            for suffix in _TABLES if isinstance(stem, str) else ():
                try:
                    inside(out_dir, f"{stem}_{suffix}.csv").unlink(missing_ok=True)
                except ValueError:  # a stem naming another folder: not ours to delete
                    pass
    out_dir.mkdir(parents=True, exist_ok=True)
    stems = comparison_file_stems(list(result))
    for col, cmp in result.items():
        frames = cmp.to_frames()
        for suffix in _TABLES:
            path = inside(out_dir, f"{stems[col]}_{suffix}.csv")
            with writing(path):
                frames[suffix].to_csv(path, index=False)
    path = inside(out_dir, COMPARISON_JSON)
    with writing(path):
        path.write_text(text, encoding="utf-8")
    return stems
