r"""A Linear layer over spikes: event-driven where that pays, its binary input saved as bits for the backward.

:func:`spike_linear` computes ``y = x Wᵀ + b`` over ``x [R, K]`` (rows: time and batch folded) in one of two
ways, chosen per call by ``mode``:

* ``'dense'``: ``torch.nn.functional.linear`` (one matmul for all rows; the same operation, and so the same
  rounding, as ``nn.Linear``);
* ``'event'``: :func:`snn.sparse.kernels.event_linear`, which adds the weight columns of the non-zero inputs only
  (``y[r] = b + Σ_{k: x[r,k] != 0} x[r,k]·W[:, k]``): work ∝ the number of input spikes instead of ``R·K``;
* ``'auto'``: ``'event'`` when the input density (non-zeros / values) is below the machine's crossover rate
  (:func:`snn.sparse.crossover`) and the event kernels can run the tensor, else ``'dense'``.

Backward: ``∂L/∂x = g W`` (only when ``x`` needs it), ``∂L/∂b = Σ_r g[r]``, and ``∂L/∂W = gᵀ x`` from what the
forward kept of ``x``: its packed bits (1 bit per value, :func:`snn.sparse.kernels.pack_bits`) when ``x`` is
binary, ``x`` itself otherwise, nothing when ``W`` needs no gradient. ``grad_mode`` chooses the weight
gradient's algorithm the same way: ``'dense'`` (unpack, one matmul), ``'event'``
(:func:`~snn.sparse.kernels.event_grad_weight`, summing ``g`` over the rows where each input spiked; binary
inputs only) or ``'auto'``.

The event path sums in another order than the dense matmul, so results agree to rounding (bit for bit where
every partial sum is exact, e.g. weights on a binary grid) and a potential that lands within rounding of a
threshold may flip a spike. Asking for ``'event'`` where it cannot run (no compiled kernels, a CUDA tensor,
16-bit dtypes, or a non-binary input for the event weight gradient) is an error naming the layer, never a
silent dense fallback; ``'auto'`` records its choice in the layer's ``last_path`` and ``last_rate``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import layers
from . import kernels
from .calibration import crossover

__all__ = ["MODES", "spike_linear", "EventLinear", "check_mode", "event_refusal", "Choice"]

MODES = ("dense", "event", "auto")


def check_mode(mode, name: str, who: str) -> str:
    if mode not in MODES:
        raise ValueError(f"{who}: {name} must be one of {MODES}, got {mode!r}")
    return mode


def event_refusal(x: torch.Tensor) -> str | None:
    """Why the event kernels cannot run ``x`` (None: they can)."""
    if x.device.type != "cpu":
        return f"the event-driven kernels run CPU tensors, got one on {x.device}"
    if x.dtype not in kernels.KERNEL_DTYPES:
        return f"the event-driven kernels run float32/float64, got {x.dtype}"
    if not kernels.available():
        try:
            kernels.library()
        except RuntimeError as e:
            return str(e)
    return None


class Choice:
    """The path choices of one layer: its modes, the tiled weight cache, and what ``'auto'`` chose last.

    ``last_path``/``last_rate``: the forward path of the last call and the input density it measured (None when
    the mode was fixed and no density was needed); ``last_grad_path``: the weight gradient's algorithm."""

    def __init__(self, who: str, mode: str = "dense", grad_mode: str = "auto", crossover_rate: float | None = None,
                 event_name: str = "event"):
        self.who, self.event_name = who, event_name
        self.mode = check_mode(mode, "mode", who)
        self.grad_mode = check_mode(grad_mode, "grad_mode", who)
        self.crossover_rate = crossover_rate
        self.last_path: str | None = None
        self.last_rate: float | None = None
        self.last_grad_path: str | None = None
        self._tile_key = None
        self._tile = None

    def rate_limit(self, rows: int, kind: str) -> float:
        return self.crossover_rate if self.crossover_rate is not None else crossover(rows, kind)

    def refuse(self, mode_name: str, why: str):
        raise RuntimeError(f"{self.who}: {mode_name}={self.event_name!r} asked for, but {why}; use 'dense' or 'auto'")

    def tiled(self, weight: torch.Tensor) -> torch.Tensor:
        """``weight`` in the event kernels' layout, re-tiled only when the weight changed."""
        key = (weight.data_ptr(), weight._version, weight.dtype, tuple(weight.shape))
        if key != self._tile_key:
            self._tile, self._tile_key = kernels.tile_weight(weight), key
        return self._tile


def _forward(x, weight, bias, choice: Choice, packed):
    """``x Wᵀ + b`` on the path ``choice`` picks (``packed``: the forward's :func:`kernels.pack_bits` of ``x``, or
    None when no weight gradient is needed); records the choice."""
    why = event_refusal(x)
    if choice.mode == "event" and why:
        choice.refuse("mode", why)
    path, rate = choice.mode, None
    if path == "auto":
        nnz = packed[1] if packed is not None else int(torch.count_nonzero(x))
        rate = nnz / max(1, x.numel())
        path = "event" if why is None and rate < choice.rate_limit(x.shape[0], "forward") else "dense"
    choice.last_path, choice.last_rate = path, rate
    if path == "event":
        return kernels.event_linear(x, choice.tiled(weight), weight.shape[0], bias)[0]
    return F.linear(x, weight, bias)


class _SpikeLinear(torch.autograd.Function):
    """``y = x Wᵀ + b`` on the path ``choice`` picks; saves the bits of a binary ``x`` for ``∂L/∂W``."""

    @staticmethod
    def forward(ctx, x, weight, bias, choice: Choice):
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        packed = None
        if need_w:
            packed = kernels.pack_bits(x)      # bits, non-zeros, binary: kept for the backward
            if choice.grad_mode == "event" and not packed[2]:
                choice.refuse("grad_mode", "the input is not binary (0/1), so its bits do not hold it")
        y = _forward(x, weight, bias, choice, packed)
        keep_bits = need_w and packed[2]
        ctx.K, ctx.nnz, ctx.has_bias, ctx.choice = x.shape[1], packed[1] if need_w else 0, bias is not None, choice
        ctx.save_for_backward(packed[0] if keep_bits else None, x if need_w and not keep_bits else None,
                              weight if need_x else None)
        return y

    @staticmethod
    def backward(ctx, g):
        bits, x, weight = ctx.saved_tensors
        choice = ctx.choice
        g = g.contiguous()
        gx = g.mm(weight) if ctx.needs_input_grad[0] else None
        gw = None
        if ctx.needs_input_grad[1]:
            if bits is None:
                gw, choice.last_grad_path = g.t().mm(x), "dense"
            else:
                path = choice.grad_mode
                why = event_refusal(g)
                if path == "event" and why:
                    choice.refuse("grad_mode", why)
                if path == "auto":
                    rate = ctx.nnz / max(1, g.shape[0] * ctx.K)
                    path = "event" if why is None and rate < choice.rate_limit(g.shape[0], "grad_weight") else "dense"
                if path == "event":
                    gw = kernels.event_grad_weight(bits, ctx.K, g)
                else:
                    gw = g.t().mm(kernels.unpack_bits(bits, ctx.K, g.dtype))
                choice.last_grad_path = path
        gb = g.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb, None


def spike_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, choice: Choice) -> torch.Tensor:
    """``x Wᵀ + b`` over ``x [..., K]`` (leading dimensions folded into rows) on the paths of ``choice``
    (see the module docstring)."""
    flat = x.dim() == 2
    x2 = x if flat else x.reshape(-1, x.shape[-1])
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad
                                    or (bias is not None and bias.requires_grad)):
        y = _SpikeLinear.apply(x2, weight, bias, choice)
    else:   # no graph to record (inference): the forward alone, without an autograd node
        y = _forward(x2, weight, bias, choice, None)
    return y if flat else y.reshape(*x.shape[:-1], weight.shape[0])


class EventLinear(layers.Linear):
    """``snn.layers.Linear`` whose forward is event-driven (``mode='event'``) and whose weight gradient comes
    from the packed input spikes (``grad_mode``); ``'auto'`` picks by the input's firing rate. Works in both
    step modes (time and batch are folded into rows either way). ``last_path``/``last_rate`` say what the last
    call ran. ``crossover`` fixes the rate ``'auto'`` compares with (default: the machine's,
    :func:`snn.sparse.crossover`)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, mode: str = "event",
                 grad_mode: str = "auto", crossover: float | None = None, step_mode: str = "s", **kw):
        super().__init__(in_features, out_features, bias=bias, step_mode=step_mode, **kw)
        self.choice = Choice(f"EventLinear({in_features} -> {out_features})", mode, grad_mode, crossover)

    @property
    def last_path(self) -> str | None:
        return self.choice.last_path

    @property
    def last_rate(self) -> float | None:
        return self.choice.last_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return spike_linear(x, self.weight, self.bias, self.choice)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mode={self.choice.mode!r}, grad_mode={self.choice.grad_mode!r}"
