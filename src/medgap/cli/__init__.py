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
from typer.core import TyperCommand, TyperGroup

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

# command name -> (the module that registers it, its one-line summary for `medgap --help`). The module registers a
# command with @app.command / config_command, or a group of sub-commands with app.add_typer(sub_app, name=...).
# `medgap --help` lists the commands from these summaries without importing any module (2.7 s of imports before);
# a command's module is imported when it runs or its own --help is asked for.
_COMMANDS: dict[str, tuple[str, str]] = {
    "compare": ("medgap.cli.compare", "Group statistics of an existing scores table (CSV/JSON and printed)."),
    "finetune": ("medgap.cli.finetune", "Fine-tune a pretrained backbone with patient-grouped cross-validation."),
    "fit-niqe": ("medgap.cli.fit_niqe", "Fit a NIQE pristine model from your own images."),
    "quality": ("medgap.cli.quality", "Score every image and frame with no-reference quality metrics."),
    "study": ("medgap.cli.study", "The domain-gap study in one command: scores, statistics and an HTML report."),
    "evaluate": ("medgap.cli.evaluate", "Clinical evaluation of a run's held-out predictions, with CIs."),
    "validate": ("medgap.cli.validate", "Validate quality metrics against human ratings (SROCC, PLCC, RMSE)."),
    "train-quality": ("medgap.cli.train_quality", "Train a blind quality model (cnn-wsp) on mean opinion scores."),
    "weight-maps": ("medgap.cli.weight_maps", "Overlays of where a cnn-wsp model looks (pooling weights) on images."),
    "resolution": ("medgap.cli.resolution", "One model per input size, their stacking ensemble and its evaluation."),
    "explain": ("medgap.cli.explain", "CAMs, first-layer kernels and effective receptive fields of a trained run."),
    "pretrain": ("medgap.cli.pretrain", "Contrastive pretraining on ultrasound videos (USCL) for --init pretrain:RUN."),
    "benchmark": ("medgap.cli.benchmark", "Scratch vs ImageNet vs in-domain pretraining, fine-tuned alike, with CIs."),
    "segment": ("medgap.cli.segment", "Segment first: train a U-Net on masks, predict PNG/NIfTI/DICOM-SEG masks."),
}


# Commands whose `--workers N` (N > 1) starts worker processes. Their fork server (scoring.engine.prestart) is
# started as soon as the command line says so, before the command's module is imported: the server imports the
# scoring code and loads the metrics' kernels (about 1.2 s) on another core while this process imports the
# command (about 1 s), instead of after it. A config file's `workers`, read later, starts it in the command.
_STARTS_WORKERS = ("quality", "study")


def _workers_asked(args: list[str]) -> int:
    """The value of `--workers N` / `--workers=N` / `-j N` / `-jN` in a command's arguments (0: not given, not a
    number (the command's own parser reports it), or only the command's --help asked for)."""
    if "--help" in args[: args.index("--") if "--" in args else len(args)]:
        return 0
    for i, a in enumerate(args):
        if a == "--":
            break
        value = None
        if a in ("--workers", "-j") and i + 1 < len(args):
            value = args[i + 1]
        elif a.startswith("--workers="):
            value = a.partition("=")[2]
        elif a.startswith("-j") and len(a) > 2:
            value = a[2:]
        if value is not None:
            return int(value) if value.isdigit() else 0
    return 0


class _Listed(TyperCommand):
    """A command of :data:`_COMMANDS` as `medgap --help` lists it before its module is imported: a name and a
    summary. Running it, or asking for its own help, loads the real command (:meth:`_MedgapGroup.resolve_command`)."""

    def __init__(self, name: str, summary: str):
        super().__init__(name, help=summary, short_help=summary)


class _MedgapGroup(TyperGroup):
    """Runs a command and turns whatever escapes it into a message and an exit code: 2 for a usage error or
    a path that cannot be read or written, 3 for a crash in medgap (one line; the traceback with --debug),
    130 for Ctrl-C. Click's own exits and usage errors pass through unchanged.

    Commands load lazily: a command of :data:`_COMMANDS` is imported and built the first time it runs or its
    help is shown; the listing in `medgap --help` uses the summaries of :data:`_COMMANDS`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(dict.fromkeys([*super().list_commands(ctx), *_COMMANDS]))

    def load_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The real command ``cmd_name``: its module imported and its typer command (or group) built."""
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            module = _COMMANDS[cmd_name][0]
            importlib.import_module(module)  # its @app.command / app.add_typer registers it on `app`
            options = dict(pretty_exceptions_short=app.pretty_exceptions_short, rich_markup_mode=app.rich_markup_mode)
            commands = [i for i in app.registered_commands
                        if (i.name or typer.main.get_command_name(i.callback.__name__)) == cmd_name]
            groups = [i for i in app.registered_groups if i.name == cmd_name]
            command = None
            if commands:  # the last registration wins, as when typer builds the group from `app`
                command = typer.main.get_command_from_info(commands[-1], **options)
            elif groups:
                command = typer.main.get_group_from_info(groups[-1], suggest_commands=True, **options)
            if command is not None:
                self.add_command(command, cmd_name)
        command = super().get_command(ctx, cmd_name)
        if command is not None and cmd_name in _COMMANDS:
            command.short_help = _COMMANDS[cmd_name][1]  # the same line in `medgap --help` before and after loading
        return command

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            return _Listed(cmd_name, _COMMANDS[cmd_name][1])
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        if args and args[0] in _STARTS_WORKERS:
            from medgap.scoring.engine import prestart  # standard library only; starts nothing for N < 2

            prestart(_workers_asked(args[1:]))
        if args and args[0] in _COMMANDS:
            self.load_command(ctx, args[0])
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except _PASS_THROUGH:
            raise
        except BaseException as e:  # noqa: BLE001  (also Rust panics from decoders, which are BaseException)
            debug = bool(ctx.params.get("debug")) or os.environ.get("MEDGAP_DEBUG", "") not in ("", "0")
            raise typer.Exit(exit_code_for(e, debug, ctx.invoked_subcommand or "")) from None


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
