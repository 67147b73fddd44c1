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


# -- the published N-MNIST format, written byte by byte -----------------------------------------------
def _record(x, y, p, stamp):
    """One 40-bit N-MNIST record: x, y, then polarity in bit 7 and the 23-bit timestamp (big-endian)."""
    return bytes([x, y, (p << 7) | (stamp >> 16) & 0x7F, (stamp >> 8) & 0xFF, stamp & 0xFF])


def _overflow():
    """A timestamp-overflow marker: y = 240 (its other fields mean nothing)."""
    return _record(0, 240, 0, 0)


def test_nmnist_overflow_records_advance_time(tmp_path):
    # two events, one marker, one event, two markers, one event: +8192 µs per marker at or before an event
    data = (_record(1, 2, 1, 100) + _record(3, 4, 0, 8000) + _overflow() + _record(5, 6, 1, 50)
            + _overflow() + _overflow() + _record(7, 8, 0, 10))
    path = tmp_path / "00001.bin"
    path.write_bytes(data)
    ev = E.read_nmnist(path)
    assert ev["x"].tolist() == [1, 3, 5, 7] and ev["y"].tolist() == [2, 4, 6, 8] and ev["p"].tolist() == [1, 0, 1, 0]
    assert ev["t"].tolist() == [100, 8000, 50 + 8192, 10 + 3 * 8192]
    assert 240 not in ev["y"]  # markers are not events


def test_nmnist_refuses_writing_the_overflow_marker():
    with pytest.raises(ValueError, match="240"):
        E.encode_nmnist(E.make_events([0], [240], [0], [1]))


def _random_nmnist_bytes(rng, n_events, n_overflows, ordered):
    """A file of ``n_events`` random 34x34 events with overflow markers at random places."""
    stamps = rng.integers(0, 1 << 23, n_events)
    stamps = np.sort(stamps) if ordered else stamps
    recs = [_record(int(x), int(y), int(p), int(s)) for x, y, p, s in
            zip(rng.integers(0, 34, n_events), rng.integers(0, 34, n_events), rng.integers(0, 2, n_events), stamps)]
    for i in rng.integers(0, n_events + 1, n_overflows):
        recs.insert(int(i), _overflow())
    return b"".join(recs)


@pytest.mark.parametrize("ordered", [True, False])
def test_nmnist_reads_as_tonic_does(tmp_path, ordered):
    tonic_io = pytest.importorskip("tonic.io", reason="tonic is not installed (requirements-dev.txt)")
    path = tmp_path / "sample.bin"
    path.write_bytes(_random_nmnist_bytes(np.random.default_rng(1), 3000, 25, ordered))
    ref = tonic_io.read_mnist_file(str(path), dtype=np.dtype([("x", int), ("y", int), ("t", int), ("p", int)]))
    ref = ref[np.argsort(ref["t"], kind="stable")]  # snn sorts by time, keeping the file order of ties
    ev = E.read_nmnist(path)
    assert len(ev) == len(ref) == 3000
    for f in "xytp":
        np.testing.assert_array_equal(ev[f].astype(np.int64), ref[f], err_msg=f)
    assert ev["t"].max() > (1 << 23)  # the markers pushed times past the 23-bit stamps


def test_nmnist_sensor_size_catches_a_wrong_file(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(_record(40, 3, 1, 5))
    assert len(E.read_nmnist(path)) == 1
    assert len(E.read_nmnist(path, sensor_size=(64, 64, 2))) == 1
    with pytest.raises(ValueError, match=r"big\.bin.*x=40.*34x34"):
        E.read_nmnist(path, sensor_size=(34, 34))


# Headers of other event formats, as their writers produce them (followed by some binary data).
FOREIGN_HEADERS = {
    "Prophesee DAT": b"% Data file containing CD events.\n% Version 2\n% Date 2019-03-05 12:30:02\n"
                     b"% Height 240\n% Width 304\n\x0c\x08",
    "Prophesee RAW (EVT 3.0)": b"% camera_integrator_name Prophesee\n% date 2023-05-11 10:12:11\n% evt 3.0\n"
                               b"% format EVT3;height=720;width=1280\n% end\n",
    "Prophesee RAW (EVT 2.0)": b"% date 2021-02-01 09:00:00\n% evt 2.0\n% format EVT2;height=480;width=640\n% end\n",
    "Prophesee RAW (EVT 2.1)": b"% format EVT21;height=720;width=1280\n% end\n",
    "AEDAT 2.0": b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n# Data format is int32 address, "
                 b"int32 timestamp (8 bytes total)\r\n",
    "AEDAT 3.1": b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DAVIS240C\r\n#!END-HEADER\r\n",
    "AEDAT 4.0": b"#!AER-DAT4.0\r\n",
    "HDF5": b"\x89HDF\r\n\x1a\n\x00\x00\x00\x00",
    "NumPy .npy": b"\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }\n",
    "a text file": b"x,y,t,p\n1,2,3,1\n",
}


@pytest.mark.parametrize("fmt", list(FOREIGN_HEADERS))
def test_other_event_formats_are_refused_by_name(tmp_path, fmt):
    data = FOREIGN_HEADERS[fmt] + bytes(range(40))
    data += b"\x00" * (-len(data) % 5)  # a whole number of 5-byte records: only the header gives it away
    path = tmp_path / "recording.ext"
    path.write_bytes(data)
    with pytest.raises(ValueError) as info:
        E.read_nmnist(path)
    assert str(path) in str(info.value) and f"looks like {fmt}" in str(info.value)


def test_nmnist_file_cannot_look_like_text():
    # the first event of a recording has a small timestamp: byte 2 is below 32 (or >= 128 for ON events)
    data = b"".join(_record(x, y, p, s) for x, y, p, s in [(33, 33, 0, 2_000_000), (10, 10, 1, 2_000_100)])
    assert E.sniff_event_format(data) is None


def test_nmnist_partial_record_names_the_file(tmp_path):
    path = tmp_path / "cut.bin"
    path.write_bytes(_record(1, 1, 1, 1) * 3 + b"\x01\x02")
    with pytest.raises(ValueError, match=r"cut\.bin.*multiple of 5.*3 records and 2 bytes left over"):
        E.read_nmnist(path)


def test_binning_drops_events_after_duration():
    ev = E.make_events([0, 1, 2], [0, 0, 0], [10, 99, 100], [1, 1, 1])
    frames = E.bin_events(ev, 2, 1, 3, duration=100)
    assert frames.sum() == 2 and frames[1, 1, 0, 2] == 0  # t = 100 lies outside [0, 100)
    ch = E.bin_events_channels(ev, 2, 3, duration=100)
    assert ch.tolist() == [[1, 0, 0], [0, 1, 0]]
    assert E.bin_events(ev, 2, 1, 3).sum() == 3  # the default duration (last t + 1) keeps every event


def test_structured_arrays_from_other_tools_are_accepted():
    tonic_like = np.zeros(3, dtype=[("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)])
    tonic_like["x"], tonic_like["t"], tonic_like["p"] = [0, 1, 2], [5, 6, 7], [True, False, True]
    frames = E.bin_events(tonic_like, 1, 1, 3)
    assert frames[0, 1, 0].tolist() == [1, 0, 1] and frames[0, 0, 0].tolist() == [0, 1, 0]
