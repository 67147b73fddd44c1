"""Bad input to the export API (NIR, Lava, the Loihi lowering and quantizer): each case raises a clear error
naming the culprit (layer, node, argument or file) and leaves every file on disk as it was."""
from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch.nn as nn
from badinput import expect_clear_error

from snn.export.lava import save_lowered
from snn.export.loihi import LoihiRangeError, QATNet, emulate_fixed, emulate_float, lower, quantize
from snn.neuron import IF, LIF, PLIF
from snn.recurrent import Recurrent

nir = pytest.importorskip("nir")
from snn.export.nir import from_nir, to_nir, write_nir  # noqa: E402


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), LIF(tau=2.0), nn.Linear(6, 5, bias=False),
                         Recurrent.feedback(IF(), 5, torch.eye(5) * 0.5), nn.Linear(5, 3), PLIF())


def _poison(net, index, attr, value=math.nan):
    with torch.no_grad():
        getattr(net[index], attr).view(-1)[0] = value
    return net


# ------------------------------------------------------------------------------------------------------------
# Non-finite weights and parameters, per format
# ------------------------------------------------------------------------------------------------------------
POISONED = {
    "linear weight NaN": (0, "weight", math.nan, "layer 0 (Linear)"),
    "linear bias +Inf": (4, "bias", math.inf, "layer 4 (Linear)"),
    "recurrent weight -Inf": (3, "recurrent_weight", -math.inf, "layer 3 (Recurrent)"),
    "PLIF w NaN": (5, "w", math.nan, "layer 5 (PLIF)"),
}


@pytest.mark.parametrize("case", POISONED)
def test_to_nir_refuses_non_finite_values(case):
    index, attr, value, layer = POISONED[case]
    expect_clear_error(lambda: to_nir(_poison(_net(), index, attr, value), (4,)), ValueError, layer, "non-finite")


@pytest.mark.parametrize("case", POISONED)
def test_lowering_refuses_non_finite_values(case):
    index, attr, value, layer = POISONED[case]
    expect_clear_error(lambda: lower(_poison(_net(), index, attr, value), (4,)), ValueError, layer, "non-finite")


def _cuba(nan_in: str):
    cuba = lower(_net(), (4,))
    L = cuba.layers[1]
    getattr(L, nan_in).view(-1)[0] = math.nan
    return cuba, L.name


@pytest.mark.parametrize("field", ["weight", "bias", "rec_weight"])
def test_float_lava_export_refuses_nan_and_writes_nothing(field, tmp_path):
    out = tmp_path / "net.lava.pt"
    out.write_bytes(b"an earlier export")
    cuba, name = _cuba(field)
    expect_clear_error(lambda: save_lowered(cuba, out), ValueError, f"layer {name}", field, unchanged=[tmp_path])
    expect_clear_error(lambda: emulate_float(cuba, torch.zeros(2, 1, 4)), ValueError, f"layer {name}", field)


def test_fixed_point_lava_export_refuses_nan_and_writes_nothing(tmp_path):
    out = tmp_path / "net.lava.pt"
    out.write_bytes(b"an earlier export")
    fixed = quantize(lower(_net(), (4,)))
    fixed.layers[0].weight[0, 0] = math.nan
    name = fixed.layers[0].name
    expect_clear_error(lambda: save_lowered(fixed, out), ValueError, f"layer {name}", "weight", unchanged=[tmp_path])
    expect_clear_error(lambda: emulate_fixed(fixed, torch.zeros(2, 1, 4)), ValueError, f"layer {name}", "weight")


def test_quantizer_refuses_nan():
    cuba, name = _cuba("weight")
    expect_clear_error(lambda: quantize(cuba), ValueError, f"layer {name}", "weight", "not finite")


def test_run_lava_refuses_nan_before_starting_lava():
    from snn.export.lava import run_lava

    cuba, name = _cuba("bias")
    expect_clear_error(lambda: run_lava(cuba, torch.zeros(2, 1, 4)), ValueError, f"layer {name}", "bias")


def test_quantizer_refuses_a_threshold_that_would_round_to_zero():
    """Weights 1e6 times the threshold: the 8-bit weights force a scale at which V_th is below one unit of
    Lava's threshold; quantizing would silently fire on any positive potential."""
    net = nn.Sequential(nn.Linear(3, 2, bias=False), IF(v_threshold=1.0))
    with torch.no_grad():
        net[0].weight.fill_(1e6)
    expect_clear_error(lambda: quantize(lower(net, (3,))), LoihiRangeError, "vth", "outside Loihi's range")
    assert quantize(lower(net, (3,)), clip=True).report["n_clipped"] > 0


def test_write_nir_refuses_nan_and_keeps_the_old_file(tmp_path):
    out = tmp_path / "net.nir"
    out.write_bytes(b"an earlier export")
    graph = to_nir(_net(), (4,))
    graph.nodes["0"].weight[0, 0] = np.nan
    expect_clear_error(lambda: write_nir(graph, out), ValueError, "'0'", "Affine", "weight", unchanged=[tmp_path])


def test_write_nir_refuses_a_directory(tmp_path):
    expect_clear_error(lambda: write_nir(to_nir(_net(), (4,)), tmp_path), IsADirectoryError, str(tmp_path),
                       unchanged=[tmp_path])


# ------------------------------------------------------------------------------------------------------------
# Bad dt and shapes
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", [0, -1e-4, math.nan, math.inf])
def test_from_nir_refuses_bad_dt(dt):
    graph = to_nir(_net(), (4,))
    expect_clear_error(lambda: from_nir(graph, dt=dt), ValueError, "dt")


def test_from_nir_refuses_a_dt_that_is_not_a_number():
    expect_clear_error(lambda: from_nir(to_nir(_net(), (4,)), dt="1ms"), TypeError, "dt")


def test_from_nir_refuses_a_bad_dt_in_the_graph_metadata(tmp_path):
    graph = to_nir(_net(), (4,))
    graph.metadata["dt"] = 0.0
    path = tmp_path / "g.nir"
    nir.write(str(path), graph)
    expect_clear_error(lambda: from_nir(path), ValueError, "metadata['dt']", str(path), unchanged=[tmp_path])


@pytest.mark.parametrize("dt", [0, -1.0, math.nan])
def test_to_nir_refuses_bad_dt(dt):
    expect_clear_error(lambda: to_nir(_net(), (4,), dt=dt), ValueError, "dt")


@pytest.mark.parametrize("shape", [(), (0,), (4, -1)])
def test_to_nir_refuses_bad_in_shape(shape):
    expect_clear_error(lambda: to_nir(_net(), shape), ValueError, "in_shape")


# ------------------------------------------------------------------------------------------------------------
# Bad files
# ------------------------------------------------------------------------------------------------------------
def _valid_file(tmp_path) -> Path:
    path = tmp_path / "valid.nir"
    write_nir(to_nir(_net(), (4,)), path)
    return path


def test_missing_file(tmp_path):
    path = tmp_path / "missing.nir"
    expect_clear_error(lambda: from_nir(path), FileNotFoundError, str(path), unchanged=[tmp_path])


def test_directory_instead_of_a_file(tmp_path):
    expect_clear_error(lambda: from_nir(tmp_path), ValueError, str(tmp_path), "not a regular file")


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.nir"
    path.write_bytes(np.random.default_rng(0).bytes(3000))
    expect_clear_error(lambda: from_nir(path), ValueError, str(path), "not an HDF5 file", unchanged=[tmp_path])


def test_truncated_file(tmp_path):
    path = _valid_file(tmp_path)
    path.write_bytes(path.read_bytes()[:900])
    expect_clear_error(lambda: from_nir(path), ValueError, str(path), unchanged=[tmp_path])


def test_hdf5_that_is_not_nir(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=np.zeros((3, 4)))
    expect_clear_error(lambda: from_nir(path), ValueError, str(path), "cannot be read as NIR", unchanged=[tmp_path])


# ------------------------------------------------------------------------------------------------------------
# Graphs the importer cannot express
# ------------------------------------------------------------------------------------------------------------
def _graph(middle: dict, edges=None):
    nodes = {"input": nir.Input(input_type={"input": np.array([3])}), **middle,
             "output": nir.Output(output_type={"output": np.array([3])})}
    chain = ["input", *middle, "output"]
    return nir.NIRGraph(nodes=nodes, edges=edges or list(zip(chain, chain[1:])), type_check=False)


F3 = np.ones(3, np.float32)
UNSUPPORTED = {
    "LI": nir.LI(tau=F3, r=F3, v_leak=0 * F3),
    "Threshold": nir.Threshold(threshold=F3),
    "Scale": nir.Scale(scale=F3),
}


@pytest.mark.parametrize("kind", UNSUPPORTED)
def test_unsupported_node_is_named(kind):
    graph = _graph({"odd": UNSUPPORTED[kind]})
    expect_clear_error(lambda: from_nir(graph), ValueError, "'odd'", kind, "supported")


def test_delay_of_a_fraction_of_a_step_is_named():
    graph = _graph({"odd": nir.Delay(delay=F3 * 1.5e-4)})
    expect_clear_error(lambda: from_nir(graph, dt=1e-4), ValueError, "'odd'", "whole")


def test_nan_weight_in_a_graph_is_named():
    graph = _graph({"fc": nir.Affine(np.full((3, 3), np.nan, np.float32), F3)})
    expect_clear_error(lambda: from_nir(graph), ValueError, "'fc'", "weight", "non-finite")


def test_branching_graph_is_named():
    nodes = {"a": nir.Linear(np.eye(3, dtype=np.float32)), "b": nir.Linear(np.eye(3, dtype=np.float32))}
    edges = [("input", "a"), ("input", "b"), ("a", "output"), ("b", "output")]
    expect_clear_error(lambda: from_nir(_graph(nodes, edges)), ValueError, "'input'", "branches")


def test_weight_that_does_not_fit_the_input_is_named():
    graph = _graph({"fc": nir.Linear(np.ones((3, 5), np.float32))})
    expect_clear_error(lambda: from_nir(graph), ValueError, "'fc'", "shape")


def test_per_neuron_thresholds_are_named():
    lif = nir.LIF(tau=F3 * 2e-4, r=F3, v_leak=0 * F3, v_reset=0 * F3, v_threshold=np.array([1, 2, 3], np.float32))
    expect_clear_error(lambda: from_nir(_graph({"lif": lif})), ValueError, "'lif'", "v_threshold", "per-neuron")


def test_neuron_node_of_the_wrong_size_is_named():
    lif = nir.LIF(tau=np.full(4, 2e-4), r=np.ones(4), v_leak=np.zeros(4), v_reset=np.zeros(4),
                  v_threshold=np.ones(4))
    expect_clear_error(lambda: from_nir(_graph({"lif": lif})), ValueError, "'lif'", "4 values", "3 neurons")


def test_a_single_node_is_not_a_graph():
    expect_clear_error(lambda: from_nir(nir.Linear(np.eye(3))), TypeError, "NIRGraph", "Linear")


def test_subgraph_node_whose_flattened_name_clashes_is_named():
    sub = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}),
                              "fc": nir.Linear(np.eye(3, dtype=np.float32)),
                              "output": nir.Output(output_type={"output": np.array([3])})},
                       edges=[("input", "fc"), ("fc", "output")], type_check=False)
    graph = _graph({"s": sub, "s.fc": nir.Linear(np.eye(3, dtype=np.float32))})
    expect_clear_error(lambda: from_nir(graph), ValueError, "'s'", "'s.fc'", "already")


# ------------------------------------------------------------------------------------------------------------
# Wrong arguments to the Loihi/Lava functions: refused before any work, naming the argument
# ------------------------------------------------------------------------------------------------------------
def _lowered():
    return lower(_net(), (4,))


X4 = torch.zeros(3, 2, 4)
BAD_CALLS = {
    "quantize a module": (lambda: quantize(_net()), TypeError, "quantize", "CubaNet", "Sequential"),
    "quantize clip='yes'": (lambda: quantize(_lowered(), clip="yes"), TypeError, "clip", "True or False"),
    "quantize vth_target=0": (lambda: quantize(_lowered(), vth_target=0), ValueError, "vth_target"),
    "QATNet of a module": (lambda: QATNet(_net()), TypeError, "QATNet", "CubaNet"),
    "emulate_float of a module": (lambda: emulate_float(_net(), X4), TypeError, "emulate_float", "CubaNet"),
    "emulate_fixed of a CubaNet": (lambda: emulate_fixed(_lowered(), X4), TypeError, "emulate_fixed", "FixedNet",
                                   "got CubaNet"),
    "emulate_float wrong step shape": (lambda: emulate_float(_lowered(), torch.zeros(3, 2, 5)), ValueError,
                                       "x_seq", "(3, 2, 5)", "(4,)"),
    "emulate_float no batch axis": (lambda: emulate_float(_lowered(), torch.zeros(3, 4)), ValueError, "x_seq",
                                    "[T, B"),
    "emulate_float T = 0": (lambda: emulate_float(_lowered(), torch.zeros(0, 2, 4)), ValueError, "x_seq",
                            "T, B >= 1"),
    "emulate_float NaN input": (lambda: emulate_float(_lowered(), torch.full((3, 2, 4), math.nan)), ValueError,
                                "x_seq", "NaN"),
    "emulate_fixed a list": (lambda: emulate_fixed(quantize(_lowered()), [[0.0] * 4]), TypeError, "x_seq",
                             "tensor"),
    "lower input_bits=-1": (lambda: lower(_net(), (4,), input_bits=-1), ValueError, "input_bits", "[0, 24]"),
    "lower input_bits=2.5": (lambda: lower(_net(), (4,), input_bits=2.5), TypeError, "input_bits", "integer"),
    "lower in_shape 'abc'": (lambda: lower(_net(), "abc"), TypeError, "in_shape"),
    "lower a list of layers": (lambda: lower([nn.Linear(4, 3)], (4,)), TypeError, "model", "nn.Module"),
    "lower in_shape that does not fit": (lambda: lower(_net(), (5,)), TypeError, "layer 0 (Linear)", "(5,)"),
}


@pytest.mark.parametrize("case", BAD_CALLS)
def test_bad_call_to_the_loihi_functions_is_named(case):
    fn, exc, *names = BAD_CALLS[case]
    expect_clear_error(fn, exc, *names)


def _lava_call(case, out):
    from snn.export.lava import run_lava

    return {"run_lava of a module": lambda: run_lava(_net(), X4),
            "run_lava batch_size=0": lambda: run_lava(_lowered(), X4, batch_size=0),
            "save_lowered of a module": lambda: save_lowered(_net(), out)}[case]


LAVA_CALLS = {"run_lava of a module": (TypeError, "run_lava", "CubaNet or FixedNet"),
              "run_lava batch_size=0": (ValueError, "run_lava", "batch_size"),
              "save_lowered of a module": (TypeError, "save_lowered", "CubaNet or FixedNet")}


@pytest.mark.parametrize("case", LAVA_CALLS)
def test_lava_functions_refuse_wrong_arguments_before_starting_lava(case, tmp_path):
    exc, *names = LAVA_CALLS[case]
    expect_clear_error(_lava_call(case, tmp_path / "net.lava.pt"), exc, *names, unchanged=[tmp_path])
