"""Learned receptive fields as an image grid (PNG, written atomically through :mod:`snn.viz`)."""
from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np

from ..viz import _figure, _np, _save

__all__ = ["receptive_fields"]


def receptive_fields(weight, path, shape: tuple[int, ...] | None = None, max_fields: int = 64,
                     title: str | None = None) -> Path:
    """One tile per neuron of ``weight``: ``[K, C, kh, kw]`` (a convolution; 1 channel grey, 3 channels colour,
    otherwise the channel mean) or ``[K, n]`` with the image ``shape`` it reshapes to. Each tile is scaled to its
    own range (a field's pattern matters, not its gain); at most ``max_fields`` tiles, the first ones."""
    w = _np(weight)
    if w.ndim == 2:
        if shape is None:
            side = math.isqrt(w.shape[1])
            if side * side != w.shape[1]:
                raise ValueError(f"receptive_fields: weight [K, {w.shape[1]}] needs shape=(C, H, W) or (H, W)")
            shape = (1, side, side)
        if int(np.prod(shape)) != w.shape[1]:
            raise ValueError(f"receptive_fields: shape {tuple(shape)} does not hold {w.shape[1]} inputs")
        w = w.reshape(w.shape[0], *((1,) * (3 - len(shape))), *shape)
    if w.ndim != 4:
        raise ValueError(f"receptive_fields: weight must be [K, C, kh, kw] or [K, n], got shape {w.shape}")
    if max_fields < 1:
        raise ValueError(f"receptive_fields: max_fields must be >= 1, got {max_fields}")
    w = w[:max_fields]
    tiles = w.transpose(0, 2, 3, 1) if w.shape[1] == 3 else w.mean(1)[..., None]
    lo = tiles.min(axis=(1, 2, 3), keepdims=True)
    hi = tiles.max(axis=(1, 2, 3), keepdims=True)
    tiles = (tiles - lo) / np.maximum(hi - lo, 1e-12)
    k = len(tiles)
    cols = math.ceil(math.sqrt(k))
    rows = math.ceil(k / cols)
    plt, (fig, axes) = _figure(nrows=rows, ncols=cols, figsize=(1.1 * cols + 0.4, 1.1 * rows + 0.6), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < k:
            tile = tiles[i] if tiles.shape[-1] == 3 else tiles[i, ..., 0]
            ax.imshow(tile, cmap=None if tiles.shape[-1] == 3 else "gray", vmin=0, vmax=1, interpolation="nearest")
    width = max(16, int(9 * (1.1 * cols + 0.4)))  # characters that fit across the figure at 9 pt
    fig.suptitle(textwrap.fill(title or f"receptive fields ({k} neurons)", width), fontsize=9)
    return _save(plt, fig, path)
