import gzip
import re

import numpy as np
import pytest
import torch

from snn import data
from snn.data import IDXError, read_idx, write_idx


def make_fashion_dir(root, n_train=20, n_test=10, gz=True):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{split}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(root / f"{split}-labels-idx1-ubyte{suffix}", rng.integers(0, 10, n, dtype=np.uint8))
    return root


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    p = tmp_path / ("a.idx.gz" if gz else "a.idx")
    write_idx(p, arr)
    assert np.array_equal(read_idx(p), arr)


def test_fashion_mnist_from_a_directory(tmp_path):
    make_fashion_dir(tmp_path)
    x, y = data.load("fashion-mnist", "train", data_dir=tmp_path)
    assert x.shape == (20, 1, 28, 28) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert y.shape == (20,) and y.dtype == torch.int64
    x, y = data.load("fashion-mnist", "test", data_dir=tmp_path)
    assert len(x) == 10


def test_uncompressed_files_and_env_var(tmp_path, monkeypatch):
    make_fashion_dir(tmp_path, gz=False)
    monkeypatch.setenv("SNN_DATA", str(tmp_path))
    assert data.find_fashion_mnist() == tmp_path
    assert len(data.load("fashion-mnist", "test")[0]) == 10


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        data.load("fashion-mnist", data_dir=tmp_path / "nowhere")


def test_bad_magic_names_the_file(tmp_path):
    p = tmp_path / "bad.idx"
    p.write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(IDXError, match="bad.idx.*bad magic"):
        read_idx(p)


def test_truncated_file_names_the_file(tmp_path):
    p = tmp_path / "t.idx"
    write_idx(p, np.zeros((4, 5), dtype=np.uint8))
    p.write_bytes(p.read_bytes()[:-3])
    with pytest.raises(IDXError, match="t.idx.*truncated"):
        read_idx(p)


def test_corrupt_gzip_names_the_file(tmp_path):
    p = tmp_path / "c.idx.gz"
    p.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05abcde")[:-6])
    with pytest.raises(IDXError, match="c.idx.gz.*gzip"):
        read_idx(p)


def test_corrupt_file_in_dataset_dir(tmp_path):
    make_fashion_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    with pytest.raises(IDXError, match="t10k-labels"):
        data.load("fashion-mnist", "test", data_dir=tmp_path)


def test_digits_default_split_is_deterministic_and_disjoint():
    xtr, ytr = data.load("digits", "train")
    xte, yte = data.load("digits", "test")
    assert len(xtr) + len(xte) == 1797 and xtr.shape[1:] == (1, 8, 8)
    assert torch.equal(data.load("digits", "test")[0], xte)
    assert set(yte.tolist()) == set(range(10))


def test_auto_falls_back_to_digits(tmp_path, monkeypatch):
    monkeypatch.setattr(data.images, "FASHION_MNIST_DIRS", ())
    monkeypatch.delenv("SNN_DATA", raising=False)
    assert data.resolve_name("auto") == "digits"
    make_fashion_dir(tmp_path)
    assert data.resolve_name("auto", data_dir=tmp_path) == "fashion-mnist"
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load("cifar")


def test_batches_cover_everything_once():
    x, y = torch.arange(10).float(), torch.arange(10)
    seen = torch.cat([b for _, b in data.batches(x, y, 3, shuffle=True, generator=torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == list(range(10))
    with pytest.raises(ValueError, match="batch_size"):
        next(data.batches(x, y, 0))


# -- IDX files written per LeCun's spec: big-endian magic 0x00000803 / 0x00000801, big-endian int32 sizes --
def _idx_bytes(type_code, shape, payload: bytes) -> bytes:
    return (0x0000_0000 | type_code << 8 | len(shape)).to_bytes(4, "big") \
        + b"".join(d.to_bytes(4, "big", signed=True) for d in shape) + payload


def _write_fashion_files(root, split="t10k", n=3, images=None, labels=None):
    """The two IDX files of a split, byte by byte; ``images``/``labels`` replace either file's bytes."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    lbl = np.arange(n, dtype=np.uint8) % 10
    (root / f"{split}-images-idx3-ubyte").write_bytes(images if images is not None else
                                                      _idx_bytes(0x08, (n, 28, 28), img.tobytes()))
    (root / f"{split}-labels-idx1-ubyte").write_bytes(labels if labels is not None else
                                                      _idx_bytes(0x08, (n,), lbl.tobytes()))
    other = "train" if split == "t10k" else "t10k"
    for stem, arr in ((f"{other}-images-idx3-ubyte", img), (f"{other}-labels-idx1-ubyte", lbl)):
        write_idx(root / stem, arr)
    return img, lbl


def test_spec_written_idx_files_load(tmp_path):
    img, lbl = _write_fashion_files(tmp_path)
    assert (tmp_path / "t10k-images-idx3-ubyte").read_bytes()[:4] == b"\x00\x00\x08\x03"  # magic 2051
    assert (tmp_path / "t10k-labels-idx1-ubyte").read_bytes()[:4] == b"\x00\x00\x08\x01"  # magic 2049
    x, y = data.load("fashion-mnist", "test", data_dir=tmp_path)
    assert torch.equal(x[:, 0], torch.from_numpy(img).float() / 255) and y.tolist() == lbl.tolist()
    # write_idx writes exactly the spec's bytes
    write_idx(tmp_path / "w.idx", img)
    assert (tmp_path / "w.idx").read_bytes() == (tmp_path / "t10k-images-idx3-ubyte").read_bytes()


def test_read_idx_big_endian_types(tmp_path):
    p = tmp_path / "f.idx"
    p.write_bytes(_idx_bytes(0x0D, (2, 2), np.array([1.5, -2, 3, 4], dtype=">f4").tobytes()))
    assert read_idx(p).tolist() == [[1.5, -2.0], [3.0, 4.0]]
    p.write_bytes(_idx_bytes(0x0B, (3,), np.array([1, -1, 300], dtype=">i2").tobytes()))
    assert read_idx(p).tolist() == [1, -1, 300]


@pytest.mark.parametrize("which, code, dtype, found", [
    ("images", 0x0D, ">f4", "float32"), ("labels", 0x0D, ">f4", "float32"),
    ("labels", 0x0C, ">i4", "int32"), ("images", 0x09, "i1", "signed byte")])
def test_wrong_element_type_is_refused_by_name(tmp_path, which, code, dtype, found):
    n = 3
    shape = (n, 28, 28) if which == "images" else (n,)
    bad = _idx_bytes(code, shape, np.ones(shape, dtype=dtype).tobytes())
    _write_fashion_files(tmp_path, **{which: bad})
    expected = "unsigned byte [N, 28, 28]" if which == "images" else "unsigned byte [N]"
    with pytest.raises(IDXError, match=rf"t10k-{which}-idx\d-ubyte: expected an IDX array of "
                                       rf"{re.escape(expected)}, got {found}"):
        data.load("fashion-mnist", "test", data_dir=tmp_path)
