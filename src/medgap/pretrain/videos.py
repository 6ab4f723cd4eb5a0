"""The videos of a pretraining run (file, patient, label or none) and their frames, decoded lazily with PyAV
(:func:`medgap.read_frames`) and cached: in memory for the run, and as one ``.npy`` per video and size on disk, so
neither a later epoch nor a later run (another fold of a benchmark) decodes a clip again."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medgap.data.tensors import to_square_uint8
from medgap.io import CollectionError, read_frames, scan_folder
from medgap.pretrain.config import PretrainError

UNLABELLED = ""
"""The label of a video without one (it takes part in the contrastive loss only)."""


@dataclass(frozen=True)
class VideoRecord:
    path: Path
    patient: str
    label: str = UNLABELLED


def videos_from_folder(root: str | Path) -> list[VideoRecord]:
    """``root/<class>/clip`` (labelled) and ``root/clip`` (unlabelled), recursively; every file is its own
    patient (a folder has no patient ids: give a manifest to hold videos out by patient)."""
    root = Path(root)
    if not root.is_dir():
        raise PretrainError(f"{root}: no such folder (--videos takes DIR/<class>/clips, DIR/clips or a CSV)")
    out = []
    for f in scan_folder(root):
        rel = f.relative_to(root)
        out.append(VideoRecord(f.resolve(), str(rel), rel.parts[0] if len(rel.parts) > 1 else UNLABELLED))
    if not out:
        raise PretrainError(f"{root}: no videos or images under it")
    return out


def videos_from_manifest(csv: str | Path, *, path_column: str = "path", label_column: str = "label",
                         group_column: str | None = "group_id", filter_column: str | None = None,
                         filter_values: Sequence[str] = (), each_file_is_a_patient: bool = False
                         ) -> list[VideoRecord]:
    """One video per manifest row; an empty label is an unlabelled video (kept, unlike fine-tuning). The patient
    column is required unless ``each_file_is_a_patient``."""
    csv = Path(csv)
    if not csv.is_file():
        raise PretrainError(f"{csv}: no such manifest")
    df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    if path_column not in df.columns:
        raise PretrainError(f"{csv}: no column {path_column!r} (--path-column); columns are {', '.join(df.columns)}")
    if filter_column:
        if filter_column not in df.columns:
            raise PretrainError(f"{csv}: no column {filter_column!r} to filter on; columns are {', '.join(df.columns)}")
        df = df[df[filter_column].isin(list(filter_values))]
        if df.empty:
            raise PretrainError(f"{csv}: no row has {filter_column} in {list(filter_values)}")
    if not each_file_is_a_patient and (group_column not in df.columns or (df[group_column] == "").all()):
        raise PretrainError(f"{csv}: no patient ids in column {group_column!r}; validation videos are held out by "
                            f"patient: name the column with --group-column, or pass --each-file-is-a-patient")
    labels = df[label_column] if label_column in df.columns else pd.Series(UNLABELLED, index=df.index)
    out = []
    for p, lab, g in zip(df[path_column], labels, df[group_column] if group_column in df.columns else df[path_column]):
        path = Path(p) if Path(p).is_absolute() else csv.parent / p
        out.append(VideoRecord(path.resolve(), str(path) if each_file_is_a_patient or not g else g, lab.strip()))
    return out


def load_videos(spec: str | Path, **manifest_kw) -> list[VideoRecord]:
    """A folder (:func:`videos_from_folder`) or a CSV manifest (:func:`videos_from_manifest`)."""
    spec = Path(spec)
    if spec.suffix.lower() == ".csv":
        return videos_from_manifest(spec, **manifest_kw)
    if manifest_kw.get("filter_column"):
        raise PretrainError(f"{spec}: --filter selects manifest rows; this is a folder")
    return videos_from_folder(spec)


def evenly_spaced(n: int, k: int) -> np.ndarray:
    """``min(n, k)`` indices spread evenly over ``0..n-1`` (first and last included)."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.rint(np.linspace(0, n - 1, k)).astype(int))


class FrameCache:
    """Each video's frames as a uint8 array (frames, 3, size, size): at most ``frames_per_video`` evenly spaced
    frames, RGB (gray replicated), resized as fine-tuning resizes (:func:`medgap.data.tensors.to_square_uint8`).

    A video is decoded on first use; the result is kept in memory (least recently used first out beyond
    ``max_in_memory`` videos) and, with ``cache_dir``, in ``cache_dir/<hash of path, size, mtime, k>.npy``.
    A file that cannot be decoded raises :class:`CollectionError` naming it (decode everything up front with
    :meth:`check` to find such files before training)."""

    def __init__(self, paths: Sequence[str | Path], size: int, frames_per_video: int,
                 cache_dir: str | Path | None = None, max_in_memory: int = 4096):
        self.paths = [Path(p) for p in paths]
        self.size, self.k = int(size), int(frames_per_video)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.max_in_memory = max_in_memory
        self._memory: OrderedDict[int, np.ndarray] = OrderedDict()
        self.decoded = 0
        """How many times a video was decoded (not found in memory or on disk): for tests and progress."""

    def __len__(self) -> int:
        return len(self.paths)

    def _file(self, i: int) -> Path | None:
        if self.cache_dir is None:
            return None
        p = self.paths[i]
        key = f"{p.resolve()}|{p.stat().st_mtime_ns}|{p.stat().st_size}|{self.size}|{self.k}"
        return self.cache_dir / f"{hashlib.sha1(key.encode()).hexdigest()[:20]}.npy"

    def _decode(self, i: int) -> np.ndarray:
        path = self.paths[i]
        frames = [fr for fr in read_frames(path)]  # ImageReadError names the file
        keep = evenly_spaced(len(frames), self.k)
        return np.stack([to_square_uint8(frames[j], self.size).transpose(2, 0, 1) for j in keep])

    def __getitem__(self, i: int) -> np.ndarray:
        if i in self._memory:
            self._memory.move_to_end(i)
            return self._memory[i]
        file = self._file(i)
        arr = None
        if file is not None and file.exists():
            try:
                arr = np.load(file)
            except (OSError, ValueError):
                arr = None  # a damaged cache file is decoded again
        if arr is None:
            arr = self._decode(i)
            self.decoded += 1
            if file is not None:
                file.parent.mkdir(parents=True, exist_ok=True)
                tmp = file.with_suffix(".tmp.npy")
                np.save(tmp, arr)
                tmp.replace(file)
        self._memory[i] = arr
        if len(self._memory) > self.max_in_memory:
            self._memory.popitem(last=False)
        return arr

    def check(self, log=None) -> list[tuple[str, str]]:
        """Decode (or load) every video once; returns (path, reason) of those that fail."""
        failures = []
        for i, p in enumerate(self.paths):
            try:
                self[i]
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as e:  # noqa: BLE001  ImageReadError, or a decoder's panic
                failures.append((str(p), getattr(e, "reason", None) or f"{type(e).__name__}: {e}"))
            if log and (i + 1) % 50 == 0:
                log(f"frames decoded or cached: {i + 1}/{len(self.paths)} videos")
        return failures


__all__ = ["FrameCache", "UNLABELLED", "VideoRecord", "evenly_spaced", "load_videos", "videos_from_folder",
           "videos_from_manifest", "CollectionError"]
