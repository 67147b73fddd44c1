"""`snn export` and `snn deploy` on a real checkpoint of the mlp preset (digits)."""
import json

import pytest
import torch

import snn
from snn.cli import main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from snn.models import build_model, model_config
    from snn.train import save_checkpoint

    torch.manual_seed(0)
    cfg = model_config("mlp", in_shape=[1, 8, 8], hidden=[24], backend="torch")
    model = build_model(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.pt"
    save_checkpoint(path, {"model_config": cfg, "train_config": {"dataset": "digits", "T": 4, "encoding": "direct"},
                           "model": model.state_dict()})
    return path


def test_export_nir_and_lava(checkpoint, tmp_path):
    from snn.export.lava import load_lowered
    from snn.export.loihi import emulate_fixed, lower, quantize
    from snn.export.nir import from_nir
    from snn.train import load_model

    assert main(["export", "--to", "nir", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "m.nir")]) == 0
    assert main(["export", "--to", "lava", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "m.pt"),
                 "--json", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["layers"] == ["2", "readout"]
    model = load_model(checkpoint)
    x = torch.rand(4, 3, 1, 8, 8)
    snn.reset(model)
    back = from_nir(str(tmp_path / "m.nir"), backend="torch")
    with torch.no_grad():
        assert torch.allclose(model(x), back(x), atol=1e-6)
    fixed = load_lowered(tmp_path / "m.pt")
    assert torch.equal(emulate_fixed(fixed, x), emulate_fixed(quantize(lower(model, (1, 8, 8), input_bits=8)), x))


def test_deploy_reports_accuracy_and_agreement(checkpoint, tmp_path):
    pytest.importorskip("lava")
    out = tmp_path / "deploy.json"
    assert main(["deploy", "--checkpoint", str(checkpoint), "--mode", "fixed", "--samples", "8", "--batch-size", "8",
                 "--json", str(out)]) == 0
    s = json.loads(out.read_text())
    assert s["samples"] == 8 and s["output_agreement"] == 1.0 and s["accuracy_lava"] == s["accuracy_emulation"]
    assert 0 <= s["accuracy_snn"] <= 1


def test_cli_errors_are_clear(checkpoint, tmp_path, capsys):
    from badinput import expect_cli_error

    expect_cli_error(["deploy", "--checkpoint", tmp_path / "missing.pt", "--no-lava"], capsys, "--checkpoint",
                     "not found")
    expect_cli_error(["deploy", "--checkpoint", checkpoint, "--samples", "0", "--no-lava"], capsys, "--samples",
                     unchanged=[checkpoint])


@pytest.fixture
def fashion_dir(tmp_path):
    """A directory where `--dataset auto` would find (tiny) Fashion-MNIST files."""
    import numpy as np

    from snn.data import write_idx

    d = tmp_path / "fashion"
    d.mkdir()
    for split, n in (("train", 8), ("t10k", 8)):
        write_idx(d / f"{split}-images-idx3-ubyte", np.zeros((n, 28, 28), np.uint8))
        write_idx(d / f"{split}-labels-idx1-ubyte", np.arange(n, dtype=np.uint8))
    return d


def test_deploy_runs_on_the_data_set_the_checkpoint_was_trained_on(tmp_path, fashion_dir):
    """The run said `--dataset auto`, which meant digits when it trained; with Fashion-MNIST found now,
    deploy still runs digits (re-resolving 'auto' would feed 28x28 images to an 8x8 network)."""
    from snn.models import build_model, model_config
    from snn.train import save_checkpoint

    cfg = model_config("mlp", in_shape=[1, 8, 8], hidden=[8], backend="torch")
    ckpt = tmp_path / "auto.pt"
    save_checkpoint(ckpt, {"model_config": cfg, "model": build_model(cfg).state_dict(), "dataset": "digits",
                           "train_config": {"dataset": "auto", "T": 2, "encoding": "direct"}})
    assert main(["deploy", "--checkpoint", str(ckpt), "--no-lava", "--samples", "4", "--data-dir", str(fashion_dir),
                 "--json", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["dataset"] == "digits"


def test_deploy_needs_a_dataset_when_the_checkpoint_does_not_say(tmp_path, capsys):
    from badinput import expect_cli_error
    from snn.models import build_model, model_config
    from snn.train import save_checkpoint

    cfg = model_config("mlp", in_shape=[1, 8, 8], hidden=[8], backend="torch")
    ckpt = tmp_path / "unknown.pt"
    save_checkpoint(ckpt, {"model_config": cfg, "model": build_model(cfg).state_dict(),
                           "train_config": {"dataset": "auto", "T": 2}})
    expect_cli_error(["deploy", "--checkpoint", ckpt, "--no-lava"], capsys, str(ckpt), "--dataset",
                     unchanged=[tmp_path])
    assert main(["deploy", "--checkpoint", str(ckpt), "--no-lava", "--samples", "2", "--dataset", "digits"]) == 0
