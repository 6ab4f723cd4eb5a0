"""A real network metric for the tests: a small convolutional net with fixed-seed weights (``testnet``).

Importing this module registers it (worker processes that unpickle the metric import it too: tests/ is on
their sys.path as on the parent's, since pytest puts it there before the fork server starts). ``TinyQualityNet.loads`` counts the models built in this process, a
real count of :meth:`TestNet.load` calls, not a mock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from medgap.quality import get_metric_info, register_metric
from medgap.quality.network import NetworkMetricFn, stack


class TinyQualityNet(nn.Module):
    """conv3x3(1->8) - ReLU - conv3x3(8->8, stride 2) - ReLU - global mean - linear(8->1); input 0-255 / 255."""

    loads = 0
    """Models built by TestNet.load in this process."""
    passes: list[int] = []
    """Frames in each forward pass TestNet.predict made in this process."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.head = nn.Linear(8, 1)
        with torch.no_grad():
            for p in self.parameters():  # deterministic weights, independent of torch's global seed
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x / 255.0))
        x = torch.relu(self.conv2(x))
        return self.head(x.mean(dim=(2, 3)))[:, 0]


@dataclass(frozen=True)
class TestNet(NetworkMetricFn):
    seed: int = 0

    def load(self, device):
        TinyQualityNet.loads += 1
        return TinyQualityNet(self.seed).to(device).eval()

    def predict(self, model, images: Sequence[np.ndarray], device) -> list[dict[str, float]]:
        for x in images:
            if float(np.ptp(x)) == 0.0:  # a check of the metric's own, so that a frame can fail within a batch
                raise ValueError("a constant frame has no structure to score")
        TinyQualityNet.passes.append(len(images))
        x = stack(images, device)
        scores = model(x).cpu().numpy()
        activation = torch.relu(model.conv1(x / 255.0)).mean(dim=(1, 2, 3)).cpu().numpy()
        return [{"testnet": float(s), "testnet_activation": float(a)} for s, a in zip(scores, activation)]


def _make_testnet(seed: int = 0) -> TestNet:
    """``seed``: the weights' seed (another seed, another network, another version)."""
    return TestNet(int(seed))


try:
    get_metric_info("testnet")
except KeyError:  # registered once per process, whoever imports this module first
    register_metric(
        "testnet",
        version="1",
        columns=("testnet", "testnet_activation"),
        lower_is_better=False,
        range=None,
        description="test network: a fixed-seed two-layer conv net (tests/_network_metric.py)",
        reference="medgap tests",
        network=True,
    )(_make_testnet)


def plain_scores(images: Sequence[np.ndarray], seed: int = 0) -> list[float]:
    """The restatement the tests compare with: the same module, built here, run on each frame alone in
    float64 (no stacking, no batching, no cache)."""
    net = TinyQualityNet(seed).double().eval()
    with torch.no_grad():
        return [float(net(torch.from_numpy(np.asarray(x, np.float64))[None, None])[0]) for x in images]


def score_in_worker(item: tuple) -> tuple[int, int, dict[str, float]]:
    """Run in a worker process (the metric arrives pickled, without its model): (pid, models built in this
    process so far, the scores)."""
    import os

    metric, image = item
    values = metric.compute(image)
    return os.getpid(), TinyQualityNet.loads, values
