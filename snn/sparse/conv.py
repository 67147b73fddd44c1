r"""An event-driven convolution for inference: :class:`SparseConv2d` (a trained ``Conv2d``, with the
``BatchNorm2d`` after it folded in) that scatters the weights of the non-zero inputs only.

For a stride-1 convolution with zero padding ``(p_h, p_w)``::

    y[r, :, oy, ox] = b' + Σ_{dy, dx} Σ_{c: x[r, c, oy+dy-p_h, ox+dx-p_w] != 0} x[r, c, ...]·W'[:, c, dy, dx]

(``event_conv2d`` of :mod:`snn.sparse.kernels`): per output position, the weight vectors of the active channels in
its window, summed in registers; the work follows the input spikes (``kh·kw`` weight vectors of ``O`` values per
spike). ``W', b'`` are the convolution with an eval-mode BatchNorm folded in
(:func:`snn.fused.fold_batchnorm`). The dense path runs the trained modules themselves (convolution, then
BatchNorm), so its result is the model's; the sparse path rounds differently (equal to rounding; bit for bit when
every partial sum is exact). Paths as for :class:`~snn.sparse.inference.SparseLinear`: ``'dense'``,
``'sparse'``, ``'auto'`` (by the input's firing rate against the crossover rate measured for convolutions).
Stride 1, dilation 1, one group, zero padding given as numbers: a convolution with anything else has no sparse
path (an error naming the layer when asked for, dense under ``'auto'``).
"""
from __future__ import annotations

import logging

import torch
import torch.nn as nn

from . import kernels
from .calibration import crossover
from .linear import event_refusal

__all__ = ["SparseConv2d", "conv_refusal"]

log = logging.getLogger("snn.sparse")


def conv_refusal(conv: nn.Conv2d) -> str | None:
    """Why ``conv`` has no event-driven path (None: it has)."""
    if conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1:
        return (f"stride {conv.stride}, dilation {conv.dilation}, groups {conv.groups}: the event-driven "
                f"convolution runs stride 1, dilation 1, one group")
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        return (f"padding {conv.padding!r} ({conv.padding_mode}): the event-driven convolution pads with zeros, "
                f"given as numbers")
    return None


class SparseConv2d(nn.Module):
    """A trained ``Conv2d`` (and the eval-mode ``BatchNorm2d`` after it, or None) for inference on the path
    ``mode``; ``last_path``/``last_rate`` say what the last call ran. Input ``[..., C, H, W]`` (leading
    dimensions, time and batch, folded)."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d | None, name: str, mode: str = "auto",
                 crossover_rate: float | None = None):
        super().__init__()
        from ..fused import fold_batchnorm
        self.who = f"layer {name!r} ({type(conv).__name__} {conv.in_channels} -> {conv.out_channels})"
        self.refusal = conv_refusal(conv)
        if mode == "sparse" and self.refusal:
            raise ValueError(f"{self.who}: mode 'sparse' asked for, but it has no sparse path: {self.refusal}")
        self.conv, self.bn, self.name, self.mode, self.crossover_rate = conv, bn, name, mode, crossover_rate
        with torch.no_grad():
            w, b = fold_batchnorm(conv, bn) if bn is not None else (conv.weight, conv.bias)
            self.kernel = tuple(w.shape[2:])
            self.register_buffer("w", w.detach().contiguous(), persistent=False)
            self.register_buffer("b", None if b is None else b.detach().contiguous(), persistent=False)
        self._tiles = {}
        self.last_path: str | None = None
        self.last_rate: float | None = None

    def _dense(self, x):
        y = self.conv(x)
        return self.bn(y) if self.bn is not None else y

    def _sparse(self, x):
        lead = x.shape[:-3]
        x4 = x.reshape(-1, *x.shape[-3:]).contiguous()
        ph, pw = self.conv.padding
        if x4.dtype not in self._tiles:          # the folded weights tiled for the kernel, once per dtype
            self._tiles[x4.dtype] = kernels.tile_weight(self.w.to(x4.dtype).reshape(self.w.shape[0], -1))
        y = kernels.library().event_conv2d(x4, self._tiles[x4.dtype], self.w.shape[0], *self.kernel,
                                           None if self.b is None else self.b.to(x4.dtype), ph, pw)
        return y.permute(0, 3, 1, 2).reshape(*lead, *y.shape[3:], *y.shape[1:3])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        why = self.refusal or event_refusal(x)
        if self.mode == "sparse" and why:
            raise RuntimeError(f"{self.who}: mode 'sparse' asked for, but {why}; use 'dense' or 'auto'")
        path, rate = ("sparse" if self.mode == "sparse" else "dense"), None
        if self.mode == "auto":
            rate = float(torch.count_nonzero(x)) / max(1, x.numel())
            rows = x.numel() // max(1, x.shape[-3] * x.shape[-2] * x.shape[-1])
            limit = self.crossover_rate if self.crossover_rate is not None else crossover(rows, "conv")
            path = "sparse" if why is None and rate < limit else "dense"
            if path != self.last_path:
                log.info("%s: input firing rate %.4f, crossover %.4f at %d rows -> %s path", self.who, rate, limit,
                         rows, path)
        self.last_path, self.last_rate = path, rate
        return self._sparse(x) if path == "sparse" else self._dense(x)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, mode={self.mode!r}, last_path={self.last_path!r}"
