"""Build check of the CUDA kernels: every csrc/cuda/*.cu (the generic loops of cuda/scan.cuh over every built-in
neuron's step functor) compiles with nvcc alone (no torch
headers, no GPU needed) for sm_80 (A100) and sm_90 (H100), with the flags setup.py uses.

Skipped, with the reason, only when nvcc is absent.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = sorted(glob.glob(os.path.join(ROOT, "csrc", "cuda", "*.cu")))


def _nvcc():
    found = shutil.which("nvcc")
    if found:
        return found
    home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
    cand = os.path.join(home, "bin", "nvcc")
    return cand if os.path.exists(cand) else None


NVCC = _nvcc()


def test_cuda_sources_exist():
    names = {os.path.basename(s) for s in SOURCES}
    assert "neurons.cu" in names  # the generic loops instantiated for every built-in neuron (neurons/builtin.h)


@pytest.mark.skipif(NVCC is None, reason="nvcc not found (PATH or $CUDA_HOME/bin): the CUDA build check needs it")
@pytest.mark.parametrize("arch", [pytest.param("80", marks=pytest.mark.slow), "90"])
def test_cuda_sources_compile(arch, tmp_path):
    """sm_90 (H100) in the default run; sm_80 (A100) with the slow tests (`pytest -m slow`)."""
    procs = []
    for src in SOURCES:  # all files at once: nvcc is mostly single-threaded
        obj = tmp_path / (os.path.basename(src) + ".o")
        cmd = [NVCC, "-std=c++17", "-O3", "--fmad=false", "-I", os.path.join(ROOT, "csrc"),
               f"-gencode=arch=compute_{arch},code=sm_{arch}", "-c", src, "-o", str(obj)]
        procs.append((src, obj, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    failures = []
    for src, obj, p in procs:
        out, _ = p.communicate(timeout=600)
        if p.returncode != 0 or not obj.exists():
            failures.append(f"{os.path.relpath(src, ROOT)}:\n{out[-3000:]}")
    assert not failures, "nvcc failed:\n" + "\n".join(failures)


def test_cu_files_include_no_torch_headers():
    for src in SOURCES + glob.glob(os.path.join(ROOT, "csrc", "cuda", "*.h*")):
        text = open(src).read()
        assert "torch/" not in text and "ATen/" not in text, f"{src} includes a torch header"
