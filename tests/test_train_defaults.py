"""Default settings train: every preset with every method reaches 90% on the digits in 3 epochs; the mlp's
hidden layer fires from the start; the `snn train` flags take their defaults from TrainConfig."""
import dataclasses

import pytest
import torch

from snn import data, encoding
from snn.functional import reset
from snn.models import build_model, model_config, spiking_layers
from snn.train import TrainConfig, Trainer
from snn.train.config import DATASET_BATCH_SIZE
from snn.train.fit import DEFAULT_T


@pytest.fixture
def one_thread():
    """One torch thread: faster than two on a shared 2-core machine; restored afterwards."""
    threads = torch.get_num_threads()
    yield 1
    torch.set_num_threads(threads)


@pytest.mark.parametrize("method", ["bptt", "dsr", "ottt"])
@pytest.mark.parametrize("model", ["mlp", "csnn"])
def test_defaults_learn_digits_in_three_epochs(model, method, one_thread):
    cfg = TrainConfig(dataset="digits", model=model, method=method, epochs=3, seed=0, threads=one_thread,
                      progress=False)
    summary = Trainer(cfg, log=None).fit()
    assert summary["test_samples"] == 359  # the whole test split
    assert summary["test_acc"] >= 0.90, summary["history"]["test_acc"]
    assert summary["activity_warnings"] == []


def test_mlp_hidden_layer_fires_at_initialisation():
    x, _ = data.load("digits", "train")
    torch.manual_seed(0)
    net = build_model(model_config("mlp", in_shape=[1, 8, 8]))
    (name, layer), = spiking_layers(net).items()
    seen = {}
    layer.register_forward_hook(lambda m, a, out: seen.update(rate=float((out != 0).float().mean())))
    with torch.no_grad():
        reset(net)
        net(encoding.direct(x[:256], DEFAULT_T))
        reset(net)
    assert 0.02 < seen["rate"] < 0.5, seen  # PyTorch's default Linear init: 0.0000


def test_batch_size_default_follows_the_data_set():
    cfg = TrainConfig()
    assert cfg.batch_size is None
    assert cfg.for_dataset("digits").batch_size == DATASET_BATCH_SIZE["digits"] == 32
    assert cfg.for_dataset("fashion-mnist").batch_size == 128
    assert TrainConfig(batch_size=7).for_dataset("digits").batch_size == 7


def test_checkpoint_holds_the_resolved_batch_size(tmp_path, one_thread):
    cfg = TrainConfig(dataset="digits", model="mlp", hidden=[8], T=2, epochs=1, train_limit=64, test_limit=32,
                      out=str(tmp_path), threads=one_thread, progress=False)
    trainer = Trainer(cfg, log=None)
    assert trainer.cfg.batch_size == 32
    assert trainer.state()["train_config"]["batch_size"] == 32


def test_cli_flags_default_to_train_config():
    from snn.cli import build_parser

    args = build_parser().parse_args(["train"])
    for f in dataclasses.fields(TrainConfig):
        if hasattr(args, f.name) and f.name != "out":  # the command's own default directory
            assert getattr(args, f.name) == getattr(TrainConfig(), f.name), f.name
    assert args.lr == TrainConfig.lr and args.batch_size is None
