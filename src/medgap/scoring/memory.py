"""Score files into a DataFrame in memory (the notebook path): the rows :func:`score_collection` writes, without
a file and without resuming. Same reading, conversion and per-row failures (``error`` column): both run the
one scoring loop, :func:`medgap.scoring.run.scored_rows`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import pandas as pd

from medgap.io import DEFAULT_MAX_PIXELS, CollectionError, Source, collect
from medgap.quality.registry import Metric, create_metric
from medgap.scoring.run import display_key, Progress, _Task, _versions, scored_rows
from medgap.scoring.store import KEY, LEADING, READ_OPTIONS, TRAILING, _normalise

PathLike = Union[str, "os.PathLike[str]"]
SourcesLike = Union[PathLike, Source, Mapping[str, Any], Iterable[Any], None]

RESUME_COLUMNS = tuple(c for c in KEY if c != "path") + (READ_OPTIONS,)
"""Columns of a stored scores table that only serve resuming; :func:`score` leaves them out."""


def _is_path(x: object) -> bool:
    return isinstance(x, (str, os.PathLike))


def _group_sources(groups: Mapping[str, Any]) -> list[Source]:
    pairs: list[tuple[str, str | Path]] = []
    for name, where in groups.items():
        items = [where] if _is_path(where) else list(where)
        for p in items:
            if not _is_path(p):
                raise TypeError(f"group {name!r}: give a folder, a file or a list of them, not {type(p).__name__}")
            pairs.append((str(name), p))
    return collect(groups=pairs)


def as_sources(sources: SourcesLike = None, groups: Mapping[str, Any] | None = None) -> list[Source]:
    """Sources from a folder or file (group = first subfolder, as ``medgap quality PATH``), a list of them,
    ``{group: folder_or_paths}``, or :class:`~medgap.io.Source` objects; ``groups`` adds ``{group: ...}``."""
    out: list[Source] = []
    if sources is None:
        pass
    elif _is_path(sources):
        out += collect([sources])  # type: ignore[list-item]
    elif isinstance(sources, Source):
        out.append(sources)
    elif isinstance(sources, Mapping):
        out += _group_sources(sources)
    elif isinstance(sources, Iterable):
        for s in sources:
            if isinstance(s, Source):
                out.append(s)
            elif _is_path(s):
                out += collect([s])
            else:
                raise TypeError(f"cannot score a {type(s).__name__}: give paths, folders or medgap.io.Source objects")
    else:
        raise TypeError(f"cannot score a {type(sources).__name__}: give a folder, a list of paths, "
                        "{group: folder_or_paths} or medgap.io.Source objects")
    if groups:
        out += _group_sources(groups)
    return out


def as_metrics(metrics: str | Metric | Iterable[str | Metric]) -> list[Metric]:
    """Metric objects from names (``"brisque"``) and/or :class:`~medgap.quality.Metric` objects."""
    items = [metrics] if isinstance(metrics, (str, Metric)) else list(metrics)
    out = [m if isinstance(m, Metric) else create_metric(m) for m in items]
    if not out:
        raise ValueError("no metrics to compute: give at least one name, e.g. metrics=['brisque']")
    return out


def _tqdm_progress() -> tuple[Progress, Callable[[], None]]:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError("progress=True shows a tqdm bar: pip install tqdm (or pass a callable "
                          "progress(files_done, files_total, items_done))") from None
    bar = tqdm(unit="file")

    def update(done: int, total: int, _items: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return update, bar.close


def score(
    sources: SourcesLike = None,
    metrics: str | Metric | Iterable[str | Metric] = ("brisque",),
    *,
    groups: Mapping[str, Any] | None = None,
    video_stride: int = 1,
    nifti_axis: int = 2,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    workers: int = 1,
    progress: bool | Progress = False,
    device: str | None = None,
    batch_size: int | None = None,
    display=None,
    scheduler: str | None = None,
    dask_local: int | None = None,
) -> pd.DataFrame:
    """Score images with metrics into a DataFrame, one row per image or frame; nothing is written.

    ``sources``: a folder or file (groups are the first subfolders, as in ``medgap quality``), a list of them,
    a mapping ``{group: folder_or_paths}`` or :class:`~medgap.io.Source` objects; ``groups`` adds such a
    mapping. ``metrics``: names or :class:`~medgap.quality.Metric` objects (``create_metric(name, **params)``).
    Read options as in :func:`~medgap.scoring.score_collection`. ``progress``: ``True`` for a tqdm bar, or a
    callable ``progress(files_done, files_total, items_done)``. Network metrics run in this process on
    ``device`` (``None`` or ``"auto"``: CUDA when there is one; ``"cpu"``, ``"cuda"``, ``"cuda:N"``; a device
    given also runs BRISQUE and NIQE through their batched torch backend there), ``batch_size``
    frames per forward pass (default: the metric's own); hand-crafted metrics use ``workers`` processes, or
    the Dask cluster behind ``scheduler`` (``"tcp://host:8786"``), or a Dask LocalCluster of ``dask_local``
    processes (one of the three; ``pip install 'medgap[cluster]'``).
    ``display``: a :class:`~medgap.io.Display` (CT window, short side, foreground crop) instead of
    :func:`~medgap.io.to_gray255`.

    Returns the columns of ``score_collection``'s table without the resume key (``file_size``,
    ``file_mtime_ns``, ``metric_versions``, ``read_options``): ``item_id, path, frame, group, width, height``,
    manifest columns, the metrics' columns, ``error``. Rows follow the sources' order. A file that cannot be
    read gives one row with its reason in ``error`` and NaN scores, a frame whose metric fails its reason on its
    row, as in a stored run. ``df.attrs`` records the metric versions and read options. For large collections
    that should survive an interruption, use :func:`~medgap.scoring.score_collection` (resumable, on disk).
    """
    ms = as_metrics(metrics)
    srcs = as_sources(sources, groups)
    read = {"video_stride": video_stride, "nifti_axis": nifti_axis, "max_pixels": max_pixels, "display": display}
    versions = _versions(ms)
    order: dict[str, int] = {}
    tasks: list[_Task] = []
    for s in srcs:
        key = str(s.path)
        if key not in order:  # the same file reached twice (a folder and a file in it): scored once
            order[key] = len(tasks)
            tasks.append(_Task(s, -1, -1, versions, tuple(ms), read))  # size/mtime: only for resuming
    if not tasks:
        given = sources if sources is not None else groups
        raise CollectionError(f"no image files found in {given!r} (supported: PNG, JPEG, TIFF, BMP, DICOM, NIfTI, "
                              "video)")
    report, finish = _tqdm_progress() if progress is True else (progress or None, None)
    by_task: list[list[dict]] = [[] for _ in tasks]
    results = scored_rows(tasks, workers=workers, device=device, batch_size=batch_size, scheduler=scheduler,
                          dask_local=dask_local)
    try:
        items = 0
        for done, rows in enumerate(results, start=1):
            if rows:  # a file with no frame gives no row, as in a stored run
                by_task[order[rows[0]["path"]]] = rows
            items += sum(not r.get("error") for r in rows)
            if report:
                report(done, len(tasks), items)
    finally:
        results.close()  # an error or Ctrl-C: work in flight is abandoned
        if finish:
            finish()
    df = _normalise(pd.DataFrame([r for rows in by_task for r in rows]))
    df = df.drop(columns=[c for c in RESUME_COLUMNS if c in df])
    values = [c for m in ms for c in m.info.columns]
    labels = [c for c in df.columns if c not in LEADING and c not in TRAILING and c not in values]
    order_ = [c for c in LEADING if c in df] + labels + values + [c for c in TRAILING if c in df]
    df = df[order_].reset_index(drop=True)  # the stored table's order: labels before the metrics' columns
    df.attrs.update(metric_versions=versions,
                    read_options={**read, "display": display_key(display) if display is not None else None})
    return df


__all__ = ["as_metrics", "as_sources", "score"]
