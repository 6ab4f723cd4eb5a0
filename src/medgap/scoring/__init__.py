"""Scoring collections of files with registered metrics: parallel, resumable, one row per item."""

from medgap.scoring.engine import Engine, ProcessEngine, SerialEngine, make_engine
from medgap.scoring.run import ScoreSummary, score_collection, score_source
from medgap.scoring.store import ResultStore

__all__ = [
    "Engine",
    "ProcessEngine",
    "ResultStore",
    "ScoreSummary",
    "SerialEngine",
    "make_engine",
    "score_collection",
    "score_source",
]
