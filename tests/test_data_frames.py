"""Events to frames (each mode against a hand computation, SpikingJelly's integrators and tonic's ToFrame) and
the disk cache of converted frames (hits identical, damaged or stale entries rebuilt)."""
import os
import zipfile

import numpy as np
import pytest
import torch

import dataformats as F
from badinput import expect_clear_error
from snn import data
from snn.data.events import make_events
from snn.data.frame_cache import FrameCache
from snn.data.frames import FrameSpec, events_to_frames

pytestmark = pytest.mark.usefixtures("one_thread")

# Seven events on a 3x2 sensor: (x, y, t, p).
X, Y, T, P = [0, 1, 2, 0, 1, 2, 0], [0, 1, 0, 1, 0, 1, 0], [0, 10, 20, 35, 40, 41, 99], [1, 0, 1, 1, 0, 0, 1]


def _hand(frame_of, n_frames, t_offset=0):
    """Frames [n_frames, 2, 2, 3] from the frame index of each event (None: dropped)."""
    out = torch.zeros(n_frames, 2, 2, 3)
    for x, y, p, k in zip(X, Y, P, frame_of):
        if k is not None:
            out[k, p, y, x] += 1
    return out


@pytest.mark.parametrize("spec, frame_of, n_frames", [
    (FrameSpec(n_frames=3), [0, 0, 0, 1, 1, 1, 2], 3),                          # Δ = 99 // 3 = 33, t = 99 -> last
    (FrameSpec(n_frames=3, split_by="number"), [0, 0, 1, 1, 2, 2, 2], 3),       # 7 // 3 = 2 events a frame
    (FrameSpec(n_frames=3, duration=60), [0, 0, 1, 1, 2, 2, None], 3),          # k = t·3 // 60, t >= 60 dropped
    (FrameSpec(time_window=25), [0, 0, 0, 1, 1, 1, 3], 4),                      # k = t // 25
    (FrameSpec(event_count=3), [0, 0, 0, 1, 1, 1, 2], 3),                       # k = i // 3
])
def test_each_mode_matches_a_hand_computation(spec, frame_of, n_frames):
    ev = make_events(X, Y, T, P)
    assert torch.equal(events_to_frames(ev, (3, 2, 2), spec), _hand(frame_of, n_frames))
    if spec.duration is None:  # relative to the first event: a later start changes nothing
        late = make_events(X, Y, np.asarray(T) + 5000, P)
        assert torch.equal(events_to_frames(late, (3, 2, 2), spec), _hand(frame_of, n_frames))


def test_one_polarity_and_one_dimensional_sensors():
    ev = make_events(X, Y, T, P)
    merged = events_to_frames(ev, (3, 2, 1), FrameSpec(event_count=7))
    assert merged.shape == (1, 1, 2, 3) and torch.equal(merged[0, 0], _hand([0] * 7, 1)[0].sum(0))
    cochlea = make_events([4, 4, 0], [0, 0, 0], [0, 5, 9], [1, 1, 1])
    assert torch.equal(events_to_frames(cochlea, (5, 1, 1), 1), torch.tensor([[1.0, 0, 0, 0, 2]]))


def test_empty_recordings_give_zero_frames():
    empty = make_events([], [], [], [])
    assert events_to_frames(empty, (3, 2), 4).shape == (4, 2, 2, 3)
    assert events_to_frames(empty, (3, 2), {"time_window": 10}).shape == (1, 2, 2, 3)
    assert events_to_frames(empty, (3, 2), {"event_count": 10}).sum() == 0


def test_same_frames_as_spikingjelly_and_tonic():
    from tonic.functional import to_frame_numpy

    x, y, t, p = F.random_events(np.random.default_rng(0), 3000, 16, 12, 1_000_000, t_min=500)
    ev = make_events(x, y, t, p)
    sj_events = {"x": x, "y": y, "t": t, "p": p}
    with F.spikingjelly_datasets("utils") as (sj,):
        for split_by in ("number", "time"):
            ref = sj.integrate_events_by_fixed_frames_number(sj_events, split_by, 7, 12, 16)
            assert np.array_equal(events_to_frames(ev, (16, 12), FrameSpec(n_frames=7, split_by=split_by)), ref)
        ref = sj.integrate_events_by_fixed_duration(sj_events, 70_001, 12, 16)
        assert np.array_equal(events_to_frames(ev, (16, 12), FrameSpec(time_window=70_001)), ref)
    tonic_ev = np.zeros(len(ev), dtype=[("x", int), ("y", int), ("t", int), ("p", int)])
    for f in "xytp":
        tonic_ev[f] = ev[f]
    for kw in ({"time_window": 70_001}, {"event_count": 130}):
        ref = to_frame_numpy(tonic_ev, (16, 12, 2), include_incomplete=True, **kw)
        assert np.array_equal(events_to_frames(ev, (16, 12, 2), kw), ref)


def test_frame_settings_are_checked():
    ev = make_events(X, Y, T, P)
    expect_clear_error(lambda: FrameSpec(), ValueError, "exactly one", "n_frames", "time_window", "event_count")
    expect_clear_error(lambda: FrameSpec(n_frames=2, event_count=3), ValueError, "exactly one")
    expect_clear_error(lambda: FrameSpec(n_frames=0), ValueError, "n_frames")
    expect_clear_error(lambda: FrameSpec(n_frames=2, split_by="count"), ValueError, "split_by", "number")
    expect_clear_error(lambda: FrameSpec(time_window=5, duration=10), ValueError, "duration")
    expect_clear_error(lambda: FrameSpec.make({"frames": 3}), TypeError, "frames", "n_frames")
    expect_clear_error(lambda: FrameSpec.make(2.5), TypeError, "frames")
    expect_clear_error(lambda: events_to_frames(ev, (2, 2), 3), ValueError, "outside", "2x2 sensor", "x=2")


# -- the frame cache --------------------------------------------------------------------------------------
def _data_record_offset(path) -> int:
    """Byte offset of the first tensor-data record of a torch zip file."""
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if "/data/" in i.filename)
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = np.frombuffer(f.read(4), dtype="<u2")
    return info.header_offset + 30 + int(name_len) + int(extra_len)


@pytest.fixture
def nmnist(tmp_path):
    written = F.nmnist_root(tmp_path / "N-MNIST", np.random.default_rng(1))
    return tmp_path, written


def test_cache_hit_returns_identical_frames(nmnist):
    root, _ = nmnist
    ds = data.get_dataset("nmnist", root / "N-MNIST", cache_dir=root / "cache", frames=4)
    first = [ds[i][0] for i in range(3)]
    assert ds.cache.builds == 3 and ds.cache.hits == 0
    again = data.get_dataset("nmnist", root / "N-MNIST", cache_dir=root / "cache", frames=4)
    for i in range(3):
        x, _ = again[i]
        assert torch.equal(x, first[i]) and x.dtype == torch.float32
    assert again.cache.hits == 3 and again.cache.builds == 0
    uncached = data.get_dataset("nmnist", root / "N-MNIST", cache=False, frames=4)
    assert torch.equal(uncached[2][0], first[2])
    assert not [p for p in (root / "cache").iterdir() if p.suffix != ".pt"]  # no temporaries left


def test_cache_key_holds_the_settings_and_the_file(nmnist):
    root, written = nmnist
    kw = dict(root=root / "N-MNIST", cache_dir=root / "cache")
    a = data.get_dataset("nmnist", frames=4, **kw)
    b = data.get_dataset("nmnist", frames={"n_frames": 4, "split_by": "number"}, **kw)
    c = data.get_dataset("nmnist", frames=4, downsample=2, **kw)
    assert len({a.cache.path(_key(a, 0)), a.cache.path(_key(b, 0)), a.cache.path(_key(c, 0))}) == 3
    assert c[0][0].shape == (4, 2, 17, 17) and c.input_shape == (2, 17, 17)
    before = a[0][0]
    x, y, t, p = F.random_events(np.random.default_rng(9), 60, 34, 34, 30_000)
    F.write(a.files[0], F.nmnist_bytes(x, y, t, p))  # the recording changes: the cached frames must not be used
    os.utime(a.files[0], ns=(1, 1))
    after = data.get_dataset("nmnist", frames=4, **kw)[0][0]
    assert not torch.equal(after, before) and after.sum() == 60
    assert torch.equal(after, events_to_frames(make_events(x, y, t, p), (34, 34), 4))


def _key(ds, i):
    return {"dataset": ds.name, "reader": ds.reader_version, "sample": ds.identity(i), "frames": ds.frames.key(),
            "downsample": ds.downsample, "sensor_size": list(ds.sensor_size)}


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped tensor byte", "other key", "wrong shape"])
def test_damaged_cache_entry_is_rebuilt_not_used(nmnist, damage):
    root, _ = nmnist
    kw = dict(root=root / "N-MNIST", cache_dir=root / "cache", frames=4)
    ds = data.get_dataset("nmnist", **kw)
    good = ds[1][0]
    path = ds.cache.path(_key(ds, 1))
    blob = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not a torch file")
    elif damage == "truncated":
        path.write_bytes(blob[: len(blob) // 2])
    elif damage == "flipped tensor byte":
        at = _data_record_offset(path)
        path.write_bytes(blob[:at] + bytes([blob[at] ^ 0x01]) + blob[at + 1:])
    elif damage == "other key":
        ds[0]  # writes sample 0's entry, which then stands in sample 1's place
        path.write_bytes(ds.cache.path(_key(ds, 0)).read_bytes())
    else:
        torch.save({"key": FrameCache._canonical(_key(ds, 1)), "frames": torch.zeros(4, 2, 3, 3, dtype=torch.uint8)},
                   path)
    again = data.get_dataset("nmnist", **kw)
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        x, _ = again[1]
    assert torch.equal(x, good) and again.cache.rebuilt == 1
    third = data.get_dataset("nmnist", **kw)
    assert torch.equal(third[1][0], good) and third.cache.hits == 1  # the rebuilt entry is good again


def test_time_major_loader_pads_shorter_sequences(nmnist):
    root, _ = nmnist
    ds = data.get_dataset("nmnist", root / "N-MNIST", cache=False, frames={"time_window": 4000})
    lengths = [ds[i][0].shape[0] for i in range(4)]
    x, y = next(iter(data.loader(ds, batch_size=4)))
    assert x.shape == (max(lengths), 4, 2, 34, 34) and y.tolist() == ds.targets[:4].tolist()
    for b in range(4):
        assert torch.equal(x[:lengths[b], b], ds[b][0]) and x[lengths[b]:, b].sum() == 0
    static = data.InMemoryDataset(torch.rand(6, 1, 4, 4), torch.arange(6) % 3, name="toy", classes="abc",
                                  sequence=False)
    xs, ys = next(iter(data.loader(static, batch_size=5)))
    assert xs.shape == (5, 1, 4, 4) and torch.equal(xs, static.x[:5])


def test_n_frames_keeps_the_default_cut_of_the_set(nmnist, tmp_path):
    root, _ = nmnist
    ds = data.get_dataset("nmnist", root / "N-MNIST", cache=False, n_frames=6)
    assert ds.frames == FrameSpec(n_frames=6) and ds[0][0].shape[0] == 6
    F.shd_file(tmp_path / "shd_test.h5", [[0.5, 1.0]], [[1, 2]], [3], [str(k) for k in range(20)])
    shd = data.get_dataset("shd", tmp_path, "test", cache=False, n_frames=7)
    assert shd.frames == FrameSpec(n_frames=7, duration=1_400_000) and shd[0][0].shape == (7, 700)
    expect_clear_error(lambda: data.get_dataset("nmnist", root / "N-MNIST", frames=3, n_frames=6), ValueError,
                       "frames or n_frames")
