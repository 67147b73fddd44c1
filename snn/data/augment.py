r"""Event and frame augmentations.

Event transforms take and return an event array (fields ``x, y, t, p``, sorted by time); pass them as a data
set's ``event_transform`` (random ones bypass the frame cache). Any tonic transform that maps such arrays to
such arrays works there too (``tonic.transforms.TimeJitter``, ``SpatialJitter``, ...). A transform that changes
the sensor (crop, downsample) has ``output_sensor_size(sensor_size)``, which the data set uses for its frames.

``RandomFlip(p_lr, p_ud)``      ``x ← W-1-x`` with probability ``p_lr``, ``y ← H-1-y`` with ``p_ud`` (per sample)
``RandomCrop(size)``            a random ``w x h`` window ``[x_0, x_0+w) x [y_0, y_0+h)``; events in it move to
                                ``(x-x_0, y-y_0)``, the others are dropped; the sensor becomes ``w x h``
``RandomTranslate(max_shift)``  ``x ← x+dx``, ``y ← y+dy`` with ``dx, dy`` uniform in ``[-max, max]``; events
                                leaving the sensor are dropped
``DropEvent(p)``                each event dropped independently with probability ``p``
``Denoise(filter_time)``        an event is kept when one of its 4 neighbour pixels had an earlier event (earlier
                                in the stream) less than ``filter_time`` µs before it (tonic's ``Denoise``
                                rule, vectorised; tonic also keeps events in the first ``filter_time`` µs)
``Downsample(factor)``          ``x ← ⌊x/f⌋``, ``y ← ⌊y/f⌋``; the sensor becomes ``⌈W/f⌉ x ⌈H/f⌉``

Frame transforms take and return frames ``[T, C, H, W]`` (the same draw for every time step); pass them as
``transform``: ``FrameRandomFlip(p)`` (horizontal), ``FrameRandomCrop(padding)`` (zero-pad by ``padding`` on
each side, then crop back to ``H x W`` at a random offset, as torchvision's ``RandomCrop(size, padding)``).

Randomness comes from torch's generator (``generator=`` or the global one), which DataLoader seeds per worker.
"""
from __future__ import annotations

import numpy as np
import torch

from ..checks import check_range
from ._validate import check_int
from .events import as_events
from .frames import check_sensor_size

__all__ = ["downsample_events", "Compose", "RandomFlip", "RandomCrop", "RandomTranslate", "DropEvent", "Denoise",
           "Downsample", "FrameRandomFlip", "FrameRandomCrop", "output_sensor_size"]


def downsample_events(events: np.ndarray, factor: int) -> np.ndarray:
    """Spatial downsampling by an integer ``factor``: ``x ← ⌊x / f⌋``, ``y ← ⌊y / f⌋``."""
    out = events.copy()
    out["x"] //= factor
    out["y"] //= factor
    return out


def output_sensor_size(transform, sensor_size) -> tuple:
    """The sensor after ``transform`` (unchanged for transforms that do not say)."""
    fn = getattr(transform, "output_sensor_size", None)
    return tuple(fn(sensor_size)) if fn is not None else tuple(sensor_size)


def _uniform(generator) -> float:
    return float(torch.rand((), generator=generator))


def _randint(low: int, high: int, generator) -> int:
    """Uniform integer in ``[low, high]``."""
    return int(torch.randint(low, high + 1, (), generator=generator))


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: every transform must be callable, got {type(t).__name__}")

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def output_sensor_size(self, sensor_size):
        for t in self.transforms:
            sensor_size = output_sensor_size(t, sensor_size)
        return sensor_size


class _SensorTransform:
    def __init__(self, sensor_size, generator=None):
        self.sensor_size = check_sensor_size(sensor_size, type(self).__name__)
        self.generator = generator


class RandomFlip(_SensorTransform):
    """Mirror left-right with probability ``p_lr`` and up-down with ``p_ud``."""

    def __init__(self, sensor_size, p_lr: float = 0.5, p_ud: float = 0.0, generator=None):
        super().__init__(sensor_size, generator)
        self.p_lr = check_range(p_lr, "p_lr", "RandomFlip", 0, 1)
        self.p_ud = check_range(p_ud, "p_ud", "RandomFlip", 0, 1)

    def __call__(self, events):
        ev = as_events(events, "RandomFlip").copy()
        w, h, _ = self.sensor_size
        if _uniform(self.generator) < self.p_lr:
            ev["x"] = w - 1 - ev["x"]
        if _uniform(self.generator) < self.p_ud:
            ev["y"] = h - 1 - ev["y"]
        return ev


class RandomCrop(_SensorTransform):
    """A random ``size = (w, h)`` window of the sensor."""

    def __init__(self, sensor_size, size, generator=None):
        super().__init__(sensor_size, generator)
        if not isinstance(size, (tuple, list)) or len(size) != 2:
            raise TypeError(f"RandomCrop: size must be (width, height), got {size!r}")
        w, h, _ = self.sensor_size
        self.size = (check_int(size[0], "size width", "RandomCrop", 1, w),
                     check_int(size[1], "size height", "RandomCrop", 1, h))

    def output_sensor_size(self, sensor_size):
        return (*self.size, check_sensor_size(sensor_size, "RandomCrop")[2])

    def __call__(self, events):
        ev = as_events(events, "RandomCrop")
        (w, h, _), (cw, ch) = self.sensor_size, self.size
        x0, y0 = _randint(0, w - cw, self.generator), _randint(0, h - ch, self.generator)
        x, y = ev["x"].astype(np.int64) - x0, ev["y"].astype(np.int64) - y0
        keep = (x >= 0) & (x < cw) & (y >= 0) & (y < ch)
        out = ev[keep].copy()
        out["x"], out["y"] = x[keep], y[keep]
        return out


class RandomTranslate(_SensorTransform):
    """Shift by ``(dx, dy)`` uniform in ``[-max_shift, max_shift]`` (an int or ``(max_dx, max_dy)``)."""

    def __init__(self, sensor_size, max_shift, generator=None):
        super().__init__(sensor_size, generator)
        pair = tuple(max_shift) if isinstance(max_shift, (tuple, list)) else (max_shift, max_shift)
        if len(pair) != 2:
            raise TypeError(f"RandomTranslate: max_shift must be an int or (max_dx, max_dy), got {max_shift!r}")
        self.max_shift = tuple(check_int(v, "max_shift", "RandomTranslate", 0) for v in pair)

    def __call__(self, events):
        ev = as_events(events, "RandomTranslate")
        w, h, _ = self.sensor_size
        dx = _randint(-self.max_shift[0], self.max_shift[0], self.generator)
        dy = _randint(-self.max_shift[1], self.max_shift[1], self.generator)
        x, y = ev["x"].astype(np.int64) + dx, ev["y"].astype(np.int64) + dy
        keep = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        out = ev[keep].copy()
        out["x"], out["y"] = x[keep], y[keep]
        return out


class DropEvent:
    """Drop each event independently with probability ``p``."""

    def __init__(self, p: float, generator=None):
        self.p = check_range(p, "p", "DropEvent", 0, 1)
        self.generator = generator

    def __call__(self, events):
        ev = as_events(events, "DropEvent")
        keep = torch.rand(len(ev), generator=self.generator).numpy() >= self.p
        return ev[keep]


class Denoise:
    """Keep events with a recent neighbour (see the module docstring); ``filter_time`` in µs."""

    def __init__(self, filter_time: int):
        self.filter_time = check_int(filter_time, "filter_time (µs)", "Denoise", 1)

    def __call__(self, events):
        ev = as_events(events, "Denoise")
        n = len(ev)
        if n == 0:
            return ev
        if (np.diff(ev["t"]) < 0).any():
            ev = ev[np.argsort(ev["t"], kind="stable")]
        stride = int(ev["x"].max()) + 2  # a padding column keeps x-1 and x+1 from wrapping to another row
        pixel = ev["y"].astype(np.int64) * stride + ev["x"].astype(np.int64)
        order = np.arange(n, dtype=np.int64)
        keys = np.sort(pixel * n + order)  # events grouped by pixel, in stream order within a pixel
        keep = np.zeros(n, dtype=bool)
        for offset in (-1, 1, -stride, stride):
            neighbour = pixel + offset
            pos = np.searchsorted(keys, neighbour * n + order) - 1  # that pixel's last event before this one
            found = pos >= 0
            prev = keys[np.maximum(pos, 0)]
            found &= prev // n == neighbour
            j = prev % n
            keep |= found & (ev["t"] - ev["t"][j] < self.filter_time)
        return ev[keep]


class Downsample:
    """Integer spatial downsampling (see the module docstring)."""

    def __init__(self, factor: int):
        self.factor = check_int(factor, "factor", "Downsample", 1)

    def output_sensor_size(self, sensor_size):
        w, h, p = check_sensor_size(sensor_size, "Downsample")
        return -(-w // self.factor), -(-h // self.factor), p

    def __call__(self, events):
        return downsample_events(as_events(events, "Downsample"), self.factor)


def _check_frames(x, who: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{who}: expected frames [T, C, H, W], got {shape}")
    return x


class FrameRandomFlip:
    """Mirror all frames left-right with probability ``p``."""

    def __init__(self, p: float = 0.5, generator=None):
        self.p = check_range(p, "p", "FrameRandomFlip", 0, 1)
        self.generator = generator

    def __call__(self, x):
        x = _check_frames(x, "FrameRandomFlip")
        return x.flip(-1) if _uniform(self.generator) < self.p else x


class FrameRandomCrop:
    """Zero-pad every frame by ``padding`` pixels, then crop back to ``H x W`` at one random offset."""

    def __init__(self, padding: int, generator=None):
        self.padding = check_int(padding, "padding", "FrameRandomCrop", 0)
        self.generator = generator

    def __call__(self, x):
        x = _check_frames(x, "FrameRandomCrop")
        pad, (h, w) = self.padding, x.shape[-2:]
        i, j = _randint(0, 2 * pad, self.generator), _randint(0, 2 * pad, self.generator)
        return torch.nn.functional.pad(x, (pad, pad, pad, pad))[..., i:i + h, j:j + w]
