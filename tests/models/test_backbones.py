"""Backbones: the offline ImageNet EfficientNet-Lite0 mapping classifies real ImageNet photos; checkpoints load;
strategies freeze exactly what they say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medgap.models import (
    CheckpointError,
    PretrainedUnavailable,
    apply_strategy,
    create_model,
    preprocessing,
    trainable_parameter_names,
)


def _imagenet_batch(shared_data: Path, size: int = 224):
    import cv2
    from timm.data import ImageNetInfo

    index = {w: i for i, w in enumerate(ImageNetInfo().label_names())}  # synsets ship with timm (offline)
    files = sorted((shared_data / "natural").glob("*.JPEG"))
    pre = preprocessing("efficientnet_lite0", "imagenet")
    mean, std = np.array(pre["mean"]), np.array(pre["std"])
    xs = []
    for f in files:  # resize shorter side to size/0.875, centre crop (the usual ImageNet evaluation)
        img = cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)
        h, w = img.shape[:2]
        s = round(size / 0.875) / min(h, w)
        img = cv2.resize(img, (max(round(w * s), size), max(round(h * s), size)), interpolation=cv2.INTER_CUBIC)
        h, w = img.shape[:2]
        img = img[(h - size) // 2 : (h - size) // 2 + size, (w - size) // 2 : (w - size) // 2 + size]
        xs.append(((img / 255.0 - mean) / std).transpose(2, 0, 1))
    labels = np.array([index[f.name.split("_")[0]] for f in files])
    return torch.tensor(np.stack(xs), dtype=torch.float32), labels


def test_lite0_imagenet_weights_classify_imagenet_photos(shared_data):
    """Published top-1 of EfficientNet-Lite0 is about 75%; on these 200 photos (one per class) we measured 87%
    with tf_efficientnet_lite0 (69.5% with the non-TF padding variant), so 0.8 catches a broken mapping."""
    x, labels = _imagenet_batch(shared_data)
    model = create_model("efficientnet_lite0", "imagenet").eval()
    with torch.no_grad():
        pred = torch.cat([model(b).argmax(1) for b in x.split(50)]).numpy()
    top1 = (pred == labels).mean()
    assert len(labels) == 200 and top1 >= 0.8, top1


def test_scratch_differs_and_head_is_replaced():
    a = create_model("efficientnet_lite0", "scratch", num_classes=3)
    b = create_model("efficientnet_lite0", "imagenet", num_classes=3)
    assert a.get_classifier().out_features == 3 == b.get_classifier().out_features
    assert not torch.equal(a.conv_stem.weight, b.conv_stem.weight)


def test_checkpoint_path_with_prefix_and_other_head(tmp_path):
    src = create_model("efficientnet_lite0", "imagenet", num_classes=5)
    torch.save({"state_dict": {f"model.{k}": v for k, v in src.state_dict().items()}}, tmp_path / "run.ckpt")
    dst = create_model("efficientnet_lite0", tmp_path / "run.ckpt", num_classes=3)  # different head: skipped
    assert torch.equal(dst.conv_stem.weight, src.conv_stem.weight)
    assert dst.get_classifier().out_features == 3
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        create_model("efficientnet_lite0", tmp_path / "missing.pt")


class _TouchPayload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):  # unpickling would run Path.touch(marker)
        return (Path.touch, (self.marker,))


def test_init_checkpoint_that_needs_more_than_tensors_is_refused_unrun(tmp_path):
    """--init FILE: a pickle that would run code, and a truncated file, raise CheckpointError naming the file."""
    marker = tmp_path / "payload_ran"
    torch.save({"state_dict": {"w": torch.ones(2)}, "x": _TouchPayload(marker)}, tmp_path / "planted.pt")
    with pytest.raises(CheckpointError, match=r"planted\.pt: holds more than tensors"):
        create_model("efficientnet_lite0", tmp_path / "planted.pt", num_classes=3)
    assert not marker.exists()
    torch.save(create_model("efficientnet_lite0", "scratch", num_classes=3).state_dict(), tmp_path / "ok.pt")
    blob = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(blob[: len(blob) // 3])
    with pytest.raises(CheckpointError, match=r"cut\.pt: truncated or damaged.*--init"):
        create_model("efficientnet_lite0", tmp_path / "cut.pt", num_classes=3)


def test_other_architectures_offline_say_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PretrainedUnavailable, match="--init"):
        create_model("resnet18", "imagenet")


def test_strategies_freeze_the_right_parameters():
    model = create_model("efficientnet_lite0", "scratch", num_classes=3)
    everything = {n for n, _ in model.named_parameters()}
    head = {n for n in everything if n.startswith("classifier.")}
    assert trainable_parameter_names(apply_strategy(model, "full")) == everything
    assert trainable_parameter_names(apply_strategy(model, "linear")) == head
    assert trainable_parameter_names(apply_strategy(model, "features")) == set()
    partial = trainable_parameter_names(apply_strategy(model, "partial", trainable_stages=1))
    last = {n for n in everything if n.startswith(f"blocks.{len(model.blocks) - 1}.")}
    after = {n for n in everything if n.startswith(("conv_head.", "bn2."))}
    assert partial == head | last | after
    two = trainable_parameter_names(apply_strategy(model, "partial", trainable_stages=2))
    assert partial < two and any(n.startswith(f"blocks.{len(model.blocks) - 2}.") for n in two)
    with pytest.raises(ValueError, match="unknown strategy"):
        apply_strategy(model, "half")


@pytest.mark.parametrize("strategy, all_batchnorm", [("linear", False), ("full", True), ("full", False)])
def test_batchnorm_statistics_frozen_where_asked_while_scale_and_shift_train(strategy, all_batchnorm):
    """One real optimiser step in training mode: frozen BatchNorm keeps its running statistics; with
    ``all_batchnorm`` (--bn-stats frozen) every BatchNorm does, while its weight still changes under ``full``."""
    from medgap.models.strategies import frozen_modules_in_eval

    torch.manual_seed(0)
    model = apply_strategy(create_model("efficientnet_lite0", "scratch", num_classes=3), strategy)
    model.train()
    frozen_modules_in_eval(model, all_batchnorm=all_batchnorm)
    bn = model.bn1
    mean0, weight0 = bn.running_mean.clone(), bn.weight.detach().clone()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    torch.nn.functional.cross_entropy(model(torch.rand(4, 3, 64, 64)), torch.tensor([0, 1, 2, 0])).backward()
    opt.step()
    stats_kept = strategy == "linear" or all_batchnorm
    assert torch.equal(bn.running_mean, mean0) == stats_kept
    assert torch.equal(bn.weight.detach(), weight0) == (strategy == "linear")
