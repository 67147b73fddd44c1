"""Any tonic data set as an ``snn.data`` set: ``from_tonic(ds, frames=...)``.

Sample ``i`` is ``ds[i]`` = ``(events, target)``. Events (a structured array with ``x``, ``t``, ``p`` and
usually ``y``; tonic's boolean polarities and float times are accepted, times in µs) are counted into frames by
``frames`` (see :mod:`snn.data.frames`) on ``ds.sensor_size`` (tonic's ``(W, H, P)``; pass ``sensor_size``
when ``ds`` has none, as tonic's N-Caltech101). When ``ds`` already turns events into frames
(``tonic.transforms.ToFrame``), pass ``frames=None``: its arrays ``[T, ...]`` are returned as float tensors.
Targets must be class indices or names in ``classes`` (``ds.classes`` by default: a list, or tonic's
``{name: index}`` dict).
"""
from __future__ import annotations

import numpy as np
import torch

from .augment import output_sensor_size
from .datasets import LabeledDataset
from .events import EVENT_DTYPE
from .frames import FrameSpec, check_sensor_size, frame_shape

__all__ = ["from_tonic", "TonicDataset", "tonic_events"]


def tonic_events(events: np.ndarray, who: str) -> np.ndarray:
    """A tonic event array as an :data:`snn.data.events.EVENT_DTYPE` array (``y = 0`` for 1-D sensors)."""
    names = getattr(getattr(events, "dtype", None), "names", None) or ()
    if not {"x", "t", "p"} <= set(names):
        raise TypeError(f"{who}: expected tonic events (a structured array with fields x, t, p and optionally y), "
                        f"got {getattr(events, 'dtype', type(events).__name__)}; if the data set already makes "
                        f"frames, pass frames=None")
    t = np.asarray(events["t"])
    if t.dtype.kind == "f":
        if t.size and (not np.isfinite(t).all() or t.min() < 0):
            raise ValueError(f"{who}: event times must be finite microseconds >= 0")
        t = np.rint(t)
    out = np.empty(len(events), dtype=EVENT_DTYPE)
    for field, values in (("x", events["x"]), ("y", events["y"] if "y" in names else 0), ("t", t),
                          ("p", np.asarray(events["p"]).astype(np.int64) != 0)):
        out[field] = values
    return out


def _class_names(ds, classes) -> tuple:
    classes = getattr(ds, "classes", None) if classes is None else classes
    if isinstance(classes, dict):
        return tuple(name for name, _ in sorted(classes.items(), key=lambda kv: kv[1]))
    if classes is None or len(classes) == 0:
        raise ValueError(f"from_tonic: {type(ds).__name__} does not list its classes; pass classes=[...] (class "
                         f"names, index = label)")
    return tuple(c.decode(errors="replace") if isinstance(c, bytes) else str(c) for c in classes)


class TonicDataset(LabeledDataset):
    """A tonic data set with the ``snn.data`` attributes; see the module docstring."""

    sequence = True

    def __init__(self, ds, frames=None, *, classes=None, sensor_size=None, event_transform=None, transform=None,
                 name: str | None = None):
        if not hasattr(ds, "__getitem__") or not hasattr(ds, "__len__"):
            raise TypeError(f"from_tonic: expected a tonic data set (indexable, with a length), got "
                            f"{type(ds).__name__}")
        self.ds, self.name = ds, name or type(ds).__name__
        self.classes = _class_names(ds, classes)
        self.frames = None if frames is None else FrameSpec.make(frames)
        self.event_transform, self.transform = event_transform, transform
        sensor = getattr(ds, "sensor_size", None) if sensor_size is None else sensor_size
        if self.frames is not None:
            if sensor is None:
                raise ValueError(f"from_tonic: {self.name} has no sensor_size (its recordings differ in size); pass "
                                 f"sensor_size=(width, height, polarities)")
            self.sensor_size = check_sensor_size(output_sensor_size(event_transform, tuple(sensor)), "from_tonic")
            self.input_shape = frame_shape(self.sensor_size)
        else:
            self.sensor_size = None if sensor is None else tuple(sensor)
            self.input_shape = tuple(self._frames(ds[0][0]).shape[1:]) if len(ds) else ()

    def __len__(self) -> int:
        return len(self.ds)

    def _frames(self, sample) -> torch.Tensor:
        if self.frames is None:
            x = torch.as_tensor(np.asarray(sample), dtype=torch.float32)
            if x.dim() < 2:
                raise ValueError(f"from_tonic: {self.name} returned an array of shape {tuple(x.shape)}; with "
                                 f"frames=None it must make frames [T, ...] (tonic.transforms.ToFrame)")
            return x
        ev = tonic_events(sample, f"from_tonic({self.name})")
        if self.event_transform is not None:
            ev = self.event_transform(ev)
        return self.frames(ev, self.sensor_size)

    def _label(self, target, i: int) -> int:
        if isinstance(target, (bytes, str)):
            name = target.decode() if isinstance(target, bytes) else target
            if name not in self.classes:
                raise ValueError(f"from_tonic: sample {i} of {self.name} has target {name!r}, not one of its "
                                 f"{len(self.classes)} classes")
            return self.classes.index(name)
        label = int(np.asarray(target))
        if not 0 <= label < len(self.classes):
            raise ValueError(f"from_tonic: sample {i} of {self.name} has label {label}, outside "
                             f"0..{len(self.classes) - 1}")
        return label

    def __getitem__(self, i):
        sample, target = self.ds[i]
        x = self._frames(sample)
        if self.transform is not None:
            x = self.transform(x)
        return x, self._label(target, i)


def from_tonic(ds, frames=None, **kw) -> TonicDataset:
    """Wrap a tonic data set; see the module docstring (``kw``: ``classes``, ``sensor_size``,
    ``event_transform``, ``transform``, ``name``)."""
    return TonicDataset(ds, frames, **kw)
