"""Batches of sequences, time-major as every snn module takes them.

``time_major_collate(samples)``: samples ``(x [T_i, ...], y)`` → ``(x [T, B, ...], y [B])`` with
``T = max T_i``; shorter sequences are padded with zero frames at the end (no events). ``loader(ds, ...)``: a
``DataLoader`` that uses it for sequence sets (``ds.sequence``) and torch's default collation otherwise.
"""
from __future__ import annotations

import torch

__all__ = ["time_major_collate", "loader"]


def time_major_collate(samples):
    if not samples:
        raise ValueError("time_major_collate: empty batch")
    xs, ys = zip(*samples)
    shapes = {tuple(x.shape[1:]) for x in xs}
    if any(x.dim() < 1 for x in xs) or len(shapes) != 1:
        raise ValueError(f"time_major_collate: samples must be [T, ...] with one frame shape, got frame shapes "
                         f"{sorted(shapes)}")
    steps = max(x.shape[0] for x in xs)
    out = xs[0].new_zeros((steps, len(xs), *xs[0].shape[1:]))
    for b, x in enumerate(xs):
        out[:x.shape[0], b] = x
    return out, torch.as_tensor(ys, dtype=torch.int64)


def loader(ds, batch_size: int, shuffle: bool = False, **kw) -> torch.utils.data.DataLoader:
    """A DataLoader over ``ds``, batches time-major for sequence sets (``kw`` go to DataLoader)."""
    if getattr(ds, "sequence", False):
        kw.setdefault("collate_fn", time_major_collate)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle, **kw)
