"""Event streams: N-MNIST format round trip, binning, the saccade converter, event data sets, bad inputs."""
import numpy as np
import pytest
import torch

from snn.data import events as E


# Small tensors: one torch thread is the fastest (see the one_thread fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")



def _random_events(n=500, seed=0):
    rng = np.random.default_rng(seed)
    return E.make_events(rng.integers(0, 34, n), rng.integers(0, 34, n), rng.integers(0, 300_000, n),
                         rng.integers(0, 2, n))


def test_nmnist_round_trip(tmp_path):
    ev = _random_events()
    path = tmp_path / "sample.bin"
    E.write_nmnist(path, ev)
    assert path.stat().st_size == 5 * len(ev)  # 40-bit records
    back = E.read_nmnist(path)
    assert back.dtype == E.EVENT_DTYPE
    np.testing.assert_array_equal(back, ev)


def test_nmnist_bit_layout():
    ev = E.make_events([3], [7], [0x123456], [1])
    assert E.encode_nmnist(ev) == bytes([3, 7, 0x80 | 0x12, 0x34, 0x56])


def test_nmnist_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="multiple of 5"):
        E.decode_nmnist(b"\x00" * 7)
    with pytest.raises(ValueError, match="< 256"):
        E.encode_nmnist(E.make_events([300], [0], [0], [1]))
    with pytest.raises(ValueError, match="23 bits"):
        E.encode_nmnist(E.make_events([0], [0], [1 << 24], [1]))
    with pytest.raises(FileNotFoundError):
        E.read_nmnist(tmp_path / "missing.bin")
    with pytest.raises(ValueError, match="polarity"):
        E.make_events([0], [0], [0], [2])


def test_binning_counts_every_event():
    ev = _random_events()
    frames = E.bin_events(ev, 10, 34, 34, duration=300_000)
    assert frames.shape == (10, 2, 34, 34) and frames.sum() == len(ev)
    # an event at t lands in bin floor(t * T / D)
    one = E.make_events([5], [6], [150_000], [1])
    f = E.bin_events(one, 10, 34, 34, duration=300_000)
    assert f[5, 1, 6, 5] == 1 and f.sum() == 1
    ch = E.bin_events_channels(E.make_events([0, 3, 3], [0, 0, 0], [0, 10, 99], [1, 1, 1]), 2, 4, duration=100)
    assert ch.tolist() == [[1, 0, 0, 1], [0, 0, 0, 1]]
    with pytest.raises(ValueError, match="exceed"):
        E.bin_events(ev, 10, 20, 20)


def test_saccades_fire_only_at_edges():
    img = torch.zeros(20, 20)
    img[6:14, 6:14] = 1.0  # a bright square: edges at rows/cols 6 and 13
    ev = E.image_to_events(img, amplitude=3)
    assert len(ev) > 0 and set(np.unique(ev["p"])) == {0, 1}
    a = 3  # the canvas pads by the amplitude
    # distance of each event pixel to the nearest edge of the square (on the canvas)
    x, y = ev["x"].astype(int) - a, ev["y"].astype(int) - a
    inside = (x >= 6 + a) & (x <= 13 - a) & (y >= 6 + a) & (y <= 13 - a)  # deep inside: uniform, never moves an edge
    outside = (x < 6 - a - 1) | (x > 13 + a + 1) | (y < 6 - a - 1) | (y > 13 + a + 1)
    assert not inside.any() and not outside.any()
    flat = E.image_to_events(torch.full((20, 20), 0.7))  # uniform: events only along its border with the pad
    fx, fy = flat["x"].astype(int) - a, flat["y"].astype(int) - a
    assert not ((fx > a) & (fx < 19 - a) & (fy > a) & (fy < 19 - a)).any()
    assert ev["t"].max() <= 300_000


def test_batched_converter_matches_single():
    img = torch.rand(1, 1, 12, 12)
    counts = E.images_to_event_tensor(img, n_bins=30)
    ev = E.image_to_events(img[0, 0])
    assert counts.shape == (30, 1, 2, 18, 18)
    assert int(counts.sum()) == len(ev)
    frames = E.bin_events(ev, 30, 18, 18, duration=300_001)
    assert torch.equal(frames, counts[:, 0].float())


def test_converter_bad_inputs():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        E.image_to_events(torch.full((5, 5), 2.0))
    with pytest.raises(ValueError, match="threshold"):
        E.image_to_events(torch.rand(5, 5), threshold=0)
    with pytest.raises(ValueError, match="divide"):
        E.images_to_event_tensor(torch.rand(2, 1, 5, 5), n_bins=7)
    with pytest.raises(ValueError, match="unknown event dataset"):
        E.load_event_dataset("event-cifar")


def test_event_digits_dataset():
    x, y = E.load_event_dataset("event-digits", "test", n=16)
    assert x.shape == (30, 16, 2, 22, 22) and x.dtype == torch.uint8 and y.shape == (16,)
    assert x.float().sum() > 0
