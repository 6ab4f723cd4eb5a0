"""`medgap finetune` without the training packages names the fix (issue 9, item 7), and its progress bar goes
to stderr counting epochs from 1 to the real total."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A real import failure, as when the packages are not installed: a finder ahead of every other one that says
# so for torch, lightning and timm. (sys.modules['torch'] = None also fails the import, but SciPy's array-API
# check then reads None.Tensor and crashes first.)
_WITHOUT_TORCH = """
import sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "lightning", "timm"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NotInstalled())
sys.argv = ["medgap", *sys.argv[1:]]
from medgap.cli import main
main()
"""


def test_finetune_without_torch_names_the_extra(tmp_path):
    r = subprocess.run([sys.executable, "-c", _WITHOUT_TORCH, "finetune", "--data", str(tmp_path), "--out",
                        str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    text = " ".join(r.stderr.split())
    assert "medgap finetune needs PyTorch, timm and Lightning" in text and "pip install 'medgap[train]'" in text
    assert "internal error" not in text and "Traceback" not in text
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv", [
    ["pretrain", "--videos", "{d}", "--out", "{d}/run"],
    ["benchmark", "--data", "{d}", "--out", "{d}/run"],
    ["segment", "train", "--pairs", "{d}/pairs.csv", "--out", "{d}/run"],
    ["resolution", "--data", "{d}", "--out", "{d}/run"],
])
def test_every_training_command_without_torch_names_the_extra(tmp_path, argv):
    """Before: pretrain, benchmark and segment train ended in 'internal error: ModuleNotFoundError' (exit 3)."""
    (tmp_path / "pairs.csv").write_text("image,mask\n")
    args = [a.format(d=tmp_path) for a in argv]
    r = subprocess.run([sys.executable, "-c", _WITHOUT_TORCH, *args], capture_output=True, text=True, timeout=120)
    text = " ".join((r.stderr + r.stdout).split())
    assert r.returncode == 2, text
    assert f"medgap {argv[0]} needs PyTorch" in text and "pip install 'medgap[train]'" in text
    assert "internal error" not in text and "Traceback" not in text
    assert not (tmp_path / "run").exists()


def test_other_commands_work_without_torch(tmp_path):
    r = subprocess.run([sys.executable, "-c", _WITHOUT_TORCH, "compare", "--help"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "Compare groups" in r.stdout, r.stderr


_FIT = """
import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from medgap.cli._lightning_progress import EpochProgressBar


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, i):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, i):
        self.log("val_loss", self.layer(batch[0]).pow(2).mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


data = DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4)
trainer = L.Trainer(max_epochs=3, callbacks=[EpochProgressBar()], logger=False, enable_checkpointing=False,
                    enable_model_summary=False, accelerator="cpu")
trainer.fit(Tiny(), data, data)
"""


def test_progress_bar_on_stderr_with_epochs_from_one():
    """Lightning's default bar printed `Epoch 2/2` on stdout in the last of 3 epochs."""
    pytest.importorskip("lightning")
    r = subprocess.run([sys.executable, "-c", _FIT], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Epoch" not in r.stdout
    assert "Epoch 3/3" in r.stderr and "Epoch 2/2" not in r.stderr
