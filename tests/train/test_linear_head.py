"""A logistic regression fitted on frozen features, written into the network's head, gives the same
probabilities as scikit-learn's pipeline on the same images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medgap.models import create_model
from medgap.train.linear_head import embeddings, fit_classifier, predict_proba, set_head_from_logreg


@pytest.mark.parametrize("n_classes, present", [(3, [0, 1, 2]), (2, [0, 1]), (3, [0, 2])])
def test_head_from_logreg_reproduces_the_pipeline(n_classes, present):
    torch.manual_seed(0)
    model = create_model("efficientnet_lite0", "scratch", num_classes=n_classes)
    model.train()
    model.blocks[0].eval()  # a mixed state, as a frozen part under the linear/partial strategies leaves it
    x = torch.rand(24, 3, 32, 32) + torch.arange(24).view(-1, 1, 1, 1) % 3 * 0.3  # features that differ by class
    y = np.resize(present, 24)
    loader = [(x[i:i + 8],) for i in range(0, 24, 8)]
    feats = embeddings(model, loader)
    # modes come back as they were: Lightning keeps what it finds, so a model left in eval mode would fine-tune
    # with frozen BatchNorm statistics and no dropout
    assert model.training and not model.blocks[0].training and model.blocks[1].training
    model.eval()
    clf = fit_classifier(feats, y, np.linspace(0.5, 1.5, 24), "logreg")
    set_head_from_logreg(model, clf, n_classes)
    with torch.no_grad():
        got = torch.softmax(model(x).double(), dim=1).numpy()
    np.testing.assert_allclose(got, predict_proba(clf, feats, n_classes), atol=1e-5)
    absent = sorted(set(range(n_classes)) - set(present))
    assert (got[:, absent] < 1e-9).all()
