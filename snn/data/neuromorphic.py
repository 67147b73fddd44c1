"""Event-camera data sets read from the files of their original downloads.

``root`` is the directory the download was unpacked into (``None``: ``$SNN_DATA/<folder>``, the folder named
below). A root without the expected files is an error naming the missing path, the expected layout and where
the data set is published; these machines cannot download it.

``'nmnist'``       N-MNIST (Orchard et al. 2015), https://www.garrickorchard.com/datasets/n-mnist
                   (also https://data.mendeley.com/datasets/468j46mzdv/1): unzip ``Train.zip`` and ``Test.zip``
                   into ``root`` → ``root/Train/<0-9>/*.bin``, ``root/Test/<0-9>/*.bin``; 34x34 ATIS sensor.
``'ncaltech101'``  N-Caltech101 (Orchard et al. 2015), https://www.garrickorchard.com/datasets/n-caltech101
                   (https://data.mendeley.com/datasets/cy6cvx3ryv/1): ``root/Caltech101/<class>/*.bin``
                   (``Caltech101_annotations`` is not used); classes = the folders found, sorted; sensor
                   240x180 as SpikingJelly takes it (``sensor_size`` up to 256x240, the format's 8-bit limit,
                   if your copy has events beyond it). No official split: ``test_fraction`` of each class (seeded) is the test split.
``'dvs-gesture'``  IBM DVS128 Gesture (Amir et al. 2017), https://research.ibm.com/interactive/dvsgesture/
                   (``DvsGesture.tar.gz``): ``root/DvsGesture/`` holding ``userNN_<lighting>.aedat`` (AEDAT 3.1),
                   ``userNN_<lighting>_labels.csv`` (``class,startTime_usec,endTime_usec``, classes 1-11) and
                   ``trials_to_train.txt`` / ``trials_to_test.txt``. Each CSV row is a sample: the events with
                   ``start <= t < end``, times shifted to start at 0 (as SpikingJelly cuts them). 128x128.
``'cifar10-dvs'``  CIFAR10-DVS (Li et al. 2017), https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671:
                   unzip the ten class archives → ``root/<class>/*.aedat`` (AEDAT 2.0 DVS128 recordings; AEDAT
                   3.1 is read too). Oriented as SpikingJelly does (``x = 127 - y_stored``, ``y = 127 - x_stored``)
                   so that frames match models trained with it. No official split: per class, the first
                   ``1 - test_fraction`` of the files in sorted order train, the rest test (SpikingJelly's
                   ``split_to_train_test_set`` with ``random_split=False``). 128x128.

Formats: N-MNIST/N-Caltech101 ``.bin`` by :func:`snn.data.events.read_nmnist`, ``.aedat`` by
:func:`snn.data.aedat.read_aedat`.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..checks import check_range
from ._validate import check_int
from .aedat import read_aedat
from .event_dataset import EVENT_OPTIONS, EventDataset, check_sensor_option
from .events import check_on_sensor, read_nmnist
from .frame_cache import file_identity
from .registry import register

__all__ = ["NMNIST", "NCaltech101", "DVSGesture", "CIFAR10DVS", "resolve_root", "missing"]

DIGITS = tuple(str(d) for d in range(10))
GESTURE_CLASSES = ("hand clap", "right hand wave", "left hand wave", "right arm clockwise",
                   "right arm counter-clockwise", "left arm clockwise", "left arm counter-clockwise",
                   "arm roll", "air drums", "air guitar", "other gestures")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def missing(path, name: str, layout: str, where: str) -> FileNotFoundError:
    """The error for a data set file or folder that is not there: what, the expected layout, where to get it."""
    return FileNotFoundError(f"{name}: {path} not found. Expected layout: {layout}. The data set is published at "
                             f"{where}; download and unpack it there (it cannot be downloaded by snn).")


def resolve_root(root, folder: str, name: str, layout: str, where: str) -> Path:
    """``root`` as a directory (``None``: ``$SNN_DATA/<folder>``)."""
    if root is None:
        base = os.environ.get("SNN_DATA")
        if not base:
            raise FileNotFoundError(f"{name}: no root given and $SNN_DATA is not set. Pass root=<directory> "
                                    f"(expected layout: {layout}) or set $SNN_DATA so that $SNN_DATA/{folder} is "
                                    f"that directory. The data set is published at {where}.")
        root = Path(base) / folder
    root = Path(root).expanduser()
    if not root.is_dir():
        raise missing(root, name, layout, where)
    return root


def _class_files(directory: Path, classes, ext: str, name: str, layout: str, where: str) -> list[list[Path]]:
    """The ``*.ext`` files of each class folder, sorted; a missing or empty folder is an error."""
    out = []
    for c in classes:
        d = directory / c
        if not d.is_dir():
            raise missing(d, name, layout, where)
        files = sorted(p for p in d.iterdir() if p.suffix == ext and p.is_file())
        if not files:
            error = missing(d / f"*{ext}", name, layout, where)
            if ext == ".aedat" and any(d.glob("*.aedat4")):
                error.args = (f"{error.args[0]} {d} holds AEDAT 4 files (tonic's converted copy): read those with "
                              f"snn.data.from_tonic(tonic.datasets.CIFAR10DVS(...), frames=...), which needs the "
                              f"'aedat' package (pip install aedat).",)
            raise error
        out.append(files)
    return out


class _FileDataset(EventDataset):
    """One recording per file."""

    def __init__(self, files, targets, **kw):
        self.files = list(files)
        super().__init__(targets=targets, **kw)

    def identity(self, i):
        return file_identity(self.files[i])


# -- N-MNIST and N-Caltech101 ----------------------------------------------------------------------------
_NMNIST_LAYOUT = "root/Train/<digit 0-9>/*.bin and root/Test/<digit 0-9>/*.bin (Train.zip and Test.zip unzipped)"
_NMNIST_WHERE = "https://www.garrickorchard.com/datasets/n-mnist (or https://data.mendeley.com/datasets/468j46mzdv/1)"


class NMNIST(_FileDataset):
    """N-MNIST: frames ``[T, 2, 34, 34]``; see the module docstring."""

    def __init__(self, root=None, split="train", frames=None, sensor_size=None, **kw):
        name = "nmnist"
        root = resolve_root(root, "N-MNIST", name, _NMNIST_LAYOUT, _NMNIST_WHERE)
        per_class = _class_files(root / ("Train" if split == "train" else "Test"), DIGITS, ".bin", name,
                                 _NMNIST_LAYOUT, _NMNIST_WHERE)
        sensor = check_sensor_option(sensor_size, (34, 34, 2), name, "N-MNIST")
        super().__init__([f for fs in per_class for f in fs], np.repeat(np.arange(10), [len(f) for f in per_class]),
                         name=name, classes=DIGITS, sensor_size=sensor, frames=frames,
                         default_frames={"n_frames": 10}, **kw)

    def read(self, i):
        return read_nmnist(self.files[i], self.recorded_sensor_size)


_CALTECH_LAYOUT = "root/Caltech101/<class>/*.bin (Caltech101.zip unzipped; the annotations are not needed)"
_CALTECH_WHERE = ("https://www.garrickorchard.com/datasets/n-caltech101 "
                  "(or https://data.mendeley.com/datasets/cy6cvx3ryv/1)")


def _test_mask(n: int, fraction: float, seed: int) -> np.ndarray:
    """``round(n · fraction)`` test files chosen with ``seed``."""
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(seed).permutation(n)[:int(round(n * fraction))]] = True
    return mask


class NCaltech101(_FileDataset):
    """N-Caltech101: frames ``[T, 2, 180, 240]``; see the module docstring."""

    def __init__(self, root=None, split="train", frames=None, sensor_size=None, test_fraction=0.1, seed=0, **kw):
        name = "ncaltech101"
        fraction = check_range(test_fraction, "test_fraction", name, 0, 1, low_open=True, high_open=True)
        seed = check_int(seed, "seed", name)
        root = resolve_root(root, "N-Caltech101", name, _CALTECH_LAYOUT, _CALTECH_WHERE)
        top = root / "Caltech101"
        if not top.is_dir():
            raise missing(top, name, _CALTECH_LAYOUT, _CALTECH_WHERE)
        classes = tuple(sorted(p.name for p in top.iterdir() if p.is_dir()))
        if not classes:
            raise missing(top / "<class>", name, _CALTECH_LAYOUT, _CALTECH_WHERE)
        files, targets = [], []
        for c, fs in enumerate(_class_files(top, classes, ".bin", name, _CALTECH_LAYOUT, _CALTECH_WHERE)):
            test = _test_mask(len(fs), fraction, seed + c)
            chosen = [f for f, t in zip(fs, test) if t == (split == "test")]
            files += chosen
            targets += [c] * len(chosen)
        sensor = check_sensor_option(sensor_size, (240, 180, 2), name, "N-Caltech101")
        super().__init__(files, targets, name=name, classes=classes, sensor_size=sensor,
                         frames=frames, default_frames={"n_frames": 10}, **kw)

    def read(self, i):
        return read_nmnist(self.files[i], self.recorded_sensor_size)


# -- CIFAR10-DVS -----------------------------------------------------------------------------------------
_CIFAR_LAYOUT = "root/<class>/*.aedat for the classes " + ", ".join(CIFAR10_CLASSES)
_CIFAR_WHERE = "https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671 (Li et al. 2017)"


def cifar10_dvs_orientation(x, y, p):
    """CIFAR10-DVS's stored DVS128 coordinates → the orientation SpikingJelly uses."""
    return 127 - y, 127 - x, p


class CIFAR10DVS(_FileDataset):
    """CIFAR10-DVS: frames ``[T, 2, 128, 128]``; see the module docstring."""

    def __init__(self, root=None, split="train", frames=None, sensor_size=None, test_fraction=0.1, **kw):
        name = "cifar10-dvs"
        fraction = check_range(test_fraction, "test_fraction", name, 0, 1, low_open=True, high_open=True)
        root = resolve_root(root, "CIFAR10-DVS", name, _CIFAR_LAYOUT, _CIFAR_WHERE)
        files, targets = [], []
        for c, fs in enumerate(_class_files(root, CIFAR10_CLASSES, ".aedat", name, _CIFAR_LAYOUT, _CIFAR_WHERE)):
            n_train = len(fs) - int(round(len(fs) * fraction))
            chosen = fs[:n_train] if split == "train" else fs[n_train:]
            files += chosen
            targets += [c] * len(chosen)
        sensor = check_sensor_option(sensor_size, (128, 128, 2), name, "CIFAR10-DVS")
        super().__init__(files, targets, name=name, classes=CIFAR10_CLASSES, sensor_size=sensor,
                         frames=frames, default_frames={"n_frames": 10, "split_by": "number"}, **kw)

    def read(self, i):
        ev = read_aedat(self.files[i], cifar10_dvs_orientation)
        return _on_sensor(ev, self.recorded_sensor_size, self.files[i])


def _on_sensor(ev: np.ndarray, sensor_size, source) -> np.ndarray:
    return check_on_sensor(ev, *sensor_size[:2], str(source), "a wrong or corrupt file")


# -- DVS128 Gesture --------------------------------------------------------------------------------------
_GESTURE_LAYOUT = ("root/DvsGesture/ with trials_to_train.txt, trials_to_test.txt, and for each trial listed "
                   "there userNN_<lighting>.aedat (AEDAT 3.1) and userNN_<lighting>_labels.csv")
_GESTURE_WHERE = "https://research.ibm.com/interactive/dvsgesture/ (DvsGesture.tar.gz, Amir et al. 2017)"


def read_gesture_labels(path: Path) -> np.ndarray:
    """A ``*_labels.csv`` of DVS128 Gesture: rows ``(class 1-11, startTime_usec, endTime_usec)`` → int64
    ``[n, 3]`` with classes 0-10; malformed rows, classes out of range and empty windows are errors."""
    rows = []
    lines = path.read_text(errors="replace").splitlines()
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or (n == 1 and line.lower().startswith("class")):
            continue
        parts = line.split(",")
        try:
            label, start, end = (int(v) for v in parts)
        except ValueError:
            raise ValueError(f"{path}, line {n}: expected 'class,startTime_usec,endTime_usec' (three integers), "
                             f"got {line!r}") from None
        if not 1 <= label <= len(GESTURE_CLASSES):
            raise ValueError(f"{path}, line {n}: class {label} is out of range; DVS128 Gesture classes are "
                             f"1..{len(GESTURE_CLASSES)}")
        if not 0 <= start < end:
            raise ValueError(f"{path}, line {n}: the window [{start}, {end}) µs is empty or negative")
        rows.append((label - 1, start, end))
    if not rows:
        raise ValueError(f"{path}: no labelled gestures (expected rows 'class,startTime_usec,endTime_usec')")
    return np.asarray(rows, dtype=np.int64)


@lru_cache(maxsize=2)
def _gesture_recording(path: str, identity: tuple) -> np.ndarray:
    """A whole AEDAT 3.1 recording (kept for the next samples of the same trial; ``identity`` makes a
    changed file a new entry)."""
    return read_aedat(path)


class DVSGesture(EventDataset):
    """DVS128 Gesture: frames ``[T, 2, 128, 128]``; see the module docstring."""

    def __init__(self, root=None, split="train", frames=None, sensor_size=None, **kw):
        name = "dvs-gesture"
        root = resolve_root(root, "DVS128-Gesture", name, _GESTURE_LAYOUT, _GESTURE_WHERE)
        folder = root / "DvsGesture" if (root / "DvsGesture").is_dir() else root
        listing = folder / f"trials_to_{split}.txt"
        if not listing.is_file():
            raise missing(listing, name, _GESTURE_LAYOUT, _GESTURE_WHERE)
        trials = [t.strip() for t in listing.read_text(errors="replace").splitlines() if t.strip()]
        self.samples = []  # (aedat path, start µs, end µs)
        targets = []
        for trial in trials:
            aedat = folder / trial
            csv = folder / (Path(trial).stem + "_labels.csv")
            for p in (aedat, csv):
                if not p.is_file():
                    raise missing(p, name, _GESTURE_LAYOUT, _GESTURE_WHERE)
            for label, start, end in read_gesture_labels(csv):
                self.samples.append((aedat, int(start), int(end)))
                targets.append(label)
        sensor = check_sensor_option(sensor_size, (128, 128, 2), name, "DVS128 Gesture")
        super().__init__(name=name, classes=GESTURE_CLASSES, sensor_size=sensor, targets=targets,
                         frames=frames, default_frames={"n_frames": 16, "split_by": "number"}, **kw)

    def identity(self, i):
        path, start, end = self.samples[i]
        return {"file": file_identity(path), "start_us": start, "end_us": end}

    def read(self, i):
        path, start, end = self.samples[i]
        ident = file_identity(path)
        ev = _gesture_recording(str(path), (ident["size"], ident["mtime_ns"]))
        lo, hi = np.searchsorted(ev["t"], [start, end], side="left")
        out = _on_sensor(ev[lo:hi], self.recorded_sensor_size, path).copy()
        out["t"] -= start
        return out


for _name, _cls, _desc, _where in (
        ("nmnist", NMNIST, "N-MNIST, frames [T, 2, 34, 34]", _NMNIST_WHERE),
        ("ncaltech101", NCaltech101, "N-Caltech101, frames [T, 2, 180, 240]", _CALTECH_WHERE),
        ("dvs-gesture", DVSGesture, "IBM DVS128 Gesture (11 classes), frames [T, 2, 128, 128]", _GESTURE_WHERE),
        ("cifar10-dvs", CIFAR10DVS, "CIFAR10-DVS, frames [T, 2, 128, 128]", _CIFAR_WHERE)):
    register(_name, _cls, modality="event", description=_desc, source=_where, extra_options=EVENT_OPTIONS)
