"""The ``medgap`` command. One module per command; each holds a config dataclass whose ``run()`` does the
work, so tests build the config directly. Library errors become messages and exit codes only here."""

from __future__ import annotations

import typer

from medgap import __version__

app = typer.Typer(
    name="medgap",
    help="Measure and act on the gap between ImageNet photos and medical images.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"medgap {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """medgap: no-reference image quality of medical vs natural images, and transfer learning tools."""


from medgap.cli import compare as _compare  # noqa: E402,F401  (registers `medgap compare`)
from medgap.cli import finetune as _finetune  # noqa: E402,F401  (registers `medgap finetune`)
from medgap.cli import fit_niqe as _fit_niqe  # noqa: E402,F401  (registers `medgap fit-niqe`)
from medgap.cli import quality as _quality  # noqa: E402,F401  (registers `medgap quality`)
from medgap.cli import study as _study  # noqa: E402,F401  (registers `medgap study`)
# after finetune: this `evaluate` replaces the one finetune.py still registers (the later registration wins)
from medgap.cli import evaluate as _evaluate  # noqa: E402,F401  (registers `medgap evaluate`)


def main() -> None:
    app()
