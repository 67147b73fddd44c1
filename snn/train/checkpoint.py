"""Checkpoints: one file with everything needed to continue a run exactly, written atomically, read without
running any code from it.

Contents: ``format``, the ``train_config`` and ``model_config`` dicts, ``model``/``optimizer``/``scheduler``
state dicts, ``rng`` (torch, numpy, python), ``epoch`` (completed epochs), ``batch`` (batches done in the
running epoch, > 0 only for a checkpoint written on interrupt), ``partial`` (that epoch's running sums),
``history`` and ``dataset`` (the data set ``auto`` resolved to). Everything is tensors and plain data
(numpy's RNG state is stored as ``(name, key tensor, pos, has_gauss, cached_gaussian)``), so the file loads
with ``torch.load(weights_only=True)``; files of earlier versions, whose numpy state is an array, load too.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from ..io import atomic_torch_save, safe_torch_load

__all__ = ["FORMAT", "RESUME_KEYS", "MODEL_KEYS", "rng_state", "set_rng_state", "save_checkpoint",
           "load_checkpoint", "load_model", "check_same_model", "CUSTOM_MODEL"]

FORMAT = "snn-checkpoint-1"
# What a checkpoint needs to rebuild its network, and to continue its run.
MODEL_KEYS = ("model_config", "model")
RESUME_KEYS = ("train_config", "model_config", "model", "optimizer", "scheduler", "rng", "epoch", "batch",
               "partial", "history")
CUSTOM_MODEL = "custom"  # the model_config name of a user's model, which only its author can rebuild
_DICT_KEYS = ("train_config", "model_config", "model", "optimizer", "scheduler", "rng", "history")


def rng_state() -> dict:
    """The state of every random number generator the trainer draws from, as tensors and plain data."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
            "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
    np.random.set_state((name, keys.astype(np.uint32), pos, has_gauss, cached))
    random.setstate(_as_python_state(state["python"]))
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_python_state(s):
    """``random.setstate`` wants tuples; a state that went through a file may come back with lists."""
    version, internal, gauss = s
    return version, tuple(internal), gauss


def save_checkpoint(path, state: dict) -> Path:
    """Write ``state`` (plus the format tag) to ``path`` atomically: temporary file, then rename."""
    atomic_torch_save({"format": FORMAT, **state}, path)
    return Path(path)


def load_checkpoint(path, map_location="cpu", require=()) -> dict:
    """Read a checkpoint without running code from it (see :func:`snn.io.safe_torch_load`). Clear errors
    naming the file: missing, damaged, holding objects snn does not write, not an snn checkpoint, or lacking
    one of the entries ``require`` (e.g. :data:`MODEL_KEYS`, :data:`RESUME_KEYS`)."""
    path = Path(path)
    ckpt = safe_torch_load(path, "checkpoint", map_location=map_location, allow_numpy=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not an snn checkpoint (format {FORMAT!r})")
    missing = [k for k in require if k not in ckpt]
    if missing:
        raise ValueError(f"checkpoint {path} has no {', '.join(map(repr, missing))} "
                         f"entr{'y' if len(missing) == 1 else 'ies'}; it cannot be "
                         f"{'resumed' if set(missing) - set(MODEL_KEYS) else 'rebuilt into a network'}")
    wrong = [k for k in _DICT_KEYS if k in require and not isinstance(ckpt[k], dict)]
    if wrong:
        raise ValueError(f"checkpoint {path}: the {wrong[0]!r} entry is a {type(ckpt[wrong[0]]).__name__}, "
                         f"not a dict")
    return ckpt


def check_same_model(state: dict, model: torch.nn.Module, where) -> None:
    """The checkpoint's weights ``state`` must fit ``model``: the same parameter and buffer names and shapes; the
    error names the first that differ."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {list(state[k].shape)} in the checkpoint, {list(own[k].shape)} in the model" for k in own
              if k in state and isinstance(state[k], torch.Tensor) and state[k].shape != own[k].shape]
    if not (missing or unexpected or shapes):
        return
    parts = []
    if missing:
        parts.append(f"the model has {len(missing)} entr{'y' if len(missing) == 1 else 'ies'} the checkpoint lacks "
                     f"(first: {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"the checkpoint has {len(unexpected)} the model lacks (first: {', '.join(unexpected[:3])})")
    if shapes:
        parts.append(f"{len(shapes)} differ in shape (first: {'; '.join(shapes[:2])})")
    raise ValueError(f"{where} holds the weights of a different model than the one passed: {'; '.join(parts)}; "
                     f"construct the model exactly as the run that wrote it did")


def load_model(path, map_location="cpu") -> torch.nn.Module:
    """Rebuild the network of a checkpoint from its ``model_config`` and load its weights (eval mode)."""
    from ..models import build_model

    ckpt = load_checkpoint(path, map_location, require=MODEL_KEYS)
    if ckpt["model_config"].get("model") == CUSTOM_MODEL:
        raise ValueError(f"checkpoint {path} holds the weights of a user's model "
                         f"({ckpt['model_config'].get('class', '?')}) that snn cannot rebuild: construct that model "
                         f"and load_state_dict(load_checkpoint(path)['model']) into it, or pass it to "
                         f"snn.train.fit(..., checkpoint=DIR, resume=True)")
    try:
        model = build_model(ckpt["model_config"])
        model.load_state_dict(ckpt["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"checkpoint {path}: its model_config and weights do not rebuild a network "
                         f"({type(e).__name__}: {e})") from None
    return model.eval()
