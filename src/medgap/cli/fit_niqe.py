"""``medgap fit-niqe``: fit a NIQE pristine model on a user's own good images."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import track

from medgap.cli import app
from medgap.cli._common import EXIT_OK, EXIT_USAGE, console
from medgap.io import CollectionError, ImageReadError, collect, read_frames, to_gray255
from medgap.quality.niqe import fit_niqe_model


@app.command("fit-niqe")
def fit_niqe_command(
    paths: list[Path] = typer.Argument(..., help="Files or folders of good-quality images of one modality."),
    out: Path = typer.Option(Path("niqe_model.npz"), "--out", "-o", help="Model file to write (.npz)."),
    sharpness: float = typer.Option(0.75, help="Keep blocks sharper than this fraction of the image's sharpest "
                                    "(NIQE release estimatemodelparam.m: 0.75; MATLAB fitniqe defaults to 0)."),
    video_stride: int = typer.Option(10, help="Use every Nth video frame."),
) -> None:
    """Fit a NIQE pristine model (the NIQE release's method: 96x96 blocks, sharpness 0.75) from your own images; then
    score with `medgap quality --metric niqe:model=OUT`."""
    try:
        sources = collect(paths)
    except CollectionError as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(EXIT_USAGE) from None

    def grays():
        for s in track(sources, description="reading", console=console):
            try:
                for fr in read_frames(s.path, video_stride=video_stride):
                    g = to_gray255(fr)
                    if min(g.shape) >= 96:
                        yield g
            except ImageReadError as e:
                console.print(f"  [yellow]skipped[/] {e}", soft_wrap=True)

    try:
        model = fit_niqe_model(grays(), sharpness_threshold=sharpness)
    except ValueError as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(EXIT_USAGE) from None
    model.save(out)
    console.print(f"NIQE model of {len(sources)} files: {out}  (use: medgap quality --metric niqe:model={out})",
                  soft_wrap=True)
    raise typer.Exit(EXIT_OK)
