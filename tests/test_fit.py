"""snn.train.fit on a user's model and a user's DataLoader: learning, exact resume (interrupted in-process and
killed with SIGKILL), rebuilding, time handling, callbacks, mixed precision, the method registry, and clear
errors before any training for bad inputs."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from badinput import expect_clear_error
from snn import data, layers, neuron
from snn.models import init_synapse
from snn.train import fit, load_checkpoint, load_model
from snn.train.fit import CHECKPOINT_NAME
from snn.train.methods import Method, _REGISTRY, method_names, register_method


class Residual(nn.Module):
    """conv → LIF → (conv → LIF) + skip → pool → linear: not a Sequential (the add joins two paths)."""

    def __init__(self, in_channels=1, width=8, classes=10, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv0 = init_synapse(layers.Conv2d(in_channels, width, 3, padding=1, step_mode="m"))
        self.lif0 = neuron.LIF(step_mode="m", backend="torch")
        self.conv1 = init_synapse(layers.Conv2d(width, width, 3, padding=1, step_mode="m"), 6.0)
        self.lif1 = neuron.LIF(step_mode="m", backend="torch")
        self.pool = layers.MaxPool2d(2, 2, step_mode="m")
        self.flat = layers.Flatten(step_mode="m")
        self.fc = layers.Linear(width * 16, classes, step_mode="m")

    def forward(self, x):
        h = self.lif0(self.conv0(x))
        h = h + self.lif1(self.conv1(h))
        return self.fc(self.flat(self.pool(h)))


def digits(n=192, split="train"):
    x, y = data.load("digits", split)
    return TensorDataset(x[:n], y[:n])


def loader(n=192, batch_size=32, shuffle=True):
    return DataLoader(digits(n), batch_size=batch_size, shuffle=shuffle)


KW = dict(T=2, epochs=2, lr=5e-3, log=None, progress=False)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_residual_model_and_user_loader_learn():
    result = fit(Residual(), loader(480), DataLoader(digits(160, "test"), batch_size=64), T=2, epochs=3, lr=1e-2,
                 log=None, progress=False, schedule="cosine")
    assert result.val_acc > 0.6, result.history["val_acc"]
    assert len(result.history["val_acc"]) == 3 and result.epochs == 3
    assert set(result.firing_rate) == {"lif0", "lif1"} and result.method == "bptt"
    assert result.history["lr"][0] == pytest.approx(1e-2) and result.history["lr"][2] < 1e-2


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same_history(a, b):
    timing = {"epoch_seconds"}
    assert {k: v for k, v in a.items() if k not in timing} == {k: v for k, v in b.items() if k not in timing}


class InterruptAt:
    def __init__(self, epoch, batch):
        self.at = (epoch, batch)

    def on_batch_end(self, run):
        if (run.epoch, run.batch) == self.at:
            raise KeyboardInterrupt


class Samples(Dataset):
    """A map-style data set of the user's own (read through a DataLoader, not by indexing tensors)."""

    def __init__(self, ds):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        return self.ds[i]


class Replayed:
    """An iterable of batches that is not a DataLoader: fit re-reads it to resume."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        yield from self.batches


SOURCES = {"tensors": loader, "dataset": lambda: DataLoader(Samples(digits()), batch_size=32, shuffle=True),
           "iterable": lambda: Replayed(list(loader(shuffle=False)))}


@pytest.mark.parametrize("kw, source", [(dict(), "tensors"), (dict(encoding="poisson", method="ottt"), "tensors"),
                                        (dict(), "dataset"), (dict(), "iterable")],
                         ids=["bptt", "ottt-poisson", "user-dataset", "iterable"])
def test_interrupted_and_resumed_equals_one_run(tmp_path, kw, source):
    """Shuffled user DataLoader, random encoding: resuming mid-epoch replays the same batches and draws."""
    whole = Residual()
    fit(whole, SOURCES[source](), checkpoint=tmp_path / "whole", **KW, **kw)
    cut = Residual()
    with pytest.raises(KeyboardInterrupt):
        fit(cut, SOURCES[source](), checkpoint=tmp_path / "cut", callbacks=[InterruptAt(1, 2)], **KW, **kw)
    ckpt = load_checkpoint(tmp_path / "cut" / CHECKPOINT_NAME)
    assert (ckpt["epoch"], ckpt["batch"]) == (1, 2)
    fresh = Residual(seed=123)  # rebuilt by the user; the weights come from the checkpoint
    if source == "iterable":
        with pytest.warns(UserWarning, match="its first 2 batches are read again"):
            result = fit(fresh, SOURCES[source](), checkpoint=tmp_path / "cut", resume=True, **KW, **kw)
    else:
        result = fit(fresh, SOURCES[source](), checkpoint=tmp_path / "cut", resume=True, **KW, **kw)
    assert result.epochs == 2
    w_whole, w_fresh = _weights(whole), _weights(fresh)
    for k in w_whole:
        assert torch.equal(w_whole[k], w_fresh[k]), k
    _same_history(load_checkpoint(tmp_path / "whole" / CHECKPOINT_NAME)["history"], result.history)


KILLED = r"""
import os, signal, sys
import torch
sys.path.insert(0, sys.argv[2])
from test_fit import KW, Residual, loader
from snn.train import fit

torch.set_num_threads(1)


class Kill:
    def on_batch_end(self, run):
        if (run.epoch, run.batch) == (1, 3):
            os.kill(os.getpid(), signal.SIGKILL)


fit(Residual(), loader(), checkpoint=sys.argv[1], callbacks=[Kill()], **KW)
"""


def test_killed_with_sigkill_and_resumed_equals_one_run(tmp_path):
    whole = Residual()
    fit(whole, loader(), checkpoint=tmp_path / "whole", **KW)
    here = os.path.dirname(os.path.abspath(__file__))
    child = subprocess.run([sys.executable, "-c", KILLED, str(tmp_path / "killed"), here], capture_output=True,
                           text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert load_checkpoint(tmp_path / "killed" / CHECKPOINT_NAME)["epoch"] == 1  # epoch 2 was cut
    fresh = Residual(seed=7)
    result = fit(fresh, loader(), checkpoint=tmp_path / "killed", resume=True, **KW)
    for k, v in _weights(whole).items():
        assert torch.equal(v, fresh.state_dict()[k]), k
    _same_history(load_checkpoint(tmp_path / "whole" / CHECKPOINT_NAME)["history"], result.history)


def test_resume_into_a_different_model_names_the_parameters(tmp_path):
    fit(Residual(), loader(64), checkpoint=tmp_path, **{**KW, "epochs": 1})
    expect_clear_error(lambda: fit(Residual(width=4), loader(64), checkpoint=tmp_path, resume=True, **KW),
                       ValueError, str(tmp_path / CHECKPOINT_NAME), "different model", "conv0.weight",
                       "[8, 1, 3, 3] in the checkpoint", "[4, 1, 3, 3] in the model")


def test_models_of_the_registry_rebuild_without_arguments_user_models_say_what_to_do(tmp_path):
    from snn.models import get

    net = get("mlp", num_classes=10, in_channels=1, in_shape=[1, 8, 8], hidden=[16], backend="torch")
    fit(net, loader(64), checkpoint=tmp_path / "zoo", **{**KW, "epochs": 1})
    rebuilt = load_model(tmp_path / "zoo" / CHECKPOINT_NAME)
    for k, v in net.state_dict().items():
        assert torch.equal(v, rebuilt.state_dict()[k]), k
    fit(Residual(), loader(64), checkpoint=tmp_path / "user", **{**KW, "epochs": 1})
    expect_clear_error(lambda: load_model(tmp_path / "user" / CHECKPOINT_NAME), ValueError, "Residual",
                       "cannot rebuild", "resume=True")


class Sequences(Dataset):
    """Samples [T=3, 5] whose class is the sign of the mean of step 1; ``sequence = True``."""

    sequence, num_classes, input_shape = True, 2, (5,)

    def __init__(self, n=64):
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(n, 3, 5, generator=g)
        self.x[:, 1] += torch.randn(n, 1, generator=g).sign()
        self.y = (self.x[:, 1].mean(1) > 0.5).long()

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


class Recorder(nn.Module):
    def __init__(self, features=5, classes=2):
        super().__init__()
        self.fc = init_synapse(layers.Linear(features, 16, step_mode="m"), 4.0)
        self.lif = neuron.LIF(step_mode="m")
        self.out = layers.Linear(16, classes, step_mode="m")
        self.shapes = []

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        return self.out(self.lif(self.fc(x)))


def test_sequences_are_made_time_major_and_static_samples_encoded():
    model = Recorder()
    result = fit(model, DataLoader(Sequences(), batch_size=16, shuffle=True), **{**KW, "T": None})
    assert result.T == 3 and set(model.shapes) == {(3, 2, 5), (3, 16, 5)}  # the probe, then the batches
    model = Recorder(features=15)
    flat = [(x.reshape(len(x), -1), y) for x, y in DataLoader(Sequences(), batch_size=16)]  # static [B, 15]
    fit(model, flat, T=4, epochs=1, log=None, progress=False)
    assert set(model.shapes) == {(4, 2, 15), (4, 16, 15)}
    expect_clear_error(lambda: fit(Recorder(), DataLoader(Sequences(), batch_size=16), T=5, log=None),
                       ValueError, "3 time steps", "T=5")


class Log:
    def __init__(self):
        self.calls = []

    def on_fit_start(self, run):
        self.calls.append("start")

    def on_epoch_end(self, run):
        self.calls.append(("epoch", run.epoch))
        if run.epoch == 2:
            run.stop = True

    def on_fit_end(self, run):
        self.calls.append("end")


def test_callbacks_bf16_clipping_and_a_stop(tmp_path):
    cb = Log()
    result = fit(Residual(), loader(64), callbacks=[cb], amp="bf16", clip_grad=0.5, checkpoint=tmp_path,
                 **{**KW, "epochs": 5})
    assert cb.calls == ["start", ("epoch", 1), ("epoch", 2), "end"]
    assert result.epochs == 2 and load_checkpoint(tmp_path / CHECKPOINT_NAME)["epoch"] == 2
    assert all(torch.isfinite(torch.tensor(result.history["train_loss"])))


class Doubled(Method):
    """A registered method of a user's: BPTT on twice the loss."""

    name = "doubled"

    def loss(self, logits, y, denom):
        return 2 * super().loss(logits, y, denom)


def test_a_registered_method_is_used_by_fit_and_offered_by_the_command():
    from snn.cli import build_parser

    register_method("doubled", Doubled)
    try:
        assert "doubled" in method_names()
        assert build_parser().parse_args(["train", "--method", "doubled"]).method == "doubled"
        a, b = fit(Residual(), loader(64), method="doubled", **KW), fit(Residual(), loader(64), **KW)
        assert a.history["train_loss"][0] == pytest.approx(2 * b.history["train_loss"][0], rel=1e-3)
        expect_clear_error(lambda: register_method("doubled", Doubled), ValueError, "doubled", "replace=True")
    finally:
        _REGISTRY.pop("doubled", None)


# -- bad input: a clear error before any training, nothing written --------------------------------------------

class NoNeurons(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(x.flatten(2))


def _bad_labels(value):
    ds = digits(64)
    ds.tensors[1][5] = value
    return DataLoader(ds, batch_size=32)


class StreamOfSequences:
    """An iterable whose batches have no `sequence` attribute to read: T is checked per batch."""

    def __iter__(self):
        yield torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])


BAD = {
    "no-neurons": (lambda: fit(NoNeurons(), loader(64), **KW), ValueError, ["NoNeurons", "no snn neuron"]),
    "label-negative": (lambda: fit(Residual(), _bad_labels(-1), **KW), ValueError,
                       ["train_data labels", "10 outputs", "0..9", "found -1 at index 5"]),
    "label-too-large": (lambda: fit(Residual(classes=5), loader(64), **KW), ValueError,
                        ["train_data labels", "5 outputs", "0..4", "found 6 at index 5"]),
    "labels-float": (lambda: fit(Residual(), [(torch.rand(4, 1, 8, 8), torch.rand(4))], **KW), TypeError,
                     ["train_data labels", "integer", "float32"]),
    "classes-beyond-outputs": (lambda: fit(Recorder(classes=1), DataLoader(Sequences(), batch_size=8),
                                           **{**KW, "T": None}),
                               ValueError, ["train_data has 2 classes", "only 1 outputs", "num_classes=2"]),
    "shape": (lambda: fit(Residual(in_channels=2), loader(64), **KW), ValueError,
              ["per-step shape [1, 8, 8]", "first layer", "conv0", "Conv2d(2, 8"]),
    "unknown-method": (lambda: fit(Residual(), loader(64), method="hebb", **KW), ValueError,
                       ["unknown method 'hebb'", "bptt", "dsr", "ottt"]),
    "dsr-without-dsr-neurons": (lambda: fit(Residual(), loader(64), method="dsr", **KW), ValueError,
                                ["method 'dsr' needs DSR neurons", "lif0", "LIF"]),
    "ottt-with-batchnorm": (lambda: fit(nn.Sequential(layers.Flatten(step_mode="m"),
                                                      layers.Linear(64, 16, step_mode="m"),
                                                      layers.BatchNorm1d(16, step_mode="m"),
                                                      neuron.LIF(step_mode="m"), layers.Linear(16, 10, step_mode="m")),
                                        loader(64), method="ottt", **KW), ValueError, ["OTTT", "BatchNorm"]),
    "ottt-not-single-step": (lambda: fit(NoSingleStep(), loader(64), method="ottt", **KW), ValueError,
                             ["method 'ottt'", "one time step at a time", "[2, 1, 8, 8]"]),
    "iterator-many-epochs": (lambda: fit(Residual(), iter(list(loader(64))), **KW), ValueError,
                             ["iterator", "2 epochs"]),
    "amp-fp16-on-cpu": (lambda: fit(Residual(), loader(64), amp="fp16", **KW), ValueError, ["fp16", "CUDA", "bf16"]),
    "not-pairs": (lambda: fit(Residual(), [torch.rand(4, 1, 8, 8)], **KW), TypeError, ["train_data", "(x, y)"]),
    "resume-without-dir": (lambda: fit(Residual(), loader(64), resume=True, **KW), ValueError, ["resume", "checkpoint"]),
    "lr": (lambda: fit(Residual(), loader(64), **{**KW, "lr": -1.0}), ValueError, ["lr"]),
}


class NoSingleStep(nn.Module):
    """Flattens the time and batch axes by hand: works on [T, B, ...] only."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)
        self.lif = neuron.LIF(step_mode="m")

    def forward(self, x):
        T, B = x.shape[:2]
        return self.lif(self.fc(x.reshape(T * B, 64)).reshape(T, B, 10))


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_a_clear_error_before_training(tmp_path, case):
    fn, exc, names = BAD[case]
    expect_clear_error(fn, exc, *names, unchanged=[tmp_path])
