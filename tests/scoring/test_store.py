"""The results store on hand-made rows: what counts as done, the merge keeps each path's newest rows once, CSV and
Parquet keep their types, a foreign file at --out is refused."""

from __future__ import annotations

import pandas as pd
import pytest

from medgap.scoring.store import LEADING, ResultStore, StoreError


def _rows(path: str, *, mtime: int, frames: int = 0, score: float = 1.0, error: str | None = None,
          **extra) -> list[dict]:
    """Rows as score_source makes them: one per frame (or one with frame None), the key columns, extras."""
    base = {"path": path, "group": "g", **extra, "file_size": 100, "file_mtime_ns": mtime, "metric_versions": "m=1"}
    if not frames:
        return [{"item_id": path, "frame": None, "width": 8, "height": 8, **base, "score": score, "error": error}]
    return [{"item_id": f"{path}#frame={i}", "frame": i, "width": 8, "height": 8, **base, "score": score + i,
             "error": error} for i in range(frames)]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_merge_keeps_the_newest_rows_of_each_path_once(tmp_path, fmt):
    out = tmp_path / f"s.{fmt}"
    first = ResultStore(out)
    first.add(_rows("a.png", mtime=1, score=1.0))
    first.add(_rows("v.mp4", mtime=1, frames=3, score=10.0))
    first.add(_rows("bad.png", mtime=1, score=float("nan"), error="not a decodable image"))
    first.finalize()
    assert ResultStore(out).done_keys() == {(p, 100, 1, "m=1") for p in ("a.png", "v.mp4", "bad.png")}

    # an interrupted run: v.mp4 changed (now 2 frames), c.png is new; its parts were flushed, never merged
    interrupted = ResultStore(out)
    interrupted.add(_rows("v.mp4", mtime=2, frames=2, score=20.0))
    interrupted.flush()
    interrupted.add(_rows("c.png", mtime=1, score=3.0, label="1"))
    interrupted.flush()
    assert (tmp_path / f"s.{fmt}.parts").is_dir()
    assert ("v.mp4", 100, 2, "m=1") in ResultStore(out).done_keys()

    resumed = ResultStore(out)
    resumed.add(_rows("d.png", mtime=1, score=4.0))
    merged = resumed.finalize()
    assert not (tmp_path / f"s.{fmt}.parts").exists()
    df = pd.read_parquet(out) if fmt == "parquet" else pd.read_csv(out)
    assert sorted(df.item_id) == sorted(["a.png", "bad.png", "c.png", "d.png", "v.mp4#frame=0", "v.mp4#frame=1"])
    v = df[df.path == "v.mp4"].sort_values("frame")
    assert v.score.tolist() == [20.0, 21.0] and (v.file_mtime_ns == 2).all()  # old 3-frame rows dropped
    assert list(df.columns[: len(LEADING)]) == list(LEADING)
    assert list(df.columns[-4:]) == ["error", "file_size", "file_mtime_ns", "metric_versions"]
    assert df.set_index("item_id").loc["c.png", "label"] in ("1", 1) and df.label.isna().sum() == 5
    assert df.set_index("item_id").loc["bad.png", "error"] == "not a decodable image"
    if fmt == "parquet":  # pandas reads the frame numbers back as integers, not floats
        assert str(df.frame.dtype) == "Int64" and str(df.width.dtype) == "Int64"
    # failures: bad.png came from the first run, the others were scored by later stores
    assert (merged.rows, merged.failed, merged.earlier_failed) == (6, 1, 1)
    assert merged.earlier_failures == [("bad.png", "not a decodable image")]


def test_a_finalize_with_nothing_new_leaves_the_output_as_it_is(tmp_path):
    out = tmp_path / "s.parquet"
    store = ResultStore(out)
    store.add(_rows("a.png", mtime=1))
    store.finalize()
    before = out.stat().st_mtime_ns
    merged = ResultStore(out).finalize()
    assert merged.rows == 1 and out.stat().st_mtime_ns == before


def test_parts_are_written_whole_and_an_empty_run_gives_an_empty_table(tmp_path):
    out = tmp_path / "s.parquet"
    store = ResultStore(out)
    store.flush()  # nothing buffered: no part
    assert not (tmp_path / "s.parquet.parts").exists()
    store.finalize()
    assert pd.read_parquet(out).empty
    store = ResultStore(out)
    store.add(_rows("a.png", mtime=1))
    store.flush()
    assert [p.suffix for p in (tmp_path / "s.parquet.parts").iterdir()] == [".parquet"]  # no temporary left


def test_a_foreign_table_at_out_is_refused_with_what_to_do(tmp_path):
    out = tmp_path / "s.csv"
    pd.DataFrame({"path": ["x.png"], "score": [1.0]}).to_csv(out, index=False)
    with pytest.raises(StoreError, match="not a medgap scores table.*choose another --out"):
        ResultStore(out).done_keys()
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(StoreError, match="cannot read the existing results"):
        ResultStore(bad).done_keys()


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_finalize_relabels_and_drops_rows_by_the_current_collection(tmp_path, fmt):
    out = tmp_path / f"s.{fmt}"
    first = ResultStore(out)
    first.add(_rows("a.png", mtime=1, label="x", site="A"))
    first.add(_rows("b.png", mtime=1, label="x", site="A"))
    first.add(_rows("v.mp4", mtime=1, frames=2))
    first.finalize()
    interrupted = ResultStore(out)  # a later run's part, not merged yet
    interrupted.add(_rows("c.png", mtime=1, label="y"))
    interrupted.flush()
    assert set(ResultStore(out).index()) == {"a.png", "b.png", "v.mp4", "c.png"}

    # b.png left the collection, a.png's labels changed, the manifest lost its site column
    labels = {"a.png": {"group": "new", "label": "x2"}, "v.mp4": {"group": "g"}, "c.png": {"group": "g", "label": "y"}}
    merged = ResultStore(out).finalize(labels=labels, value_columns=["score"])
    assert (merged.rows, merged.dropped_files, merged.dropped_rows, merged.relabelled_files) == (4, 1, 1, 1)
    df = (pd.read_parquet(out) if fmt == "parquet" else pd.read_csv(out)).set_index("item_id")
    assert sorted(df.index) == ["a.png", "c.png", "v.mp4#frame=0", "v.mp4#frame=1"] and "site" not in df
    assert df.loc["a.png", ["group", "label"]].tolist() == ["new", "x2"] and df.loc["a.png", "score"] == 1.0
    assert df.loc["v.mp4#frame=0", "label"] is None or pd.isna(df.loc["v.mp4#frame=0", "label"])
    before = out.stat().st_mtime_ns
    again = ResultStore(out).finalize(labels=labels, value_columns=["score"])  # nothing to change: not rewritten
    assert (again.rows, again.dropped_files, again.relabelled_files) == (4, 0, 0)
    assert out.stat().st_mtime_ns == before


def test_ctrl_c_between_creating_and_starting_the_part_writer_loses_nothing(tmp_path, monkeypatch):
    """CI saw `medgap quality --workers 2` end in 'internal error: cannot join thread before it is started' on
    Ctrl-C: the interrupt came after the background writer was created and before it started, and the closing
    flush joined it. The signal's timing is replayed by a start() that is interrupted before it runs."""
    import threading

    out = tmp_path / "s.parquet"
    store = ResultStore(out)
    store.add(_rows("a.png", mtime=1) + _rows("b.png", mtime=1))
    real_start = threading.Thread.start

    def interrupted_start(self):
        if self.name == "medgap-parts":
            raise KeyboardInterrupt
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", interrupted_start)
    with pytest.raises(KeyboardInterrupt):
        store.flush(wait=False)
    monkeypatch.setattr(threading.Thread, "start", real_start)
    store.flush()  # what the interrupted command does on its way out: no RuntimeError, the part is written
    store.finalize()
    assert sorted(pd.read_parquet(out).path) == ["a.png", "b.png"]
