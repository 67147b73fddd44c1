"""A small training loop for feedback models, with what SPIDE is judged by: accuracy, time per epoch, peak
training memory, and the firing rates of both phases.

``train(model, (x, y), (x_test, y_test), grad='spide', T=30, epochs=1)`` trains with Adam on cross-entropy of
the readout; ``x`` is ``[N, ...]`` (static samples, repeated over T steps) or, with ``sequence=True``,
``[N, T, ...]``. Memory is :class:`snn.train.memory.PeakMemory` (autograd-saved tensors on the CPU, allocator
peak on CUDA). For the full trainer (checkpoints, schedules, distributed) use ``snn.train`` with the
``'spide'`` method of :mod:`snn.spide.method`.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ..checks import check_int, check_range
from ..data import batches
from ..train.memory import PeakMemory
from .network import feedback_networks, gradient
from .options import GRAD_MODES

__all__ = ["train", "evaluate", "time_major"]


def time_major(x: torch.Tensor, T: int, sequence: bool) -> torch.Tensor:
    """``[T, B, ...]``: static samples repeated over T steps (a view), or sequences ``[B, T, ...]`` transposed;
    samples stored as integers (event counts) become float32."""
    x = x if x.is_floating_point() else x.float()
    return x.transpose(0, 1) if sequence else x.unsqueeze(0).expand(T, *x.shape)


def evaluate(model, x, y, *, T: int, sequence: bool = False, batch_size: int = 512, device="cpu") -> float:
    """Accuracy of ``model`` (logits: the mean over time of its output) on ``(x, y)``."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for xb, yb in batches(x, y, batch_size):
            out = model(time_major(xb.to(device), T, sequence)).mean(0)
            correct += int((out.argmax(1) == yb.to(device)).sum())
    model.train()
    return correct / max(len(y), 1)


def train(model, train_set, test_set, *, grad: str = "spide", T: int = 30, epochs: int = 1, lr: float = 5e-3,
          batch_size: int = 128, seed: int = 0, sequence: bool = False, device="cpu", log=print,
          **options) -> dict:
    """Train ``model`` (with :class:`~snn.spide.FeedbackSNN` inside) by ``grad`` (``'spide'``, ``'ide'`` or
    ``'bptt'``; ``options``: other :class:`~snn.spide.SpideOptions` fields for the run). Returns the history:
    per epoch ``train_loss``, ``test_acc``, ``epoch_s``, ``peak_mb``, ``forward_rate`` (spikes per neuron and
    step), ``backward_rate`` (ternary spikes per couple and step, SPIDE only)."""
    who = "snn.spide.train"
    if grad not in GRAD_MODES:
        raise ValueError(f"{who}: grad must be one of {GRAD_MODES}, got {grad!r}")
    T, epochs, batch_size = (check_int(v, n, who, low=1) for v, n in ((T, "T"), (epochs, "epochs"),
                                                                      (batch_size, "batch_size")))
    lr = check_range(lr, "lr", who, 0.0, low_open=True)
    nets = feedback_networks(model)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    history = {k: [] for k in ("train_loss", "test_acc", "epoch_s", "peak_mb", "forward_rate", "backward_rate")}
    for epoch in range(epochs):
        meter, sums, n = PeakMemory(device), {"loss": 0.0, "fwd": 0.0, "bwd": 0.0}, 0
        start = time.perf_counter()
        for xb, yb in batches(*train_set, batch_size, shuffle=True, generator=gen):
            x_seq, yb = time_major(xb.to(device), T, sequence), yb.to(device)
            with gradient(model, grad, **options), meter:
                loss = F.cross_entropy(model(x_seq).mean(0), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
            opt.step()
            stats = nets[0].last_stats
            sums["loss"] += float(loss.detach())
            sums["fwd"] += stats["forward_rate"]
            sums["bwd"] += stats.get("backward_rate", 0.0)
            n += 1
        if device != "cpu" and torch.cuda.is_available():
            torch.cuda.synchronize()
        history["epoch_s"].append(time.perf_counter() - start)
        history["train_loss"].append(sums["loss"] / n)
        history["forward_rate"].append(sums["fwd"] / n)
        history["backward_rate"].append(sums["bwd"] / n if grad == "spide" else None)
        history["peak_mb"].append(meter.peak_mb)
        history["test_acc"].append(evaluate(model, *test_set, T=T, sequence=sequence, device=device))
        if log:
            log(f"{grad} epoch {epoch + 1}/{epochs}: loss {history['train_loss'][-1]:.4f}, test accuracy "
                f"{history['test_acc'][-1]:.4f}, {history['epoch_s'][-1]:.1f} s, peak {history['peak_mb'][-1]:.1f} "
                f"MiB, forward rate {history['forward_rate'][-1]:.3f}")
    return history
