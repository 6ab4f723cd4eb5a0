"""Network metrics in collection scoring (issue 9, item 6): frames batched across files and run in this process,
the model loaded once per process, mixed runs (BRISQUE in worker processes + a network here) equal to separate
runs, per-row failures, Ctrl-C and resume, and the device check. The network is tests/_network_metric.py's
``testnet``, a real fixed-seed torch conv net."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

import _network_metric as tn  # noqa: E402  (registers "testnet")
import medgap  # noqa: E402
from medgap.io import collect, item_id, read_frames, to_gray255  # noqa: E402
from medgap.quality import DeviceError, create_metric, release_models  # noqa: E402
from medgap.scoring import ProcessEngine, score_collection  # noqa: E402

NET = create_metric("testnet")
VALUES = ["testnet", "testnet_activation"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Real photos (scikit-image) cut to two sizes in two groups, a 3-page TIFF, and one constant image, which the
    test network refuses (and BRISQUE too)."""
    import cv2
    import tifffile
    from skimage import data

    root = tmp_path_factory.mktemp("net") / "images"
    photos = [data.camera(), data.coins(), data.moon(), data.page(), data.text(), data.brick(), data.grass()]
    for i, img in enumerate(photos):
        h, w = (96, 128) if i % 2 else (112, 112)
        d = root / ("a" if i < 4 else "b")
        d.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(d / f"p{i}.png"), np.ascontiguousarray(img[20:20 + h, 30:30 + w]))
    tifffile.imwrite(root / "b" / "stack.tif", np.stack([data.camera()[k * 40:k * 40 + 96, :128] for k in range(3)]),
                     photometric="minisblack")
    cv2.imwrite(str(root / "b" / "flat.png"), np.full((96, 128), 90, np.uint8))
    return root


def _scores(out: Path) -> pd.DataFrame:
    df = pd.read_parquet(out)
    return df.set_index("item_id").sort_index()


def test_batched_scores_equal_one_at_a_time_and_the_plain_network(folder, tmp_path):
    one = score_collection(collect([folder]), [NET], tmp_path / "one.parquet", batch_size=1, device="cpu")
    batched = score_collection(collect([folder]), [NET], tmp_path / "b.parquet", batch_size=4, device="cpu")
    assert (one.items_scored, one.items_failed) == (batched.items_scored, batched.items_failed) == (10, 1)
    a, b = _scores(tmp_path / "one.parquet"), _scores(tmp_path / "b.parquet")
    assert list(a.index) == list(b.index)
    np.testing.assert_allclose(b[VALUES].to_numpy(), a[VALUES].to_numpy(), rtol=1e-5, atol=1e-6)
    # the restatement: the same module built by the test, run on each frame alone in float64
    frames = {item_id(str(p), fr.frame): to_gray255(fr) for p in sorted(folder.rglob("*.*")) for fr in read_frames(p)}
    ok = b[b.error.isna()]
    plain = tn.plain_scores([frames[i] for i in ok.index])
    np.testing.assert_allclose(ok.testnet.to_numpy(), plain, rtol=1e-5, atol=1e-6)
    assert len(set(np.round(plain, 6))) == len(plain)  # the scores tell the frames apart: a mix-up would show


def test_the_model_is_loaded_once_per_process(folder, tmp_path):
    release_models()
    before = tn.TinyQualityNet.loads
    metric = create_metric("testnet", seed=11)
    score_collection(collect([folder]), [metric], tmp_path / "s.parquet", batch_size=2, device="cpu")
    medgap.score(folder, [create_metric("testnet", seed=11)], batch_size=3, device="cpu")  # a new but equal metric
    assert tn.TinyQualityNet.loads - before == 1
    # worker processes (forkserver) get the metric pickled without its model and load it once each
    image = to_gray255(next(read_frames(next(folder.rglob("p0.png")))))
    with ProcessEngine(2) as engine:
        got = list(engine.imap_unordered(tn.score_in_worker, [(metric, image)] * 8))
    per_pid = {}
    for pid, loads, values in got:
        per_pid[pid] = max(per_pid.get(pid, 0), loads)
        assert values["testnet"] == pytest.approx(metric.compute(image)["testnet"], rel=1e-6)
    assert set(per_pid.values()) == {1}


@pytest.mark.parametrize("workers", [1, 2])
def test_a_mixed_run_equals_separate_runs(folder, tmp_path, workers):
    brisque = create_metric("brisque")
    score_collection(collect([folder]), [brisque], tmp_path / "hand.parquet", workers=workers)
    score_collection(collect([folder]), [NET], tmp_path / "net.parquet", batch_size=4, device="cpu")
    mixed = score_collection(collect([folder]), [brisque, NET], tmp_path / "mixed.parquet", workers=workers,
                             batch_size=4, device="cpu")
    hand, net, both = (_scores(tmp_path / f"{n}.parquet") for n in ("hand", "net", "mixed"))
    assert list(both.index) == list(hand.index) == list(net.index)
    pd.testing.assert_frame_equal(both[["brisque", "brisque_flat_fraction"]], hand[["brisque", "brisque_flat_fraction"]])
    pd.testing.assert_frame_equal(both[VALUES], net[VALUES])
    # errors of both kinds, hand-crafted first: the constant image fails both metrics, on its row only
    expected = ["; ".join(e for e in (h, n) if e) for h, n in zip(hand.error.fillna(""), net.error.fillna(""))]
    assert list(both.error.fillna("")) == expected
    assert mixed.items_failed == sum(map(bool, expected)) and mixed.items_scored == len(expected) - mixed.items_failed
    flat = both.loc[[i for i in both.index if i.endswith("flat.png")]]
    assert "testnet: a constant frame has no structure to score" in flat.error.iloc[0]
    assert flat[VALUES].isna().all(axis=None)


def test_a_frame_the_network_refuses_fails_only_its_row_within_a_batch(folder, tmp_path):
    """The constant image shares its shape (and so its forward pass) with 3 photos: they are still scored, with
    the values they get alone."""
    s = score_collection(collect([folder]), [NET], tmp_path / "s.parquet", batch_size=64, device="cpu")
    df = _scores(tmp_path / "s.parquet")
    assert s.items_failed == 1 and s.files_failed == 0
    failed = df[df.error.notna()]
    assert [Path(p).name for p in failed.path] == ["flat.png"]
    assert failed.error.iloc[0] == "testnet: a constant frame has no structure to score"
    photos = [(i, p) for i, p in zip(df.index, df.path) if p.endswith(".png") and i not in failed.index]
    assert len(photos) == 7
    for i, p in photos:
        alone = NET.compute(to_gray255(next(read_frames(p))))
        assert df.loc[i, "testnet"] == pytest.approx(alone["testnet"], rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_keeps_finished_rows_and_the_rerun_scores_only_the_rest(folder, tmp_path, workers):
    out = tmp_path / "s.parquet"
    metrics = [create_metric("brisque"), NET]
    calls = []

    def interrupt(done: int, total: int, items: int) -> None:
        calls.append(done)
        if len(calls) == 4:  # the first call reports the skipped files; three files are done
            raise KeyboardInterrupt

    first = score_collection(collect([folder]), metrics, out, workers=workers, batch_size=2, device="cpu",
                             progress=interrupt)
    assert first.interrupted and first.files_scored == 3 and not out.exists()
    again = score_collection(collect([folder]), metrics, out, workers=workers, batch_size=2, device="cpu")
    assert (again.files_skipped, again.files_scored, again.files_total) == (3, 6, 9)
    fresh = tmp_path / "fresh.parquet"
    score_collection(collect([folder]), metrics, fresh, workers=workers, batch_size=2, device="cpu")
    got, ref = _scores(out), _scores(fresh)
    assert got.index.is_unique and list(got.index) == list(ref.index)
    np.testing.assert_allclose(got[VALUES + ["brisque"]].to_numpy(float), ref[VALUES + ["brisque"]].to_numpy(float),
                               rtol=1e-5, atol=1e-6)


def test_medgap_score_batches_the_network_and_equals_the_stored_rows(folder, tmp_path):
    df = medgap.score(folder, ["brisque", NET], batch_size=5, device="cpu", workers=2)
    score_collection(collect([folder]), [create_metric("brisque"), NET], tmp_path / "s.parquet", batch_size=5,
                     device="cpu")
    ref = _scores(tmp_path / "s.parquet")
    got = df.set_index("item_id").sort_index()
    np.testing.assert_allclose(got[VALUES].to_numpy(float), ref[VALUES].to_numpy(float), rtol=1e-5, atol=1e-6)
    pd.testing.assert_series_equal(got.brisque, ref.brisque)
    assert list(got.error.fillna("")) == list(ref.error.fillna(""))


def test_metric_batch_is_one_forward_pass_per_chunk_and_keeps_the_order(folder, tmp_path):
    rng = np.random.default_rng(3)
    images = [rng.uniform(0, 255, (40, 48)) for _ in range(5)] + [rng.uniform(0, 255, (32, 32)) for _ in range(2)]
    images = [images[k] for k in (0, 5, 1, 2, 6, 3, 4)]  # the two sizes interleaved
    tn.TinyQualityNet.passes.clear()
    got = NET.batch(images, batch_size=3, device="cpu")
    assert sorted(tn.TinyQualityNet.passes) == [2, 2, 3]  # 5 of one shape in passes of 3 + 2, then the 2 others
    tn.TinyQualityNet.passes.clear()
    NET.batch(images, device="cpu")  # the metric's own batch size (32): one pass per shape
    assert sorted(tn.TinyQualityNet.passes) == [2, 5]
    tn.TinyQualityNet.passes.clear()
    medgap.score(folder, [NET], device="cpu")  # across files: 4 frames of 112x112, 7 of 96x128 with the constant one
    # the 112x112 frames in one pass; the 96x128 pass fails on the constant frame (refused before the forward)
    # and its frames are rerun one by one: 6 passes of one, the constant frame refused again
    assert sorted(tn.TinyQualityNet.passes) == [1] * 6 + [4]
    plain = tn.plain_scores(images)
    assert [r["testnet"] for r in got] == pytest.approx(plain, rel=1e-5, abs=1e-6)
    assert [NET(x)["testnet"] for x in images] == pytest.approx(plain, rel=1e-5, abs=1e-6)
    with pytest.raises(ValueError, match="constant frame"):
        NET.batch([images[0], np.full((40, 48), 7.0)], device="cpu")


def test_cuda_without_cuda_names_the_fix(folder, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(DeviceError, match=r"device 'cuda'.*device='cpu'.*device='auto'"):
        score_collection(collect([folder]), [NET], tmp_path / "s.parquet", device="cuda")
    with pytest.raises(DeviceError, match="device='cpu'"):
        NET.batch([np.zeros((8, 8)) + np.arange(8)], device="cuda:1")
    with pytest.raises(DeviceError, match="unknown device 'gpu'"):
        medgap.score(folder, [NET], device="gpu")
    with pytest.raises(DeviceError, match="unknown device 'gpu'"):  # checked for hand-crafted runs too
        medgap.score(folder, ["imagestats"], device="gpu")


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA device")
def test_cuda_scores_equal_cpu_scores(folder, tmp_path):
    cpu = medgap.score(folder, [NET], device="cpu", batch_size=4)
    gpu = medgap.score(folder, [NET], device="cuda", batch_size=4)
    assert math.isclose(len(cpu), len(gpu))
    np.testing.assert_allclose(gpu[VALUES].to_numpy(float), cpu[VALUES].to_numpy(float), rtol=1e-4, atol=1e-5)
