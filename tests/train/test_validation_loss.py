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


_DDP_SCRIPT = '''
import sys
import lightning as L
import numpy as np
import torch
from torch import nn
from medgap.train.module import Classifier

torch.manual_seed(0)
model = nn.Linear(5, 3)
x, y, w = torch.load(sys.argv[1])
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y, w), batch_size=2, shuffle=False)
trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                    accelerator="cpu", devices=2, strategy="ddp")
value = trainer.validate(Classifier(model, label_smoothing=0.1), loader, verbose=False)[0]["val_loss"]
with open(sys.argv[2] + f".{trainer.global_rank}", "w") as f:
    f.write(repr(value))
'''


def test_weighted_validation_loss_sums_over_ddp_processes(tmp_path):
    """Two CPU processes (gloo), each validating half of the items: both log the ratio of the global sums."""
    import subprocess
    import sys

    torch.manual_seed(0)
    model = nn.Linear(5, 3)  # the script builds the same model from the same seed
    groups = np.array(list("aaaaaaaaabbc"))
    targets = torch.as_tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 1, 1, 2])
    w = torch.as_tensor(balance_weights(targets.numpy(), groups, "patient"))
    x = torch.randn(len(targets), 5)
    torch.save((x, targets, w), tmp_path / "data.pt")
    (tmp_path / "validate.py").write_text(_DDP_SCRIPT)
    # python script.py: Lightning starts the second process by rerunning this command line
    r = subprocess.run([sys.executable, str(tmp_path / "validate.py"), str(tmp_path / "data.pt"),
                        str(tmp_path / "val_loss")], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    with torch.no_grad():
        per_item = F.cross_entropy(model(x).double(), targets, reduction="none", label_smoothing=0.1).numpy()
    w64 = w.numpy().astype(np.float64)
    expected = float((w64 * per_item).sum() / w64.sum())
    for rank in (0, 1):
        assert float((tmp_path / f"val_loss.{rank}").read_text()) == pytest.approx(expected, rel=1e-6), rank
