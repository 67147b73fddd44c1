"""Image classification sets: Fashion-MNIST (IDX files) and scikit-learn's 8x8 digits (shipped, the default).

Images come back as float32 ``[N, 1, H, W]`` in [0, 1] and labels as int64 ``[N]``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .idx import read_idx

__all__ = ["FASHION_MNIST_DIRS", "find_fashion_mnist", "fashion_mnist_files", "load_fashion_mnist", "load_digits", "FASHION_CLASSES",
           "check_labels"]

FASHION_MNIST_DIRS = ("/usr/share/datasets/fashion-mnist",)
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
IMAGE_SHAPE = (28, 28)
_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _resolve(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def _candidates(data_dir):
    if data_dir is not None:
        return [Path(data_dir)]
    dirs = [Path(os.environ["SNN_DATA"])] if os.environ.get("SNN_DATA") else []
    return dirs + [Path(d) for d in FASHION_MNIST_DIRS]


def find_fashion_mnist(data_dir=None) -> Path | None:
    """The first directory with all four Fashion-MNIST files, searched in the order
    ``data_dir``, ``$SNN_DATA`` (and its ``fashion-mnist`` subfolder), ``/usr/share/datasets/fashion-mnist``."""
    for d in _candidates(data_dir):
        for cand in (d, d / "fashion-mnist"):
            if all(_resolve(cand, s) for pair in _FILES.values() for s in pair):
                return cand
    return None


def fashion_mnist_files(split: str = "train", data_dir=None) -> tuple[Path, Path]:
    """The ``(images, labels)`` IDX files of a split, found as :func:`find_fashion_mnist` says."""
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = find_fashion_mnist(data_dir)
    if root is None:
        where = [str(p) for p in _candidates(data_dir)]
        raise FileNotFoundError(f"Fashion-MNIST IDX files ({', '.join(_FILES[split])}[.gz]) not found in {where}; "
                                f"pass --data-dir, set $SNN_DATA, or install Debian's dataset-fashion-mnist")
    return tuple(_resolve(root, s) for s in _FILES[split])


def load_fashion_mnist(split: str = "train", data_dir=None):
    """``(images [N,1,28,28] float32 in [0,1], labels [N] int64)``.

    The files must hold unsigned bytes: images ``[N, 28, 28]`` (IDX magic 0x00000803) and labels ``[N]``
    in 0..9 (0x00000801), equally many; anything else (missing, corrupt, another element type or shape,
    labels out of range) is an error naming the file, what it holds and what is expected.
    """
    img_path, lbl_path = fashion_mnist_files(split, data_dir)
    labels = read_idx(lbl_path, dtype=np.uint8, shape=(None,))  # the small file first: its errors come fast
    images = read_idx(img_path, dtype=np.uint8, shape=(None, *IMAGE_SHAPE))
    if len(images) != len(labels):
        raise ValueError(f"{img_path} holds {len(images)} images but {lbl_path} holds {len(labels)} labels; "
                         f"they must be equally many")
    check_labels(labels, len(FASHION_CLASSES), str(lbl_path))
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))


def check_labels(labels: np.ndarray, num_classes: int, source: str) -> None:
    """Every label must be a class index in ``[0, num_classes)``; the error names ``source`` and the first
    bad label."""
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{source}: labels must lie in 0..{num_classes - 1} (class indices), found {labels[i]} "
                         f"at index {i} ({int(bad.sum())} such labels)")


def load_digits(split: str = "train", test_fraction: float = 0.2, seed: int = 0):
    """scikit-learn's 8x8 digits (1,797 images), split deterministically (stratified by ``seed``)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    from sklearn.datasets import load_digits as _load

    d = _load()
    x = torch.from_numpy((d.images / 16.0).astype(np.float32)).unsqueeze(1)
    y = torch.from_numpy(d.target.astype(np.int64))
    rng = np.random.default_rng(seed)
    test_idx = np.concatenate([rng.permutation(np.flatnonzero(d.target == c))[: int(round(test_fraction * (d.target == c).sum()))]
                               for c in range(10)])
    mask = np.zeros(len(y), dtype=bool)
    mask[test_idx] = True
    idx = torch.from_numpy(np.flatnonzero(mask if split == "test" else ~mask))
    return x[idx], y[idx]
