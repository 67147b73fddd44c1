"""The training methods, one small class each, in one registry (``fit(method=NAME)``, ``snn train --method``).

A method turns one batch ``x_seq [T, B, ...]`` with labels ``y`` into gradients, and asks for the optimizer
step where it wants one, through a :class:`snn.train.step.Step` (which owns scaling, synchronisation,
clipping and the update)::

    loss, logits = method.run(model, x_seq, y, step)     # loss = Σ_batch CE / step.denom
    logits = method.logits(model, x_seq)                 # the prediction accuracy is read from

- BPTT: surrogate gradients through the unrolled time steps; logits = mean over t of the readout.
- DSR:  the DSR neurons differentiate the spike representation; logits = the (λ-weighted) rate of the
  readout, the representation the last spiking layer encodes (:mod:`snn.train.dsr`).
- OTTT: online, one step at a time with presynaptic traces (:mod:`snn.train.ottt`), OTTT_A (one update per
  batch) or OTTT_O (an update every step).

``method.check(model, x_seq=None)`` says, before training, what a model lacks for the method (DSR neurons,
layers that run one step at a time, ...). Another method registers from its own module::

    snn.train.methods.register_method("mine", lambda **options: MyMethod(**options))

(a module listed in :data:`METHOD_MODULES` is imported, and so registers, when the names are first asked for).
"""
from __future__ import annotations

import importlib
import inspect
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..functional import reset
from . import dsr, ottt
from .activity import spiking_layers
from .step import full_precision

__all__ = ["Method", "BPTT", "DSR", "OTTT", "register_method", "method_names", "make_method", "METHOD_MODULES"]

# Modules that register further methods when imported; one that is not installed is skipped.
METHOD_MODULES: tuple[str, ...] = ("snn.spide.method",)


class Method:
    """The interface (and BPTT's behaviour): forward the whole sequence, one loss, one backward, one update."""

    name = "method"

    def check(self, model: nn.Module, x_seq: torch.Tensor | None = None) -> None:
        """Raise a ValueError naming what ``model`` lacks for this method (``x_seq``: one sample, to try)."""
        found = [n for n, m in spiking_layers(model).items() if isinstance(m, dsr.DSRNeuron)]
        if found:
            raise ValueError(f"method {self.name!r} cannot train DSR neurons (layer {found[0]!r} is "
                             f"{type(spiking_layers(model)[found[0]]).__name__}): their backward pass is DSR's; "
                             f"train this model with method='dsr'")

    def logits(self, model: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
        reset(model)
        out = model(x_seq)
        reset(model)
        return self.readout(model, out)

    def readout(self, model, out_seq):
        return out_seq.mean(0)

    @staticmethod
    def loss(logits: torch.Tensor, y: torch.Tensor, denom: float) -> torch.Tensor:
        return F.cross_entropy(full_precision(logits), y, reduction="sum") / denom

    def run(self, model, x_seq, y, step):
        """Gradients of one batch (and the update, through ``step``); returns ``(loss, logits detached)``."""
        with step.autocast():
            logits = self.logits(model, x_seq)
            loss = self.loss(logits, y, step.denom)
        step.backward(loss)
        step.update()
        return float(loss.detach()), logits.detach()

    def train_batch(self, model, x_seq, y, optimizer, denom: float, sync=lambda: None):
        """One batch with a plain optimizer (zero_grad, gradients, step); returns ``(loss, logits)``."""
        from .step import Step

        step = Step(optimizer, denom=denom, sync=sync)
        step.zero_grad()
        return self.run(model, x_seq, y, step)

    def describe(self) -> str:
        return self.name


class BPTT(Method):
    """Backpropagation through time with surrogate gradients."""

    name = "bptt"


class DSR(Method):
    """Differentiation on spike representation: same loop as BPTT, DSR neurons, representation readout."""

    name = "dsr"

    def check(self, model, x_seq=None) -> None:
        layers = spiking_layers(model)
        other = [n for n, m in layers.items() if not isinstance(m, dsr.DSRNeuron)]
        if not layers or other:
            what = (f"layer {other[0]!r} is a {type(layers[other[0]]).__name__}" if other
                    else "it has no spiking layer")
            raise ValueError(f"method 'dsr' needs DSR neurons in every spiking layer ({what}); build the model "
                             f"with snn.neuron.DSRIF / DSRLIF, or a preset or zoo model with method='dsr'")

    def readout(self, model, out_seq):
        return dsr.weighted_rate(out_seq, dsr.readout_decay(model))


class OTTT(Method):
    """Online training through time: ``mode='A'`` accumulates over the T steps, ``'O'`` updates every step.
    ``lam`` is the presynaptic trace decay (None: 1 - 1/tau of the model's LIF-family neurons)."""

    name = "ottt"

    def __init__(self, lam: float | None = None, mode: str = "A"):
        if mode not in ("A", "O"):
            raise ValueError(f"OTTT mode must be 'A' or 'O', got {mode!r}")
        if lam is not None and not 0.0 < float(lam) <= 1.0:
            raise ValueError(f"OTTT trace decay lam must lie in (0, 1], got {lam}")
        self.lam, self.mode = (None if lam is None else float(lam)), mode

    def describe(self) -> str:
        return f"ottt_{self.mode}"

    def check(self, model, x_seq=None) -> None:
        super().check(model)
        ottt.check_online(model)
        if self.lam is None:
            self.lam = ottt.model_trace_decay(model)
        if x_seq is not None:
            ottt.check_single_step(model, x_seq)

    def run(self, model, x_seq, y, step):
        """OTTT_O updates after every step's backward; OTTT_A once, after the online pass has ended (so that the
        step's ``before_update`` hook runs on a network back in step mode 'm'). The gradients are zeroed after
        each update."""
        if self.lam is None:
            self.lam = ottt.model_trace_decay(model)

        def update(t=None):
            step.update()
            step.zero_grad()

        loss, logits = ottt.run_online(model, x_seq, y, self.lam, step.denom, on_step=update if self.mode == "O"
                                       else None, backward=step.backward, autocast=step.autocast)
        if self.mode == "A":
            update()
        return loss, logits


# -- the registry -----------------------------------------------------------------------------------------------

_REGISTRY: dict[str, Callable[..., Method]] = {}


def register_method(name: str, factory: Callable[..., Method], *, replace: bool = False) -> None:
    """Make ``factory(**options) -> Method`` available as ``method=name``; a taken name is an error unless
    ``replace``."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"register_method: name must be an identifier-like string, got {name!r}")
    if not callable(factory):
        raise TypeError(f"register_method: factory for {name!r} must be callable, got {type(factory).__name__}")
    if name in _REGISTRY and not replace:
        raise ValueError(f"register_method: a method named {name!r} is already registered; pass replace=True")
    _REGISTRY[name] = factory


def _load_plugins() -> None:
    for module in METHOD_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:  # the module exists but something it imports does not
                raise


def method_names() -> tuple[str, ...]:
    """The registered method names (what ``fit(method=...)`` and ``snn train --method`` accept)."""
    _load_plugins()
    return tuple(_REGISTRY)


def make_method(method: str | Method, *, model: nn.Module | None = None, x_seq: torch.Tensor | None = None,
                **options) -> Method:
    """The :class:`Method` registered as ``method`` built with ``options`` (a Method instance passes through);
    with ``model`` (and one sample ``x_seq``), checked against it."""
    if isinstance(method, Method):
        if options:
            raise TypeError(f"make_method: options {sorted(options)} cannot be applied to a built {method.name} method")
        m = method
    else:
        names = method_names()
        if method not in names:
            raise ValueError(f"unknown method {method!r}; accepted: {', '.join(names)}")
        factory = _REGISTRY[method]
        params = inspect.signature(factory).parameters
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            unknown = sorted(set(options) - set(params))
            if unknown:
                raise ValueError(f"method {method!r} takes no option(s) {unknown}; accepted: "
                                 f"{sorted(params) or 'none'}")
        m = factory(**options)
        if not isinstance(m, Method):
            raise TypeError(f"the factory of method {method!r} returned a {type(m).__name__}, not a "
                            f"snn.train.methods.Method")
    if model is not None:
        m.check(model, x_seq)
    return m


register_method("bptt", BPTT)
register_method("dsr", DSR)
register_method("ottt", OTTT)

