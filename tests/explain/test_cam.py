"""CAMs of a small network trained (seconds) to detect a planted bright square: the maps put their mass on the
square, far above its share of the image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from medgap.explain import class_activation_maps, default_target_layer, get_layer
from medgap.explain.errors import ExplainError

SIZE, MARK = 32, 6


def _images(n: int, rng: np.random.Generator, marked: bool):
    x = rng.normal(0.5, 0.15, (n, 1, SIZE, SIZE)).astype(np.float32)
    boxes = []
    for i in range(n):
        r, c = rng.integers(0, SIZE - MARK, 2)
        if marked:
            x[i, 0, r:r + MARK, c:c + MARK] = 1.2
        boxes.append((r, c))
    return torch.from_numpy(x), boxes


@pytest.fixture(scope="module")
def marker_net():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(120):
        pos, _ = _images(32, rng, True)
        neg, _ = _images(32, rng, False)
        x, y = torch.cat([pos, neg]), torch.cat([torch.ones(32), torch.zeros(32)]).long()
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    net.eval()
    pos, _ = _images(64, rng, True)
    neg, _ = _images(64, rng, False)
    with torch.no_grad():
        acc = ((net(pos).argmax(1) == 1).float().mean() + (net(neg).argmax(1) == 0).float().mean()) / 2
    assert acc > 0.95  # the network has learnt the marker
    return net


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "layercam"])
def test_cam_mass_lies_on_the_marker(marker_net, method):
    rng = np.random.default_rng(1)
    x, boxes = _images(12, rng, True)
    maps = class_activation_maps(marker_net, x, marker_net[5], [method], targets=[1] * 12)[method]
    assert maps.shape == (12, SIZE, SIZE) and maps.min() >= 0 and maps.max() <= 1 + 1e-6
    share = []
    for m, (r, c) in zip(maps, boxes):
        share.append(m[r:r + MARK, c:c + MARK].sum() / m.sum())
    area = MARK * MARK / SIZE ** 2  # 3.5%
    assert np.median(share) > 6 * area, (method, np.round(share, 3))


def test_eigencam_and_the_default_target_are_computed(marker_net):
    x, _ = _images(2, np.random.default_rng(2), True)
    maps = class_activation_maps(marker_net, x, marker_net[5], ["eigencam"])
    assert maps["eigencam"].shape == (2, SIZE, SIZE)
    with pytest.raises(ExplainError, match="not one of"):
        class_activation_maps(marker_net, x, marker_net[5], ["gradcamm"])


@pytest.mark.parametrize("backbone, layer", [("tf_efficientnet_lite0", "bn2"), ("resnet18", "layer4"),
                                             ("densenet121", "features.norm5"), ("convnext_atto", "stages.3")])
def test_default_target_layers_are_the_last_feature_maps(backbone, layer):
    import timm

    model = timm.create_model(backbone, pretrained=False, num_classes=2)
    assert default_target_layer(model) == layer
    get_layer(model, layer)
    with pytest.raises(ExplainError, match="Did you mean"):
        get_layer(model, layer + "x")
