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


def fit_classifier(features: np.ndarray, y: np.ndarray, weights: np.ndarray, kind: str = "logreg", seed: int = 0,
                   C: float = 1.0):
    """Standardised features -> L2 logistic regression (``logreg``, inverse regularisation strength ``C``) or an
    RBF SVM with Platt probabilities (``svm``), fitted with the items' balance weights."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if kind not in ("logreg", "svm"):
        raise ValueError(f"unknown classifier {kind!r}; choose logreg or svm")
    if kind == "logreg":
        final = LogisticRegression(C=C, max_iter=5000)
    else:
        # Platt scaling by an internal cross-validation, as SVC(probability=True) did (scikit-learn 1.9 deprecates
        # it for this): 5 folds, fewer when a class has fewer items, one SVC refitted on everything
        folds = int(max(2, min(5, np.bincount(np.unique(y, return_inverse=True)[1]).min())))
        final = CalibratedClassifierCV(SVC(random_state=seed), method="sigmoid", ensemble=False, cv=folds)
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


HEAD_CS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
"""Inverse regularisation strengths tried for a fitted head. At 64 px, 1280 standardised EfficientNet-Lite0
features of ~40 POCUS patients separate the training part perfectly, so scikit-learn's default C = 1 is
nearly unregularised: logits up to ~80 and a validation loss of 1.4-4.8 (random head ~1.1) on
../shared/data's POCUS images and clips; C = 1e-4..1e-3 gave 0.8-1.1."""


def weighted_log_loss(logits: np.ndarray, y: np.ndarray, weights: np.ndarray, smoothing: float = 0.0) -> float:
    """sum(w * cross-entropy) / sum(w) of logits (n, k) against classes y, with label smoothing as torch's."""
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    k = logits.shape[1]
    per_item = -(1 - smoothing) * logp[np.arange(len(y)), y] - smoothing / k * logp.sum(1)
    return float((weights * per_item).sum() / weights.sum())


def choose_c(features: np.ndarray, y: np.ndarray, weights: np.ndarray, groups: np.ndarray, n_classes: int,
             seed: int = 0, cs=HEAD_CS) -> float:
    """The C of :data:`HEAD_CS` with the lowest weighted log loss in a patient-grouped, stratified inner
    cross-validation of the training part (a patient's items never on both sides)."""
    from sklearn.model_selection import StratifiedGroupKFold

    patients_per_class = min(len(set(groups[y == c])) for c in np.unique(y))
    k = max(2, min(5, patients_per_class, len(set(groups))))
    splits = list(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(features, y, groups))
    losses = []
    for c in cs:
        total = 0.0
        for tr, te in splits:
            clf = fit_classifier(features[tr], y[tr], weights[tr], "logreg", seed, C=c)
            prob = np.clip(predict_proba(clf, features[te], n_classes), 1e-12, 1)
            total += weighted_log_loss(np.log(prob), y[te], weights[te]) * weights[te].sum()
        losses.append(total)
    return float(cs[int(np.argmin(losses))])


def fit_head(ctx, model: nn.Module) -> dict:
    """Linear probe first, then fine-tune: a logistic regression fitted on the frozen features of the fold's
    training part goes into the model's head (``ctx``: the run's :class:`medgap.train.run.FoldContext`).

    C is chosen by a patient-grouped inner cross-validation of the training part (:func:`choose_c`). The fitted
    head is kept only when its weighted validation loss (on the validation part, which early stopping watches)
    is below the random head's; otherwise the random head stays and the log says so. Returns what was done
    (``head``, ``head_c``, ``head_val_loss``, ``random_head_val_loss``)."""
    train, val, n = ctx.train, ctx.val, ctx.task.num_outputs
    y, smoothing = ctx.targets, float(getattr(ctx.cfg, "label_smoothing", 0.0))
    feats = embeddings(model, ctx.loader(train))
    c = choose_c(feats, y[train], ctx.weights(train), ctx.groups[train], n, ctx.seed)
    clf = fit_classifier(feats, y[train], ctx.weights(train), "logreg", ctx.seed, C=c)
    head = model.get_classifier()
    with torch.no_grad():
        w0, b0 = head.weight.double().numpy().copy(), head.bias.double().numpy().copy()
    val_feats = embeddings(model, ctx.loader(val)).astype(np.float64)
    random_loss = weighted_log_loss(val_feats @ w0.T + b0, y[val], ctx.weights(val), smoothing)
    set_head_from_logreg(model, clf, n)
    with torch.no_grad():
        w1, b1 = head.weight.double().numpy(), head.bias.double().numpy()
    fitted_loss = weighted_log_loss(val_feats @ w1.T + b1, y[val], ctx.weights(val), smoothing)
    info = {"head": "logreg", "head_c": c, "head_val_loss": fitted_loss, "random_head_val_loss": random_loss}
    if not fitted_loss < random_loss:
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(w0))
            head.bias.copy_(torch.from_numpy(b0))
        info["head"] = "random"
        ctx.log(f"fold {ctx.k}: the fitted head's validation loss {fitted_loss:.3f} (logistic regression, C={c:g}) "
                f"is not below a random head's {random_loss:.3f}; fine-tuning starts from the random head")
    else:
        ctx.log(f"fold {ctx.k}: head from a logistic regression (C={c:g} by patient-grouped inner CV), validation "
                f"loss {fitted_loss:.3f} (random head {random_loss:.3f})")
    return info
