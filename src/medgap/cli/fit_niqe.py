"""``medgap fit-niqe``: fit a NIQE pristine model on a user's own good images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.progress import track

from medgap._options import option
from medgap.cli import app
from medgap.cli._config import config_command
from medgap.cli._common import EXIT_CODES_HELP, EXIT_OK, UsageError, check_writable_folder, console, plain, writing
from medgap.io import ImageReadError, collect, read_frames, to_gray255
from medgap.quality.niqe import BLOCK, fit_niqe_model


def model_path(out: Path) -> Path:
    """The file ``numpy.savez`` writes for ``out``: it appends ``.npz`` unless the name already ends with it."""
    return out if out.name.endswith(".npz") else out.with_name(out.name + ".npz")


@dataclass
class FitNiqeConfig:
    paths: list[Path] = option(help="Files or folders of good-quality images of one modality.",
                               default_factory=list, argument=True)
    out: Path = option(Path("niqe_model.npz"), "Model file to write (.npz is appended when missing).", flags=("-o",))
    sharpness: float = option(0.75, "Keep blocks sharper than this fraction of the image's sharpest (NIQE release "
                                    "estimatemodelparam.m: 0.75; MATLAB fitniqe defaults to 0).")
    video_stride: int = option(10, "Use every Nth video frame.")


def fit_niqe(cfg: FitNiqeConfig) -> int:
    if not cfg.paths:
        raise UsageError("give the files or folders of good-quality images to fit on (PATHS)")
    if cfg.video_stride < 1:
        raise UsageError(f"--video-stride must be at least 1 (every Nth frame), got {cfg.video_stride}")
    if not 0.0 <= cfg.sharpness <= 1.0:
        raise UsageError(f"--sharpness takes a fraction in [0, 1], got {cfg.sharpness}")
    target = model_path(cfg.out)
    sources = collect(cfg.paths)
    check_writable_folder(target.parent)
    used: set[Path] = set()
    skipped: list[tuple[str, str]] = []

    def grays():
        for s in track(sources, description="reading", console=console):
            try:
                for fr in read_frames(s.path, video_stride=cfg.video_stride):
                    g = to_gray255(fr)
                    where = f"{s.path}" + (f" frame {fr.frame}" if fr.frame is not None else "")
                    if not np.isfinite(g).all():
                        skipped.append((where, "NaN or infinite pixel values (NIQE is undefined)"))
                        continue
                    if min(g.shape[:2]) < BLOCK:
                        skipped.append((where, f"smaller than {BLOCK}x{BLOCK} px (no NIQE block)"))
                        continue
                    used.add(s.path)
                    yield g
            except ImageReadError as e:
                skipped.append((str(s.path), str(e)))

    try:
        model = fit_niqe_model(grays(), sharpness_threshold=cfg.sharpness)
    except ValueError as e:  # too few usable blocks: say how much was skipped (listed below)
        raise UsageError(f"{e} ({len(used)} usable files, {len(skipped)} images or frames skipped)") from None
    finally:
        for where, why in skipped[:20]:
            console.print(f"  [yellow]skipped[/] {plain(where)}: {plain(why)}", soft_wrap=True)
        if len(skipped) > 20:
            console.print(f"  ... and {len(skipped) - 20} more skipped", soft_wrap=True)
    with writing(target):
        model.save(target)
    console.print(f"NIQE model of {len(used)} of {len(sources)} files ({len(skipped)} images or frames skipped): "
                  f"{plain(target)}  (use: medgap quality --metric niqe:model={plain(target)})", soft_wrap=True)
    return EXIT_OK


config_command(
    app, FitNiqeConfig, fit_niqe, name="fit-niqe", epilog=EXIT_CODES_HELP,
    help="Fit a NIQE pristine model (the NIQE release\'s method: 96x96 blocks, sharpness 0.75) from your own images; then score with `medgap quality --metric niqe:model=OUT`. An unreadable file, or an image with NaN or infinite pixel values (NIQE is undefined there), is skipped and named; the fit fails only when too few usable blocks remain.",
)
