"""The data set type that every ``snn.data`` set returns: a torch ``Dataset`` of ``(x, y)`` that says what a
model needs to know about its samples.

Attributes
    ``name``, ``classes`` (class names, index = label), ``num_classes = len(classes)``, ``input_shape`` (the
    shape of one time step: ``(2, 34, 34)`` for N-MNIST frames, ``(700,)`` for SHD, ``(1, 28, 28)`` for a
    static image), ``sequence`` (True: ``x`` is a float tensor ``[T, *input_shape]``; False: ``x`` is a static
    float tensor ``input_shape``), ``targets`` (the label of every sample, int64 ``[N]``).
"""
from __future__ import annotations

import numpy as np
import torch

from .images import check_labels

__all__ = ["LabeledDataset", "InMemoryDataset"]


class LabeledDataset(torch.utils.data.Dataset):
    """Base of the ``snn.data`` sets: the attributes of the module docstring, set by subclasses."""

    name: str = ""
    classes: tuple = ()
    input_shape: tuple = ()
    sequence: bool = False

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        kind = "sequences [T, " + ", ".join(map(str, self.input_shape)) + "]" if self.sequence else \
            "images " + str(list(self.input_shape))
        return f"<{type(self).__name__} {self.name!r}: {len(self)} samples, {kind}, {self.num_classes} classes>"


class InMemoryDataset(LabeledDataset):
    """Samples held in one tensor: ``x [N, *input_shape]`` (static) or time-major ``x [T, N, *input_shape]``
    (sequences; sample ``i`` is ``x[:, i]``), stored in any dtype (e.g. uint8 counts) and returned as float32.
    Labels ``y [N]`` must be class indices in ``0..len(classes)-1``."""

    def __init__(self, x: torch.Tensor, y, *, name: str, classes, sequence: bool):
        y = torch.as_tensor(y)
        n_axis = 1 if sequence else 0
        if x.dim() <= n_axis or x.shape[n_axis] != len(y) or y.dim() != 1:
            raise ValueError(f"{name}: expected {'[T, N, ...]' if sequence else '[N, ...]'} samples and labels [N], "
                             f"got {tuple(x.shape)} and {tuple(y.shape)}")
        check_labels(y.numpy(), len(classes), f"{name} labels")
        self.x, self.targets = x, y.to(torch.int64)
        self.name, self.classes, self.sequence = name, tuple(classes), bool(sequence)
        self.input_shape = tuple(x.shape[n_axis + 1:])

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i):
        x = self.x[:, i] if self.sequence else self.x[i]
        return x.to(torch.float32), int(self.targets[i])

    def subset(self, n: int | None, seed: int = 0) -> "InMemoryDataset":
        """A random subset of ``n`` samples (``None``: all), drawn with ``seed``."""
        if n is None or n >= len(self):
            return self
        idx = torch.from_numpy(np.sort(np.random.default_rng(seed).permutation(len(self))[:n]))
        x = self.x[:, idx] if self.sequence else self.x[idx]
        return InMemoryDataset(x, self.targets[idx], name=self.name, classes=self.classes, sequence=self.sequence)
