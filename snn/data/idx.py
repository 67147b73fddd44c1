"""Reader for the IDX format of (Fashion-)MNIST, gzipped or not.

Layout: two zero bytes, a type code (0x08 = uint8, ...), the number of dimensions n,
n big-endian int32 sizes, then the data. Every failure names the file.
"""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["read_idx", "write_idx", "IDXError"]

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C,
          np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


class IDXError(ValueError):
    """A file that is not a valid IDX file (bad magic, truncated, corrupt gzip)."""


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise IDXError(f"{path}: corrupt or truncated gzip data ({e})") from None
    return raw


def read_idx(path) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain) into a numpy array of its stored shape."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise IDXError(f"{path}: bad magic number {data[:4].hex() or '(empty file)'}; expected 0000 <type> <ndim> "
                       f"with type in {[hex(t) for t in _TYPES]}")
    dtype, ndim = np.dtype(_TYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(f"{path}: truncated header ({len(data)} bytes, need {header})")
    shape = struct.unpack(f">{ndim}i", data[4:header])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise IDXError(f"{path}: truncated or oversized data: {len(data) - header} bytes after the header, "
                       f"shape {shape} needs {expected}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def write_idx(path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as IDX (gzip when ``compress`` or when the name ends in .gz). For tests and tools."""
    path = Path(path)
    array = np.asarray(array)
    dt = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if dt not in _CODES:
        raise ValueError(f"write_idx: unsupported dtype {array.dtype}")
    payload = bytes([0, 0, _CODES[dt], array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape) \
        + array.astype(dt).tobytes()
    if compress or (compress is None and path.suffix == ".gz"):
        payload = gzip.compress(payload)
    from ..io import atomic_write_bytes
    atomic_write_bytes(path, payload)
