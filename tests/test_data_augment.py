"""Event and frame augmentations (against hand computations and tonic's Denoise), their use in a data set, and
tonic data sets wrapped by from_tonic."""
import numpy as np
import pytest
import torch

import dataformats as F
from badinput import expect_clear_error
from snn import data
from snn.data import augment as A
from snn.data.events import make_events

pytestmark = pytest.mark.usefixtures("one_thread")


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_flip_crop_translate_by_hand():
    ev = make_events([0, 5, 9], [0, 3, 7], [1, 2, 3], [1, 0, 1])
    flipped = A.RandomFlip((10, 8), p_lr=1.0, p_ud=1.0)(ev)
    assert flipped["x"].tolist() == [9, 4, 0] and flipped["y"].tolist() == [7, 4, 0]
    assert A.RandomFlip((10, 8), p_lr=0.0)(ev)["x"].tolist() == [0, 5, 9]
    crop = A.RandomCrop((10, 8), (6, 5), generator=_gen(1))
    out = crop(ev)
    g = _gen(1)
    x0, y0 = int(torch.randint(0, 5, (), generator=g)), int(torch.randint(0, 4, (), generator=g))
    inside = [(x - x0, y - y0) for x, y in zip(ev["x"], ev["y"]) if 0 <= x - x0 < 6 and 0 <= y - y0 < 5]
    assert list(zip(out["x"].tolist(), out["y"].tolist())) == inside
    assert crop.output_sensor_size((10, 8, 2)) == (6, 5, 2)
    shifted = A.RandomTranslate((10, 8), (3, 0), generator=_gen(2))(ev)
    g = _gen(2)
    dx = int(torch.randint(-3, 4, (), generator=g))
    expected = [(x + dx, y) for x, y in zip(ev["x"].tolist(), ev["y"].tolist()) if 0 <= x + dx < 10]
    assert list(zip(shifted["x"].tolist(), shifted["y"].tolist())) == expected


def test_drop_and_downsample():
    x, y, t, p = F.random_events(np.random.default_rng(0), 4000, 20, 20, 10_000)
    ev = make_events(x, y, t, p)
    assert len(A.DropEvent(0.0)(ev)) == 4000 and len(A.DropEvent(1.0)(ev)) == 0
    kept = len(A.DropEvent(0.25, generator=_gen())(ev))
    assert abs(kept - 3000) < 4 * np.sqrt(4000 * 0.25 * 0.75)
    down = A.Downsample(3)(ev)
    assert down["x"].tolist() == (x // 3).tolist() and down["y"].tolist() == (y // 3).tolist()
    assert A.Downsample(3).output_sensor_size((20, 20, 2)) == (7, 7, 2)


def test_denoise_keeps_what_tonic_keeps():
    from tonic.functional.denoise import denoise_numpy

    rng = np.random.default_rng(3)
    x, y, t, p = F.random_events(rng, 600, 12, 10, 200_000, t_min=5000)  # t >= filter_time: tonic's start-up rule off
    ev = make_events(x, y, t, p)
    tonic_ev = np.zeros(600, dtype=[("x", int), ("y", int), ("t", int), ("p", int)])
    for f in "xytp":
        tonic_ev[f] = ev[f]
    ref = denoise_numpy(tonic_ev, filter_time=5000)
    ours = A.Denoise(5000)(ev)
    assert 0 < len(ours) < 600
    for f in "xytp":
        np.testing.assert_array_equal(ours[f], ref[f])
    lone = make_events([0, 5], [0, 5], [10_000, 10_001], [1, 1])  # not neighbours: both dropped
    assert len(A.Denoise(5000)(lone)) == 0
    pair = make_events([4, 5], [5, 5], [10_000, 10_100], [1, 1])  # the second has a recent neighbour
    assert A.Denoise(5000)(pair)["t"].tolist() == [10_100]


def test_frame_augmentations():
    x = torch.arange(2 * 1 * 3 * 4, dtype=torch.float32).reshape(2, 1, 3, 4)
    assert torch.equal(A.FrameRandomFlip(1.0)(x), x.flip(-1))
    out = A.FrameRandomCrop(2, generator=_gen(5))(x)
    g = _gen(5)
    i, j = int(torch.randint(0, 5, (), generator=g)), int(torch.randint(0, 5, (), generator=g))
    assert torch.equal(out, torch.nn.functional.pad(x, (2, 2, 2, 2))[..., i:i + 3, j:j + 4])
    expect_clear_error(lambda: A.FrameRandomFlip()(torch.zeros(3, 4)), ValueError, "[T, C, H, W]")


def test_augmentations_in_a_data_set(tmp_path):
    F.nmnist_root(tmp_path, np.random.default_rng(4))
    aug = A.Compose([A.Denoise(1000), A.RandomCrop((34, 34), (30, 28)), A.DropEvent(0.1)])
    ds = data.get_dataset("nmnist", tmp_path, cache_dir=tmp_path / "cache", frames=3, event_transform=aug,
                          transform=A.FrameRandomFlip(0.5))
    assert ds.input_shape == (2, 28, 30) and ds[0][0].shape == (3, 2, 28, 30)
    assert not (tmp_path / "cache").exists()  # random event transforms bypass the cache
    def widen(ev):  # moves events off the 34x34 sensor without saying so (no output_sensor_size)
        out = ev.copy()
        out["x"] += 10
        return out

    bad = data.get_dataset("nmnist", tmp_path, cache=False, frames=3, event_transform=widen)
    expect_clear_error(lambda: bad[0], ValueError, "outside", "34x34 sensor")


class _TonicLike:
    """A data set shaped as tonic's are (events with boolean polarity, tonic's field order, classes dict)."""
    sensor_size = (6, 4, 2)
    classes = {"b": 1, "a": 0}
    dtype = np.dtype([("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)])

    def __init__(self, transform=None):
        self.transform = transform
        rng = np.random.default_rng(0)
        self.samples = []
        for label in (0, 1, 1):
            ev = np.zeros(50, dtype=self.dtype)
            ev["x"], ev["y"] = rng.integers(0, 6, 50), rng.integers(0, 4, 50)
            ev["p"], ev["t"] = rng.integers(0, 2, 50).astype(bool), np.sort(rng.integers(0, 9000, 50))
            self.samples.append((ev, label))

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        ev, label = self.samples[i]
        return (self.transform(ev) if self.transform else ev), label


def test_from_tonic_with_events_and_with_tonics_own_frames():
    import tonic.transforms

    raw = _TonicLike()
    ds = data.from_tonic(raw, frames={"n_frames": 3, "split_by": "number"})
    assert ds.classes == ("a", "b") and ds.input_shape == (2, 4, 6) and len(ds) == 3
    x, y = ds[1]
    ev = raw[1][0]
    ref = tonic.transforms.ToFrame(sensor_size=(6, 4, 2), n_event_bins=3)(ev)
    ref = torch.from_numpy(ref).float()  # tonic drops the 50 % 3 events left over; snn puts them in the last frame
    assert y == 1 and torch.equal(x[:2], ref[:2]) and (x[2] >= ref[2]).all() and (x[2] - ref[2]).sum() == 50 % 3
    assert torch.equal(x, data.events_to_frames(data.tonic_adapter.tonic_events(ev, "t"), (6, 4, 2),
                                                {"n_frames": 3, "split_by": "number"}))
    to_frame = tonic.transforms.ToFrame(sensor_size=(6, 4, 2), time_window=3000)
    framed = data.from_tonic(_TonicLike(to_frame))
    xf, yf = framed[2]
    assert framed.input_shape == (2, 4, 6) and yf == 1
    assert xf.dtype == torch.float32 and torch.equal(xf, torch.from_numpy(to_frame(raw[2][0])).float())
    expect_clear_error(lambda: data.from_tonic(object()), TypeError, "tonic data set")
    no_classes = _TonicLike()
    no_classes.classes = None
    expect_clear_error(lambda: data.from_tonic(no_classes, frames=3), ValueError, "classes=")
    bad = data.from_tonic(_TonicLike(), frames=3, classes=["only one"])
    expect_clear_error(lambda: bad[1], ValueError, "label 1", "0..0")
