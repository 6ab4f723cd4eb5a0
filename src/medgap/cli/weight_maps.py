"""``medgap weight-maps``: overlays of a ``cnn-wsp`` model's learned pooling weights on any images (the work is
:func:`medgap.report.weight_maps.write_weight_maps`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medgap._options import option
from medgap.cli import app
from medgap.cli._common import EXIT_FAILURES, EXIT_OK, UsageError, check_writable_folder, console, plain
from medgap.cli._config import config_command


@dataclass
class WeightMapsConfig:
    model: Path = option(help="A medgap train-quality run directory (or its fold_<k>/model.pt).", metavar="RUN_DIR")
    paths: list[Path] = option(help="Image files or folders (each file's first frame).", default_factory=list,
                               argument=True)
    out: Path = option(Path("weightmaps"), "Folder for <name>_weightmap.png, <name>_overlay.png and weightmaps.csv.",
                       flags=("-o",))
    fold: int = option(0, "Which fold's model of the run.")
    device: str = option("auto", "auto (CUDA when present), cpu, cuda or cuda:N.")


def _run(cfg: WeightMapsConfig) -> int:
    from medgap.io import collect
    from medgap.quality.cnn_wsp import QualityModelError, _model_file
    from medgap.report.weight_maps import write_weight_maps

    if not cfg.paths:
        raise UsageError("give the image files or folders to draw weight maps for (PATHS)")
    try:
        model = _model_file(cfg.model, cfg.fold)
    except QualityModelError as e:
        raise UsageError(f"--model {cfg.model}: {e}") from None
    check_writable_folder(cfg.out)
    files = [s.path for s in collect(cfg.paths)]
    table = write_weight_maps(model, files, cfg.out, device=cfg.device)
    failed = table[table["error"].notna()]
    for r in failed.itertuples():
        console.print(f"  [yellow]skipped[/] {plain(r.path)}: {plain(r.error)}", soft_wrap=True)
    console.print(f"Weight maps of {len(table) - len(failed)} of {len(table)} images: {plain(cfg.out)} "
                  "(<name>_weightmap.png, <name>_overlay.png, weightmaps.csv)", soft_wrap=True)
    return EXIT_FAILURES if len(failed) else EXIT_OK


config_command(
    app, WeightMapsConfig, _run, name="weight-maps",
    help="Draw where a cnn-wsp quality model looks: each image beside its learned pooling weight map (heat overlay, "
         "colour bar, predicted score), an image-sized overlay PNG, and weightmaps.csv.",
    epilog=("Examples:\n\n"
            "  medgap weight-maps images/ --model runs/clive --out maps/\n\n"
            "  medgap weight-maps scan.dcm --model runs/clive/fold_2/model.pt"),
)
