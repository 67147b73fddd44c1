r"""OTTT: online training through time (Xiao et al., 2022).

The network runs one time step at a time (step mode 's'); nothing links the steps in the autograd graph
(neuron states are detached after every step). Every synaptic layer (Linear, Conv2d) keeps a trace of
its presynaptic input::

    a[t] = λ·a[t-1] + s[t]        (λ = 1 - 1/tau of the presynaptic neurons; λ = 1 for IF)

and at every step the loss is taken on that step's output, L[t] = CE(o[t], y) / T. The forward value of
a layer is W·s[t] (what the network computes), but its weight gradient is taken with the trace as input::

    ∇_W L[t] = δ[t] · a[t]ᵀ,      δ[t] = ∂L[t]/∂(W·s[t])   (spatial backprop within step t only)

which is the "gradient of the instantaneous loss with the trace as input": three-factor Hebbian
(error × presynaptic trace). OTTT_A sums ∇_W L[t] over the T steps and updates once per batch;
OTTT_O updates after every step. Memory does not depend on T: each step's graph is freed at once.

BatchNorm has no online form here; the OTTT presets use scaled weight-standardised convolutions
(:class:`snn.models.ScaledWSConv2d`) instead, as the method prescribes.
"""
from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn as nn

from ..base import MemoryModule, StepMode
from ..functional import reset, set_step_mode
from .step import full_precision

__all__ = ["SYNAPSES", "OnlineTraces", "detach_states", "trace_decay", "model_trace_decay", "ottt_step",
           "check_online", "check_single_step", "run_online"]

SYNAPSES = (nn.Linear, nn.Conv1d, nn.Conv2d)


def trace_decay(neuron: str, tau: float) -> float:
    """λ of the presynaptic trace: 1 - 1/tau for LIF/PLIF, 1 for IF."""
    return 1.0 if neuron == "if" else 1.0 - 1.0 / float(tau)


def model_trace_decay(model: nn.Module) -> float:
    """λ = 1 - d of the first spiking layer whose decay ``d`` (1/tau; 0 for IF) is known (the LIF family)."""
    from ..neuron import LIF

    for m in model.modules():
        if isinstance(m, LIF):
            return 1.0 - float(m.decay())
    raise ValueError("method 'ottt' needs the decay λ of its presynaptic traces and cannot read it from this "
                     "model's neurons (no IF/LIF-family neuron); pass method_options={'lam': λ} with λ in (0, 1]")


def check_online(model: nn.Module) -> None:
    """OTTT needs layers that work one step at a time: no BatchNorm (its statistics would span time), every snn
    module able to run in step mode 's', and synapses (Linear/Conv) to take the traced weight gradients at."""
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            raise ValueError(f"OTTT cannot train {name} ({type(m).__name__}): BatchNorm has no online form; "
                             f"use scaled weight standardisation (csnn norm='ws') or no norm")
        if isinstance(m, StepMode):
            mode = m.step_mode
            try:
                m.step_mode = "s"
            except ValueError as e:
                raise ValueError(f"method 'ottt' runs the model one time step at a time, but layer {name!r} "
                                 f"({type(m).__name__}) has no single-step mode 's' ({e})") from None
            m.step_mode = mode
    if not any(isinstance(m, SYNAPSES) for m in model.modules()):
        raise ValueError(f"method 'ottt' takes its weight gradients at Linear/Conv1d/Conv2d layers with presynaptic "
                         f"traces; the model ({type(model).__name__}) has none")


def check_single_step(model: nn.Module, x_seq: torch.Tensor) -> None:
    """Run one time step of ``x_seq`` in step mode 's'; a failure (a layer that only handles ``[T, B, ...]``)
    is a ValueError naming the shapes."""
    set_step_mode(model, "s")
    reset(model)
    try:
        with torch.no_grad():
            out = model(x_seq[0])
    except (RuntimeError, ValueError, TypeError, IndexError) as e:
        raise ValueError(f"method 'ottt' runs the model one time step at a time (step mode 's', input "
                         f"{list(x_seq.shape[1:])} instead of {list(x_seq.shape)}); the model failed on it: "
                         f"{type(e).__name__}: {e}") from None
    finally:
        reset(model)
        set_step_mode(model, "m")
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != x_seq.shape[1]:
        shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"method 'ottt' runs the model one time step at a time (step mode 's'), where it must "
                         f"return [B, classes]; it returned {shape} for a single step of shape "
                         f"{list(x_seq.shape[1:])}")


def detach_states(model: nn.Module) -> None:
    """Cut the graph between time steps: detach every neuron state tensor."""
    for m in model.modules():
        if isinstance(m, MemoryModule):
            for name in getattr(m, "state_names", ()):
                val = getattr(m, name, None)
                if isinstance(val, torch.Tensor):
                    setattr(m, name, val.detach())


class OnlineTraces:
    """Context manager: while active, each synaptic layer of ``model`` computes W·s[t] forward and takes
    its weight gradient with its presynaptic trace a[t] (hooks; the model and its state dict are unchanged).

    ``traces`` maps each synaptic module to its current trace; :meth:`reset` clears them (new sample).
    """

    def __init__(self, model: nn.Module, lam: float):
        if not 0.0 < lam <= 1.0:
            raise ValueError(f"OTTT trace decay λ must lie in (0, 1], got {lam}")
        self.model, self.lam = model, float(lam)
        self.traces: dict[nn.Module, torch.Tensor] = {}
        self._inputs: dict[nn.Module, torch.Tensor] = {}
        self._handles: list = []

    def reset(self) -> None:
        self.traces.clear()
        self._inputs.clear()

    def _pre(self, mod, args):
        x = args[0]
        prev = self.traces.get(mod)
        a = x.detach().clone() if prev is None else prev * self.lam + x.detach()  # own storage
        self.traces[mod] = a
        self._inputs[mod] = x
        # value a (the trace), gradient passed on to x unchanged
        return (a + (x - x.detach()),) if x.requires_grad else (a,)

    def _post(self, mod, args, out_from_trace):
        x = self._inputs.pop(mod)
        with torch.no_grad():
            out = mod.forward(x)  # forward() bypasses the hooks
        # value W·s[t], gradient through W·a[t]
        return out_from_trace + (out - out_from_trace).detach()

    def __enter__(self):
        for m in self.model.modules():
            if isinstance(m, SYNAPSES):
                self._handles.append(m.register_forward_pre_hook(self._pre))
                self._handles.append(m.register_forward_hook(self._post))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self.reset()
        return False


def ottt_step(model: nn.Module, x_t: torch.Tensor, y: torch.Tensor, T: int, denom: float,
              backward=torch.Tensor.backward, autocast=nullcontext):
    """One online step: forward x[t] (step mode 's', inside :class:`OnlineTraces`), backward
    L[t] = CE(o[t], y, sum) / (denom·T), detach the states. Returns (L[t] value, o[t] detached)."""
    with autocast():
        out = model(x_t)
        loss = nn.functional.cross_entropy(full_precision(out), y, reduction="sum") / (denom * T)
    backward(loss)
    detach_states(model)
    return float(loss.detach()), out.detach()


def run_online(model: nn.Module, x_seq: torch.Tensor, y: torch.Tensor, lam: float, denom: float,
               on_step=None, backward=torch.Tensor.backward, autocast=nullcontext):
    """Run OTTT over one batch ``x_seq [T, B, ...]``; ``on_step(t)`` after every step's backward (OTTT_O
    puts its optimizer step there); ``backward(loss)`` and ``autocast()`` come from the training step (loss
    scaling, mixed precision). Returns (loss sum over steps, mean output over steps = logits)."""
    T = x_seq.shape[0]
    set_step_mode(model, "s")
    reset(model)
    total, logits = 0.0, None
    try:
        with OnlineTraces(model, lam):
            for t in range(T):
                loss, out = ottt_step(model, x_seq[t], y, T, denom, backward, autocast)
                total += loss
                logits = out if logits is None else logits + out
                if on_step is not None:
                    on_step(t)
    finally:
        reset(model)
        set_step_mode(model, "m")
    return total, logits / T
