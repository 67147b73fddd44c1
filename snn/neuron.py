"""Spiking neuron modules: thin ``nn.Module`` shells over :mod:`snn.ops`.

Every neuron takes ``step_mode='s'`` (input ``[B, ...]``) or ``'m'`` (input
``[T, B, ...]``), keeps its state between calls until :func:`snn.functional.reset`,
and runs its dynamics on ``backend='auto'|'torch'|'cpp'|'cuda'|'triton'``.
The equations are in :mod:`snn.functional`.

Precision: float16/bfloat16 inputs run with the state (``v``, ``b``, ``u``) in float32, in every
backend and both step modes, and the state stays float32 between single-step calls; spikes and
``v_seq`` come back in the input dtype. So one input gives the same spikes on every backend and in
either step mode (float64 inputs keep a float64 state).

Threshold comparison: IF, LIF, PLIF and ALIF fire on ``H >= V_th`` (SpikingJelly's convention)
unless built with ``strict_threshold=True``, which fires on ``H > V_th`` (NIR, Norse, snnTorch);
CUBALIF always fires on ``V > V_th`` (Lava/Loihi). ``neuron.strict_threshold`` says which.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from . import functional as F
from . import ops
from . import surrogate as sg
from .base import MemoryModule, guard_carried_state, watch_backward
from .checks import check_bool, check_finite, check_range, check_real_tensor, check_sequence

__all__ = ["BaseNeuron", "IF", "LIF", "PLIF", "ALIF", "CUBALIF"]


class BaseNeuron(MemoryModule):
    """Common shell: input checks, state handling, single-/multi-step, backend choice.

    ``store_v_seq=True`` keeps the membrane potential of every step of the last call in
    ``self.v_seq`` (``[T, B, ...]``), for plots; it costs memory. ``strict_threshold=True`` fires on
    ``H > V_th`` instead of ``H >= V_th``. Parameters are checked here, once: finite, in range, flags
    True/False. Inputs must be real floating-point tensors with at least one time step; a backward
    pass through a state left over from an earlier batch (not reset) is a clear error.
    """

    family = "lif"
    state_names: tuple[str, ...] = ("v",)

    def __init__(self, *, v_threshold: float = 1.0, surrogate=None, detach_reset: bool = False,
                 strict_threshold: bool = False, step_mode: str = "s", backend: str = "auto",
                 store_v_seq: bool = False):
        super().__init__(step_mode)
        who = type(self).__name__
        if backend != "auto" and backend not in ops.BACKENDS:
            raise ValueError(f"{who}: unknown backend {backend!r}; accepted: 'auto' or one of {ops.BACKENDS}")
        self.v_threshold = check_finite(v_threshold, "v_threshold", who)
        self.surrogate = sg.get(surrogate)
        self.detach_reset = check_bool(detach_reset, "detach_reset", who)
        self.strict_threshold = check_bool(strict_threshold, "strict_threshold", who)
        self.backend = backend
        self.store_v_seq = check_bool(store_v_seq, "store_v_seq", who)
        self.last_backend: str | None = None
        self.v_seq: torch.Tensor | None = None
        self.reset()

    # -- state ---------------------------------------------------------------------------------
    def reset(self) -> None:
        for name in self.state_names:
            setattr(self, name, None)
        self.v_seq = None
        self._backward_token = None  # set when a backward pass reaches the graph of the last call

    def _initial(self, name: str) -> float:
        return 0.0

    def _state(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """The state ``name`` for an input step shaped like ``like``, in the state dtype (float32 for 16-bit
        inputs, :func:`snn.functional.state_dtype`); created on first use."""
        dtype = F.state_dtype(like.dtype)
        cur = getattr(self, name)
        if cur is None:
            return torch.full(like.shape, self._initial(name), dtype=dtype, device=like.device)
        if cur.shape != like.shape:
            raise ValueError(f"{type(self).__name__}: input step shape {tuple(like.shape)} differs from the state "
                             f"shape {tuple(cur.shape)}; call snn.functional.reset(net) between batches")
        cur = cur.to(dtype=dtype, device=like.device)
        return guard_carried_state(cur, self._backward_token, type(self).__name__)

    # -- forward -------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        x_seq = x.unsqueeze(0) if self.step_mode == "s" else x
        self.last_backend = self._pick_backend(x_seq)
        spikes = self._run(x_seq, self.last_backend)
        self._backward_token = watch_backward(spikes)
        return spikes[0] if self.step_mode == "s" else spikes

    def _check_input(self, x) -> None:
        """A real floating tensor of rank >= 1 ('s') or >= 2 ('m'), finite, with T >= 1 steps in 'm'."""
        who = type(self).__name__
        check_real_tensor(x, "input", who)
        check_sequence(x, self.step_mode, who)
        if self.step_mode == "m" and x.shape[0] == 0:
            raise ValueError(f"{who}: step_mode='m' input of shape {tuple(x.shape)} has T = 0 time steps; "
                             f"a sequence [T, B, ...] needs T >= 1")

    def _pick_backend(self, x_seq: torch.Tensor) -> str:
        """The backend for this call; the smooth (``spiking=False``) surrogate mode runs on torch only."""
        if not self.surrogate.spiking:
            if self.backend not in ("auto", "torch"):
                raise RuntimeError(f"{type(self).__name__}: a non-spiking surrogate ({self.surrogate}) runs only "
                                   f"on the torch backend, not {self.backend!r}")
            return "torch"
        return ops.resolve_backend(self.backend, x_seq, self.family)

    def _run(self, x_seq: torch.Tensor, backend: str) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _keep_v_seq(self, v_seq):
        self.v_seq = v_seq.detach() if v_seq is not None else None

    def extra_repr(self) -> str:
        return (f"v_threshold={self.v_threshold}, strict_threshold={self.strict_threshold}, "
                f"surrogate={self.surrogate}, detach_reset={self.detach_reset}, "
                f"step_mode={self.step_mode!r}, backend={self.backend!r}")


class LIF(BaseNeuron):
    r"""Leaky integrate-and-fire.

    decay_input=True:  H[t] = V[t-1] + (X[t] - (V[t-1] - V_reset)) / tau
    decay_input=False: H[t] = V[t-1] - (V[t-1] - V_reset) / tau + X[t]
    S[t] = Θ(H[t] - V_th); hard reset V[t] = H·(1-S) + V_reset·S, or soft (v_reset=None) V[t] = H - V_th·S.
    Matches SpikingJelly's ``LIFNode`` for the same parameters.
    """

    def __init__(self, tau: float = 2.0, v_threshold: float = 1.0, v_reset: float | None = 0.0,
                 decay_input: bool = True, **kw):
        who = type(self).__name__
        self.tau = check_range(tau, "tau", who, low=1.0) if tau is not None else None  # decay 1/tau in (0, 1]
        self.v_reset = _check_reset(v_reset, v_threshold, who)
        self.decay_input = check_bool(decay_input, "decay_input", who)
        super().__init__(v_threshold=v_threshold, **kw)

    def _initial(self, name: str) -> float:
        return 0.0 if self.v_reset is None else self.v_reset

    def decay(self):
        """d = 1/tau (a float here; a tensor with a gradient for PLIF)."""
        return 1.0 / self.tau

    def _run(self, x_seq, backend):
        v0 = self._state("v", x_seq[0])
        s, self.v, v_seq = ops.lif_multistep(
            x_seq, v0, self.decay(), backend=backend, v_threshold=self.v_threshold, v_reset=self.v_reset,
            decay_input=self.decay_input, detach_reset=self.detach_reset, surrogate=self.surrogate,
            record_v=self.store_v_seq, strict_threshold=self.strict_threshold)
        self._keep_v_seq(v_seq)
        return s

    def extra_repr(self) -> str:
        return f"tau={self.tau}, v_reset={self.v_reset}, decay_input={self.decay_input}, " + super().extra_repr()


class IF(LIF):
    """Integrate-and-fire: H[t] = V[t-1] + X[t], then fire and reset as LIF. Matches SpikingJelly's ``IFNode``."""

    def __init__(self, v_threshold: float = 1.0, v_reset: float | None = 0.0, **kw):
        super().__init__(tau=None, v_threshold=v_threshold, v_reset=v_reset, decay_input=False, **kw)

    def decay(self):
        return 0.0

    def extra_repr(self) -> str:
        return f"v_reset={self.v_reset}, " + BaseNeuron.extra_repr(self)


class PLIF(LIF):
    """Parametric LIF: LIF with 1/tau = sigmoid(w), w learnable (one per layer), w0 = -log(init_tau - 1).

    Matches SpikingJelly's ``ParametricLIFNode``.
    """

    def __init__(self, init_tau: float = 2.0, v_threshold: float = 1.0, v_reset: float | None = 0.0,
                 decay_input: bool = True, **kw):
        init_tau = check_range(init_tau, "init_tau", "PLIF", low=1.0, low_open=True)  # w0 is infinite at 1
        super().__init__(tau=init_tau, v_threshold=v_threshold, v_reset=v_reset, decay_input=decay_input, **kw)
        self.w = nn.Parameter(torch.tensor(-math.log(init_tau - 1.0)))

    def decay(self):
        return torch.sigmoid(self.w)

    @property
    def current_tau(self) -> float:
        return float(1.0 / torch.sigmoid(self.w.detach()))


class ALIF(LIF):
    """Adaptive-threshold LIF: A[t] = rho·A[t-1] + S[t-1]; fires on H[t] >= V_th + beta·A[t].

    The membrane is LIF's. ``rho`` in [0, 1) is the adaptation decay, ``beta >= 0`` its strength.
    """

    family = "alif"
    state_names = ("v", "b")

    def __init__(self, tau: float = 2.0, v_threshold: float = 1.0, v_reset: float | None = 0.0,
                 decay_input: bool = True, rho: float = 0.9, beta: float = 0.1, **kw):
        self.rho = check_range(rho, "rho", "ALIF", low=0.0, high=1.0, high_open=True)
        self.beta = check_range(beta, "beta", "ALIF", low=0.0)
        super().__init__(tau=tau, v_threshold=v_threshold, v_reset=v_reset, decay_input=decay_input, **kw)

    def _initial(self, name: str) -> float:
        return 0.0 if name == "b" else super()._initial(name)

    def _run(self, x_seq, backend):
        v0, b0 = self._state("v", x_seq[0]), self._state("b", x_seq[0])
        s, self.v, self.b, v_seq = ops.alif_multistep(
            x_seq, v0, b0, self.decay(), backend=backend, rho=self.rho, beta=self.beta,
            v_threshold=self.v_threshold, v_reset=self.v_reset, decay_input=self.decay_input,
            detach_reset=self.detach_reset, surrogate=self.surrogate, record_v=self.store_v_seq,
            strict_threshold=self.strict_threshold)
        self._keep_v_seq(v_seq)
        return s

    def extra_repr(self) -> str:
        return f"rho={self.rho}, beta={self.beta}, " + super().extra_repr()


class CUBALIF(BaseNeuron):
    """Current-based LIF of Loihi 2 (Lava's ``LIF`` process), float mode.

    U[t] = U[t-1]·(1-du) + X[t];  V[t] = V[t-1]·(1-dv) + U[t] + bias;  S = V > V_th (strict);  V = 0 where S.
    The comparison is always strict (``strict_threshold=True``; False is an error).
    ``du``, ``dv`` in [0, 1]. The bit-accurate fixed-point form is in :mod:`snn.export.loihi`.
    """

    family = "cubalif"
    state_names = ("u", "v")

    def __init__(self, du: float = 0.5, dv: float = 0.5, v_threshold: float = 1.0, bias: float = 0.0,
                 strict_threshold: bool = True, **kw):
        if not check_bool(strict_threshold, "strict_threshold", "CUBALIF"):
            raise ValueError(f"CUBALIF: strict_threshold must be True (it fires on V > V_th, as Lava/Loihi do); "
                             f"got {strict_threshold!r}. For a neuron that fires on V >= V_th use LIF/IF")
        self.du = check_range(du, "du", "CUBALIF", low=0.0, high=1.0)
        self.dv = check_range(dv, "dv", "CUBALIF", low=0.0, high=1.0)
        self.bias = check_finite(bias, "bias", "CUBALIF")
        check_range(v_threshold, "v_threshold", "CUBALIF", low=0.0, low_open=True)  # the reset potential is 0
        super().__init__(v_threshold=v_threshold, strict_threshold=True, **kw)

    def _run(self, x_seq, backend):
        u0, v0 = self._state("u", x_seq[0]), self._state("v", x_seq[0])
        s, self.u, self.v, v_seq = ops.cubalif_multistep(
            x_seq, u0, v0, backend=backend, du=self.du, dv=self.dv, v_threshold=self.v_threshold, bias=self.bias,
            detach_reset=self.detach_reset, surrogate=self.surrogate, record_v=self.store_v_seq)
        self._keep_v_seq(v_seq)
        return s

    def extra_repr(self) -> str:
        return f"du={self.du}, dv={self.dv}, bias={self.bias}, " + super().extra_repr()


def _check_reset(v_reset, v_threshold, who):
    """Hard reset needs a finite V_reset < V_th; soft reset (None) needs V_th > 0."""
    v_threshold = check_finite(v_threshold, "v_threshold", who)
    if v_reset is None:
        if v_threshold <= 0:
            raise ValueError(f"{who}: with soft reset (v_reset=None) v_threshold must be > 0, got {v_threshold}")
        return None
    v_reset = check_finite(v_reset, "v_reset", who)
    if v_reset >= v_threshold:
        raise ValueError(f"{who}: v_reset must be below v_threshold ({v_threshold}), got v_reset={v_reset}")
    return v_reset


def __getattr__(name: str):
    """``snn.neuron.DSRIF`` / ``DSRLIF``: the DSR neurons, defined with their training method in snn.train.dsr."""
    if name in ("DSRIF", "DSRLIF"):
        from .train import dsr

        return getattr(dsr, name)
    raise AttributeError(f"module 'snn.neuron' has no attribute {name!r}")
