r"""``LiquidStateMachine``: a fixed random reservoir of LIF neurons that turns event streams into features.

Dynamics (one step = one time bin of the input; ``x[t]`` ``[B, n_in]``, spikes ``s[t]`` ``[B, N]``)::

    I[t] = x[t] @ W_in + s[t-1] @ W_rec                   (input current, threshold units)
    H[t] = V[t-1] - (V[t-1] - V_reset) / tau + I[t]       (LIF, decay_input=False, see snn.functional.lif)
    s[t] = Θ(H[t] - V_th);  V[t] = H[t]·(1 - s[t]) + V_reset·s[t]

``W_rec[pre, post]`` obeys Dale's law: rows of excitatory neurons are >= 0, rows of inhibitory ones <= 0
(inhibitory magnitudes are multiplied by ``inh_gain``). Connectivity is random-sparse (``p_rec``) or
distance-dependent on a 3-D grid (``connectivity='distance'``, ``lam``); see :mod:`snn.lsm.connectivity`.
``W_rec`` is then scaled to the spectral radius ``spectral_radius`` (None: no scaling) and the input gain can
be calibrated to a target firing rate (:meth:`LiquidStateMachine.calibrate`).

With a device model (:class:`snn.lsm.ResistiveMemory`) the connected synapses are realised as differential
pairs of resistive devices: ``device_weights='program'`` writes the ideal weights into the array (levels,
programming noise, stuck-at faults), ``'switching'`` takes the magnitudes from stochastic switching of fresh
devices, each pair oriented so that its sign follows Dale's law. Every array read (each time step) adds
read noise. Unconnected synapses have no device (weight exactly 0).

Features (:meth:`LiquidStateMachine.features`), with ``T`` split into ``n_bins`` equal bins:

* ``counts``: spikes of each neuron in each bin;
* ``traces``: mean over each bin of the low-pass trace ``r[t] = r[t-1]·exp(-1/trace_tau) + s[t]``;
* ``all``: counts, traces and the membrane potential ``V`` at the last step of each bin (the sub-threshold
  state).

Input and recurrent steps are dense or sparse (CSR) matmuls, whichever is faster for the size and density
(:class:`snn.lsm.synapses.SynapseMatrix`; ``recurrent='auto'``).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

from .. import checks, ops
from .. import surrogate as sg
from . import connectivity as C
from . import event_kernel
from .device import ResistiveMemory
from .synapses import SynapseMatrix

__all__ = ["LiquidStateMachine", "FEATURES"]

FEATURES = ("counts", "traces", "both", "all")
ENGINES = ("auto", "torch", "event")
INPUT_FIELDS = ("auto", "local", "smooth", "random")
_CONNECTIVITY = ("random", "distance")


class LiquidStateMachine(nn.Module):
    """N LIF neurons with fixed random input and recurrent weights (see the module docstring).

    n_inputs:        input channels per step (e.g. 2·H·W event pixels).
    n_neurons:       reservoir size N.
    frac_exc:        fraction of excitatory neurons (Dale's law; 0.8 as in cortex).
    connectivity:    'random' (probability ``p_rec``) or 'distance' (Maass 3-D grid, length ``lam``).
    p_rec, lam, grid_shape: the recurrent connection parameters (``lam`` and grid in grid units).
    p_in:            probability that an input channel connects to a neuron (within its receptive field).
    input_shape:     (C, H, W) of the input channels (needed by the 'local' and 'smooth' input fields).
    input_fields:    'local' (retinotopic: each neuron sees, with probability ``p_in``, the pixels within
                     ``input_radius`` pixels of a random centre), 'smooth' (every channel, mixed-sign weights:
                     white noise blurred over ``input_smooth`` pixels, times a Gaussian window of
                     ``input_envelope`` pixels around a random centre when that is not None; see
                     :func:`snn.lsm.connectivity.smooth_input_fields`), 'random' (random-sparse over all channels
                     with probability ``p_in``), or 'auto' ('local' with an ``input_shape``, else 'random').
    input_frac_exc:  'local'/'random': fraction of input synapses that are excitatory (the rest inhibitory:
                     input fibres reach a neuron directly or through an inhibitory interneuron, so input weights
                     may have either sign).
    input_scale:     'local'/'random': input drive (threshold units) when every input channel carries one
                     event, i.e. the mean input weight is ``input_scale / (mean input fan-in)``; 'smooth': the L2
                     norm of each neuron's input weights (threshold units). See also :meth:`calibrate`.
    inh_gain:        inhibitory / excitatory weight magnitude ratio.
    spectral_radius: target spectral radius of ``W_rec`` (None: mean magnitude 1/fan-in, unscaled).
    tau:             membrane time constant (steps); v_threshold, v_reset as in :class:`snn.neuron.LIF`.
    trace_tau:       time constant of the low-pass feature trace (steps).
    device_model:    a :class:`ResistiveMemory` or None (ideal weights); device_weights: 'program'|'switching'.
    recurrent:       'auto' | 'dense' | 'sparse' recurrent matmul.
    backend:         neuron kernel backend of the torch engine, passed to :func:`snn.ops.lif_multistep`
                     ('inline' = a fused torch step in this module, faster for T=1 calls on CPU).
    engine:          'torch' (step loop of batched matmuls, any device model), 'event' (the event-driven C
                     kernel of :mod:`snn.lsm.event_kernel`; no per-read noise) or 'auto' (event when it builds
                     and the weights have no read noise, else torch); ``self.engine`` says which.
    seed:            one seed → one reservoir.
    """

    def __init__(self, n_inputs: int, n_neurons: int = 1000, *, frac_exc: float = 0.8, connectivity: str = "random",
                 p_rec: float = 0.1, lam: float = 2.0, grid_shape=None, p_in: float = 0.1, input_shape=None,
                 input_fields: str = "auto", input_radius: float = 3.0, input_smooth: float = 1.5,
                 input_envelope: float | None = None,
                 input_frac_exc: float = 1.0, input_scale: float = 3.0,
                 inh_gain: float = 2.0, spectral_radius: float | None = 1.0, tau: float = 3.0,
                 v_threshold: float = 1.0, v_reset: float = 0.0, trace_tau: float = 5.0,
                 device_model: ResistiveMemory | None = None, device_weights: str = "program",
                 recurrent: str = "auto", backend: str = "inline", engine: str = "auto", seed: int = 0):
        super().__init__()
        _check_numbers(n_inputs=n_inputs, n_neurons=n_neurons, frac_exc=frac_exc, p_rec=p_rec, lam=lam, p_in=p_in,
                       input_radius=input_radius, input_smooth=input_smooth, input_envelope=input_envelope,
                       input_frac_exc=input_frac_exc, input_scale=input_scale, inh_gain=inh_gain,
                       spectral_radius=spectral_radius, tau=tau, v_threshold=v_threshold, v_reset=v_reset,
                       trace_tau=trace_tau, seed=seed)
        if connectivity not in _CONNECTIVITY:
            raise ValueError(f"LiquidStateMachine: connectivity must be one of {_CONNECTIVITY}, got {connectivity!r}")
        if recurrent not in ("auto", "dense", "sparse"):
            raise ValueError(f"LiquidStateMachine: recurrent must be 'auto', 'dense' or 'sparse', got {recurrent!r}")
        if device_weights not in ("program", "switching"):
            raise ValueError(f"LiquidStateMachine: device_weights must be 'program' or 'switching', got {device_weights!r}")
        if backend != "inline" and backend != "auto" and backend not in ops.BACKENDS:
            raise ValueError(f"LiquidStateMachine: backend must be 'inline', 'auto' or one of {ops.BACKENDS}")
        if input_fields not in INPUT_FIELDS:
            raise ValueError(f"LiquidStateMachine: input_fields must be one of {INPUT_FIELDS}, got {input_fields!r}")
        if input_fields == "auto":
            input_fields = "random" if input_shape is None else "local"
        if input_fields != "random" and input_shape is None:
            raise ValueError(f"LiquidStateMachine: input_fields={input_fields!r} needs input_shape=(C, H, W)")
        if engine not in ENGINES:
            raise ValueError(f"LiquidStateMachine: engine must be one of {ENGINES}, got {engine!r}")
        if device_model is not None and not isinstance(device_model, ResistiveMemory):
            raise TypeError(f"LiquidStateMachine: device_model must be a ResistiveMemory or None, "
                            f"got {type(device_model).__name__}")
        self.n_inputs, self.n_neurons = int(n_inputs), int(n_neurons)
        self.tau, self.v_threshold = float(tau), float(v_threshold)
        self.v_reset, self.trace_tau = float(v_reset), float(trace_tau)
        self.device_model, self.backend, self.seed = device_model, backend, int(seed)
        self.config = dict(n_inputs=self.n_inputs, n_neurons=self.n_neurons, frac_exc=frac_exc,
                           connectivity=connectivity, p_rec=p_rec, lam=lam, p_in=p_in, input_shape=input_shape,
                           input_fields=input_fields, input_radius=input_radius, input_smooth=input_smooth,
                           input_envelope=input_envelope, input_frac_exc=input_frac_exc, input_scale=input_scale,
                           inh_gain=inh_gain, spectral_radius=spectral_radius, tau=tau, v_threshold=v_threshold,
                           v_reset=v_reset, trace_tau=trace_tau, device_weights=device_weights, seed=seed,
                           device_model=None if device_model is None else "rram")

        gen = torch.Generator().manual_seed(self.seed)
        n = self.n_neurons
        exc = C.neuron_types(n, frac_exc, gen)
        if connectivity == "random":
            mask = C.random_mask(n, n, p_rec, gen, no_self=True)
        else:
            mask = C.distance_mask(exc, lam, gen, grid_shape)
        sign = torch.where(exc, 1.0, -float(inh_gain))[:, None]  # Dale's law: the sign of the presynaptic row
        mag = C.magnitudes((n, n), gen) * mask
        fan_in = max(float(mask.sum()) / n, 1.0)
        w_rec = sign * mag / fan_in
        if spectral_radius is not None and mask.any():
            rho = C.spectral_radius(w_rec)
            if rho > 0:
                w_rec = w_rec * (float(spectral_radius) / rho)
        if input_shape is not None and math.prod(input_shape) != self.n_inputs:
            raise ValueError(f"LiquidStateMachine: input_shape {tuple(input_shape)} does not hold "
                             f"n_inputs={self.n_inputs} channels")
        if input_fields == "smooth":
            w_in = float(input_scale) * C.smooth_input_fields(input_shape, n, input_smooth, gen, input_envelope)
        else:
            in_mask = (C.random_mask(self.n_inputs, n, p_in, gen) if input_fields == "random"
                       else C.local_input_mask(input_shape, n, input_radius, p_in, gen))
            in_fan = max(float(in_mask.sum()) / n, 1.0)
            in_sign = torch.where(torch.rand(self.n_inputs, n, generator=gen) < input_frac_exc, 1.0, -1.0)
            w_in = float(input_scale) / in_fan * C.magnitudes((self.n_inputs, n), gen) * in_mask * in_sign

        self.register_buffer("exc", exc)
        self.register_buffer("mask_rec", mask)
        self.register_buffer("w_rec_ideal", w_rec)
        self.register_buffer("w_in_ideal", w_in)
        self.input_gain = 1.0
        self._realise(device_weights, gen)
        self.syn_in = SynapseMatrix(self.w_in, self.w_in_var, device_model)
        self.syn_rec = SynapseMatrix(self.w_rec, self.w_rec_var, device_model, recurrent)
        self.recurrent = self.syn_rec.mode
        self.engine = self._resolve_engine(engine)
        self._kernel_weights = None

    # -- weights -----------------------------------------------------------------------------------
    def _realise(self, device_weights: str, gen: torch.Generator) -> None:
        """The weights the simulation uses: ideal, or the device array's mean weights and read variances."""
        dm = self.device_model
        self.w_rec_var = self.w_in_var = None
        if dm is None:
            self.w_rec, self.w_in = self.w_rec_ideal, self.w_in_ideal
            return
        dgen = torch.Generator().manual_seed(dm.seed * 7919 + self.seed)
        if device_weights == "program":
            arr_rec = dm.program(self.w_rec_ideal, generator=dgen)
            arr_in = dm.program(self.w_in_ideal, generator=dgen)
        else:
            arr_rec = self._switched(self.w_rec_ideal, dgen)
            arr_in = self._switched(self.w_in_ideal, dgen)
        m_rec, m_in = self.mask_rec.float(), (self.w_in_ideal != 0).float()
        self.w_rec, self.w_in = arr_rec.weights() * m_rec, arr_in.weights() * m_in
        self.w_rec_var, self.w_in_var = dm.read_variance(arr_rec) * m_rec, dm.read_variance(arr_in) * m_in

    def _switched(self, w_ideal: torch.Tensor, gen: torch.Generator):
        """Pairs from stochastic switching, oriented so that sign(G⁺ - G⁻) = sign of the ideal weight,
        with the same mean magnitude as the ideal weights."""
        arr = self.device_model.random_weights(w_ideal.shape, generator=gen)
        flip = (torch.sign(arr.g_pos - arr.g_neg) * torch.sign(w_ideal)) < 0
        gp, gn = torch.where(flip, arr.g_neg, arr.g_pos), torch.where(flip, arr.g_pos, arr.g_neg)
        nz = w_ideal != 0
        mean_ideal = float(w_ideal.abs()[nz].mean()) if nz.any() else 1.0
        mean_dev = float((gp - gn).abs()[nz].mean()) if nz.any() else 1.0
        arr.g_pos, arr.g_neg, arr.k = gp, gn, mean_ideal / max(mean_dev, 1e-12)
        return arr

    def _resolve_engine(self, engine: str) -> str:
        noisy = self.w_rec_var is not None and self.device_model.read_noise > 0
        if engine == "event":
            if noisy:
                raise ValueError("LiquidStateMachine: engine='event' cannot sample per-read device noise; "
                                 "use engine='torch' or a device model with read_noise=0")
            event_kernel.load()  # a clear error when it cannot be built
            return "event"
        if engine == "auto" and not noisy and event_kernel.available():
            return "event"
        return "torch"

    def stats(self) -> dict:
        """Sizes, densities, Dale's-law violations and spectral radius of the realised weights."""
        w = self.w_rec
        rows_e, rows_i = w[self.exc], w[~self.exc]
        viol = int((rows_e < 0).sum() + (rows_i > 0).sum())
        return dict(n_neurons=self.n_neurons, n_exc=int(self.exc.sum()), rec_density=float(self.mask_rec.float().mean()),
                    in_density=float((self.w_in != 0).float().mean()), dale_violations=viol,
                    spectral_radius=C.spectral_radius(w), recurrent=self.recurrent, engine=self.engine,
                    input_gain=self.input_gain)

    # -- simulation --------------------------------------------------------------------------------
    def _lif_step(self, v: torch.Tensor, i: torch.Tensor):
        """One LIF step (decay_input=False, hard reset) → (spikes, new v)."""
        d = 1.0 / self.tau
        if self.backend == "inline":
            h = v - (v - self.v_reset) * d + i
            s = h >= self.v_threshold
            return s.to(i.dtype), h.masked_fill_(s, self.v_reset)
        s, v, _ = ops.lif_multistep(i[None], v, d, backend=self.backend, v_threshold=self.v_threshold,
                                    v_reset=self.v_reset, decay_input=False, detach_reset=True,
                                    surrogate=_HEAVISIDE)
        return s[0], v

    def _check_input(self, x: torch.Tensor, finite: bool = True) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"LiquidStateMachine: expected a tensor [T, B, n_inputs], got {type(x).__name__}")
        checks.check_real_tensor(x, "x", "LiquidStateMachine")
        if x.dim() != 3 or x.shape[2] != self.n_inputs:
            raise ValueError(f"LiquidStateMachine: input must be [T, B, n_inputs={self.n_inputs}], got {tuple(x.shape)}")
        x = x.float()
        # one reduction finds NaN/Inf (the sum is then not finite); the full check only confirms
        if finite and checks.finite_checks_enabled() and not checks.all_finite(x):
            raise ValueError("LiquidStateMachine: input contains NaN or Inf "
                             "(snn.checks.set_finite_checks(False) skips this check)")
        return x

    @torch.no_grad()
    def run(self, x: torch.Tensor, n_bins: int = 3, features: str = "both", record: bool = False):
        """Simulate ``x [T, B, n_inputs]``; returns ``(features [B, F], spikes [T, B, N] uint8 or None)``.

        ``F = n_bins·N`` for 'counts' or 'traces', ``2·n_bins·N`` for 'both' (counts first), ``3·n_bins·N``
        for 'all' (counts, traces, membrane potentials).
        """
        x = self._check_input(x, finite=self.engine != "event")  # the event kernel checks while it reads x
        if features not in FEATURES:
            raise ValueError(f"features must be one of {FEATURES}, got {features!r}")
        t_steps, b, _ = x.shape
        n_bins = checks.check_int(n_bins, "n_bins", f"LiquidStateMachine (T={t_steps})", low=1, high=t_steps)
        edges = [round(k * t_steps / n_bins) for k in range(n_bins + 1)]
        if self.engine == "event":
            counts, traces, volts, out = self._run_event(x, edges, n_bins, record, volts=features == "all")
        else:
            counts, traces, volts, out = self._run_torch(x, edges, n_bins, record)
        widths = torch.tensor([edges[j + 1] - edges[j] for j in range(n_bins)], dtype=torch.float32)[:, None, None]
        traces /= widths
        parts = {"counts": [counts], "traces": [traces], "both": [counts, traces],
                 "all": [counts, traces, volts]}[features]
        feats = torch.cat([p.permute(1, 0, 2).reshape(b, -1) for p in parts], 1)
        return feats, out

    def _run_torch(self, x, edges, n_bins, record):
        """Step loop of batched matmuls (dense or CSR); any device model."""
        t_steps, b, _ = x.shape
        n = self.n_neurons
        i_in = self.syn_in(x.reshape(t_steps * b, -1) * self.input_gain).reshape(t_steps, b, n)
        counts = torch.zeros(n_bins, b, n)
        traces = torch.zeros(n_bins, b, n)
        volts = torch.zeros(n_bins, b, n)
        v = torch.full((b, n), self.v_reset)
        s = torch.zeros(b, n)
        r = torch.zeros(b, n)
        keep = math.exp(-1.0 / self.trace_tau)
        out = torch.empty(t_steps, b, n, dtype=torch.uint8) if record else None
        k = 0
        for t in range(t_steps):
            if t >= edges[k + 1]:
                k += 1
            s, v = self._lif_step(v, i_in[t] + self.syn_rec(s))
            r.mul_(keep).add_(s)
            counts[k] += s
            traces[k] += r
            if t == edges[k + 1] - 1:
                volts[k] = v
            if record:
                out[t] = s.to(torch.uint8)
        return counts, traces, volts, out

    def _run_event(self, x, edges, n_bins, record, volts=False):
        """The event-driven C kernel (:mod:`snn.lsm.event_kernel`; dense or CSR input rows by density)."""
        if self._kernel_weights is None:
            self._kernel_weights = (event_kernel.input_layout(self.w_in), event_kernel.to_csr(self.w_rec))
        bin_of_t = np.searchsorted(np.asarray(edges[1:]), np.arange(x.shape[0]), side="right")
        return event_kernel.run_event(x, *self._kernel_weights, tau=self.tau, v_threshold=self.v_threshold,
                                      v_reset=self.v_reset, gain=self.input_gain, trace_tau=self.trace_tau,
                                      bin_of_t=bin_of_t, n_bins=n_bins, record=record, volts=volts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes ``[T, B, N]`` (float) for input ``[T, B, n_inputs]``."""
        return self.run(x, n_bins=1, features="counts", record=True)[1].float()

    def features(self, x: torch.Tensor, n_bins: int = 3, features: str = "both", batch_size: int = 256) -> torch.Tensor:
        """Features ``[B, F]`` of ``x [T, B, n_inputs]``, simulated ``batch_size`` samples at a time."""
        checks.check_int(batch_size, "batch_size", "LiquidStateMachine.features", low=1)
        return torch.cat([self.run(x[:, i:i + batch_size], n_bins, features)[0]
                          for i in range(0, x.shape[1], batch_size)])

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor, target_rate: float, iters: int = 12) -> float:
        """Set the input gain so that the mean firing rate (spikes per neuron per step) on ``x`` is
        ``target_rate``; bisection on log-gain. Returns the gain."""
        if not 0 < target_rate < 1:
            raise ValueError(f"target_rate must lie in (0, 1) spikes/neuron/step, got {target_rate}")
        lo, hi = -6.0, 6.0
        for _ in range(iters):
            mid = (lo + hi) / 2
            self.input_gain = math.exp(mid)
            rate = float(self.run(x, n_bins=1, features="counts")[0].sum()) / (x.shape[0] * x.shape[1] * self.n_neurons)
            lo, hi = (mid, hi) if rate < target_rate else (lo, mid)
        self.input_gain = math.exp((lo + hi) / 2)
        return self.input_gain


# The accepted range of each numeric constructor argument: (low, high, low_open, high_open); None = unbounded.
_RANGES = {
    "frac_exc": (0, 1, False, False), "p_rec": (0, 1, False, False), "p_in": (0, 1, False, False),
    "input_frac_exc": (0, 1, False, False), "lam": (0, None, True, False), "input_radius": (0, None, True, False),
    "input_smooth": (0, None, False, False), "input_envelope": (0, None, True, False),
    "input_scale": (0, None, False, False), "inh_gain": (0, None, False, False),
    "spectral_radius": (0, None, False, False), "tau": (1, None, False, False), "trace_tau": (0, None, True, False),
    "v_threshold": (None, None, False, False), "v_reset": (None, None, False, False),
}


def _check_numbers(*, n_inputs, n_neurons, seed, **values) -> None:
    """Every numeric constructor argument finite and in its range (``_RANGES``; None allowed for
    ``input_envelope`` and ``spectral_radius``), sizes positive integers, and ``v_reset < v_threshold``."""
    who = "LiquidStateMachine"
    checks.check_int(n_inputs, "n_inputs", who, low=1)
    checks.check_int(n_neurons, "n_neurons", who, low=1)
    checks.check_int(seed, "seed", who, low=0)
    for name, value in values.items():
        if value is None and name in ("input_envelope", "spectral_radius"):
            continue
        low, high, low_open, high_open = _RANGES[name]
        checks.check_range(value, name, who, low, high, low_open=low_open, high_open=high_open)
    if not values["v_reset"] < values["v_threshold"]:
        raise ValueError(f"{who}: v_reset must be below v_threshold, got v_reset={values['v_reset']} and "
                         f"v_threshold={values['v_threshold']}")


_HEAVISIDE = sg.get(None)  # forward is Θ for every surrogate; the reservoir needs no gradient
