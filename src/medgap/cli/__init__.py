"""The ``medgap`` command. One module per command; each holds a config dataclass whose ``run()`` does the
work, so tests build the config directly. Library errors become messages and exit codes only here: every
exception that escapes a command goes through ``_common.exit_code_for`` (see ``EXIT_CODES_HELP``)."""

from __future__ import annotations

import os

import click
import typer
from typer.core import TyperGroup

from medgap import __version__
from medgap.cli._common import EXIT_CODES_HELP, exit_code_for


class _MedgapGroup(TyperGroup):
    """Runs a command and turns whatever escapes it into a message and an exit code: 2 for a usage error or
    a path that cannot be read or written, 3 for a crash in medgap (one line; the traceback with --debug),
    130 for Ctrl-C. Click's own exits and usage errors pass through unchanged."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.Abort, click.ClickException,
                SystemExit, GeneratorExit):
            raise
        except BaseException as e:  # noqa: BLE001  (also Rust panics from decoders, which are BaseException)
            debug = bool(ctx.params.get("debug")) or os.environ.get("MEDGAP_DEBUG", "") not in ("", "0")
            raise typer.Exit(exit_code_for(e, debug)) from None


app = typer.Typer(
    name="medgap",
    help="Measure and act on the gap between ImageNet photos and medical images.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    cls=_MedgapGroup,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"medgap {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    debug: bool = typer.Option(False, "--debug", help="On an error, print the full traceback (also MEDGAP_DEBUG=1)."),
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
