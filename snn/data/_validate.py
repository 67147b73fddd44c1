"""Argument checks shared by the data readers: integer-valued arrays (``check_int`` is :func:`snn.checks.check_int`)."""
from __future__ import annotations

import numpy as np

from ..checks import check_int

__all__ = ["check_int", "whole_numbers"]


def whole_numbers(a, name: str, who: str, low: int, high: int) -> np.ndarray:
    """``a`` as an int64 array, after checking that it holds whole numbers in ``[low, high]``.

    Booleans and integers are taken as they are; floats must be finite and integral (1.0, not 1.5 or NaN);
    any other dtype (complex, strings, objects) is refused. ``high`` is at most the int64 maximum.
    """
    arr = np.asarray(a)
    kind = arr.dtype.kind
    if kind not in "biuf":
        raise TypeError(f"{who}: {name} must hold integers, got dtype {arr.dtype}")
    if arr.size == 0:
        return arr.astype(np.int64)
    if kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.floor(arr))
        if bad.any():
            raise ValueError(f"{who}: {name} must hold whole numbers, got {_first(arr, bad)}")
    # A float just above the int64 maximum compares equal to it, so floats are checked against high + 1.
    above = arr >= float(high) + 1 if kind == "f" else arr > high
    out_of_range = (arr < low) | above
    if out_of_range.any():
        raise ValueError(f"{who}: {name} must lie in [{low}, {high}], got {_first(arr, out_of_range)}")
    return arr.astype(np.int64)


def _first(arr: np.ndarray, bad: np.ndarray) -> str:
    """The first offending value, and its index when ``arr`` is not a scalar."""
    if arr.ndim == 0:
        return f"{arr.item()}"
    i = int(np.flatnonzero(bad.ravel())[0])
    return f"{arr.ravel()[i]} at index {i}"
