"""Property-based fuzzing of the data readers (IDX and Fashion-MNIST, N-MNIST, WAV, the spoken-words cache):
random bytes, truncations and bit flips of valid files give a clear error naming the file (a ValueError or
OSError subclass), or a result that an independent reading of the format agrees with; never a crash, a
hang (a watchdog per case) or another exception type."""
import contextlib
import faulthandler
import gzip
import io
import signal
import struct
import tempfile
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snn.data import audio, read_idx, write_idx
from snn.data import events as E

pytestmark = pytest.mark.usefixtures("one_thread")

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CLEAR = (ValueError, OSError)  # IDXError, and FileNotFoundError/PermissionError, are among these


@contextlib.contextmanager
def watchdog(seconds=5):
    """Fail a case that runs longer than ``seconds`` (SIGALRM); if even that cannot interrupt it (stuck in C),
    dump every thread's traceback and exit the test process a little later."""
    def on_alarm(signum, frame):
        raise AssertionError(f"reader still running after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    faulthandler.dump_traceback_later(3 * seconds, exit=True)
    try:
        yield
    finally:
        signal.alarm(0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, previous)


def read_or_clear_error(reader, path: Path, *args, **kw):
    """``reader(path)`` under the watchdog: its result, or ``None`` after a clear error that names the file."""
    with watchdog():
        try:
            return reader(path, *args, **kw)
        except CLEAR as e:
            assert path.name in str(e), f"error does not name the file {path.name}: {e!r}"
            return None


def mutate(draw, valid: bytes) -> bytes:
    """A truncation, a few bit flips, or both, of ``valid``."""
    kind = draw(st.sampled_from(["truncate", "flip", "both"]))
    data = bytearray(valid)
    if kind in ("flip", "both") and data:
        for pos in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=4)):
            data[pos] ^= 1 << draw(st.integers(0, 7))
    if kind in ("truncate", "both"):
        data = data[:draw(st.integers(0, max(len(data) - 1, 0)))]
    return bytes(data)


@st.composite
def mutated(draw, valid: bytes):
    return mutate(draw, valid)


def in_tmp(name: str, data: bytes, fn):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d, name)
        path.write_bytes(data)
        return fn(path)


# -- IDX -----------------------------------------------------------------------------------------------
_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def idx_by_spec(data: bytes):
    """An independent reading of LeCun's IDX layout: the array, or None when the bytes are not valid IDX."""
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_TYPES:
        return None
    dtype, ndim = np.dtype(_IDX_TYPES[data[2]]), data[3]
    if len(data) < 4 + 4 * ndim:
        return None
    dims = struct.unpack(f">{ndim}i", data[4:4 + 4 * ndim])
    if min(dims, default=0) < 0 or int(np.prod(dims, dtype=object)) * dtype.itemsize != len(data) - 4 - 4 * ndim:
        return None
    return np.frombuffer(data[4 + 4 * ndim:], dtype=dtype).reshape(dims)


def _valid_idx(shape=(3, 4, 5), dtype=np.uint8, seed=0) -> bytes:
    arr = (np.random.default_rng(seed).random(shape) * 10).astype(dtype)
    return in_tmp("a.idx", b"", lambda p: (write_idx(p, arr), p.read_bytes())[1])


def check_idx(data: bytes):
    got = in_tmp("sample.idx", data, lambda p: read_or_clear_error(read_idx, p))
    ref = idx_by_spec(data)
    if got is None:
        assert ref is None, "read_idx refused a valid IDX file"
    else:
        assert ref is not None and got.dtype == ref.dtype and np.array_equal(got, ref, equal_nan=got.dtype.kind == "f")


@FUZZ
@given(st.binary(max_size=200))
def test_idx_random_bytes(data):
    check_idx(data)


@FUZZ
@given(st.sampled_from([(np.uint8, (3, 4, 5)), (np.float32, (6,)), (np.int16, (2, 3))]).flatmap(
    lambda spec: mutated(_valid_idx(spec[1], spec[0]))))
def test_idx_truncations_and_bit_flips(data):
    check_idx(data)


@FUZZ
@given(mutated(gzip.compress(_valid_idx(), mtime=0)))
def test_idx_gzip_truncations_and_bit_flips(data):
    # a flipped bit in the compressed stream is caught by gzip's CRC; a good stream must match the spec reading
    got = in_tmp("sample.idx.gz", data, lambda p: read_or_clear_error(read_idx, p))
    if got is not None:
        assert np.array_equal(got, idx_by_spec(gzip.decompress(data)))


def _fashion_dir(root: Path, labels: bytes, images: bytes):
    for stem, blob in (("t10k-labels-idx1-ubyte", labels), ("t10k-images-idx3-ubyte", images),
                       ("train-labels-idx1-ubyte", labels), ("train-images-idx3-ubyte", images)):
        (root / stem).write_bytes(blob)


_LABELS = _valid_idx((4,), np.uint8, 1)
_IMAGES = _valid_idx((4, 28, 28), np.uint8, 2)


@FUZZ
@given(st.booleans(), st.data())
def test_fashion_mnist_mutated_files(mutate_labels, data):
    """A mutated labels or images file: a clear error naming it, or exactly what the spec says it holds,
    and then only unsigned bytes of the right shape with labels 0..9."""
    from snn.data import load_fashion_mnist

    labels = data.draw(mutated(_LABELS)) if mutate_labels else _LABELS
    images = _IMAGES if mutate_labels else data.draw(mutated(_IMAGES))
    with tempfile.TemporaryDirectory() as d, watchdog():
        _fashion_dir(Path(d), labels, images)
        try:
            x, y = load_fashion_mnist("test", d)
        except CLEAR as e:
            culprit = "t10k-labels-idx1-ubyte" if mutate_labels else "t10k-images-idx3-ubyte"
            assert culprit in str(e), e
            return
    ref_y, ref_x = idx_by_spec(labels), idx_by_spec(images)
    assert ref_y is not None and ref_y.dtype == np.uint8 and ref_y.ndim == 1 and ref_y.max() <= 9
    assert ref_x is not None and ref_x.dtype == np.uint8 and ref_x.shape[1:] == (28, 28)
    assert y.tolist() == ref_y.tolist() and torch.equal(x[:, 0], torch.from_numpy(ref_x.copy()).float() / 255)


# -- N-MNIST -----------------------------------------------------------------------------------------
def nmnist_by_spec(data: bytes):
    """An independent reading of the N-MNIST format (Orchard's eventvision.py): 5-byte records, y == 240
    marks a timestamp overflow (+8192 µs from there on, not an event). Sorted by time like snn's."""
    rows, offset = [], 0
    for i in range(0, len(data) - len(data) % 5, 5):
        x, y, b2, b3, b4 = data[i:i + 5]
        if y == 240:
            offset += 8192
            continue
        rows.append((x, y, ((b2 & 0x7F) << 16 | b3 << 8 | b4) + offset, b2 >> 7))
    rows.sort(key=lambda r: r[2])  # stable, like snn's sort
    return rows


def check_nmnist(data: bytes):
    got = in_tmp("sample.bin", data, lambda p: read_or_clear_error(E.read_nmnist, p))
    if got is None:
        # refused: a partial record, or a header of another format at the start
        assert len(data) % 5 or E.sniff_event_format(data[:4096]) is not None
    else:
        assert len(data) % 5 == 0
        assert [tuple(int(v) for v in e) for e in got] == nmnist_by_spec(data)


@FUZZ
@given(st.binary(max_size=300))
def test_nmnist_random_bytes(data):
    check_nmnist(data)


def _valid_nmnist():
    rng = np.random.default_rng(3)
    ev = E.make_events(rng.integers(0, 34, 40), rng.integers(0, 34, 40), np.sort(rng.integers(0, 300_000, 40)),
                       rng.integers(0, 2, 40))
    raw = bytearray(E.encode_nmnist(ev))
    raw[50:50] = bytes([0, 240, 0, 0, 0])  # an overflow marker after the tenth event
    return bytes(raw)


@FUZZ
@given(mutated(_valid_nmnist()))
def test_nmnist_truncations_and_bit_flips(data):
    check_nmnist(data)


@FUZZ
@given(st.sampled_from([b"#!AER-DAT2.0\r\n# comment\r\n", b"% evt 3.0\n% end\n", b"% Date 2020-01-01\n% Height 240\n"]),
       st.binary(max_size=100))
def test_foreign_headers_never_decode(header, tail):
    path_data = header + tail
    got = in_tmp("sample.bin", path_data, lambda p: read_or_clear_error(E.read_nmnist, p))
    assert got is None


# -- WAV (espeak-ng's output) and the spoken-words cache -------------------------------------------------
def _valid_wav():
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.sin(np.arange(200) / 7.0) * 20000).astype("<i2").tobytes())
    return buf.getvalue()


def check_wav(data: bytes):
    with watchdog():
        try:
            x, fs = audio.read_wav(data, "clip.wav")
        except ValueError as e:
            assert "clip.wav" in str(e), e
            return
    assert fs > 0 and x.dtype == np.float64 and x.ndim == 1 and (np.abs(x) <= 1).all()


@FUZZ
@given(st.binary(max_size=200))
def test_wav_random_bytes(data):
    check_wav(data)


@FUZZ
@given(mutated(_valid_wav()))
def test_wav_truncations_and_bit_flips(data):
    check_wav(data)


_CACHE_SETTINGS = dict(voices=("en-us",), speeds=(150,), pitches=(50,), n_bins=4, n_channels=3)


def _valid_cache():
    buf = io.BytesIO()
    torch.save({"x": torch.rand(4, 2, 3), "y": torch.tensor([0, 1]), "meta": {"words": ["sun", "moon"]}}, buf)
    return buf.getvalue()


@FUZZ
@given(st.one_of(st.binary(max_size=100), mutated(_valid_cache())))
def test_spoken_words_cache_random_and_mutated(data):
    with tempfile.TemporaryDirectory() as d, pytest.MonkeyPatch.context() as mp:
        mp.setenv("SNN_CACHE", d)
        mp.setattr(audio, "_espeak", lambda: pytest.fail("a damaged cache must not be rebuilt silently"))
        path = audio.spoken_words_cache(["sun", "moon"], **_CACHE_SETTINGS)
        path.write_bytes(data)
        got = read_or_clear_error(lambda p: audio.load_spoken_words(["sun", "moon"], **_CACHE_SETTINGS), path)
        if got is not None:
            x, y, meta = got
            assert x.shape == (4, 2, 3) and x.dtype == torch.float32 and y.dtype == torch.int64
            assert set(y.tolist()) <= {0, 1} and isinstance(meta, dict)
        assert path.read_bytes() == data  # never rewritten
