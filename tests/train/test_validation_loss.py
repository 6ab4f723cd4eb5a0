"""The validation loss that early stopping and the best checkpoint watch is sum(w * loss) / sum(w) over the
whole epoch (issue 9, item 5). Averaging per-batch weighted means by batch size, as Lightning does with a
value logged per step, loses most of the balancing when batches carry unequal weight totals."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from medgap.data.balance import balance_weights
from medgap.train.module import Classifier


def test_weighted_validation_loss_is_the_epoch_ratio_of_sums():
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    # one long clip (patient a, 9 frames) and two short ones: patient balance gives a's frames 1/9 each, so the
    # batches of 4 carry weight totals 4/9, 4/9 + ... very unlike their sizes
    groups = np.array(list("aaaaaaaaabbc"))
    targets = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 1, 1, 2])
    w = balance_weights(targets, groups, "patient")
    x = torch.randn(len(targets), 5)
    data = torch.utils.data.TensorDataset(x, torch.as_tensor(targets), torch.as_tensor(w))
    loader = torch.utils.data.DataLoader(data, batch_size=4, shuffle=False)
    module = Classifier(model, label_smoothing=0.1)
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu")
    logged = trainer.validate(module, loader, verbose=False)[0]["val_loss"]

    with torch.no_grad():
        per_item = F.cross_entropy(model(x).double(), torch.as_tensor(targets), reduction="none",
                                   label_smoothing=0.1).numpy()
    w64 = np.asarray(w, np.float64)
    expected = float((w64 * per_item).sum() / w64.sum())
    batch_means = [float((w64[i:i + 4] * per_item[i:i + 4]).sum() / w64[i:i + 4].sum()) for i in (0, 4, 8)]
    assert abs(np.mean(batch_means) - expected) > 0.01  # the data do tell the two apart
    assert logged == pytest.approx(expected, rel=1e-6)
