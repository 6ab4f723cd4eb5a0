"""A resumable table of per-item results.

Rows are flushed to part files (``<out>.parts/part-NNNNNN-xxxxxx.parquet``, written to a temporary name and
renamed, so a kill -9 never leaves half a part). :meth:`ResultStore.index` tells, for each path, what its newest
rows were made from (file size and mtime, metric versions, read options); the caller decides what to rescore.
:meth:`ResultStore.finalize` merges the previous output and the parts into the output, keeping for each path only
the rows of its newest scoring, and removes the parts; given the current collection's labels, it also drops the
rows of files no longer in it and rewrites group and manifest columns (relabelling costs no decoding). The merge
streams record batches through pyarrow, so memory does not grow with the number of rows (only per-path maps).

Row order in the output: the previous output's rows first, then files in the order they finished.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

KEY = ("path", "file_size", "file_mtime_ns", "metric_versions")
"""Columns every medgap scores table has (outputs of older versions have no ``read_options``)."""
READ_OPTIONS = "read_options"
"""How the file was read, as ``name=value,...`` for the options that change its frames (null when none does)."""
LEADING = ("item_id", "path", "frame", "group", "width", "height")
"""The first columns of every table, in this order; extra (manifest) and metric columns follow, then
:data:`TRAILING`."""
TRAILING = ("error", "file_size", "file_mtime_ns", "metric_versions", READ_OPTIONS)
_INT_COLUMNS = ("frame", "width", "height", "file_size", "file_mtime_ns")
_BATCH_ROWS = 65_536  # rows per read batch and per written row group


class StoreError(ValueError):
    """An existing output that a run cannot resume from or merge into; the message says what to do."""


@dataclass(frozen=True)
class Scored:
    """What the newest rows of one path were made from."""

    file_size: int
    file_mtime_ns: int
    metric_versions: str
    read_options: str | None
    """``None`` when no read option applied, or the table predates the column."""


@dataclass
class MergeResult:
    """What :meth:`ResultStore.finalize` found in the merged output."""

    rows: int
    failed: int
    """Rows with an error."""
    earlier_failed: int
    """Of those, rows that earlier runs wrote (files this run skipped as done)."""
    earlier_failures: list[tuple[str, str]] = field(default_factory=list)
    """``(item_id, error)`` of the first of those."""
    relabelled_files: int = 0
    """Files whose rows got new group or manifest columns (``labels`` given)."""
    dropped_files: int = 0
    """Files no longer in the collection whose rows were dropped (``labels`` given)."""
    dropped_rows: int = 0


class _Table:
    """One file of rows (the previous output, or a part) read in batches."""

    def __init__(self, path: Path, fmt: str, seq: int) -> None:
        self.path, self.fmt, self.seq = path, fmt, seq
        try:
            if fmt == "parquet":
                self.schema = pq.read_schema(path)
                self.columns = list(self.schema.names)
            else:
                with open(path, newline="", encoding="utf-8") as f:
                    self.columns = next(csv.reader(f), [])
                self.schema = None  # types come from the hint given to batches()
        except (OSError, pa.ArrowException, UnicodeDecodeError, csv.Error) as e:
            raise StoreError(
                f"{path}: cannot read the existing results ({e}); move it away or choose another --out"
            ) from None

    def arrow_schema(self, hint: pa.Schema) -> pa.Schema:
        """The table's schema; a CSV's column types are the hint's, integers for the key, else strings."""
        if self.schema is not None:
            return self.schema.remove_metadata()
        fields = []
        for name in self.columns:
            if name in hint.names:
                fields.append(hint.field(name).remove_metadata())
            else:
                fields.append(pa.field(name, pa.int64() if name in _INT_COLUMNS else pa.large_string()))
        return pa.schema(fields)

    def batches(self, columns: list[str] | None = None, hint: pa.Schema | None = None) -> Iterator[pa.RecordBatch]:
        if self.fmt == "parquet":
            yield from pq.ParquetFile(self.path).iter_batches(batch_size=_BATCH_ROWS, columns=columns)
            return
        schema = self.arrow_schema(hint or pa.schema([]))
        wanted = columns or self.columns
        reader = pa_csv.open_csv(
            self.path,
            read_options=pa_csv.ReadOptions(block_size=1 << 22),
            convert_options=pa_csv.ConvertOptions(
                column_types={n: schema.field(n).type for n in wanted},
                include_columns=wanted,
                strings_can_be_null=True,  # what the writer makes of a null string
            ),
        )
        yield from reader


class ResultStore:
    """Buffered rows -> atomic Parquet parts -> one merged output (Parquet or CSV)."""

    def __init__(self, out: str | Path, fmt: str | None = None) -> None:
        self.out = Path(out)
        self.fmt = fmt or ("csv" if self.out.suffix.lower() == ".csv" else "parquet")
        if self.fmt not in ("parquet", "csv"):
            raise ValueError(f"unknown output format {self.fmt!r}: use parquet or csv")
        self.parts = self.out.with_name(self.out.name + ".parts")
        self.meta_path = self.out.with_name(self.out.name + ".meta.json")
        self._buffer: list[dict] = []
        self._written: set[str] = set()  # names of the parts this store wrote (this run)
        self._n_parts = len(self._part_files())
        self._writer: threading.Thread | None = None  # the part being written in the background, if any
        self._write_error: BaseException | None = None

    # --- reading what exists -------------------------------------------------------------------------------
    def _part_files(self) -> list[Path]:
        return sorted(self.parts.glob("part-*.parquet")) if self.parts.is_dir() else []

    def _tables(self) -> list[_Table]:
        """The previous output (seq -1) and the parts in the order they were written (seq 0, 1, ...)."""
        tables = []
        if self.out.exists():
            old = _Table(self.out, self.fmt, -1)
            missing = [k for k in KEY if k not in old.columns]
            if missing:
                raise StoreError(
                    f"{self.out}: exists but is not a medgap scores table (no column {', '.join(missing)}); "
                    "move it away or choose another --out"
                )
            tables.append(old)
        tables.extend(_Table(p, "parquet", i) for i, p in enumerate(self._part_files()))
        return tables

    def index(self) -> dict[str, Scored]:
        """For each path, what its newest rows (those :meth:`finalize` keeps) were made from."""
        out: dict[str, Scored] = {}
        for table in self._tables():  # in seq order, so later tables overwrite
            cols = list(KEY) + ([READ_OPTIONS] if READ_OPTIONS in table.columns else [])
            for batch in table.batches(cols):
                unique = pa.Table.from_batches([batch]).group_by(cols).aggregate([])
                values = [unique.column(c).to_pylist() for c in cols]
                if len(cols) == len(KEY):
                    values.append([None] * unique.num_rows)
                for path, size, mtime, versions, read in zip(*values):
                    out[path] = Scored(size, mtime, versions, read or None)
        return out

    def done_keys(self) -> set[tuple]:
        """Keys ``(path, file_size, file_mtime_ns, metric_versions)`` of the sources already scored (in the
        output or in parts left by an interrupted run)."""
        keys: set[tuple] = set()
        for table in self._tables():
            for batch in table.batches(list(KEY)):
                unique = pa.Table.from_batches([batch]).group_by(list(KEY)).aggregate([])
                keys.update(zip(*(unique.column(k).to_pylist() for k in KEY)))
        return keys

    # --- writing -------------------------------------------------------------------------------------------
    def add(self, rows: Iterable[dict]) -> None:
        """Buffer the rows of one or more whole files (a file's rows always land in the same part)."""
        self._buffer.extend(rows)

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def flush(self, wait: bool = True) -> None:
        """Write the buffered rows to a new part (temporary name, then an atomic rename).

        ``wait=False``: write it in a background thread and return at once (the scoring loop goes on while
        pandas and pyarrow build the part); at most one part is being written at a time, so a second flush waits
        for the first. A failed background write raises from the next flush. ``wait=True`` (the default)
        returns once every buffered row is on disk."""
        self._join()
        if self._buffer:
            rows, self._buffer = self._buffer, []
            self.parts.mkdir(parents=True, exist_ok=True)
            self._n_parts += 1
            final = self.parts / f"part-{self._n_parts:06d}-{uuid.uuid4().hex[:6]}.parquet"
            self._written.add(final.name)
            if wait:
                _write_part(rows, final)
            else:
                self._writer = threading.Thread(target=self._write_in_background, args=(rows, final),
                                                name="medgap-parts", daemon=True)
                self._writer.start()
        if wait:
            self._join()

    def _write_in_background(self, rows: list[dict], final: Path) -> None:
        try:
            _write_part(rows, final)
        except BaseException as e:  # noqa: BLE001 - raised in the caller's thread by the next flush
            self._write_error = e

    def _join(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            if writer.ident is None:  # created, never started: Ctrl-C came between Thread() and start()
                writer.run()  # write its part here, so its rows are not lost
            else:
                writer.join()
        if self._write_error is not None:
            error, self._write_error = self._write_error, None
            raise error

    def finalize(
        self,
        keep_failures: int = 1000,
        *,
        labels: Mapping[str, Mapping[str, str | None]] | None = None,
        value_columns: Sequence[str] = (),
    ) -> MergeResult:
        """Merge the previous output and the parts into the output (for each path, only the rows of its newest
        part), write it atomically and remove the parts. Streams batches: memory stays flat in the rows.

        ``labels``: the current collection, ``path -> {"group": ..., manifest column: value, ...}``. Rows of
        paths not in it are dropped; every row's group and manifest columns are set from it (columns that no
        source has any more go). ``value_columns`` are the columns the rows were scored into (the metrics');
        any other column between :data:`LEADING` and :data:`TRAILING` is taken for a label column."""
        self.flush()
        tables = self._tables()
        newest: dict[str, int] = {}  # path -> seq of the table holding its newest rows
        for table in tables:  # in seq order, so later tables overwrite
            for batch in table.batches(["path"]):
                newest.update(dict.fromkeys(pc.unique(batch.column(0)).to_pylist(), table.seq))
        result = MergeResult(0, 0, 0)
        extras: list[str] = []
        if labels is not None:
            extras = list(dict.fromkeys(k for lab in labels.values() for k in lab if k != "group"))
            result.dropped_rows, relabelled = self._label_changes(tables, newest, labels, extras, value_columns, _HINT)
            result.relabelled_files = len(relabelled)
            gone = [p for p in newest if p not in labels]
            result.dropped_files = len(gone)
            for p in gone:
                del newest[p]
        paths_of: dict[int, list[str]] = {}
        for path, seq in newest.items():
            paths_of.setdefault(seq, []).append(path)
        kept = {seq: pa.array(paths, pa.large_string()) for seq, paths in paths_of.items()}
        contributing = [t for t in tables if t.seq in kept]  # a table whose rows are all stale adds no columns
        parquet_schemas = [t.schema for t in contributing if t.schema is not None]
        hint = _unify([s.remove_metadata() for s in parquet_schemas]) if parquet_schemas else pa.schema([])
        schema = _ordered(_unify([t.arrow_schema(hint) for t in contributing]) if contributing else _EMPTY)
        if labels is not None:
            schema = _relabelled_schema(schema, extras, value_columns)
        schema = _with_pandas_metadata(schema, parquet_schemas)
        rewrite = bool(self._part_files()) or not self.out.exists()
        if labels is not None and not rewrite:
            rewrite = bool(result.dropped_rows or result.relabelled_files or tables[0].columns != schema.names)
        with _Writer(self.out, self.fmt, schema, enabled=rewrite) as writer:
            for table in contributing:
                earlier = table.seq < 0 or table.path.name not in self._written
                for batch in table.batches(None, hint):
                    paths = batch.column("path").cast(pa.large_string())
                    batch = batch.filter(pc.is_in(paths, value_set=kept[table.seq]))
                    if not batch.num_rows:
                        continue
                    if labels is not None:
                        batch = _with_labels(batch, labels, ["group", *extras])
                    batch = _conform(batch, schema)
                    writer.write(batch)
                    result.rows += batch.num_rows
                    failed = batch.filter(pc.fill_null(pc.not_equal(batch.column("error"), ""), False))
                    result.failed += failed.num_rows
                    if earlier and failed.num_rows:
                        result.earlier_failed += failed.num_rows
                        room = keep_failures - len(result.earlier_failures)
                        if room > 0:
                            ids, errors = failed.column("item_id").to_pylist(), failed.column("error").to_pylist()
                            result.earlier_failures.extend(list(zip(ids, errors))[:room])
        shutil.rmtree(self.parts, ignore_errors=True)
        return result

    @staticmethod
    def _label_changes(
        tables: list[_Table],
        newest: Mapping[str, int],
        labels: Mapping[str, Mapping[str, str | None]],
        label_names: Sequence[str],
        value_columns: Sequence[str],
        hint: pa.Schema,
    ) -> tuple[int, set[str]]:
        """Rows (in their newest table) of paths not in ``labels``, and the paths whose newest rows carry other
        labels than ``labels`` gives them. Reads only the path and label columns."""
        dropped_rows = 0
        relabelled: set[str] = set()
        for table in tables:
            old = [c for c in table.columns if c == "group" or _is_label(c, value_columns)]
            compare = list(dict.fromkeys(["group", *label_names, *old]))
            for batch in table.batches(["path", *old], hint):
                cols = {c: batch.column(c).to_pylist() for c in old}
                for i, path in enumerate(batch.column("path").to_pylist()):
                    if newest.get(path) != table.seq:
                        continue
                    lab = labels.get(path)
                    if lab is None:
                        dropped_rows += 1
                    elif path not in relabelled and any(
                        _text(cols[c][i] if c in cols else None) != _text(lab.get(c)) for c in compare
                    ):
                        relabelled.add(path)
        return dropped_rows, relabelled

    def write_meta(self, meta: dict) -> None:
        tmp = self.meta_path.with_name(self.meta_path.name + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2, default=str))
        os.replace(tmp, self.meta_path)


_HINT = pa.schema([])  # a CSV's columns: integers for the key and frame sizes, strings for the rest


def _is_label(column: str, value_columns: Sequence[str]) -> bool:
    return column not in LEADING and column not in TRAILING and column not in value_columns


def _text(value: object) -> str | None:
    """A label as compared: CSV reads an empty cell back as null."""
    return None if value is None or value == "" else str(value)


def _relabelled_schema(schema: pa.Schema, extras: Sequence[str], value_columns: Sequence[str]) -> pa.Schema:
    """The leading columns, the current manifest columns, the value columns, the trailing ones: old label
    columns that no source has any more are left out."""
    names = schema.names
    fields = [schema.field(n) for n in LEADING if n in names]
    fields += [schema.field(n) if n in names else pa.field(n, pa.large_string()) for n in extras]
    fields += [schema.field(n) for n in names if n in value_columns and n not in extras]
    fields += [schema.field(n) for n in TRAILING if n in names]
    if "group" not in names:
        fields.insert(0, pa.field("group", pa.large_string()))
    return _ordered(pa.schema(fields))


def _with_labels(batch: pa.RecordBatch, labels: Mapping[str, Mapping[str, str | None]],
                 columns: Sequence[str]) -> pa.RecordBatch:
    """``batch`` with ``columns`` (group and manifest columns) set from ``labels`` by path."""
    paths = batch.column("path").to_pylist()
    arrays = dict(zip(batch.schema.names, batch.columns))
    for c in columns:
        arrays[c] = pa.array([labels[p].get(c) for p in paths], pa.large_string())
    return pa.RecordBatch.from_pydict(arrays)


_EMPTY = pa.schema([(c, pa.large_string()) for c in ("item_id", "path", "group", "error")])


class _Writer:
    """Writes batches to a temporary file in row groups of about ``_BATCH_ROWS`` and renames it over ``out``."""

    def __init__(self, out: Path, fmt: str, schema: pa.Schema, enabled: bool = True) -> None:
        self.out, self.fmt, self.schema, self.enabled = out, fmt, schema, enabled
        self.tmp = out.with_name(out.name + ".tmp")
        self._pending: list[pa.RecordBatch] = []
        self._rows = 0

    def __enter__(self) -> _Writer:
        if self.enabled:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            if self.fmt == "csv":
                self._w = pa_csv.CSVWriter(str(self.tmp), self.schema)
            else:
                self._w = pq.ParquetWriter(str(self.tmp), self.schema)
        return self

    def write(self, batch: pa.RecordBatch) -> None:
        if not self.enabled:
            return
        self._pending.append(batch)
        self._rows += batch.num_rows
        if self._rows >= _BATCH_ROWS:
            self._drain()

    def _drain(self) -> None:
        if self._pending:
            self._w.write_table(pa.Table.from_batches(self._pending, schema=self.schema))
        self._pending, self._rows = [], 0

    def __exit__(self, exc_type, *exc) -> None:
        if not self.enabled:
            return
        if exc_type is None:
            self._drain()
        self._w.close()
        if exc_type is None:
            os.replace(self.tmp, self.out)
        else:
            self.tmp.unlink(missing_ok=True)


def _unify(schemas: list[pa.Schema]) -> pa.Schema:
    # permissive: an all-null column of one part (null type) takes the type of the others
    return pa.unify_schemas(schemas, promote_options="permissive")


def _ordered(schema: pa.Schema) -> pa.Schema:
    names = schema.names
    middle = [n for n in names if n not in LEADING and n not in TRAILING]
    order = [n for n in LEADING if n in names] + middle + [n for n in TRAILING if n in names]
    fields = [schema.field(n) for n in order]
    # a column that is null in every contributing table has no type of its own: give it the natural one
    fields = [
        f.with_type(pa.int64() if f.name in _INT_COLUMNS else pa.large_string()) if pa.types.is_null(f.type) else f
        for f in fields
    ]
    return pa.schema(fields)


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with exactly ``schema``'s columns and types (missing columns are null)."""
    arrays = []
    for f in schema:
        i = batch.schema.get_field_index(f.name)
        a = batch.column(i) if i >= 0 else pa.nulls(batch.num_rows, f.type)
        arrays.append(a if a.type == f.type else a.cast(f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _with_pandas_metadata(schema: pa.Schema, sources: list[pa.Schema]) -> pa.Schema:
    """``schema`` with pandas metadata, so pandas reads nullable integers (``frame``) as Int64, not float.

    Each column's entry comes from a source table whose column has the same type, else from pyarrow's default.
    """
    entries: dict[str, dict] = {}
    for s in sources:
        for c in (s.pandas_metadata or {}).get("columns", []):
            name = c.get("field_name")
            if name in schema.names and name not in entries and s.field(name).type == schema.field(name).type:
                entries[name] = c
    missing = [f for f in schema if f.name not in entries]
    if missing:
        # strings as _normalise writes them (pandas "string", missing values <NA>), the rest pyarrow's default
        empty = pa.schema(missing).empty_table().to_pandas()
        for f in missing:
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
                empty[f.name] = empty[f.name].astype("string")
        default = pa.Schema.from_pandas(empty, preserve_index=False)
        entries.update({c["field_name"]: c for c in default.pandas_metadata["columns"]})
    meta = pa.Schema.from_pandas(pd.DataFrame(), preserve_index=False).pandas_metadata
    meta["columns"] = [entries[f.name] for f in schema]
    return schema.with_metadata({b"pandas": json.dumps(meta).encode()})


def _write_part(rows: list[dict], final: Path) -> None:
    """One part file from whole files' rows: a temporary name, then an atomic rename (a kill -9 never leaves
    half a part)."""
    tmp = final.with_suffix(".tmp")
    _normalise(pd.DataFrame(rows)).to_parquet(tmp, index=False)
    os.replace(tmp, final)


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Stable dtypes and column order, so parts concatenate and Parquet schemas agree."""
    for col in ("frame", "width", "height"):
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    for col in ("file_size", "file_mtime_ns"):
        if col in df:
            df[col] = df[col].astype("int64")
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]):
            df[col] = df[col].astype("string")
    middle = [c for c in df.columns if c not in LEADING and c not in TRAILING]
    return df[[c for c in LEADING if c in df] + middle + [c for c in TRAILING if c in df]]
