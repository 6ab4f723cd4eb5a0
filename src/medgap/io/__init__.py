"""Reading medical and natural images: files -> 2-D frames + metadata, and collections of files.

See docs/io.md for the formats, the gray rule (:func:`to_gray255`) and how groups are assigned.
"""

from medgap.io.collection import (
    CollectionError,
    SkippedFile,
    Source,
    collect,
    embedded_default,
    read_manifest,
    scan_folder,
    summarise_skipped,
)
from medgap.io.display import CT_WINDOWS, WINDOW_CHOICES, Display, DisplayError, foreground_crop, foreground_mask
from medgap.io.errors import ImageReadError
from medgap.io.frame import Frame, item_id, parse_item_id, to_gray255, to_rgb255
from medgap.io.limits import DEFAULT_MAX_PIXELS
from medgap.io.readers import SUPPORTED_SUFFIXES, read_frames
from medgap.io.resize import imresize, resize_short

__all__ = [
    "CT_WINDOWS",
    "DEFAULT_MAX_PIXELS",
    "Display",
    "DisplayError",
    "WINDOW_CHOICES",
    "SUPPORTED_SUFFIXES",
    "CollectionError",
    "Frame",
    "SkippedFile",
    "ImageReadError",
    "Source",
    "collect",
    "embedded_default",
    "foreground_crop",
    "foreground_mask",
    "imresize",
    "item_id",
    "parse_item_id",
    "read_frames",
    "read_manifest",
    "resize_short",
    "scan_folder",
    "summarise_skipped",
    "to_gray255",
    "to_rgb255",
]
