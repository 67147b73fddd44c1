"""A user's C++ step, compiled on first use: the fused CPU loops of ``csrc/cpu/scan.h`` for a spec whose
``CppStep`` carries ``source=`` (no change to snn's sources, no rebuild of ``snn._C``).

The source is compiled after ``#include "neuron_math.h"`` (``SNN_HD``, ``fire``, the LIF pieces, in namespace
``snn``; ``<cmath>``) and must define ``template <typename T, unsigned FLAGS> struct
<functor>`` with the members listed in :mod:`snn.neurons.spec`. The module is built with
``torch.utils.cpp_extension.load_inline`` for this machine's CPU (``-march=native``, never with FMA contraction
or fast math: spikes stay bit-identical to the torch reference) and cached on disk under
``$SNN_CACHE_DIR/kernels`` (default ``~/.cache/snn/kernels``), keyed by a hash of the source, of snn's kernel
headers, of the compiler flags and of the torch version: a second process loads it in a moment.

An incomplete spec, no C++ compiler, or a failed build is a :class:`snn.neurons.SpecError` naming the spec
(with the compiler's message), never a silent fallback to the torch backend.
"""
from __future__ import annotations

import glob
import hashlib
import os
import shutil

import torch

from ..neurons.spec import SpecError

__all__ = ["load", "cache_dir", "CFLAGS"]

# -Wfatal-errors: a mistake in the user's source stops the build there (its message comes first and fast)
CFLAGS = ("-O3", "-march=native", "-fopenmp", "-std=c++17", "-ffp-contract=off", "-fno-trapping-math",
          "-DSNN_NO_CLONES", "-Wfatal-errors")
_CSRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "csrc")
_MODULES: dict = {}


def cache_dir() -> str:
    """Where compiled user steps are kept: ``$SNN_CACHE_DIR/kernels`` (default ``~/.cache/snn/kernels``)."""
    root = os.environ.get("SNN_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "snn")
    return os.path.join(root, "kernels")


def _headers_digest() -> str:
    h = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(_CSRC, "*.h")) + glob.glob(os.path.join(_CSRC, "cpu", "*.h"))):
        with open(path, "rb") as f:
            h.update(os.path.basename(path).encode() + f.read())
    return h.hexdigest()


def _module_source(functor: str, source: str) -> str:
    return (f'#include "neuron_math.h"\n\n{source}\n\n#include "neuron_binding.h"\n\n'
            f"PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {{\n"
            f"  snn::binding::bind_common(m);\n"
            f'  snn::binding::bind<{functor}>(m, "{functor}");\n}}\n')


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CXX", "c++"))


def load(spec):
    """The compiled module of ``spec``'s C++ step (``<functor>_forward`` ...), built on first use."""
    who = f"neuron spec {spec.name!r}"
    cpp = spec.cpp
    if cpp is None or not cpp.source or not cpp.functor.replace("::", "").isidentifier():
        raise SpecError(f"{who}: a compiled step needs CppStep(functor=<a C++ name>, source=<its C++ source>)")
    if not os.path.isfile(os.path.join(_CSRC, "neuron_binding.h")):
        raise SpecError(f"{who}: snn's C++ headers (csrc/) are not next to the package ({_CSRC}); a C++ step is "
                        f"compiled from a source checkout of snn")
    text = _module_source(cpp.functor, cpp.source)
    key = hashlib.sha256("\0".join((text, _headers_digest(), " ".join(CFLAGS), torch.__version__)).encode())
    name = f"snn_step_{cpp.functor.replace('::', '_')}_{key.hexdigest()[:16]}"
    if name not in _MODULES:
        _MODULES[name] = _build(name, text, cpp.functor, who)
    return _MODULES[name]


def _build(name: str, text: str, functor: str, who: str):
    """Build (or load from the cache) the module ``name``; a failed build leaves nothing in the cache."""
    from torch.utils.cpp_extension import load_inline
    build = os.path.join(cache_dir(), name)
    cached = bool(glob.glob(os.path.join(build, f"{name}*.so")))
    if not cached and _compiler() is None:
        raise SpecError(f"{who}: no C++ compiler ({os.environ.get('CXX', 'c++')} not found on PATH) to build its "
                        f"C++ step {functor}; install one (g++) or run backend='torch'")
    os.makedirs(build, exist_ok=True)
    try:
        return load_inline(name, cpp_sources=[text], extra_include_paths=[_CSRC], extra_cflags=list(CFLAGS),
                           extra_ldflags=["-fopenmp"], build_directory=build, verbose=False)
    except (RuntimeError, OSError, ImportError) as e:
        if not cached:
            shutil.rmtree(build, ignore_errors=True)
        raise SpecError(f"{who}: building its C++ step {functor} failed:\n{e}") from e
