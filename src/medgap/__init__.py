"""medgap: measure and act on the gap between ImageNet photos and medical images."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("medgap")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"
