"""A spiking layer that is silent (under 0.1% of its neuron-steps spike) or saturated (over 99.9%) for a whole
training epoch is a warning naming the layer and the likely fix, recorded in the history; healthy layers
are not; the counting survives an interrupted and resumed epoch."""
import warnings

import pytest
import torch
import torch.nn as nn

from snn import layers
from snn.models import init_synapse
from snn.neuron import IF, LIF
from snn.train.dsr import DSRIF
from snn.train import TrainConfig, Trainer
from snn.train.trainer import SaturatedLayerWarning, SilentLayerWarning, SpikeCounter, activity_problems


def config(tmp_path=None, **kw):
    base = dict(dataset="digits", T=4, epochs=2, batch_size=64, train_limit=128, test_limit=32, threads=1,
                progress=False, out=str(tmp_path) if tmp_path else None)
    return TrainConfig(**{**base, **kw})


def net(first_threshold=1.0, second_threshold=1.0, bias=None):
    """Flatten → Linear → LIF → Linear → LIF → Linear, wrapped so the layers' paths are ``body.N``
    (the same weights on every call)."""
    torch.manual_seed(0)
    first = init_synapse(layers.Linear(64, 128, step_mode="m"))
    if bias is not None:
        with torch.no_grad():
            first.weight.zero_()
            first.bias.fill_(bias)
    second = init_synapse(layers.Linear(128, 64, step_mode="m"), 4.0)  # inputs: spikes at a rate of ~0.07
    body = nn.Sequential(layers.Flatten(step_mode="m"), first, LIF(v_threshold=first_threshold, step_mode="m"),
                         second, LIF(v_threshold=second_threshold, step_mode="m"), layers.Linear(64, 10, step_mode="m"))
    return Wrapper(body)


class Wrapper(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return self.body(x)


def fit(model, tmp_path=None, **kw):
    threads = torch.get_num_threads()
    try:
        trainer = Trainer(config(tmp_path, **kw), model=model, log=None)
        return trainer, trainer.fit()
    finally:
        torch.set_num_threads(threads)


def test_silent_layer_warns_with_its_path_and_the_fix():
    with pytest.warns(SilentLayerWarning) as record:
        trainer, summary = fit(net(second_threshold=1e6))
    messages = [str(w.message) for w in record if issubclass(w.category, SilentLayerWarning)]
    assert len(messages) == 2  # one per epoch
    for epoch, msg in enumerate(messages, 1):
        assert "body.4 (LIF)" in msg and f"is silent in epoch {epoch}: 0 spikes in" in msg
        assert "lower v_threshold" in msg and "--lr" in msg and "encoding" in msg
    assert not any("body.2" in m for m in messages)  # the healthy first layer is not named
    found = trainer.history["activity_warnings"]
    assert [(w["epoch"], w["layer"], w["kind"]) for w in found] == [(1, "body.4 (LIF)", "silent"),
                                                                   (2, "body.4 (LIF)", "silent")]
    assert summary["activity_warnings"] == messages
    assert trainer.history["train_firing_rate"]["body.4"] == [0.0, 0.0]
    assert trainer.history["train_firing_rate"]["body.2"][0] > 0


def test_saturated_layer_warns_with_the_opposite_fix():
    with pytest.warns(SaturatedLayerWarning) as record:
        trainer, _ = fit(net(bias=50.0), epochs=1)
    (w,) = [w for w in record if issubclass(w.category, SaturatedLayerWarning)]
    msg = str(w.message)
    assert "body.2 (LIF)" in msg and "is saturated in epoch 1" in msg and "(rate 1)" in msg
    assert "raise v_threshold" in msg and "lower the input scale" in msg
    assert trainer.history["train_firing_rate"]["body.2"] == [1.0]
    assert trainer.history["activity_warnings"][0]["kind"] == "saturated"


def test_pytorch_default_init_on_digits_warns():
    """PyTorch's Linear init with lr 1e-3 and batch 128 on the digits: the hidden layer fires at a rate of
    ~1e-4 and the accuracy stays at chance; the warning names it."""
    from snn.models import build_model, model_config

    torch.manual_seed(0)
    model = build_model(model_config("mlp", in_shape=[1, 8, 8]))
    for m in model:
        if isinstance(m, nn.Linear):
            m.reset_parameters()
    with pytest.warns(SilentLayerWarning, match=r"spiking layer 2 \(LIF\) is silent in epoch 1: \d+ spikes"):
        trainer, _ = fit(model, epochs=1, T=4, batch_size=128, lr=1e-3, train_limit=None, test_limit=64)
    assert 0 < trainer.history["train_firing_rate"]["2"][0] < 1e-3


def test_healthy_network_gives_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", SilentLayerWarning)
        warnings.simplefilter("error", SaturatedLayerWarning)
        trainer, summary = fit(net())
    assert trainer.history["activity_warnings"] == [] and summary["activity_warnings"] == []
    assert all(0.01 < r[-1] < 0.9 for r in trainer.history["train_firing_rate"].values())


def test_counts_continue_across_an_interrupted_epoch(tmp_path):
    whole, _ = fit(net(), tmp_path / "whole", epochs=1)

    def stop(trainer, i):
        if i == 0:
            raise KeyboardInterrupt

    threads = torch.get_num_threads()
    try:
        with pytest.raises(KeyboardInterrupt):
            Trainer(config(tmp_path / "cut", epochs=1), model=net(), log=None, on_batch=stop).fit()
        resumed = Trainer(config(tmp_path / "cut", epochs=1), model=net(), log=None, resume=True)
        resumed.fit()
    finally:
        torch.set_num_threads(threads)
    assert resumed.history["train_firing_rate"] == whole.history["train_firing_rate"]


def test_counter_counts_spikes_and_neuron_steps():
    model = nn.Sequential(IF(step_mode="m"))
    x = torch.tensor([[[0.4, 1.2, 0.0]], [[0.7, 0.0, 0.0]]])  # T=2, B=1, 3 neurons: spikes at (1,0), (0,1)
    with SpikeCounter(model) as counter:
        model(x)
    assert counter.totals == {"0": [2, 6]}
    dsr_model = nn.Sequential(DSRIF(v_threshold=2.0, alpha=0.5))  # spikes of size V_th = 2 when U >= 1
    x = torch.tensor([[[1.2, 0.0, 0.3]], [[0.0, 0.0, 0.9]]])  # spikes at (0,0) and (1,2)
    with SpikeCounter(dsr_model) as counter:
        dsr_model(x)
        dsr_model(x)
    assert counter.totals == {"0": [4, 12]}
    totals = {"0": [0, 6], "1": [6, 6], "2": [3, 6], "3": [9, 10_000], "4": [10, 10_000], "5": [9_991, 10_000]}
    problems = activity_problems(totals, dict.fromkeys(totals, model[0]), epoch=4)
    assert [(p["layer"], p["kind"], p["epoch"]) for p in problems] == [
        ("0 (IF)", "silent", 4), ("1 (IF)", "saturated", 4), ("3 (IF)", "silent", 4), ("5 (IF)", "saturated", 4)]
