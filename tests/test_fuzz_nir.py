"""Property-based fuzzing of the NIR reader (:func:`snn.export.nir.from_nir` on a path).

Random bytes, truncations, bit flips and overwritten spans of a valid NIR file give either a network that runs
(a flip may leave the file valid) or a clear error: ``ValueError`` naming the file. Never another exception, a
crash or a hang: every case runs under a watchdog (``faulthandler.dump_traceback_later(exit=True)`` ends the
run with a traceback if a case takes longer than ``WATCHDOG_S``, even inside C code).
"""
from __future__ import annotations

import faulthandler
import tempfile
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import snn
from snn.recurrent import Recurrent
from snn.neuron import CUBALIF, IF, LIF

nir = pytest.importorskip("nir")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from snn.export.nir import from_nir, read_nir, to_nir, write_nir  # noqa: E402

WATCHDOG_S = 20
FUZZ = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def _valid_file_bytes() -> bytes:
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), IF(), nn.Flatten(), nn.Linear(32, 6), LIF(tau=2.0),
                        nn.Linear(6, 4, bias=False), Recurrent.feedback(CUBALIF(du=0.5, dv=0.25), 4, torch.eye(4),
                                                               bias=torch.full((4,), 0.1)))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d, "valid.nir")
        write_nir(to_nir(net, (1, 4, 4)), path)
        return path.read_bytes()


VALID = _valid_file_bytes()


def _read_under_watchdog(data: bytes) -> None:
    """Write ``data`` to a file and import it: a network (run for two steps) or ValueError naming the file."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d, "fuzzed.nir")
        path.write_bytes(data)
        faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)
        try:
            net = from_nir(path, backend="torch")
        except ValueError as e:
            assert str(path) in str(e), f"the error does not name the file: {e}"
            return
        finally:
            faulthandler.cancel_dump_traceback_later()
        _run_briefly(net, read_nir(path))


def _run_briefly(net, graph) -> None:
    """A graph that imports runs two steps on an input of its Input node's shape."""
    first = next(n for n in graph.nodes.values() if isinstance(n, nir.Input))
    shape = [int(s) for s in next(iter(first.input_type.values()))]
    snn.reset(net)
    with torch.no_grad():
        out = net(torch.ones(2, 1, *shape))
    assert out.shape[:2] == (2, 1)


def test_the_valid_file_imports():
    _read_under_watchdog(VALID)
    with tempfile.TemporaryDirectory() as d:
        Path(d, "v.nir").write_bytes(VALID)
        assert len(from_nir(Path(d, "v.nir"), backend="torch")) == 7


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data):
    _read_under_watchdog(data)


@FUZZ
@given(st.integers(0, len(VALID) - 1))
def test_truncations(n):
    _read_under_watchdog(VALID[:n])


@FUZZ
@given(st.lists(st.integers(0, len(VALID) * 8 - 1), min_size=1, max_size=8))
def test_bit_flips(bits):
    data = bytearray(VALID)
    for b in bits:
        data[b // 8] ^= 1 << (b % 8)
    _read_under_watchdog(bytes(data))


@FUZZ
@given(st.integers(0, len(VALID) - 1), st.binary(min_size=1, max_size=64))
def test_overwritten_spans(at, junk):
    data = bytearray(VALID)
    data[at:at + len(junk)] = junk
    _read_under_watchdog(bytes(data[:len(VALID)]))
