"""Typer commands built from config dataclasses (options declared once, see :mod:`medgap._options`).

:func:`config_command` turns every field of a command's config (and of the configs nested in it) into a typer
option or argument with the field's help, flags and default, and adds ``--config FILE``: the JSON or YAML a run
records (``config.json``), read as the config; options given on the command line override its values. The
callback builds the config, checks its choices in one place (:func:`medgap._options.check_choices`, with "did
you mean") and hands it to the command's ``run`` function, whose return value is the exit code.

Why not tyro or jsonargparse: both parse with their own argparse front end, so the typer group that loads
commands lazily, prints rich help and maps library errors to exit codes (``medgap.cli``) would have to go;
typer with dataclasses (one of the choices the library issue names) keeps it, and this module is the glue."""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import typer

from medgap._options import ConfigFileError, check_choices, flag_name, from_dict, meta, read_config_file

try:  # typer >= 0.20 vendors click
    from typer._click.core import ParameterSource
except ImportError:  # an older typer depends on click itself
    from click.core import ParameterSource

_GIVEN = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)

CONFIG_CLASSES: dict[str, tuple[type, tuple[str, ...]]] = {}
"""command name -> (its config class, the fields it leaves out): every command registers here (a test checks
that each command's options are exactly its config's fields)."""


@dataclasses.dataclass(frozen=True)
class _Spec:
    path: tuple[str, ...]  # field names from the outer config down to this field
    field: dataclasses.Field
    type: Any  # the annotation, resolved

    @property
    def name(self) -> str:
        return self.path[-1]

    @property
    def required(self) -> bool:
        return self.field.default is dataclasses.MISSING and self.field.default_factory is dataclasses.MISSING

    def default(self) -> Any:
        if self.field.default_factory is not dataclasses.MISSING:
            return self.field.default_factory()
        return None if self.required else self.field.default


def _specs(cls: type, exclude: Iterable[str] = (), prefix: tuple[str, ...] = ()) -> list[_Spec]:
    """The command-line fields of ``cls``, nested configs flattened (an outer field wins over a nested one of
    the same name; ``exclude`` names fields as ``name`` or ``nested.name``)."""
    hints = typing.get_type_hints(cls)
    exclude = set(exclude)
    own = [f for f in dataclasses.fields(cls) if meta(f, "cli", True)]
    specs, nested = [], []
    for f in own:
        dotted = ".".join((*prefix, f.name))
        if dotted in exclude:
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            nested.append((f, hints[f.name]))
        else:
            specs.append(_Spec((*prefix, f.name), f, hints[f.name]))
    taken = {s.name for s in specs}
    for f, sub in nested:
        for s in _specs(sub, exclude, (*prefix, f.name)):
            if s.name not in taken:
                specs.append(s)
                taken.add(s.name)
    return specs


def _cli_type(tp: Any) -> Any:
    """The type typer parses: ``X | None`` -> X, ``int | str`` -> str (the config converts), lists kept."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _cli_type(args[0])
        return str
    if origin in (list, tuple):
        (arg, *_) = typing.get_args(tp) or (str,)
        return list[arg]
    return tp


def _help(spec: _Spec) -> str:
    """The field's help with its choices, escaped: the app renders help as rich markup, where "[a|b]" or
    "hub[:TAG]" would vanish as tags."""
    from rich.markup import escape

    text = meta(spec.field, "help", "") or ""
    choices = meta(spec.field, "choices")
    if choices:
        text += f" [{'|'.join(choices)}]"
    if spec.required:
        text += " [required, here or in --config]"
    return escape(text)


def _metavar(spec: _Spec, tp: Any) -> str | None:
    """The field's metavar, else the type's name in capitals (PATH, INTEGER; a list shows its element type)."""
    declared = meta(spec.field, "metavar")
    if declared:
        return declared
    if typing.get_origin(tp) is list:
        (arg,) = typing.get_args(tp)
        return {str: "TEXT", Path: "PATH", int: "INTEGER", float: "FLOAT"}.get(arg, "TEXT")
    return None


def _parameter(spec: _Spec) -> inspect.Parameter:
    f = spec.field
    flags = tuple(meta(f, "flags", ()) or ())
    longs = [x for x in flags if x.startswith("--")] or [flag_name(spec.name)]
    shorts = [x for x in flags if not x.startswith("--")]
    tp = _cli_type(spec.type)
    default = spec.default()
    show_default = meta(f, "show_default", True)
    if isinstance(default, list) and not default:
        show_default = False
    if meta(f, "argument", False):
        info = typer.Argument(None, help=_help(spec), metavar=_metavar(spec, tp) and spec.name.upper(),
                              show_default=False)
    elif tp is bool:
        name = longs[0]
        decls = [f"{name}/--no-{name[2:]}" if default else name, *shorts]
        info = typer.Option(bool(default), *decls, help=_help(spec), show_default=False)
    else:
        info = typer.Option(None if spec.required else default, *longs, *shorts, help=_help(spec),
                            metavar=_metavar(spec, tp),
                            show_default=False if spec.required else show_default)
    return inspect.Parameter(spec.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=tp)


def _set(data: dict, path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        data = data.setdefault(key, {})
    data[path[-1]] = value


def _get(data: dict, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def build_config(cls: type, values: dict[str, Any], given: set[str], config_file: Path | None = None, *,
                 exclude: Iterable[str] = (), upgrade: Callable[[dict], dict] | None = None,
                 ignore: Iterable[str] = ()) -> Any:
    """The config from ``--config FILE`` (when given) overridden by the options in ``given``; without a file,
    from the option values (their defaults are the fields' defaults)."""
    specs = _specs(cls, exclude)
    data: dict = {}
    if config_file is not None:
        data = read_config_file(config_file)
        if upgrade is not None:
            data = upgrade(dict(data))
    for spec in specs:
        if config_file is None or spec.name in given:
            value = values[spec.name]
            if isinstance(value, tuple):
                value = list(value)
            if value is None and spec.required:
                continue
            if meta(spec.field, "argument", False) and value is None:
                value = spec.default()
            _set(data, spec.path, value)
    missing = [s for s in specs if s.required and _get(data, s.path) is None]
    if missing:
        s = missing[0]
        what = s.name.upper() if meta(s.field, "argument", False) else flag_name(s.name)
        raise ConfigFileError(f"missing {what} (give it on the command line, or in --config FILE)")
    cfg = from_dict(cls, data, source=str(config_file) if config_file else "the options", ignore=tuple(ignore))
    check_choices(cfg)
    return cfg


def config_command(app: typer.Typer, cls: type, run: Callable[[Any], int | None], *, name: str, help: str,  # noqa: A002
                   epilog: str | None = None, exclude: Iterable[str] = (), upgrade: Callable[[dict], dict] | None = None,
                   ignore: Iterable[str] = (), config_help: str | None = None, group: str = "") -> Callable[..., None]:
    """Register the command ``name`` on ``app``: its options are ``cls``'s fields (and ``--config FILE``); the
    callback builds the config and exits with ``run(cfg)``'s return value (0 when it returns None). ``group``:
    the name of the command group ``app`` is added under (``segment`` for ``medgap segment train``)."""
    exclude = tuple(exclude)
    CONFIG_CLASSES[f"{group} {name}".strip()] = (cls, exclude)
    specs = _specs(cls, exclude)
    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)]
    params += [_parameter(s) for s in specs]
    params.append(inspect.Parameter(
        "config", inspect.Parameter.KEYWORD_ONLY, annotation=Path,
        default=typer.Option(None, "--config", metavar="FILE", help=config_help or (
            "Read the options from a JSON or YAML file (a run's config.json reruns it exactly); options given "
            "on the command line override the file's."))))

    def callback(ctx: typer.Context, **kwargs: Any) -> None:
        config_file = kwargs.pop("config")
        given = {k for k in kwargs if ctx.get_parameter_source(k) in _GIVEN}
        # a ConfigFileError (a ValueError of medgap's) becomes "error: ..." and exit 2 in medgap.cli
        cfg = build_config(cls, kwargs, given, config_file, exclude=exclude, upgrade=upgrade, ignore=ignore)
        code = run(cfg)
        raise typer.Exit(code or 0)

    callback.__signature__ = inspect.Signature(params)  # typer reads the options from here
    callback.__name__ = f"{name.replace('-', '_')}_command"
    callback.__doc__ = help
    app.command(name, epilog=epilog, help=help)(callback)
    return callback
