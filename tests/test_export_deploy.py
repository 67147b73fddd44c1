"""A trained mlp on digits, deployed: fixed-point accuracy within 1 point of float; Lava agrees bit for bit."""
import pytest
import torch

import snn
from snn.export.loihi import emulate_fixed, emulate_float, lower, quantize

T = 8


@pytest.fixture(scope="module")
def trained():
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    from snn.data import load
    from snn.models import mlp

    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    xtr, ytr = load("digits", "train")
    xte, yte = load("digits", "test")
    net = mlp(in_shape=(1, 8, 8), hidden=(64,), num_classes=10, backend="torch")
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    for _ in range(8):
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), 64):
            idx = perm[i:i + 64]
            snn.reset(net)
            loss = torch.nn.functional.cross_entropy(net(xtr[idx].expand(T, *xtr[idx].shape)).mean(0), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    yield net.eval(), xte, yte
    torch.set_num_threads(n_threads)


def test_fixed_point_accuracy_within_one_point_of_float(trained):
    net, x, y = trained
    xs = x.expand(T, *x.shape)
    snn.reset(net)
    with torch.no_grad():
        acc_float = float((net(xs).mean(0).argmax(1) == y).float().mean())
    cuba = lower(net, (1, 8, 8), input_bits=8)
    fixed = quantize(cuba)
    acc_emu_float = float((emulate_float(cuba, xs).argmax(1) == y).float().mean())
    acc_fixed = float((emulate_fixed(fixed, xs).argmax(1) == y).float().mean())
    print(f"digits mlp: float {acc_float:.4f}, lowered float {acc_emu_float:.4f}, fixed point {acc_fixed:.4f}")
    assert acc_float > 0.85
    assert abs(acc_fixed - acc_float) <= 0.01


def test_lava_fixed_pt_readout_is_the_emulation(trained):
    pytest.importorskip("lava", reason="lava-nc not installed")
    from snn.export.lava import run_lava

    net, x, _ = trained
    fixed = quantize(lower(net, (1, 8, 8), input_bits=8))
    xs = x[:12].expand(T, 12, *x.shape[1:])
    assert torch.equal(run_lava(fixed, xs, batch_size=12), emulate_fixed(fixed, xs))
