r"""HLOP: Hebbian-learning-based orthogonal projection (Xiao et al., "Hebbian Learning based Orthogonal
Projection for Continual Learning of Spiking Neural Networks").

Each protected layer gets ``k`` lateral *subspace neurons* with weights ``H`` (``k x n``, ``n`` the layer's
presynaptic dimension). They learn the principal subspace of the layer's presynaptic activity with the Oja
subspace rule (Hebbian term ``y xᵀ``, anti-Hebbian lateral term ``-y yᵀ H``)::

    y  = H x
    dH = lr · E_batch[ y (x - Hᵀ y)ᵀ ]          (optionally through momentum m: v ← m v + (1-m) dH, H ← H + v)

whose fixed points are orthonormal bases of the top-``k`` principal subspace of ``E[x xᵀ]``. While a new
task is learned, the presynaptic trace that enters the weight update is replaced by its component orthogonal
to the consolidated subspace, ``x̂ = x - Hᵀ H x``. Because ``grad_W = Σ δ xᵀ`` is linear in ``x``, this equals
projecting the weight gradient itself::

    grad_W ← grad_W - (grad_W Hᵀ) H

which is what :class:`HLOP` does after ``backward()``: it works with any training method whose weight
gradient is (a sum of) outer products of errors and presynaptic traces (BPTT, DSR, OTTT), costs nothing in
the forward pass, and for ``Conv2d`` (presynaptic vector = an unfolded input patch, weight viewed as
``[out, C·kh·kw]``) avoids projecting every patch. For a ``Linear`` layer that sees fewer distinct input rows
than it has outputs (the first layer of a direct-encoded network sees the same ``B`` images at all ``T``
steps) it is cheaper to project the rows themselves, with the output gradients ``D`` (``grad_W = Dᵀ X``)::

    grad_W ← grad_W - Dᵀ (X - X̂),     X̂ = X - (X Hᵀ) H     (B rows instead of ``out``; X̂ is also Oja's residual) A layer bias is the weight of a constant input 1: with
``include_bias`` the presynaptic vector is ``[x, 1]`` and the bias gradient is projected with the weight.

Spiking lateral neurons (the neuromorphic variant): the response ``y`` is replaced by a spike count over
``steps`` steps of neurons with range ``±scale``::

    y_q = round(clip(y, -scale, scale) / scale · steps) / steps · scale

The functional core (:func:`oja_step`, :func:`project_out`, :func:`quantise_spikes`, :func:`orthonormal_rows`,
:func:`principal_angles`) is pure tensor math; :class:`Subspace` holds one layer's lateral neurons and
:class:`HLOP` wires subspaces to a network's ``Linear``/``Conv2d`` layers through forward hooks.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_range

__all__ = ["oja_step", "project_out", "quantise_spikes", "orthonormal_rows", "principal_angles", "Subspace",
           "HLOP", "TRACES", "PROJECTIONS"]

TRACES = ("rate", "steps")
PROJECTIONS = ("auto", "gradient", "input")


# ---------------------------------------------------------------------------------------------- functional core
def quantise_spikes(y: torch.Tensor, scale: float, steps: int) -> torch.Tensor:
    """Spike-count response of spiking lateral neurons: ``round(clip(y, ±scale)/scale·steps)/steps·scale``."""
    return torch.round(y.clamp(-scale, scale) / scale * steps) / steps * scale


def project_out(v: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """``v - (v Hᵀ) H``: remove from the rows of ``v`` (``[..., n]``) their components in the row space of ``H``
    (``[k, n]``, orthonormal rows). For a weight gradient ``[out, n]`` this is the projected gradient."""
    if H.numel() == 0:
        return v
    return v - (v @ H.t()) @ H


def orthonormal_rows(k: int, n: int, against: torch.Tensor | None = None, generator=None,
                     dtype=torch.float32, device=None) -> torch.Tensor:
    """``k`` random orthonormal rows in ``R^n``, also orthogonal to the rows of ``against`` when given."""
    g = torch.randn(n, k, generator=generator, dtype=dtype, device=device)
    if against is not None and against.numel():
        g = g - against.t() @ (against @ g)
        g = g - against.t() @ (against @ g)  # twice is enough against round-off
    q, _ = torch.linalg.qr(g)
    return q.t().contiguous()


def principal_angles(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Principal angles (radians, ascending) between the row spaces of ``A`` and ``B``."""
    qa, _ = torch.linalg.qr(A.t().double())
    qb, _ = torch.linalg.qr(B.t().double())
    s = torch.linalg.svdvals(qa.t() @ qb).clamp(-1.0, 1.0)
    return torch.arccos(s).flip(0)


def oja_step(H: torch.Tensor, x: torch.Tensor, lr: float, n_frozen: int = 0, velocity: torch.Tensor | None = None,
             momentum: float = 0.0, quantise: Callable | None = None, x_res: torch.Tensor | None = None,
             clip: float = 10.0) -> torch.Tensor:
    """One batch-averaged Oja subspace update of the rows ``n_frozen:`` of ``H`` (in place); returns ``H``.

    ``dH = lr · yᵀ(x - y H) / N`` with ``y = x Hᵀ`` for a batch of rows ``x`` (``[N, n]``), updating only the
    learnable rows; the frozen rows still take part in the lateral (anti-Hebbian) term, so new neurons learn
    the principal subspace of the residual ``x - H_oldᵀ H_old x``. ``x_res`` may pass that residual when the
    frozen part is fixed (it is then computed once per batch, not once per iteration). ``velocity`` (the
    rows being learned) carries momentum ``v ← m v + (1 - m) dH``. ``clip`` bounds each entry of ``dH``.
    """
    q = quantise or (lambda t: t)
    Hn = H[n_frozen:]
    if x_res is None:
        y = q(x @ H.t())
        r = x - y @ H
        yn = y[:, n_frozen:]
    else:
        yn = q(x_res @ Hn.t())
        r = x_res - yn @ Hn
    dH = (yn.t() @ r / x.shape[0]).clamp_(-clip, clip)
    if velocity is not None and momentum > 0:
        velocity.mul_(momentum).add_(dH, alpha=1.0 - momentum)
        dH = velocity
    Hn.add_(dH, alpha=lr)
    return H


# ---------------------------------------------------------------------------------------------- one layer
class Subspace(nn.Module):
    """The lateral subspace neurons of one layer: ``H`` (``[k, n]``), of which the first ``n_frozen`` rows are
    consolidated (used for projection, frozen unless ``refine_old``) and the rest are being learned.

    ``grow(k)`` adds ``k`` neurons initialised orthonormal (and orthogonal to the existing ones),
    ``hebbian(x)`` runs ``iterations`` Oja updates on a batch of presynaptic traces, ``consolidate()``
    freezes every neuron so far, ``project(g)`` removes the consolidated subspace from the rows of ``g``.
    ``normalise`` divides ``lr`` by the batch's mean ``‖x‖²`` so one ``lr`` suits layers of any scale.
    """

    def __init__(self, n: int, lr: float = 0.05, momentum: float = 0.9, iterations: int = 1,
                 refine_old: bool = False, normalise: bool = True, spiking_steps: int | None = None,
                 spiking_scale: float = 20.0, generator: torch.Generator | None = None, orthonormalise: bool = False):
        super().__init__()
        if n < 1:
            raise ValueError(f"Subspace: n must be >= 1, got {n}")
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"Subspace: lr must be a positive number, got {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"Subspace: momentum must lie in [0, 1), got {momentum}")
        if int(iterations) != iterations or iterations < 1:
            raise ValueError(f"Subspace: iterations must be a positive integer, got {iterations}")
        if spiking_steps is not None and (int(spiking_steps) != spiking_steps or spiking_steps < 1):
            raise ValueError(f"Subspace: spiking_steps must be a positive integer or None, got {spiking_steps}")
        check_range(spiking_scale, "spiking_scale", "Subspace", low=0, low_open=True)
        self.n, self.lr, self.momentum, self.iterations = int(n), float(lr), float(momentum), int(iterations)
        self.refine_old, self.normalise, self.orthonormalise = bool(refine_old), bool(normalise), bool(orthonormalise)
        self.spiking_steps, self.spiking_scale = spiking_steps, float(spiking_scale)
        self.generator = generator
        self.register_buffer("H", torch.zeros(0, self.n))
        self.register_buffer("velocity", torch.zeros(0, self.n))
        self.n_frozen = 0
        self._complement_cache = None

    @property
    def k(self) -> int:
        return self.H.shape[0]

    def _quantise(self):
        if self.spiking_steps is None:
            return None
        return lambda y: quantise_spikes(y, self.spiking_scale, self.spiking_steps)

    def grow(self, k: int) -> int:
        """Add up to ``k`` new neurons (never more than ``n`` in all); returns how many were added."""
        k = max(0, min(int(k), self.n - self.k))
        if k:
            new = orthonormal_rows(k, self.n, against=self.H, generator=self.generator, dtype=self.H.dtype,
                                   device=self.H.device)
            self.H = torch.cat([self.H, new])
            self.velocity = torch.cat([self.velocity, torch.zeros_like(new)])
        return k

    @torch.no_grad()
    def consolidate(self) -> None:
        """Freeze every neuron learned so far: they now define the protected subspace.

        With ``orthonormalise`` the neurons learned since the last consolidation are first made exactly
        orthonormal and orthogonal to the older ones (Oja's fixed points are, its iterates only nearly), keeping
        their span: ``N ← N - (N H_oᵀ) H_o``, then ``N ← (N Nᵀ)^(-1/2) N`` (the nearest orthonormal rows), so that
        ``g - (g Hᵀ) H`` is the exact orthogonal projection onto the complement of what was learned."""
        start = 0 if self.refine_old else self.n_frozen
        if self.orthonormalise and self.k > start:
            H = self.H.double()
            old, new = H[:start], H[start:]
            if start:
                new = new - (new @ old.t()) @ old
            evals, V = torch.linalg.eigh(new @ new.t())
            new = (V * evals.clamp_min(1e-12).rsqrt()) @ V.t() @ new
            self.H[start:] = new.to(self.H.dtype)
        self.n_frozen = self.k
        self.velocity.zero_()
        self._complement_cache = None

    @torch.no_grad()
    def hebbian(self, x: torch.Tensor, x_res: torch.Tensor | None = None, iterations: int | None = None) -> None:
        """``iterations`` Oja updates on presynaptic traces ``x`` (``[N, n]``) of the task being learned.

        ``x_res`` may pass the residual ``x - H_fᵀ H_f x`` over the consolidated neurons when the caller has it
        already (HLOP's input projection computes it for the weight update). With ``normalise`` the step is
        ``lr / E‖x_res‖²``: the energy of what the learning neurons see (the residual once neurons are frozen),
        so later tasks learn their subspace as fast as the first."""
        if x.shape[-1] != self.n:
            raise ValueError(f"Subspace: traces have {x.shape[-1]} features, the subspace expects {self.n}")
        frozen = 0 if self.refine_old else self.n_frozen
        if self.k == frozen or x.shape[0] == 0:
            return
        x = x.to(self.H.dtype)
        if frozen and x_res is None:
            x_res = self.project(x)
        elif not frozen:
            x_res = None
        lr = self.lr
        if self.normalise:
            seen = x if x_res is None else x_res
            lr = lr / float((seen * seen).sum(1).mean().clamp_min(1e-12))
        for _ in range(self.iterations if iterations is None else int(iterations)):
            oja_step(self.H, x, lr, n_frozen=frozen, velocity=self.velocity[frozen:], momentum=self.momentum,
                     quantise=self._quantise(), x_res=x_res)

    @torch.no_grad()
    def project(self, g: torch.Tensor) -> torch.Tensor:
        """``g - (g Hᵀ) H`` over the consolidated neurons (``[..., n]``); ``g`` unchanged when there are none.
        With spiking lateral neurons the response ``g Hᵀ`` is quantised to spike counts first."""
        if self.n_frozen == 0:
            return g
        C = self._complement()
        if C is not None:
            return (g @ C) @ C.t()
        Hf = self.H[:self.n_frozen]
        y = g @ Hf.t()
        if self.spiking_steps is not None:
            y = quantise_spikes(y, self.spiking_scale, self.spiking_steps)
        return g - y @ Hf

    def rank_cost(self) -> int:
        """Multiply-adds per row and feature of :meth:`project`: ``k`` directly, ``n - k`` through the complement."""
        uses_complement = self.spiking_steps is None and not self.refine_old and 2 * self.n_frozen > self.n
        return self.n - self.n_frozen if uses_complement else self.n_frozen

    def _complement(self) -> torch.Tensor | None:
        """An orthonormal basis ``C`` (``[n, n - k]``) of the complement of the consolidated subspace, used when
        that subspace fills more than half of the space: ``g - (g Hᵀ) H = (g C) Cᵀ`` for orthonormal ``H``, at
        a cost of ``n - k`` instead of ``k`` per row. Computed once per consolidation (the eigenvectors of
        ``I - HᵀH`` with eigenvalue above 1/2). Not used with spiking lateral neurons (their response is
        quantised, which has no complement form), nor while the old neurons are still refined)."""
        if self.spiking_steps is not None or self.refine_old or 2 * self.n_frozen <= self.n:
            return None
        if self._complement_cache is None or self._complement_cache[0] != self.n_frozen:
            Hf = self.H[:self.n_frozen].double()
            evals, evecs = torch.linalg.eigh(torch.eye(self.n, dtype=Hf.dtype, device=Hf.device) - Hf.t() @ Hf)
            C = evecs[:, evals > 0.5].to(self.H.dtype).contiguous()
            self._complement_cache = (self.n_frozen, C)
        return self._complement_cache[1]

    def extra_repr(self) -> str:
        return f"n={self.n}, k={self.k}, frozen={self.n_frozen}, lr={self.lr}, spiking_steps={self.spiking_steps}"


# ---------------------------------------------------------------------------------------------- a network
def _layer_dim(m: nn.Module, include_bias: bool) -> int:
    if isinstance(m, nn.Linear):
        n = m.in_features
    elif isinstance(m, nn.Conv2d):
        if m.groups != 1:
            raise ValueError("HLOP: grouped convolutions are not supported")
        n = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
    else:
        raise TypeError(f"HLOP protects nn.Linear and nn.Conv2d layers, got {type(m).__name__}")
    return n + int(include_bias and m.bias is not None)


def _traces(m: nn.Module, calls: list[torch.Tensor], trace: str, max_rows: int | None, include_bias: bool,
            generator=None) -> torch.Tensor:
    """Rows ``[N, n]`` of presynaptic traces from the inputs a layer saw in one training step.

    Multi-step inputs ``[T, B, ...]`` (``step_mode='m'``) or several single-step calls (one per time step,
    as in online training) give, for ``trace='rate'``, the firing rate over time per sample; for
    ``'steps'``, every step of every sample (an input that is the same at every step: each sample once).
    Conv2d inputs become unfolded patches.
    """
    multi = calls[0].dim() == (3 if isinstance(m, nn.Linear) else 5)  # [T, B, ...] from step mode 'm'
    if multi:
        seq = torch.cat(calls, 1) if len(calls) > 1 else calls[0]
    else:
        same = all(c.shape == calls[0].shape for c in calls)
        seq = torch.stack(calls) if same else torch.cat(calls).unsqueeze(0)
    if trace == "rate":
        x = seq.mean(0)
    else:  # an input that is the same at every step (direct encoding) has its B distinct rows once
        x = seq[0] if _same_over_dim0(seq) else seq.flatten(0, 1)
    if isinstance(m, nn.Conv2d):
        x = F.unfold(x, m.kernel_size, m.dilation, m.padding, m.stride).transpose(1, 2).flatten(0, 1)
    else:
        x = x.flatten(0, -2)
    if max_rows is not None and x.shape[0] > max_rows:
        x = x[torch.randperm(x.shape[0], generator=generator)[:max_rows].to(x.device)]
    if include_bias and m.bias is not None:
        x = torch.cat([x, torch.ones_like(x[:, :1])], 1)
    return x


def _same_over_dim0(x: torch.Tensor) -> bool:
    """Whether every slice ``x[t]`` equals ``x[0]`` (a stride-0 expand, or equal values)."""
    return x.shape[0] > 1 and (x.stride(0) == 0 or all(torch.equal(x[0], x[t]) for t in range(1, x.shape[0])))


def _distinct_rows(calls: list[torch.Tensor], deltas: list[torch.Tensor], max_rows: int | None = None):
    """Rows ``X`` (``[N, n]``) and output gradients ``D`` (``[N, out]``) of a Linear layer's recorded calls with
    ``grad_W = Dᵀ X``. A multi-step input that is the same at every step (direct encoding) gives its ``B``
    distinct rows with ``D = Σ_t δ[t]`` (exact: ``Σ_t δ[t]ᵀ x = (Σ_t δ[t])ᵀ x``); so do single-step calls that all
    see the same input. Returns ``(X, D, repeated)``, or ``None`` as soon as there would be ``max_rows`` or more."""
    if len(calls) > 1 and all(c.shape == calls[0].shape for c in calls) and \
            _same_over_dim0(torch.stack(calls) if calls[0].dim() < 3 else torch.cat(calls)):
        # several single-step calls that all saw one input
        if max_rows is not None and calls[0].numel() // calls[0].shape[-1] >= max_rows:
            return None
        d = torch.stack(deltas).sum(0)
        return calls[0].reshape(-1, calls[0].shape[-1]), d.reshape(-1, d.shape[-1]), True
    xs, ds, rows = [], [], 0
    for x, d in zip(calls, deltas):
        if x.dim() == 3 and _same_over_dim0(x):
            x, d = x[0], d.sum(0)
        rows += x.numel() // x.shape[-1]
        if max_rows is not None and rows >= max_rows:
            return None
        xs.append(x.reshape(-1, x.shape[-1]))
        ds.append(d.reshape(-1, d.shape[-1]))
    repeated = len(calls) == 1 and calls[0].dim() == 3 and xs[0].shape[0] < calls[0].shape[0] * calls[0].shape[1]
    return torch.cat(xs), torch.cat(ds), repeated


class HLOP(nn.Module):
    """Hebbian orthogonal projection for the ``Linear``/``Conv2d`` layers of a network.

    Parameters
    ----------
    net: the network; its layers are found by name (``layers``) or every ``Linear``/``Conv2d`` by default.
    k: lateral neurons added per task: an int, one int per protected layer, or ``k(task, layer_index, n)``.
    lr, momentum, iterations, refine_old, spiking_steps, spiking_scale, orthonormalise: see :class:`Subspace`.
    trace: ``'rate'`` (firing rate over the time steps of each sample) or ``'steps'`` (every step).
    max_rows: at most this many trace rows per layer and batch enter the Hebbian update (random subset).
    include_bias: protect a layer's bias as the weight of a constant input 1.
    project: how the weight update is made orthogonal to the subspace (the same update either way):
      ``'gradient'``: ``grad_W ← grad_W - (grad_W Hᵀ) H`` (``out`` rows projected);
      ``'input'`` (Linear layers): the presynaptic rows are projected and the part of the update they carried
      inside the subspace is removed, ``grad_W ← grad_W - Dᵀ (X Hᵀ H)`` with ``D`` the output gradients
      (captured by a tensor hook), ``N`` rows projected; a direct-encoded input repeated over the ``T`` steps
      counts its ``B`` distinct rows once (``D = Σ_t δ[t]``), and the projected rows double as the Hebbian
      residual of the same batch;
      ``'auto'`` (default): per layer and batch, whichever costs fewer multiply-adds: ``N (2r + out)`` for
      the rows against ``2 out r`` for the gradient (``r``: ``k``, or ``n - k`` through the complement).

    Use (the :class:`snn.continual.trainer.ContinualTrainer` does this through the ``hlop`` strategy)::

        hlop.begin_task(t)          # grow subspaces by k_t neurons
        hlop.collect(True); loss.backward(); hlop.collect(False)
        hlop.project_gradients()    # grad_W ← grad_W - (grad_W Hᵀ) H   (before optimizer.step())
        hlop.hebbian_update()       # Oja updates on the traces the forward pass recorded
        hlop.end_task()             # consolidate

    Projection is exact with plain SGD (with or without momentum, reset per task) and no weight decay;
    adaptive optimisers (Adam) rescale coordinates and break the orthogonality.
    """

    def __init__(self, net: nn.Module, layers: Sequence[str] | None = None, k=32, lr: float = 0.05,
                 momentum: float = 0.9, iterations: int = 1, refine_old: bool = False, trace: str = "rate",
                 max_rows: int | None = 1024, include_bias: bool = True, spiking_steps: int | None = None,
                 spiking_scale: float = 20.0, seed: int = 0, project: str = "auto", orthonormalise: bool = False):
        super().__init__()
        if project not in PROJECTIONS:
            raise ValueError(f"HLOP: project must be one of {PROJECTIONS}, got {project!r}")
        if trace not in TRACES:
            raise ValueError(f"HLOP: trace must be one of {TRACES}, got {trace!r}")
        if max_rows is not None and max_rows < 1:
            raise ValueError(f"HLOP: max_rows must be >= 1 or None, got {max_rows}")
        named = dict(net.named_modules())
        if layers is None:
            layers = [n for n, m in named.items() if isinstance(m, (nn.Linear, nn.Conv2d))]
        else:
            missing = [n for n in layers if n not in named]
            if missing:
                raise ValueError(f"HLOP: no layer named {missing} in the network; layers with weights: "
                                 f"{[n for n, m in named.items() if isinstance(m, (nn.Linear, nn.Conv2d))]}")
        if not layers:
            raise ValueError("HLOP: no Linear or Conv2d layer to protect")
        self.names = list(layers)
        self.modules_ = [named[n] for n in self.names]  # not registered: the network owns them
        self.trace, self.max_rows, self.include_bias, self.project = trace, max_rows, bool(include_bias), project
        self.generator = torch.Generator().manual_seed(seed)
        self.subspaces = nn.ModuleList(
            Subspace(_layer_dim(m, include_bias), lr=lr, momentum=momentum, iterations=iterations,
                     refine_old=refine_old, spiking_steps=spiking_steps, spiking_scale=spiking_scale,
                     generator=self.generator, orthonormalise=orthonormalise) for m in self.modules_)
        self._k = self._k_rule(k)
        self._inputs: list[list[torch.Tensor]] = [[] for _ in self.modules_]
        self._deltas: list[dict[int, torch.Tensor]] = [{} for _ in self.modules_]  # call index -> dL/d output
        self._residual: list[tuple | None] = [None] * len(self.modules_)  # (x, x̂) of the batch, for Oja
        self._collecting = False
        self.task = -1
        self._hooks = [m.register_forward_hook(self._hook(i)) for i, m in enumerate(self.modules_)]

    def _k_rule(self, k):
        if callable(k):
            return k
        if isinstance(k, int):
            if k < 0:
                raise ValueError(f"HLOP: k must be >= 0, got {k}")
            return lambda task, i, n: k
        k = list(k)
        if len(k) != len(self.modules_) or any(int(v) != v or v < 0 for v in k):
            raise ValueError(f"HLOP: k needs one non-negative int per protected layer ({len(self.modules_)}), got {k}")
        return lambda task, i, n: k[i]

    def _hook(self, i):
        m = self.modules_[i]
        wants_delta = self.project != "gradient" and isinstance(m, nn.Linear)

        def hook(module, inputs, output):
            if self._collecting and module.training:
                x = inputs[0]
                self._inputs[i].append(x.detach())
                # 'auto' projects inputs only if the distinct rows (at least B) can be fewer than the outputs
                rows_min = x.shape[1] if x.dim() == 3 else x.numel() // max(x.shape[-1], 1)
                if wants_delta and self.subspaces[i].n_frozen and output.requires_grad and \
                        (self.project == "input" or rows_min < m.out_features):
                    call = len(self._inputs[i]) - 1
                    output.register_hook(lambda g: self._deltas[i].__setitem__(call, g.detach()))
        return hook

    def remove(self) -> None:
        """Detach the forward hooks from the network."""
        for h in self._hooks:
            h.remove()
        self._hooks = []

    # -- task protocol -----------------------------------------------------------------------------
    def begin_task(self, task: int | None = None) -> None:
        """Start a task: grow each layer's subspace by ``k(task, layer, n)`` neurons."""
        self.task = self.task + 1 if task is None else int(task)
        for i, s in enumerate(self.subspaces):
            s.grow(self._k(self.task, i, s.n))

    def collect(self, on: bool = True) -> None:
        """Record (``True``) the presynaptic inputs of the following forward passes, or stop (``False``)."""
        self._collecting = bool(on)

    @torch.no_grad()
    def hebbian_update(self, iterations: int | None = None) -> None:
        """Oja updates (``iterations``, default each subspace's own) on the recorded traces, then forgets them."""
        for i, (m, s) in enumerate(zip(self.modules_, self.subspaces)):
            cached = self._residual[i]
            if cached is not None:  # the rows input projection already projected (the same at every step)
                s.hebbian(cached[0], x_res=cached[1], iterations=iterations)
            elif self._inputs[i]:
                s.hebbian(_traces(m, self._inputs[i], self.trace, self.max_rows, self.include_bias, self.generator),
                          iterations=iterations)
        self.discard()

    def discard(self) -> None:
        """Forget recorded traces (and output gradients) without learning from them."""
        self._inputs = [[] for _ in self.modules_]
        self._deltas = [{} for _ in self.modules_]
        self._residual = [None] * len(self.modules_)

    @torch.no_grad()
    def project_gradients(self) -> None:
        """Remove from each protected layer's weight (and bias) gradient its component in the consolidated
        subspace: ``grad ← grad - (grad Hᵀ) H``, computed on the gradient or on the inputs (``project``)."""
        for i, (m, s) in enumerate(zip(self.modules_, self.subspaces)):
            if s.n_frozen == 0 or m.weight.grad is None:
                continue
            if self._deltas[i] and self._project_inputs(i, m, s):
                continue
            g = m.weight.grad.reshape(m.weight.shape[0], -1)
            with_bias = self.include_bias and m.bias is not None
            if with_bias:
                gb = m.bias.grad if m.bias.grad is not None else torch.zeros_like(m.bias)
                g = torch.cat([g, gb.unsqueeze(1)], 1)
            g = s.project(g)
            if with_bias:
                m.bias.grad = g[:, -1].contiguous()
                g = g[:, :-1]
            m.weight.grad.copy_(g.reshape(m.weight.shape))

    def _project_inputs(self, i: int, m: nn.Module, s: Subspace) -> bool:
        """Input projection of layer ``i``: ``grad_W ← grad_W - Dᵀ (X - X̂)``, ``X̂ = X - HᵀHX`` (with the bias
        column when protected). Returns False (nothing done) when the recorded calls and output gradients do not
        pair up, or, for ``'auto'``, when projecting the gradient is cheaper."""
        calls, deltas = self._inputs[i], self._deltas[i]
        if len(deltas) != len(calls):
            return False
        # 'auto': N rows cost N·n·(2r + out) (projection, then Dᵀ(X - X̂)), the gradient 2·out·n·r (r = rank_cost)
        out, r = m.weight.shape[0], s.rank_cost()
        rows = _distinct_rows(calls, [deltas[c] for c in range(len(calls))],
                              max_rows=math.ceil(2 * out * r / (2 * r + out)) if self.project == "auto" else None)
        if rows is None:  # 'auto': projecting the gradient's rows is cheaper
            return False
        X, D, repeated = rows
        with_bias = self.include_bias and m.bias is not None
        if with_bias:
            X = torch.cat([X, torch.ones_like(X[:, :1])], 1)
        X = X.to(s.H.dtype)
        Xhat = s.project(X)
        corr = D.to(X.dtype).t().contiguous() @ (X - Xhat)  # the update's component inside the subspace
        if with_bias:
            if m.bias.grad is not None:
                m.bias.grad.sub_(corr[:, -1].to(m.bias.grad.dtype))
            corr = corr[:, :-1]
        m.weight.grad.sub_(corr.to(m.weight.grad.dtype))
        if repeated and (self.max_rows is None or X.shape[0] <= self.max_rows):
            # the batch's traces (rates or steps: the same rows when the input repeats) and their residual, for Oja
            self._residual[i] = (X, Xhat)
        return True

    def end_task(self) -> None:
        """Consolidate: every lateral neuron learned so far protects the next tasks."""
        self.discard()
        for s in self.subspaces:
            s.consolidate()

    def sizes(self) -> dict[str, int]:
        """Protected subspace dimension per layer."""
        return {n: s.n_frozen for n, s in zip(self.names, self.subspaces)}
