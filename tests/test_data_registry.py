"""The data set registry: names, splits, options, the attributes every set carries, and the offline stand-ins."""
import shutil

import pytest
import torch

from snn import data
from snn.data import events as E
from badinput import expect_clear_error

pytestmark = pytest.mark.usefixtures("one_thread")


def test_registry_lists_the_builtin_sets():
    assert {"fashion-mnist", "digits", "event-fmnist", "event-digits", "spoken-digits"} <= set(data.DATASETS_AVAILABLE)
    assert set(data.DATASETS_AVAILABLE) <= set(data.available())


def test_static_set_attributes():
    ds = data.get_dataset("digits", split="test")
    x, y = ds[3]
    assert (ds.sequence, ds.input_shape, ds.num_classes) == (False, (1, 8, 8), 10)
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32 and isinstance(y, int)
    ref_x, ref_y = data.load("digits", "test")
    assert torch.equal(x, ref_x[3]) and y == int(ref_y[3]) and len(ds) == len(ref_y)


def test_event_standin_is_the_saccade_converter_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("SNN_CACHE", str(tmp_path))
    ds = data.get_dataset("event-digits", split="train", n=6, seed=1, n_frames=10)
    x, y = ds[2]
    assert (ds.sequence, ds.input_shape, ds.num_classes) == (True, (2, 22, 22), 10)
    assert x.shape == (10, 2, 22, 22) and x.dtype == torch.float32
    ref_x, ref_y = E.load_event_dataset("event-digits", "train", n=6, seed=1, n_bins=10)
    assert torch.equal(x, ref_x[:, 2].float()) and y == int(ref_y[2])
    assert x.sum() > 0
    entries = list((tmp_path / "frames" / "event-digits").glob("*.pt"))
    assert len(entries) == 1
    entries[0].write_bytes(entries[0].read_bytes()[:100])  # damaged: rebuilt, not used
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        again = data.get_dataset("event-digits", split="train", n=6, seed=1, n_frames=10)
    assert torch.equal(again.x, ds.x) and torch.equal(again.targets, ds.targets)
    cached = data.get_dataset("event-digits", split="train", n=6, seed=1, n_frames=10)
    assert torch.equal(cached.x, ds.x)
    other = data.get_dataset("event-digits", split="train", n=6, seed=2, n_frames=10, cache=False)
    assert not torch.equal(other.x, ds.x) and len(list(entries[0].parent.glob("*.pt"))) == 1


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_spoken_digits_split_by_voice(monkeypatch, tmp_path):
    monkeypatch.setenv("SNN_CACHE", str(tmp_path))
    kw = dict(voices=("en-us", "en-gb"), speeds=(150,), pitches=(50,), n_frames=12, n_channels=8)
    train = data.get_dataset("spoken-digits", split="train", **kw)
    test = data.get_dataset("spoken-digits", split="test", **kw)
    assert len(train) == len(test) == 10 and train.input_shape == (8,) and train.sequence
    assert train[0][0].shape == (12, 8) and train.classes[train[4][1]] == "four"
    x, y, meta = data.audio.load_spoken_digits(("en-us", "en-gb"), (150,), (50,), 12, 8)
    held_out = [i for i, u in enumerate(meta["utterances"]) if u[0] == "en-gb"]
    assert torch.equal(test[7][0], x[:, held_out[7]]) and test[7][1] == int(y[held_out[7]])


def test_unknown_name_split_and_option_are_clear_errors():
    expect_clear_error(lambda: data.get_dataset("n-mnist-typo"), ValueError, "n-mnist-typo", "digits")
    expect_clear_error(lambda: data.get_dataset("digits", split="valid"), ValueError, "split", "train", "test")
    expect_clear_error(lambda: data.get_dataset("digits", n_framez=3), TypeError, "n_framez", "accepted")
    expect_clear_error(lambda: data.get_dataset("digits", n=0), ValueError, "n (subset size)")
    expect_clear_error(lambda: data.get_dataset("spoken-digits", voices=("en-us",), test_voices=("en-gb",)),
                       ValueError, "test_voices")


def test_register_a_user_set():
    def build(root=None, split="train", size=3):
        return data.InMemoryDataset(torch.zeros(size, 1, 2, 2), torch.arange(size) % 2, name="mine",
                                    classes=("a", "b"), sequence=False)

    try:
        data.register("mine-test", build, modality="image", description="a test set")
        ds = data.get_dataset("mine-test", size=4)
        assert len(ds) == 4 and ds.num_classes == 2 and "mine-test" in data.available()
        expect_clear_error(lambda: data.register("mine-test", build, modality="image", description=""),
                           ValueError, "already registered")
    finally:
        data.registry._REGISTRY.pop("mine-test", None)


def test_labels_out_of_range_are_refused():
    expect_clear_error(lambda: data.InMemoryDataset(torch.zeros(3, 4), torch.tensor([0, 1, 5]), name="toy",
                                                    classes=("a", "b"), sequence=False),
                       ValueError, "toy labels", "0..1", "5")
