"""Scoring collections of files with registered metrics: parallel, resumable, one row per item."""

from medgap.scoring.engine import Engine, ProcessEngine, SerialEngine, WorkerCrashed, make_engine
from medgap.scoring.run import ScoreSummary, score_collection, score_source, scored_rows
from medgap.scoring.store import MergeResult, ResultStore, Scored, StoreError

__all__ = [
    "Engine",
    "MergeResult",
    "ProcessEngine",
    "ResultStore",
    "ScoreSummary",
    "Scored",
    "SerialEngine",
    "StoreError",
    "WorkerCrashed",
    "make_engine",
    "score_collection",
    "score_source",
    "scored_rows",
]
