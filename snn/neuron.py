"""Spiking neuron modules: thin ``nn.Module`` shells over a neuron spec (:mod:`snn.neurons`) and :mod:`snn.ops`.

Every neuron takes ``step_mode='s'`` (input ``[B, ...]``) or ``'m'`` (input ``[T, B, ...]``), keeps its state
between calls until :func:`snn.functional.reset`, and runs its dynamics on
``backend='auto'|'torch'|'cpp'|'cuda'|'triton'``. The equations are in its spec's module
(:mod:`snn.neurons.lif`, :mod:`~snn.neurons.alif`, :mod:`~snn.neurons.cubalif`); its parameters are checked
there, once (finite, in range, flags True/False).

A neuron of your own: declare a :class:`snn.neurons.NeuronSpec` and a class that names it::

    class MyNeuron(snn.neuron.BaseNeuron):
        spec = MY_SPEC                      # bound in the registry (snn.neurons.spec_of)

``MyNeuron(**params)`` then validates the spec's parameters and runs on every backend its spec has a step for.

Precision: float16/bfloat16 inputs run with the state (``v``, ``b``, ``u``) in float32, in every backend and
both step modes, and the state stays float32 between single-step calls; spikes and ``v_seq`` come back in the
input dtype. So one input gives the same spikes on every backend and in either step mode (float64 inputs keep
a float64 state).

Threshold comparison: IF, LIF, PLIF and ALIF fire on ``H >= V_th`` (SpikingJelly's convention) unless built
with ``strict_threshold=True``, which fires on ``H > V_th`` (NIR, Norse, snnTorch); CUBALIF always fires on
``V > V_th`` (Lava/Loihi). ``neuron.strict_threshold`` says which.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from . import functional as F
from . import neurons
from . import ops
from . import surrogate as sg
from .base import MemoryModule, guard_carried_state, watch_backward
from .checks import check_bool, check_real_tensor, check_sequence
from .neurons import alif as _alif
from .neurons import cubalif as _cubalif
from .neurons import dsr as _dsr
from .neurons import eif as _eif
from .neurons import izhikevich as _izhikevich
from .neurons import lif as _lif
from .neurons import qif as _qif

__all__ = ["BaseNeuron", "IF", "LIF", "PLIF", "ALIF", "CUBALIF", "QIF", "EIF", "Izhikevich", "DSRNeuron", "DSRIF",
           "DSRLIF"]


class BaseNeuron(MemoryModule):
    """A neuron module over the spec in its class's ``spec``: input checks, state handling, single-/multi-step,
    backend choice.

    ``params`` are the spec's parameters (checked by :meth:`snn.neurons.NeuronSpec.validate` and kept as
    attributes); its learned parameters become ``nn.Parameter`` attributes. ``store_v_seq=True`` keeps the
    recorded state (the membrane) of every step of the last call in ``self.v_seq`` (``[T, B, ...]``), for plots.
    ``strict_threshold=True`` fires on ``H > V_th`` instead of ``H >= V_th``. Inputs must be real floating-point
    tensors with at least one time step; a backward pass through a state left over from an earlier batch (not
    reset) is a clear error.
    """

    spec: neurons.NeuronSpec

    def __init_subclass__(cls, bind: bool = True, **kw):
        super().__init_subclass__(**kw)
        if bind and "spec" in cls.__dict__:  # only a class that declares its own spec is bound to one
            neurons.bind(cls, cls.spec)

    def __init__(self, *, surrogate=None, detach_reset: bool = False, strict_threshold: bool | None = None,
                 step_mode: str = "s", backend: str = "auto", store_v_seq: bool = False, **params):
        super().__init__(step_mode)
        who = type(self).__name__
        if backend != "auto" and backend not in ops.BACKENDS:
            raise ValueError(f"{who}: unknown backend {backend!r}; accepted: 'auto' or one of {ops.BACKENDS}")
        values = self.spec.validate(params, who)
        for name, value in values.items():
            setattr(self, name, value)
        for p in self.spec.learned:
            setattr(self, p.name, nn.Parameter(torch.tensor(float(p.init(values)))))
        self.strict_threshold = self._comparison(strict_threshold, who)
        self.surrogate = sg.get(surrogate)
        self.detach_reset = check_bool(detach_reset, "detach_reset", who)
        self.backend = backend
        self.store_v_seq = check_bool(store_v_seq, "store_v_seq", who)
        self.last_backend: str | None = None
        self.v_seq: torch.Tensor | None = None
        self.reset()

    def _comparison(self, strict, who: str) -> bool:
        """The threshold comparison: the module's choice, or the spec's own when it is fixed."""
        fixed = self.spec.strict_threshold
        if strict is None:
            return bool(fixed)
        strict = check_bool(strict, "strict_threshold", who)
        if fixed is not None and strict != fixed:
            raise ValueError(f"{who}: strict_threshold must be {fixed} (it fires on V {'>' if fixed else '>='} "
                             f"V_th, as Lava/Loihi do); got {strict!r}. For a neuron that fires on V >= V_th use "
                             f"LIF/IF")
        return strict

    @property
    def state_names(self) -> tuple[str, ...]:
        return self.spec.state_names

    def values(self) -> dict:
        """The spec's parameters and learned parameters as this module holds them."""
        out = {p.name: getattr(self, p.name) for p in self.spec.params}
        out.update({p.name: getattr(self, p.name) for p in self.spec.learned})
        return out

    def kernel(self) -> tuple[tuple, tuple[bool, ...]]:
        """The step's parameter block and flags (:meth:`snn.neurons.NeuronSpec.kernel`)."""
        return self.spec.kernel(self.values())

    # -- state ---------------------------------------------------------------------------------
    def reset(self) -> None:
        for name in self.state_names:
            setattr(self, name, None)
        self.v_seq = None
        self._backward_token = None  # set when a backward pass reaches the graph of the last call

    def _state(self, name: str, like: torch.Tensor, params) -> torch.Tensor:
        """The state ``name`` for an input step shaped like ``like``, in the state dtype (float32 for 16-bit
        inputs, :func:`snn.functional.state_dtype`); created on first use."""
        dtype = F.state_dtype(like.dtype)
        cur = getattr(self, name)
        if cur is None:
            return torch.full(like.shape, self.spec.initial(name, params), dtype=dtype, device=like.device)
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
        return ops.resolve_backend(self.backend, x_seq, self.spec)

    def _run(self, x_seq: torch.Tensor, backend: str) -> torch.Tensor:
        params, flags = self.kernel()
        states = [self._state(name, x_seq[0], params) for name in self.state_names]
        s, last, v_seq = ops.run(self.spec, x_seq, states, params, flags, surrogate=self.surrogate,
                                 detach_reset=self.detach_reset, strict_threshold=self.strict_threshold,
                                 record_v=self.store_v_seq, backend=backend)
        for name, value in zip(self.state_names, last):
            setattr(self, name, value)
        self.v_seq = v_seq.detach() if v_seq is not None else None
        return s

    def extra_repr(self) -> str:
        params = ", ".join(f"{p.name}={getattr(self, p.name)}" for p in self.spec.params)
        return (f"{params}, strict_threshold={self.strict_threshold}, surrogate={self.surrogate}, "
                f"detach_reset={self.detach_reset}, step_mode={self.step_mode!r}, backend={self.backend!r}")


class LIF(BaseNeuron):
    r"""Leaky integrate-and-fire (:mod:`snn.neurons.lif`).

    decay_input=True:  H[t] = V[t-1] + (X[t] - (V[t-1] - V_reset)) / tau
    decay_input=False: H[t] = V[t-1] - (V[t-1] - V_reset) / tau + X[t]
    S[t] = Θ(H[t] - V_th); hard reset V[t] = H·(1-S) + V_reset·S, or soft (v_reset=None) V[t] = H - V_th·S.
    Matches SpikingJelly's ``LIFNode`` for the same parameters.
    """

    spec = _lif.LIF

    def __init__(self, tau: float = 2.0, v_threshold: float = 1.0, v_reset: float | None = 0.0,
                 decay_input: bool = True, **kw):
        super().__init__(tau=tau, v_threshold=v_threshold, v_reset=v_reset, decay_input=decay_input, **kw)

    def decay(self):
        """d = 1/tau (a float here; 0 for IF; a tensor with a gradient for PLIF)."""
        return self.kernel()[0][0]


class IF(LIF):
    """Integrate-and-fire: H[t] = V[t-1] + X[t], then fire and reset as LIF. Matches SpikingJelly's ``IFNode``."""

    spec = _lif.IF

    def __init__(self, v_threshold: float = 1.0, v_reset: float | None = 0.0, **kw):
        BaseNeuron.__init__(self, v_threshold=v_threshold, v_reset=v_reset, **kw)


class PLIF(LIF):
    """Parametric LIF: LIF with 1/tau = sigmoid(w), w learnable (one per layer), w0 = -log(init_tau - 1).

    Matches SpikingJelly's ``ParametricLIFNode``.
    """

    spec = _lif.PLIF

    def __init__(self, init_tau: float = 2.0, v_threshold: float = 1.0, v_reset: float | None = 0.0,
                 decay_input: bool = True, **kw):
        BaseNeuron.__init__(self, init_tau=init_tau, v_threshold=v_threshold, v_reset=v_reset,
                            decay_input=decay_input, **kw)

    @property
    def current_tau(self) -> float:
        return float(1.0 / torch.sigmoid(self.w.detach()))


class ALIF(LIF):
    """Adaptive-threshold LIF (:mod:`snn.neurons.alif`): A[t] = rho·A[t-1] + S[t-1]; fires on
    H[t] >= V_th + beta·A[t].

    The membrane is LIF's. ``rho`` in [0, 1) is the adaptation decay, ``beta >= 0`` its strength.
    """

    spec = _alif.ALIF

    def __init__(self, tau: float = 2.0, v_threshold: float = 1.0, v_reset: float | None = 0.0,
                 decay_input: bool = True, rho: float = 0.9, beta: float = 0.1, **kw):
        BaseNeuron.__init__(self, tau=tau, v_threshold=v_threshold, v_reset=v_reset, decay_input=decay_input,
                            rho=rho, beta=beta, **kw)


class CUBALIF(BaseNeuron):
    """Current-based LIF of Loihi 2 (Lava's ``LIF`` process), float mode (:mod:`snn.neurons.cubalif`).

    U[t] = U[t-1]·(1-du) + X[t];  V[t] = V[t-1]·(1-dv) + U[t] + bias;  S = V > V_th (strict);  V = 0 where S.
    The comparison is always strict (``strict_threshold=True``; False is an error).
    ``du``, ``dv`` in [0, 1]. The bit-accurate fixed-point form is in :mod:`snn.export.loihi`.
    """

    spec = _cubalif.CUBALIF

    def __init__(self, du: float = 0.5, dv: float = 0.5, v_threshold: float = 1.0, bias: float = 0.0, **kw):
        super().__init__(du=du, dv=dv, v_threshold=v_threshold, bias=bias, **kw)


class QIF(BaseNeuron):
    """Quadratic integrate-and-fire (SpikingJelly's ``QIFNode``); parameters and equations in
    :mod:`snn.neurons.qif`."""

    spec = _qif.QIF


class EIF(BaseNeuron):
    """Exponential integrate-and-fire (SpikingJelly's ``EIFNode``); parameters and equations in
    :mod:`snn.neurons.eif`."""

    spec = _eif.EIF


class Izhikevich(BaseNeuron):
    """Izhikevich neuron (SpikingJelly's ``IzhikevichNode``): a quadratic membrane with an adaptation current;
    parameters and equations in :mod:`snn.neurons.izhikevich`."""

    spec = _izhikevich.IZHIKEVICH


class DSRNeuron(BaseNeuron, bind=False):
    """A neuron of the DSR training method (:mod:`snn.neurons.dsr`): spikes of size V_th forward (the spec's
    step on the chosen backend, state in float32 for 16-bit inputs), the gradient of the representation
    mapping backward. Multi-step only (``[T, B, ...]``); every call starts from U = 0, nothing is carried.

    ``v_threshold`` is a trainable scalar per layer (``trainable_threshold=False`` freezes it), clamped below at
    ``v_threshold_min``. The class is not bound in the registry of neuron families (it is chosen by
    ``method='dsr'``, not by name) and has no export mapping.
    """

    spec = _dsr.DSR

    def __init__(self, *, tau: float | None = None, v_threshold: float = 1.0, alpha: float = 0.5,
                 v_threshold_min: float = 0.05, trainable_threshold: bool = True, backend: str = "auto"):
        super().__init__(step_mode="m", backend=backend, tau=tau, v_threshold=v_threshold, alpha=alpha,
                         v_threshold_min=v_threshold_min, trainable_threshold=trainable_threshold)
        self.v_threshold = nn.Parameter(torch.tensor(self.v_threshold), requires_grad=self.trainable_threshold)

    @property
    def lam(self) -> float:
        """The retention λ of the membrane and of the representation (1 for IF)."""
        return _dsr.retention(self.tau)

    @BaseNeuron.step_mode.setter
    def step_mode(self, mode):
        if mode != "m":
            raise ValueError(f"{type(self).__name__} works on whole sequences: step_mode must be 'm', got {mode!r}")
        self._step_mode = mode

    def _run(self, x_seq: torch.Tensor, backend: str) -> torch.Tensor:
        v_th = self.v_threshold.clamp_min(self.v_threshold_min)
        return _dsr.dsr_multistep(x_seq, v_th, self.lam, self.alpha, backend=backend)

    def extra_repr(self) -> str:
        return (f"v_threshold={float(self.v_threshold):.4g}, alpha={self.alpha}, lam={self.lam:.4g}, "
                f"backend={self.backend!r}")


class DSRIF(DSRNeuron):
    """DSR integrate-and-fire: U[t] = U[t-1] + X[t]; representation = firing rate."""

    def __init__(self, v_threshold: float = 1.0, alpha: float = 0.5, v_threshold_min: float = 0.05,
                 trainable_threshold: bool = True, backend: str = "auto"):
        super().__init__(v_threshold=v_threshold, alpha=alpha, v_threshold_min=v_threshold_min,
                         trainable_threshold=trainable_threshold, backend=backend)


class DSRLIF(DSRNeuron):
    """DSR leaky integrate-and-fire: U[t] = λ·U[t-1] + X[t], λ = 1 - 1/tau (tau > 1); representation =
    λ-weighted rate."""

    def __init__(self, tau: float = 2.0, **kw):
        if tau is None:
            raise ValueError("DSRLIF: tau must be a number > 1 (λ = 1 - 1/tau); for λ = 1 use DSRIF")
        super().__init__(tau=tau, **kw)
