"""Event streams: the N-MNIST binary format, a generic ``(x, y, t, p)`` array, binning, and an
image-to-events converter that moves a static image through three saccades (how N-MNIST was recorded).

Event array
    A numpy structured array with fields ``x`` (uint16, column), ``y`` (uint16, row),
    ``t`` (int64, microseconds) and ``p`` (int8, polarity: 1 = ON, 0 = OFF), see :data:`EVENT_DTYPE`.
    :func:`make_events` builds one from four sequences; :func:`as_events` checks one (any structured array
    with these four fields, such as tonic's, is converted).

N-MNIST file format (Orchard et al. 2015; N-Caltech101 uses the same)
    One 40-bit (5-byte) record per event, big-endian bit fields::

        byte 0: x (8 bits)           byte 1: y (8 bits)
        byte 2: bit 7 = polarity, bits 6..0 = timestamp bits 22..16
        bytes 3-4: timestamp bits 15..0          (timestamp in microseconds, 23 bits)

    A record with ``y == 240`` is a timestamp-overflow marker, not an event: every later event's time is
    ``2**13`` µs later (``t_i = stamp_i + 8192 · #markers at or before record i``). This is how the data
    set's own reader (Orchard's ``eventvision.py``) and tonic's ``read_mnist_file`` read it. A file whose
    size is not a multiple of 5 bytes is refused (those readers fail on it too). Files in other event
    formats (Prophesee DAT/RAW with EVT 2/3 data, AEDAT, HDF5, NumPy, text) are recognised by their
    headers and refused, so they are never decoded as N-MNIST noise.

Saccade converter (a simulated dynamic vision sensor)
    The image ``I`` (in [0, 1]) is placed on a canvas padded by ``amplitude`` pixels and moved along a
    triangle of three straight saccades (N-MNIST: 100 ms each). At each of ``steps_per_saccade``
    sub-steps the sensor sees ``L = log(I_shifted + eps)`` (bilinear sub-pixel shift). Each pixel keeps a
    reference level ``L_ref``; it emits ``n = floor(|L - L_ref| / threshold)`` events of polarity
    ``sign(L - L_ref)`` (ON if positive) and moves ``L_ref`` by ``n·threshold`` towards ``L``. A uniform
    region does not change when shifted, so events appear only near edges (within ``amplitude`` pixels).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from ..io import atomic_write_bytes
from ._validate import check_int, whole_numbers

__all__ = ["EVENT_DTYPE", "make_events", "as_events", "read_nmnist", "write_nmnist", "encode_nmnist",
           "decode_nmnist", "sniff_event_format", "bin_events", "bin_events_channels", "saccade_frames",
           "image_to_events", "images_to_event_tensor", "load_event_dataset", "EVENT_DATASETS", "SACCADE_PATH",
           "check_on_sensor"]

EVENT_DTYPE = np.dtype([("x", np.uint16), ("y", np.uint16), ("t", np.int64), ("p", np.int8)])
_FIELDS = ("x", "y", "t", "p")
_MAX_XY = int(np.iinfo(np.uint16).max)
_MAX_T_ARRAY = int(np.iinfo(np.int64).max)
_MAX_T = (1 << 23) - 1  # 23-bit timestamps in the N-MNIST format (µs)
_RECORD = 5  # bytes per N-MNIST record
_OVERFLOW_Y = 240  # y of an N-MNIST timestamp-overflow marker
_OVERFLOW_US = 1 << 13  # time added by each overflow marker (µs)
# Triangle of the three N-MNIST saccades, as fractions of the amplitude (dx, dy) at its corners.
SACCADE_PATH = ((0.0, 0.0), (0.5, 1.0), (1.0, 0.0), (0.0, 0.0))
EVENT_DATASETS = ("event-fmnist", "event-digits")


# -- event arrays ------------------------------------------------------------------------------------
def _event_array(x, y, t, p, who: str, names=_FIELDS) -> np.ndarray:
    """An (unsorted) :data:`EVENT_DTYPE` array from four sequences, each checked for type and range."""
    x, y, t, p = (np.asarray(a) for a in (x, y, t, p))
    if not (x.shape == y.shape == t.shape == p.shape) or x.ndim != 1:
        raise ValueError(f"{who}: {', '.join(names)} must be 1-D and equally long, got shapes "
                         f"{x.shape}, {y.shape}, {t.shape}, {p.shape}")
    ev = np.empty(x.size, dtype=EVENT_DTYPE)
    ev["x"] = whole_numbers(x, names[0], who, 0, _MAX_XY)
    ev["y"] = whole_numbers(y, names[1], who, 0, _MAX_XY)
    ev["t"] = whole_numbers(t, f"{names[2]} (µs)", who, 0, _MAX_T_ARRAY)
    pol = whole_numbers(p, f"polarity {names[3]}", who, -_MAX_T_ARRAY, _MAX_T_ARRAY)
    bad = (pol != 0) & (pol != 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{who}: polarity {names[3]} must be 0 (OFF) or 1 (ON), got {pol[i]} at index {i}")
    ev["p"] = pol
    return ev


def make_events(x, y, t, p) -> np.ndarray:
    """A structured event array from four equal-length sequences, sorted by time (stable).

    ``x``, ``y``: whole numbers in [0, 65535]; ``t``: whole microseconds >= 0 (no NaN/Inf); ``p``: 0 or 1.
    Floats are accepted when they hold whole numbers; anything else is an error naming the argument.
    """
    ev = _event_array(x, y, t, p, "make_events")
    if ev.size < 2 or (ev["t"][1:] >= ev["t"][:-1]).all():  # recordings are stored in time order
        return ev
    return ev[np.argsort(ev["t"], kind="stable")]


def as_events(events, who: str = "as_events") -> np.ndarray:
    """``events`` checked and converted to :data:`EVENT_DTYPE` (order kept): any 1-D structured array with
    fields ``x``, ``y``, ``t``, ``p`` holding values :func:`make_events` accepts."""
    names = getattr(getattr(events, "dtype", None), "names", None) or ()
    if not isinstance(events, np.ndarray) or not set(_FIELDS) <= set(names):
        kind = f"an ndarray of dtype {events.dtype}" if isinstance(events, np.ndarray) else type(events).__name__
        raise TypeError(f"{who}: events must be a structured array with fields x, y, t, p (snn.data.events."
                        f"EVENT_DTYPE; build one with make_events(x, y, t, p)), got {kind}")
    if events.ndim != 1:
        raise ValueError(f"{who}: events must be a 1-D event array, got shape {events.shape}")
    if events.dtype == EVENT_DTYPE and _in_range(events):
        return events
    return _event_array(*(events[f] for f in _FIELDS), who, _EVENT_FIELD_NAMES)


_EVENT_FIELD_NAMES = tuple(f"events['{f}']" for f in _FIELDS)


def _in_range(ev: np.ndarray) -> bool:
    """Whether an :data:`EVENT_DTYPE` array holds only what :func:`make_events` accepts (its dtype bounds
    x and y; t and p need a look)."""
    return ev.size == 0 or (ev["t"].min() >= 0 and bool(np.isin(ev["p"], (0, 1)).all()))


# -- foreign event formats ---------------------------------------------------------------------------
_MAGIC = ((b"#!AER-DAT", None), (b"\x89HDF\r\n\x1a\n", "HDF5"), (b"\x93NUMPY", "NumPy .npy"),
          (b"PK\x03\x04", "ZIP (e.g. NumPy .npz)"), (b"\x1f\x8b\x08", "gzip-compressed data (decompress it first)"))
_TEXT_LINE = re.compile(rb"[\x20-\x7e\t]{6,}\r?\n")
_EVT_VERSIONS = {"2": "2.0", "21": "2.1", "3": "3.0"}  # 'format EVT21' in a header means EVT 2.1


def _prophesee_format(header: bytes) -> str:
    """Which Prophesee file a ``%`` text header introduces: RAW with its EVT encoding, or DAT."""
    text = header.decode("ascii", "replace").lower()
    evt = re.search(r"(?:%\s*evt\s+|format\s*=?\s*evt\s*)([0-9.]+)", text)  # '% evt 3.0', '% format EVT3;...'
    if evt:
        version = evt.group(1).rstrip(".")
        return f"Prophesee RAW (EVT {_EVT_VERSIONS.get(version, version)})"
    return "Prophesee DAT" if "% " in text else "text with a '%' header"


def sniff_event_format(head: bytes) -> str | None:
    """The format a file's first bytes announce when it is not N-MNIST (``None`` when nothing is announced).

    Recognised: AEDAT 1-4 (``#!AER-DAT<version>``), Prophesee DAT and RAW/EVT 2/2.1/3 (``%`` text header
    lines), HDF5, NumPy ``.npy``/``.npz``, gzip, and other text. None of these can open a real N-MNIST or
    N-Caltech101 recording: its third byte holds the first event's timestamp bits 22..16, which are 0 for
    the first 65 ms (the magic numbers need 3 or more, a text line 32 or more).
    """
    for magic, name in _MAGIC:
        if head.startswith(magic):
            if name is None:  # AEDAT: the version follows the magic
                version = re.match(rb"[0-9.]*", head[len(magic):]).group().decode()
                return f"AEDAT {version}".strip()
            return name
    if _TEXT_LINE.match(head):
        if head.startswith(b"%"):
            return _prophesee_format(head)
        return "a text file"
    return None


# -- N-MNIST binary format ---------------------------------------------------------------------------
def encode_nmnist(events: np.ndarray) -> bytes:
    """Events → N-MNIST bytes (5 per event). x, y must fit 8 bits (y != 240, the overflow marker) and
    t 23 bits (µs)."""
    ev = as_events(events, "encode_nmnist")
    if ev.size and (ev["x"].max() > 255 or ev["y"].max() > 255):
        raise ValueError("encode_nmnist: x and y must be < 256 in the N-MNIST format")
    if (ev["y"] == _OVERFLOW_Y).any():
        raise ValueError(f"encode_nmnist: y = {_OVERFLOW_Y} marks a timestamp overflow in the N-MNIST format; "
                         f"an event cannot have it")
    if ev.size and ev["t"].max() > _MAX_T:
        raise ValueError(f"encode_nmnist: t must lie in [0, {_MAX_T}] µs (23 bits) in the N-MNIST format")
    t = ev["t"].astype(np.uint32)
    rec = np.empty((ev.size, _RECORD), dtype=np.uint8)
    rec[:, 0] = ev["x"]
    rec[:, 1] = ev["y"]
    rec[:, 2] = ((ev["p"].astype(np.uint32) & 1) << 7 | (t >> 16) & 0x7F).astype(np.uint8)
    rec[:, 3] = (t >> 8) & 0xFF
    rec[:, 4] = t & 0xFF
    return rec.tobytes()


def _refuse_foreign(data: bytes, source: str) -> None:
    fmt = sniff_event_format(data[:4096])
    if fmt is not None:
        raise ValueError(f"{source}: this looks like {fmt}, not an N-MNIST event file (5-byte binary records "
                         f"with no header); convert it to N-MNIST or read it with a reader for that format")


def decode_nmnist(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """N-MNIST bytes → events (sorted by time), with timestamp-overflow markers applied and dropped
    (see the module docstring)."""
    _refuse_foreign(data, source)
    if len(data) % _RECORD:
        raise ValueError(f"{source}: N-MNIST data must be a multiple of 5 bytes (40-bit records), got "
                         f"{len(data)} bytes ({len(data) // _RECORD} records and {len(data) % _RECORD} bytes "
                         f"left over): the file is truncated or not N-MNIST")
    rec = np.frombuffer(data, dtype=np.uint8).reshape(-1, _RECORD).astype(np.int64)
    stamp = (rec[:, 2] & 0x7F) << 16 | rec[:, 3] << 8 | rec[:, 4]
    overflow = rec[:, 1] == _OVERFLOW_Y
    t = stamp + _OVERFLOW_US * np.cumsum(overflow)
    keep = ~overflow
    return make_events(rec[keep, 0], rec[keep, 1], t[keep], rec[keep, 2] >> 7)


def write_nmnist(path, events: np.ndarray) -> None:
    """Write events to an N-MNIST ``.bin`` file (atomically)."""
    atomic_write_bytes(path, encode_nmnist(events))


def read_nmnist(path, sensor_size: tuple[int, ...] | None = None) -> np.ndarray:
    """Read an N-MNIST ``.bin`` file into an event array (sorted by time).

    ``sensor_size``: ``(width, height)`` or tonic's ``(width, height, polarities)``, e.g. ``(34, 34)`` for
    N-MNIST; when given, an event outside the sensor is an error naming the file (a sign of a wrong or
    corrupt file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"N-MNIST event file not found: {path}")
    events = decode_nmnist(path.read_bytes(), str(path))
    if sensor_size is not None:
        _check_on_sensor(events, sensor_size, str(path))
    return events


def _check_on_sensor(events: np.ndarray, sensor_size, source: str) -> None:
    if not isinstance(sensor_size, (tuple, list)) or len(sensor_size) not in (2, 3):
        raise TypeError(f"read_nmnist: sensor_size must be (width, height) or (width, height, polarities), "
                        f"got {sensor_size!r}")
    width = check_int(sensor_size[0], "sensor_size width", "read_nmnist", 1, 256)
    height = check_int(sensor_size[1], "sensor_size height", "read_nmnist", 1, 256)
    check_on_sensor(events, width, height, source, "a wrong or corrupt file, or the wrong sensor_size")


def check_on_sensor(events: np.ndarray, width: int, height: int, source: str, hint: str) -> np.ndarray:
    """``events`` when every one lies on the ``width x height`` sensor; else an error naming ``source``, the
    first event outside, how many are, and ``hint`` (the likely cause)."""
    off = (events["x"] >= width) | (events["y"] >= height)
    if off.any():
        e = events[np.flatnonzero(off)[0]]
        raise ValueError(f"{source}: event at x={e['x']}, y={e['y']} (t={e['t']} µs) lies outside the "
                         f"{width}x{height} sensor; {int(off.sum())} of {len(events)} events do: {hint}")
    return events


# -- binning -----------------------------------------------------------------------------------------
def _binned(ev: np.ndarray, n_bins: int, sensor_size: tuple, duration, who: str) -> torch.Tensor:
    """Counts in bins ``k = floor(t·n_bins / D)`` over ``[0, D)`` (:mod:`snn.data.frames`, ``duration=D``)."""
    from .frames import FrameSpec, events_to_frames

    if duration is None:
        span = int(ev["t"].max()) + 1 if ev.size else 1
    else:
        span = int(whole_numbers(duration, "duration (µs)", who, 1, _MAX_T_ARRAY))
    if span > _MAX_T_ARRAY // n_bins:
        raise ValueError(f"{who}: duration x n_bins must stay below 2**63 µs, got {span} x {n_bins}")
    return events_to_frames(ev, sensor_size, FrameSpec(n_frames=n_bins, duration=span))


def _dims(who: str, **sizes) -> list[int]:
    return [check_int(v, k, who, 1) for k, v in sizes.items()]


def bin_events(events: np.ndarray, n_bins: int, height: int, width: int, duration: int | None = None) -> torch.Tensor:
    """Count events into frames ``[T=n_bins, 2, H, W]`` (channel 0 = OFF, 1 = ON), float32.

    Bin ``k`` holds events with ``k·D/T <= t < (k+1)·D/T``, ``D = duration`` µs (default: last t + 1).
    Events at ``t >= duration`` lie outside the window and are dropped (not counted).
    Events outside ``H x W`` are an error.
    """
    ev = as_events(events, "bin_events")
    n_bins, height, width = _dims("bin_events", n_bins=n_bins, height=height, width=width)
    if ev.size and (ev["x"].max() >= width or ev["y"].max() >= height):
        raise ValueError(f"bin_events: event coordinates exceed the {height}x{width} sensor "
                         f"(max x {ev['x'].max()}, max y {ev['y'].max()})")
    return _binned(ev, n_bins, (width, height, 2), duration, "bin_events")


def bin_events_channels(events: np.ndarray, n_bins: int, n_channels: int, duration: int | None = None) -> torch.Tensor:
    """Count events of a 1-D sensor (channel = ``x``, e.g. a cochlea) into ``[T=n_bins, n_channels]``;
    bins as in :func:`bin_events` (events at ``t >= duration`` are dropped)."""
    ev = as_events(events, "bin_events_channels")
    n_bins, n_channels = _dims("bin_events_channels", n_bins=n_bins, n_channels=n_channels)
    if ev.size and ev["x"].max() >= n_channels:
        raise ValueError(f"bin_events_channels: channel {ev['x'].max()} >= n_channels={n_channels}")
    ev = ev.copy()
    ev["y"] = 0  # the channel is x alone
    return _binned(ev, n_bins, (n_channels, 1, 1), duration, "bin_events_channels")


# -- saccade converter -------------------------------------------------------------------------------
def saccade_frames(images: torch.Tensor, amplitude: float = 3.0, steps_per_saccade: int = 10) -> torch.Tensor:
    """The images seen by the sensor along the three saccades: ``[3·steps + 1, N, H + 2a, W + 2a]``.

    Sub-pixel shifts use bilinear interpolation (``grid_sample``); frame 0 is the start position.
    """
    if images.dim() != 3:
        raise ValueError(f"saccade_frames: images must be [N, H, W], got {tuple(images.shape)}")
    a = int(np.ceil(amplitude))
    canvas = torch.nn.functional.pad(images.float(), (a, a, a, a)).unsqueeze(1)  # [N,1,H',W']
    n, _, hh, ww = canvas.shape
    pts = []
    for (x0, y0), (x1, y1) in zip(SACCADE_PATH[:-1], SACCADE_PATH[1:]):
        for k in range(steps_per_saccade):
            f = k / steps_per_saccade
            pts.append((x0 + (x1 - x0) * f, y0 + (y1 - y0) * f))
    pts.append(SACCADE_PATH[-1])
    frames = []
    ys, xs = torch.meshgrid(torch.arange(hh, dtype=torch.float32), torch.arange(ww, dtype=torch.float32), indexing="ij")
    for fx, fy in pts:
        # sensor pixel (y, x) sees image point (y - dy, x - dx), image shifted by (dx, dy) - centred on the canvas
        dx, dy = (fx - 0.5) * amplitude, (fy - 0.5) * amplitude
        gx = (xs - dx) / (ww - 1) * 2 - 1
        gy = (ys - dy) / (hh - 1) * 2 - 1
        grid = torch.stack([gx, gy], -1).expand(n, hh, ww, 2)
        frames.append(torch.nn.functional.grid_sample(canvas, grid, mode="bilinear", padding_mode="zeros",
                                                      align_corners=True)[:, 0])
    return torch.stack(frames)


def _dvs_counts(frames: torch.Tensor, threshold: float, eps: float) -> torch.Tensor:
    """Per-step ON/OFF event counts ``[S-1, N, 2, H, W]`` of a DVS watching ``frames [S, N, H, W]``."""
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0 (log-intensity units), got {threshold}")
    logi = torch.log(frames + eps)
    ref = logi[0].clone()
    out = []
    for l in logi[1:]:
        diff = l - ref
        n = torch.floor(diff.abs() / threshold)
        ref = ref + torch.sign(diff) * n * threshold
        out.append(torch.stack([n * (diff < 0), n * (diff > 0)], 1))  # channel 0 = OFF, 1 = ON
    return torch.stack(out)


def image_to_events(image, threshold: float = 0.3, amplitude: float = 3.0, steps_per_saccade: int = 10,
                    saccade_us: int = 100_000, eps: float = 0.1) -> np.ndarray:
    """One image ``[H, W]`` (or ``[1, H, W]``) in [0, 1] → an event array on an ``(H+2a) x (W+2a)`` sensor.

    ``threshold``: log-intensity change per event (contrast threshold, dimensionless);
    ``amplitude``: saccade size (pixels); ``saccade_us``: duration of one saccade (µs);
    ``eps``: offset in ``log(I + eps)`` so that black pixels have a finite log intensity.
    Events of one sub-step share its timestamp; see the module docstring for the model.
    """
    img = torch.as_tensor(image, dtype=torch.float32)
    if img.dim() == 3 and img.shape[0] == 1:
        img = img[0]
    if img.dim() != 2:
        raise ValueError(f"image_to_events: expected an image [H, W] or [1, H, W], got {tuple(img.shape)}")
    if img.numel() and (img.min() < 0 or img.max() > 1):
        raise ValueError("image_to_events: intensities must lie in [0, 1]")
    counts = _dvs_counts(saccade_frames(img[None], amplitude, steps_per_saccade), threshold, eps)[:, 0]
    step_us = saccade_us // steps_per_saccade
    k, p, y, x = (a.numpy() for a in torch.nonzero(counts, as_tuple=True))
    reps = counts[k, p, y, x].long().numpy()
    return make_events(np.repeat(x, reps), np.repeat(y, reps), np.repeat((k + 1) * step_us, reps), np.repeat(p, reps))


def images_to_event_tensor(images: torch.Tensor, n_bins: int = 30, threshold: float = 0.3, amplitude: float = 3.0,
                           steps_per_saccade: int = 10, eps: float = 0.1, chunk: int = 2000) -> torch.Tensor:
    """Batched converter: images ``[N, 1, H, W]`` → binned events ``[T=n_bins, N, 2, H', W']`` (uint8 counts).

    Same model as :func:`image_to_events`; the ``3·steps_per_saccade`` sub-steps are summed into
    ``n_bins`` equal time bins (``n_bins`` must divide them).
    """
    if images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(f"images_to_event_tensor: expected [N, 1, H, W], got {tuple(images.shape)}")
    steps = 3 * steps_per_saccade
    if n_bins < 1 or steps % n_bins:
        raise ValueError(f"n_bins={n_bins} must divide the {steps} sub-steps (3 x steps_per_saccade)")
    parts = []
    for i in range(0, len(images), chunk):
        c = _dvs_counts(saccade_frames(images[i:i + chunk, 0], amplitude, steps_per_saccade), threshold, eps)
        c = c.reshape(n_bins, steps // n_bins, *c.shape[1:]).sum(1)
        parts.append(c.clamp_(max=255).to(torch.uint8))
    return torch.cat(parts, 1)


# -- event data sets ---------------------------------------------------------------------------------
def load_event_dataset(name: str, split: str = "train", n: int | None = None, n_bins: int = 30, seed: int = 0,
                       data_dir=None, **converter_kw):
    """Event versions of the image sets: ``(events [T, N, 2, H', W'] uint8, labels [N] int64)``.

    ``'event-fmnist'``: Fashion-MNIST 28x28 → 34x34 sensor (like N-MNIST); ``'event-digits'``: scikit-learn's
    8x8 digits upsampled to 16x16 → 22x22 sensor (amplitude 3). ``n`` takes a class-stratified-by-chance
    random subset (``seed``); ``None`` keeps the whole split.
    """
    from . import load  # the image sets (snn.data)

    if name not in EVENT_DATASETS:
        raise ValueError(f"unknown event dataset {name!r}; accepted: {EVENT_DATASETS}")
    x, y = load("fashion-mnist" if name == "event-fmnist" else "digits", split, data_dir)
    if n is not None:
        n = check_int(n, "n", "load_event_dataset", 1)
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
        x, y = x[idx], y[idx]
    if name == "event-digits":
        x = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False).clamp(0, 1)
    return images_to_event_tensor(x, n_bins=n_bins, **converter_kw), y
