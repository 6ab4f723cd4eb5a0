"""Every registered metric made for contract tests, including those with required parameters (cnn-wsp needs a
trained model: a tiny real one is written here with medgap's own save_quality_model)."""

from __future__ import annotations

from pathlib import Path

from medgap.quality import create_metric, get_metric_info


def cnn_wsp_file(folder: Path, variant: int) -> dict:
    """A tiny cnn-wsp model (timm's test_efficientnet, scratch, seeded by ``variant``) saved as model.pt."""
    import torch

    from medgap.models.wsp import create_quality_net, save_quality_model

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(variant)
    net = create_quality_net("test_efficientnet", "scratch")
    path = save_quality_model(net, folder / "model.pt", backbone="test_efficientnet", image_size=64,
                              mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    return {"model": path}


REQUIRED = {"cnn-wsp": cnn_wsp_file}
"""metric -> (folder, variant) -> its required parameters."""


def make_metric(name: str, folder: Path, variant: int = 3):
    """``create_metric(name)``, with a real value for each required parameter (written under ``folder``;
    ``variant`` 3 differs from the contract tests' variants 1 and 2)."""
    if get_metric_info(name).required:
        return create_metric(name, **REQUIRED[name](folder / f"required-{name}", variant))
    return create_metric(name)
