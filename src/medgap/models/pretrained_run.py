"""The ``pretrain`` initialisation: a backbone from a ``medgap pretrain`` run directory.

A finished run holds ``pretrain.json`` (the backbone name, the epoch chosen, ...) and ``backbone.pt`` (the
backbone's weights as a plain state dict, without classifier). ``--init pretrain:RUN_DIR`` (or the run
directory's path itself) builds the same timm architecture with a new head of ``num_classes`` and loads those
weights; every backbone tensor must match (a run of another backbone is refused, naming both)."""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from medgap.models._registry import register_init

PRETRAIN_RECORD = "pretrain.json"
"""Written last by a finished pretraining run: it marks the run as usable."""
PRETRAIN_WEIGHTS = "backbone.pt"


class PretrainRunError(ValueError):
    """A pretraining run directory that cannot initialise this backbone; the message names it and the fix."""


def is_pretrain_run(path: str | Path) -> bool:
    """Whether ``path`` is a finished ``medgap pretrain`` run directory."""
    p = Path(path)
    return p.is_dir() and (p / PRETRAIN_RECORD).is_file()


def read_pretrain_record(run_dir: str | Path) -> dict:
    run_dir = Path(run_dir)
    record = run_dir / PRETRAIN_RECORD
    if not run_dir.is_dir():
        raise PretrainRunError(f"--init pretrain:{run_dir}: no such directory; give a `medgap pretrain` run "
                               f"directory")
    if not record.is_file():
        raise PretrainRunError(f"--init pretrain:{run_dir}: no {PRETRAIN_RECORD}, so not a finished `medgap "
                               f"pretrain` run; finish it by rerunning its command (it resumes)")
    try:
        data = json.loads(record.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PretrainRunError(f"{record}: damaged ({type(e).__name__}); rerun the pretraining into a new "
                               f"directory") from None
    if not isinstance(data, dict) or "backbone" not in data:
        raise PretrainRunError(f"{record}: no 'backbone' entry; not a medgap pretraining record")
    return data


@register_init("pretrain", "a `medgap pretrain` run directory (its backbone.pt, the epoch with the lowest "
                           "validation NT-Xent): pretrain:RUN_DIR or the directory's path",
               argument="required")
def _pretrain(name: str, argument: str | None, *, num_classes: int, in_chans: int,
              cache_dir: str | Path | None) -> nn.Module:
    from medgap.models.backbones import _timm, resolve_arch
    from medgap.models.checkpoints import CheckpointError, load_checkpoint_file

    run_dir = Path(str(argument))
    record = read_pretrain_record(run_dir)
    if record["backbone"] != name and resolve_arch(record["backbone"]) != resolve_arch(name):
        raise PretrainRunError(f"--init pretrain:{run_dir}: that run pretrained {record['backbone']!r}, not "
                               f"{name!r}; use --backbone {record['backbone']} or a run of {name}")
    if in_chans != int(record.get("in_chans", 3)):
        raise PretrainRunError(f"--init pretrain:{run_dir}: pretrained with {record.get('in_chans', 3)} input "
                               f"channels, asked for {in_chans}")
    weights = run_dir / PRETRAIN_WEIGHTS
    state = load_checkpoint_file(weights, f"rerun the pretraining into a new directory ({run_dir} is damaged)")
    if not isinstance(state, dict):
        raise CheckpointError(weights, "not a state dict; rerun the pretraining into a new directory")
    model = _timm(resolve_arch(name), pretrained=False, num_classes=num_classes, in_chans=in_chans)
    head = {f"{k}" for k in model.state_dict() if k.startswith(_classifier_prefix(model))}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k not in head]
    if missing or unexpected:
        raise PretrainRunError(f"{weights}: does not fit {name} ({len(missing)} tensors missing, e.g. "
                               f"{(missing or unexpected)[0]!r}; {len(unexpected)} unexpected); is the run's "
                               f"backbone {record['backbone']!r} the same architecture?")
    return model


def _classifier_prefix(model: nn.Module) -> str:
    """The state-dict prefix of timm's classifier (``classifier.``, ``fc.``, ``head.fc.``...)."""
    clf = model.get_classifier()
    for name, module in model.named_modules():
        if module is clf:
            return name + "." if name else ""
    return "\0"  # no classifier module found: nothing is exempt
