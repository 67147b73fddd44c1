"""The Heidelberg spiking data sets (Cramer et al. 2020), read from their HDF5 files with h5py.

``'shd'``  Spiking Heidelberg Digits, 20 classes (English and German digits): ``root/shd_train.h5``,
           ``root/shd_test.h5``.
``'ssc'``  Spiking Speech Commands, 35 classes: ``root/ssc_train.h5``, ``root/ssc_valid.h5``, ``root/ssc_test.h5``.

Published at https://zenkelab.org/resources/spiking-heidelberg-datasets-shd/ (the ``.h5.gz``/``.h5.zip``
archives; unpack them into ``root``; ``None``: ``$SNN_DATA/SHD`` or ``$SNN_DATA/SSC``).

File layout (one HDF5 file per split): ``spikes/times`` (variable-length float arrays, seconds) and
``spikes/units`` (variable-length integer arrays, cochlea channel 0..699), one pair per sample; ``labels``
(integers ``[N]``); ``extra/keys`` (class names, optional here). Spike ``j`` of sample ``i`` becomes the
event ``x = units[i][j]``, ``t = round(times[i][j] · 10⁶)`` µs, ``p = 1`` on a 700x1 sensor with one
polarity, so frames are ``[T, 700]``. Default frames: 100 bins over the first 1.4 s (``duration``), the
binning of Zenke's SHD tutorials.
"""
from __future__ import annotations

import os

import numpy as np

from .event_dataset import EVENT_OPTIONS, EventDataset, check_sensor_option
from .events import make_events
from .frame_cache import file_identity
from .neuromorphic import missing, resolve_root
from .registry import register

__all__ = ["HeidelbergSpikes", "SHD_CLASSES_COUNT", "SSC_CLASSES_COUNT"]

SHD_CLASSES_COUNT, SSC_CLASSES_COUNT = 20, 35
CHANNELS = 700
_WHERE = "https://zenkelab.org/resources/spiking-heidelberg-datasets-shd/ (Cramer et al. 2020)"
_KEYS = ("spikes/times", "spikes/units", "labels")


def _layout(prefix: str, splits) -> str:
    return (f"root/{prefix}_<{'|'.join(splits)}>.h5, each with the datasets spikes/times, spikes/units, labels "
            f"(the .h5.gz/.h5.zip archives unpacked)")


def _class_names(f, count: int) -> tuple:
    """``extra/keys`` when it names ``count`` classes, else ``'0'``, ``'1'``, ..."""
    keys = f.get("extra/keys")
    if keys is not None and len(keys) == count:
        return tuple(k.decode(errors="replace") if isinstance(k, bytes) else str(k) for k in keys[()])
    return tuple(str(k) for k in range(count))


class HeidelbergSpikes(EventDataset):
    """SHD or SSC (``which``); see the module docstring."""

    def __init__(self, which: str, root=None, split="train", frames=None, sensor_size=None, **kw):
        import h5py

        prefix, count = {"shd": ("shd", SHD_CLASSES_COUNT), "ssc": ("ssc", SSC_CLASSES_COUNT)}[which]
        splits = ("train", "test") if which == "shd" else ("train", "valid", "test")
        layout = _layout(prefix, splits)
        root = resolve_root(root, which.upper(), which, layout, _WHERE)
        self.path = root / f"{prefix}_{split}.h5"
        if not self.path.is_file():
            raise missing(self.path, which, layout, _WHERE)
        try:
            with h5py.File(self.path, "r") as f:
                absent = [k for k in _KEYS if k not in f]
                if absent:
                    raise ValueError(f"{self.path}: not a {which.upper()} file: it lacks {', '.join(absent)} "
                                     f"(expected layout: {layout})")
                lengths = {k: len(f[k]) for k in _KEYS}
                labels = np.asarray(f["labels"][()], dtype=np.int64)
                classes = _class_names(f, count)
        except OSError as e:
            raise ValueError(f"{self.path}: not a readable HDF5 file ({e})") from None
        if len(set(lengths.values())) != 1:
            raise ValueError(f"{self.path}: spikes/times, spikes/units and labels must hold one entry per sample, "
                             f"got {lengths}")
        self._h5 = self._pid = None
        sensor = check_sensor_option(sensor_size, (CHANNELS, 1, 1), which, which.upper())
        super().__init__(name=which, classes=classes, sensor_size=sensor, targets=labels,
                         frames=frames, default_frames={"n_frames": 100, "duration": 1_400_000}, **kw)

    def _file(self):
        """The HDF5 file, opened once per process (DataLoader workers each open their own)."""
        import h5py

        if self._h5 is None or self._pid != os.getpid():
            self._h5, self._pid = h5py.File(self.path, "r"), os.getpid()
        return self._h5

    def close(self) -> None:
        """Close the HDF5 file (it is opened again on the next read)."""
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_h5"] = state["_pid"] = None
        return state

    def identity(self, i):
        return {"file": file_identity(self.path), "index": int(i)}

    def read(self, i):
        f = self._file()
        times = np.asarray(f["spikes/times"][i], dtype=np.float64)
        units = np.asarray(f["spikes/units"][i])
        where = f"{self.path}, sample {i}"
        if times.shape != units.shape or times.ndim != 1:
            raise ValueError(f"{where}: spikes/times and spikes/units must be equally long, got {times.shape} and "
                             f"{units.shape}")
        if times.size and (not np.isfinite(times).all() or times.min() < 0):
            raise ValueError(f"{where}: spike times must be finite seconds >= 0")
        width = self.recorded_sensor_size[0]
        if units.size and (units.min() < 0 or units.max() >= width):
            raise ValueError(f"{where}: unit {units.max() if units.max() >= width else units.min()} is outside the "
                             f"{width} cochlea channels 0..{width - 1}")
        return make_events(units, np.zeros_like(units), np.rint(times * 1e6), np.ones_like(units))


def shd(root=None, split="train", **options):
    """Spiking Heidelberg Digits; see the module docstring."""
    return HeidelbergSpikes("shd", root, split, **options)


def ssc(root=None, split="train", **options):
    """Spiking Speech Commands; see the module docstring."""
    return HeidelbergSpikes("ssc", root, split, **options)


_OPTIONS = ("sensor_size",) + EVENT_OPTIONS
register("shd", shd, modality="audio", description="Spiking Heidelberg Digits (20 classes), frames [T, 700]",
         source=_WHERE, extra_options=_OPTIONS)
register("ssc", ssc, splits=("train", "valid", "test"), modality="audio",
         description="Spiking Speech Commands (35 classes), frames [T, 700]", source=_WHERE, extra_options=_OPTIONS)
