"""The event and audio data sets read from tiny files in their real formats and original directory layouts,
checked against the events written and, where they read the format, against tonic's and SpikingJelly's readers."""
import numpy as np
import pytest
import torch

from snn import data
from snn.data.frames import FrameSpec, events_to_frames
import dataformats as F

pytestmark = pytest.mark.usefixtures("one_thread")


def _same(ev, x, y, t, p):
    assert ev.dtype == data.events.EVENT_DTYPE
    np.testing.assert_array_equal(ev["x"], x)
    np.testing.assert_array_equal(ev["y"], y)
    np.testing.assert_array_equal(ev["t"], t)
    np.testing.assert_array_equal(ev["p"], p)


# -- N-MNIST and N-Caltech101 (.bin) ---------------------------------------------------------------------
def test_nmnist_reads_the_download_layout_like_tonic(tmp_path):
    import tonic.io

    written = F.nmnist_root(tmp_path, np.random.default_rng(0))
    ds = data.get_dataset("nmnist", tmp_path, "train", cache=False, frames={"n_frames": 5, "split_by": "number"})
    assert (len(ds), ds.num_classes, ds.input_shape, ds.sequence) == (11, 10, (2, 34, 34), True)
    assert ds.targets.tolist() == [0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9]
    for i in (0, 4, 10):
        path = ds.files[i]
        ev = ds.events(i)
        _same(ev, *written[path])
        ref = tonic.io.read_mnist_file(str(path), dtype=np.dtype([("x", int), ("y", int), ("t", int), ("p", int)]))
        _same(ev, ref["x"], ref["y"], ref["t"], ref["p"])
        x, y = ds[i]
        assert x.shape == (5, 2, 34, 34) and y == int(path.parent.name)
        assert torch.equal(x, events_to_frames(ev, (34, 34, 2), FrameSpec(n_frames=5, split_by="number")))
    test = data.get_dataset("nmnist", tmp_path, "test", cache=False)
    assert len(test) == 11 and test[0][0].shape == (10, 2, 34, 34)  # default: 10 frames


def test_ncaltech101_split_is_a_seeded_partition_of_every_class(tmp_path):
    import tonic.io

    rng = np.random.default_rng(1)
    written = {}
    for c in ("accordion", "airplanes", "BACKGROUND_Google"):
        for k in range(10):
            ev = F.random_events(rng, 30, 240, 180, 200_000)
            written[F.write(tmp_path / "Caltech101" / c / f"image_{k + 1:04d}.bin", F.nmnist_bytes(*ev))] = ev
    F.write(tmp_path / "Caltech101_annotations" / "accordion" / "annotation_0001.bin", b"\x00" * 12)  # not read
    train = data.get_dataset("ncaltech101", tmp_path, "train", cache=False, seed=3)
    test = data.get_dataset("ncaltech101", tmp_path, "test", cache=False, seed=3)
    assert train.classes == ("BACKGROUND_Google", "accordion", "airplanes") and train.input_shape == (2, 180, 240)
    assert len(test) == 3 and len(train) == 27 and not set(train.files) & set(test.files)
    assert sorted(test.targets.tolist()) == [0, 1, 2]
    assert data.get_dataset("ncaltech101", tmp_path, "test", cache=False, seed=3).files == test.files
    assert data.get_dataset("ncaltech101", tmp_path, "test", cache=False, seed=4).files != test.files
    ev = test.events(1)
    _same(ev, *written[test.files[1]])
    ref = tonic.io.read_mnist_file(str(test.files[1]), dtype=np.dtype([("x", int), ("y", int), ("t", int), ("p", int)]))
    _same(ev, ref["x"], ref["y"], ref["t"], ref["p"])


# -- DVS128 Gesture (AEDAT 3.1 + CSV) -------------------------------------------------------------------
def _gesture_root(root, rng):
    """user01 (train): clean polarity packets; user02 (test): an overflowed packet, a special-event packet and
    invalid events, which the reader must skip."""
    folder = root / "DvsGesture"
    a = F.random_events(rng, 300, 128, 128, 3_000_000)
    packets = F.polarity_events(*[v[:120] for v in a]), F.polarity_events(*[v[120:] for v in a])
    F.write(folder / "user01_fluorescent.aedat",
            F.AEDAT31_HEADER + b"".join(F.aedat31_packet(1, pk, 8) for pk in packets))
    F.write(folder / "user01_fluorescent_labels.csv",
            b"class,startTime_usec,endTime_usec\r\n3,100000,1200000\r\n11,1200000,2500000\r\n1,2500000,2900000\r\n")
    b = F.random_events(rng, 100, 128, 128, 1_000_000)
    valid = np.ones(100, int)
    valid[[5, 50]] = 0
    high = F.random_events(rng, 40, 128, 128, 900_000)
    special = F.aedat31_packet(0, b"".join(bytes(8) for _ in range(3)), 8)
    F.write(folder / "user02_led.aedat", F.AEDAT31_HEADER + F.aedat31_packet(1, F.polarity_events(*b, valid=valid), 8)
            + special + F.aedat31_packet(1, F.polarity_events(*high), 8, overflow=1))
    F.write(folder / "user02_led_labels.csv", b"class,startTime_usec,endTime_usec\n7,0,3000000000\n")
    F.write(folder / "trials_to_train.txt", b"user01_fluorescent.aedat\n")
    F.write(folder / "trials_to_test.txt", b"user02_led.aedat\n\n")
    keep = valid == 1
    expected_test = tuple(np.concatenate([v[keep], h]) for v, h in zip(b[:2], high[:2])) + (
        np.concatenate([b[2][keep], high[2] + 2 ** 31]), np.concatenate([b[3][keep], high[3]]))
    return a, expected_test


def test_dvs_gesture_cuts_labelled_windows_like_spikingjelly(tmp_path):
    import tonic.io

    a, expected_test = _gesture_root(tmp_path, np.random.default_rng(2))
    train = data.get_dataset("dvs-gesture", tmp_path, "train", cache=False)
    assert (len(train), train.num_classes, train.input_shape) == (3, 11, (2, 128, 128))
    assert train.targets.tolist() == [2, 10, 0]
    x, y, t, p = a
    path = str(tmp_path / "DvsGesture" / "user01_fluorescent.aedat")
    with F.spikingjelly_datasets("utils") as (sj_utils,):
        sj = sj_utils.load_aedat_v3(path)
    _same(data.aedat.read_aedat(path), sj["x"], sj["y"], sj["t"], sj["p"])
    _same(data.aedat.read_aedat(path), x, y, t, p)
    version, start, _ = tonic.io.read_aedat_header_from_file(path)
    raw = tonic.io.get_aer_events_from_file(path, version, start)
    np.testing.assert_array_equal((raw["address"] >> 17) & 0x1FFF, x)
    np.testing.assert_array_equal((raw["address"] >> 2) & 0x1FFF, y)
    np.testing.assert_array_equal(raw["timeStamp"], t)
    for i, (lo, hi) in enumerate([(100000, 1200000), (1200000, 2500000), (2500000, 2900000)]):
        m = (t >= lo) & (t < hi)
        _same(train.events(i), x[m], y[m], t[m] - lo, p[m])
    test = data.get_dataset("dvs-gesture", tmp_path.joinpath("DvsGesture"), "test", cache=False)
    assert len(test) == 1 and test.targets.tolist() == [6]
    _same(test.events(0), *expected_test)
    frames, label = test[0]
    assert frames.shape == (16, 2, 128, 128) and frames.sum() == 138 and label == 6


# -- CIFAR10-DVS (AEDAT 2.0) ------------------------------------------------------------------------------
def test_cifar10_dvs_reads_aedat2_in_spikingjellys_orientation(tmp_path):
    import tonic.io

    rng = np.random.default_rng(3)
    written = {}
    for c in data.neuromorphic.CIFAR10_CLASSES:
        for k in range(2):
            ev = F.random_events(rng, 50, 128, 128, 1_000_000)
            written[F.write(tmp_path / c / f"cifar10_{c}_{k}.aedat", F.aedat2_bytes(*ev))] = ev
    train = data.get_dataset("cifar10-dvs", tmp_path, "train", cache=False, test_fraction=0.5)
    test = data.get_dataset("cifar10-dvs", tmp_path, "test", cache=False, test_fraction=0.5)
    assert len(train) == len(test) == 10 and test.targets.tolist() == list(range(10))
    assert all(f.name.endswith("_1.aedat") for f in test.files)
    for ds, i in ((train, 0), (test, 9)):
        path = ds.files[i]
        sx, sy, st, sp = written[path]
        ev = ds.events(i)
        _same(ev, 127 - sy, 127 - sx, st, sp)
        with F.spikingjelly_datasets("cifar10_dvs") as (sj_cifar,):
            sj = sj_cifar._load_origin_data(path)
        _same(ev, sj["x"], sj["y"], sj["t"], sj["p"])
        version, start, _ = tonic.io.read_aedat_header_from_file(str(path))
        raw = tonic.io.get_aer_events_from_file(str(path), version, start)
        np.testing.assert_array_equal(127 - ((raw["address"] >> 8) & 0x7F), ev["x"])  # tonic.io.read_dvs_128's x
        np.testing.assert_array_equal(raw["timeStamp"], ev["t"])
    assert train[3][0].shape == (10, 2, 128, 128)


def test_aedat2_special_events_are_not_pixels(tmp_path):
    ev = (np.array([1, 2, 3]), np.array([4, 5, 6]), np.array([10, 20, 30]), np.array([1, 0, 1]))
    path = F.write(tmp_path / "a.aedat", F.aedat2_bytes(*ev, specials={1: 15, 2: 25}))
    _same(data.aedat.read_aedat(path), *ev)


# -- SHD and SSC (HDF5) ----------------------------------------------------------------------------------
def _hsd(rng, n, classes):
    times = [np.sort(rng.integers(0, 90, rng.integers(5, 40))) / 64 for _ in range(n)]  # exact in float16
    units = [rng.integers(0, 700, len(t)) for t in times]
    return times, units, rng.integers(0, classes, n)


def test_shd_matches_tonics_reader_and_from_tonic(tmp_path):
    import tonic

    rng = np.random.default_rng(4)
    keys = [f"word{k}" for k in range(20)]
    for split in ("train", "test"):
        times, units, labels = _hsd(rng, 5, 20)
        F.shd_file(tmp_path / "SHD" / f"shd_{split}.h5", times, units, labels, keys)
        (tmp_path / "SHD" / f"shd_{split}.h5.zip").touch()  # what tonic checks for before it reads the .h5
    frames = {"n_frames": 8, "duration": 1_500_000}
    ds = data.get_dataset("shd", tmp_path / "SHD", "test", cache=False, frames=frames)
    assert (len(ds), ds.num_classes, ds.input_shape, ds.classes[3]) == (5, 20, (700,), "word3")
    assert ds.targets.tolist() == labels.tolist()
    ref = tonic.datasets.SHD(str(tmp_path), train=False)
    wrapped = data.from_tonic(ref, frames=frames)
    assert wrapped.input_shape == (700,) and wrapped.classes == ds.classes
    for i in range(5):
        ev = ds.events(i)
        order = np.argsort(times[i], kind="stable")
        _same(ev, units[i][order], np.zeros(len(order)), np.rint(times[i][order] * 1e6), np.ones(len(order)))
        t_ev, t_label = ref[i]
        np.testing.assert_array_equal(np.sort(t_ev["t"]), ev["t"])
        x, y = ds[i]
        assert x.shape == (8, 700) and y == int(t_label)
        assert x.sum() == sum(t < 1.5 for t in times[i])
        xw, yw = wrapped[i]
        assert torch.equal(x, xw) and y == yw


def test_ssc_has_a_validation_split(tmp_path):
    rng = np.random.default_rng(5)
    for split in ("train", "valid", "test"):
        F.shd_file(tmp_path / f"ssc_{split}.h5", *_hsd(rng, 3, 35), [f"c{k}" for k in range(35)],
                   times_dtype=np.float32)
    ds = data.get_dataset("ssc", tmp_path, "valid", cache=False, frames=4)
    assert len(ds) == 3 and ds.num_classes == 35 and ds[2][0].shape == (4, 700)
