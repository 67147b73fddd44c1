r"""Continual-learning metrics on the accuracy matrix ``R`` (``R[i, j]``: accuracy on task ``j`` after training
task ``i``; entries for tasks not yet seen may be NaN).

- ACC = (1/P) Σ_j R[P-1, j]                         (mean of the last row)
- BWT = 1/(P-1) Σ_{j<P-1} (R[P-1, j] - R[j, j])     (backward transfer; negative = forgetting)
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["as_matrix", "acc", "bwt", "summary", "plot_matrix"]


def as_matrix(R) -> np.ndarray:
    """``R`` as a square float array (``None`` → NaN); a clear error otherwise."""
    a = np.array([[np.nan if v is None else v for v in row] for row in R], dtype=float) if not isinstance(
        R, np.ndarray) else R.astype(float)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise ValueError(f"accuracy matrix must be square and non-empty, got shape {a.shape}")
    return a


def acc(R) -> float:
    """Average accuracy after the last task: mean of the last row."""
    last = as_matrix(R)[-1]
    if np.isnan(last).any():
        raise ValueError("the last row of the accuracy matrix has missing entries")
    return float(last.mean())


def bwt(R) -> float:
    """Backward transfer: mean over j < last of ``R[last, j] - R[j, j]``; NaN for a single task."""
    a = as_matrix(R)
    p = a.shape[0]
    if p == 1:
        return math.nan
    d = a[-1, :-1] - np.diag(a)[:-1]
    if np.isnan(d).any():
        raise ValueError("BWT needs the diagonal and the last row of the accuracy matrix")
    return float(d.mean())


def summary(R) -> dict:
    """``{'matrix': R as nested lists (NaN → None), 'acc': ACC, 'bwt': BWT}``; BWT is ``None`` for one task
    or when the diagonal is missing (the multitask upper bound has only a last row)."""
    a = as_matrix(R)
    b = bwt(a) if not np.isnan(np.diag(a)[:-1]).any() else math.nan
    return {"matrix": [[None if np.isnan(v) else float(v) for v in row] for row in a], "acc": acc(a),
            "bwt": None if math.isnan(b) else b}


def plot_matrix(R, path, title: str = "accuracy matrix") -> None:
    """Heatmap of ``R`` (rows: after training task i, columns: evaluated on task j), written to ``path``
    atomically (:func:`snn.viz.heatmap`; missing entries are left blank)."""
    from ..viz import heatmap

    heatmap(as_matrix(R), path, xlabel="evaluated on task j", ylabel="after training task i", title=title)
