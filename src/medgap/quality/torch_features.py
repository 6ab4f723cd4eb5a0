"""BRISQUE and NIQE features as batched float64 torch operations, on the CPU or a GPU (``--device``).

The same steps as the NumPy/numba path (:mod:`medgap.quality.brisque`, :mod:`medgap.quality.niqe`), written
over a batch of images of one size: the MSCN transform with the exact-zero rule (constant windows and exact
cancellations), the GGD/AGGD moment fits on the release's shape grid (``0.2:0.001:10``, the first minimum as
MATLAB's ``min``), the pairwise products (``circshift`` by [0 1], [1 0], [1 1], [-1 1]) and MATLAB's
``imresize(I, 0.5)`` (bicubic, antialiasing, symmetric border: :func:`medgap.quality._matlab.imresize_contributions`
applied tap by tap in MATLAB's order). Everything stays float64: ``E[I^2] - mu^2`` cancels catastrophically
in float32. What follows the features is the existing code: BRISQUE's SVR (``SvrModel.predict_release``) and
NIQE's distance to its pristine model (``nanmean``/``nancov``/``pinv``).

Images of different sizes in one call are grouped by size; each group runs in batches of at most
:data:`PIXEL_BUDGET` pixels (the largest image alone when it is bigger). The results equal the NumPy path's
to rounding (features within 1e-6, scores within 1e-4 on every image of ../shared/data: tests/quality/
test_torch_features.py); the order of summation differs, so the last bits do.

The scoring engine uses this module when a device is given (``medgap quality --device cpu|cuda``,
``score_collection(device=...)``): the metric then runs as a network metric does, in the main process,
``batch_size`` frames at a time (:mod:`medgap.quality.network`). Needs torch (``pip install 'medgap[train]'``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from medgap.quality._matlab import AGGD_MEAN, AGGD_SCALE, GAM, R_AGGD, R_GGD, gaussian_taps, imresize_contributions
from medgap.quality.brisque import _VAR_GATE_REL, CANCEL_TOL, FLAT_REL_TOL
from medgap.quality.network import NetworkMetricFn

__all__ = ["PIXEL_BUDGET", "BrisqueTorch", "NiqeTorch", "brisque_backend", "brisque_features_torch",
           "imresize_half_torch", "niqe_backend", "niqe_features_torch"]

PIXEL_BUDGET = 1 << 22
"""Pixels per batch (4 Mi: about 32 MiB per float64 tensor; a dozen temporaries live at once)."""

_TAPS = gaussian_taps(7, 7.0 / 6.0)
_DTYPE = torch.float64


@functools.lru_cache(maxsize=8)
def _tables(device: str) -> dict[str, torch.Tensor]:
    """The shape grid and its ratio tables on ``device``."""
    t = {name: torch.as_tensor(a, dtype=_DTYPE, device=device) for name, a in
         (("gam", GAM), ("r_ggd", R_GGD), ("r_aggd", R_AGGD), ("scale", AGGD_SCALE), ("mean", AGGD_MEAN),
          ("taps", _TAPS))}
    return t


def _grid_argmin(table: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """The first index of min |table - value| for each value (MATLAB's ``min``; torch.argmin returns the
    first minimum as well)."""
    return torch.argmin(torch.abs(values[:, None] - table[None, :]), dim=1)


def _pad(x: torch.Tensor, mode: str, p: int = 3) -> torch.Tensor:
    """(N, H, W) padded by ``p`` on every side with zeros or by replicating the border."""
    return F.pad(x[:, None], (p, p, p, p), mode="constant" if mode == "zeros" else "replicate")[:, 0]


def _filter(x: torch.Tensor, taps: torch.Tensor, mode: str) -> torch.Tensor:
    """Separable 7x7 correlation of (N, H, W) with ``taps`` in both directions; ``mode``: ``"zeros"``
    (``filter2(..., 'same')``) or ``"replicate"`` (``imfilter(..., 'replicate')``). Written as shifted
    multiply-adds: torch's float64 convolution on the CPU is ten times slower."""
    k = taps.numel()
    h, w = x.shape[1], x.shape[2]
    xp = _pad(x, mode, k // 2)
    g = [float(v) for v in taps]
    rows = xp[:, :, 0:w] * g[0]  # along each row first, as the numba kernel
    for j in range(1, k):
        rows.add_(xp[:, :, j:j + w], alpha=g[j])  # one fused pass per tap
    out = rows[:, 0:h, :] * g[0]
    for j in range(1, k):
        out.add_(rows[:, j:j + h, :], alpha=g[j])
    return out


def _window_range(x: torch.Tensor, mode: str) -> torch.Tensor:
    """max - min of each 7x7 window, padded with zeros or by replicating the border (separable, exact)."""
    h, w = x.shape[1], x.shape[2]
    xp = _pad(x, mode)
    hi = xp[:, :, 0:w]
    lo = hi
    for j in range(1, 7):
        hi = torch.maximum(hi, xp[:, :, j:j + w])
        lo = torch.minimum(lo, xp[:, :, j:j + w])
    top, bottom = hi[:, 0:h], lo[:, 0:h]
    for j in range(1, 7):
        top = torch.maximum(top, hi[:, j:j + h])
        bottom = torch.minimum(bottom, lo[:, j:j + h])
    return top - bottom


def _abs_max(x: torch.Tensor) -> torch.Tensor:
    """max |I| per image, shape (N, 1, 1)."""
    return torch.amax(torch.abs(x), dim=(1, 2), keepdim=True)


def imresize_half_torch(x: torch.Tensor) -> torch.Tensor:
    """MATLAB ``imresize(img, 0.5)`` of each image of an (N, H, W) float64 batch (as
    :func:`medgap.quality._matlab.imresize_half`: rows first, then columns, tap by tap in MATLAB's order)."""
    out = x
    for dim in (1, 2):
        w, idx = imresize_contributions(out.shape[dim])
        wt = torch.as_tensor(w, dtype=_DTYPE, device=x.device)
        it = torch.as_tensor(idx, dtype=torch.long, device=x.device)
        view = (1, -1, 1) if dim == 1 else (1, 1, -1)
        acc = out.index_select(dim, it[:, 0]) * wt[:, 0].view(view)
        for k in range(1, w.shape[1]):  # tap by tap, in MATLAB's order
            acc.addcmul_(out.index_select(dim, it[:, k]), wt[:, k].view(view))
        out = acc
    return out


# --- BRISQUE ---------------------------------------------------------------------------------------------

def _brisque_mscn(x: torch.Tensor, taps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(MSCN, constant-window pixel count per image) with zero padding and BRISQUE's exact-zero rule."""
    scale = 1.0 + _abs_max(x)
    flat_tol = FLAT_REL_TOL * scale
    mu = _filter(x, taps, "zeros")
    s2 = _filter(x * x, taps, "zeros")
    var = torch.abs(s2 - mu * mu)
    d = x - mu
    m = d / (torch.sqrt(var) + 1.0)
    m = torch.where(d * d <= (CANCEL_TOL * CANCEL_TOL) * (x * x + s2), torch.zeros_like(m), m)
    # a constant window has a computed variance below the gate (as the numba kernel): without such a pixel in
    # the batch, the exact range test is skipped
    if not bool((var <= flat_tol * flat_tol + _VAR_GATE_REL * scale * scale).any()):
        return m, torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    flat = _window_range(x, "zeros") <= flat_tol
    m = torch.where(flat, torch.zeros_like(m), m)
    return m, flat.sum(dim=(1, 2))


def _brisque_moments(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The sufficient statistics of :func:`medgap.quality.brisque._kernels.moments` for each image: (N, 2)
    GGD sums and (N, 4, 5) AGGD sums (sum |p|, sum p^2 over p < 0, count p < 0, sum p^2 over p > 0, count)."""
    ggd = torch.stack([m.abs().sum(dim=(1, 2)), (m * m).sum(dim=(1, 2))], dim=1)
    # m[i, j] times m[i, j-1], m[i-1, j], m[i-1, j-1], m[i+1, j-1], wrapping around (circshift)
    shifted = (torch.roll(m, 1, dims=2), torch.roll(m, 1, dims=1), torch.roll(m, (1, 1), dims=(1, 2)),
               torch.roll(m, (-1, 1), dims=(1, 2)))
    rows = []
    n = m.shape[0]
    for other in shifted:
        p = (m * other).view(n, -1)
        pn = p.clamp(max=0.0)  # the negative products (zeros elsewhere), so that few passes are needed
        pp = p - pn
        rows.append(torch.stack([pp.sum(dim=1) - pn.sum(dim=1), torch.linalg.vecdot(pn, pn),
                                 (p < 0).sum(dim=1).to(_DTYPE), torch.linalg.vecdot(pp, pp),
                                 (p > 0).sum(dim=1).to(_DTYPE)], dim=1))
    return ggd, torch.stack(rows, dim=1)


def _brisque_fit(ggd: torch.Tensor, aggd: torch.Tensor, n: float, t: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The 18 features of one scale for each image (NaN rows where the fit is undefined: the caller says why)."""
    sigma_sq = ggd[:, 1] / n
    e = ggd[:, 0] / n
    feats = [t["gam"][_grid_argmin(t["r_ggd"], torch.nan_to_num(sigma_sq / (e * e), nan=0.0))], sigma_sq]
    for s in range(4):
        pa, qn, nn, qp, npos = aggd[:, s].unbind(dim=1)
        left = torch.sqrt(qn / nn)
        right = torch.sqrt(qp / npos)
        gh = left / right
        rhat = (pa / n) ** 2 / ((qn + qp) / n)
        rhatnorm = rhat * (gh**3 + 1.0) * (gh + 1.0) / (gh**2 + 1.0) ** 2
        alpha = t["gam"][_grid_argmin(t["r_aggd"], torch.nan_to_num(rhatnorm, nan=0.0))]
        lg1, lg2, lg3 = (torch.special.gammaln(c / alpha) for c in (1.0, 2.0, 3.0))
        const = torch.exp(0.5 * lg1) / torch.exp(0.5 * lg3)  # sqrt(gamma(1/a)) / sqrt(gamma(3/a))
        eta = (right - left) * (torch.exp(lg2) / torch.exp(lg1)) * const
        feats += [alpha, eta, left * left, right * right]
    return torch.stack(feats, dim=1)


def _brisque_errors(ggd: np.ndarray, aggd: np.ndarray) -> list[str | None]:
    """The numpy path's reason for each image whose fit is undefined (its messages, word for word)."""
    out: list[str | None] = []
    for g, a in zip(ggd, aggd):
        reason = None
        if g[0] == 0.0:
            reason = "all MSCN coefficients are 0 (a constant or fully flat image): BRISQUE is undefined"
        else:
            for s in range(4):
                if a[s, 2] == 0 or a[s, 4] == 0:
                    side = "negative" if a[s, 2] == 0 else "positive"
                    reason = (f"no {side} pairwise MSCN products (shift {s + 1}): BRISQUE's AGGD fit is undefined")
                    break
        out.append(reason)
    return out


def _brisque_batch(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """(features (N, 36), flat fractions (N,), reasons) of an (N, H, W) float64 batch of checked images."""
    t = _tables(str(x.device))
    feats, reasons = [], [None] * x.shape[0]
    nflat = None
    for scale in (x, imresize_half_torch(x)):
        m, count = _brisque_mscn(scale, t["taps"])
        nflat = count if nflat is None else nflat
        ggd, aggd = _brisque_moments(m)
        n = float(scale.shape[1] * scale.shape[2])
        feats.append(_brisque_fit(ggd, aggd, n, t))
        for i, r in enumerate(_brisque_errors(ggd.cpu().numpy(), aggd.cpu().numpy())):
            reasons[i] = reasons[i] or r
    size = x.shape[1] * x.shape[2]
    return (torch.cat(feats, dim=1).cpu().numpy(), (nflat.to(_DTYPE) / size).cpu().numpy(), reasons)


def _check_brisque(gray: np.ndarray) -> None:
    from medgap.quality.brisque import _check

    _check(gray)


def _batches(images: Sequence[np.ndarray], budget: int) -> list[list[int]]:
    """Indices grouped by shape, each group cut into batches of at most ``budget`` pixels (one image at least)."""
    groups: dict[tuple, list[int]] = {}
    for i, x in enumerate(images):
        groups.setdefault(np.shape(x), []).append(i)
    out = []
    for shape, idx in groups.items():
        per = max(1, budget // max(1, math.prod(shape)))
        out += [idx[k:k + per] for k in range(0, len(idx), per)]
    return out


def _run_batched(images: Sequence[np.ndarray], device: Any, check: Callable[[np.ndarray], np.ndarray],
                 batch: Callable[[torch.Tensor], list[Any]], budget: int) -> list[Any]:
    """``batch`` on the images that pass ``check`` (which returns the array to use or raises), grouped by
    size; an image that fails its check gets its exception."""
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    out: list[Any] = [None] * len(images)
    ready: list[np.ndarray | None] = []
    for i, img in enumerate(images):
        try:
            ready.append(check(img))
        except ValueError as e:
            out[i] = e
            ready.append(None)
    ok = [i for i, r in enumerate(ready) if r is not None]
    for idx in _batches([ready[i] for i in ok], budget):  # type: ignore[misc]
        chosen = [ok[j] for j in idx]
        x = torch.from_numpy(np.stack([ready[i] for i in chosen])).to(device=dev, dtype=_DTYPE)
        for i, r in zip(chosen, batch(x)):
            out[i] = r
    return out


def brisque_features_torch(images: Sequence[np.ndarray], device: str | Any = "cpu",
                           budget: int = PIXEL_BUDGET) -> list[tuple[np.ndarray, float] | ValueError]:
    """For each gray 0-255 image: ``(36 features, flat fraction)`` as :func:`medgap.quality.brisque.
    brisque_features` gives them, or the ``ValueError`` it would raise (too small, NaN/Inf, constant,
    undefined fit). Images of any sizes; those of one size run as one batch."""
    def check(img: np.ndarray) -> np.ndarray:
        gray = np.ascontiguousarray(img, dtype=np.float64)
        if gray.ndim != 2:
            raise ValueError(f"expected a 2-D gray image, got shape {gray.shape}")
        _check_brisque(gray)
        return gray

    def batch(x: torch.Tensor) -> list[Any]:
        feats, flat, reasons = _brisque_batch(x)
        return [ValueError(r) if r else (feats[i], float(flat[i])) for i, r in enumerate(reasons)]

    return _run_batched(images, device, check, batch, budget)


class BrisqueTorch(NetworkMetricFn):
    """BRISQUE on a device: torch features (:func:`brisque_features_torch`), then the release's SVR. The
    "model" loaded per device is the SVR (parsed once) and the shape tables."""

    same_size = False  # groups by size itself, and batches by pixels

    def __init__(self, model_path: str | None = None, range_path: str | None = None) -> None:
        self.model_path, self.range_path = model_path, range_path

    def load(self, device: Any) -> Any:
        from medgap.quality.brisque.model import default_model, load_model

        _tables(str(device))
        return default_model() if self.model_path is None else load_model(self.model_path, self.range_path)

    def predict(self, model: Any, images: Sequence[np.ndarray], device: Any) -> list[Mapping[str, float]]:
        out = []
        for r in brisque_features_torch(images, device):
            if isinstance(r, BaseException):
                raise r  # the engine reruns the batch frame by frame: this frame fails alone
            feats, flat = r
            out.append({"brisque": model.predict_release(feats), "brisque_flat_fraction": flat})
        return out


# --- NIQE ------------------------------------------------------------------------------------------------

def _niqe_mscn(x: torch.Tensor, taps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(MSCN, sigma) with replicate padding and NIQE's exact-zero rule (:func:`medgap.quality.niqe._mscn`)."""
    flat_tol = FLAT_REL_TOL * (1.0 + _abs_max(x))
    mu = _filter(x, taps, "replicate")
    second = _filter(x * x, taps, "replicate")
    sigma = torch.sqrt(torch.abs(second - mu * mu))
    dev = x - mu
    norm = dev / (sigma + 1.0)
    small = dev.abs() <= flat_tol
    cancel = dev * dev <= (CANCEL_TOL * CANCEL_TOL) * (x * x + second)
    flat = _window_range(x, "replicate") <= flat_tol
    return torch.where(small & (cancel | flat), torch.zeros_like(norm), norm), sigma


def _blocks_torch(a: torch.Tensor, b: int) -> torch.Tensor:
    """(N, n_blocks, b, b) in MATLAB's column-major block order (as :func:`medgap.quality.niqe._blocks`)."""
    n, h, w = a.shape
    nr, nc = h // b, w // b
    return a[:, : nr * b, : nc * b].reshape(n, nr, b, nc, b).permute(0, 3, 1, 2, 4).reshape(n, nr * nc, b, b)


def _grid_index_torch(r_aggd: torch.Tensor, rhat: torch.Tensor) -> torch.Tensor:
    """:func:`medgap.quality.niqe._grid_index`: the nearest grid point (the lower on a tie), the first for NaN."""
    nan = torch.isnan(rhat)
    v = torch.where(nan, torch.zeros_like(rhat), rhat).contiguous()
    hi = torch.clamp(torch.searchsorted(r_aggd, v), 1, r_aggd.numel() - 1)
    lo = hi - 1
    idx = torch.where((r_aggd[lo] - v) ** 2 <= (r_aggd[hi] - v) ** 2, lo, hi)
    return torch.where(nan, torch.zeros_like(idx), idx)


def _aggd_torch(x: torch.Tensor, t: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """``estimateaggdparam`` over the last axis: (index on the grid, beta_left, beta_right)."""
    sq = x * x
    neg, pos = x < 0, x > 0
    n_left, n_right = neg.sum(dim=-1).to(_DTYPE), pos.sum(dim=-1).to(_DTYPE)
    std_left = torch.sqrt(torch.where(neg, sq, 0.0).sum(dim=-1) / n_left)  # 0/0 = NaN: an empty side, as MATLAB
    std_right = torch.sqrt(torch.where(pos, sq, 0.0).sum(dim=-1) / n_right)
    gh = std_left / std_right
    rhat = x.abs().mean(dim=-1) ** 2 / sq.mean(dim=-1)
    rhat_norm = rhat * (gh**3 + 1) * (gh + 1) / (gh**2 + 1) ** 2
    i = _grid_index_torch(t["r_aggd"], rhat_norm.reshape(-1)).reshape(rhat_norm.shape)
    return i, std_left * t["scale"][i], std_right * t["scale"][i]


_NIQE_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


def _niqe_block_features(blocks: torch.Tensor, t: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """(N, n_blocks, 18): ``computefeature`` of each block (:func:`medgap.quality.niqe._block_features`)."""
    n, nb, b, _ = blocks.shape
    i, bl, br = _aggd_torch(blocks.reshape(n, nb, b * b), t)
    feats = [t["gam"][i], (bl + br) / 2]
    for shift in _NIQE_SHIFTS:
        prod = blocks * torch.roll(blocks, shift, dims=(2, 3))  # circshift within the block
        i, bl, br = _aggd_torch(prod.reshape(n, nb, b * b), t)
        feats += [t["gam"][i], (br - bl) * t["mean"][i], bl, br]
    return torch.stack(feats, dim=-1)


def _niqe_batch(x: torch.Tensor) -> np.ndarray:
    """(N, n_blocks, 36) NIQE features of an (N, H, W) batch already cropped to multiples of 96."""
    from medgap.quality.niqe import BLOCK

    t = _tables(str(x.device))
    first = _niqe_block_features(_blocks_torch(_niqe_mscn(x, t["taps"])[0], BLOCK), t)
    second = _niqe_block_features(_blocks_torch(_niqe_mscn(imresize_half_torch(x), t["taps"])[0], BLOCK // 2), t)
    return torch.cat([first, second], dim=-1).cpu().numpy()


def niqe_features_torch(images: Sequence[np.ndarray], device: str | Any = "cpu",
                        budget: int = PIXEL_BUDGET) -> list[np.ndarray | ValueError]:
    """For each gray 0-255 image: its (blocks, 36) NIQE features as :func:`medgap.quality.niqe.niqe_features`
    gives them, or the ``ValueError`` it would raise. Images of any sizes; those of one (cropped) size run as
    one batch."""
    from medgap.quality.niqe import cropped_input

    return _run_batched(images, device, cropped_input, lambda x: list(_niqe_batch(x)), budget)


class NiqeTorch(NetworkMetricFn):
    """NIQE on a device: torch block features (:func:`niqe_features_torch`), then the distance to the pristine
    model as the NumPy path computes it."""

    same_size = False

    def __init__(self, model_path: str | None = None) -> None:
        self.model_path = model_path

    def load(self, device: Any) -> Any:
        from medgap.quality.niqe import _load

        _tables(str(device))
        return _load(self.model_path)

    def predict(self, model: Any, images: Sequence[np.ndarray], device: Any) -> list[Mapping[str, float]]:
        from medgap.quality.niqe import _niqe_from_features

        out = []
        for r in niqe_features_torch(images, device):
            if isinstance(r, BaseException):
                raise r
            score, nan_fraction = _niqe_from_features(r, model)
            out.append({"niqe": score, "niqe_nan_block_fraction": nan_fraction})
        return out


def brisque_backend(model: str | None = None, range: str | None = None) -> BrisqueTorch:  # noqa: A002
    """The torch backend of the ``brisque`` metric with the metric's parameters (registered as its
    ``torch_backend``)."""
    return BrisqueTorch(None if model is None else str(model), None if range is None else str(range))


def niqe_backend(model: str | None = None) -> NiqeTorch:
    """The torch backend of the ``niqe`` metric with the metric's parameters."""
    return NiqeTorch(None if model is None else str(model))
