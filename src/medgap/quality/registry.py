"""Registry of per-image quality metrics: ``name -> MetricInfo``, filled by a decorator next to each metric.

A metric is a pure function of a grayscale float image on the 0-255 scale (see :func:`medgap.io.to_gray255`)
that returns a mapping ``column -> float``; the first column is the metric's score. Metrics never open files:
:class:`Metric` takes a path, a Frame, an array or a tensor, checks it and converts it first
(:mod:`medgap.quality.inputs`); :meth:`Metric.compute` is the unchecked call the scoring engine makes.

A metric is hand-crafted (a function of one frame, run in the scoring engine's worker processes) or a network
(``network=True``: its function is a :class:`~medgap.quality.network.NetworkMetricFn`, loaded once per process
and device and run on batches of frames; see :mod:`medgap.quality.network`).
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

MetricFn = Callable[[np.ndarray], Mapping[str, float]]


class UnknownMetricError(KeyError):
    """Raised for a metric name that is not registered; the message lists close matches."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want a readable sentence
        return str(self.args[0])


@dataclass(frozen=True)
class MetricInfo:
    """What a metric measures and how to read it."""

    name: str
    factory: Callable[..., MetricFn]
    version: str
    columns: tuple[str, ...]
    """Output columns; ``columns[0]`` is the score."""
    lower_is_better: bool
    range: tuple[float, float] | None
    """Nominal range of the score (``None`` when unbounded); values outside it are reported as they are."""
    description: str
    reference: str
    kind: str = "quality"
    """``quality`` for no-reference quality scores, ``statistic`` for descriptive image statistics."""
    input: str = "gray"
    """``gray``: HxW float64 0-255 (medgap.io.to_gray255); ``rgb``: HxWx3 float64 0-255 (medgap.io.to_rgb255)."""
    network: bool = False
    """``True``: a network that batches on a device (its factory returns a
    :class:`~medgap.quality.network.NetworkMetricFn`); the scoring engine runs it in the main process, on
    ``device``, ``batch_size`` frames at a time. ``False``: hand-crafted, one frame at a time in worker
    processes."""
    required: tuple[str, ...] = ()
    """Parameters without a default (a trained model): ``create_metric(name)`` without them says which."""
    torch_backend: str | None = None
    """``"module:function"`` building a batched torch version of this hand-crafted metric from the same
    parameters (a :class:`~medgap.quality.network.NetworkMetricFn`, same columns and version): the scoring
    engine uses it when a device is given (``--device cpu|cuda``). Imported only then (torch is optional)."""

    @property
    def accepts_device(self) -> bool:
        """Runs on a device (``--device``): a network, or a hand-crafted metric with a torch backend."""
        return self.network or self.torch_backend is not None


@dataclass(frozen=True)
class Metric:
    """A metric bound to its parameters: call it on a gray 0-255 image."""

    info: MetricInfo
    fn: MetricFn
    params: Mapping[str, Any] = field(default_factory=dict)
    _version: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        # Bound once, when the metric is made (the factory reads its model files then too): the version
        # describes the model this metric uses, and asking for it costs nothing (hashing a model file on each
        # call cost ~0.3 ms per image). A model rewritten in place later gives a NEW metric a new version.
        if self.params:
            blob = json.dumps({k: _param_text(v) for k, v in sorted(self.params.items())}).encode()
            version = f"{self.info.version}+{hashlib.sha1(blob).hexdigest()[:8]}"
        else:
            version = self.info.version
        object.__setattr__(self, "_version", version)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def network(self) -> bool:
        """A network metric (batched on a device; see :mod:`medgap.quality.network`)."""
        return self.info.network

    @property
    def version(self) -> str:
        """Version string used as part of the resume key: the metric's code version plus its parameters; a
        parameter naming a file (a model) counts with its content as it was when the metric was created."""
        return self._version

    def on_device(self) -> Metric:
        """This metric as its torch backend computes it (:attr:`MetricInfo.torch_backend`): a network-kind
        metric with the same name, columns, parameters and version, batched on a device by the scoring engine.
        A network metric is returned as it is; a metric without a torch backend raises ``ValueError``."""
        if self.info.network:
            return self
        if self.info.torch_backend is None:
            raise ValueError(f"metric {self.name!r} has no torch backend (metrics that accept a device: "
                             f"{', '.join(list_metrics(accepts_device=True))})")
        import importlib

        module, _, name = self.info.torch_backend.partition(":")
        fn = getattr(importlib.import_module(module), name)(**self.params)
        return Metric(info=replace(self.info, network=True), fn=fn, params=self.params)

    def compute(self, image: np.ndarray) -> dict[str, float]:
        """The metric on an image already converted (:func:`~medgap.io.to_gray255`, or ``to_rgb255`` for
        ``info.input == 'rgb'``): float64 on the 0-255 scale, not checked. A network metric runs it as a
        batch of one on ``device="auto"``."""
        return dict(self.fn(image))

    def compute_many(self, images: Sequence[np.ndarray], *, device: str | Any = "auto",
                     batch_size: int | None = None) -> list[dict[str, float] | BaseException]:
        """:meth:`compute` on converted frames, in order; each result is the frame's dict or the exception it
        raised. A network metric runs ``batch_size`` frames per forward pass on ``device`` (a pass that fails
        is rerun frame by frame, so only the failing frame fails); a hand-crafted one runs frame by frame and
        ignores both. ``KeyboardInterrupt``/``SystemExit`` are raised."""
        if self.info.network:
            from medgap.quality.network import run_network

            return run_network(self.fn, images, device=device, batch_size=batch_size)  # type: ignore[arg-type]
        out: list[dict[str, float] | BaseException] = []
        for x in images:
            try:
                out.append(self.compute(x))
            except (KeyboardInterrupt, SystemExit, GeneratorExit):
                raise
            except BaseException as e:  # noqa: BLE001 - a native extension's panic is one frame's failure
                out.append(e)
        return out

    def __call__(self, image: Any, *, data_range: float | tuple[float, float] | None = None
                 ) -> dict[str, float] | list[dict[str, float]]:
        """Score one image, checked: ``{column: value}``. A batch (a 4-D NumPy NxHxWxC array or a torch
        NxCxHxW tensor) gives a list, one dict per image, as :meth:`batch`.

        ``image``: a path (one frame), a :class:`~medgap.io.Frame`, a NumPy HxW / HxWx3 array or a torch HxW /
        CxHxW tensor on the 0-255 scale (uint8, or numbers within 0-255). Floats in [0, 1], raw 16-bit values
        and wrong channel counts raise :class:`~medgap.quality.inputs.MetricInputError` with the fix: pass
        ``data_range`` (``1`` for [0, 1] floats, ``(lo, hi)`` for other ranges) or convert with
        :func:`medgap.io.to_gray255` (``window=`` for CT and other raw data).
        """
        from medgap.quality.inputs import is_batch, to_metric_input

        if is_batch(image):
            return self.batch(image, data_range=data_range)
        return self.compute(to_metric_input(image, self.info.input, data_range=data_range))

    def batch(self, images: Any, *, data_range: float | tuple[float, float] | None = None,
              device: str | Any = "auto", batch_size: int | None = None) -> list[dict[str, float]]:
        """One result per image, in order: a NumPy NxHxW or NxHxWxC array, a torch NxCxHxW tensor, every frame
        of a file (a path), or an iterable of images (paths, Frames, arrays, tensors). Each image is checked
        as by ``metric(image)``; a failing image raises (``medgap.score`` records failures per row instead).
        A network metric runs ``batch_size`` images per forward pass on ``device`` (``"auto"``, ``"cpu"``,
        ``"cuda"``, ``"cuda:N"``); hand-crafted metrics ignore both."""
        from medgap.quality.inputs import split_batch, to_metric_input

        converted = [to_metric_input(x, self.info.input, data_range=data_range) for x in split_batch(images)]
        if not self.info.network:
            return [self.compute(x) for x in converted]
        results = self.compute_many(converted, device=device, batch_size=batch_size)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return results  # type: ignore[return-value]


def _param_text(value: Any) -> str:
    """A parameter as it enters the version: its text, plus the content hash of the file it names, if any
    (read when the metric is made: a model rewritten within the same second counts for a metric made after)."""
    text = str(value)
    if isinstance(value, (str, os.PathLike)) and os.path.isfile(value):
        try:
            h = hashlib.sha1()
            with open(value, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            return f"{text}#sha1={h.hexdigest()}"
        except (OSError, ValueError):  # not a readable file (a folder, a name): the text alone
            pass
    return text


_REGISTRY: dict[str, MetricInfo] = {}


def register_metric(
    name: str,
    *,
    version: str,
    columns: tuple[str, ...],
    lower_is_better: bool,
    range: tuple[float, float] | None,
    description: str,
    reference: str,
    kind: str = "quality",
    input: str = "gray",  # noqa: A002
    network: bool = False,
    required: tuple[str, ...] = (),
    torch_backend: str | None = None,
) -> Callable[[Callable[..., MetricFn]], Callable[..., MetricFn]]:
    """Register ``factory(**params) -> fn`` under ``name``. ``fn`` must be picklable (module-level or a partial);
    with ``network=True`` it is a :class:`~medgap.quality.network.NetworkMetricFn`."""

    def deco(factory: Callable[..., MetricFn]) -> Callable[..., MetricFn]:
        if name in _REGISTRY:
            raise ValueError(f"metric {name!r} is registered twice")
        _REGISTRY[name] = MetricInfo(
            name=name,
            factory=factory,
            version=version,
            columns=columns,
            lower_is_better=lower_is_better,
            range=range,
            description=description,
            reference=reference,
            kind=kind,
            input=input,
            network=network,
            required=tuple(required),
            torch_backend=torch_backend,
        )
        return factory

    return deco


def _ensure_loaded() -> None:
    # Importing the package registers the built-in metrics (their modules use the decorator).
    import medgap.quality  # noqa: F401


def list_metrics(pattern: str = "*", kind: str | None = None, network: bool | None = None,
                 accepts_device: bool | None = None) -> list[str]:
    """Names of registered metrics matching a shell-style ``pattern`` (and ``kind``, ``network``,
    ``accepts_device`` when given: :attr:`MetricInfo.accepts_device`, networks and metrics with a torch
    backend)."""
    _ensure_loaded()
    return sorted(n for n, i in _REGISTRY.items() if fnmatch.fnmatch(n, pattern) and (kind is None or i.kind == kind)
                  and (network is None or i.network == network)
                  and (accepts_device is None or i.accepts_device == accepts_device))


def get_metric_info(name: str) -> MetricInfo:
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownMetricError(
            f"unknown metric {name!r}.{hint} Available: {', '.join(sorted(_REGISTRY))}."
        ) from None


def create_metric(name: str, **params: Any) -> Metric:
    """Build the metric ``name`` with its parameters (for example ``create_metric('brisque', model=path)``)."""
    info = get_metric_info(name)
    missing = [p for p in info.required if params.get(p) is None]
    if missing:
        example = ",".join(f"{p}=..." for p in missing)
        raise ValueError(f"metric {name!r} needs {', '.join(missing)} (e.g. --metric {name}:{example}); "
                         f"{info.description}")
    fn = info.factory(**params)
    if info.network:
        from medgap.quality.network import NetworkMetricFn

        if not isinstance(fn, NetworkMetricFn):
            raise TypeError(f"metric {name!r} is registered with network=True, so its factory must return a "
                            f"medgap.quality.network.NetworkMetricFn, not {type(fn).__name__}")
    return Metric(info=info, fn=fn, params={k: v for k, v in params.items() if v is not None})
