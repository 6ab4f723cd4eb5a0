"""LIBSVM epsilon-SVR models with svm-scale ranges, evaluated in numpy exactly as the release's pipeline does.

The release writes features with ``%f``, runs ``svm-scale -r allrange`` (which writes ``%g``) and
``svm-predict``; :meth:`SvrModel.predict_release` reproduces those text round trips, so the numbers the SVR
sees are the release's to the last printed digit.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np


class ModelFileError(ValueError):
    """A LIBSVM model or svm-scale range file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class SvrModel:
    support_vectors: np.ndarray  # (n_sv, n_features), dense (LIBSVM omits zeros)
    coef: np.ndarray  # (n_sv,)
    rho: float
    gamma: float
    lower: float
    upper: float
    feature_min: np.ndarray  # (n_features,)
    feature_max: np.ndarray
    source: str
    sha256: str

    @property
    def n_features(self) -> int:
        return self.support_vectors.shape[1]

    def scale(self, features: np.ndarray) -> np.ndarray:
        """svm-scale with a restored range: linear map to [lower, upper], exact ends, no clipping."""
        f = np.asarray(features, np.float64)
        span = self.feature_max - self.feature_min
        out = self.lower + (self.upper - self.lower) * (f - self.feature_min) / np.where(span == 0, 1.0, span)
        out = np.where(f == self.feature_min, self.lower, out)
        out = np.where(f == self.feature_max, self.upper, out)
        return np.where(span == 0, 0.0, out)  # svm-scale drops single-valued attributes

    def decision(self, scaled: np.ndarray) -> float:
        """sum_i coef_i exp(-gamma ||x - sv_i||^2) - rho, as LIBSVM's svm_predict for epsilon-SVR."""
        d = self.support_vectors - scaled[None, :]
        k = np.exp(-self.gamma * np.einsum("ij,ij->i", d, d))
        return float(self.coef @ k - self.rho)

    def predict_release(self, features: np.ndarray) -> float:
        """Score as brisquescore.m gets it: ``%f`` features -> svm-scale (``%g``) -> svm-predict."""
        if features.shape != (self.n_features,):
            raise ValueError(f"model {self.source} expects {self.n_features} features, got {features.shape}")
        printed = np.array([float(f"{v:f}") for v in features])
        scaled = np.array([float(f"{v:g}") for v in self.scale(printed)])
        return self.decision(scaled)


def _parse_model(text: str, source: str) -> tuple[np.ndarray, np.ndarray, float, float]:
    header: dict[str, str] = {}
    lines = text.splitlines()
    try:
        sv_start = next(i for i, line in enumerate(lines) if line.strip() == "SV") + 1
    except StopIteration:
        raise ModelFileError(f"{source}: not a LIBSVM model file (no 'SV' line)") from None
    for line in lines[: sv_start - 1]:
        key, _, value = line.strip().partition(" ")
        header[key] = value
    if header.get("svm_type") != "epsilon_svr" or header.get("kernel_type") != "rbf":
        raise ModelFileError(
            f"{source}: medgap evaluates epsilon-SVR models with an RBF kernel; this file has "
            f"svm_type={header.get('svm_type')!r}, kernel_type={header.get('kernel_type')!r}"
        )
    rows: list[dict[int, float]] = []
    coef: list[float] = []
    for n, line in enumerate(lines[sv_start:], start=sv_start + 1):
        parts = line.split()
        if not parts:
            continue
        try:
            coef.append(float(parts[0]))
            rows.append({int(k): float(v) for k, v in (p.split(":") for p in parts[1:])})
        except ValueError:
            raise ModelFileError(f"{source}: line {n} is not 'coef index:value ...'") from None
    n_feat = max((max(r) for r in rows if r), default=0)
    sv = np.zeros((len(rows), n_feat))
    for i, r in enumerate(rows):
        for k, v in r.items():
            sv[i, k - 1] = v
    try:
        return sv, np.array(coef), float(header["rho"]), float(header["gamma"])
    except KeyError as e:
        raise ModelFileError(f"{source}: missing header field {e.args[0]!r}") from None


def _parse_range(text: str, source: str, n_features: int):
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != ["x"] or len(lines[1]) != 2:
        raise ModelFileError(f"{source}: not an svm-scale range file ('x', then 'lower upper', then 'index min max')")
    lower, upper = map(float, lines[1])
    fmin = np.zeros(n_features)
    fmax = np.zeros(n_features)
    for parts in lines[2:]:
        i = int(parts[0])
        if 1 <= i <= n_features:
            fmin[i - 1], fmax[i - 1] = float(parts[1]), float(parts[2])
    return lower, upper, fmin, fmax


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read ({e.strerror})") from None


def load_model(model: str | Path, range_file: str | Path, n_features: int = 36) -> SvrModel:
    """A LIBSVM epsilon-SVR model file and the svm-scale range file its training data was scaled with.

    Parsed models are cached by the files' paths and contents: a file rewritten in place (a refitted model) is
    parsed again, never served from the cache."""
    mb, rb = _read(Path(model)), _read(Path(range_file))
    key = (str(model), str(range_file), n_features, hashlib.sha256(mb).digest(), hashlib.sha256(rb).digest())
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _parse(str(model), str(range_file), n_features, mb, rb)
    return _CACHE[key]


_CACHE: dict[tuple, SvrModel] = {}
_CACHE_SIZE = 8


def _parse(model: str, range_file: str, n_features: int, mb: bytes, rb: bytes) -> SvrModel:
    sv, coef, rho, gamma = _parse_model(mb.decode("ascii", "replace"), model)
    if sv.shape[1] > n_features:
        raise ModelFileError(f"{model}: support vectors have {sv.shape[1]} features, BRISQUE has {n_features}")
    if sv.shape[1] < n_features:
        sv = np.pad(sv, ((0, 0), (0, n_features - sv.shape[1])))
    lower, upper, fmin, fmax = _parse_range(rb.decode("ascii", "replace"), range_file, n_features)
    return SvrModel(
        support_vectors=sv,
        coef=coef,
        rho=rho,
        gamma=gamma,
        lower=lower,
        upper=upper,
        feature_min=fmin,
        feature_max=fmax,
        source=model,
        sha256=hashlib.sha256(mb).hexdigest(),
    )


@functools.cache
def default_model() -> SvrModel:
    """The release's ``allmodel`` and ``allrange`` (trained on all of LIVE IQA), shipped as package data."""
    data = resources.files("medgap.quality.brisque") / "data"
    return load_model(str(data / "allmodel"), str(data / "allrange"))
