"""Evaluating a trained run: read its held-out predictions, aggregate them per file or patient, align two runs,
and compute the clinical statistics, returned as an :class:`Evaluation` (tables and notes; nothing printed).

    >>> from medgap.evaluation import evaluate_run
    >>> ev = evaluate_run("runs/lite0", aggregate="file")        # doctest: +SKIP
    >>> ev.metrics, ev.notes, ev.unit_of_analysis                  # doctest: +SKIP

Parts: :func:`read_run` (one split of predictions.csv, checked, with config.json and split.csv),
:func:`aggregate` (soft voting per file or patient), :func:`align_runs` (two runs on their shared items),
:func:`read_reader` (a reader's reads joined to a run); :func:`evaluate_task_run` for ``regress`` and
``multilabel`` runs. The predictions schema is in
:mod:`medgap.data.predictions`; figures and files of an Evaluation in :mod:`medgap.report.evaluation`.
"""

from medgap.evaluation.aggregation import AGGREGATE_LEVELS, AlignedRuns, aggregate, align_runs
from medgap.evaluation.errors import EvaluationError
from medgap.evaluation.evaluate import METHODS, Evaluation, EvaluationOptions, evaluate_run, run_summary
from medgap.evaluation.reader import read_reader
from medgap.evaluation.run import Run, read_run
from medgap.evaluation.tasks import TaskEvaluation, evaluate_task_run

__all__ = [
    "AGGREGATE_LEVELS",
    "AlignedRuns",
    "Evaluation",
    "EvaluationError",
    "EvaluationOptions",
    "METHODS",
    "Run",
    "aggregate",
    "align_runs",
    "evaluate_run",
    "read_reader",
    "read_run",
    "run_summary",
    "TaskEvaluation",
    "evaluate_task_run",
]
