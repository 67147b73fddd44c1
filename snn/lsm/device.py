"""A resistive-memory (RRAM) crossbar model that produces the reservoir weights as an analogue array would.

A signed weight is a differential pair of devices, ``w = k·(G⁺ - G⁻)`` with ``k = w_max / (g_max - g_min)``
(dimensionless weight per µS). What happens to each device:

1. **Stochastic switching** (:meth:`ResistiveMemory.random_weights`): a fixed SET pulse on a fresh device
   lands at a random conductance, ``G ~ Normal(switch_mean, switch_std)`` clipped to ``[g_min, g_max]``.
   With both devices of a pair switched this way, ``G⁺ - G⁻`` is a zero-mean random weight for free: the
   source of the fixed random reservoir in the paper.
2. **Programming** (:meth:`ResistiveMemory.program`) of a target weight ``w``: ``G⁺ = g_min + max(w,0)/k``,
   ``G⁻ = g_min + max(-w,0)/k``, rounded to one of ``n_levels`` evenly spaced levels in ``[g_min, g_max]``,
   plus programming noise ``Normal(0, program_noise·(g_max - g_min))`` (what remains after write-verify),
   clipped to ``[g_min, g_max]``.
3. **Stuck-at faults**: each device independently is stuck at ``g_max`` (probability ``p_stuck_on``) or at
   ``g_min`` (``p_stuck_off``) whatever was written.
4. **Read noise** (:meth:`ResistiveMemory.read`, :meth:`ResistiveMemory.noisy_matmul`): every read
   multiplies each conductance by ``1 + read_noise·ξ``, ``ξ ~ Normal(0, 1)`` fresh per read.

For a crossbar driven by input vector ``u`` (spikes or event counts), the column current
``I = Σ_j u_j·w_ji`` then has mean ``u @ W`` and variance ``Σ_j u_j²·k²·read_noise²·(G⁺_ji² + G⁻_ji²)``;
:meth:`noisy_matmul` samples it exactly in distribution per sample and per time step (each step is one read
of the array) at the cost of one extra matmul, instead of drawing a whole noisy matrix per sample.

``device_model=None`` in :class:`snn.lsm.LiquidStateMachine` means ideal weights (none of the above).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..checks import check_range

__all__ = ["ResistiveMemory", "ProgrammedArray", "make_device_model", "DEVICE_MODELS"]

DEVICE_MODELS = ("none", "rram")


@dataclass
class ProgrammedArray:
    """Conductances of programmed differential pairs (µS) and the weight per µS ``k``."""
    g_pos: torch.Tensor
    g_neg: torch.Tensor
    k: float

    def weights(self) -> torch.Tensor:
        """The noise-free weight ``k·(G⁺ - G⁻)`` of the programmed array."""
        return self.k * (self.g_pos - self.g_neg)


@dataclass
class ResistiveMemory:
    """Parameters of the device model (defaults: a 40 nm HfOx-like RRAM macro; see the module docstring).

    g_min:        conductance of the reset / high-resistance state (µS).
    g_max:        largest programmable conductance (µS).
    switch_mean:  mean conductance after one stochastic SET pulse (µS).
    switch_std:   standard deviation of that conductance, device to device (µS).
    n_levels:     distinguishable conductance levels in [g_min, g_max] (None = continuous).
    program_noise: std of the programming error after write-verify, as a fraction of (g_max - g_min).
    read_noise:   std of the relative conductance fluctuation on each read (fraction of G).
    p_stuck_on:   probability that a device is stuck at g_max (per device).
    p_stuck_off:  probability that a device is stuck at g_min (per device).
    seed:         seed of the programming randomness (switching, noise, faults); reads use their own stream.
    """
    g_min: float = 1.0
    g_max: float = 40.0
    switch_mean: float = 20.0
    switch_std: float = 6.0
    n_levels: int | None = 16
    program_noise: float = 0.02
    read_noise: float = 0.02
    p_stuck_on: float = 0.001
    p_stuck_off: float = 0.002
    seed: int = 0
    _read_gen: torch.Generator = field(default=None, init=False, repr=False)

    def __post_init__(self):
        who = "ResistiveMemory"
        check_range(self.g_min, "g_min", who, low=0)
        check_range(self.g_max, "g_max", who, low=self.g_min, low_open=True)
        check_range(self.switch_mean, "switch_mean", who, low=self.g_min, high=self.g_max)
        check_range(self.switch_std, "switch_std", who, low=0)
        if self.n_levels is not None and (isinstance(self.n_levels, bool) or int(self.n_levels) != self.n_levels
                                          or self.n_levels < 2):
            raise ValueError(f"{who}: n_levels must be an integer >= 2 or None, got {self.n_levels!r}")
        for name in ("program_noise", "read_noise"):
            check_range(getattr(self, name), name, who, low=0)
        for name in ("p_stuck_on", "p_stuck_off"):
            check_range(getattr(self, name), name, who, low=0, high=1)
        if self.p_stuck_on + self.p_stuck_off > 1:
            raise ValueError(f"{who}: p_stuck_on + p_stuck_off must be <= 1, got {self.p_stuck_on + self.p_stuck_off}")
        self._read_gen = torch.Generator().manual_seed(self.seed + 1_000_003)

    # -- helpers -----------------------------------------------------------------------------------
    @property
    def g_range(self) -> float:
        return self.g_max - self.g_min

    def _gen(self, generator):
        return generator if generator is not None else torch.Generator().manual_seed(self.seed)

    def quantize(self, g: torch.Tensor) -> torch.Tensor:
        """Round conductances to the nearest of ``n_levels`` evenly spaced levels (no-op when None)."""
        g = g.clamp(self.g_min, self.g_max)
        if self.n_levels is None:
            return g
        step = self.g_range / (int(self.n_levels) - 1)
        return self.g_min + torch.round((g - self.g_min) / step) * step

    def faults(self, g: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Apply stuck-at-on (``g_max``) and stuck-at-off (``g_min``) faults."""
        u = torch.rand(g.shape, generator=generator)
        g = torch.where(u < self.p_stuck_on, torch.full_like(g, self.g_max), g)
        return torch.where((u >= self.p_stuck_on) & (u < self.p_stuck_on + self.p_stuck_off),
                           torch.full_like(g, self.g_min), g)

    def _finish(self, g: torch.Tensor, generator) -> torch.Tensor:
        """Quantize, add programming noise, clip, apply faults."""
        g = self.quantize(g)
        if self.program_noise > 0:
            g = g + torch.randn(g.shape, generator=generator) * (self.program_noise * self.g_range)
        return self.faults(g.clamp(self.g_min, self.g_max), generator)

    # -- the three ways to get weights ---------------------------------------------------------------
    def switching_conductances(self, shape, generator: torch.Generator | None = None) -> torch.Tensor:
        """Conductances (µS) of fresh devices after one stochastic SET pulse (clipped normal)."""
        g = self._gen(generator)
        return (self.switch_mean + self.switch_std * torch.randn(shape, generator=g)).clamp(self.g_min, self.g_max)

    def random_weights(self, shape, w_max: float = 1.0, generator: torch.Generator | None = None) -> ProgrammedArray:
        """Random differential pairs made by stochastic switching (then levels, noise and faults as programmed)."""
        g = self._gen(generator)
        gp = self._finish(self.switching_conductances(shape, g), g)
        gn = self._finish(self.switching_conductances(shape, g), g)
        return ProgrammedArray(gp, gn, float(w_max) / self.g_range)

    def program(self, w: torch.Tensor, w_max: float | None = None,
                generator: torch.Generator | None = None) -> ProgrammedArray:
        """Write target weights ``w`` into differential pairs; ``w_max`` (default ``max|w|``) maps to ``g_max``."""
        w = torch.as_tensor(w, dtype=torch.float32)
        if not torch.isfinite(w).all():
            raise ValueError("ResistiveMemory.program: weights contain NaN or Inf")
        w_max = float(w.abs().max()) if w_max is None else float(w_max)
        if w_max <= 0:
            w_max = 1.0
        k = w_max / self.g_range
        g = self._gen(generator)
        gp = self._finish(self.g_min + w.clamp(min=0) / k, g)
        gn = self._finish(self.g_min + (-w).clamp(min=0) / k, g)
        return ProgrammedArray(gp, gn, k)

    # -- reading -----------------------------------------------------------------------------------
    def read(self, arr: ProgrammedArray, generator: torch.Generator | None = None) -> torch.Tensor:
        """One noisy read of the whole array: ``k·(G⁺(1+σξ⁺) - G⁻(1+σξ⁻))``."""
        g = generator if generator is not None else self._read_gen
        s = self.read_noise
        gp = arr.g_pos * (1 + s * torch.randn(arr.g_pos.shape, generator=g))
        gn = arr.g_neg * (1 + s * torch.randn(arr.g_neg.shape, generator=g))
        return arr.k * (gp - gn)

    def read_variance(self, arr: ProgrammedArray) -> torch.Tensor:
        """Per-weight read variance ``k²·σ²·(G⁺² + G⁻²)`` (dimensionless weight units²)."""
        return (arr.k * self.read_noise) ** 2 * (arr.g_pos ** 2 + arr.g_neg ** 2)

    def sample_read(self, mean: torch.Tensor, var: torch.Tensor, generator: torch.Generator | None = None):
        """A read current given its noise-free value ``mean`` and read variance ``var`` (Gaussian)."""
        if self.read_noise == 0:
            return mean
        g = generator if generator is not None else self._read_gen
        return mean + var.clamp_min(0).sqrt() * torch.randn(mean.shape, generator=g, dtype=mean.dtype)

    def noisy_matmul(self, u: torch.Tensor, w_mean: torch.Tensor, w_var: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """``u @ W`` with fresh read noise per row of ``u``: mean ``u @ w_mean``, variance ``u² @ w_var``."""
        return self.sample_read(u @ w_mean, (u * u) @ w_var, generator)


def make_device_model(name: str | None, **kw) -> ResistiveMemory | None:
    """``'none'``/``None`` → ideal weights; ``'rram'`` → :class:`ResistiveMemory` (keyword overrides)."""
    if name is None or name == "none":
        return None
    if name == "rram":
        return ResistiveMemory(**kw)
    raise ValueError(f"unknown device model {name!r}; accepted: {DEVICE_MODELS}")
