"""Bad input to the event and audio data sets: each a clear error naming the file, what was wrong and what is
expected (layout, format, label range, sensor), raised before any frames are cached."""
import shutil

import numpy as np
import pytest

import dataformats as F
from badinput import expect_clear_error
from snn import data

pytestmark = pytest.mark.usefixtures("one_thread")


def _get(name, root, split="train", **kw):
    return lambda: data.get_dataset(name, root, split, **kw)


def test_roots_without_the_expected_files(tmp_path, monkeypatch):
    monkeypatch.delenv("SNN_DATA", raising=False)
    expect_clear_error(lambda: data.get_dataset("nmnist"), FileNotFoundError, "SNN_DATA", "root=", "Train/<digit",
                       "garrickorchard.com")
    expect_clear_error(_get("nmnist", tmp_path / "nowhere"), FileNotFoundError, "nowhere", "not found")
    F.nmnist_root(tmp_path / "nm", np.random.default_rng(0), n_events=5)
    shutil.rmtree(tmp_path / "nm" / "Test" / "7")
    expect_clear_error(_get("nmnist", tmp_path / "nm", "test"), FileNotFoundError, "Test/7", "Expected layout",
                       "n-mnist")
    (tmp_path / "nm" / "Test" / "7").mkdir()
    expect_clear_error(_get("nmnist", tmp_path / "nm", "test"), FileNotFoundError, "Test/7/*.bin")
    expect_clear_error(_get("ncaltech101", tmp_path), FileNotFoundError, "Caltech101", "n-caltech101")
    expect_clear_error(_get("cifar10-dvs", tmp_path), FileNotFoundError, "airplane", "*.aedat", "figshare")
    F.write(tmp_path / "c10" / "airplane" / "airplane_0.aedat4", b"#!AER-DAT4.0\r\n")
    expect_clear_error(_get("cifar10-dvs", tmp_path / "c10"), FileNotFoundError, "airplane/*.aedat", "AEDAT 4",
                       "from_tonic", "tonic.datasets.CIFAR10DVS")
    expect_clear_error(_get("shd", tmp_path, "test"), FileNotFoundError, "shd_test.h5", "zenkelab.org")
    expect_clear_error(_get("ssc", tmp_path, "valid"), FileNotFoundError, "ssc_valid.h5")


def test_dvs_gesture_listing_names_each_missing_file(tmp_path):
    folder = tmp_path / "DvsGesture"
    folder.mkdir()
    expect_clear_error(_get("dvs-gesture", tmp_path), FileNotFoundError, "trials_to_train.txt", "research.ibm.com")
    F.write(folder / "trials_to_train.txt", b"user05_lab.aedat\n")
    expect_clear_error(_get("dvs-gesture", tmp_path), FileNotFoundError, "user05_lab.aedat", "_labels.csv")
    F.write(folder / "user05_lab.aedat", F.AEDAT31_HEADER)
    expect_clear_error(_get("dvs-gesture", tmp_path), FileNotFoundError, "user05_lab_labels.csv")


@pytest.mark.parametrize("csv, names", [
    (b"class,startTime_usec,endTime_usec\n12,0,100\n", ["line 2", "class 12", "1..11"]),
    (b"class,startTime_usec,endTime_usec\n0,0,100\n", ["class 0", "1..11"]),
    (b"class,startTime_usec,endTime_usec\n3,500,100\n", ["[500, 100)", "empty"]),
    (b"class,startTime_usec,endTime_usec\n3;0;100\n", ["three integers", "3;0;100"]),
    (b"class,startTime_usec,endTime_usec\n", ["no labelled gestures"]),
])
def test_dvs_gesture_labels_out_of_range_or_malformed(tmp_path, csv, names):
    folder = tmp_path / "DvsGesture"
    F.write(folder / "trials_to_train.txt", b"user01_led.aedat\n")
    F.write(folder / "user01_led.aedat", F.AEDAT31_HEADER)
    F.write(folder / "user01_led_labels.csv", csv)
    expect_clear_error(_get("dvs-gesture", tmp_path), ValueError, "user01_led_labels.csv", *names)


def _aedat31(*packets):
    return F.AEDAT31_HEADER + b"".join(packets)


ONE = F.polarity_events([1], [2], [3], [1])


@pytest.mark.parametrize("blob, names", [
    (_aedat31(F.aedat31_packet(1, ONE * 3, 8))[:-5], ["truncated", "packet at byte"]),
    (_aedat31(F.aedat31_packet(1, ONE, 8))[:-30], ["cut off", "28 bytes"]),
    (_aedat31(F.aedat31_packet(1, ONE + b"\0" * 4, 12)), ["eventSize 12", "expected 8"]),
    (_aedat31(F.aedat31_packet(1, ONE, 8, number=5)), ["impossible header", "eventNumber 5"]),
    (b"#!AER-DAT4.0\r\n" + b"\0" * 40, ["AEDAT 4.0", "not read here", "aedat"]),
    (F.nmnist_bytes([1, 2], [3, 4], [10, 20], [0, 1]), ["not an AEDAT file", "#!AER-DAT"]),
    (b"\x89HDF\r\n\x1a\n" + b"\0" * 40, ["not an AEDAT file", "HDF5"]),
    (F.aedat2_bytes([1], [2], [3], [1]) + b"\0\0\0", ["8-byte records", "3 left over"]),
])
def test_corrupt_or_foreign_aedat_files(tmp_path, blob, names):
    path = F.write(tmp_path / "x.aedat", blob)
    expect_clear_error(lambda: data.aedat.read_aedat(path), ValueError, "x.aedat", *names)


def test_corrupt_event_file_inside_a_data_set_leaves_the_cache_alone(tmp_path):
    F.nmnist_root(tmp_path / "nm", np.random.default_rng(1), n_events=5)
    ds = data.get_dataset("nmnist", tmp_path / "nm", cache_dir=tmp_path / "cache", frames=2)
    F.write(ds.files[0], F.AEDAT31_HEADER)
    expect_clear_error(lambda: ds[0], ValueError, str(ds.files[0]), "AEDAT 3.1", "not an N-MNIST event file")
    F.write(ds.files[1], F.nmnist_bytes([1], [2], [3], [1]) + b"\0\0")
    expect_clear_error(lambda: ds[1], ValueError, "multiple of 5 bytes", "truncated")
    F.write(ds.files[2], F.nmnist_bytes([40], [2], [3], [1]))
    expect_clear_error(lambda: ds[2], ValueError, "x=40", "outside the 34x34 sensor", unchanged=[tmp_path / "cache"])
    assert not (tmp_path / "cache").exists()


def test_sensor_size_option_that_disagrees_with_the_recordings(tmp_path):
    F.nmnist_root(tmp_path / "nm", np.random.default_rng(2), n_events=5)
    expect_clear_error(_get("nmnist", tmp_path / "nm", sensor_size=(28, 28)), ValueError, "sensor_size (28, 28)",
                       "34x34", "downsample=")
    expect_clear_error(_get("nmnist", tmp_path / "nm", sensor_size=(34, 34, 1)), ValueError, "2 polarities")
    ds = data.get_dataset("nmnist", tmp_path / "nm", sensor_size=(40, 36), cache=False, frames=2)
    assert ds.input_shape == (2, 36, 40) and ds[0][0].shape == (2, 2, 36, 40)
    expect_clear_error(_get("nmnist", tmp_path / "nm", downsample=0), ValueError, "downsample")
    expect_clear_error(_get("nmnist", tmp_path / "nm", cache="yes"), TypeError, "cache")
    expect_clear_error(_get("nmnist", tmp_path / "nm", event_transform=3), TypeError, "event_transform", "callable")
    expect_clear_error(_get("nmnist", tmp_path / "nm", frames={"n_frames": 0}), ValueError, "n_frames")


def test_bad_shd_files(tmp_path):
    keys = [str(k) for k in range(20)]
    F.shd_file(tmp_path / "shd_train.h5", [[0.1, 0.2]], [[5, 6]], [25], keys)
    expect_clear_error(_get("shd", tmp_path), ValueError, "shd labels", "0..19", "25")
    F.shd_file(tmp_path / "shd_train.h5", [[0.1, 0.2]], [[5, 700]], [2], keys)
    ds = data.get_dataset("shd", tmp_path, cache=False)
    expect_clear_error(lambda: ds[0], ValueError, "shd_train.h5, sample 0", "unit 700", "0..699")
    ds.close()
    F.shd_file(tmp_path / "shd_train.h5", [[0.1, np.nan]], [[5, 6]], [2], keys)
    ds = data.get_dataset("shd", tmp_path, cache=False)
    expect_clear_error(lambda: ds[0], ValueError, "finite")
    ds.close()
    F.write(tmp_path / "shd_train.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    expect_clear_error(_get("shd", tmp_path), ValueError, "shd_train.h5", "not a readable HDF5 file")
    import h5py

    with h5py.File(tmp_path / "shd_train.h5", "w") as f:
        f.create_dataset("labels", data=np.zeros(2, np.uint16))
    expect_clear_error(_get("shd", tmp_path), ValueError, "lacks spikes/times, spikes/units")
