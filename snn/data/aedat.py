"""AEDAT 2.0 and 3.1 event files (jAER / cAER), as recorded for DVS128 Gesture and CIFAR10-DVS.

Both start with ASCII header lines beginning with ``#`` and ending in ``\\r\\n``, the first being
``#!AER-DAT<version>``.

AEDAT 2.0 (https://docs.inivation.com/software/software-advanced-usage/file-formats/aedat-2.0.html)
    After the header, 8-byte records, big-endian: ``uint32 address``, ``uint32 timestamp`` (µs). The address
    layout depends on the camera; for the DVS128 (jAER's ``DVS128`` extractor): bit 0 = polarity (0 = ON),
    bits 1-7 = x, bits 8-14 = y, bit 15 set = a special (sync) event, not a pixel event.

AEDAT 3.1 (https://docs.inivation.com/software/software-advanced-usage/file-formats/aedat-3.1.html)
    The header ends with ``#!END-HEADER\\r\\n``. Then packets, each a 28-byte little-endian header::

        int16 eventType   int16 eventSource   int32 eventSize   int32 eventTSOffset
        int32 eventTSOverflow   int32 eventCapacity   int32 eventNumber   int32 eventValid

    followed by ``eventCapacity * eventSize`` bytes of events. Polarity events (``eventType == 1``, 8 bytes):
    ``uint32 data`` (bit 0 = valid mark, bit 1 = polarity (1 = ON), bits 2-16 = y, bits 17-31 = x) and
    ``int32 timestamp``; the full time is ``eventTSOverflow << 31 | timestamp`` µs. Other packets (special,
    frame, IMU events) are skipped; invalid events (valid mark 0) are dropped.

Why not tonic: tonic 1.7's ``read_dvs_ibm``/``read_dvs_128`` fail (they unpack two values from a header reader
that returns three), and its ``get_aer_events_from_file`` keeps events of every packet type and ignores the
timestamp overflow and the valid mark. The ``aedat`` and ``expelliarmus`` packages read AEDAT 4 and Prophesee
formats only. These readers are vectorised NumPy (one pass over the packet headers, one gather of the events).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .events import make_events, sniff_event_format

__all__ = ["read_aedat", "read_aedat_header", "decode_dvs128_address", "AEDAT_VERSION_RE"]

AEDAT_VERSION_RE = re.compile(rb"#!AER-DAT(\d+)\.(\d+)")
_PACKET = np.dtype([("type", "<i2"), ("source", "<i2"), ("size", "<i4"), ("ts_offset", "<i4"),
                    ("ts_overflow", "<i4"), ("capacity", "<i4"), ("number", "<i4"), ("valid", "<i4")])
_POLARITY = 1  # AEDAT 3.1 eventType of polarity events
_POLARITY_SIZE = 8


def read_aedat_header(data: bytes, source: str) -> tuple[str, int]:
    """``(version, offset of the first data byte)``; a file without an AEDAT header is an error naming what it
    looks like."""
    m = AEDAT_VERSION_RE.match(data)
    if not m:
        fmt = sniff_event_format(data[:4096]) or "binary data without a header"
        raise ValueError(f"{source}: not an AEDAT file (it should start with '#!AER-DAT2.0' or '#!AER-DAT3.1'); "
                         f"it looks like {fmt}")
    version = f"{int(m.group(1))}.{int(m.group(2))}"
    pos = 0
    while pos < len(data) and data[pos:pos + 1] == b"#":
        end = data.find(b"\n", pos)
        if end < 0:
            raise ValueError(f"{source}: AEDAT header line at byte {pos} has no line end (truncated file)")
        line, pos = data[pos:end + 1], end + 1
        if line.startswith(b"#!END-HEADER"):
            break
    return version, pos


def decode_dvs128_address(address: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A DVS128 AEDAT 2.0 address → ``(x, y, polarity bit, special)`` as stored (no flips)."""
    address = address.astype(np.uint32)
    return (address >> 1) & 0x7F, (address >> 8) & 0x7F, address & 1, (address & 0x8000) != 0


def _read_v2(data: bytes, start: int, source: str):
    body = len(data) - start
    if body % 8:
        raise ValueError(f"{source}: AEDAT 2.0 data must be 8-byte records (address, timestamp), got {body} bytes "
                         f"after the header ({body % 8} left over): the file is truncated or damaged")
    rec = np.frombuffer(data, dtype=">u4", offset=start).reshape(-1, 2)
    return rec[:, 0], rec[:, 1].astype(np.int64)


def _packet_headers(data: bytes, start: int, source: str) -> list[tuple[int, np.void]]:
    """``(offset of the events, header)`` of every AEDAT 3.1 packet, each checked to fit in the file."""
    out, pos, n = [], start, len(data)
    while pos < n:
        if n - pos < _PACKET.itemsize:
            raise ValueError(f"{source}: AEDAT 3.1 packet header at byte {pos} is cut off ({n - pos} of 28 bytes): "
                             f"the file is truncated")
        h = np.frombuffer(data, dtype=_PACKET, count=1, offset=pos)[0]
        size, capacity, number = int(h["size"]), int(h["capacity"]), int(h["number"])
        if size < 1 or capacity < 0 or not 0 <= number <= capacity:
            raise ValueError(f"{source}: AEDAT 3.1 packet at byte {pos} has an impossible header (eventSize {size}, "
                             f"eventCapacity {capacity}, eventNumber {number}): the file is damaged or not AEDAT 3.1")
        end = pos + _PACKET.itemsize + size * capacity
        if end > n:
            raise ValueError(f"{source}: AEDAT 3.1 packet at byte {pos} declares {size * capacity} bytes of events "
                             f"but only {n - pos - _PACKET.itemsize} remain: the file is truncated")
        if int(h["type"]) == _POLARITY and size != _POLARITY_SIZE:
            raise ValueError(f"{source}: AEDAT 3.1 polarity packet at byte {pos} has eventSize {size}, expected 8")
        out.append((pos + _PACKET.itemsize, h))
        pos = end
    return out


def _read_v3(data: bytes, start: int, source: str):
    """Polarity events of an AEDAT 3.1 body: ``(x, y, p, t)``."""
    words, overflow = [], []
    raw = np.frombuffer(data, dtype=np.uint8)
    for offset, h in _packet_headers(data, start, source):
        if int(h["type"]) != _POLARITY or int(h["number"]) == 0:
            continue
        n = int(h["number"])
        words.append(raw[offset:offset + 8 * n])
        overflow.append(np.full(n, int(h["ts_overflow"]), dtype=np.int64))
    if not words:
        return (np.zeros(0, np.int64),) * 4
    ev = np.concatenate(words).view(np.dtype([("data", "<u4"), ("ts", "<i4")]))
    d = ev["data"].astype(np.int64)
    t = np.concatenate(overflow) << 31 | ev["ts"].astype(np.int64)
    valid = (d & 1) == 1
    d, t = d[valid], t[valid]
    return (d >> 17) & 0x7FFF, (d >> 2) & 0x7FFF, (d >> 1) & 1, t


def read_aedat(path, orientation=None) -> np.ndarray:
    """The polarity events of an AEDAT 2.0 (DVS128 addresses) or 3.1 file, sorted by time (stable).

    ``orientation(x, y, p) -> (x, y, p)`` maps the stored coordinates to a data set's convention (e.g.
    CIFAR10-DVS's); the default keeps them as stored. Other versions (AEDAT 1, 4) are an error naming them.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"AEDAT event file not found: {path}")
    data = path.read_bytes()
    version, start = read_aedat_header(data, str(path))
    if version.startswith("2."):
        address, t = _read_v2(data, start, str(path))
        x, y, p, special = decode_dvs128_address(address)
        keep = ~special
        x, y, p, t = x[keep], y[keep], 1 - p[keep].astype(np.int64), t[keep]  # DVS128: bit 0 = 0 is ON
    elif version == "3.1":
        x, y, p, t = _read_v3(data, start, str(path))
    else:
        raise ValueError(f"{path}: AEDAT {version} is not read here (accepted: AEDAT 2.0 with DVS128 addresses, "
                         f"AEDAT 3.1); AEDAT 4 files are read by tonic.io.read_aedat4 with the 'aedat' package "
                         f"(pip install aedat), e.g. through snn.data.from_tonic(tonic.datasets.CIFAR10DVS(...))")
    if orientation is not None:
        x, y, p = orientation(x, y, p)
    return make_events(x, y, t, p)
