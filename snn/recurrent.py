r"""Recurrent spiking layers and synaptic delays: :class:`Recurrent`, :class:`Delay`.

:class:`Recurrent` is dense recurrence into any registered neuron (``S[-1] = 0``)::

    I[t] = W_in·x[t] + b + W_rec·S[t-1]         (in_features given)
    I[t] = x[t] + (W_rec·S[t-1] + b)            (in_features=None: the input is already a current)
    S[t] = neuron(I[t])

Both step modes compute each step with the same operations (the input and the feedback in one matrix product
over ``[x[t], S[t-1]]``), so ``'s'`` and ``'m'`` give the same spikes bit for bit; the neuron runs one step at a
time on its own backend. The last spikes are state, cleared by :func:`snn.functional.reset`.

:class:`Delay` delays every element of its input by a whole number of steps (``x[t] = 0`` for ``t < 0``)::

    y[t] = x[t - d]         d: one delay for all, one per channel, or one per element (per synapse line)

It keeps the last ``max(d)`` inputs: a ring buffer in step mode ``'s'``, a shift of the sequence in ``'m'``.
Both export to NIR (:mod:`snn.export.nir`: a recurrent subgraph, a ``Delay`` node); Loihi export of
:class:`Recurrent` goes through the neuron's Lava mapping, a :class:`Delay` has none.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import neurons
from .base import MemoryModule, guard_carried_state, watch_backward
from .checks import check_bool, check_int, check_real_tensor, check_sequence
from .neuron import BaseNeuron

__all__ = ["Recurrent", "Delay", "neuron_class", "neuron_classes", "check_delays"]


def neuron_classes() -> list[type]:
    """Every neuron module class (subclass of :class:`snn.neuron.BaseNeuron`) bound to a registered spec."""
    todo, found = [BaseNeuron], []
    while todo:
        subs = todo.pop().__subclasses__()
        found += [c for c in subs if neurons.is_bound(c)]
        todo += subs
    return list(dict.fromkeys(found))


def neuron_class(name: str) -> type:
    """The neuron module class bound to the registered spec ``name`` (``'lif'``, ``'cubalif'``, ...)."""
    spec = neurons.get(name)
    found = [c for c in neuron_classes() if neurons.spec_of(c) is spec]
    if len(found) > 1:      # a user's class bound to a built-in spec: snn's own class is the one meant by name
        found = [c for c in found if c.__module__ == BaseNeuron.__module__] or found
    if len(found) != 1:
        what = "no neuron module class" if not found else f"several classes ({[c.__name__ for c in found]})"
        raise ValueError(f"neuron {name!r}: {what} bound to that spec; pass a neuron module instead")
    return found[0]


def _make_neuron(neuron, backend: str, params: dict, who: str) -> BaseNeuron:
    """A neuron module from a spec name, a neuron class or a module (then ``params``/``backend`` must be unset)."""
    if isinstance(neuron, BaseNeuron):
        if params or backend != "auto":
            raise TypeError(f"{who}: neuron is a module already; give its parameters and backend to it, not to "
                            f"the layer (got {sorted(params) + (['backend'] if backend != 'auto' else [])})")
        return neuron
    if isinstance(neuron, str):
        neuron = neuron_class(neuron)
    if isinstance(neuron, type) and issubclass(neuron, BaseNeuron):
        return neuron(step_mode="s", backend=backend, **params)
    raise TypeError(f"{who}: neuron must be a registered neuron name (one of {neurons.names()}), a neuron class "
                    f"or a neuron module (snn.neuron.*), got {type(neuron).__name__} {neuron!r}")


class Recurrent(MemoryModule):
    r"""A dense recurrent spiking layer (equations in :mod:`snn.recurrent`).

    ``Recurrent(in_features, out_features, neuron='lif', bias=True, step_mode='s', backend='auto', **params)``:
    ``neuron`` is a registered neuron name (built with ``params`` and ``backend``), a neuron class, or a neuron
    module (``snn.neuron.LIF(tau=4.0)``). Weights start as ``nn.Linear``'s (uniform in ``±1/sqrt(fan_in)``).
    Input ``[B, in_features]`` (``'s'``) or ``[T, B, in_features]`` (``'m'``). ``in_features=None`` drops the
    input connection (the input is ``[.., out_features]``; ``b`` then joins the feedback, as NIR's recurrent
    ``Affine``); :meth:`feedback` builds that form around a neuron module.

    Parameters: ``weight [out, in]`` (None without an input connection), ``bias [out]`` or None,
    ``recurrent_weight [out, out]``; the neuron is ``self.neuron``. State: the last spikes ``s``.
    """

    state_names = ("s",)    # what snn.train.ottt.detach_states detaches (the neuron detaches its own)

    def __init__(self, in_features: int | None, out_features: int, neuron="lif", *, bias: bool = True,
                 step_mode: str = "s", backend: str = "auto", **neuron_params):
        super().__init__(step_mode)
        who = type(self).__name__
        self.in_features = None if in_features is None else check_int(in_features, "in_features", who, 1)
        self.out_features = check_int(out_features, "out_features", who, 1)
        bias = check_bool(bias, "bias", who)
        self.neuron = _make_neuron(neuron, backend, neuron_params, who)
        n, fan_in = self.out_features, self.in_features or self.out_features
        self.recurrent_weight = nn.Parameter(_uniform((n, n), n))
        self.weight = None if self.in_features is None else nn.Parameter(_uniform((n, fan_in), fan_in))
        self.bias = nn.Parameter(_uniform((n,), fan_in)) if bias else None
        self.reset()

    @classmethod
    def feedback(cls, neuron: BaseNeuron, n: int, weight=None, *, bias=None, step_mode: str = "m") -> "Recurrent":
        """The layer without an input connection around the neuron module ``neuron``:
        ``I[t] = x[t] + (W_rec·S[t-1] + b)``, ``W_rec = weight`` (``[n, n]``, zeros when None), ``b = bias``
        (``[n]`` or None)."""
        m = cls(None, n, neuron, bias=bias is not None, step_mode=step_mode)
        who = f"{cls.__name__}.feedback"
        with torch.no_grad():
            m.recurrent_weight.copy_(_tensor(torch.zeros(n, n) if weight is None else weight, (n, n), "weight", who))
            if bias is not None:
                m.bias.copy_(_tensor(bias, (n,), "bias", who))
        return m

    def reset(self) -> None:
        self.s = None
        self._backward_token = None
        self.neuron.reset()

    def _check_input(self, x) -> None:
        who = type(self).__name__
        check_real_tensor(x, "input", who)
        check_sequence(x, self.step_mode, who)
        features = self.in_features or self.out_features
        if x.shape[-1] != features or (self.step_mode == "m" and x.shape[0] == 0):
            shape = "[T, B, {}]".format(features) if self.step_mode == "m" else f"[B, {features}]"
            raise ValueError(f"{who}: step_mode={self.step_mode!r} takes input {shape} (T >= 1), got shape "
                             f"{tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        x_seq = x.unsqueeze(0) if self.step_mode == "s" else x
        s = self._last_spikes(x_seq[0])
        self.neuron.step_mode = "s"
        if self.weight is not None:   # one product over [x[t], S[t-1]] per step, the same in both step modes
            w = torch.cat([self.weight, self.recurrent_weight], 1).to(x.dtype)
            b = None if self.bias is None else self.bias.to(x.dtype)
            charge = lambda x_t, s: F.linear(torch.cat([x_t, s], -1), w, b)  # noqa: E731
        else:
            w = self.recurrent_weight.to(x.dtype)
            b = None if self.bias is None else self.bias.to(x.dtype)
            charge = lambda x_t, s: x_t + F.linear(s, w, b)  # noqa: E731
        out = []
        for x_t in x_seq:
            s = self.neuron(charge(x_t, s))
            out.append(s)
        self.s = s
        y = torch.stack(out)
        self._backward_token = watch_backward(y)
        return y[0] if self.step_mode == "s" else y

    def _last_spikes(self, x_t: torch.Tensor) -> torch.Tensor:
        """``S[t-1]`` for the first step of this call: zeros after a reset, else the carried spikes."""
        shape = (*x_t.shape[:-1], self.out_features)
        if self.s is None:
            return x_t.new_zeros(shape)
        if tuple(self.s.shape) != shape:
            raise ValueError(f"{type(self).__name__}: input batch shape {tuple(x_t.shape[:-1])} differs from the "
                             f"carried state's {tuple(self.s.shape[:-1])}; call snn.functional.reset(net) between "
                             f"batches")
        return guard_carried_state(self.s.to(x_t.dtype), self._backward_token, type(self).__name__)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"step_mode={self.step_mode!r}")


def _uniform(shape: tuple, fan_in: int) -> torch.Tensor:
    """``nn.Linear``'s initial values: uniform in ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``."""
    bound = 1.0 / math.sqrt(fan_in)
    return torch.empty(shape).uniform_(-bound, bound)


def _tensor(value, shape: tuple, name: str, who: str) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float32)
    if tuple(t.shape) != shape:
        raise ValueError(f"{who}: {name} must have shape {list(shape)}, got {list(t.shape)}")
    return t


def check_delays(delays, who: str) -> torch.Tensor:
    """``delays`` as an int64 tensor of whole numbers of steps >= 0 (an int, a sequence or a tensor)."""
    if isinstance(delays, bool):
        raise TypeError(f"{who}: delays must be whole numbers of time steps >= 0, got {delays!r}")
    try:
        t = torch.as_tensor(delays)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{who}: delays must be an int or an array of ints (time steps >= 0), got "
                        f"{type(delays).__name__} {delays!r}") from None
    if t.dtype == torch.bool or t.is_complex() or t.numel() == 0:
        raise TypeError(f"{who}: delays must be a non-empty array of whole numbers of time steps >= 0, got "
                        f"{t.dtype} of shape {list(t.shape)}")
    if t.is_floating_point():
        bad = ~torch.isfinite(t) | (t != torch.round(t))
        if bool(bad.any()):
            raise ValueError(f"{who}: delays must be whole numbers of time steps, got {t[bad].flatten()[0].item()!r} "
                             f"({int(bad.sum())} value(s) not whole)")
    t = t.detach().to(torch.int64)
    if bool((t < 0).any()):
        raise ValueError(f"{who}: delays must be >= 0 time steps, got {int(t.min())}")
    return t


class Delay(MemoryModule):
    r"""``y[t] = x[t - d]`` element-wise, ``x[t] = 0`` for ``t < 0`` (see :mod:`snn.recurrent`).

    ``delays``: whole numbers of time steps >= 0, an int (every element) or an array that broadcasts to one
    sample's shape (``[C, 1, 1]``: one per channel; the sample's shape: one per element). Input ``[B, ...]``
    (``'s'``) or ``[T, B, ...]`` (``'m'``); the last ``max(d)`` inputs are state (cleared by
    :func:`snn.functional.reset`), so a sequence split over calls gives the same output as one call.
    """

    def __init__(self, delays, step_mode: str = "s"):
        super().__init__(step_mode)
        self.register_buffer("delays", check_delays(delays, type(self).__name__))
        self.max_delay = int(self.delays.max())
        self.reset()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kw):
        """Loaded delays are checked like given ones, and the buffered inputs are dropped."""
        key = prefix + "delays"
        if key in state_dict:
            check_delays(state_dict[key], f"{type(self).__name__} (state dict {key!r})")
        super()._load_from_state_dict(state_dict, prefix, *args, **kw)
        self.max_delay = int(self.delays.max())
        self.reset()

    def reset(self) -> None:
        self.ring: list[torch.Tensor | None] = [None] * self.max_delay   # x[t-k] at ring[(pos - k) % D]
        self.pos = 0
        self._backward_token = None

    def _check_input(self, x) -> torch.Size:
        who = type(self).__name__
        check_real_tensor(x, "input", who)
        check_sequence(x, self.step_mode, who)
        sample = x.shape[2:] if self.step_mode == "m" else x.shape[1:]
        try:
            fits = torch.broadcast_shapes(self.delays.shape, sample) == sample
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(f"{who}: delays of shape {list(self.delays.shape)} do not broadcast to one sample of "
                             f"shape {list(sample)} (input {list(x.shape)}); give one delay, one per channel or "
                             f"one per element")
        return sample

    def _history(self, like: torch.Tensor) -> list[torch.Tensor]:
        """The last ``D`` inputs, oldest first (zeros before the first step), checked against ``like``'s shape."""
        old = [self.ring[(self.pos + k) % self.max_delay] for k in range(self.max_delay)]
        for h in old:
            if h is not None and h.shape != like.shape:
                raise ValueError(f"{type(self).__name__}: input step shape {tuple(like.shape)} differs from the "
                                 f"buffered {tuple(h.shape)}; call snn.functional.reset(net) between batches")
        who = type(self).__name__
        return [like.new_zeros(like.shape) if h is None else
                guard_carried_state(h.to(like.dtype), self._backward_token, who) for h in old]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        if self.max_delay == 0:
            return x
        x_seq = x.unsqueeze(0) if self.step_mode == "s" else x
        y = self._step(x_seq[0]) if self.step_mode == "s" else self._shift(x_seq)
        self._backward_token = watch_backward(y)
        return y

    def _select(self, hist: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``hist[D + t - d]`` element-wise for step indices ``t`` (``hist``: ``[D + T, B, ...]``)."""
        if self.delays.numel() == 1:
            d = int(self.delays.reshape(()))
            return hist[self.max_delay - d:hist.shape[0] - d]
        lead = (t.numel(),) + (1,) * (hist.dim() - 1)
        index = (self.max_delay + t.reshape(lead) - self.delays.to(hist.device)).expand(t.numel(), *hist.shape[1:])
        return torch.gather(hist, 0, index)

    def _step(self, x_t: torch.Tensor) -> torch.Tensor:
        """Step mode 's': read ``x[t - d]`` from the ring of the last D inputs, then write ``x[t]``."""
        hist = [*self._history(x_t), x_t]
        if self.delays.numel() == 1:
            y = hist[self.max_delay - int(self.delays.reshape(()))]
        else:
            y = self._select(torch.stack(hist), torch.zeros(1, dtype=torch.int64, device=x_t.device))[0]
        self.ring[self.pos] = x_t
        self.pos = (self.pos + 1) % self.max_delay
        return y

    def _shift(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Step mode 'm': the sequence after the buffered inputs, shifted by ``d``; keeps the last D inputs."""
        hist = torch.cat([torch.stack(self._history(x_seq[0])), x_seq])
        y = self._select(hist, torch.arange(x_seq.shape[0], device=x_seq.device))
        tail = hist[-self.max_delay:]
        self.ring, self.pos = [tail[k] for k in range(self.max_delay)], 0
        return y

    def extra_repr(self) -> str:
        d = self.delays.tolist() if self.delays.numel() <= 8 else f"shape {list(self.delays.shape)}"
        return f"delays={d}, step_mode={self.step_mode!r}"
