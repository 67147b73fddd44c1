"""torch.compile on models with snn neurons: no graph breaks, the same spikes and gradients as eager.

The cpp and triton kernels run under torch.compile as the custom ops ``snn::cpp_scan`` / ``snn::triton_scan``
(with fake kernels and registered autograd, :mod:`snn.ops.library`); the torch backend is traced as it is.
CPU here (torch and cpp backends); the cuda and triton cases run where a GPU is (benchmarks/gpu_check.sh).
"""
import copy
import dataclasses
import sys

import pytest
import torch
import torch._dynamo as dynamo
from triton_interp import run_triton_main

from snn import functional, layers, models, neuron, neurons, ops
from snn.surrogate import ATan

GPU = torch.cuda.is_available()


def _net(cls, backend, device="cpu"):
    """Linear -> neuron: the output is the spikes themselves."""
    torch.manual_seed(0)
    return torch.nn.Sequential(layers.Linear(4, 6, step_mode="m"),
                               cls(step_mode="m", backend=backend)).to(device)


def _stepper(net):
    def run(x):
        functional.reset(net)
        return net(x)
    return run


def _with_grads(fn, net, x, r):
    """Output and the gradients of ``Σ out·r`` w.r.t. the input and every parameter."""
    net.zero_grad()
    x = x.clone().requires_grad_()
    out = fn(x)
    (out * r).sum().backward()
    return out.detach(), [x.grad] + [p.grad.clone() for p in net.parameters()]


def _inputs(device="cpu", T=4):
    g = torch.Generator().manual_seed(1)
    return (torch.randn(T, 3, 4, generator=g) * 4).to(device), torch.randn(T, 3, 6, generator=g).to(device)


def _check_equal(eager, compiled):
    (out_e, g_e), (out_c, g_c) = eager, compiled
    assert out_e.sum() > 0 and torch.equal(out_e, out_c)  # the same spikes, bit for bit
    for a, b in zip(g_e, g_c):
        assert a.abs().sum() > 0
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def _ids(v):
    return getattr(v, "__name__", v)


@pytest.mark.parametrize("backend, cls", [("torch", neuron.LIF), ("cpp", neuron.LIF), ("cpp", neuron.ALIF)],
                         ids=_ids)
def test_no_graph_breaks(backend, cls):
    net = _net(cls, backend)
    x, _ = _inputs()
    explained = dynamo.explain(_stepper(net))(x)
    assert explained.graph_break_count == 0 and explained.graph_count == 1, explained.break_reasons
    if backend == "cpp":  # the fused kernel is one opaque op in the graph
        ops_seen = [str(op) for graph in explained.ops_per_graph for op in graph]
        assert any("cpp_scan" in op for op in ops_seen), ops_seen


@pytest.mark.parametrize("backend, cls", [("torch", neuron.PLIF), ("cpp", neuron.PLIF)], ids=_ids)
def test_compiled_equals_eager(backend, cls):
    """aot_eager: the fake kernels, the registered autograd and the traced graph against eager."""
    net = _net(cls, backend)
    x, r = _inputs()
    eager = _with_grads(_stepper(net), net, x, r)
    dynamo.reset()
    compiled = _with_grads(torch.compile(_stepper(net), backend="aot_eager", fullgraph=True), net, x, r)
    _check_equal(eager, compiled)
    assert net[1].last_backend == backend


def test_csnn_preset():
    """The csnn preset (conv, BatchNorm, LIF, pooling) on the cpp backend: one graph (fullgraph=True), the same
    outputs and gradients as eager."""
    torch.manual_seed(0)
    eager_net = models.csnn(in_shape=(1, 8, 8), channels=(2, 4), num_classes=3, backend="cpp")
    net = copy.deepcopy(eager_net)  # BatchNorm's running statistics move with every call: one copy per run
    x = torch.rand(2, 2, 1, 8, 8)
    dynamo.reset()
    r = torch.randn(2, 2, 3)
    out_e, g_e = _with_grads(_stepper(eager_net), eager_net, x, r)
    out_c, g_c = _with_grads(torch.compile(_stepper(net), backend="aot_eager", fullgraph=True), net, x, r)
    torch.testing.assert_close(out_e, out_c, rtol=1e-5, atol=1e-6)
    for a, b in zip(g_e, g_c):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert eager_net[2].last_backend == "cpp"


def test_inductor():
    """The default compiler (inductor, C++ code for the CPU) around the cpp kernel op: the same spikes and
    gradients (of the input and of PLIF's learnable decay)."""
    net = torch.nn.Sequential(neuron.PLIF(step_mode="m", backend="cpp"))  # little for inductor to generate
    x, r = _inputs()
    x = x.repeat(1, 1, 2)[..., :6]
    eager = _with_grads(_stepper(net), net, x, r)
    dynamo.reset()
    _check_equal(eager, _with_grads(torch.compile(_stepper(net), fullgraph=True), net, x, r))


def test_cpp_ops_opcheck():
    """torch.library.opcheck: schema, fake kernel (also with dynamic shapes) and autograd registration of the
    cpp custom op, for LIF with a recorded membrane and for PLIF with its learnable decay."""
    spec_lif, spec_plif = neurons.get("lif"), neurons.get("plif")
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    v0 = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    for spec, decay in ((spec_lif, torch.tensor(0.5, dtype=torch.float64)),
                        (spec_plif, torch.tensor(0.4, dtype=torch.float64, requires_grad=True))):
        params = torch.stack([decay, torch.tensor(1.0, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64)])
        args = (x, [v0], params, spec.name, 3, False, False, ATan.kind, 2.0, 0.0, True, True)
        torch.library.opcheck(torch.ops.snn.cpp_scan.default, args)


def test_nan_input_still_caught_under_compile():
    net = _net(neuron.LIF, "cpp")
    x, _ = _inputs()
    x[2, 1, 0] = float("nan")
    dynamo.reset()
    with pytest.raises(RuntimeError, match="LIF: input contains NaN or Inf"):
        torch.compile(_stepper(net), backend="aot_eager", fullgraph=True)(x)


def test_unregistered_spec_is_a_clear_error_under_compile():
    """A spec that is not the registered one of its name cannot be named to the kernel op: the error says so."""
    spec = dataclasses.replace(neurons.get("lif"), name="lif_unregistered_copy")
    x = torch.rand(3, 4)

    def run(x):
        s, _, _ = ops.run(spec, x, (0.0,), (0.5, 1.0, 0.0), (True, True), surrogate=ATan(), backend="cpp")
        return s

    assert torch.equal(run(x), ops.run("lif", x, (0.0,), (0.5, 1.0, 0.0), (True, True), surrogate=ATan(),
                                       backend="cpp")[0])  # eager runs it
    dynamo.reset()
    with pytest.raises(Exception, match="lif_unregistered_copy.*not registered"):
        torch.compile(run, backend="eager", fullgraph=True)(x)


def _triton_main() -> None:
    """The triton custom op under the Triton interpreter (CPU tensors): no graph break, the same spikes and
    gradients as eager, for PLIF (its learnable decay through the parameter tensor). Compiled kernels and
    inductor: test_gpu_compiled_equals_eager on a GPU."""
    net = _net(neuron.PLIF, "triton")
    x, r = _inputs()
    explained = dynamo.explain(_stepper(net))(x)
    assert explained.graph_break_count == 0, explained.break_reasons
    dynamo.reset()
    eager = _with_grads(_stepper(net), net, x, r)
    _check_equal(eager, _with_grads(torch.compile(_stepper(net), backend="aot_eager", fullgraph=True), net, x, r))
    assert net[1].last_backend == "triton"
    print("triton ok")


def test_triton_op_in_the_interpreter():
    run_triton_main(__file__)


GPU_CASES = [("cuda", neuron.LIF), ("cuda", neuron.PLIF), ("triton", neuron.LIF), ("triton", neuron.PLIF)]


@pytest.mark.skipif(not GPU, reason="needs a CUDA device")
@pytest.mark.parametrize("backend, cls", GPU_CASES, ids=_ids)
def test_gpu_compiled_equals_eager(backend, cls):
    """On the GPU: the cuda (snn._C built with CUDA) and triton kernels as custom ops, through inductor."""
    if backend not in ops.available_backends():
        pytest.skip(f"backend {backend} is not available here")
    net = _net(cls, backend, "cuda")
    x, r = _inputs("cuda")
    explained = dynamo.explain(_stepper(net))(x)
    assert explained.graph_break_count == 0, explained.break_reasons
    dynamo.reset()
    eager = _with_grads(_stepper(net), net, x, r)
    compiled = _with_grads(torch.compile(_stepper(net), fullgraph=True), net, x, r)
    _check_equal(eager, compiled)
    assert net[1].last_backend == backend


if __name__ == "__main__" and "--triton" in sys.argv:
    _triton_main()
