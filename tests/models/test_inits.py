"""The registry of initialisations: names, "did you mean", specs with an argument, and timm's hub loading path
run against a local Hugging Face cache in offline mode (nothing is fetched)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medgap.models import (
    InitInfo,
    PretrainedUnavailable,
    UnknownInit,
    create_model,
    list_inits,
    register_init,
    resolve_init,
)


@pytest.fixture
def hub_offline(monkeypatch):
    """huggingface_hub reads HF_HUB_OFFLINE once, at import: set its constant so no request is made (a request
    without a network retries for ~45 s before failing)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def _hub_cache(root: Path, repo_id: str, state: dict[str, torch.Tensor]) -> Path:
    """A Hugging Face hub cache holding ``model.safetensors`` of ``repo_id`` at revision main, laid out as
    huggingface_hub writes it (models--OWNER--NAME/refs/main -> snapshots/COMMIT/)."""
    from safetensors.torch import save_file

    commit = "0" * 40
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    save_file({k: v.contiguous() for k, v in state.items()}, repo / "snapshots" / commit / "model.safetensors")
    return root


def test_registry_lists_entries_with_metadata():
    names = [i.name for i in list_inits()]
    assert names[:4] == ["scratch", "imagenet", "hub", "file"]
    info = {i.name: i for i in list_inits()}
    assert all(isinstance(i, InitInfo) and i.description for i in info.values())
    assert not info["scratch"].needs_network and not info["file"].needs_network and info["hub"].needs_network
    assert not info["imagenet"].needs_network_for("efficientnet_lite2")
    assert info["imagenet"].needs_network_for("resnet18")
    with pytest.raises(AttributeError):
        info["scratch"].name = "x"  # frozen


def test_specs_resolve_to_entries_and_arguments(tmp_path):
    assert resolve_init("scratch") == (resolve_init("scratch")[0], None)
    assert resolve_init("hub")[0].name == "hub" and resolve_init("hub")[1] is None
    assert resolve_init("hub:timm/resnet18.a1_in1k")[1] == "timm/resnet18.a1_in1k"
    assert resolve_init(tmp_path / "a.pt") == (resolve_init("file:x")[0], str(tmp_path / "a.pt"))
    assert resolve_init("runs/x/best.ckpt")[1] == "runs/x/best.ckpt"
    assert resolve_init("best.ckpt")[0].name == "file"


@pytest.mark.parametrize("spec, message", [
    ("imagenett", "did you mean imagenet"),
    ("scrach", "did you mean scratch"),
    ("pretrained", r"did you mean pretrain\?"),
    ("weights", r"no such initialisation and no such file\. --init takes scratch, imagenet, hub\[:VALUE\], "
                r"file:VALUE, pretrain:VALUE"),
    ("pretrain", r"give a value after a colon, e\.g\. pretrain:runs/uscl"),
    ("scratch:x", "scratch takes no argument"),
    ("hub:", "give a value after the colon"),
    ("file", "give a value after a colon"),
])
def test_unknown_or_malformed_specs_say_what_to_do(spec, message):
    with pytest.raises(UnknownInit, match=message):
        resolve_init(spec)
    with pytest.raises(ValueError, match=message):  # UnknownInit is a ValueError: the CLI maps it to exit 2
        create_model("efficientnet_lite0", spec, num_classes=3)


def test_a_registered_entry_is_used_by_create_model():
    """The seam for later entries (e.g. a pretraining run directory): register, then --init NAME:ARG works."""
    seen = {}

    @register_init("test-constant", "every weight set to the argument", argument="required")
    def _constant(backbone, argument, *, num_classes, in_chans, cache_dir):
        model = create_model(backbone, "scratch", num_classes=num_classes, in_chans=in_chans)
        seen["backbone"] = backbone
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(float(argument))
        return model

    try:
        model = create_model("efficientnet_lite0", "test-constant:0.25", num_classes=2)
        assert seen["backbone"] == "efficientnet_lite0" and float(model.conv_stem.weight.detach()[0, 0, 0, 0]) == 0.25
        with pytest.raises(ValueError, match="registered twice"):
            register_init("test-constant", "again")(_constant)
    finally:
        from medgap.models import _registry

        _registry._INITS.pop("test-constant")


def test_hub_loads_from_the_hub_cache_offline(tmp_path, hub_offline):
    """hub, hub:TAG and hub:OWNER/REPO go through timm's pretrained loading (hf_hub_download) and read a local
    hub cache: the weights are the cached ones, not the packaged ImageNet ones."""
    torch.manual_seed(1)
    cached = create_model("efficientnet_lite0", "scratch").state_dict()
    _hub_cache(tmp_path, "timm/tf_efficientnet_lite0.in1k", cached)
    _hub_cache(tmp_path, "someone/lite0-ultrasound", {k: v + 1 for k, v in cached.items()
                                                      if v.is_floating_point()} | {k: v for k, v in cached.items()
                                                                                   if not v.is_floating_point()})
    for spec in ("hub", "hub:in1k"):
        model = create_model("efficientnet_lite0", spec, num_classes=3, cache_dir=tmp_path)
        assert torch.equal(model.conv_stem.weight, cached["conv_stem.weight"])
        assert model.get_classifier().out_features == 3
    other = create_model("efficientnet_lite0", "hub:someone/lite0-ultrasound", cache_dir=tmp_path)
    assert torch.equal(other.conv_stem.weight, cached["conv_stem.weight"] + 1)
    packaged = create_model("efficientnet_lite0", "imagenet")  # the offline package, never the hub
    assert not torch.equal(packaged.conv_stem.weight, cached["conv_stem.weight"])


def test_hub_without_the_weights_offline_says_what_to_do(tmp_path, hub_offline):
    with pytest.raises(PretrainedUnavailable, match=r"'resnet18'.*--backbone efficientnet_lite0, efficientnet_lite1, "
                                                    r"efficientnet_lite2.*--init resnet18\.pt"):
        create_model("resnet18", "imagenet", cache_dir=tmp_path)
    with pytest.raises(PretrainedUnavailable, match="from the hub"):
        create_model("efficientnet_lite1", "hub:timm/not-cached", cache_dir=tmp_path)
