"""The registry of initialisations: how a backbone's weights start (``--init``).

An entry is a loader registered with :func:`register_init` next to its definition (timm's
``register_model`` pattern) and described by a frozen :class:`InitInfo`. A spec names an entry, optionally
with an argument after a colon (``hub:timm/resnet18.a1_in1k``, ``file:run/best.ckpt``); a path to an
existing file, or anything that looks like a path, is the ``file`` entry; a directory holding a finished
contrastive pretraining run (``pretrain.json``) is the ``pretrain`` entry (``pretrain:RUN_DIR``, see
:mod:`medgap.models.pretrained_run`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from torch import nn


class InitLoader(Protocol):
    def __call__(self, backbone: str, argument: str | None, *, num_classes: int, in_chans: int,
                 cache_dir: str | Path | None) -> nn.Module: ...


@dataclass(frozen=True)
class InitInfo:
    """What an initialisation is. ``needs_network``: it may download (the hub); ``offline_backbones``: the
    backbones for which it works offline all the same (ImageNet weights shipped in a package)."""

    name: str
    description: str
    needs_network: bool = False
    argument: str = ""
    """A value after a colon: ``""`` none, ``"optional"`` (``hub`` or ``hub:ID``), ``"required"`` (``file:PATH``)."""
    offline_backbones: tuple[str, ...] = ()

    def needs_network_for(self, backbone: str) -> bool:
        return self.needs_network and backbone not in self.offline_backbones


class UnknownInit(ValueError):
    """An ``--init`` value that names no registered initialisation and no existing file."""


_INITS: dict[str, tuple[InitInfo, InitLoader]] = {}


def register_init(name: str, description: str, *, needs_network: bool = False, argument: str = "",
                  offline_backbones: tuple[str, ...] = ()) -> Callable[[InitLoader], InitLoader]:
    """Decorator: register ``loader(backbone, argument, *, num_classes, in_chans, cache_dir) -> nn.Module``
    (``argument``: the value after the colon, or None)."""

    def wrap(loader: InitLoader) -> InitLoader:
        if name in _INITS:
            raise ValueError(f"initialisation {name!r} is registered twice")
        if argument not in ("", "optional", "required"):
            raise ValueError(f"argument={argument!r}: '', 'optional' or 'required'")
        _INITS[name] = (InitInfo(name, description, needs_network, argument, offline_backbones), loader)
        return loader

    return wrap


def list_inits() -> list[InitInfo]:
    """Every registered initialisation, in registration order."""
    return [info for info, _ in _INITS.values()]


def _is_run_directory(spec: str | Path) -> bool:
    """A directory holding a finished pretraining run (``pretrain.json``): the ``pretrain`` entry's path rule."""
    p = Path(spec)
    return p.is_dir() and (p / "pretrain.json").is_file()


def _looks_like_path(spec: str) -> bool:
    return "/" in spec or "\\" in spec or Path(spec).suffix != "" or Path(spec).exists()


def resolve_init(spec: str | Path) -> tuple[InitInfo, str | None]:
    """``spec`` -> (the entry, its argument or None). A :class:`~pathlib.Path`, an existing file or a
    path-like string is ``file``; ``NAME:ARG`` gives an argument to an entry that takes one. An unknown name
    raises :class:`UnknownInit` with the closest names ("did you mean")."""
    if _is_run_directory(spec) and "pretrain" in _INITS:  # a `medgap pretrain` run directory itself
        return _INITS["pretrain"][0], str(spec)
    if isinstance(spec, Path):
        return _INITS["file"][0], str(spec)
    spec = str(spec)
    name, sep, argument = spec.partition(":")
    if sep and name in _INITS:
        info = _INITS[name][0]
        if not info.argument:
            raise UnknownInit(f"--init {spec!r}: {name} takes no argument; use --init {name}")
        if not argument:
            raise UnknownInit(f"--init {spec!r}: give a value after the colon, e.g. {_example(name)}")
        return info, argument
    if spec in _INITS:
        info = _INITS[spec][0]
        if info.argument == "required":
            raise UnknownInit(f"--init {spec!r}: give a value after a colon, e.g. {_example(spec)}")
        return info, None
    if _looks_like_path(spec):  # also a Windows drive 'C:\...': its 'C' is no entry
        return _INITS["file"][0], spec
    close = difflib.get_close_matches(spec, list(_INITS), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    names = ", ".join(i.name + {"": "", "optional": "[:VALUE]", "required": ":VALUE"}[i.argument] for i in list_inits())
    raise UnknownInit(f"--init {spec!r}: no such initialisation and no such file. {hint}--init takes {names}, "
                      f"or the path of a checkpoint file")


def _example(name: str) -> str:
    return {"hub": "hub:timm/resnet18.a1_in1k", "file": "file:runs/x/fold_0/best.ckpt",
            "pretrain": "pretrain:runs/uscl"}.get(name, f"{name}:VALUE")


def init_loader(name: str) -> InitLoader:
    return _INITS[name][1]
