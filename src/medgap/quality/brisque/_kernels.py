"""Fused numba kernels for BRISQUE's per-scale statistics.

Written by hand because no maintained library computes what the release computes in one pass: OpenCV's
Gaussian filter replicates borders (the release zero-pads, ``filter2(..., 'same')``), its resize is not
MATLAB's antialiased bicubic, and chaining numpy/OpenCV primitives costs a full-image copy per shifted
product. Everything is float64: ``E[I^2] - mu^2`` cancels catastrophically in float32 (about 4e-3 grey
levels^2 of error at mu = 255), which would break the 1e-5 feature tolerance against the float64 reference.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Reassociation lets LLVM vectorise the row loops and reductions; NaN/Inf never reach these kernels
# (the caller rejects them), so no flag that assumes finite values is needed.
_FM = {"reassoc", "contract", "nsz"}



# error_model="numpy": no ZeroDivisionError checks inside the loops (they block vectorisation); the divisors
# here (sigma + 1, counts checked by the caller) are never zero.
_JIT = dict(cache=True, fastmath=_FM, nogil=True, error_model="numpy")


@njit(**_JIT)
def _row_pass(x, g, pad, h1, h2):
    """Horizontal 7-tap correlation of x and x^2 with zero padding."""
    w = x.shape[0]
    for j in range(w):
        pad[j + 3] = x[j]
    for j in range(w):
        h1[j] = 0.0
        h2[j] = 0.0
    for k in range(7):
        gk = g[k]
        for j in range(w):
            v = pad[j + k]
            h1[j] += gk * v
            h2[j] += gk * (v * v)


@njit(**_JIT)
def _flat_row(img, i, flat_tol, cmax, cmin, flat):
    """flat[j] = does the zero-padded 7x7 window around (i, j) span at most flat_tol? (exact; vectorised)"""
    h, w = img.shape
    pad_rows = i < 3 or i + 3 >= h
    first = max(i - 3, 0)
    # column-wise max/min over the window's rows, padded with 3 zero columns on each side
    for j in range(w + 6):
        cmax[j] = 0.0
        cmin[j] = 0.0
    src = img[first]
    for j in range(w):
        cmax[j + 3] = 0.0 if pad_rows and src[j] < 0.0 else src[j]
        cmin[j + 3] = 0.0 if pad_rows and src[j] > 0.0 else src[j]
    for r in range(first + 1, min(i + 4, h)):
        src = img[r]
        for j in range(w):
            cmax[j + 3] = max(cmax[j + 3], src[j])
            cmin[j + 3] = min(cmin[j + 3], src[j])
    for j in range(w):
        hi = cmax[j]
        lo = cmin[j]
        for k in range(1, 7):
            hi = max(hi, cmax[j + k])
            lo = min(lo, cmin[j + k])
        flat[j] = (hi - lo) <= flat_tol


@njit(**_JIT)
def mscn(img, g, flat_tol, var_gate, cancel, out):
    """MSCN coefficients ``(I - mu) / (sigma + 1)`` of the release (zero padding), written into ``out``.

    MSCN is exactly 0 where ``I - mu`` is 0 in exact arithmetic and float64 leaves only rounding noise of
    arbitrary sign (see ``medgap.quality.brisque``): where the zero-padded 7x7 window spans at most ``flat_tol``
    (constant), and where ``(I - mu)^2 <= cancel^2 * (I^2 + E[I^2])`` (``I - mu`` below the rounding error of
    ``mu``: an exact cancellation). ``var_gate`` bounds the computed local variance of every constant window;
    only rows with such a pixel get the exact range test. Returns the number of constant-window pixels.
    """
    h, w = img.shape
    pad = np.zeros(w + 6)
    h1 = np.empty((7, w))
    h2 = np.empty((7, w))
    mu = np.empty(w)
    s2 = np.empty(w)
    cmax = np.empty(w + 6)
    cmin = np.empty(w + 6)
    flat = np.empty(w, dtype=np.bool_)
    c2 = cancel * cancel
    for r in range(min(3, h)):
        _row_pass(img[r], g, pad, h1[r % 7], h2[r % 7])
    nflat = 0
    for i in range(h):
        r = i + 3
        if r < h:
            _row_pass(img[r], g, pad, h1[r % 7], h2[r % 7])
        for j in range(w):
            mu[j] = 0.0
            s2[j] = 0.0
        for k in range(7):
            r = i + k - 3
            if r < 0 or r >= h:
                continue  # zero padding contributes nothing
            s = r % 7
            gk = g[k]
            for j in range(w):
                mu[j] += gk * h1[s, j]
                s2[j] += gk * h2[s, j]
        row = img[i]
        orow = out[i]
        ngate = 0
        for j in range(w):
            x = row[j]
            var = abs(s2[j] - mu[j] * mu[j])
            d = x - mu[j]
            orow[j] = 0.0 if d * d <= c2 * (x * x + s2[j]) else d / (np.sqrt(var) + 1.0)
            ngate += 1 if var <= var_gate else 0
        if ngate:  # rare outside flat areas: the exact range test runs only on such rows
            _flat_row(img, i, flat_tol, cmax, cmin, flat)
            for j in range(w):
                if flat[j]:
                    orow[j] = 0.0
                    nflat += 1
    return nflat


@njit(**_JIT)
def moments(m, out_ggd, out_aggd):
    """Sufficient statistics of the GGD (MSCN) and the four AGGDs, in one pass over the rows.

    The release's pairs are ``m .* circshift(m, s)`` for s = [0 1], [1 0], [1 1], [-1 1], i.e. products of
    m[i, j] with m[i, j-1], m[i-1, j], m[i-1, j-1] and m[i+1, j-1] (indices wrap around the border).
    out_ggd[:] = (sum |m|, sum m^2); out_aggd[s, :] = (sum |p|, sum p^2 over p < 0, count p < 0,
    sum p^2 over p > 0, count p > 0). Zero products belong to neither side, as in the release.
    """
    h, w = m.shape
    sa = 0.0
    sq = 0.0
    a0 = 0.0; n0 = 0.0; c0 = 0.0; p0 = 0.0; d0 = 0.0  # noqa: E702
    a1 = 0.0; n1 = 0.0; c1 = 0.0; p1 = 0.0; d1 = 0.0  # noqa: E702
    a2 = 0.0; n2 = 0.0; c2 = 0.0; p2 = 0.0; d2 = 0.0  # noqa: E702
    a3 = 0.0; n3 = 0.0; c3 = 0.0; p3 = 0.0; d3 = 0.0  # noqa: E702
    for i in range(h):
        row = m[i]
        up = m[(i - 1) % h]
        down = m[(i + 1) % h]
        for j in range(w):
            v = row[j]
            sa += abs(v)
            sq += v * v
            jl = j - 1 if j > 0 else w - 1
            x0 = v * row[jl]
            x1 = v * up[j]
            x2 = v * up[jl]
            x3 = v * down[jl]
            q = x0 * x0
            a0 += abs(x0); n0 += q * (x0 < 0); c0 += x0 < 0; p0 += q * (x0 > 0); d0 += x0 > 0  # noqa: E702
            q = x1 * x1
            a1 += abs(x1); n1 += q * (x1 < 0); c1 += x1 < 0; p1 += q * (x1 > 0); d1 += x1 > 0  # noqa: E702
            q = x2 * x2
            a2 += abs(x2); n2 += q * (x2 < 0); c2 += x2 < 0; p2 += q * (x2 > 0); d2 += x2 > 0  # noqa: E702
            q = x3 * x3
            a3 += abs(x3); n3 += q * (x3 < 0); c3 += x3 < 0; p3 += q * (x3 > 0); d3 += x3 > 0  # noqa: E702
    out_ggd[0] = sa
    out_ggd[1] = sq
    out_aggd[0, 0] = a0; out_aggd[0, 1] = n0; out_aggd[0, 2] = c0; out_aggd[0, 3] = p0; out_aggd[0, 4] = d0  # noqa: E702
    out_aggd[1, 0] = a1; out_aggd[1, 1] = n1; out_aggd[1, 2] = c1; out_aggd[1, 3] = p1; out_aggd[1, 4] = d1  # noqa: E702
    out_aggd[2, 0] = a2; out_aggd[2, 1] = n2; out_aggd[2, 2] = c2; out_aggd[2, 3] = p2; out_aggd[2, 4] = d2  # noqa: E702
    out_aggd[3, 0] = a3; out_aggd[3, 1] = n3; out_aggd[3, 2] = c3; out_aggd[3, 3] = p3; out_aggd[3, 4] = d3  # noqa: E702


@njit(cache=True, nogil=True)
def grid_argmin_abs(table, value):
    """First index of min |table - value| (MATLAB ``min`` returns the first minimum)."""
    best = np.inf
    idx = 0
    for k in range(table.shape[0]):
        d = abs(value - table[k])
        if d < best:
            best = d
            idx = k
    return idx


@njit(cache=True, nogil=True)
def finite_range(img):
    """(every value finite, min, max) of a 2-D array in one pass (three NumPy reductions read it three times)."""
    lo = np.inf
    hi = -np.inf
    finite = True
    h, w = img.shape
    for i in range(h):
        row = img[i]
        for j in range(w):
            v = row[j]
            if v < lo:
                lo = v
            if v > hi:
                hi = v
            if not np.isfinite(v):
                finite = False
    return finite, lo, hi
