"""Model presets: shapes on 28x28 and 8x8, neuron kinds, rebuild from config, bad arguments."""
import pytest
import torch

from snn import models, neuron
from snn.train.dsr import DSRIF, DSRLIF


@pytest.mark.parametrize("kind", ["lif", "if", "plif"])
@pytest.mark.parametrize("size", [28, 8])
def test_csnn_shapes(kind, size):
    net = models.csnn(in_shape=(1, size, size), channels=(4, 8), neuron=kind)
    out = net(torch.rand(3, 2, 1, size, size))
    assert out.shape == (3, 2, 10)
    cls = {"lif": neuron.LIF, "if": neuron.IF, "plif": neuron.PLIF}[kind]
    assert sum(isinstance(m, cls) for m in net.modules()) == 2


def test_mlp_shapes_and_hidden():
    net = models.mlp(in_shape=(1, 8, 8), hidden=(16, 12), num_classes=5)
    assert net(torch.rand(2, 4, 1, 8, 8)).shape == (2, 4, 5)
    assert len(models.spiking_layers(net)) == 2


def test_build_model_round_trip():
    cfg = models.model_config("csnn", in_shape=[1, 8, 8], channels=[4, 8], neuron="if")
    a, b = models.build_model(cfg), models.build_model(cfg)
    assert a.state_dict().keys() == b.state_dict().keys()
    b.load_state_dict(a.state_dict())
    x = torch.rand(2, 3, 1, 8, 8)
    a.eval(), b.eval()
    assert torch.equal(a(x), b(x))


def test_dsr_neurons_swapped_in():
    net = models.build_model(models.model_config("mlp", in_shape=[1, 8, 8], method="dsr", neuron="lif"))
    assert any(isinstance(m, DSRLIF) for m in net.modules())
    net = models.build_model(models.model_config("csnn", in_shape=[1, 8, 8], method="dsr", neuron="if"))
    assert any(isinstance(m, DSRIF) for m in net.modules())
    assert net(torch.rand(2, 2, 1, 8, 8)).shape == (2, 2, 10)


def test_scaled_ws_conv_standardises():
    conv = models.ScaledWSConv2d(3, 5, 3, step_mode="m")
    w = conv.standardized_weight()
    fan_in = 27
    assert torch.allclose(w.mean(dim=(1, 2, 3)), torch.zeros(5), atol=1e-6)
    assert torch.allclose((w ** 2).sum(dim=(1, 2, 3)), torch.ones(5), atol=1e-3)  # var·N = 1
    assert w[0].numel() == fan_in
    net = models.csnn(in_shape=(1, 8, 8), channels=(4, 8), norm="ws")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


@pytest.mark.parametrize("kw, msg", [
    (dict(model="resnet"), "unknown model"),
    (dict(model="csnn", neuron="bogus"), "unknown neuron"),
    (dict(model="csnn", method="dsr", neuron="plif"), "DSR supports"),
    (dict(model="csnn", norm="ln"), "unknown norm"),
    (dict(model="csnn", colour="red"), "unknown keys"),
])
def test_bad_model_configs(kw, msg):
    with pytest.raises(ValueError, match=msg):
        models.build_model(kw)


def test_csnn_too_small_input():
    with pytest.raises(ValueError, match="too small"):
        models.csnn(in_shape=(1, 3, 3))
