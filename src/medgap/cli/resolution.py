"""``medgap resolution``: one model per input size, their stacking ensemble and its evaluation (the work is
:func:`medgap.ensemble.resolution.run_resolution`)."""

from __future__ import annotations

from medgap.cli import app
from medgap.cli._common import EXIT_OK, EXIT_USAGE, console, missing_train_extra, out_console, plain, print_error
from medgap.cli._config import config_command
from medgap.ensemble.config import ResolutionConfig


def _run(cfg: ResolutionConfig) -> int:
    from medgap.io import CollectionError

    try:
        from medgap.cli.finetune import _quiet_lightning
        from medgap.ensemble.resolution import run_resolution
        from medgap.models import PretrainedUnavailable
    except ImportError as e:
        error = missing_train_extra(e, "resolution")
        if error is None:
            raise
        raise error from None
    try:
        _quiet_lightning()
        from medgap.cli._lightning_progress import EpochProgressBar

        result = run_resolution(cfg, log=lambda s: console.print(plain(s, newlines=True), soft_wrap=True),
                                callbacks=[EpochProgressBar()])
    except (CollectionError, PretrainedUnavailable, ValueError, FileNotFoundError) as e:
        print_error(e)  # ConfigError, EnsembleError, EvaluationError are ValueErrors naming the fix
        return EXIT_USAGE
    out_console.print(plain(f"held-out metrics, 95% CI from a patient bootstrap ({result.task}):"), soft_wrap=True)
    out_console.print(plain(result.summary().to_string(), newlines=True), soft_wrap=True)
    diff = result.differences
    main = diff[diff["class"] == "overall"]
    out_console.print(plain("paired differences (model_a - model_b), patient bootstrap:"), soft_wrap=True)
    out_console.print(plain(main.to_string(index=False, float_format=lambda v: f"{v:.3f}"), newlines=True),
                      soft_wrap=True)
    out_console.print(plain(f"Run: {result.out} (scale_weights.csv, scale_weights.png, resolution_metrics.csv, "
                            f"resolution_differences.csv; explain with: medgap explain {result.out} --images ...)"),
                      soft_wrap=True)
    return EXIT_OK


def _upgrade(recorded: dict) -> dict:
    from medgap.train.config import upgrade_recorded

    return upgrade_recorded(recorded)


config_command(
    app, ResolutionConfig, _run, name="resolution", exclude=("image_size",), upgrade=_upgrade,
    help="Train one model per input size with the same patient-grouped folds, stack them with per-class softmax "
         "weights over sizes fitted on validation predictions, and evaluate every size and the ensemble on the "
         "test folds (patient-bootstrap CIs, paired differences).",
    epilog=("Examples:\n\n"
            "  medgap resolution --data MANIFEST.csv --sizes 64,128,256 --out runs/res\n\n"
            "  medgap resolution --data cxr.csv --task multilabel --label-columns covid,bacterial --balance patient "
            "--sizes 32,64,128 --out runs/res_ml\n\n"
            "Every `medgap finetune` option applies to each size (--image-size is --sizes). Rerunning the same "
            "command resumes it. Then: medgap evaluate RUN/ensemble --against RUN/size_128; medgap explain RUN "
            "--images ... See docs/resolution.md."),
)
