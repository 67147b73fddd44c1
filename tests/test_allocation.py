"""Allocation behaviour of the cpp backend: no process-wide allocator setting unless asked for, and the
loops' large outputs advised to be backed by transparent huge pages (one page fault per 2 MiB)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from snn.neuron import LIF
from snn.ops import cpp_backend

pytestmark = pytest.mark.skipif(not cpp_backend.is_available(), reason="snn._C is not built")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PROBE = ("import torch, snn.neuron as n, snn.ops.cpp_backend as cb; "
          "n.LIF(step_mode='m', backend='cpp')(torch.ones(2, 4)); print(cb.malloc_tuned())")


def _malloc_tuned_in_child(env_value):
    env = {k: v for k, v in os.environ.items() if k != "SNN_MALLOC_TUNE"}
    if env_value is not None:
        env["SNN_MALLOC_TUNE"] = env_value
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_malloc_is_left_alone_unless_asked():
    assert _malloc_tuned_in_child(None) == "False"
    assert _malloc_tuned_in_child("1") == "True"


@pytest.mark.parametrize("name", ["SNN_MALLOC_TUNE", "SNN_HUGE_PAGES"])
def test_a_switch_with_an_unknown_value_warns_naming_it_and_keeps_the_default(name, monkeypatch):
    monkeypatch.setenv(name, "yes")
    default = name == "SNN_HUGE_PAGES"
    with pytest.warns(RuntimeWarning, match=f"{name}='yes'.*accepted: 1 = on, 0 = off"):
        assert cpp_backend.env_switch(name, default) is default
    for value, expected in (("1", True), ("0", False), ("", default)):
        monkeypatch.setenv(name, value)
        assert cpp_backend.env_switch(name, default) is expected


def _vm_flags(address: int) -> list[str]:
    """The VmFlags of the mapping of this process that holds ``address`` (from /proc/self/smaps)."""
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(v, 16) for v in head.split("-"))
                inside = lo <= address < hi
            elif inside and head == "VmFlags:":
                return line.split()[1:]
    raise AssertionError(f"no mapping holds {address:#x}")


@pytest.mark.skipif(not os.path.exists("/sys/kernel/mm/transparent_hugepage/enabled") or
                    os.environ.get("SNN_HUGE_PAGES") == "0", reason="no transparent huge pages here")
def test_large_outputs_are_huge_page_advised_small_ones_not():
    lif = LIF(step_mode="m", backend="cpp")
    x = torch.rand(4, 1 << 20, requires_grad=True)  # 16 MiB outputs
    s = lif(x)
    s.backward(torch.ones_like(s))
    for out in (s, x.grad):
        assert "hg" in _vm_flags(out.data_ptr() + (4 << 20)), "a 16 MiB output is not advised to be huge pages"
    lif.reset()
    small = lif(torch.rand(4, 1024))  # 16 KiB: left to malloc's ordinary pages
    assert "hg" not in _vm_flags(small.data_ptr())
