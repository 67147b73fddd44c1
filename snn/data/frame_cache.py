"""A disk cache of converted frames: one file per sample (or per converted set), keyed by everything the frames
depend on.

The key is a JSON-able dict: the source file's identity (resolved path, size in bytes, modification time in
ns), where in the file the sample lies, the reader's version, the frame settings and the deterministic
preprocessing (e.g. a downsampling factor). Its SHA-1 names the entry ``<directory>/<sha1>.pt``, written
atomically (a temporary file renamed over it) as ``{'key': canonical JSON, 'frames': counts}``, counts stored
in the smallest unsigned integer type that holds them. An entry is used only when it loads cleanly (its zip
checksums verified, nothing but tensors and plain data), holds exactly that key and an integer tensor of the
expected frame shape; anything else (truncated, damaged, another key, another shape) is rebuilt and
overwritten, with a warning naming the file.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Callable

import torch

from ..io import UnsafeFileError, atomic_torch_save, safe_torch_load

__all__ = ["FrameCache", "file_identity", "default_cache_dir"]

_STORE_TYPES = (torch.uint8, torch.int16, torch.int32, torch.int64)


def default_cache_dir() -> Path:
    """``$SNN_CACHE/frames`` (``$SNN_CACHE`` defaults to ``~/.cache/snn``)."""
    return Path(os.environ.get("SNN_CACHE", Path.home() / ".cache" / "snn")) / "frames"


def file_identity(path) -> dict:
    """What identifies a file's content cheaply: resolved path, size (bytes) and modification time (ns)."""
    path = Path(path).resolve()
    st = path.stat()
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _compact(frames: torch.Tensor) -> torch.Tensor:
    """Integer counts in the smallest type holding them (counts are whole numbers >= 0)."""
    top = float(frames.max()) if frames.numel() else 0.0
    for dtype in _STORE_TYPES:
        if dtype == torch.int64 or top <= torch.iinfo(dtype).max:
            return frames.to(dtype)
    raise AssertionError("unreachable")


class FrameCache:
    """``get(key, build, frame_shape)``: the cached frames of ``key`` (float32), or ``build()``'s, stored."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.hits = self.builds = self.rebuilt = 0

    def path(self, key: dict) -> Path:
        return self.directory / f"{hashlib.sha1(self._canonical(key).encode()).hexdigest()}.pt"

    @staticmethod
    def _canonical(key: dict) -> str:
        return json.dumps(key, sort_keys=True, separators=(",", ":"))

    def _load(self, path: Path, key: str, problem: Callable[[dict], str | None]) -> dict | None:
        """The entry's tensors, or None (with a warning saying why) when they cannot be used."""
        try:
            entry = safe_torch_load(path, what="frame cache entry")
        except (ValueError, UnsafeFileError, EOFError) as e:
            return self._bad(path, str(e))
        if not isinstance(entry, dict) or entry.get("key") != key:
            return self._bad(path, "it holds another key (a hash collision, or a file not written by snn)")
        tensors = {k: v for k, v in entry.items() if k != "key"}
        why = problem(tensors)
        return self._bad(path, why) if why else tensors

    def _bad(self, path: Path, why: str) -> None:
        warnings.warn(f"frame cache entry {path} cannot be used ({why}); rebuilding it", RuntimeWarning,
                      stacklevel=5)
        self.rebuilt += 1
        return None

    def fetch(self, key: dict, build: Callable[[], dict], problem: Callable[[dict], str | None]) -> dict:
        """The tensors cached under ``key``, or ``build()``'s (stored). ``problem(tensors)`` says what is wrong
        with a loaded entry (None: nothing)."""
        canonical = self._canonical(key)
        path = self.path(key)
        if path.exists():
            tensors = self._load(path, canonical, problem)
            if tensors is not None:
                self.hits += 1
                return tensors
        tensors = build()
        self.builds += 1
        atomic_torch_save({"key": canonical, **tensors}, path)
        return tensors

    def get(self, key: dict, build: Callable[[], torch.Tensor], frame_shape: tuple) -> torch.Tensor:
        """The frames ``[T, *frame_shape]`` cached under ``key`` (float32), or ``build()``'s."""
        def problem(entry):
            frames = entry.get("frames")
            if (set(entry) != {"frames"} or not isinstance(frames, torch.Tensor) or frames.dtype not in _STORE_TYPES
                    or frames.dim() < 1 or tuple(frames.shape[1:]) != tuple(frame_shape)):
                return f"it does not hold integer frames [T, {', '.join(map(str, frame_shape))}]"
            return None

        return self.fetch(key, lambda: {"frames": _compact(build())}, problem)["frames"].to(torch.float32)
