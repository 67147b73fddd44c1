"""Plots saved as PNG (matplotlib, Agg backend): spike raster, membrane trace, training curves, heatmap.

Every function takes tensors or arrays, writes ``path`` atomically and returns it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .io import atomic_path

__all__ = ["raster", "membrane", "curves", "heatmap"]


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=float)


def _figure(**kw):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt, plt.subplots(**kw)


def _save(plt, fig, path) -> Path:
    path = Path(path)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def raster(spikes, path, title: str | None = None) -> Path:
    """Spike raster of ``[T, N]`` (or ``[T, B, N...]``: sample 0, neurons flattened): a black cell per spike."""
    s = _np(spikes)
    if s.ndim < 2:
        raise ValueError(f"raster: expected spikes [T, N] or [T, B, ...], got shape {s.shape}")
    if s.ndim > 2:
        s = s[:, 0].reshape(s.shape[0], -1)
    plt, (fig, ax) = _figure(figsize=(6, 4))
    # one cell per (time step, neuron), black where it spiked: readable for a few steps or for hundreds
    ax.imshow(s.T != 0, aspect="auto", cmap="Greys", interpolation="nearest", origin="lower",
              extent=(-0.5, s.shape[0] - 0.5, -0.5, s.shape[1] - 0.5), vmin=0, vmax=1)
    ax.set_xlabel("time step")
    ax.set_ylabel("neuron")
    ax.set_title(title or f"spike raster ({int(s.astype(bool).sum())} spikes, {s.shape[1]} neurons)")
    return _save(plt, fig, path)


def membrane(v, path, v_threshold: float | None = None, title: str | None = None) -> Path:
    """Membrane potential traces ``[T, N]`` (one line per neuron; at most 10 drawn), threshold dashed."""
    v = _np(v)
    if v.ndim == 1:
        v = v[:, None]
    if v.ndim != 2:
        raise ValueError(f"membrane: expected v [T, N] or [T], got shape {v.shape}")
    plt, (fig, ax) = _figure(figsize=(6, 3.5))
    for i in range(min(v.shape[1], 10)):
        ax.plot(np.arange(v.shape[0]), v[:, i], lw=1)
    if v_threshold is not None:
        ax.axhline(v_threshold, ls="--", color="r", lw=1, label="threshold")
        ax.legend(loc="upper right")
    ax.set_xlabel("time step")
    ax.set_ylabel("membrane potential")
    ax.set_title(title or "membrane potential")
    return _save(plt, fig, path)


def curves(history: dict, path, title: str | None = None) -> Path:
    """Training curves: keys with 'loss' on the left panel, 'acc' on the right, one line per key."""
    series = {k: _np(v) for k, v in history.items() if isinstance(v, (list, tuple, np.ndarray)) and len(v)
              and np.isscalar(v[0])}
    groups = {"loss": [k for k in series if "loss" in k], "accuracy": [k for k in series if "acc" in k]}
    groups = {g: ks for g, ks in groups.items() if ks} or {"value": list(series)}
    plt, (fig, axes) = _figure(ncols=len(groups), figsize=(5 * len(groups), 3.5), squeeze=False)
    for ax, (label, keys) in zip(axes[0], groups.items()):
        for k in keys:
            y = series[k]
            ax.plot(np.arange(1, len(y) + 1), y, marker="o", ms=3, label=k)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend()
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return _save(plt, fig, path)


def heatmap(matrix, path, xlabel: str = "", ylabel: str = "", title: str = "", fmt: str = "{:.2f}") -> Path:
    """A matrix as a coloured grid with its values written in (e.g. a continual-learning accuracy matrix)."""
    m = _np(matrix)
    if m.ndim != 2:
        raise ValueError(f"heatmap: expected a 2-D matrix, got shape {m.shape}")
    plt, (fig, ax) = _figure(figsize=(1 + 0.6 * m.shape[1], 1 + 0.5 * m.shape[0]))
    im = ax.imshow(m, cmap="viridis", aspect="auto")
    fig.colorbar(im, ax=ax)
    if m.size <= 400:
        mid = np.nanmean(m) if np.isfinite(m).any() else 0
        for (i, j), val in np.ndenumerate(m):
            if np.isfinite(val):
                ax.text(j, i, fmt.format(val), ha="center", va="center", fontsize=7,
                        color="w" if val < mid else "k")
    ax.set_xticks(range(m.shape[1]))
    ax.set_yticks(range(m.shape[0]))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return _save(plt, fig, path)
