"""``medgap evaluate``: the clinical evaluation of a ``medgap finetune`` run's held-out predictions.

Parses the options, calls :func:`medgap.evaluation.evaluate_run` (reading, checks, aggregation, statistics),
prints its tables and notes and writes evaluation.json, evaluation_metrics.csv and the plots into RUN_DIR through
:func:`medgap.report.evaluation.write_evaluation`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import typer
from rich.table import Table

from medgap.cli import app
from medgap.cli._config import config_command
from medgap.cli._common import EXIT_OK, EXIT_USAGE, check_writable_folder, console, out_console, plain, print_error
from medgap.evaluation import Evaluation, EvaluationError, EvaluationOptions, evaluate_run, run_summary
from medgap.report.evaluation import write_evaluation
from medgap.stats import ComparisonResult, format_p


@dataclass
class EvaluateConfig(EvaluationOptions):
    """The options of `medgap evaluate` (those of :func:`medgap.evaluation.evaluate_run`); ``run()`` evaluates
    and writes the files into RUN_DIR."""

    def evaluate(self) -> Evaluation:
        options = asdict(self)
        return evaluate_run(options.pop("run_dir"), **options)

    def write(self, ev: Evaluation) -> list[Path]:
        return write_evaluation(ev, Path(self.run_dir))  # evaluation_file.json, ... beside the per-item files

    def run(self) -> Evaluation:
        ev = self.evaluate()
        self.write(ev)
        return ev


# --------------------------------------------------------------------------------------------------------
# printing


def _num(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.3f}"


def _ci(low: float, high: float) -> str:
    return "" if not (math.isfinite(low) and math.isfinite(high)) else f"{low:.3f} to {high:.3f}"


def print_evaluation(ev: Evaluation, confidence: float) -> None:
    run, s = ev.run, run_summary(ev.run)
    level = f"{100 * confidence:g}%"
    folds = f", pooled held-out predictions of {len(s['folds'])} folds" if len(s["folds"]) > 1 else ""
    t = Table(title=f"{plain(run.run_dir)}: {s['items']} {ev.unit}s, {s['patients']} patients{folds}")
    t.add_column("class")
    t.add_column("metric", no_wrap=True)
    t.add_column("value", justify="right")
    t.add_column(f"{level} CI (patients)", justify="right")
    t.add_column(f"{level} CI (Wilson)", justify="right")
    t.add_column("n", justify="right")
    previous = None
    for r in ev.metrics.itertuples(index=False):  # r[0] is the class ("class" is not a namedtuple field)
        first = r[0] != previous
        if first and previous is not None:
            t.add_section()
        previous = r[0]
        n = f"{r.successes:.0f}/{r.total:.0f}" if math.isfinite(r.successes) else ""
        t.add_row(plain(r[0]) if first else "", r.metric, _num(r.value), _ci(r.ci_low, r.ci_high),
                  _ci(r.wilson_low, r.wilson_high), n)
    out_console.print(t)
    out_console.print(plain(ev.unit_of_analysis), soft_wrap=True)

    cm = Table(title="confusion matrix (rows true, columns predicted)")
    cm.add_column("true \\ predicted")
    for c in run.classes:
        cm.add_column(plain(c), justify="right")
    for c, row in zip(run.classes, ev.confusion):
        cm.add_row(plain(c), *map(str, row))
    out_console.print(cm)

    if len(ev.per_fold) > 1:
        out_console.print("accuracy per fold: " + ", ".join(
            f"{r.fold}: {r.accuracy:.3f} ({r.items} items, {r.patients} patients)" for r in ev.per_fold.itertuples()))
    for what, r in ev.tests:
        stat = f"{r.statistic_name} = {r.statistic:.3f}" if math.isfinite(r.statistic) else "n/a"
        out_console.print(f"[bold]{plain(what)}[/], {r.test}: {stat}, {format_p(r.p, floor=1e-3)}; {_test_detail(r)}",
                          soft_wrap=True)
    if ev.differences is not None:
        d = ev.differences
        dt = Table(title=f"RUN_DIR minus --against on the shared items, {level} CI (patients)")
        names = (plain(run.run_dir.name), plain(ev.against.run_dir.name) if ev.against else "against")
        for col in ("class", "metric", *names, "difference", "CI"):
            dt.add_column(col, justify="left" if col in ("class", "metric") else "right",
                          no_wrap=col == "metric")
        keep = (d["class"] == "overall") | d.metric.isin(["sensitivity", "specificity", "auc"])
        for r in d[keep].itertuples(index=False):
            dt.add_row(plain(r[0]), r.metric, _num(r.value_a), _num(r.value_b), _num(r.difference),
                       _ci(r.ci_low, r.ci_high))
        out_console.print(dt)
    for note in ev.notes:
        console.print(f"[yellow]note:[/] {plain(note)}", soft_wrap=True)


def _test_detail(r: ComparisonResult) -> str:
    d = r.detail
    if r.test.startswith("McNemar"):
        return (f"accuracy {d['accuracy_a']:.3f} vs {d['accuracy_b']:.3f} on {d['n']} items; only the first right "
                f"{d['only_a_correct']}, only the second {d['only_b_correct']}")
    if r.test == "DeLong":
        return (f"AUC {d['auc_a']:.3f} vs {d['auc_b']:.3f}, difference {d['difference']:.3f} "
                f"({d['ci_low']:.3f} to {d['ci_high']:.3f})")
    (mc, mw), (rc, rw) = d["table"]
    return (f"accuracy {d['accuracy_model']:.3f} ({mc}/{mc + mw}) vs reader {d['accuracy_reader']:.3f} "
            f"({rc}/{rc + rw})")


def _task_of(run_dir: Path) -> str:
    """The run's --task from its config.json (classify when absent or unreadable: evaluate_run says why)."""
    import json

    from medgap.data.predictions import run_task

    try:
        config = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return "classify"
    return run_task(config if isinstance(config, dict) else None)


def _run_task(cfg: EvaluateConfig, run_dir: Path, task: str) -> int:
    """A regress or multilabel run: its metrics with patient-bootstrap CIs (evaluate_task_run), printed and
    written as evaluation_<task>.csv/.json."""
    from medgap.evaluation import evaluate_task_run
    from medgap.report.evaluation import write_task_evaluation

    if cfg.against or cfg.reader or cfg.reader_correct is not None or cfg.aggregate != "item":
        print_error(f"{run_dir} is a --task {task} run: --against, --reader and --aggregate apply to "
                    "classification runs only")
        return EXIT_USAGE
    try:
        ev = evaluate_task_run(run_dir, split=cfg.split, bootstrap=cfg.bootstrap, seed=cfg.seed,
                               confidence=cfg.confidence)
    except EvaluationError as e:
        print_error(e)
        return EXIT_USAGE
    files: list[Path] = []
    _writable(lambda: files.extend(write_task_evaluation(ev)))
    t = Table(title=plain(f"{run_dir.name}: --task {task}, {ev.unit_of_analysis}"))
    for c in ("finding", "metric", "value", f"{cfg.confidence:.0%} CI", "n"):
        t.add_column(c, justify="left" if c in ("finding", "metric") else "right")
    for r in ev.metrics.itertuples(index=False):
        t.add_row(plain(r.finding), plain(r.metric), _num(r.value), _ci(r.ci_low, r.ci_high), str(r.n))
    out_console.print(t)
    for note in ev.notes:
        console.print(f"note: {plain(note)}", soft_wrap=True)
    console.print("written: " + ", ".join(plain(p) for p in files), soft_wrap=True)
    return EXIT_OK


def _run(cfg: EvaluateConfig) -> int:
    run_dir = Path(cfg.run_dir)
    task = _task_of(run_dir)
    if task != "classify":
        return _run_task(cfg, run_dir, task)
    try:
        cfg.check()
        if run_dir.is_dir():  # an unwritable RUN_DIR is found before the bootstrap, not after
            _writable(lambda: check_writable_folder(run_dir))
        ev = cfg.evaluate()
    except EvaluationError as e:
        print_error(e)
        return EXIT_USAGE
    _writable(lambda: cfg.write(ev))
    print_evaluation(ev, cfg.confidence)
    console.print("written: " + ", ".join(plain(p) for p in ev.outputs), soft_wrap=True)
    return EXIT_OK


config_command(
    app, EvaluateConfig, _run, name="evaluate",
    help="Clinical evaluation of held-out predictions: accuracy and per-class sensitivity, specificity, PPV, NPV, "
         "F1, Youden's index and ROC AUC with patient-bootstrap and Wilson CIs, the confusion matrix and ROC plots; "
         "optional tests against another run or a reader.",
    epilog=(
        "Examples:\n\n"
        "  medgap evaluate runs/lite0                                   # metrics with 95% CIs, plots\n\n"
        "  medgap evaluate runs/lite0 --against runs/scratch            # McNemar, DeLong, differences\n\n"
        "  medgap evaluate runs/lite0 --reader-correct 71 --reader-total 100   # chi-square or Fisher\n\n"
        "  medgap evaluate runs/lite0 --reader reads.csv                # reader CSV: item_id,pred\n\n"
        "CIs resample patients (group_id): all frames of a patient enter or leave a resample together. Writes "
        "evaluation.json, "
        "evaluation_metrics.csv, confusion_matrix.png and roc_curves.png into RUN_DIR."
    ),
)


def _writable(write: Callable[[], object]) -> None:
    try:
        write()
    except OSError as e:
        print_error(f"{e}; RUN_DIR must be writable (the results are written there)")
        raise typer.Exit(EXIT_USAGE) from None
