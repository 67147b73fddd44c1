"""The model zoo: every registered model builds with several neuron families, runs [T, B, ...] → [T, B, classes]
forward and backward, rebuilds from its plain-data config, runs one step at a time as it runs whole sequences;
every registered neuron family and surrogate builds into a zoo model; bad arguments are named."""
import json

import pytest
import torch
import torch.nn as nn

from badinput import expect_clear_error
from snn import functional, models, neuron as sn
from snn.models import registry, resnet

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: one thread is fastest and steady

T, B, CLASSES = 2, 2, 3

# the smallest arguments of every registered model, and the shape of one input step
TINY = {
    "mlp": (dict(in_shape=[8, 8], hidden=[6]), (2, 8, 8)),
    "csnn": (dict(in_shape=[8, 8], channels=[2, 3]), (2, 8, 8)),
    "vgg11": (dict(width=1 / 32), (2, 8, 8)),
    "vgg11_ws": (dict(width=1 / 32), (2, 8, 8)),
    "spiking_resnet18": (dict(width=1 / 32), (2, 8, 8)),
    "spiking_resnet34": (dict(width=1 / 32), (2, 8, 8)),
    "sew_resnet18": (dict(width=1 / 32, connect="IAND"), (2, 8, 8)),
    "sew_resnet34": (dict(width=1 / 32), (2, 8, 8)),
    "preact_resnet18": (dict(width=1 / 32), (2, 8, 8)),
    "convnet_f": (dict(hidden=4, pool=2), (2, 8, 8)),
    "rsnn": (dict(hidden=[6, 5]), (7,)),
}


def tiny(name, neuron="lif", **kw):
    arch, step = TINY[name]
    net = models.get(name, num_classes=CLASSES, in_channels=step[0], neuron=neuron, T=T, **{**arch, **kw})
    return net, torch.rand(T, B, *step) * 2


def test_every_model_of_the_zoo_is_covered():
    """Every model snn.models registers has its tiny arguments here (other packages may register more)."""
    own = [n for n in models.available() if registry._MODELS[n].builder.__module__.startswith("snn.models.")]
    assert sorted(TINY) == own


@pytest.mark.parametrize("neuron", ["lif", "alif"])
@pytest.mark.parametrize("name", sorted(TINY))
def test_forward_backward(name, neuron):
    torch.manual_seed(0)
    net, x = tiny(name, neuron)
    assert all(type(m) is models.neuron_class(neuron) for m in models.spiking_layers(net).values())
    assert models.spiking_layers(net)
    y = net(x)
    assert y.shape == (T, B, CLASSES)
    y.square().sum().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"{name}: no (finite) gradient for {missing}"


@pytest.mark.parametrize("name", sorted(TINY))
def test_rebuild_from_config(name):
    torch.manual_seed(1)
    net, x = tiny(name, "plif", tau=3.0)
    cfg = json.loads(json.dumps(models.model_config(net)))  # plain data, as a checkpoint stores it
    assert cfg["model"] == name and cfg["neuron"] == "plif" and cfg["T"] == T
    again = models.build_model(cfg)
    assert [(k, v.shape) for k, v in again.state_dict().items()] == \
        [(k, v.shape) for k, v in net.state_dict().items()]
    again.load_state_dict(net.state_dict())
    net.eval(), again.eval()
    with torch.no_grad():
        assert torch.equal(net(x), again(x))
    assert models.model_config(again) == cfg
    assert models.model_config(nn.DataParallel(again)) == cfg  # a wrapped model's config is its module's


@pytest.mark.parametrize("name", ["vgg11_ws", "sew_resnet18", "preact_resnet18", "convnet_f", "rsnn"])
def test_one_step_at_a_time_equals_sequence(name):
    """OTTT and online inference run a model in step mode 's': the same outputs as the whole sequence."""
    torch.manual_seed(2)
    net, x = tiny(name, "lif")
    net.eval()
    with torch.no_grad():
        whole = net(x)
        functional.reset(net)
        functional.set_step_mode(net, "s")
        steps = torch.stack([net(x_t) for x_t in x])
    assert torch.allclose(whole, steps, atol=1e-6)


@pytest.mark.parametrize("family", models.neuron_names())
def test_every_neuron_family_builds_into_the_zoo(family):
    torch.manual_seed(3)
    net, x = tiny("sew_resnet18", family, tau=3.0, v_threshold=0.5)
    cls = models.neuron_class(family)
    found = list(models.spiking_layers(net).values())
    assert found and all(type(m) is cls for m in found)
    names = [p.name for p in cls.spec.params]
    assert all(m.v_threshold == 0.5 for m in found)
    if "tau" in names:
        assert all(m.tau == 3.0 for m in found)
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_family_parameters_and_surrogates_reach_every_neuron():
    for surrogate in ["sigmoid", "atan", "fastsigmoid", "triangle", "erf"]:
        net, x = tiny("rsnn", "alif", surrogate=surrogate, neuron_params={"rho": 0.5, "beta": 0.3})
        layers = list(models.spiking_layers(net).values())
        assert len(layers) == 2
        assert all(m.rho == 0.5 and m.beta == 0.3 for m in layers)
        assert all(type(m.surrogate).__name__.lower() == surrogate for m in layers)
        net(x).sum().backward()
    net, _ = tiny("vgg11", "cubalif", neuron_params={"du": 0.2})
    assert all(m.du == 0.2 for m in models.spiking_layers(net).values())


def test_dsr_neurons_in_a_zoo_model():
    from snn.train.dsr import DSRLIF

    net, x = tiny("sew_resnet18", method="dsr")
    assert all(isinstance(m, DSRLIF) for m in models.spiking_layers(net).values())
    assert net(x).shape == (T, B, CLASSES)


def test_sew_connect_functions():
    """g(A, S): ADD A + S, AND A·S, IAND (1 - A)·S, on the block's own A (body) and S (input spikes)."""
    torch.manual_seed(4)
    make = models.neuron_factory("lif", v_threshold=0.1)
    s = (torch.rand(T, B, 3, 4, 4) < 0.5).float()
    for connect, g in [("ADD", lambda a, s: a + s), ("AND", lambda a, s: a * s), ("IAND", lambda a, s: (1 - a) * s)]:
        block = resnet.SEWBlock(3, 3, 1, "bn", make, connect=connect)
        out = block(s)
        functional.reset(block)
        a = block.body(s)
        assert set(a.unique().tolist()) <= {0.0, 1.0} and 0 < a.mean() < 1
        assert torch.equal(out, g(a, s))


def test_widths_and_stems_change_the_architecture():
    full = models.get("spiking_resnet18", num_classes=10, in_channels=3)
    assert sum(p.numel() for p in full.parameters()) == 11_173_962  # ResNet-18 with the 3x3 CIFAR stem
    big, x = tiny("sew_resnet18", stem="imagenet")
    assert isinstance(big[0], nn.Conv2d) and big[0].kernel_size == (7, 7)
    net, _ = tiny("vgg11_ws")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert sum(isinstance(m, models.ScaledWSConv2d) for m in net.modules()) == 8


@pytest.mark.parametrize("name, kw", [("vgg11_ws", {}), ("sew_resnet18", dict(norm="ws")),
                                      ("preact_resnet18", dict(norm="ws")), ("vgg11", {}), ("convnet_f", {})])
def test_default_gains_make_every_layer_fire_on_sparse_events(name, kw):
    """Sparse event frames (5 % of the pixels hold one event): every spiking layer fires at initialisation."""
    torch.manual_seed(5)
    net = models.get(name, num_classes=10, in_channels=2, width=1 / 8, **kw)
    x = (torch.rand(4, 8, 2, 32, 32) < 0.05).float()
    rates = {}
    for n, m in models.spiking_layers(net).items():
        m.register_forward_hook(lambda m, i, out, n=n: rates.__setitem__(n, out.mean().item()))
    with torch.no_grad():
        net(x)
    silent = [n for n, r in rates.items() if r == 0]
    assert rates and not silent, f"{name}: silent layers at initialisation: {silent}"


def test_user_registered_model():
    def builder(*, num_classes, in_channels, neuron, width=4):
        return nn.Sequential(nn.Flatten(2), nn.Linear(in_channels, width), neuron(), nn.Linear(width, num_classes))

    models.register_model("user_tiny", builder)
    try:
        net = models.get("user_tiny", num_classes=2, in_channels=5, neuron="if", width=3)
        assert net(torch.rand(T, B, 5)).shape == (T, B, 2)
        assert models.build_model(models.model_config(net))[1].out_features == 3
        expect_clear_error(lambda: models.register_model("user_tiny", builder), ValueError, "user_tiny", "replace")
    finally:
        registry._MODELS.pop("user_tiny", None)


@pytest.mark.parametrize("call, exc, names", [
    (lambda: models.get("resnet50", num_classes=3, in_channels=2), ValueError, ["resnet50", "vgg11", "rsnn"]),
    (lambda: tiny("vgg11", "hodgkin"), ValueError, ["neuron", "hodgkin", "lif", "izhikevich"]),
    (lambda: tiny("vgg11", surrogate="relu"), ValueError, ["surrogate", "relu", "atan"]),
    (lambda: models.get("vgg11", num_classes=0, in_channels=2), ValueError, ["num_classes", "0"]),
    (lambda: models.get("vgg11", num_classes=2.5, in_channels=2), TypeError, ["num_classes", "integer"]),
    (lambda: models.get("vgg11", num_classes=3, in_channels=-1), ValueError, ["in_channels", "-1"]),
    (lambda: models.get("vgg11", num_classes=3, in_channels="2"), TypeError, ["in_channels", "integer"]),
    (lambda: models.get("vgg11", num_classes=3, in_channels=2, T=0), ValueError, ["T", "0"]),
    (lambda: tiny("vgg11", depth=50), ValueError, ["unknown keys", "depth", "width"]),
    (lambda: tiny("sew_resnet18", connect="XOR"), ValueError, ["connect", "XOR", "IAND"]),
    (lambda: tiny("vgg11", norm="ln"), ValueError, ["norm", "ln", "ws"]),
    (lambda: tiny("preact_resnet18", width=0), ValueError, ["width", "0"]),
    (lambda: tiny("rsnn", "alif", neuron_params={"rhoo": 1.0}), ValueError, ["neuron_params", "rhoo", "rho"]),
    (lambda: tiny("rsnn", "alif", neuron_params={"rho": 1.5}), ValueError, ["rho", "1.5"]),
    (lambda: tiny("vgg11", "alif", method="dsr"), ValueError, ["DSR", "alif"]),
    (lambda: tiny("vgg11", method="bpt"), ValueError, ["method", "bpt", "ottt"]),
    (lambda: models.model_config(nn.Linear(2, 2)), ValueError, ["Linear", "snn.models.get"]),
    (lambda: models.build_model("vgg11"), TypeError, ["config", "dict"]),
    (lambda: models.register_model("bad", lambda x: x), TypeError, ["bad", "num_classes"]),
    (lambda: models.get("csnn", num_classes=3, in_channels=2, in_shape=[1, 8, 8]), ValueError,
     ["in_shape", "in_channels"]),
])
def test_bad_arguments_are_named(call, exc, names):
    expect_clear_error(call, exc, *names)
    assert "bad" not in models.available()
