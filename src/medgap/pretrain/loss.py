"""USCL's objective: NT-Xent over the two views of each video (lightly's ``NTXentLoss``: the other videos of the
batch are the negatives, gathered from every process under DDP) plus a weighted cross-entropy on the labelled
videos only (target -1: unlabelled, no term).

References: Chen T. et al., "A Simple Framework for Contrastive Learning of Visual Representations" (SimCLR),
ICML 2020 (NT-Xent); Chen Y. et al., USCL, MICCAI 2021 (the semi-supervised sum)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def labelled_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean cross-entropy over the items with ``target >= 0``, their number); 0 when none is labelled."""
    known = target >= 0
    n = known.sum()
    if not bool(n):
        return logits.sum() * 0.0, n
    return F.cross_entropy(logits[known], target[known], reduction="sum") / n, n


class USCLLoss(nn.Module):
    """``ntxent(z_i, z_j) + ce_weight * (CE(logits_i) + CE(logits_j)) / 2`` over the labelled items; returns the
    total and its parts (``ntxent``, ``ce``, ``labelled``)."""

    def __init__(self, temperature: float = 0.5, ce_weight: float = 0.0, gather_distributed: bool = False):
        super().__init__()
        from lightly.loss import NTXentLoss

        self.ntxent = NTXentLoss(temperature=temperature, gather_distributed=gather_distributed)
        self.ce_weight = float(ce_weight)

    def forward(self, z_i: torch.Tensor, z_j: torch.Tensor, logits_i: torch.Tensor | None = None,
                logits_j: torch.Tensor | None = None, target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        contrastive = self.ntxent(z_i, z_j)
        out = {"ntxent": contrastive, "loss": contrastive}
        if logits_i is not None and target is not None and self.ce_weight > 0:
            ce_i, n = labelled_cross_entropy(logits_i, target)
            ce_j, _ = labelled_cross_entropy(logits_j, target)
            ce = (ce_i + ce_j) / 2
            out.update(ce=ce, labelled=n, loss=contrastive + self.ce_weight * ce)
        return out
