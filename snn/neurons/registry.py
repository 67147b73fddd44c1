"""The registry of neuron specs: name -> spec, neuron module class -> spec.

Exporters and tools ask it what a module is (:func:`spec_of`); a class is bound to a spec only where it
declares one (``spec = ...`` in its own body, or :func:`bind`), so a subclass that changes the dynamics without
declaring a spec is an error there, never its base class.
"""
from __future__ import annotations

from .spec import NeuronSpec, SpecError

__all__ = ["register", "get", "names", "specs", "bind", "spec_of", "is_bound"]

_SPECS: dict[str, NeuronSpec] = {}
_CLASSES: dict[type, NeuronSpec] = {}


def register(spec: NeuronSpec, *, replace: bool = False) -> NeuronSpec:
    """Add ``spec`` under ``spec.name``; another spec of that name is an error unless ``replace``."""
    if not isinstance(spec, NeuronSpec):
        raise TypeError(f"register: expected a snn.neurons.NeuronSpec, got {type(spec).__name__}")
    old = _SPECS.get(spec.name)
    if old is not None and old is not spec and not replace:
        raise SpecError(f"neuron spec {spec.name!r} is already registered; pass replace=True to replace it")
    _SPECS[spec.name] = spec
    return spec


def get(name: str) -> NeuronSpec:
    """The spec registered as ``name``."""
    try:
        return _SPECS[name]
    except KeyError:
        raise KeyError(f"no neuron spec named {name!r}; registered: {sorted(_SPECS)}") from None


def names() -> list[str]:
    return sorted(_SPECS)


def specs() -> list[NeuronSpec]:
    return [_SPECS[n] for n in names()]


def bind(cls: type, spec: NeuronSpec) -> None:
    """Bind a neuron module class to ``spec`` (registering the spec too)."""
    register(spec)
    _CLASSES[cls] = spec


def is_bound(cls: type) -> bool:
    return cls in _CLASSES


def spec_of(module_or_class) -> NeuronSpec:
    """The spec of a neuron module (or class): its exact class must be bound; a subclass of a bound class that
    did not declare a spec of its own is an error naming it, never its base class's spec."""
    cls = module_or_class if isinstance(module_or_class, type) else type(module_or_class)
    spec = _CLASSES.get(cls)
    if spec is None:
        bound = [b.__name__ for b in cls.__mro__[1:] if b in _CLASSES]
        hint = (f"; it derives from {bound[0]} but declares no spec of its own (set `spec = ...` in the class "
                f"body)" if bound else "")
        raise SpecError(f"{cls.__name__} is not a registered neuron{hint}")
    return spec
