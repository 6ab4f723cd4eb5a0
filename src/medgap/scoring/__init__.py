"""Scoring collections of files with registered metrics: parallel, resumable, one row per item.

The names below are imported when first used: the engine (``medgap.scoring.engine``, standard library only)
starts the workers' fork server before the command imports the scoring loop, the store (pandas, pyarrow)
and the metrics, and the workers import no pandas."""

from __future__ import annotations

import importlib

_LAZY = {
    "Engine": "medgap.scoring.engine",
    "ProcessEngine": "medgap.scoring.engine",
    "SerialEngine": "medgap.scoring.engine",
    "WorkerCrashed": "medgap.scoring.engine",
    "make_engine": "medgap.scoring.engine",
    "ScoreSummary": "medgap.scoring.run",
    "score_collection": "medgap.scoring.run",
    "score_source": "medgap.scoring.run",
    "scored_rows": "medgap.scoring.run",
    "MergeResult": "medgap.scoring.store",
    "ResultStore": "medgap.scoring.store",
    "Scored": "medgap.scoring.store",
    "StoreError": "medgap.scoring.store",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'medgap.scoring' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
