"""Event streams: the N-MNIST binary format, a generic ``(x, y, t, p)`` array, binning, and an
image-to-events converter that moves a static image through three saccades (how N-MNIST was recorded).

Event array
    A numpy structured array with fields ``x`` (uint16, column), ``y`` (uint16, row),
    ``t`` (int64, microseconds) and ``p`` (int8, polarity: 1 = ON, 0 = OFF), see :data:`EVENT_DTYPE`.

N-MNIST file format (Orchard et al. 2015)
    One 40-bit (5-byte) record per event, big-endian bit fields::

        byte 0: x (8 bits)           byte 1: y (8 bits)
        byte 2: bit 7 = polarity, bits 6..0 = timestamp bits 22..16
        bytes 3-4: timestamp bits 15..0          (timestamp in microseconds, 23 bits)

Saccade converter (a simulated dynamic vision sensor)
    The image ``I`` (in [0, 1]) is placed on a canvas padded by ``amplitude`` pixels and moved along a
    triangle of three straight saccades (N-MNIST: 100 ms each). At each of ``steps_per_saccade``
    sub-steps the sensor sees ``L = log(I_shifted + eps)`` (bilinear sub-pixel shift). Each pixel keeps a
    reference level ``L_ref``; it emits ``n = floor(|L - L_ref| / threshold)`` events of polarity
    ``sign(L - L_ref)`` (ON if positive) and moves ``L_ref`` by ``n·threshold`` towards ``L``. A uniform
    region does not change when shifted, so events appear only near edges (within ``amplitude`` pixels).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..io import atomic_write_bytes

__all__ = ["EVENT_DTYPE", "make_events", "read_nmnist", "write_nmnist", "encode_nmnist", "decode_nmnist",
           "bin_events", "bin_events_channels", "saccade_frames", "image_to_events", "images_to_event_tensor",
           "load_event_dataset", "EVENT_DATASETS", "SACCADE_PATH"]

EVENT_DTYPE = np.dtype([("x", np.uint16), ("y", np.uint16), ("t", np.int64), ("p", np.int8)])
_MAX_T = (1 << 23) - 1  # 23-bit timestamps in the N-MNIST format (µs)
# Triangle of the three N-MNIST saccades, as fractions of the amplitude (dx, dy) at its corners.
SACCADE_PATH = ((0.0, 0.0), (0.5, 1.0), (1.0, 0.0), (0.0, 0.0))
EVENT_DATASETS = ("event-fmnist", "event-digits")


def make_events(x, y, t, p) -> np.ndarray:
    """A structured event array from four equal-length sequences; checks ranges and sorts by time (stable)."""
    x, y, t, p = (np.asarray(a) for a in (x, y, t, p))
    if not (x.shape == y.shape == t.shape == p.shape) or x.ndim != 1:
        raise ValueError(f"make_events: x, y, t, p must be 1-D and equally long, got shapes "
                         f"{x.shape}, {y.shape}, {t.shape}, {p.shape}")
    if x.size and (x.min() < 0 or y.min() < 0 or t.min() < 0):
        raise ValueError("make_events: x, y and t must be >= 0")
    if x.size and not np.isin(p, (0, 1)).all():
        raise ValueError("make_events: polarity p must be 0 (OFF) or 1 (ON)")
    ev = np.empty(x.size, dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = x, y, t, p
    return ev[np.argsort(ev["t"], kind="stable")]


# -- N-MNIST binary format ---------------------------------------------------------------------------
def encode_nmnist(events: np.ndarray) -> bytes:
    """Events → N-MNIST bytes (5 per event). x, y must fit 8 bits and t 23 bits (µs)."""
    ev = np.asarray(events)
    if ev.dtype != EVENT_DTYPE:
        raise TypeError(f"encode_nmnist: expected an event array of dtype {EVENT_DTYPE}, got {ev.dtype}")
    if ev.size and (ev["x"].max() > 255 or ev["y"].max() > 255):
        raise ValueError("encode_nmnist: x and y must be < 256 in the N-MNIST format")
    if ev.size and (ev["t"].max() > _MAX_T or ev["t"].min() < 0):
        raise ValueError(f"encode_nmnist: t must lie in [0, {_MAX_T}] µs (23 bits) in the N-MNIST format")
    t = ev["t"].astype(np.uint32)
    rec = np.empty((ev.size, 5), dtype=np.uint8)
    rec[:, 0] = ev["x"]
    rec[:, 1] = ev["y"]
    rec[:, 2] = ((ev["p"].astype(np.uint32) & 1) << 7 | (t >> 16) & 0x7F).astype(np.uint8)
    rec[:, 3] = (t >> 8) & 0xFF
    rec[:, 4] = t & 0xFF
    return rec.tobytes()


def decode_nmnist(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """N-MNIST bytes → events (sorted by time)."""
    if len(data) % 5:
        raise ValueError(f"{source}: N-MNIST data must be a multiple of 5 bytes (40-bit records), got {len(data)}")
    rec = np.frombuffer(data, dtype=np.uint8).reshape(-1, 5).astype(np.uint32)
    t = (rec[:, 2] & 0x7F) << 16 | rec[:, 3] << 8 | rec[:, 4]
    return make_events(rec[:, 0], rec[:, 1], t, rec[:, 2] >> 7)


def write_nmnist(path, events: np.ndarray) -> None:
    """Write events to an N-MNIST ``.bin`` file (atomically)."""
    atomic_write_bytes(path, encode_nmnist(events))


def read_nmnist(path) -> np.ndarray:
    """Read an N-MNIST ``.bin`` file into an event array."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"N-MNIST event file not found: {path}")
    return decode_nmnist(path.read_bytes(), str(path))


# -- binning -----------------------------------------------------------------------------------------
def _time_bins(t: np.ndarray, n_bins: int, duration: int | None) -> np.ndarray:
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    span = int(duration) if duration is not None else (int(t.max()) + 1 if t.size else 1)
    if span <= 0:
        raise ValueError(f"duration must be > 0 µs, got {duration}")
    return np.minimum((t.astype(np.int64) * n_bins) // span, n_bins - 1)


def bin_events(events: np.ndarray, n_bins: int, height: int, width: int, duration: int | None = None) -> torch.Tensor:
    """Count events into frames ``[T=n_bins, 2, H, W]`` (channel 0 = OFF, 1 = ON), float32.

    Bin ``k`` holds events with ``k·D/T <= t < (k+1)·D/T``, ``D = duration`` µs (default: last t + 1).
    Events outside ``H x W`` are an error.
    """
    ev = np.asarray(events)
    if ev.size and (ev["x"].max() >= width or ev["y"].max() >= height):
        raise ValueError(f"bin_events: event coordinates exceed the {height}x{width} sensor "
                         f"(max x {ev['x'].max()}, max y {ev['y'].max()})")
    k = _time_bins(ev["t"], n_bins, duration)
    out = np.zeros((n_bins, 2, height, width), dtype=np.float32)
    np.add.at(out, (k, ev["p"].astype(np.int64), ev["y"].astype(np.int64), ev["x"].astype(np.int64)), 1.0)
    return torch.from_numpy(out)


def bin_events_channels(events: np.ndarray, n_bins: int, n_channels: int, duration: int | None = None) -> torch.Tensor:
    """Count events of a 1-D sensor (channel = ``x``, e.g. a cochlea) into ``[T=n_bins, n_channels]``."""
    ev = np.asarray(events)
    if ev.size and ev["x"].max() >= n_channels:
        raise ValueError(f"bin_events_channels: channel {ev['x'].max()} >= n_channels={n_channels}")
    k = _time_bins(ev["t"], n_bins, duration)
    out = np.zeros((n_bins, n_channels), dtype=np.float32)
    np.add.at(out, (k, ev["x"].astype(np.int64)), 1.0)
    return torch.from_numpy(out)


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
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
        x, y = x[idx], y[idx]
    if name == "event-digits":
        x = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False).clamp(0, 1)
    return images_to_event_tensor(x, n_bins=n_bins, **converter_kw), y
