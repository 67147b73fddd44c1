"""Plots of the LSM experiments: reservoir spike rasters (:func:`snn.viz.raster`) and accuracy against reservoir
size (PNG files, written atomically).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import atomic_path
from ..viz import raster

__all__ = ["raster", "accuracy_vs_size"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
