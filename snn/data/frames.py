r"""Events to frames: count the events of a recording into ``T`` frames, as SpikingJelly's ``integrate_events_*``
and tonic's ``ToFrame`` do.

Events are sorted by time, ``t_0`` is the first event's time, ``N`` the number of events, and event ``i``
(in time order) at ``(x_i, y_i, t_i, p_i)`` adds 1 to pixel ``(k_i, p_i, y_i, x_i)`` of the frames
``[T, P, H, W]`` (``P = 1``: both polarities add to channel 0). Its frame ``k_i`` is, per mode:

``n_frames=M, split_by='time'``     ``Δ = ⌊(t_{N-1} - t_0) / M⌋``, ``k_i = min(⌊(t_i - t_0) / Δ⌋, M - 1)``
                                    (``M - 1`` when ``Δ = 0``): equal time spans, the remainder in the last
                                    frame (SpikingJelly's ``split_by='time'``).
``n_frames=M, split_by='number'``   ``k_i = min(⌊i / ⌊N / M⌋⌋, M - 1)`` (``M - 1`` when ``N < M``): equal event
                                    counts, the remainder in the last frame (SpikingJelly's ``'number'``;
                                    tonic's ``n_event_bins`` drops the remainder).
``n_frames=M, duration=D``          ``k_i = ⌊t_i · M / D⌋`` from ``t = 0``; events at ``t_i >= D`` are dropped:
                                    the same clock for every sample (SHD-style binning).
``time_window=W``                   ``k_i = ⌊(t_i - t_0) / W⌋``, ``T = k_{N-1} + 1`` (tonic's
                                    ``ToFrame(time_window)`` with ``include_incomplete=True``, except that an event exactly at the end
                                    of the last window is kept in a frame of its own rather than dropped).
``event_count=C``                   ``k_i = ⌊i / C⌋``, ``T = ⌈N / C⌉`` (tonic's ``ToFrame(event_count)`` with
                                    ``include_incomplete=True``).

An empty recording gives ``M`` zero frames (``n_frames``) or one zero frame (the other modes). An event outside
the sensor is an error. A 1-D sensor (``H = P = 1``, e.g. the 700 channels of SHD) gives frames ``[T, W]``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from ._validate import check_int
from .events import as_events, check_on_sensor

__all__ = ["FrameSpec", "events_to_frames", "frame_shape", "check_sensor_size"]

_SPLITS = ("time", "number")


def check_sensor_size(sensor_size, who: str) -> tuple:
    """tonic's ``(width, height, polarities)`` (``(width, height)`` means 2 polarities), checked."""
    if not isinstance(sensor_size, (tuple, list)) or len(sensor_size) not in (2, 3):
        raise TypeError(f"{who}: sensor_size must be (width, height) or (width, height, polarities), got "
                        f"{sensor_size!r}")
    w = check_int(sensor_size[0], "sensor_size width", who, 1, 65536)
    h = check_int(sensor_size[1], "sensor_size height", who, 1, 65536)
    p = check_int(sensor_size[2], "sensor_size polarities", who, 1, 2) if len(sensor_size) == 3 else 2
    return w, h, p


def frame_shape(sensor_size) -> tuple:
    """The shape of one frame of a ``(width, height, polarities)`` sensor: ``(P, H, W)``, or ``(W,)`` for 1-D."""
    w, h, p = check_sensor_size(sensor_size, "frame_shape")
    return (w,) if h == 1 and p == 1 else (p, h, w)


@dataclass(frozen=True)
class FrameSpec:
    """How to cut a recording into frames; exactly one of ``n_frames``, ``time_window`` (µs) and
    ``event_count`` is set (see the module docstring). ``split_by`` and ``duration`` (µs) go with ``n_frames``."""
    n_frames: int | None = None
    split_by: str = "time"
    duration: int | None = None
    time_window: int | None = None
    event_count: int | None = None

    def __post_init__(self):
        who = "frames"
        given = [k for k in ("n_frames", "time_window", "event_count") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"{who}: set exactly one of n_frames, time_window (µs), event_count; got "
                             f"{', '.join(given) or 'none'}")
        for k in given + (["duration"] if self.duration is not None else []):
            check_int(getattr(self, k), k if k != "time_window" else "time_window (µs)", who, 1)
        if self.split_by not in _SPLITS:
            raise ValueError(f"{who}: split_by must be one of {_SPLITS}, got {self.split_by!r}")
        if self.n_frames is None and (self.duration is not None or self.split_by != "time"):
            raise ValueError(f"{who}: duration and split_by go with n_frames, not with {given[0]}")
        if self.duration is not None and self.split_by != "time":
            raise ValueError(f"{who}: duration fixes a time axis; it cannot go with split_by='number'")
        if self.duration is not None and self.duration * self.n_frames >= 2 ** 63:
            raise ValueError(f"{who}: duration x n_frames must stay below 2**63 µs, got {self.duration} x "
                             f"{self.n_frames}")

    @classmethod
    def make(cls, frames) -> "FrameSpec":
        """A spec from a :class:`FrameSpec`, a dict of its fields, or an int (that many frames split by time)."""
        if isinstance(frames, cls):
            return frames
        if isinstance(frames, dict):
            unknown = set(frames) - set(cls.__dataclass_fields__)
            if unknown:
                raise TypeError(f"frames: unknown setting(s) {sorted(unknown)}; accepted: "
                                f"{list(cls.__dataclass_fields__)}")
            return cls(**frames)
        if isinstance(frames, (int, np.integer)) and not isinstance(frames, bool):
            return cls(n_frames=int(frames))
        raise TypeError(f"frames must be a FrameSpec, a dict such as {{'n_frames': 16, 'split_by': 'number'}} or "
                        f"{{'time_window': 10000}}, or an int (number of frames), got {type(frames).__name__}")

    def key(self) -> dict:
        return asdict(self)

    def __call__(self, events: np.ndarray, sensor_size) -> torch.Tensor:
        return events_to_frames(events, sensor_size, self)


def _frame_index(t: np.ndarray, spec: FrameSpec) -> tuple[np.ndarray, int]:
    """Frame index of each event (time-sorted) and the number of frames; -1 marks a dropped event."""
    n = t.size
    if spec.n_frames is not None:
        m = spec.n_frames
        if spec.duration is not None:
            k = np.full(n, -1, dtype=np.int64)
            inside = t < spec.duration
            k[inside] = t[inside] * m // spec.duration
        elif n == 0:
            k = np.zeros(0, np.int64)
        elif spec.split_by == "number":
            step = n // m
            k = np.minimum(np.arange(n) // step, m - 1) if step else np.full(n, m - 1)
        else:
            step = (int(t[-1]) - int(t[0])) // m
            k = np.minimum((t - t[0]) // step, m - 1) if step else np.full(n, m - 1)
        return k, m
    if spec.time_window is not None:
        k = (t - t[0]) // spec.time_window if n else np.zeros(0, np.int64)
    else:
        k = np.arange(n) // spec.event_count
    return k, int(k[-1]) + 1 if n else 1


def events_to_frames(events: np.ndarray, sensor_size, spec: FrameSpec | dict | int) -> torch.Tensor:
    """Event counts ``[T, *frame_shape(sensor_size)]`` (float32) of an event array, cut per ``spec``."""
    spec = FrameSpec.make(spec)
    ev = as_events(events, "events_to_frames")
    w, h, p = check_sensor_size(sensor_size, "events_to_frames")
    check_on_sensor(ev, w, h, "events_to_frames", f"sensor_size {tuple(sensor_size)} is too small for them")
    t = ev["t"]
    if t.size > 1 and (np.diff(t) < 0).any():
        ev = ev[np.argsort(t, kind="stable")]
        t = ev["t"]
    k, n_frames = _frame_index(t, spec)
    keep = k >= 0
    pol = ev["p"][keep].astype(np.int64) if p == 2 else 0
    flat = ((k[keep] * p + pol) * h + ev["y"][keep].astype(np.int64)) * w + ev["x"][keep].astype(np.int64)
    counts = np.bincount(flat, minlength=n_frames * p * h * w).astype(np.float32)
    return torch.from_numpy(counts.reshape(n_frames, *frame_shape((w, h, p))))
