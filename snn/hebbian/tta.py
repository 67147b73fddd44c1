r"""Fully test-time adaptation: a trained model meets unlabeled test batches one after another and adapts online.

Every adapter is called on a batch and returns its logits; it keeps adapting across calls (``reset()`` goes back
to the source model). ``enabled=False`` makes any of them plain inference: the model is left bit-identical.

- :class:`NoAdaptation`: the source model in evaluation mode (running normalisation statistics).
- :class:`NormAdaptation`: batch normalisation with the test batch's statistics, no parameter changes.
- :class:`Tent` (Wang et al., ICLR 2021): test-batch statistics, and one Adam step per batch on the affine
  parameters of the batch normalisation layers minimising the mean prediction entropy
  ``H(p) = -Σ_c p_c log p_c``; the logits returned are those of the forward pass before the step.
- :class:`NHL`, neuro-modulated Hebbian learning (Tang et al., CVPR 2023), on a
  :class:`~snn.hebbian.modulated.ModulatedNet`, per batch and with test-batch statistics:

  1. feed-forward soft Hebbian learning in the early blocks: one step of the SoftHebb rule (fixed rate
     ``hebbian_lr``) on the batch, each sample's postsynaptic factor scaled by the neuro-modulatory feedback of
     the top layers, its confidence ``m_b = 1 - H(p_b) / log C`` (``modulate=True``);
  2. the neuro-modulator (``z = γ ⊙ h + β``) takes one Adam step down the gradient of the mean entropy of the
     predictions, back-propagated from the top (which stays fixed);
  3. the batch is predicted by the adapted model.
"""
from __future__ import annotations

import copy
import math
from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_bool, check_int, check_range
from ..data import batches
from .rule import check_input

__all__ = ["METHODS", "entropy", "confidence", "batch_statistics", "Adapter", "NoAdaptation", "NormAdaptation",
           "Tent", "NHL", "make_adapter", "run_stream"]

METHODS = ("none", "norm", "tent", "nhl")


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """``H(p_b) = -Σ_c p_bc log p_bc`` per sample (``[B]``), ``p = softmax(logits)``."""
    logp = F.log_softmax(logits, 1)
    return -(logp.exp() * logp).sum(1)


def confidence(logits: torch.Tensor) -> torch.Tensor:
    """``1 - H(p_b) / log C`` in ``[0, 1]``: 1 for a one-hot prediction, 0 for a uniform one."""
    return 1 - entropy(logits) / math.log(logits.shape[1])


def _norm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@contextmanager
def batch_statistics(model: nn.Module):
    """Inside the block every batch normalisation layer of ``model`` uses the statistics of the batch it sees and
    leaves its running statistics (and counter) untouched; everything else runs in evaluation mode."""
    modes = {m: m.training for m in model.modules()}
    norms = [(m, m.track_running_stats) for m in _norm_layers(model)]
    model.eval()
    for m, _ in norms:
        m.train()
        m.track_running_stats = False
    try:
        yield
    finally:
        for m, track in norms:
            m.track_running_stats = track
        for m, mode in modes.items():
            m.training = mode


@contextmanager
def evaluation(model: nn.Module):
    """Evaluation mode inside the block, the modules' own modes restored after."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes.items():
            m.training = mode


class Adapter:
    """Calls ``model`` on test batches, adapting it as the subclass says (see the module docstring)."""

    name = "none"

    def __init__(self, model: nn.Module, enabled: bool = True):
        if not isinstance(model, nn.Module):
            raise TypeError(f"{type(self).__name__}: model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.enabled = check_bool(enabled, "enabled", type(self).__name__)
        self._source = copy.deepcopy(model.state_dict())
        self.steps = 0

    def reset(self) -> None:
        """Back to the source model (weights, statistics and the optimiser's state)."""
        self.model.load_state_dict(self._source)
        self.steps = 0
        self._reset_optimiser()

    def _reset_optimiser(self) -> None:
        pass

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        with evaluation(self.model):
            return self.model(x)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, "x", type(self).__name__, 4)
        if not self.enabled:
            return self.predict(x)
        self.steps += 1
        return self.adapt(x)

    def adapt(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict(x)


class NoAdaptation(Adapter):
    """The source model as it is."""


class NormAdaptation(Adapter):
    """Batch normalisation with the statistics of each test batch."""

    name = "norm"

    @torch.no_grad()
    def adapt(self, x):
        with batch_statistics(self.model):
            return self.model(x)


def _entropy_step(model, params, optimiser, x) -> torch.Tensor:
    """One optimiser step on ``params`` down the gradient of the mean prediction entropy; returns the logits."""
    logits = model(x)
    grads = torch.autograd.grad(entropy(logits).mean(), params)
    for p, g in zip(params, grads):
        p.grad = g
    optimiser.step()
    optimiser.zero_grad(set_to_none=True)
    return logits.detach()


class Tent(Adapter):
    """Entropy minimisation on the affine parameters of the batch normalisation layers (``lr``: Adam's rate)."""

    name = "tent"

    def __init__(self, model: nn.Module, lr: float = 1e-3, enabled: bool = True):
        super().__init__(model, enabled)
        self.lr = check_range(lr, "lr", "Tent", low=0, low_open=True)
        self.params = [p for m in _norm_layers(model) if m.affine for p in (m.weight, m.bias)]
        if not self.params:
            raise ValueError("Tent: the model has no batch normalisation layer with affine parameters to adapt")
        self._reset_optimiser()

    def _reset_optimiser(self) -> None:
        self.optimiser = torch.optim.Adam(self.params, lr=self.lr)

    def adapt(self, x):
        with batch_statistics(self.model):
            return _entropy_step(self.model, self.params, self.optimiser, x)


class NHL(Adapter):
    """Neuro-modulated Hebbian learning (see the module docstring).

    ``hebbian_lr``: the early layers' fixed test-time rate (with the rule's update normalisation);
    ``modulator_lr``: Adam's rate for the neuro-modulator; ``hebbian``/``modulate``/``tune_modulator`` switch the
    three parts (Hebbian learning, its modulation by the top's confidence, the entropy-tuned modulator)."""

    name = "nhl"

    def __init__(self, model: nn.Module, hebbian_lr: float = 0.1, modulator_lr: float = 1e-3,
                 hebbian: bool = True, modulate: bool = True, tune_modulator: bool = True, enabled: bool = True):
        if not (hasattr(model, "blocks") and hasattr(model, "modulator") and hasattr(model, "block_input")):
            raise TypeError(f"NHL: model must have Hebbian early blocks and a neuro-modulator (a "
                            f"snn.hebbian.ModulatedNet), got {type(model).__name__}")
        super().__init__(model, enabled)
        self.hebbian_lr = check_range(hebbian_lr, "hebbian_lr", "NHL", low=0, low_open=True)
        self.modulator_lr = check_range(modulator_lr, "modulator_lr", "NHL", low=0, low_open=True)
        self.hebbian = check_bool(hebbian, "hebbian", "NHL")
        self.modulate = check_bool(modulate, "modulate", "NHL")
        self.tune_modulator = check_bool(tune_modulator, "tune_modulator", "NHL")
        self.params = list(model.modulator.parameters())
        self._reset_optimiser()

    def _reset_optimiser(self) -> None:
        self.optimiser = torch.optim.Adam(self.params, lr=self.modulator_lr)

    def adapt(self, x):
        model = self.model
        with batch_statistics(model):
            if self.hebbian:
                with torch.no_grad():
                    m = confidence(model(x)) if self.modulate else None
                    for i, block in enumerate(model.blocks):
                        block.hebbian_update(model.block_input(x, i), m, lr=self.hebbian_lr, adaptive=False)
            if self.tune_modulator:
                _entropy_step(model, self.params, self.optimiser, x)
            with torch.no_grad():
                return model(x)


def make_adapter(method: str, model: nn.Module, enabled: bool = True, **options) -> Adapter:
    """The adapter for ``method`` (one of :data:`METHODS`) with its ``options``."""
    classes = {"none": NoAdaptation, "norm": NormAdaptation, "tent": Tent, "nhl": NHL}
    if method not in classes:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return classes[method](model, enabled=enabled, **options)


def run_stream(adapter: Adapter, x: torch.Tensor, y: torch.Tensor, batch_size: int = 128,
               progress: bool = False) -> float:
    """Feed the test set to ``adapter`` in order, ``batch_size`` samples at a time, each batch predicted as it
    arrives (online); returns the accuracy over the whole stream."""
    from .train import check_data, progress_bar

    check_data(x, y, "run_stream")
    batch_size = check_int(batch_size, "batch_size", "run_stream", 1)
    correct = 0
    with progress_bar(-(-len(x) // batch_size), f"test-time {adapter.name}", progress) as bar:
        for xb, yb in batches(x, y, batch_size):
            correct += int((adapter(xb).argmax(1) == yb).sum())
            bar.update()
    return correct / max(len(y), 1)
