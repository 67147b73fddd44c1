"""Neuron specs: a neuron family declared once, for every backend and exporter.

A :class:`NeuronSpec` says everything snn needs to run, differentiate, validate and export one neuron:

* ``states``: the state variables (:class:`State`), each with its initial value;
* ``params``: the module's parameters (:class:`Param`, :class:`Flag`) with their valid ranges, checked once by
  :meth:`NeuronSpec.validate` (the neuron modules call it; every backend and exporter relies on it);
* ``kernel_params`` / ``kernel_flags`` and ``to_kernel``: the parameter block the step reads (float values in
  order, the first ``learnable`` of which may be tensors that require a gradient, e.g. PLIF's decay) and the
  compile-time flags (bit ``i`` of ``FLAGS`` is ``kernel_flags[i]``), computed from the validated values;
* ``saved``: how many values the step saves per time step for the backward (``m = h - θ`` first, then the
  extra values its ``charge`` gives); the C++ functor's ``kSaved`` must equal it;
* ``input_scale``: the typical magnitude of one step's input for the default parameters (the conformance
  suite and the benchmarks draw inputs at this scale, so that neurons spike);
* ``strict_threshold``: ``None`` when the module chooses (``H >= θ`` by default, ``H > θ`` when strict),
  ``True`` when the neuron always fires on ``H > θ`` (CUBALIF, as Lava);
* ``exports``: how the neuron maps to each export format, or that it does not (read by
  :mod:`snn.export.registry`, which documents the entries);
* the step, written three times with the same floating-point operation order (spikes are compared bit for bit):
  ``charge``/``reset`` in torch (the ground truth), a C++ functor (:class:`CppStep`) and Triton functions
  (:class:`TritonStep`).

One step, for state ``st`` (a tuple), input ``x`` and the parameter block ``p``::

    h, θ, st = charge(x, st)          the membrane h and the threshold θ (charge may update states, e.g. a current)
    S        = Θ(h - θ)               Θ(m) = 1 if m >= 0 (strict: m > 0); backward σ'(m) of the surrogate
    st       = reset(h, θ, S, st)     the state after the step (detach_reset: S detached where it resets)

Firing, the surrogate, ``detach_reset``, the time loop, saving for the backward, multi-threading, dtypes and
the state-carry rules are generic (:mod:`snn.ops`); a spec writes only the per-element step.

Torch reference (``charge``, ``reset``: plain functions of torch tensors)::

    charge(x, st, p, f) -> (h, theta, st)       st: tuple of state tensors; p, f: the kernel parameters and
                                                 flags by name (p.decay, f.hard_reset); theta a tensor or float
    reset(h, theta, s, sr, st, p, f) -> st       s: the spike (with its surrogate gradient); sr: the spike used
                                                 where the neuron resets (s.detach() with detach_reset)

C++ functor (``CppStep``): ``template <typename T, unsigned FLAGS> struct Name`` in a header (built-in neurons,
under ``csrc/neurons/``) or a source string (a user's neuron, compiled on first use); ``SNN_HD`` marks the
members ``__host__ __device__`` under nvcc. ``T`` is float or double, ``FLAGS`` the kernel flags. It includes
``neuron_math.h`` (fire, surrogates, common LIF pieces) and defines::

    static constexpr int kStates;     // number of state variables, in the spec's order
    static constexpr int kSaved;      // values saved per step for the backward (>= 1); sv[0] = m = h - θ
    static constexpr int kParams;     // number of kernel parameters read from the block
    static constexpr int kLearnable;  // the first kLearnable parameters may get a gradient
    static constexpr int kRecord;     // index of the state recorded as v_seq
    static constexpr int kFlags;      // number of kernel flags
    SNN_HD explicit Name(const double* p);   // from the parameter block (kParams float64 values)
    SNN_HD void charge(T x, T* st, T& h, T& theta, T* sv) const;  // st: state before (in/out); fills sv[1..kSaved)
    SNN_HD void reset(T h, T theta, T s, T* st) const;            // st: the state after the step
    // Backward of one step: sv = the step's saved values, s = Θ(sv[0]), sg = σ'(sv[0]); gs = ∂L/∂S[t];
    // keep = 1 where the reset's dependence on S is differentiated, 0 with detach_reset;
    // g[k]: on entry ∂L/∂st_after[k], on exit ∂L/∂st_before[k]. Returns ∂L/∂X[t]. With LEARN, gp[j] receives
    // this step's ∂L/∂p[j] for j < kLearnable, prev holds the state before the step and x the input X[t]
    // (else unused).
    template <bool LEARN>
    SNN_HD T backward(const T* sv, T s, T sg, T gs, T keep, T* g, const T* prev, T x, T* gp) const;
    SNN_HD void restore(const T* sv, T s, T* st) const;  // the state after a step from its saved values and
                                                         // spike (only with kLearnable > 0: it gives `prev`)

Triton step (``TritonStep`` of ``@triton.jit`` functions, or the name of a module defining ``charge``, ``reset``,
``backward`` and ``restore``, imported on first use; tuples of blocks for ``st``, ``sv``, ``g``, ``prev``,
``gp``; ``p`` is the parameter block as a tuple of compute-dtype scalars; ``FLAGS``, ``KEEP``, ``LEARN`` are
``tl.constexpr``)::

    charge(x, st, p, FLAGS) -> (h, theta, st, sv_extra)        sv_extra: the tuple sv[1..kSaved)
    reset(h, theta, s, st, p, FLAGS) -> st
    backward(sv, s, sg, gs, g, prev, x, p, FLAGS, KEEP, LEARN) -> (gx, g, gp)    gp: kLearnable values
    restore(sv, s, p, FLAGS) -> st                              (only with learnable parameters)

For 16-bit inputs the Triton kernels save ``sv`` in the input dtype and read ``s`` from the forward's spikes
(``m`` held exactly near the threshold, where σ' is steep); every other path computes and saves in the state
dtype (float32 for 16-bit inputs, else the input's).

Where a built-in neuron lives: the spec and its torch reference in ``snn/neurons/<name>.py`` (registered in
``snn/neurons/__init__.py``), the functor in ``csrc/neurons/<name>.h`` (listed in ``csrc/neurons/builtin.h``,
compiled into ``snn._C`` for CPU and CUDA), the Triton step in ``kernels/<name>.py`` (``snn.kernels.<name>``).
A user's neuron is one spec in the user's code, with ``CppStep(functor, source=...)`` (see
:mod:`snn.ops.compile`) and optionally a ``TritonStep``.

A spec is registered with :func:`snn.neurons.register`; a neuron module class that names it as its ``spec``
is bound to it (:func:`snn.neurons.spec_of`). Modules of an unbound class (a subclass that did not declare
its own spec) are never taken for their base class's spec by the exporters.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..checks import check_bool, check_finite, check_range

__all__ = ["State", "Param", "Flag", "Learned", "CppStep", "TritonStep", "NeuronSpec", "SpecError"]


class SpecError(ValueError):
    """An incomplete or inconsistent neuron spec (the message names the spec)."""


@dataclass(frozen=True)
class State:
    """A state variable: ``init`` is its initial value, a number or the name of a kernel parameter (LIF's ``v``
    starts at ``v_reset``)."""

    name: str
    init: float | str = 0.0
    doc: str = ""


@dataclass(frozen=True)
class Param:
    """A module parameter: a finite real number in ``[low, high]`` (``*_open``: the end excluded);
    ``optional=True`` also accepts ``None`` (LIF's ``v_reset=None``: soft reset)."""

    name: str
    default: float | None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False
    doc: str = ""

    def check(self, value, who: str):
        """``value`` as a float (or None when optional), or a clear error naming ``who`` and the parameter."""
        if value is None and self.optional:
            return None
        if self.low is None and self.high is None:
            return check_finite(value, self.name, who)
        return check_range(value, self.name, who, self.low, self.high, low_open=self.low_open,
                           high_open=self.high_open)


@dataclass(frozen=True)
class Flag:
    """A True/False module parameter."""

    name: str
    default: bool
    doc: str = ""

    def check(self, value, who: str) -> bool:
        return check_bool(value, self.name, who)


@dataclass(frozen=True)
class Learned:
    """A learnable module parameter (an ``nn.Parameter`` of the module, one per layer) and its initial value
    from the validated parameters (PLIF's ``w = -log(init_tau - 1)``)."""

    name: str
    init: Callable[[Mapping[str, Any]], float]
    doc: str = ""


@dataclass(frozen=True)
class CppStep:
    """The C++ step functor: ``functor`` names ``template <typename T, unsigned FLAGS> struct``; either
    ``header`` (a path under ``csrc/``, compiled into ``snn._C``) or ``source`` (C++ text, compiled on first
    use and cached on disk) holds it."""

    functor: str
    header: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class TritonStep:
    """The Triton step functions (``@triton.jit``), see the module docstring for their signatures."""

    charge: Any
    reset: Any
    backward: Any
    restore: Any = None


class Named:
    """Values read by name as attributes (``p.decay``, ``f.hard_reset``); a plain class, which torch.compile
    traces (it cannot trace ``types.SimpleNamespace``)."""

    def __init__(self, names, values):
        for name, value in zip(names, values):
            setattr(self, name, value)


def _identity(values: Mapping[str, Any]) -> Mapping[str, Any]:
    return values


@dataclass(frozen=True)
class NeuronSpec:
    """One neuron, declared once; see :mod:`snn.neurons.spec` for the contract of every field."""

    name: str
    states: tuple[State, ...]
    params: tuple[Param | Flag, ...]
    kernel_params: tuple[str, ...]
    charge: Callable
    reset: Callable
    kernel_flags: tuple[str, ...] = ()
    learnable: int = 0
    saved: int = 1
    input_scale: float = 1.0
    learned: tuple[Learned, ...] = ()
    to_kernel: Callable[[Mapping[str, Any]], Mapping[str, Any]] = _identity
    strict_threshold: bool | None = None
    record: str = "v"
    checks: tuple[Callable[[Mapping[str, Any], str], None], ...] = ()
    cpp: CppStep | None = None
    triton: TritonStep | str | None = None
    doc: str = ""
    exports: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        self.check_complete()

    # -- consistency -----------------------------------------------------------------------------------
    def check_complete(self) -> None:
        """Raise :class:`SpecError` naming the spec when a field is missing or inconsistent."""
        who = f"neuron spec {self.name!r}"
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise SpecError(f"{who}: name must be an identifier, got {self.name!r}")
        if not self.states or not all(isinstance(s, State) for s in self.states):
            raise SpecError(f"{who}: states must be a non-empty tuple of State")
        names = [s.name for s in self.states]
        if self.record not in names:
            raise SpecError(f"{who}: record={self.record!r} is not a state (states: {names})")
        if not all(isinstance(p, (Param, Flag)) for p in self.params):
            raise SpecError(f"{who}: params must be Param or Flag entries")
        if not self.kernel_params and self.learnable:
            raise SpecError(f"{who}: learnable={self.learnable} but there are no kernel_params")
        if not isinstance(self.saved, int) or self.saved < 1:
            raise SpecError(f"{who}: saved={self.saved!r} must be an integer >= 1 (m = h - θ is always saved)")
        if not 0 <= self.learnable <= len(self.kernel_params):
            raise SpecError(f"{who}: learnable={self.learnable} must lie in [0, {len(self.kernel_params)}]")
        for s in self.states:
            if isinstance(s.init, str) and s.init not in self.kernel_params:
                raise SpecError(f"{who}: state {s.name!r} starts at {s.init!r}, which is not a kernel parameter")
        for fn in ("charge", "reset", "to_kernel"):
            if not callable(getattr(self, fn)):
                raise SpecError(f"{who}: {fn} must be callable (the torch reference of the step)")
        if self.cpp is not None and not isinstance(self.cpp, CppStep):
            raise SpecError(f"{who}: cpp must be a CppStep")
        if self.cpp is not None and (self.cpp.header is None) == (self.cpp.source is None):
            raise SpecError(f"{who}: CppStep needs exactly one of header= and source=")
        if self.triton is not None and not isinstance(self.triton, (TritonStep, str)):
            raise SpecError(f"{who}: triton must be a TritonStep or the name of a module that defines one")
        if len(set(self.kernel_params)) != len(self.kernel_params) or len(set(names)) != len(names):
            raise SpecError(f"{who}: duplicate names in kernel_params or states")

    # -- parameters ------------------------------------------------------------------------------------
    def validate(self, values: Mapping[str, Any], who: str) -> dict:
        """The module parameters checked once (finite, in range, flags True/False, cross-parameter checks),
        with defaults for the missing ones; unknown names are an error."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise TypeError(f"{who}: unknown parameter(s) {unknown}; accepted: {sorted(known)}")
        out = {name: p.check(values.get(name, p.default), who) for name, p in known.items()}
        for check in self.checks:
            check(out, who)
        return out

    def kernel(self, values: Mapping[str, Any]) -> tuple[tuple, tuple[bool, ...]]:
        """``(parameter block, flags)`` of the step for validated module values (learned tensors included)."""
        k = self.to_kernel(values)
        missing = [n for n in (*self.kernel_params, *self.kernel_flags) if n not in k]
        if missing:
            raise SpecError(f"neuron spec {self.name!r}: to_kernel gave no value for {missing}")
        return tuple(k[n] for n in self.kernel_params), tuple(bool(k[n]) for n in self.kernel_flags)

    def namespaces(self, params, flags) -> tuple[Named, Named]:
        """The parameter block and flags by name, as the torch ``charge``/``reset`` read them."""
        return Named(self.kernel_params, params), Named(self.kernel_flags, flags)

    def initial(self, name: str, params) -> float:
        """The initial value of state ``name`` for the parameter block ``params``."""
        init = next(s.init for s in self.states if s.name == name)
        if isinstance(init, str):
            return float(params[self.kernel_params.index(init)])
        return float(init)

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states)

    @property
    def record_index(self) -> int:
        return self.state_names.index(self.record)

    def triton_step(self) -> TritonStep | None:
        """The Triton step functions; a module name given as ``triton`` is imported here (triton loads on first
        use, never when snn is imported)."""
        step = self.triton
        if isinstance(step, str):
            mod = importlib.import_module(step)
            step = TritonStep(*(getattr(mod, n, None) for n in ("charge", "reset", "backward", "restore")))
        if step is not None and None in (step.charge, step.reset, step.backward):
            raise SpecError(f"neuron spec {self.name!r}: the Triton step needs charge, reset and backward")
        if step is not None and self.learnable and step.restore is None:
            raise SpecError(f"neuron spec {self.name!r}: a Triton step with learnable parameters needs restore")
        return step

    def strict(self, requested: bool) -> bool:
        """The comparison in effect: the spec's own when fixed, else ``requested``."""
        return bool(requested) if self.strict_threshold is None else self.strict_threshold

