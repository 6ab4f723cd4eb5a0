"""``medgap explain``: CAMs, first-layer kernels and effective receptive fields of a trained run (the work is
:func:`medgap.explain.run.explain_run`)."""

from __future__ import annotations

from medgap.cli import app
from medgap.cli._common import EXIT_OK, EXIT_USAGE, console, missing_train_extra, out_console, plain, print_error
from medgap.cli._config import config_command
from medgap.explain.config import ExplainConfig


def _run(cfg: ExplainConfig) -> int:
    try:
        from medgap.explain.run import explain_run
        from medgap.models import CheckpointError
    except ImportError as e:
        error = missing_train_extra(e, "explain")
        if error is None:
            raise
        raise error from None
    try:
        result = explain_run(cfg, log=lambda s: console.print(plain(s, newlines=True), soft_wrap=True))
    except (ValueError, FileNotFoundError, CheckpointError) as e:  # ExplainError, RunLoadError name the fix
        print_error(e)
        return EXIT_USAGE
    table = result.erf.to_string(index=False, float_format=lambda v: f"{v:.3f}")
    out_console.print(plain("effective receptive field (fitted Gaussian sigma):"), soft_wrap=True)
    out_console.print(plain(table, newlines=True), soft_wrap=True)
    for note in result.notes:
        console.print(plain(f"note: {note}"), soft_wrap=True)
    out_console.print(plain(f"Figures: {', '.join(f.path.name for f in result.figures)}; page: {result.page}"),
                      soft_wrap=True)
    return EXIT_OK


config_command(
    app, ExplainConfig, _run, name="explain",
    help="Explain a trained run: Grad-CAM and other CAMs overlaid on images, first-layer kernels, and the "
         "effective receptive field of the trained, ImageNet and random networks (per input size for a "
         "resolution run); PNG figures and explanation.html.",
    epilog=("Examples:\n\n"
            "  medgap explain runs/lite0 --images ../shared/data/cxr --max-images 4\n\n"
            "  medgap explain runs/res --images a.png --images b.png --methods gradcam,scorecam "
            "--target-layer blocks.5\n\n"
            "See docs/explain.md."),
)
