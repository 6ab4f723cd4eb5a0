"""USCL's pair sampling on real decoded clips: two views that share the anchor frame f2, short videos as USCL,
lambda ~ Beta(alpha, alpha), batches without same-video (and, by option, same-patient) negatives, frame cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _videos import constant_frames, write_video
from scipy import stats

from medgap.pretrain.pairs import VideoBatchSampler, VideoPairDataset, draw_pair
from medgap.pretrain.videos import FrameCache, evenly_spaced

VALUES = [20, 60, 100, 140, 180, 220]


def _dataset(tmp_path, values=VALUES, **kw):
    path = write_video(tmp_path / "v.mp4", constant_frames(values))
    cache = FrameCache([path], size=16, frames_per_video=len(values))
    # mean 0, std 1/255: the views come out in 0..255 units, as the frames
    return VideoPairDataset(cache, [0], (0, 0, 0), (1 / 255,) * 3, augment=False, **kw), cache


def test_decoded_frames_are_the_written_ones(tmp_path):
    _, cache = _dataset(tmp_path)
    frames = cache[0]
    assert frames.shape == (6, 3, 16, 16) and frames.dtype == np.uint8
    assert np.abs(frames.reshape(6, -1).mean(1) - VALUES).max() < 4  # flat frames survive MPEG-4 within a few levels


def test_views_share_the_anchor_frame(tmp_path):
    """view_i = l f1 + (1 - l) f2 and view_j = l f3 + (1 - l) f2 with f1, f2, f3 three different frames: from the
    known frame contents, the anchor recovered from each view is the same frame."""
    ds, cache = _dataset(tmp_path)
    decoded = cache[0].reshape(6, -1).astype(np.float64).mean(1)
    anchors = set()
    for seed in range(20):
        torch.manual_seed(seed)
        d, _ = ds.draw(0)
        torch.manual_seed(seed)
        vi, vj, target, index = ds[0]
        a, b, c = d.frames
        assert d.mixed and len({a, b, c}) == 3 and 0 < d.lam < 1
        vi, vj = float(vi.double().mean()), float(vj.double().mean())
        lam = d.lam
        # both views are constant images; each is a convex mixture of two frame values
        assert vi == pytest.approx(lam * decoded[a] + (1 - lam) * decoded[b], abs=1e-3)
        assert vj == pytest.approx(lam * decoded[c] + (1 - lam) * decoded[b], abs=1e-3)
        if lam < 0.9:  # the anchor recovered from view_i and from view_j is the same written frame
            anchor_i = (vi - lam * VALUES[a]) / (1 - lam)
            anchor_j = (vj - lam * VALUES[c]) / (1 - lam)
            assert anchor_i == pytest.approx(VALUES[b], abs=15) and anchor_j == pytest.approx(VALUES[b], abs=15)
        assert int(target) == 0 and index == 0
        anchors.add(b)
    assert len(anchors) > 2  # the anchor is drawn, not always the same frame


def test_short_videos_as_uscl(tmp_path):
    """Two frames: the views are those two frames, unmixed; one frame: both views are that frame."""
    ds, _ = _dataset(tmp_path, values=[40, 200])
    for seed in range(5):
        torch.manual_seed(seed)
        vi, vj, *_ = ds[0]
        assert sorted([round(float(vi.mean())), round(float(vj.mean()))]) == pytest.approx([40, 200], abs=3)
    ds1, _ = _dataset(tmp_path / "one", values=[90])
    vi, vj, *_ = ds1[0]
    assert torch.equal(vi, vj) and float(vi.mean()) == pytest.approx(90, abs=3)


def test_validation_draws_are_fixed_and_training_draws_change(tmp_path):
    ds, _ = _dataset(tmp_path, fixed_seed=3)
    assert all(torch.equal(ds[0][0], ds[0][0]) for _ in range(3))
    train, _ = _dataset(tmp_path / "t")
    assert len({round(float(train[0][0].mean()), 3) for _ in range(10)}) > 1


def test_lambda_follows_beta():
    rng = np.random.default_rng(0)
    lams = [draw_pair(10, rng, 0.5).lam for _ in range(3000)]
    assert stats.kstest(lams, stats.beta(0.5, 0.5).cdf).pvalue > 0.01
    assert stats.kstest(lams, stats.uniform().cdf).pvalue < 1e-6  # not any lambda in (0, 1)


def test_batches_hold_each_video_once():
    patients = [f"p{i // 3}" for i in range(30)]  # 10 patients x 3 videos
    sampler = VideoBatchSampler(patients, 8, seed=1, drop_last=False)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(30))  # every video once per epoch: no same-video negative
        assert all(len(set(b)) == len(b) for b in batches)
    sampler.set_epoch(0)
    first = list(sampler)
    sampler.set_epoch(1)
    assert first != list(sampler)  # reshuffled per epoch
    # without the option, some batch mixes videos of one patient
    assert any(len({patients[i] for i in b}) < len(b) for b in first)


def test_separate_patients_option():
    patients = [f"p{i // 3}" for i in range(30)]
    sampler = VideoBatchSampler(patients, 8, seed=1, separate_patients=True, drop_last=False)
    for epoch in range(5):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert sorted(i for b in batches for i in b) == list(range(30))
        assert all(len({patients[i] for i in b}) == len(b) for b in batches)
    dropped = VideoBatchSampler(patients, 8, seed=1, separate_patients=True, drop_last=True)
    assert all(len(b) == 8 for b in dropped)


def test_ddp_ranks_split_each_global_batch():
    patients = [f"p{i // 2}" for i in range(40)]
    parts = [list(VideoBatchSampler(patients, 4, seed=2, separate_patients=True, world_size=2, rank=r))
             for r in (0, 1)]
    assert len(parts[0]) == len(parts[1]) > 0
    for b0, b1 in zip(*parts):
        union = b0 + b1
        assert len(b0) == len(b1) == 4 and len({patients[i] for i in union}) == 8  # gathered negatives too


def test_frame_cache_decodes_once(tmp_path):
    paths = [write_video(tmp_path / f"{i}.mp4", constant_frames([10 * i + 5] * 5)) for i in range(3)]
    cache = FrameCache(paths, 16, 4, cache_dir=tmp_path / "cache")
    for _ in range(3):
        for i in range(3):
            cache[i]
    assert cache.decoded == 3 and len(list((tmp_path / "cache").glob("*.npy"))) == 3
    again = FrameCache(paths, 16, 4, cache_dir=tmp_path / "cache")  # a later run reads the .npy files
    assert np.array_equal(again[1], cache[1]) and again.decoded == 0
    assert cache[0].shape[0] == 4  # frames_per_video evenly spaced frames of the 5
    assert evenly_spaced(5, 4).tolist() == [0, 1, 3, 4] and evenly_spaced(2, 4).tolist() == [0, 1]
