"""Data sets and loaders.

``get_dataset(name, root=None, split='train', **options)`` returns a torch ``Dataset`` of ``(x, y)`` with
``num_classes``, ``input_shape`` (one time step), ``sequence`` (``x`` is ``[T, *input_shape]``) and ``classes``;
``available()`` (and ``DATASETS_AVAILABLE``) lists the registered names, :func:`register` adds one. Event and
audio sets read the files of their original downloads (:mod:`snn.data.neuromorphic`: N-MNIST, N-Caltech101,
DVS128 Gesture, CIFAR10-DVS; :mod:`snn.data.hsd`: SHD, SSC) and convert them to frames
(:mod:`snn.data.frames`, cached on disk by :mod:`snn.data.frame_cache`, augmented by :mod:`snn.data.augment`);
:func:`from_tonic` wraps any tonic data set; :func:`loader` batches sequences time-major ``[T, B, ...]``.

``load(name, split, data_dir=None)`` returns ``(images float32 [N,1,H,W] in [0,1], labels int64 [N])`` for
``'fashion-mnist'`` or ``'digits'``; ``'auto'`` is Fashion-MNIST when its files are found, else the digits
that scikit-learn ships (the embedded default).
"""
from __future__ import annotations

import torch

from ._validate import check_int
from .idx import IDXError, read_idx, write_idx
from .images import find_fashion_mnist, load_digits, load_fashion_mnist
from .datasets import InMemoryDataset, LabeledDataset
from .registry import available, entry, get_dataset, register
from . import offline  # noqa: F401  registers the image sets and the offline stand-ins
from . import hsd, neuromorphic  # noqa: F401  register the event-camera sets and SHD/SSC
from .collate import loader, time_major_collate
from .frames import FrameSpec, events_to_frames
from .tonic_adapter import from_tonic

__all__ = ["DATASETS", "load", "resolve_name", "batches", "read_idx", "write_idx", "IDXError",
           "find_fashion_mnist", "load_fashion_mnist", "load_digits", "get_dataset", "available", "register", "entry",
           "DATASETS_AVAILABLE", "LabeledDataset", "InMemoryDataset", "from_tonic", "FrameSpec", "events_to_frames",
           "loader", "time_major_collate"]

DATASETS = ("fashion-mnist", "digits", "auto")


def resolve_name(name: str, data_dir=None) -> str:
    """'auto' → 'fashion-mnist' when found, else 'digits'; other names are checked."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; accepted: {DATASETS}")
    if name == "auto":
        return "fashion-mnist" if find_fashion_mnist(data_dir) else "digits"
    return name


def load(name: str, split: str = "train", data_dir=None):
    """``(images, labels)`` of a data set split; see the module docstring."""
    name = resolve_name(name, data_dir)
    if name == "fashion-mnist":
        return load_fashion_mnist(split, data_dir)
    return load_digits(split)


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = False,
            generator: torch.Generator | None = None, drop_last: bool = False):
    """Yield ``(x_batch, y_batch)`` over in-memory tensors (faster than a DataLoader for small images);
    ``x`` and ``y`` must be equally long (one label per sample)."""
    batch_size = check_int(batch_size, "batch_size", "batches", 1)
    if len(x) != len(y):
        raise ValueError(f"batches: x and y must be equally long (one label per sample), got {len(x)} and {len(y)}")
    return _batches(x, y, batch_size, shuffle, generator, drop_last)


def _batches(x, y, batch_size, shuffle, generator, drop_last):
    n = len(x)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    for i in range(0, stop, batch_size):
        idx = order[i:i + batch_size]
        yield x[idx], y[idx]


DATASETS_AVAILABLE = available()  # the names registered by snn itself (available() also lists the user's)
