"""``medgap benchmark``: scratch vs ImageNet vs in-domain (USCL) pretraining under one patient-grouped protocol
(the work is :func:`medgap.pretrain.run_benchmark`)."""

from __future__ import annotations

from medgap.cli import app
from medgap.cli._common import EXIT_OK, EXIT_USAGE, console, plain, print_error
from medgap.cli._config import config_command
from medgap.pretrain.config import BenchmarkConfig


def _run(cfg: BenchmarkConfig) -> int:
    from medgap.cli.finetune import _quiet_lightning
    from medgap.io import CollectionError
    from medgap.models import PretrainedUnavailable
    from medgap.pretrain import PretrainError, run_benchmark
    from medgap.pretrain.benchmark import difference_table

    _quiet_lightning()
    say = lambda s: console.print(plain(s, newlines=True), soft_wrap=True)  # noqa: E731
    try:
        result = run_benchmark(cfg, log=say)
    except (PretrainError, CollectionError, PretrainedUnavailable, ValueError, FileNotFoundError) as e:
        print_error(e)
        return EXIT_USAGE
    show = result.summary[[c for c in result.summary.columns if c.endswith("_per_repeat") or c in ("unit", "init")]]
    say("Held-out results, value (95% CI resampling patients) per repeat of the cross-validation:")
    say(show.to_string(index=False))
    folds = result.per_fold
    if not folds.empty:
        unit = "file" if "file" in set(folds.unit) else folds.unit.iloc[0]
        table = folds[folds.unit == unit].pivot_table(index=["seed", "init"], columns="fold", values="accuracy",
                                                     sort=False)
        say(f"Accuracy per outer fold (per {unit}):")
        say(table.to_string(float_format=lambda v: f"{v:.3f}"))
    diff = difference_table(result.differences)
    if not diff.empty:
        say("Paired differences A - B on the same items (95% CI, patient bootstrap):")
        say(diff.to_string(index=False))
    for note in result.notes:
        say(f"note: {note}")
    say(f"Tables: {result.out}/summary.csv, results.csv (per class: sensitivity, specificity, F1, ...), "
        f"differences.csv, per_fold.csv, pretraining.csv; figure: {result.out}/benchmark.png")
    return EXIT_OK


config_command(
    app, BenchmarkConfig, _run, name="benchmark",
    help="Does in-domain pretraining help? Scratch, ImageNet and USCL pretraining inside each fold, fine-tuned "
         "alike in repeated patient-grouped cross-validation; accuracy, balanced accuracy, AUC per item, clip and "
         "patient with patient-bootstrap CIs, paired differences and a plot.",
    epilog=("Examples:\n\n"
            "  medgap benchmark --data MANIFEST.csv --filter modality=pocus,pocus_video --out runs/bench_pocus\n\n"
            "  medgap benchmark --data MANIFEST.csv --filter modality=pocus_blues --out runs/bench_blues\n\n"
            "  medgap benchmark --data lus.csv --preset paper --out runs/paper            # on a GPU\n\n"
            "Rerunning the same command reuses finished runs. See docs/pretraining.md."),
)
