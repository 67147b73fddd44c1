"""Tiny files in the real formats of the event and audio data sets, written byte by byte from the formats'
documentation (not with snn's readers' code), in the directory layout of the original downloads.

N-MNIST / N-Caltech101 (Orchard's eventvision.py): 5-byte records x, y, p<<7 | t[22:16], t[15:8], t[7:0];
y = 240 marks a +8192 µs timestamp overflow.
AEDAT 2.0 (jAER): '#'-header lines ending in CRLF, then big-endian uint32 address, uint32 timestamp;
DVS128 address = y << 8 | x << 1 | bit0 (bit0 = 0: ON), bit 15 = special event.
AEDAT 3.1 (cAER): header ending '#!END-HEADER\\r\\n', packets of a 28-byte little-endian header
(eventType i16, eventSource i16, eventSize i32, eventTSOffset i32, eventTSOverflow i32, eventCapacity i32,
eventNumber i32, eventValid i32) and events; polarity event = uint32 (x << 17 | y << 2 | p << 1 | valid), int32 t.
SHD/SSC (Cramer et al.): HDF5 with spikes/times (vlen float, s), spikes/units (vlen uint16), labels, extra/keys.
"""
from __future__ import annotations

import struct
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def nmnist_bytes(x, y, t, p, overflow_before=()) -> bytes:
    """Records for events (t < 2**23 µs relative to the overflow markers); an overflow marker (y = 240) is
    inserted before the events whose indices are in ``overflow_before`` (their t is then stamp + 8192·k)."""
    out = bytearray()
    markers = 0
    for i, (xi, yi, ti, pi) in enumerate(zip(x, y, t, p)):
        if i in overflow_before:
            markers += 1
            out += bytes([0, 240, 0, 0, 0])
        stamp = int(ti) - 8192 * markers
        assert 0 <= stamp < 2 ** 23
        out += bytes([int(xi), int(yi), int(pi) << 7 | (stamp >> 16) & 0x7F, (stamp >> 8) & 0xFF, stamp & 0xFF])
    return bytes(out)


def aedat2_bytes(x, y, t, p, specials=()) -> bytes:
    """A DVS128 AEDAT 2.0 file; ``specials``: (index, timestamp) of sync events inserted before event index."""
    head = (b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"
            b"# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event\r\n"
            b"# Timestamps tick is 1 us\r\n# created Tue Jan 01 00:00:00 CET 2017\r\n")
    body = bytearray()
    special = dict(specials)
    for i, (xi, yi, ti, pi) in enumerate(zip(x, y, t, p)):
        if i in special:
            body += struct.pack(">II", 0x8000, special[i])
        body += struct.pack(">II", int(yi) << 8 | int(xi) << 1 | (0 if pi else 1), int(ti))
    return head + bytes(body)


AEDAT31_HEADER = (b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n"
                  b"#Start-Time: 2017-01-01 00:00:00 (TZ+0000)\r\n#!END-HEADER\r\n")


def aedat31_packet(event_type: int, events: bytes, size: int, overflow: int = 0, number=None, valid=None) -> bytes:
    n = len(events) // size
    number = n if number is None else number
    return struct.pack("<hhiiiiii", event_type, 1, size, 4, overflow, n, number, number if valid is None else valid) \
        + events


def polarity_events(x, y, t, p, valid=None) -> bytes:
    valid = np.ones(len(x), int) if valid is None else valid
    return b"".join(struct.pack("<Ii", int(xi) << 17 | int(yi) << 2 | int(pi) << 1 | int(v), int(ti))
                    for xi, yi, ti, pi, v in zip(x, y, t, p, valid))


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def shd_file(path: Path, times, units, labels, keys, times_dtype=np.float16) -> Path:
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        t = f.create_dataset("spikes/times", (len(times),), dtype=h5py.vlen_dtype(np.dtype(times_dtype)))
        u = f.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(np.dtype(np.uint16)))
        for i, (ti, ui) in enumerate(zip(times, units)):
            t[i] = np.asarray(ti, dtype=times_dtype)
            u[i] = np.asarray(ui, dtype=np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
        f.create_dataset("extra/keys", data=np.array([k.encode() for k in keys]))
        f.create_dataset("extra/speaker", data=np.zeros(len(labels), dtype=np.uint16))
    return path


def nmnist_root(root: Path, rng, n_events: int = 40) -> dict:
    """``root/{Train,Test}/<digit>/NNNNN.bin``, one file per digit (two for 3), each with an overflow marker
    before its first event at t >= 8192 µs; returns ``{path: (x, y, t, p)}``."""
    written = {}
    for split in ("Train", "Test"):
        for digit in range(10):
            for k in range(2 if digit == 3 else 1):
                ev = random_events(rng, n_events, 34, 34, 30_000)
                path = write(root / split / str(digit) / f"{k:05d}.bin",
                             nmnist_bytes(*ev, overflow_before={int(np.searchsorted(ev[2], 8192))}))
                written[path] = ev
    return written


def random_events(rng, n, width, height, t_max, t_min=0):
    """``n`` events, sorted by time (stable), as four int64 arrays."""
    t = np.sort(rng.integers(t_min, t_max, n))
    return rng.integers(0, width, n), rng.integers(0, height, n), t, rng.integers(0, 2, n)


@contextmanager
def spikingjelly_datasets(*names):
    """SpikingJelly 2.0's ``spikingjelly.datasets.<name>`` modules, for comparing with its readers and frame
    integrators. Its package ``__init__`` imports torchvision and torchaudio (not installed here), which the
    functions compared do not use: the modules are loaded one by one under a bare package, with stand-ins for
    the torchvision names they import; afterwards ``sys.modules`` forgets them (other imports stay)."""
    import importlib
    import sys
    import types

    import pytest

    sj = pytest.importorskip("spikingjelly")
    saved = dict(sys.modules)
    try:
        package = types.ModuleType("spikingjelly.datasets")
        package.__path__ = [str(Path(sj.__file__).parent / "datasets")]
        sys.modules["spikingjelly.datasets"] = package
        if importlib.util.find_spec("torchvision") is None:
            tv, tvd, tvu = (types.ModuleType(n) for n in ("torchvision", "torchvision.datasets",
                                                          "torchvision.datasets.utils"))
            tv.transforms, tv.datasets, tvd.utils, tvd.DatasetFolder = types.ModuleType("transforms"), tvd, tvu, object
            for fn in ("extract_archive", "check_integrity", "download_url", "verify_str_arg"):
                setattr(tvu, fn, None)
            sys.modules.update({"torchvision": tv, "torchvision.datasets": tvd, "torchvision.datasets.utils": tvu})
        yield tuple(importlib.import_module(f"spikingjelly.datasets.{n}") for n in names)
    finally:
        loaded = [n for n in sys.modules if n.split(".")[0] == "torchvision" or n.startswith("spikingjelly.datasets")]
        for name in loaded:
            if name in saved:
                sys.modules[name] = saved[name]
            else:
                del sys.modules[name]
