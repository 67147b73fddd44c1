"""Peak training memory.

On CUDA: ``torch.cuda.max_memory_allocated`` (everything the caching allocator handed out).
On CPU torch keeps no allocator statistics (and ``tracemalloc`` does not see tensor storage), so the
meter counts what grows with the training method: the bytes of the tensors autograd saves for the
backward pass (activations, spikes, weights), de-duplicated by storage and tracked from the moment they
are saved until their graph is freed, via ``torch.autograd.graph.saved_tensors_hooks``. BPTT's figure
grows with T; OTTT's does not, because each step's graph is freed before the next step runs.
The process's peak resident set size is reported beside it.
"""
from __future__ import annotations

import resource
import sys

import torch

__all__ = ["PeakMemory", "peak_rss_mb"]


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 2**20


class _Saved:
    __slots__ = ("tensor", "key", "meter")

    def __init__(self, tensor, key, meter):
        self.tensor, self.key, self.meter = tensor, key, meter

    def __del__(self):
        self.meter._release(self.key)


class PeakMemory:
    """Context manager (re-enterable): ``peak_bytes`` of autograd-saved tensors, or of CUDA allocations.

    >>> meter = PeakMemory()
    >>> with meter:
    ...     loss = model(x).sum(); loss.backward()
    >>> meter.peak_mb
    """

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.peak_bytes = 0
        self.live_bytes = 0
        self._refs: dict = {}
        self._hooks = None

    # -- saved-tensor accounting (CPU) ---------------------------------------------------------------
    def _pack(self, t: torch.Tensor):
        storage = t.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes())
        count = self._refs.get(key, 0)
        if count == 0:
            self.live_bytes += key[1]
            self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        self._refs[key] = count + 1
        return _Saved(t, key, self)

    @staticmethod
    def _unpack(saved: _Saved):
        return saved.tensor

    def _release(self, key) -> None:
        count = self._refs.get(key, 0) - 1
        if count <= 0:
            self._refs.pop(key, None)
            self.live_bytes -= key[1]
        else:
            self._refs[key] = count

    # -- context ------------------------------------------------------------------------------------
    def __enter__(self):
        if self.device.type == "cuda":
            if self._hooks is None and self.peak_bytes == 0:
                torch.cuda.reset_peak_memory_stats(self.device)
            self._hooks = True
            return self
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.peak_bytes = max(self.peak_bytes, torch.cuda.max_memory_allocated(self.device))
        else:
            self._hooks.__exit__(*exc)
        return False

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / 2**20

    @property
    def kind(self) -> str:
        return "cuda_max_memory_allocated" if self.device.type == "cuda" else "autograd_saved_tensors"
