"""Which modules each exporter can express, and how: mappings keyed on the exact class.

The exporters (:func:`snn.export.nir.to_nir`, :func:`snn.export.loihi.lower`) look every layer up by
``type(layer)``, never ``isinstance``: a subclass (say a LIF with other dynamics) is not exported as its base
class. A class with no mapping is a :class:`LoweringError` naming the layer, the class and how to register one.

NIR (``snn -> NIR``, and optionally ``NIR -> snn``)::

    register_nir(cls, to_nir, kind="neuron"|"layer", node=None, from_nir=None)
        to_nir(module, ctx: NIRContext) -> a NIR node
        node, from_nir: the NIR node type(s) (class names, e.g. "LIF") that from_nir builds back into an snn module:
        from_nir(node, ctx: NIRImportContext) -> nn.Module

Loihi / Lava (the CUBA LIF form of :mod:`snn.export.loihi.lowering`)::

    register_loihi(cls, to_cuba)          a neuron layer: to_cuba(neuron, name) -> CubaParams
    register_loihi(cls, AFFINE)           a stateless layer, folded with its neighbours into W·s + b by probing

Either::

    refuse_export(cls, reason, targets=("nir", "loihi"))    the class has no counterpart; export names the reason

A neuron spec (:class:`snn.neurons.NeuronSpec`) carries its mappings itself, in ``spec.exports``, so that one
file declares the neuron and how it exports (snn's own families do, naming :mod:`snn.export.neurons`); they apply
to the classes bound to that spec (:func:`snn.neurons.spec_of`, exact class)::

    exports = {"nir": to_nir, "loihi": to_cuba}            the functions, or "package.module:function" names
                                                           (imported on first use: a spec file need not import
                                                           the exporters)
    exports = {"nir": {"to": to_nir, "node": "LIF", "from": from_nir}}      and read NIR "LIF" nodes back
    exports = {"nir": {"refuse": "why it has no NIR node"}}

A bound class whose spec has no entry for an exporter is refused, naming the layer, the class and the spec.

Lookup order: a mapping registered with the functions here, then the spec's ``exports``, then snn's built-in
mappings of its other layers (``builtin=True``). Registering a class a second time needs ``replace=True``.
Kinds (NIR): ``"layer"`` nodes change the sample shape (found by running the layer); ``"neuron"`` keeps it;
``"elementwise"`` keeps it and holds state but is no neuron (a delay); ``"recurrent"`` writes a neuron with its
feedback connection (see :func:`register_nir`). A recurrent layer maps its ``neuron`` through the same registry.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["LoweringError", "AFFINE", "NIRContext", "NIRImportContext", "register_nir", "register_loihi",
           "refuse_export", "TARGETS", "find_import", "importable"]

TARGETS = ("nir", "loihi")
AFFINE = "affine"                       # register_loihi(cls, AFFINE): a stateless layer folded into W·s + b
_KINDS = {"nir": ("neuron", "layer", "elementwise", "recurrent", "dropped"), "loihi": ("neuron", "affine", "recurrent")}
_API = {"nir": "snn.export.register_nir({cls}, to_nir, kind='neuron')",
        "loihi": "snn.export.register_loihi({cls}, to_cuba)"}
_TITLE = {"nir": "NIR", "loihi": "Lava/Loihi"}


class LoweringError(TypeError):
    """A module that has no counterpart in the export format (or a configuration that cannot be mapped)."""


@dataclass(frozen=True)
class Mapping:
    """How one class exports: ``kind`` (see :data:`_KINDS`), the function, or ``refused`` with the reason."""

    kind: str
    fn: Callable | None = None
    refused: str | None = None


@dataclass(frozen=True)
class NIRContext:
    """What a ``to_nir`` mapping knows: the layer's ``name``, the sample ``shape`` it receives and ``dt``."""

    name: str
    shape: tuple
    dt: float

    def full(self, value, dtype=np.float32) -> np.ndarray:
        """``value`` for every neuron of the layer (float32 unless ``dtype``)."""
        return np.full(self.shape, value, dtype=dtype)


@dataclass(frozen=True)
class NIRImportContext:
    """What a ``from_nir`` builder knows: the node's ``name``, ``dt``, the number ``n`` of neurons it receives,
    and ``backend`` (given to every neuron). :meth:`scalar` reads a parameter that must be one value per layer."""

    name: str
    dt: float
    n: int
    backend: str
    scalar: Callable[[str], float]

    @property
    def neuron_kw(self) -> dict:
        """Keyword arguments of every imported neuron: multi-step, the backend, NIR's ``v > v_threshold``."""
        return dict(step_mode="m", backend=self.backend, strict_threshold=True)


def _class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class _Table:
    """One exporter's mappings: snn's built-in ones and those registered by users (which win)."""

    def __init__(self, target: str):
        self.target = target
        self.builtin: dict[type, Mapping] = {}
        self.user: dict[type, Mapping] = {}

    def add(self, cls: type, mapping: Mapping, *, builtin: bool = False, replace: bool = False) -> None:
        if not isinstance(cls, type):
            raise TypeError(f"register {_TITLE[self.target]} mapping: cls must be a class, got {cls!r}")
        if mapping.kind not in _KINDS[self.target]:
            raise ValueError(f"register {_TITLE[self.target]} mapping for {cls.__qualname__}: kind must be one of "
                             f"{_KINDS[self.target]}, got {mapping.kind!r}")
        if mapping.refused is None and not callable(mapping.fn) and mapping.kind not in ("affine", "dropped"):
            raise TypeError(f"register {_TITLE[self.target]} mapping for {cls.__qualname__}: the mapping must be "
                            f"callable, got {mapping.fn!r}")
        table = self.builtin if builtin else self.user
        if cls in table and not replace:
            raise ValueError(f"{_class_name(cls)} already has a {_TITLE[self.target]} mapping; pass replace=True "
                             f"to replace it")
        table[cls] = mapping

    def find(self, cls: type) -> Mapping | None:
        return self.user.get(cls) or _spec_mapping(cls, self.target) or self.builtin.get(cls)

    def supported(self) -> list[str]:
        """Names of the classes that export (built-in layers, the neurons whose specs map, users' classes)."""
        from ..recurrent import neuron_classes

        classes = [*self.builtin, *neuron_classes(), *self.user]
        found = (self.find(c) for c in classes)
        return list(dict.fromkeys(c.__name__ for c, m in zip(classes, found) if m is not None and m.refused is None))

    def get(self, module, name: str) -> Mapping:
        """The mapping of ``type(module)``; a :class:`LoweringError` naming the layer if refused or unknown."""
        cls = type(module)
        mapping = self.find(cls)
        title, supported = _TITLE[self.target], ", ".join(self.supported())
        if mapping is not None and mapping.refused is not None:
            raise LoweringError(f"layer {name} ({cls.__name__}): {mapping.refused}; supported layers: {supported}")
        if mapping is None:
            raise LoweringError(f"layer {name} ({cls.__name__}): {_class_name(cls)} has no {title} mapping"
                                f"{_spec_note(cls, self.target)}; supported layers: {supported}. "
                                f"{_why_not_base(cls, self)}To export it, register how it maps: "
                                f"{_API[self.target].format(cls=cls.__name__)} (see snn.export.registry)")
        return mapping


def _bound_spec(cls: type):
    """The neuron spec bound to exactly ``cls``, or None."""
    from ..neurons import is_bound, spec_of

    return spec_of(cls) if is_bound(cls) else None


def _spec_note(cls: type, target: str) -> str:
    spec = _bound_spec(cls)
    return "" if spec is None else f" (its neuron spec {spec.name!r} declares no {target!r} entry in exports)"


def _spec_entry(spec, target: str) -> dict | None:
    """``spec.exports[target]`` as ``{"to": ..., "node": ..., "from": ...}`` or ``{"refuse": reason}``; None if
    absent. A bare function or name is ``{"to": it}``."""
    entry = (getattr(spec, "exports", None) or {}).get(target)
    if entry is None or isinstance(entry, dict) and "refuse" in entry and len(entry) == 1:
        return entry
    entry = entry if isinstance(entry, dict) else {"to": entry}
    allowed = {"to", "node", "from"} if target == "nir" else {"to"}
    if "to" not in entry or set(entry) - allowed or ("node" in entry) != ("from" in entry):
        keys = "'to' (and both 'node' and 'from')" if target == "nir" else "'to'"
        raise TypeError(f"neuron spec {spec.name!r}: exports[{target!r}] must be a function, a "
                        f"'package.module:function' name, {{'refuse': reason}} or a dict of {keys}; got {entry!r}")
    return entry


def _spec_mapping(cls: type, target: str) -> Mapping | None:
    """The mapping a neuron spec bound to exactly ``cls`` declares in its ``exports`` (None if none)."""
    spec = _bound_spec(cls)
    entry = None if spec is None else _spec_entry(spec, target)
    if entry is None:
        return None
    if "refuse" in entry:
        return Mapping("neuron", refused=str(entry["refuse"]))
    return Mapping("neuron", _resolve(entry["to"], f"neuron spec {spec.name!r}: exports[{target!r}]"))


def _spec_import(node_type: str) -> Mapping | None:
    """The import a registered neuron spec declares for NIR nodes of class ``node_type`` (one spec at most)."""
    from ..neurons import specs

    found = [(s, e) for s in specs() for e in [_spec_entry(s, "nir")] if e and e.get("node") == node_type]
    if len(found) > 1:
        raise ValueError(f"NIR node type {node_type!r} is read back by several neuron specs "
                         f"({[s.name for s, _ in found]}); give it to one (or register_nir(..., replace=True))")
    if not found:
        return None
    spec, entry = found[0]
    return Mapping("neuron", _resolve(entry["from"], f"neuron spec {spec.name!r}: exports['nir']['from']"))


def _resolve(entry, who: str) -> Callable:
    """A callable, or the one a ``"package.module:function"`` string names (imported here)."""
    if callable(entry):
        return entry
    if not isinstance(entry, str) or entry.count(":") != 1:
        raise TypeError(f"{who} must be a function or a 'package.module:function' string, got {entry!r}")
    module, name = entry.split(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise TypeError(f"{who}: {entry!r} cannot be imported ({e})") from None
    if not callable(fn):
        raise TypeError(f"{who}: {entry!r} is not callable")
    return fn


def _why_not_base(cls: type, table: _Table) -> str:
    """A sentence for a subclass of a class that exports: its base's mapping is not used for it."""
    base = next((b for b in cls.__mro__[1:] if table.find(b) is not None and table.find(b).refused is None), None)
    if base is None:
        return ""
    return (f"It subclasses {base.__name__}, but export looks up the exact class: a subclass may change the "
            f"dynamics, so it is not exported as a {base.__name__}. ")


NIR = _Table("nir")
LOIHI = _Table("loihi")
NIR_IMPORT = {"builtin": {}, "user": {}}    # NIR node class name -> Mapping that builds the snn module back


def find_import(node_type: str) -> Mapping | None:
    """How :func:`snn.export.nir.from_nir` builds a NIR node of class ``node_type``: a user's mapping, then a
    neuron spec's, then snn's built-in one."""
    return NIR_IMPORT["user"].get(node_type) or _spec_import(node_type) or NIR_IMPORT["builtin"].get(node_type)


def importable() -> list[str]:
    """The NIR node class names :func:`snn.export.nir.from_nir` builds."""
    from ..neurons import specs

    nodes = [e["node"] for s in specs() for e in [_spec_entry(s, "nir")] if e and "node" in e]
    return list(dict.fromkeys([*NIR_IMPORT["builtin"], *nodes, *NIR_IMPORT["user"]]))


def register_nir(cls: type, to_nir: Callable | None, *, kind: str = "neuron", node=None,
                 from_nir: Callable | None = None, replace: bool = False, builtin: bool = False) -> None:
    """Export ``cls`` to NIR with ``to_nir(module, ctx: NIRContext) -> node``.

    ``kind``: ``'neuron'`` (the sample shape is unchanged), ``'layer'`` (stateless; the shape after it is found
    by running it), ``'elementwise'`` (stateful, shape unchanged, no neuron: a delay), ``'recurrent'``
    (``to_nir`` returns the neuron node and the recurrent Linear/Affine node, written in a cycle, or one
    ``NIRGraph`` holding the whole layer) or ``'dropped'`` (nothing is written; ``to_nir`` may be None).
    ``node`` (a NIR class name or a tuple of them) and
    ``from_nir(node, ctx: NIRImportContext) -> module`` make :func:`snn.export.nir.from_nir` read those nodes
    back as this class. ``builtin=True`` is for snn's own mappings (a user's mapping of the same class wins)."""
    if (node is None) != (from_nir is None):
        raise ValueError(f"register_nir({getattr(cls, '__qualname__', cls)}): give both node and from_nir, or "
                         f"neither")
    NIR.add(cls, Mapping(kind, to_nir), builtin=builtin, replace=replace)
    if node is not None:
        _register_import(node, Mapping(kind, from_nir), builtin, replace)


def _register_import(node, mapping: Mapping, builtin: bool, replace: bool) -> None:
    if not callable(mapping.fn):
        raise TypeError(f"register_nir: from_nir must be callable, got {mapping.fn!r}")
    table = NIR_IMPORT["builtin" if builtin else "user"]
    for name in (node,) if isinstance(node, str) else tuple(node):
        if name in table and not replace:
            raise ValueError(f"NIR node type {name!r} already has an import; pass replace=True to replace it")
        table[name] = mapping


def register_loihi(cls: type, to_cuba: Callable | str, *, replace: bool = False, builtin: bool = False) -> None:
    """Lower ``cls`` to Loihi's CUBA LIF: a neuron with ``to_cuba(neuron, name) ->``
    :class:`snn.export.loihi.CubaParams`, or a stateless layer with :data:`AFFINE` (folded into the connection
    ``W·s + b`` by running it on the identity basis, so it must be affine in its input). ``builtin`` as in
    :func:`register_nir`."""
    mapping = Mapping(AFFINE) if to_cuba == AFFINE else Mapping("neuron", to_cuba)
    LOIHI.add(cls, mapping, builtin=builtin, replace=replace)


def refuse_export(cls: type, reason: str, targets=TARGETS, *, replace: bool = False, builtin: bool = False) -> None:
    """Say that ``cls`` has no counterpart in ``targets`` (``'nir'``, ``'loihi'``): exporting it is a
    :class:`LoweringError` naming the layer, the class and ``reason``."""
    tables = {"nir": NIR, "loihi": LOIHI}
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    if not targets or any(t not in tables for t in targets) or not reason:
        raise ValueError(f"refuse_export({getattr(cls, '__qualname__', cls)}): targets must be among {TARGETS} "
                         f"and a reason given; got targets={targets!r}, reason={reason!r}")
    for t in targets:
        tables[t].add(cls, Mapping("neuron", refused=reason), builtin=builtin, replace=replace)
