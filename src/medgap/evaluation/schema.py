"""The predictions schema lives in :mod:`medgap.data.predictions` (train writes it, evaluation reads it, and
train may not import evaluation); re-exported here for code that imports it from its first home."""

from medgap.data.predictions import *  # noqa: F401,F403
from medgap.data.predictions import __all__  # noqa: F401
