r"""DSR neurons: the neurons of the DSR training method (differentiation on spike representation, Meng et
al., 2022), one spec and the method's gradient.

Forward (the spec's step): integrate with retention ``λ``, fire at a fraction ``α`` of the threshold, subtract
the whole threshold, emit spikes of size ``V_th``::

    H[t] = λ·U[t-1] + X[t]                 (IF: λ = 1, ``tau=None``; LIF: λ = 1 - 1/tau)
    S[t] = Θ(H[t] - α·V_th)
    U[t] = H[t] - V_th·S[t];   out[t] = V_th·S[t]          U[0] = 0

Backward (:func:`dsr_multistep`): not BPTT through the spikes but the gradient of the representation mapping.
With the λ-weighted rate ``r(z) = Σ_t w_t·z[t]``, ``w_t = λ^(T-1-t) / Σ_k λ^k`` (λ = 1: the mean over t),
``r(out) ≈ clamp(r(X), 0, V_th)``, and every out[t] is read as ``r(out)``::

    g        = Σ_t ∂L/∂out[t]
    ∂L/∂X[t] = w_t · g · 1[0 < r(X) < V_th]
    ∂L/∂V_th = Σ g · 1[r(X) >= V_th]                 (trainable threshold, one per layer)

Valid parameters: ``tau > 1`` or None, ``V_th > 0``, ``α`` in (0, 1], ``v_threshold_min > 0`` (the threshold
is clamped below there, zero gradient), ``trainable_threshold``. Kernel parameters ``(lam, v_fire, v_threshold)``
with ``v_fire = α·V_th`` and V_th the clamped threshold. C++: ``csrc/neurons/dsr.h``; Triton:
:mod:`snn.kernels.dsr`. The spec's surrogate backward (what the conformance suite checks on every backend) is
the ordinary BPTT of these dynamics; the DSR method never uses it.

The spec is not in the registry of neuron families (:func:`snn.neurons.names`): DSR neurons are chosen by the
training method (``method='dsr'``), run multi-step only, and the module classes
(:class:`snn.neuron.DSRIF`, :class:`snn.neuron.DSRLIF`) are not bound to it for export.
"""
from __future__ import annotations

import torch

from .spec import CppStep, Flag, NeuronSpec, Param, State

__all__ = ["DSR", "retention", "representation_weights", "dsr_mapping", "dsr_multistep"]


def retention(tau: float | None) -> float:
    """λ = 1 - 1/tau (1 for IF, ``tau=None``)."""
    return 1.0 if tau is None else 1.0 - 1.0 / tau


def _to_kernel(v):
    vth = max(float(v["v_threshold"]), float(v["v_threshold_min"]))
    return dict(lam=retention(v["tau"]), v_fire=float(v["alpha"]) * vth, v_threshold=vth)


def _charge(x, st, p, f):
    return st[0] * p.lam + x, p.v_fire, st


def _reset(h, theta, s, sr, st, p, f):
    return (h - p.v_threshold * sr,)


DSR = NeuronSpec(
    name="dsr", states=(State("u"),), record="u",
    params=(Param("tau", 2.0, low=1.0, low_open=True, optional=True, doc="retention λ = 1 - 1/tau; None: IF (λ = 1)"),
            Param("v_threshold", 1.0, low=0.0, low_open=True, doc="V_th: the spike size (trainable)"),
            Param("alpha", 0.5, low=0.0, high=1.0, low_open=True, doc="fire at α·V_th"),
            Param("v_threshold_min", 0.05, low=0.0, low_open=True, doc="V_th is clamped below here"),
            Flag("trainable_threshold", True, doc="V_th is an nn.Parameter with a gradient")),
    kernel_params=("lam", "v_fire", "v_threshold"), to_kernel=_to_kernel, charge=_charge, reset=_reset,
    strict_threshold=False, input_scale=0.5,
    cpp=CppStep("DSRStep", header="neurons/dsr.h"), triton="snn.kernels.dsr",
    doc="DSR neuron: fire at α·V_th, subtract V_th, spikes of size V_th (the DSR training method's neuron)")


def representation_weights(T: int, lam: float, dtype=torch.float32, device=None) -> torch.Tensor:
    """w_t = λ^(T-1-t) / Σ_k λ^k for t = 0..T-1 (uniform 1/T when λ = 1)."""
    if not 0.0 < lam <= 1.0:
        raise ValueError(f"the representation decay λ must lie in (0, 1], got {lam}")
    w = torch.tensor([lam ** (T - 1 - t) for t in range(T)], dtype=torch.float64)
    return (w / w.sum()).to(dtype=dtype, device=device)


def dsr_mapping(r_in: torch.Tensor, v_threshold: torch.Tensor | float) -> torch.Tensor:
    """The representation mapping r_out = clamp(r_in, 0, V_th) whose gradient DSR uses."""
    v_threshold = torch.as_tensor(v_threshold, dtype=r_in.dtype, device=r_in.device)
    return torch.minimum(r_in.clamp_min(0), v_threshold)


class _DSRFunction(torch.autograd.Function):
    """Spikes of size V_th forward (the spec's scan on ``backend``), the gradient of :func:`dsr_mapping` on
    λ-weighted rates backward. Computed in the state dtype (float32 for 16-bit inputs)."""

    @staticmethod
    def forward(ctx, x_seq, v_th, lam, alpha, backend):
        from .. import ops
        from ..surrogate import Sigmoid
        vth = float(v_th)
        s, _, _ = ops.run(DSR, x_seq, (0.0,), (lam, alpha * vth, vth), surrogate=Sigmoid(), backend=backend)
        w = representation_weights(x_seq.shape[0], lam, v_th.dtype, x_seq.device)
        r_in = torch.tensordot(w, x_seq.to(v_th.dtype), dims=1)
        ctx.save_for_backward(r_in, v_th, w)
        return (s.to(v_th.dtype) * v_th).to(x_seq.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        r_in, v_th, w = ctx.saved_tensors
        g = grad_out.to(r_in.dtype).sum(0)
        inside = ((r_in > 0) & (r_in < v_th)).to(g.dtype)
        grad_x = w.view(-1, *([1] * g.dim())) * (g * inside).unsqueeze(0)
        grad_v = (g * (r_in >= v_th).to(g.dtype)).sum().reshape(v_th.shape)
        return grad_x.to(grad_out.dtype), grad_v, None, None, None


def dsr_multistep(x_seq: torch.Tensor, v_threshold, lam: float = 1.0, alpha: float = 0.5, *,
                  backend: str = "auto") -> torch.Tensor:
    """A DSR neuron over ``x_seq [T, B, ...]`` (T >= 1) with threshold ``v_threshold`` (a float or a one-element
    tensor, whose gradient DSR gives): spikes of size V_th forward, the mapping gradient backward."""
    from ..functional import state_dtype
    if not isinstance(x_seq, torch.Tensor) or not x_seq.is_floating_point():
        raise TypeError(f"dsr_multistep: x_seq must be a floating-point tensor, got {type(x_seq).__name__}")
    if x_seq.dim() < 2 or x_seq.shape[0] == 0:
        raise ValueError(f"dsr_multistep: DSR neurons take a sequence [T, B, ...] with T >= 1, got shape "
                         f"{tuple(x_seq.shape)}")
    if not 0.0 < float(alpha) <= 1.0:
        raise ValueError(f"dsr_multistep: alpha must lie in (0, 1], got {alpha}")
    v_th = torch.as_tensor(v_threshold, dtype=state_dtype(x_seq.dtype), device=x_seq.device)
    if v_th.numel() != 1 or not float(v_th.detach()) > 0:
        raise ValueError(f"dsr_multistep: v_threshold must be one number > 0, got {v_threshold!r}")
    return _DSRFunction.apply(x_seq, v_th.reshape(()), float(lam), float(alpha), backend)
