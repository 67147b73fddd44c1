"""Plots of the LSM experiments: reservoir spike rasters and accuracy against reservoir size (PNG files).

Rasters use :func:`snn.viz.raster` when that module is present, else an equivalent matplotlib image here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["raster", "accuracy_vs_size"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def raster(spikes, path, title: str | None = None) -> Path:
    """Spike raster of ``[T, N]`` spikes (a black cell per spike), written to ``path``."""
    try:
        from ..viz import raster as viz_raster
    except ImportError:
        viz_raster = None
    if viz_raster is not None:
        return viz_raster(spikes, path, title=title)
    s = np.asarray(spikes)
    if s.ndim != 2:
        raise ValueError(f"raster: expected spikes [T, N], got shape {s.shape}")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.imshow(s.T != 0, aspect="auto", cmap="Greys", interpolation="nearest", origin="lower")
    ax.set_xlabel("time step")
    ax.set_ylabel("neuron")
    ax.set_title(title or "spike raster")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def accuracy_vs_size(rows: list[dict], path, title: str = "linear probe accuracy vs reservoir size") -> Path:
    """One line per (device model) of ``lsm_accuracy`` against ``n_neurons``, with the raw-event baseline."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for dev in sorted({r["device_model"] for r in rows}):
        pts = sorted((r["n_neurons"], 100 * r["lsm_accuracy"]) for r in rows if r["device_model"] == dev)
        ax.plot(*zip(*pts), marker="o", label=f"LSM, device model: {dev}")
    raw = [100 * r["raw_accuracy"] for r in rows if "raw_accuracy" in r]
    if raw:
        ax.axhline(float(np.mean(raw)), color="k", ls="--", label="raw binned events")
    ax.set_xscale("log")
    sizes = sorted({r["n_neurons"] for r in rows})
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("reservoir neurons N")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.legend()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
