"""Bad input to the data API (event arrays, N-MNIST files, IDX/Fashion-MNIST files, batches, the spoken-words
cache, WAV bytes): each case is a clear error naming the culprit, with nothing on disk changed."""
import numpy as np
import pytest
import torch
from badinput import expect_clear_error

from snn import data
from snn.data import IDXError, audio, read_idx, write_idx
from snn.data import events as E

pytestmark = pytest.mark.usefixtures("one_thread")

EV = E.make_events([0, 1], [0, 1], [0, 10], [1, 0])


def _file(tmp_path, data_bytes, name="sample.bin"):
    path = tmp_path / name
    path.write_bytes(data_bytes)
    return path


def _reading(reader, data_bytes, name="sample.bin", **kw):
    """A case factory: write ``data_bytes`` to ``name`` first, then the call reads it with ``reader``."""
    def factory(tmp_path):
        path = _file(tmp_path, data_bytes, name)
        return lambda: reader(path, **kw)
    return factory


def _idx_bytes(type_code, shape, payload: bytes) -> bytes:
    return bytes([0, 0, type_code, len(shape)]) + b"".join(d.to_bytes(4, "big", signed=True) for d in shape) + payload


def _fashion_dir(tmp_path, images=None, labels=None, n=4):
    """A Fashion-MNIST directory (test split replaced by ``images``/``labels`` bytes when given)."""
    rng = np.random.default_rng(0)
    for split in ("train", "t10k"):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte", np.arange(n, dtype=np.uint8))
    if images is not None:
        (tmp_path / "t10k-images-idx3-ubyte").write_bytes(images)
    if labels is not None:
        (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(labels)
    return tmp_path


def _load_test_split(root):
    return lambda: data.load("fashion-mnist", "test", data_dir=root)


# Each case: tmp_path -> (call, exception type, names the message must contain, paths that must not change).
CASES = {
    "make_events x above uint16": lambda tp: (
        lambda: E.make_events([70000], [0], [0], [1]), ValueError, ("make_events", "x", "65535", "70000"), ()),
    "make_events NaN timestamp": lambda tp: (
        lambda: E.make_events([0, 1], [0, 0], [5.0, np.nan], [1, 1]), ValueError, ("t (µs)", "nan", "index 1"), ()),
    "make_events fractional timestamp": lambda tp: (
        lambda: E.make_events([0], [0], [1.5], [1]), ValueError, ("t (µs)", "whole numbers", "1.5"), ()),
    "make_events negative y": lambda tp: (
        lambda: E.make_events([0], [-3], [0], [1]), ValueError, ("y", "-3"), ()),
    "make_events polarity 2": lambda tp: (
        lambda: E.make_events([0], [0], [0], [2]), ValueError, ("polarity", "0 (OFF) or 1 (ON)"), ()),
    "make_events strings": lambda tp: (
        lambda: E.make_events(["a"], [0], [0], [1]), TypeError, ("make_events", "x", "integers"), ()),
    "make_events lengths differ": lambda tp: (
        lambda: E.make_events([0, 1], [0], [0], [1]), ValueError, ("equally long", "(2,)", "(1,)"), ()),
    "bin_events plain ndarray": lambda tp: (
        lambda: E.bin_events(np.zeros((5, 4)), 3, 4, 4), TypeError, ("bin_events", "events", "x, y, t, p"), ()),
    "bin_events negative time in a structured array": lambda tp: (
        lambda: E.bin_events(np.array([(0, 0, -5, 1)], dtype=E.EVENT_DTYPE), 1, 2, 2), ValueError,
        ("bin_events", "events['t']", "-5"), ()),
    "bin_events zero duration": lambda tp: (
        lambda: E.bin_events(EV, 2, 2, 2, duration=0), ValueError, ("bin_events", "duration", "0"), ()),
    "bin_events zero bins": lambda tp: (
        lambda: E.bin_events(EV, 0, 2, 2), ValueError, ("bin_events", "n_bins", "0"), ()),
    "bin_events float height": lambda tp: (
        lambda: E.bin_events(EV, 2, 2.5, 2), TypeError, ("bin_events", "height", "integer"), ()),
    "bin_events_channels absurd duration": lambda tp: (
        lambda: E.bin_events_channels(EV, 4, 2, duration=2 ** 62), ValueError, ("duration", "n_bins", "2**63"), ()),
    "encode_nmnist overflow marker y": lambda tp: (
        lambda: E.encode_nmnist(E.make_events([0], [240], [0], [1])), ValueError, ("y = 240", "overflow"), ()),
    "write_nmnist timestamp above 23 bits": lambda tp: (
        lambda: E.write_nmnist(tp / "out.bin", E.make_events([0], [0], [1 << 23], [1])), ValueError,
        ("t must lie", "23 bits"), (tp / "out.bin",)),
    "read_nmnist missing file": lambda tp: (
        lambda: E.read_nmnist(tp / "missing.bin"), FileNotFoundError, ("missing.bin",), ()),
    "read_nmnist partial record": lambda tp: (
        _reading(E.read_nmnist, b"\x01\x02\x00\x00\x05" * 2 + b"\x07")(tp), ValueError,
        ("sample.bin", "multiple of 5", "1 bytes left over"), (tp,)),
    "read_nmnist AEDAT 3.1 file": lambda tp: (
        _reading(E.read_nmnist, b"#!AER-DAT3.1\r\n#Format: RAW\r\n#!END-HEADER\r\n" + bytes(10))(tp),
        ValueError, ("sample.bin", "AEDAT 3.1", "not an N-MNIST"), (tp,)),
    "read_nmnist Prophesee EVT3 file": lambda tp: (
        _reading(E.read_nmnist, b"% evt 3.0\n% format EVT3;height=720;width=1280\n% end\n" + bytes(7))(tp),
        ValueError, ("sample.bin", "Prophesee RAW (EVT 3.0)"), (tp,)),
    "read_nmnist events off the sensor": lambda tp: (
        _reading(E.read_nmnist, bytes([50, 3, 0, 0, 9]), sensor_size=(34, 34, 2))(tp), ValueError,
        ("sample.bin", "x=50", "34x34"), (tp,)),
    "read_nmnist bad sensor_size": lambda tp: (
        _reading(E.read_nmnist, bytes(5), sensor_size=34)(tp), TypeError, ("sensor_size",), (tp,)),
    "load_event_dataset n zero": lambda tp: (
        lambda: E.load_event_dataset("event-digits", "test", n=0), ValueError, ("load_event_dataset", "n", "0"), ()),
    "read_idx negative dimension": lambda tp: (
        _reading(read_idx, _idx_bytes(0x08, (-1,), b""), "neg.idx")(tp), IDXError,
        ("neg.idx", "negative dimension"), (tp,)),
    "read_idx truncated header": lambda tp: (
        _reading(read_idx, b"\x00\x00\x08\x03\x00\x00\x00\x02", "short.idx")(tp), IDXError,
        ("short.idx", "truncated header", "3 dimensions"), (tp,)),
    "read_idx truncated data": lambda tp: (
        _reading(read_idx, _idx_bytes(0x08, (2, 3), bytes(5)), "cut.idx")(tp), IDXError,
        ("cut.idx", "truncated", "needs 6"), (tp,)),
    "Fashion-MNIST float images": lambda tp: (
        _load_test_split(_fashion_dir(tp, images=_idx_bytes(0x0D, (4, 28, 28), bytes(4 * 4 * 784)))), IDXError,
        ("t10k-images-idx3-ubyte", "float32", "unsigned byte [N, 28, 28]"), (tp,)),
    "Fashion-MNIST float labels": lambda tp: (
        _load_test_split(_fashion_dir(tp, labels=_idx_bytes(0x0E, (4,), bytes(32)))), IDXError,
        ("t10k-labels-idx1-ubyte", "float64", "unsigned byte [N]"), (tp,)),
    "Fashion-MNIST 32x32 images": lambda tp: (
        _load_test_split(_fashion_dir(tp, images=_idx_bytes(0x08, (4, 32, 32), bytes(4 * 1024)))), IDXError,
        ("t10k-images-idx3-ubyte", "[4, 32, 32]", "[N, 28, 28]"), (tp,)),
    "Fashion-MNIST label 10": lambda tp: (
        _load_test_split(_fashion_dir(tp, labels=_idx_bytes(0x08, (4,), bytes([1, 2, 10, 3])))), ValueError,
        ("t10k-labels-idx1-ubyte", "0..9", "found 10 at index 2"), (tp,)),
    "Fashion-MNIST labels fewer than images": lambda tp: (
        _load_test_split(_fashion_dir(tp, labels=_idx_bytes(0x08, (3,), bytes([1, 2, 3])))), ValueError,
        ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "4 images", "3 labels"), (tp,)),
    "Fashion-MNIST labels file holds images": lambda tp: (
        _load_test_split(_fashion_dir(tp, labels=_idx_bytes(0x08, (4, 28, 28), bytes(4 * 784)))), IDXError,
        ("t10k-labels-idx1-ubyte", "[N]", "[4, 28, 28]"), (tp,)),
    "load unknown split": lambda tp: (
        lambda: data.load("digits", "val"), ValueError, ("split", "'val'"), ()),
    "batches lengths differ": lambda tp: (
        lambda: data.batches(torch.zeros(5, 2), torch.zeros(4), 2), ValueError, ("batches", "x and y", "5", "4"), ()),
    "batches fractional batch_size": lambda tp: (
        lambda: data.batches(torch.zeros(5, 2), torch.zeros(5), 2.5), TypeError, ("batch_size", "integer"), ()),
    "load_spoken_words zero bins": lambda tp: (
        lambda: audio.load_spoken_words(["sun"], n_bins=0), ValueError, ("load_spoken_words", "n_bins"), ()),
    "load_spoken_words speed out of range": lambda tp: (
        lambda: audio.load_spoken_words(["sun"], speeds=(40,)), ValueError, ("speeds", "80", "450"), ()),
    "read_wav not a WAV": lambda tp: (
        lambda: audio.read_wav(b"RIFF\x00\x00", "clip.wav"), ValueError, ("clip.wav", "WAV"), ()),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_data_input(tmp_path, case):
    call, exc, names, unchanged = CASES[case](tmp_path)
    expect_clear_error(call, exc, *names, unchanged=unchanged)


# -- the spoken-words cache: read without running code, checked for what snn writes there ----------------
SETTINGS = dict(voices=("en-us",), speeds=(150,), pitches=(50,), n_bins=4, n_channels=3)


def _cache_file(tmp_path, monkeypatch):
    """The cache path of :data:`SETTINGS` for the word "sun", in ``tmp_path``; espeak-ng must not be used."""
    monkeypatch.setenv("SNN_CACHE", str(tmp_path))
    monkeypatch.setattr(audio, "_espeak", lambda: pytest.fail("the cache file was not used"))
    return audio.spoken_words_cache(["sun"], **SETTINGS)


class _RunsCode:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path(__import__('os').environ['SNN_CACHE'], 'ran').touch()",))


@pytest.mark.parametrize("content, names", [
    (b"not a torch file", ("spoken-words cache file", "could not be read")),
    ("pickle", ("spoken-words cache file",)),  # a pickle that would run code: refused, nothing runs
    ({"x": torch.zeros(4, 1, 5), "y": torch.zeros(1, dtype=torch.int64), "meta": {}}, ("does not hold", "[4, N, 3]")),
    ({"x": torch.zeros(4, 1, 3), "y": torch.tensor([7]), "meta": {}}, ("does not hold", "in 0..0")),
])
def test_bad_spoken_words_cache(tmp_path, monkeypatch, content, names):
    path = _cache_file(tmp_path, monkeypatch)
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "pickle":
        torch.save({"x": _RunsCode()}, path)
    else:
        torch.save(content, path)
    expect_clear_error(lambda: audio.load_spoken_words(["sun"], **SETTINGS), ValueError, str(path), *names, unchanged=[tmp_path])
    assert not (tmp_path / "ran").exists()


def test_good_spoken_words_cache_loads(tmp_path, monkeypatch):
    path = _cache_file(tmp_path, monkeypatch)
    x, y = torch.rand(4, 2, 3), torch.tensor([0, 0])
    torch.save({"x": x, "y": y, "meta": {"words": ["sun"], "utterances": [("en-us", 150, 50)]}}, path)
    x2, y2, meta = audio.load_spoken_words(["sun"], **SETTINGS)
    assert torch.equal(x2, x) and torch.equal(y2, y) and meta["utterances"] == [("en-us", 150, 50)]
