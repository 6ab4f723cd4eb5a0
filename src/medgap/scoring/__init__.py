"""Scoring collections of files with registered metrics: parallel, resumable, one row per item.

The names below are imported when first used: the engine (``medgap.scoring.engine``, standard library only)
starts the workers' fork server before the command imports the scoring loop, the store (pandas, pyarrow)
and the metrics, and the workers import no pandas."""

from __future__ import annotations

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submod_attrs={
        "engine": ["Engine", "ProcessEngine", "SerialEngine", "WorkerCrashed", "make_engine"],
        "run": ["ScoreSummary", "score_collection", "score_source", "scored_rows"],
        "store": ["MergeResult", "ResultStore", "Scored", "StoreError"],
    },
)
