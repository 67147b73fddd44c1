"""The data set of event recordings: samples read from files, converted to frames, cached on disk.

Sample ``i``: its events are read (``read(i)``), downsampled when asked (deterministic, so cached with the
frames), passed through ``event_transform`` (random augmentations: these bypass the cache, since every call
differs; one that changes the sensor says so by ``output_sensor_size``, see :mod:`snn.data.augment`), counted
into frames ``[T, *input_shape]`` by the :class:`snn.data.frames.FrameSpec`, and passed
through ``transform`` (frame augmentations, after the cache). ``y`` is the class index.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ._validate import check_int
from .augment import downsample_events, output_sensor_size
from .datasets import LabeledDataset
from .frame_cache import FrameCache, default_cache_dir
from .frames import FrameSpec, check_sensor_size, frame_shape
from .images import check_labels

__all__ = ["EventDataset", "check_sensor_option", "EVENT_OPTIONS"]

EVENT_OPTIONS = ("frames", "n_frames", "cache", "cache_dir", "downsample", "event_transform", "transform")


def check_sensor_option(sensor_size, native, name: str, what: str) -> tuple:
    """A ``sensor_size`` option: ``None`` keeps ``native``; a sensor smaller than the recordings' is an error
    (the option cannot shrink the recordings: ``downsample`` or a crop transform does)."""
    native = check_sensor_size(native, name)
    if sensor_size is None:
        return native
    w, h, p = check_sensor_size(tuple(sensor_size)[:2] + (native[2],) if len(sensor_size) == 2 else sensor_size,
                                name)
    if w < native[0] or h < native[1] or p != native[2]:
        raise ValueError(f"{name}: sensor_size {tuple(sensor_size)} disagrees with {what}, recorded on a "
                         f"{native[0]}x{native[1]} sensor with {native[2]} polarities; to change the input shape "
                         f"use downsample=<factor> or a crop transform (snn.data.augment)")
    return w, h, p


def _frame_spec(frames, default: dict, n_frames, name: str) -> FrameSpec:
    """``frames`` as given, else the data set's default with ``n_frames`` (when given) in place of its own."""
    if frames is not None:
        if n_frames is not None:
            raise ValueError(f"{name}: give frames or n_frames, not both (frames={frames!r}, n_frames={n_frames!r})")
        return FrameSpec.make(frames)
    spec = dict(default or {})
    if n_frames is not None:
        spec["n_frames"] = n_frames
    return FrameSpec.make(spec)


class EventDataset(LabeledDataset):
    """Base of the event sets. Subclasses list their samples (``self.targets``) and implement
    ``read(i) -> events`` and ``identity(i) -> dict`` (what the sample's content depends on, for the cache).
    Frames: ``frames`` (a :class:`FrameSpec`, its dict, or a number of frames), else the set's
    ``default_frames`` with ``n_frames`` frames when given."""

    sequence = True
    reader_version = 1

    def __init__(self, *, name: str, classes, sensor_size, targets, frames=None, default_frames=None,
                 n_frames: int | None = None, cache=True, cache_dir=None, downsample: int = 1,
                 event_transform: Callable | None = None, transform: Callable | None = None):
        self.name, self.classes = name, tuple(classes)
        self.targets = torch.as_tensor(np.asarray(targets, dtype=np.int64))
        check_labels(self.targets.numpy(), len(self.classes), f"{name} labels")
        self.frames = _frame_spec(frames, default_frames, n_frames, name)
        self.downsample = check_int(downsample, "downsample", name, 1)
        w, h, p = check_sensor_size(sensor_size, name)
        self.recorded_sensor_size = (w, h, p)
        self.sensor_size = (-(-w // self.downsample), -(-h // self.downsample), p)
        for label, fn in (("event_transform", event_transform), ("transform", transform)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name}: {label} must be callable, got {type(fn).__name__}")
        self.event_transform, self.transform = event_transform, transform
        self.frame_sensor_size = check_sensor_size(output_sensor_size(event_transform, self.sensor_size), name)
        self.input_shape = frame_shape(self.frame_sensor_size)
        if cache is True:
            cache = FrameCache(default_cache_dir() / name if cache_dir is None else cache_dir)
        elif cache is not False and not isinstance(cache, FrameCache):
            raise TypeError(f"{name}: cache must be True, False or a snn.data.frame_cache.FrameCache, got "
                            f"{type(cache).__name__}")
        self.cache = cache or None

    def __len__(self) -> int:
        return len(self.targets)

    def read(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def identity(self, i: int) -> dict:
        raise NotImplementedError

    def events(self, i: int) -> np.ndarray:
        """Sample ``i``'s events as read (before downsampling and transforms)."""
        return self.read(self._index(i))

    def _index(self, i) -> int:
        i = check_int(i, "index", self.name)
        if not -len(self) <= i < len(self):
            raise IndexError(f"{self.name}: index {i} out of range for {len(self)} samples")
        return i % len(self)

    def _prepared(self, i: int) -> np.ndarray:
        ev = self.read(i)
        return downsample_events(ev, self.downsample) if self.downsample > 1 else ev

    def _frames(self, i: int) -> torch.Tensor:
        if self.event_transform is not None:
            return self.frames(self.event_transform(self._prepared(i)), self.frame_sensor_size)
        build = lambda: self.frames(self._prepared(i), self.sensor_size)  # noqa: E731
        if self.cache is None:
            return build()
        key = {"dataset": self.name, "reader": self.reader_version, "sample": self.identity(i),
               "frames": self.frames.key(), "downsample": self.downsample, "sensor_size": list(self.sensor_size)}
        return self.cache.get(key, build, self.input_shape)

    def __getitem__(self, i):
        i = self._index(i)
        x = self._frames(i)
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.targets[i])
