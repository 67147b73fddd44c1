"""snn.monitor.OpCounter: spikes, SOPs (spikes x exact fan-out), dense MACs and the energy estimate, counted by
hand on tiny networks whose spikes are known, and checked against an independent output-side count."""
import math

import pytest
import torch
import torch.nn as nn
from badinput import expect_clear_error

from snn import layers, models, neuron
from snn.monitor import E_AC_45NM, E_MAC_45NM, OpCounter, conv_fan_out, count_ops
from snn.recurrent import Recurrent

FIRE = 1.5  # an IF neuron (threshold 1, hard reset to 0) fed 1.5 fires at once and is back at 0; fed 0 it stays


def _if():
    return neuron.IF(step_mode="m")


def _pattern(shape, p=0.4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).float()


def test_linear_net_hand_counted():
    """Linear (identity) -> IF -> Linear(4, 5): the first layer reads real values (dense MACs), the second the
    IF layer's spikes (5 SOPs per spike)."""
    first = layers.Linear(4, 4, bias=False, step_mode="m")
    with torch.no_grad():
        first.weight.copy_(torch.eye(4))
    model = nn.Sequential(first, _if(), layers.Linear(4, 5, step_mode="m"))
    spikes = _pattern((2, 3, 4))  # T=2, B=3
    k = int(spikes.sum())
    s = count_ops(model, FIRE * spikes)
    assert k > 0 and s["spikes"] == k and s["neuron_steps"] == 24
    assert s["macs"] == 2 * 3 * 4 * 4                 # every step of every sample, dense
    assert s["sops"] == 5 * k
    assert s["ann_macs"] == 3 * (4 * 4 + 4 * 5)       # once per sample
    assert s["energy_j"] == pytest.approx(E_AC_45NM * 5 * k + E_MAC_45NM * 96)
    assert s["energy_ann_j"] == pytest.approx(E_MAC_45NM * 108)
    names = [(e["name"], e["kind"]) for e in s["per_layer"]]
    assert names == [("0", "synapse"), ("1", "spiking"), ("2", "synapse")]
    lin0, sn, lin2 = s["per_layer"]
    assert lin0["input"] == "dense" and lin0["macs"] == 96 and lin0["sops"] == 0
    assert sn["spikes"] == k and sn["firing_rate"] == pytest.approx(k / 24) and sn["feeds"] == ["2"]
    assert sn["sops"] == 5 * k and sn["activity"] is None
    assert lin2["input"] == "spikes" and lin2["sources"] == ["1"] and lin2["events"] == k and lin2["macs"] == 0


def test_conv_fan_out_at_the_borders():
    """Conv 3x3, stride 2, padding 1 on 5x5: along one axis the inputs feed 1, 2, 1, 2, 1 outputs; a spike at
    (i, j) feeds C_out · c_i · c_j (output, tap) pairs."""
    conv = layers.Conv2d(2, 3, 3, stride=2, padding=1, bias=False, step_mode="m")
    c = torch.tensor([1.0, 2, 1, 2, 1], dtype=torch.float64)
    fan = conv_fan_out(conv, (2, 5, 5))
    assert torch.equal(fan, (3 * torch.outer(c, c)).expand(2, 5, 5))
    model = nn.Sequential(_if(), conv)
    x = torch.zeros(2, 1, 2, 5, 5)  # T=2 (the second step silent), B=1
    x[0, 0, 0, 0, 0] = x[0, 0, 1, 1, 1] = x[0, 0, 0, 2, 3] = FIRE
    s = count_ops(model, x)
    assert s["spikes"] == 3
    assert s["sops"] == 3 * 1 * 1 + 3 * 2 * 2 + 3 * 1 * 2
    assert s["macs"] == 0 and s["ann_macs"] == 2 * 3 * 7 * 7  # Σ fan-out of one sample, once


@pytest.mark.parametrize("make, shape", [
    (lambda: layers.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, step_mode="m"), (4, 7, 6)),
    (lambda: layers.Conv2d(2, 3, (3, 2), stride=(1, 2), dilation=2, padding=2, padding_mode="reflect",
                           step_mode="m"), (2, 6, 7)),
    (lambda: layers.Conv2d(2, 2, 3, padding="same", padding_mode="circular", step_mode="m"), (2, 5, 5)),
    (lambda: layers.Conv1d(3, 4, 5, stride=3, padding=1, step_mode="m"), (3, 11)),
], ids=["groups", "reflect-dilation", "circular-same", "conv1d"])
def test_sops_equal_an_output_side_count(make, shape):
    """SOPs (input side: Σ spikes x fan-out) equal the number of (output, tap) pairs that read a spike,
    counted on the output side by the same convolution with all weights 1 (strides, dilation, groups, padding
    modes, 1-D)."""
    conv = make()
    spikes = _pattern((3, 2, *shape), p=0.3, seed=1)
    s = count_ops(nn.Sequential(_if(), conv), FIRE * spikes)
    ones = make()
    with torch.no_grad():
        ones.weight.fill_(1.0)
        ones.bias.zero_()
        expected = ones(spikes).sum()
        dense = ones(torch.ones(1, 1, *shape)).sum()
    assert s["sops"] == int(expected) and s["macs"] == 0
    assert s["ann_macs"] == 2 * int(dense)


class Residual(nn.Module):
    """sn0 -> (a -> sn_a -> b) + shortcut -> sn_out -> head, its modules declared out of execution order."""

    def __init__(self):
        super().__init__()
        self.head = layers.Linear(5, 2, step_mode="m")
        self.shortcut = layers.Linear(4, 5, step_mode="m")
        self.sn_out, self.sn_a, self.sn0 = _if(), _if(), _if()
        self.a = layers.Linear(4, 3, step_mode="m")
        self.b = layers.Linear(3, 5, step_mode="m")
        self.sum_head = layers.Linear(4, 2, step_mode="m")
        for lin in (self.a, self.b, self.shortcut):
            nn.init.uniform_(lin.weight, 0.5, 1.5)

    def forward(self, x):
        s0 = self.sn0(x)
        sa = self.sn_a(self.a(s0))
        out = self.sn_out(self.b(sa) + self.shortcut(s0))
        self.seen = dict(s0=s0, sa=sa, out=out)
        # a sum of spike maps ({0, 2}) is real-valued input; a copy of a spike map is a new tensor (untraced)
        return self.head(out.clone()) + self.sum_head(s0 + s0).sum()


def test_residual_block_attribution():
    model = Residual()
    x = FIRE * _pattern((2, 3, 4), p=0.5, seed=2)
    s = count_ops(model, x)
    seen = {k: int(v.count_nonzero()) for k, v in model.seen.items()}
    assert all(seen.values())
    layer = {e["name"]: e for e in s["per_layer"]}
    assert layer["sn0"]["feeds"] == ["a", "shortcut"] and layer["sn0"]["sops"] == seen["s0"] * (3 + 5)
    assert layer["sn_a"]["feeds"] == ["b"] and layer["sn_a"]["sops"] == seen["sa"] * 5
    assert layer["shortcut"]["sources"] == ["sn0"] and layer["b"]["sources"] == ["sn_a"]
    assert layer["head"]["input"] == "events" and layer["head"]["sources"] == [None]
    assert layer["head"]["sops"] == seen["out"] * 2 and layer["sn_out"]["sops"] == 0
    assert layer["sum_head"]["input"] == "dense" and layer["sum_head"]["macs"] == 2 * 3 * 4 * 2
    assert s["sops"] == seen["s0"] * 8 + seen["sa"] * 5 + seen["out"] * 2
    order = [e["name"] for e in s["per_layer"]]
    assert order.index("sn0") < order.index("a") < order.index("sn_a") < order.index("shortcut") < order.index("head")


def test_recurrent_layer():
    """Recurrent: W_in reads real input (dense), W_rec the fed-back spikes S[t-1] (out_features SOPs each, the
    spikes carried from the previous call included); the next layer reads the recurrent layer's spikes."""
    torch.manual_seed(0)
    rec = Recurrent(3, 4, "if", step_mode="m")
    with torch.no_grad():
        rec.recurrent_weight.fill_(0.3)
    model = nn.Sequential(rec, layers.Linear(4, 2, step_mode="m"))
    x1, x2 = torch.rand(3, 2, 3) * 3, torch.rand(2, 2, 3) * 3  # two calls, the state carried between them
    with torch.no_grad():
        o1, o2 = rec(x1), rec(x2)
    rec.reset()
    with OpCounter(model) as counter:
        model(x1)
        model(x2)
    s = counter.summary()
    layer = {e["name"]: e for e in s["per_layer"]}
    fed = int(o1.count_nonzero()) + int(o2[:-1].count_nonzero())  # S[t-1] of every step of both calls
    assert fed > 0 and layer["0.recurrent_weight"]["sops"] == 4 * fed
    assert layer["0.recurrent_weight"]["sources"] == ["0.neuron"]
    assert layer["0.recurrent_weight"]["ann_macs"] == 2 * (2 * 4 * 4)
    assert layer["0.weight"]["input"] == "dense" and layer["0.weight"]["macs"] == (3 + 2) * 2 * 3 * 4
    assert layer["1"]["sources"] == ["0.neuron"]
    assert layer["1"]["sops"] == 2 * (int(o1.count_nonzero()) + int(o2.count_nonzero()))


def test_energy_parameters_and_ratio():
    model = nn.Sequential(layers.Linear(4, 4, step_mode="m"), _if(), layers.Linear(4, 5, step_mode="m"))
    x = torch.rand(3, 2, 4) * 4
    s = count_ops(model, x, e_mac=2e-12, e_ac=1e-12)
    assert s["e_mac_j"] == 2e-12 and s["e_ac_j"] == 1e-12
    assert s["energy_j"] == pytest.approx(1e-12 * s["sops"] + 2e-12 * s["macs"])
    assert s["energy_ann_j"] == pytest.approx(2e-12 * s["ann_macs"])
    assert s["energy_ratio"] == pytest.approx(s["energy_ann_j"] / s["energy_j"])
    assert s["samples"] == 2 and s["passes"] == 1


def test_silent_layer_uses_the_trainers_notion():
    model = nn.Sequential(layers.Linear(4, 4, step_mode="m"), neuron.IF(v_threshold=1e6, step_mode="m"),
                          layers.Linear(4, 2, step_mode="m"))
    with OpCounter(model) as counter:
        model(torch.rand(2, 3, 4))
    s = counter.summary()
    assert s["per_layer"][1]["activity"] == "silent" and "problems" not in s
    (problem,) = counter.summary(epoch=3)["problems"]
    assert problem["kind"] == "silent" and "1 (IF)" in problem["message"] and "epoch 3" in problem["message"]


def test_csnn_preset_through_pooling_and_flatten():
    """The spikes of each LIF layer reach the next synapse through MaxPool (and Flatten): traced to the layer."""
    torch.manual_seed(0)
    model = models.csnn(in_shape=(1, 8, 8), channels=(4, 8), num_classes=3)
    s = count_ops(model, torch.rand(2, 3, 1, 8, 8))
    layer = {e["name"]: e for e in s["per_layer"]}
    assert layer["0"]["input"] == "dense" and layer["0"]["macs"] == 2 * 3 * 4 * 22 * 22
    assert layer["4"]["sources"] == ["2"] and layer["9"]["sources"] == ["6"]
    assert layer["2"]["feeds"] == ["4"] and layer["6"]["feeds"] == ["9"]
    assert s["sops"] == layer["2"]["sops"] + layer["6"]["sops"] > 0
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())  # hooks removed


def test_bad_input():
    expect_clear_error(lambda: OpCounter(nn.Sequential(nn.Linear(2, 2), nn.ReLU())), ValueError, "Sequential",
                       "no spiking layer", "snn neuron")
    expect_clear_error(lambda: OpCounter("net"), TypeError, "model", "nn.Module", "str")
    model = nn.Sequential(_if(), layers.Linear(4, 2, step_mode="m"))
    expect_clear_error(lambda: OpCounter(model, e_mac=-1.0), ValueError, "e_mac", "-1")
    expect_clear_error(lambda: OpCounter(model, e_ac=math.nan), ValueError, "e_ac", "nan")
    counter = OpCounter(model)
    expect_clear_error(counter.summary, RuntimeError, "no forward pass")
    with counter:
        expect_clear_error(lambda: model(torch.ones(4)), ValueError, "Sequential", "[T, B, ...]", "shape (4,)")
        expect_clear_error(counter.__enter__, RuntimeError, "counting already")
