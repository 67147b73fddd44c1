"""Trainer: exact resume, Ctrl-C checkpoints, atomic checkpoint files, clear errors, learning on digits."""
import os
import signal

import pytest
import torch

from snn.train import CHECKPOINT_NAME, TrainConfig, Trainer, load_checkpoint, load_model


def tiny(tmp_path, **kw):
    base = dict(dataset="digits", model="mlp", hidden=[24], T=2, epochs=2, batch_size=32, lr=3e-3, seed=3,
                train_limit=192, test_limit=64, out=str(tmp_path), progress=False)
    base.update(kw)
    return TrainConfig(**base)


def weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


class Stop(Exception):
    pass


@pytest.mark.parametrize("kw", [dict(), dict(model="csnn", channels=[4, 8]), dict(method="ottt"),
                                dict(method="dsr", neuron="if")], ids=["mlp", "csnn-bn", "ottt", "dsr"])
def test_resume_mid_epoch_equals_uninterrupted(tmp_path, kw):
    full = Trainer(tiny(tmp_path / "full", **kw), log=None)
    full.fit()

    def interrupt(trainer, i):
        if trainer.epoch == 1 and i == 2:
            raise KeyboardInterrupt

    first = Trainer(tiny(tmp_path / "cut", **kw), log=None, on_batch=interrupt)
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    ckpt = load_checkpoint(tmp_path / "cut" / CHECKPOINT_NAME)
    assert (ckpt["epoch"], ckpt["batch"]) == (1, 3)
    resumed = Trainer(tiny(tmp_path / "cut", **kw), resume=True, log=None)
    assert resumed.resumed_from == (1, 3)
    resumed.fit()
    assert_same(weights(full), weights(resumed))
    assert full.history["test_acc"] == resumed.history["test_acc"]
    assert full.optimizer.state_dict()["state"].keys() == resumed.optimizer.state_dict()["state"].keys()


def test_resume_at_epoch_boundary_and_extend(tmp_path):
    full = Trainer(tiny(tmp_path / "full", epochs=3), log=None)
    full.fit()
    part = Trainer(tiny(tmp_path / "part", epochs=3), log=None,
                   on_batch=lambda t, i: (_ for _ in ()).throw(KeyboardInterrupt) if t.epoch == 2 and i == 0 else None)
    with pytest.raises(KeyboardInterrupt):
        part.fit()
    resumed = Trainer(tiny(tmp_path / "part", epochs=3), resume=True, log=None)
    summary = resumed.fit()
    assert summary["epochs"] == 3
    assert_same(weights(full), weights(resumed))


def test_sigint_is_deferred_to_the_end_of_the_batch(tmp_path):
    trainer = Trainer(tiny(tmp_path), log=None)
    inner = trainer.method.run
    calls = []

    def run(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # arrives in the middle of the update
        return inner(*a, **k)

    trainer.method.run = run
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    ckpt = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert (ckpt["epoch"], ckpt["batch"]) == (0, 3)
    assert_same(ckpt["model"], weights(trainer))  # the update of batch 3 completed before saving
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_checkpoint_written_atomically(tmp_path, monkeypatch):
    trainer = Trainer(tiny(tmp_path, epochs=1), log=None)
    trainer.fit()
    path = tmp_path / CHECKPOINT_NAME
    before = path.read_bytes()

    def broken_save(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        trainer.save()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    model = load_model(path)
    assert model(torch.rand(2, 1, 1, 8, 8)).shape == (2, 1, 10)


@pytest.mark.parametrize("kw, msg", [
    (dict(method="hebb"), "unknown method"),
    (dict(model="resnet"), "unknown model"),
    (dict(method="dsr", neuron="plif"), "method 'dsr' supports"),
    (dict(dataset="mnist"), "unknown dataset"),
    (dict(batch_size=0), "batch_size must be a positive integer"),
    (dict(T=0), "T must be a positive integer"),
    (dict(lr=-1.0), "lr must be"),
    (dict(optimizer="lbfgs"), "unknown optimizer"),
    (dict(method="ottt", model="csnn", norm="bn"), "BatchNorm"),
    (dict(backend="gpu"), "unknown backend"),
])
def test_bad_settings_are_clear_errors(tmp_path, kw, msg):
    with pytest.raises(ValueError, match=msg):
        Trainer(tiny(tmp_path, **kw), log=None)


def test_resume_needs_out_dir(tmp_path):
    with pytest.raises(ValueError, match="--out"):
        Trainer(tiny(tmp_path, out=None), resume=True, log=None)


@pytest.mark.parametrize("kw", [dict(model="csnn", channels=[8, 16], optimizer="sgd", lr=0.1), dict(method="dsr"),
                                dict(method="ottt"), dict(method="ottt", ottt_mode="O", lr=3e-3), dict(neuron="plif")],
                         ids=["csnn-bptt-sgd", "mlp-dsr", "mlp-ottt-A", "mlp-ottt-O", "mlp-plif"])
def test_learns_digits_above_chance(tmp_path, kw):
    cfg = tiny(tmp_path, **{**dict(hidden=[64], T=4, epochs=3, train_limit=480, test_limit=160, lr=1e-2), **kw})
    summary = Trainer(cfg, log=None).fit()
    assert summary["test_acc"] > 0.6, summary["test_acc"]
    assert summary["epochs"] == 3 and summary["seconds_per_epoch"] > 0
    assert summary["peak_memory_mb"] > 0
    assert len(summary["firing_rate"]) >= 1 and all(0 <= r <= 1 for r in summary["firing_rate"].values())
    assert len(summary["history"]["test_acc"]) == 3


def test_classes_beyond_a_custom_models_outputs_are_a_clear_error_before_training(tmp_path):
    """(Labels out of range in a user's data: tests/test_fit.py.)"""
    from badinput import expect_clear_error
    from snn.models import build_model, model_config

    model = build_model(model_config("mlp", in_shape=[1, 8, 8], hidden=[8], num_classes=5))
    batches = []
    expect_clear_error(lambda: Trainer(tiny(tmp_path / "run"), model=model, log=None,
                                       on_batch=lambda t, i: batches.append(i)).fit(),
                       ValueError, "train_data has 10 classes", "only 5 outputs", "num_classes=10",
                       unchanged=[tmp_path])
    assert batches == [] and not (tmp_path / "run").exists()
