"""Options declared once: a command's config is a dataclass whose fields carry their help, flags and choices.

The command line (``medgap.cli._config`` builds each typer command from its config's fields), ``--config FILE``
(the ``config.json`` a run records, or YAML) and the library (choices checked in :func:`check_choices`, with
"did you mean") all read the same field declarations, so they cannot drift apart.

No third-party CLI library declares options this way on top of typer (tyro and jsonargparse bring their own
parsers, which would replace the typer group that loads commands lazily and maps errors to exit codes), so the
few lines here do it with the standard library's dataclass field metadata::

    @dataclass
    class MyConfig:
        out: Path = option(Path("run"), "Run folder.", flags=("-o",))
        balance: str = option("class", "Sampler and loss weights.", choices=("none", "patient", "class"))
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

_MISSING = dataclasses.MISSING


class ConfigValueError(ValueError):
    """An option's value is not one it takes; the message names the option, the choices and a close match."""


def option(default: Any = _MISSING, help: str = "", *, flags: Sequence[str] = (),  # noqa: A002
           choices: Sequence[str] | None = None, default_factory: Any = _MISSING, cli: bool = True,
           argument: bool = False, metavar: str | None = None, show_default: bool | str = True,
           resumable: bool = False) -> Any:
    """A dataclass field that is also a command-line option.

    ``help``: one line for ``--help``; ``flags``: short forms (``-o``); ``choices``: the values it takes
    (checked by :func:`check_choices`); ``cli=False``: a config field that the command line does not expose
    (set by the program); ``argument=True``: a positional argument (a list of paths, say); ``resumable``:
    may differ between an interrupted run and its resumption (devices, precision)."""
    metadata = {"help": help, "flags": tuple(flags), "choices": tuple(choices) if choices is not None else None,
                "cli": cli, "argument": argument, "metavar": metavar, "show_default": show_default,
                "resumable": resumable}
    if default_factory is not _MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def fields(cls_or_obj: Any) -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(cls_or_obj)


def meta(f: dataclasses.Field, key: str, default: Any = None) -> Any:
    return f.metadata.get(key, default)


def flag_name(name: str) -> str:
    """The command-line spelling of a field: ``image_size`` -> ``--image-size``."""
    return "--" + name.replace("_", "-")


def did_you_mean(value: Any, choices: Sequence[str]) -> str:
    """`` Did you mean 'x'?`` for a close match among ``choices`` (case-insensitive), else ''."""
    text = str(value)
    lowered = {c.lower(): c for c in map(str, choices)}
    if text.lower() in lowered:
        return f" Did you mean {lowered[text.lower()]!r}?"
    close = difflib.get_close_matches(text.lower(), list(lowered), n=1, cutoff=0.6)
    return f" Did you mean {lowered[close[0]]!r}?" if close else ""


def check_choice(value: Any, choices: Sequence[str], option_name: str,
                 error: type[Exception] = ConfigValueError) -> None:
    """Raise ``error`` naming ``--option``, the value, a close match and every choice when ``value`` is not one."""
    if value in choices:
        return
    raise error(f"{option_name} {value!r} is not one of {', '.join(map(str, choices))}.{did_you_mean(value, choices)}")


def check_choices(cfg: Any, error: type[Exception] = ConfigValueError) -> None:
    """Every field declared with ``choices`` (nested configs too) holds one of them: the one place where a
    config's choices are checked, for the command line, ``--config`` files and library calls alike."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_choices(value, error)
            continue
        choices = meta(f, "choices")
        if value is None and f.default is None:  # an optional field left unset ("from the suffix", say)
            continue
        if choices is not None:
            check_choice(value, choices, flag_name(f.name), error)


def resumable_fields(cls: Any) -> set[str]:
    """Names of the fields declared ``resumable`` (they may change when an interrupted run resumes)."""
    return {f.name for f in dataclasses.fields(cls) if meta(f, "resumable", False)}


class ConfigFileError(ValueError):
    """A ``--config`` file that cannot be read as this command's config; the message names the file and key."""


def _convert(tp: Any, value: Any) -> Any:
    """A JSON value as the field's declared type (Path fields from strings, lists of paths, nested configs)."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if Path in non_none and isinstance(value, str):
            return Path(value)
        return value
    if tp is Path:
        return Path(value)
    if origin in (list, tuple, Sequence) and args and args[0] is Path and isinstance(value, (list, tuple)):
        return [Path(v) for v in value]
    if dataclasses.is_dataclass(tp) and isinstance(value, Mapping):
        return from_dict(tp, value)
    return value


def from_dict(cls: type, data: Mapping[str, Any], *, source: str = "the config",
              ignore: Sequence[str] = ()) -> Any:
    """Build the config ``cls`` from a mapping (a recorded ``config.json``): unknown keys are refused with a
    close match (a typo would otherwise be ignored silently), missing keys take their defaults. ``ignore``:
    keys a run records beside the options (they are skipped)."""
    if not isinstance(data, Mapping):
        raise ConfigFileError(f"{source}: expected a mapping of option names to values, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names and k not in ignore]
    if unknown:
        k = unknown[0]
        raise ConfigFileError(f"{source}: unknown option {k!r}.{did_you_mean(k, names)} "
                              f"Options: {', '.join(names)}")
    kwargs = {k: _convert(hints[k], v) for k, v in data.items() if k in names}
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required field missing
        raise ConfigFileError(f"{source}: {e}") from None


def read_config_file(path: str | Path) -> dict:
    """A JSON or YAML mapping from ``path`` (``.yaml``/``.yml`` as YAML, anything else as JSON)."""
    import json

    path = Path(path)
    text = path.read_text()  # its OSError names the file
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:  # noqa: BLE001  (json or yaml's own errors)
        raise ConfigFileError(f"{path}: not a valid {'YAML' if path.suffix.lower() in ('.yaml', '.yml') else 'JSON'} "
                              f"file ({e})") from None
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path}: expected a mapping of option names to values")
    return data


def to_dict(cfg: Any) -> dict:
    """The config as JSON-ready values (paths as strings), nested configs as mappings: what a run records and
    what ``--config`` reads back."""
    from medgap._json import jsonable

    return jsonable(dataclasses.asdict(cfg))


RUN_CONFIG = "config.json"
"""The file in a run directory that records its options (``to_dict``); ``--config`` reads it back."""


def write_run_config(out: str | Path, cfg: Any) -> None:
    """Record ``cfg`` as ``out/config.json``."""
    import json

    (Path(out) / RUN_CONFIG).write_text(json.dumps(to_dict(cfg), indent=1))


def check_resumable(out: str | Path, cfg: Any, *, error: type[Exception] = ConfigValueError, what: str = "a run",
                    upgrade: typing.Callable[[dict], dict] | None = None, ignore: typing.Iterable[str] = ()) -> None:
    """One run directory holds one experiment: rerunning with the same options resumes it, other options are
    refused with every difference named (``error``). Fields declared ``resumable`` and those in ``ignore`` may
    differ; ``upgrade`` fills in fields that a config recorded by an older medgap lacks."""
    import json

    path = Path(out) / RUN_CONFIG
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path}: damaged ({e}); it records the run's options. Choose a new --out, or delete {path} "
                    "only if you are sure this run was made with the same options") from None
    if not isinstance(old, dict):
        raise error(f"{path}: not a medgap run configuration; choose a new --out")
    if upgrade is not None:
        old = upgrade(old)
    new, free = to_dict(cfg), resumable_fields(type(cfg)) | set(ignore)
    diff = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new))
            if old.get(k) != new.get(k) and k not in free]
    if diff:
        raise error(f"{out} holds {what} with another configuration ({'; '.join(diff)}); rerun with the same "
                    "options to resume it, or choose a new --out")
