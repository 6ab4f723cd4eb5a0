"""A resumable table of per-item results.

Rows are flushed to part files (``<out>.parts/part-NNNNNN.parquet``, written to a temporary name and renamed,
so a kill -9 never leaves half a part). A source counts as done when rows exist for its key
``(path, file_size, file_mtime_ns, metric_versions)``; a rerun skips done sources, rescoring files whose size,
mtime or metric version changed. :meth:`ResultStore.finalize` merges the previous output and the parts into the
output (the newest rows of each path win) and removes the parts.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

KEY = ("path", "file_size", "file_mtime_ns", "metric_versions")


class ResultStore:
    def __init__(self, out: str | Path, fmt: str | None = None) -> None:
        self.out = Path(out)
        self.fmt = fmt or ("csv" if self.out.suffix.lower() == ".csv" else "parquet")
        if self.fmt not in ("parquet", "csv"):
            raise ValueError(f"unknown output format {self.fmt!r}: use parquet or csv")
        self.parts = self.out.with_name(self.out.name + ".parts")
        self.meta_path = self.out.with_name(self.out.name + ".meta.json")
        self._buffer: list[dict] = []
        self._n_parts = len(list(self.parts.glob("part-*.parquet"))) if self.parts.is_dir() else 0

    # --- reading what exists -------------------------------------------------------------------------------
    def _read_output(self, columns: list[str] | None = None) -> pd.DataFrame | None:
        if not self.out.exists():
            return None
        if self.fmt == "csv":
            df = pd.read_csv(self.out, usecols=columns, keep_default_na=True)
        else:
            df = pq.read_table(self.out, columns=columns).to_pandas()
        return df

    def _part_files(self) -> list[Path]:
        return sorted(self.parts.glob("part-*.parquet")) if self.parts.is_dir() else []

    def done_keys(self) -> set[tuple]:
        """Keys of the sources already scored (in the output or in unmerged parts)."""
        keys: set[tuple] = set()
        frames = []
        try:
            df = self._read_output(list(KEY))
        except (ValueError, KeyError, pa.ArrowInvalid):
            df = None  # an output without key columns (not ours, or older): rescore everything
        if df is not None:
            frames.append(df)
        for part in self._part_files():
            frames.append(pq.read_table(part, columns=list(KEY)).to_pandas())
        for df in frames:
            keys.update(map(tuple, df[list(KEY)].astype({"file_size": "int64", "file_mtime_ns": "int64"}).values.tolist()))
        return keys

    # --- writing -------------------------------------------------------------------------------------------
    def add(self, rows: Iterable[dict]) -> None:
        self._buffer.extend(rows)

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def flush(self) -> None:
        if not self._buffer:
            return
        self.parts.mkdir(parents=True, exist_ok=True)
        df = _normalise(pd.DataFrame(self._buffer))
        self._n_parts += 1
        final = self.parts / f"part-{self._n_parts:06d}-{uuid.uuid4().hex[:6]}.parquet"
        tmp = final.with_suffix(".tmp")
        df.to_parquet(tmp, index=False)
        os.replace(tmp, final)
        self._buffer.clear()

    def finalize(self) -> pd.DataFrame:
        """Merge output + parts (newest rows per path win), write the output atomically, remove the parts."""
        self.flush()
        frames = []
        old = self._read_output()
        if old is not None:
            frames.append(old.assign(_seq=-1))
        for i, part in enumerate(self._part_files()):
            frames.append(pq.read_table(part).to_pandas().assign(_seq=i))
        if not frames:
            df = pd.DataFrame(columns=["item_id", "path", "frame", "group", "width", "height", "error"])
        else:
            df = pd.concat(frames, ignore_index=True)
            newest = df.groupby("path")["_seq"].transform("max")
            df = df[df["_seq"] == newest].drop(columns="_seq")
            df = _normalise(df.sort_values(["group", "path", "frame"], na_position="first", kind="stable"))
            df = df.reset_index(drop=True)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out.with_name(self.out.name + ".tmp")
        if self.fmt == "csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
        os.replace(tmp, self.out)
        shutil.rmtree(self.parts, ignore_errors=True)
        return df

    def write_meta(self, meta: dict) -> None:
        tmp = self.meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta, indent=2, default=str))
        os.replace(tmp, self.meta_path)


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Stable dtypes so parts concatenate and Parquet schemas agree."""
    for col in ("frame", "width", "height"):
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    for col in ("file_size", "file_mtime_ns"):
        if col in df:
            df[col] = df[col].astype("int64")
    for col in df.columns:
        if df[col].dtype == object and col not in ("frame", "width", "height"):
            df[col] = df[col].astype("string")
    return df
