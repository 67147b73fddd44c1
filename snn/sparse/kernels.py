"""The event-driven CPU kernels (``csrc/sparse_ops.cpp``, the torch ops ``torch.ops.snn_sparse.*``) and their
torch references.

* :func:`pack_bits`: one bit per value of ``x [R, K]`` (``x != 0``, least significant bit first, rows padded to
  whole bytes), the count of non-zeros and whether ``x`` is binary (every value 0 or 1: then the bits are ``x``);
* :func:`unpack_bits`: the 0/1 tensor back from the bits;
* :func:`event_linear`: ``y = b + x Wᵀ`` summing, per row, the weight rows of the non-zero inputs only
  (``y[r] = b + Σ_{k: x[r,k] != 0} x[r,k]·W[:, k]``, in ``k`` order), with ``W`` tiled once by :func:`tile_weight`;
  int8 weights sum in int32;
* :func:`event_grad_weight`: ``∂L/∂W = gᵀ x`` from the packed bits of a binary ``x`` (``Σ_r g[r] x[r]`` over the
  rows where the input spiked);
* :func:`cuba_fixed`: Lava's fixed-point CUBA LIF over ``T`` steps (:mod:`snn.export.loihi.emulate`).

The ops come with ``snn._C`` (``torch.ops.snn_sparse``) when it was built with ``csrc/sparse_ops.cpp`` of this
interface :data:`VERSION`; otherwise (an older ``snn._C``, or none) the source is compiled on first use (torch's
C++ extension builder, the flags of ``setup.py``) with its ops named ``torch.ops.snn_sparse_<source hash>``, and
cached under ``$SNN_CACHE_DIR/kernels`` (default ``~/.cache/snn/kernels``), keyed by a hash of the source, flags
and torch version. :func:`available` says whether they can run here; :func:`library` raises a clear error when not.
The references (``*_reference``) run on any device and dtype; the tests hold the kernels to them.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading

import torch

__all__ = ["available", "library", "VERSION", "pack_bits", "unpack_bits", "tile_weight", "event_linear",
           "event_grad_weight", "cuba_fixed", "pack_bits_reference", "unpack_bits_reference", "KERNEL_DTYPES"]

KERNEL_DTYPES = (torch.float32, torch.float64)   # input dtypes the event kernels run
VERSION = 5                                      # kVersion of csrc/sparse_ops.cpp this module speaks to
_SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "csrc",
                    "sparse_ops.cpp")
_CFLAGS = ("-O3", "-fopenmp", "-std=c++17", "-ffp-contract=off", "-fno-trapping-math")
_lock = threading.Lock()
log = logging.getLogger("snn.sparse")
_state: dict = {}


def _namespace(name: str):
    """``torch.ops.<name>`` when its ops are registered in this process, else None."""
    try:
        lib = getattr(torch.ops, name)
        lib.event_linear  # noqa: B018 - raises when the library is not loaded
        return lib
    except (AttributeError, RuntimeError):
        return None


def _version(lib):
    try:
        return int(lib.version())
    except (AttributeError, RuntimeError):
        return None


def _compile():
    """Build ``csrc/sparse_ops.cpp`` on its own, its ops named ``torch.ops.snn_sparse_<source hash>``, into the
    cache (or load the cached build); returns that namespace."""
    from torch.utils.cpp_extension import load

    from ..ops.compile import cache_dir
    with open(_SRC, "rb") as f:
        src = f.read()
    key = hashlib.sha256(src + " ".join(_CFLAGS).encode() + torch.__version__.encode()).hexdigest()[:16]
    name = f"snn_sparse_{key}"
    lib = _namespace(name)
    if lib is not None:
        return lib
    build = os.path.join(cache_dir(), name)
    os.makedirs(build, exist_ok=True)
    load(name, sources=[_SRC], extra_cflags=[*_CFLAGS, f"-DSNN_SPARSE_LIB={name}"], extra_ldflags=["-fopenmp"],
         build_directory=build, is_python_module=False, verbose=False)
    return _namespace(name)


def library():
    """The event-driven ops (``torch.ops.snn_sparse`` of ``snn._C``, or a build of the current source); a
    RuntimeError saying why when they cannot be loaded or built here."""
    lib = _state.get("lib")
    if lib is not None:
        return lib
    with _lock:
        if "error" in _state:
            raise RuntimeError(_state["error"])
        try:
            from ..ops import cpp_backend  # noqa: F401 - loads snn._C, which may carry the ops
        except ImportError:
            pass
        lib = _namespace("snn_sparse")
        if lib is None or _version(lib) != VERSION:
            if lib is not None:
                log.info("snn._C carries interface version %s of csrc/sparse_ops.cpp, this snn needs %s: building "
                         "the current source on its own (make build updates snn._C)", _version(lib), VERSION)
            if not os.path.isfile(_SRC):
                _state["error"] = (f"the event-driven kernels (interface version {VERSION}) are not in snn._C and "
                                   f"their source {_SRC} is not here to build them; rebuild snn (make build)")
                raise RuntimeError(_state["error"])
            try:
                lib = _compile()
            except (RuntimeError, OSError, ImportError) as e:
                _state["error"] = f"building the event-driven kernels (csrc/sparse_ops.cpp) failed: {e}"
                raise RuntimeError(_state["error"]) from e
            if lib is None or _version(lib) != VERSION:
                _state["error"] = f"csrc/sparse_ops.cpp was built but gave no ops of interface version {VERSION}"
                raise RuntimeError(_state["error"])
        _state["lib"] = lib
        return lib


def available() -> bool:
    """Whether the event-driven CPU kernels run here (built, or buildable now)."""
    try:
        library()
        return True
    except RuntimeError:
        return False


def _on_kernel(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype in KERNEL_DTYPES and available()


# ------------------------------------------------------------------------------------------------ bits
def pack_bits_reference(x: torch.Tensor) -> tuple[torch.Tensor, int, bool]:
    """:func:`pack_bits` in torch ops (any device and dtype)."""
    R, K = x.shape
    nz = x != 0
    pad = (-K) % 8
    if pad:
        nz = torch.nn.functional.pad(nz, (0, pad))
    weights = (1 << torch.arange(8, device=x.device, dtype=torch.int32))
    bits = (nz.view(R, -1, 8).to(torch.int32) * weights).sum(-1).to(torch.uint8)
    binary = bool(((x == 0) | (x == 1)).all())
    return bits, int(nz.sum()), binary


def unpack_bits_reference(bits: torch.Tensor, K: int, dtype=torch.float32) -> torch.Tensor:
    """:func:`unpack_bits` in torch ops (any device)."""
    shifts = torch.arange(8, device=bits.device, dtype=torch.uint8)
    x = (bits.unsqueeze(-1) >> shifts) & 1
    return x.reshape(bits.shape[0], -1)[:, :K].to(dtype)


def pack_bits(x: torch.Tensor) -> tuple[torch.Tensor, int, bool]:
    """``(bits [R, ceil(K/8)] uint8, non-zeros, binary)`` of ``x [R, K]``; bit ``j`` of byte ``b`` is
    ``x[r, 8b + j] != 0``. One pass over ``x`` (compiled on CPU float32/float64, torch elsewhere)."""
    if _on_kernel(x):
        return library().pack_rows(x.contiguous())
    return pack_bits_reference(x)


def unpack_bits(bits: torch.Tensor, K: int, dtype=torch.float32) -> torch.Tensor:
    """The 0/1 tensor ``[R, K]`` of ``dtype`` whose :func:`pack_bits` are ``bits``."""
    if bits.device.type == "cpu" and available():
        return library().unpack_rows(bits.contiguous(), int(K), dtype)
    return unpack_bits_reference(bits, K, dtype)


# ------------------------------------------------------------------------------------------------ linear
def tile_weight(weight: torch.Tensor) -> torch.Tensor:
    """``W [N, K]`` (float32/float64/int8, CPU) in the kernels' tiled layout ``[ceil(N/tile), K, tile]``,
    zero padded: the weights of one tile of outputs lie together for every input."""
    return library().tile_weight(weight.detach().contiguous())


def event_linear(x: torch.Tensor, wtile: torch.Tensor, n_out: int, bias: torch.Tensor | None = None,
                 pack: bool = False) -> tuple[torch.Tensor, torch.Tensor, int, bool]:
    """``(y [R, N], bits, non-zeros, binary)``: ``y = bias + x Wᵀ`` accumulated over the non-zero inputs of each
    row only, ``W`` given tiled (:func:`tile_weight`); ``bits`` as :func:`pack_bits` gives them when ``pack``
    (else empty). float32/float64 ``x`` on the CPU; int8 weights give an int32 ``y``."""
    lib = _state.get("lib") or library()
    return lib.event_linear(x if x.is_contiguous() else x.contiguous(), wtile, n_out, bias, pack)


def event_grad_weight(bits: torch.Tensor, n_in: int, grad_out: torch.Tensor) -> torch.Tensor:
    """``∂L/∂W [N, K] = grad_outᵀ x`` for the binary ``x [R, K]`` packed in ``bits``, summed over the rows where
    each input spiked (in row order)."""
    return library().event_grad_weight(bits.contiguous(), int(n_in), grad_out.contiguous())


def cuba_fixed(acc: torch.Tensor, factor: int, exp: int, du: int, dv: int, vth: int, bias: torch.Tensor,
               readout: bool) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """Lava's fixed-point CUBA LIF over ``acc [T, M]`` (int32 synaptic sums): ``(spikes [T, M] float32,
    v [M] int64, wraps, clips)``; see ``csrc/sparse_ops.cpp``."""
    return library().cuba_fixed(acc.contiguous(), int(factor), int(exp), int(du), int(dv), int(vth),
                                bias.contiguous(), bool(readout))
