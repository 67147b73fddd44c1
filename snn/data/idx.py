"""Reader for the IDX format of (Fashion-)MNIST, gzipped or not.

Layout (LeCun's IDX): two zero bytes, a type code, the number of dimensions ``n``, ``n`` big-endian
int32 sizes, then the data, big-endian, row-major. Type codes: 0x08 unsigned byte, 0x09 signed byte,
0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64. MNIST's images start with the magic number
0x00000803 (unsigned bytes, 3 dimensions) and its labels with 0x00000801. Every failure names the file.
"""
from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["read_idx", "write_idx", "IDXError", "IDX_TYPE_NAMES"]

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(v): k for k, v in _TYPES.items()}
IDX_TYPE_NAMES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32",
                  0x0E: "float64"}


class IDXError(ValueError):
    """A file that is not a valid IDX file (bad magic, truncated, corrupt gzip), or not the IDX array the
    caller expects (element type, shape)."""


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise IDXError(f"{path}: corrupt or truncated gzip data ({e})") from None
    return raw


def _header(data: bytes, path: Path) -> tuple[int, tuple[int, ...], int]:
    """``(type code, shape, header length)`` of IDX bytes, checked against the data length."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise IDXError(f"{path}: bad magic number {data[:4].hex() or '(empty file)'}; expected 0000 <type> <ndim> "
                       f"with type in {[hex(t) for t in _TYPES]}")
    code, ndim = data[2], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(f"{path}: truncated header ({len(data)} bytes, the magic number announces {ndim} "
                       f"dimensions, so it needs {header})")
    shape = struct.unpack(f">{ndim}i", data[4:header])
    if any(d < 0 for d in shape):
        raise IDXError(f"{path}: negative dimension size in the header: {shape}")
    expected = math.prod(shape) * np.dtype(_TYPES[code]).itemsize
    if len(data) - header != expected:
        raise IDXError(f"{path}: truncated or oversized data: {len(data) - header} bytes after the header, "
                       f"shape {shape} of {IDX_TYPE_NAMES[code]} needs {expected}")
    return code, shape, header


def _code_of(dtype, who: str) -> int:
    """The IDX type code of a numpy dtype (either byte order)."""
    dt = np.dtype(dtype)
    dt = dt.newbyteorder(">") if dt.itemsize > 1 else dt
    if dt not in _CODES:
        raise ValueError(f"{who}: unsupported IDX element type {np.dtype(dtype)}; IDX holds "
                         f"{', '.join(IDX_TYPE_NAMES.values())}")
    return _CODES[dt]


def _shape_text(shape) -> str:
    return "[" + ", ".join("N" if d is None else str(d) for d in shape) + "]"


def _check_expected(path: Path, code: int, shape: tuple, dtype, expect_shape) -> None:
    """The header's element type and shape against what the caller expects (``None`` in a shape: any size)."""
    want_code = None if dtype is None else _code_of(dtype, "read_idx: dtype")
    type_ok = want_code is None or want_code == code
    shape_ok = expect_shape is None or (len(shape) == len(expect_shape) and
                                        all(e is None or e == d for e, d in zip(expect_shape, shape)))
    if not (type_ok and shape_ok):
        want = " ".join(w for w in (IDX_TYPE_NAMES.get(want_code, ""),
                                    _shape_text(expect_shape) if expect_shape is not None else "") if w)
        raise IDXError(f"{path}: expected an IDX array of {want}, got {IDX_TYPE_NAMES[code]} {_shape_text(shape)}")


def read_idx(path, dtype=None, shape=None) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain) into a numpy array of its stored shape.

    ``dtype``/``shape``: what the caller expects (e.g. ``np.uint8`` and ``(None, 28, 28)``, ``None`` for any
    size); a file of another element type or shape is an :class:`IDXError` naming the file, what it holds
    and what was expected (nothing is converted).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    data = _read_bytes(path)
    code, found_shape, header = _header(data, path)
    if dtype is not None or shape is not None:
        _check_expected(path, code, found_shape, dtype, shape)
    return np.frombuffer(data, dtype=_TYPES[code], offset=header).reshape(found_shape)


def write_idx(path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as IDX (gzip when ``compress`` or when the name ends in .gz). For tests and tools."""
    path = Path(path)
    array = np.asarray(array)
    code = _code_of(array.dtype, "write_idx: array")
    payload = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape) \
        + array.astype(_TYPES[code]).tobytes()
    if compress or (compress is None and path.suffix == ".gz"):
        payload = gzip.compress(payload)
    from ..io import atomic_write_bytes
    atomic_write_bytes(path, payload)
