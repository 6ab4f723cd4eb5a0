"""No-reference quality metrics and image statistics, behind one registry (:mod:`medgap.quality.registry`)."""

from medgap.quality.inputs import MetricInputError
from medgap.quality.network import DeviceError, NetworkMetricFn, release_models
from medgap.quality.registry import (
    Metric,
    MetricInfo,
    UnknownMetricError,
    create_metric,
    get_metric_info,
    list_metrics,
    register_metric,
)

__all__ = [
    "DeviceError",
    "Metric",
    "MetricInfo",
    "MetricInputError",
    "NetworkMetricFn",
    "UnknownMetricError",
    "create_metric",
    "get_metric_info",
    "list_metrics",
    "register_metric",
    "release_models",
]

# Built-in metrics register themselves on import.
from medgap.quality import brisque as _brisque  # noqa: E402,F401
from medgap.quality import imagestats as _imagestats  # noqa: E402,F401
from medgap.quality import niqe as _niqe  # noqa: E402,F401
from medgap.quality import piqe as _piqe  # noqa: E402,F401
from medgap.quality.cnn_wsp import register as _register_cnn_wsp  # noqa: E402  (no torch until a model loads)

_register_cnn_wsp()
