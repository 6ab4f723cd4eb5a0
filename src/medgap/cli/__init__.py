"""The ``medgap`` command. One module per command; each holds a config dataclass whose ``run()`` does the
work, so tests build the config directly. Library errors become messages and exit codes only here: every
exception that escapes a command goes through ``_common.exit_code_for`` (see ``EXIT_CODES_HELP``).

Command modules load lazily (:data:`_COMMANDS`): ``medgap --version`` imports none of them and their NumPy,
pandas, numba or torch; ``medgap quality`` imports only ``cli/quality.py``; ``medgap --help`` imports all."""

from __future__ import annotations

import importlib
import os

import typer
import typer.main
from typer.core import TyperGroup

from medgap import __version__
from medgap.cli._common import EXIT_CODES_HELP, exit_code_for


try:  # typer >= 0.20 vendors click and does not install it: use the copy typer raises and builds on
    from typer import _click as click
except ImportError:  # an older typer depends on click itself
    import click

# click's own exits and usage errors (exit 2) pass through unchanged; the vendored copy has no Exit/Abort of its
# own (they are typer.Exit/typer.Abort), an older click does
_PASS_THROUGH: tuple[type[BaseException], ...] = (
    typer.Exit, typer.Abort, click.ClickException, SystemExit, GeneratorExit,
    *(getattr(click.exceptions, name) for name in ("Exit", "Abort") if hasattr(click.exceptions, name)),
)

# command name -> the module that registers it with @app.command (imported when the command runs or is listed)
_COMMANDS = {
    "compare": "medgap.cli.compare",
    "finetune": "medgap.cli.finetune",
    "fit-niqe": "medgap.cli.fit_niqe",
    "quality": "medgap.cli.quality",
    "study": "medgap.cli.study",
    "evaluate": "medgap.cli.evaluate",
    "validate": "medgap.cli.validate",
    "train-quality": "medgap.cli.train_quality",
}


class _MedgapGroup(TyperGroup):
    """Runs a command and turns whatever escapes it into a message and an exit code: 2 for a usage error or
    a path that cannot be read or written, 3 for a crash in medgap (one line; the traceback with --debug),
    130 for Ctrl-C. Click's own exits and usage errors pass through unchanged.

    Commands load lazily: a command of :data:`_COMMANDS` is imported and built the first time it is looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(dict.fromkeys([*super().list_commands(ctx), *_COMMANDS]))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            importlib.import_module(_COMMANDS[cmd_name])  # its @app.command registers it on `app`
            infos = [i for i in app.registered_commands
                     if (i.name or typer.main.get_command_name(i.callback.__name__)) == cmd_name]
            if infos:  # the last registration wins, as when typer builds the group from `app`
                command = typer.main.get_command_from_info(
                    infos[-1], pretty_exceptions_short=app.pretty_exceptions_short,
                    rich_markup_mode=app.rich_markup_mode)
                self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except _PASS_THROUGH:
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



def main() -> None:
    app()
