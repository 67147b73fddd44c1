"""Every model by name: :func:`get` builds one, :func:`model_config` / :func:`build_model` rebuild it from a
plain dict (as checkpoints store it), :func:`register_model` adds a builder of your own.

A config holds the model's name, ``num_classes``, ``in_channels``, the neuron (family, surrogate and the other
arguments of :func:`snn.models.make_neuron`), ``T`` (the number of time steps the model is meant for,
recorded for the trainer and checkpoints; the models run any ``T``) and the builder's own arguments with their
defaults filled in. It is JSON-able, so ``build_model(json.loads(json.dumps(model_config(net))))`` rebuilds
``net``'s architecture.

A builder is a function ``builder(*, num_classes, in_channels, neuron, **arch) -> nn.Module`` where ``neuron``
is a function of no arguments returning a new spiking layer and ``arch`` are keyword arguments with JSON-able
defaults (read from its signature).
"""
from __future__ import annotations

import copy
import inspect
import json
from dataclasses import dataclass
from typing import Callable

import torch.nn as nn

from ..checks import check_int
from .factory import NEURON_KEYS, make_neuron, neuron_factory

__all__ = ["register_model", "available", "get", "model_config", "build_model", "spiking_layers", "CONFIG_ATTR"]

CONFIG_ATTR = "snn_config"  # the attribute of a built model holding its config
_REQUIRED = ("num_classes", "in_channels", "neuron")
_COMMON = dict(num_classes=10, in_channels=1, neuron="lif", surrogate="atan", T=None, method="bptt", tau=2.0,
               v_threshold=1.0, detach_reset=True, backend="auto", dsr_alpha=0.5, neuron_params={})


@dataclass(frozen=True)
class _Entry:
    builder: Callable
    defaults: dict
    prepare: Callable | None  # (cfg, given keys) -> cfg: reconciles a builder's own keys with the common ones


_MODELS: dict[str, _Entry] = {}


def _jsonable(value):
    """``value`` with tuples turned into lists, or a TypeError if it does not survive JSON."""
    return json.loads(json.dumps(value))


def register_model(name: str, builder: Callable, *, replace: bool = False, prepare: Callable | None = None) -> None:
    """Add ``builder`` under ``name`` (see the module docstring for its signature). Registering a taken name is
    an error unless ``replace``. ``prepare(cfg, given)`` may adjust a config before building (``given``: the
    keys the caller set)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"register_model: name must be a non-empty string, got {name!r}")
    if not callable(builder):
        raise TypeError(f"register_model: builder for {name!r} must be callable, got {type(builder).__name__}")
    if name in _MODELS and not replace:
        raise ValueError(f"register_model: a model named {name!r} is already registered; pass replace=True")
    params = inspect.signature(builder).parameters
    missing = [k for k in _REQUIRED if k not in params]
    if missing:
        raise TypeError(f"register_model: builder for {name!r} must take the keyword arguments {list(_REQUIRED)}; "
                        f"it lacks {missing}")
    defaults = {}
    for key, p in params.items():
        if key in _REQUIRED or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        if key in _COMMON or key == "model":
            raise TypeError(f"register_model: builder for {name!r} has an argument {key!r}, a key every config "
                            f"holds already; rename it")
        if p.default is p.empty:
            raise TypeError(f"register_model: builder argument {key!r} of {name!r} needs a default")
        try:
            defaults[key] = _jsonable(p.default)
        except (TypeError, ValueError):
            raise TypeError(f"register_model: the default of {key!r} of {name!r} ({p.default!r}) is not "
                            f"JSON-able; configs must be plain data") from None
    _MODELS[name] = _Entry(builder, defaults, prepare)


def available() -> list[str]:
    """The names :func:`get` accepts."""
    return sorted(_MODELS)


def _entry(name) -> _Entry:
    if not isinstance(name, str) or name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; available: {available()}")
    return _MODELS[name]


def _unwrap(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel / DataParallel (``.module``) or torch.compile (``._orig_mod``)."""
    while not hasattr(model, CONFIG_ATTR):
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            break
        model = inner
    return model


def _check_common(cfg: dict) -> None:
    """The keys every config holds: positive class and channel counts, T, a known neuron and surrogate."""
    who = f"model {cfg['model']!r}"
    check_int(cfg["num_classes"], "num_classes", who, low=1)
    check_int(cfg["in_channels"], "in_channels", who, low=1)
    if cfg["T"] is not None:
        check_int(cfg["T"], "T", who, low=1)
    if not isinstance(cfg["surrogate"], str):
        raise TypeError(f"{who}: surrogate must be a surrogate's name (a config is plain data), got "
                        f"{type(cfg['surrogate']).__name__}")
    make_neuron(cfg["neuron"], **{k: cfg[k] for k in NEURON_KEYS})  # names a bad neuron/surrogate/parameter


def model_config(model="csnn", **kw) -> dict:
    """A complete, JSON-able config dict for :func:`build_model` (defaults filled in).

    ``model`` is a registered name (``kw`` override the defaults) or a model built by :func:`get` /
    :func:`build_model` (its config is returned; ``kw`` must then be empty)."""
    if isinstance(model, nn.Module):
        inner = _unwrap(model)
        if not hasattr(inner, CONFIG_ATTR):
            raise ValueError(f"model_config: this {type(model).__name__} was not built by snn.models.get or "
                             f"build_model, so there is no config to rebuild it from; build it with "
                             f"snn.models.get(name, ...) or keep the arguments you built it with")
        if kw:
            raise TypeError(f"model_config(model, ...): keys {sorted(kw)} cannot be applied to a built model")
        return copy.deepcopy(getattr(inner, CONFIG_ATTR))
    entry = _entry(model)
    cfg = dict(model=model, **copy.deepcopy(_COMMON), **copy.deepcopy(entry.defaults))
    unknown = set(kw) - set(cfg)
    if unknown:
        raise ValueError(f"model_config: unknown keys {sorted(unknown)} for model {model!r}; accepted: "
                         f"{sorted(set(cfg) - {'model'})}")
    cfg.update(copy.deepcopy(kw))
    if cfg["neuron_params"] is None:
        cfg["neuron_params"] = {}
    if entry.prepare is not None:
        cfg = entry.prepare(cfg, set(kw))
    _check_common(cfg)
    try:
        return _jsonable(cfg)
    except (TypeError, ValueError):
        raise TypeError(f"model_config: the config of {model!r} is not plain data (JSON-able): {cfg!r}") from None


def build_model(config: dict) -> nn.Module:
    """Rebuild a model from its config dict (as stored in checkpoints). Missing keys take their defaults."""
    if not isinstance(config, dict):
        raise TypeError(f"build_model: config must be a dict (from snn.models.model_config), got "
                        f"{type(config).__name__}")
    config = dict(config)
    name = config.pop("model", "csnn")
    cfg = model_config(name, **config)
    arch = {k: v for k, v in cfg.items() if k not in _COMMON and k != "model"}
    neuron = neuron_factory(cfg["neuron"], **{k: cfg[k] for k in NEURON_KEYS})
    net = _entry(name).builder(num_classes=cfg["num_classes"], in_channels=cfg["in_channels"], neuron=neuron,
                               **arch)
    setattr(net, CONFIG_ATTR, cfg)
    return net


def get(name: str, *, num_classes: int, in_channels: int, neuron: str = "lif", surrogate: str = "atan",
        T: int | None = None, **kw) -> nn.Module:
    """Build the registered model ``name`` (:func:`available`) for ``num_classes`` classes and inputs
    ``[T, B, in_channels, H, W]`` with spiking layers of family ``neuron`` and surrogate ``surrogate``.

    ``kw``: the neuron's other arguments (``tau``, ``v_threshold``, ``neuron_params``, ``method``, ...) and the
    model's own (see its builder). The model's config is kept on it: ``model_config(net)`` rebuilds it."""
    return build_model(model_config(name, num_classes=num_classes, in_channels=in_channels, neuron=neuron,
                                    surrogate=surrogate, T=T, **kw))


def spiking_layers(model: nn.Module) -> dict[str, nn.Module]:
    """``{name: module}`` of the spiking layers (snn neurons and DSR neurons) in ``model``."""
    from ..neuron import BaseNeuron
    from ..train.dsr import DSRNeuron

    return {name: m for name, m in model.named_modules() if isinstance(m, (BaseNeuron, DSRNeuron))}
