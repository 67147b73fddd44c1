"""Checkpoints: one file with everything needed to continue a run exactly, written atomically.

Contents: ``format``, the ``train_config`` and ``model_config`` dicts, ``model``/``optimizer``/``scheduler``
state dicts, ``rng`` (torch, numpy, python), ``epoch`` (completed epochs), ``batch`` (batches done in the
running epoch, > 0 only for a checkpoint written on interrupt), ``partial`` (that epoch's running sums),
and ``history``.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from ..io import atomic_torch_save

__all__ = ["FORMAT", "rng_state", "set_rng_state", "save_checkpoint", "load_checkpoint", "load_model"]

FORMAT = "snn-checkpoint-1"


def rng_state() -> dict:
    """The state of every random number generator the trainer draws from."""
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path, state: dict) -> Path:
    """Write ``state`` (plus the format tag) to ``path`` atomically: temporary file, then rename."""
    atomic_torch_save({"format": FORMAT, **state}, path)
    return Path(path)


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read a checkpoint; a clear error when the file is missing or not an snn checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds on a damaged file
        raise ValueError(f"checkpoint {path} could not be read ({type(e).__name__}: {e})") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not an snn checkpoint (format {FORMAT!r})")
    return ckpt


def load_model(path, map_location="cpu") -> torch.nn.Module:
    """Rebuild the network of a checkpoint from its ``model_config`` and load its weights (eval mode)."""
    from ..models import build_model

    ckpt = load_checkpoint(path, map_location)
    model = build_model(ckpt["model_config"])
    model.load_state_dict(ckpt["model"])
    return model.eval()
