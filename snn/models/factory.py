"""Spiking layers by name: :func:`make_neuron` builds one neuron module of any registered family.

A family is a spec in :mod:`snn.neurons` with a module class in :mod:`snn.neuron` (or a user's
``BaseNeuron`` subclass that declares ``spec = ...``). The shared arguments map onto the family's own
parameters where it has them: ``tau`` → ``tau`` (LIF, ALIF, QIF, EIF, Izhikevich) or ``init_tau`` (PLIF),
``v_threshold`` → ``v_threshold`` (every built-in family); ``neuron_params`` sets any other parameter of the
family (``{'rho': 0.95}`` for ALIF, ``{'du': 0.2, 'dv': 0.1}`` for CUBALIF, ``{'v_reset': None}`` for a soft
reset). ``method='dsr'`` gives the DSR neurons of :mod:`snn.train.dsr` (IF and LIF only).
"""
from __future__ import annotations

from functools import partial
from typing import Callable

import torch.nn as nn

from .. import neurons as specs
from .. import recurrent

__all__ = ["NEURONS", "DSR_NEURONS", "METHODS", "neuron_names", "neuron_class", "make_neuron", "neuron_factory",
           "NEURON_KEYS"]

NEURONS = ("lif", "if", "plif")  # the families the presets' command line has offered; any registered one builds
DSR_NEURONS = ("lif", "if")
METHODS = ("bptt", "dsr", "ottt")
# the keys of a model config that describe its neurons (the arguments of make_neuron)
NEURON_KEYS = ("method", "tau", "v_threshold", "surrogate", "detach_reset", "backend", "dsr_alpha", "neuron_params")


def neuron_names() -> list[str]:
    """The registered neuron families that have a module class (what ``make_neuron`` accepts)."""
    names = []
    for name in specs.names():
        try:
            recurrent.neuron_class(name)
        except ValueError:
            continue
        names.append(name)
    return names


def neuron_class(kind: str) -> type:
    """The module class of the registered family ``kind`` (``'lif'`` → :class:`snn.neuron.LIF`)."""
    if not isinstance(kind, str) or kind not in specs.names():
        raise ValueError(f"unknown neuron {kind!r}; accepted: {neuron_names()}")
    return recurrent.neuron_class(kind)


def _family_kwargs(cls: type, tau: float, v_threshold: float, neuron_params: dict | None) -> dict:
    names = [p.name for p in cls.spec.params]
    kw = {}
    if "tau" in names:
        kw["tau"] = tau
    elif "init_tau" in names:
        kw["init_tau"] = tau
    if "v_threshold" in names:
        kw["v_threshold"] = v_threshold
    params = dict(neuron_params or {})
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ValueError(f"neuron_params: {unknown} are not parameters of the {cls.spec.name!r} neuron; "
                         f"accepted: {names}")
    shared = sorted(set(params) & {"tau", "init_tau", "v_threshold"})
    if shared:
        raise ValueError(f"neuron_params: pass {shared} as the tau / v_threshold arguments, not in neuron_params")
    kw.update(params)
    return kw


def make_neuron(kind: str = "lif", *, method: str = "bptt", tau: float = 2.0, v_threshold: float = 1.0,
                surrogate: str = "atan", detach_reset: bool = True, backend: str = "auto",
                dsr_alpha: float = 0.5, neuron_params: dict | None = None) -> nn.Module:
    """One spiking layer of family ``kind`` in step mode 'm'. ``method='dsr'`` gives DSR neurons (IF, LIF)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; accepted: {METHODS}")
    if method == "dsr":
        if kind not in DSR_NEURONS:
            raise ValueError(f"DSR supports the neurons {DSR_NEURONS} (its representation mapping is derived for "
                             f"IF and LIF), got {kind!r}")
        if neuron_params:
            raise ValueError(f"neuron_params {sorted(neuron_params)} cannot be set on DSR neurons (method='dsr')")
        from ..train import dsr  # lazy: snn.train imports this package

        if kind == "if":
            return dsr.DSRIF(v_threshold=v_threshold, alpha=dsr_alpha)
        return dsr.DSRLIF(tau=tau, v_threshold=v_threshold, alpha=dsr_alpha)
    if neuron_params is not None and not isinstance(neuron_params, dict):
        raise TypeError(f"neuron_params must be a dict of the neuron's parameters, got "
                        f"{type(neuron_params).__name__}")
    cls = neuron_class(kind)
    return cls(**_family_kwargs(cls, tau, v_threshold, neuron_params), surrogate=surrogate,
               detach_reset=detach_reset, step_mode="m", backend=backend)


def neuron_factory(kind: str = "lif", **kw) -> Callable[[], nn.Module]:
    """A function of no arguments returning a new ``make_neuron(kind, **kw)`` each call; one is built here, so a
    bad argument fails before any model is built."""
    make_neuron(kind, **kw)
    return partial(make_neuron, kind, **kw)
