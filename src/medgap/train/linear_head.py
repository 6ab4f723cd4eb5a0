"""Classifiers on frozen embeddings (scikit-learn), for the ``features`` strategy and for starting fine-tuning
from a fitted head (linear probe, then fine-tune: Kumar et al., ICLR 2022, "Fine-tuning can distort pretrained
features": a random head's early gradients damage the pretrained features that a fitted head keeps)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def embeddings(model: nn.Module, loader) -> np.ndarray:
    """Pre-logit features of a timm model for every item of ``loader`` (eval mode, no gradients). Every module's
    train/eval mode is restored afterwards: Lightning keeps the modes it finds, so a model left in eval mode
    would fine-tune with frozen BatchNorm statistics and without dropout."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            outs = [model.forward_head(model.forward_features(x), pre_logits=True).float().numpy()
                    for x, *_ in loader]
    finally:
        for m, training in modes:
            m.train(training)
    return np.concatenate(outs)


def fit_classifier(features: np.ndarray, y: np.ndarray, weights: np.ndarray, kind: str = "logreg", seed: int = 0):
    """Standardised features -> L2 logistic regression (``logreg``) or an RBF SVM with Platt probabilities
    (``svm``), fitted with the items' balance weights."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if kind not in ("logreg", "svm"):
        raise ValueError(f"unknown classifier {kind!r}; choose logreg or svm")
    final = LogisticRegression(max_iter=5000) if kind == "logreg" else SVC(probability=True, random_state=seed)
    clf = make_pipeline(StandardScaler(), final)
    return clf.fit(features, y, **{f"{clf.steps[-1][0]}__sample_weight": weights})


def predict_proba(clf, features: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities for all ``n_classes`` (a class absent from the training part gets 0)."""
    prob = np.zeros((len(features), n_classes))
    prob[:, clf.classes_] = clf.predict_proba(features)
    return prob


def set_head_from_logreg(model: nn.Module, clf, n_classes: int) -> None:
    """Write a fitted StandardScaler + LogisticRegression pipeline into the model's linear classifier, so the
    model's logits equal the pipeline's decision function (softmax: the same probabilities). A class absent
    from the training part gets a bias of -30 (probability ~0)."""
    head = model.get_classifier()
    if not isinstance(head, nn.Linear):
        raise ValueError(f"{type(head).__name__} head: a fitted linear head needs an nn.Linear classifier")
    scaler, lr = clf.steps[0][1], clf.steps[-1][1]
    coef, intercept = lr.coef_, lr.intercept_
    if coef.shape[0] == 1:  # binary: sklearn keeps one row; logits [0, z] give softmax = sigmoid(z)
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    w = coef / scaler.scale_
    b = intercept - w @ scaler.mean_
    weight = np.zeros((n_classes, w.shape[1]))
    bias = np.full(n_classes, -30.0)
    weight[lr.classes_], bias[lr.classes_] = w, b
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(weight))
        head.bias.copy_(torch.from_numpy(bias))
