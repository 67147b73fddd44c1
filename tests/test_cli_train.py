"""`snn train` and `snn demo` end to end, and clear errors for bad flags."""
import json

import pytest

from snn.cli import main
from snn.train import TrainConfig, load_model

PNG = b"\x89PNG\r\n\x1a\n"


def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "1", "--json", str(tmp_path / "demo.json")]) == 0
    text = capsys.readouterr().out
    assert "test accuracy" in text
    for name in ("raster.png", "curves.png"):
        assert (out / name).read_bytes()[:8] == PNG
    summary = json.loads((tmp_path / "demo.json").read_text())
    assert summary["epochs"] == 1 and 0 <= summary["test_acc"] <= 1
    assert json.loads((out / "summary.json").read_text())["test_acc"] == summary["test_acc"]
    assert load_model(out / "checkpoint.pt") is not None


def test_train_json_and_resume(tmp_path, capsys):
    args = ["train", "--dataset", "digits", "--model", "csnn", "--channels", "4,8", "--T", "2", "--epochs", "1",
            "--batch-size", "64", "--train-limit", "128", "--test-limit", "64", "--out", str(tmp_path / "run"),
            "--json", str(tmp_path / "s.json"), "--method", "ottt"]
    assert main(args) == 0
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["method"] == "ottt_A" and s["epochs"] == 1 and s["peak_memory_mb"] > 0
    assert "seconds_per_epoch" in s and "firing_rate" in s and len(s["history"]["test_acc"]) == 1
    args[args.index("--epochs") + 1] = "2"
    assert main(args + ["--resume"]) == 0
    assert "resumed from" in capsys.readouterr().out
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["epochs"] == 2
    assert s["history"]["lr"][1] == pytest.approx(TrainConfig.lr * 0.5)  # the cosine schedule now spans 2 epochs


@pytest.mark.parametrize("flags", [["--method", "hebb"], ["--model", "resnet"], ["--dataset", "mnist"],
                                   ["--neuron", "hodgkin-huxley"]])
def test_unknown_choices_are_rejected(flags, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", *flags])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("flags, msg", [(["--method", "dsr", "--neuron", "plif"], "method 'dsr' supports"),
                                        (["--backend", "gpu"], "unknown backend")])
def test_bad_values_are_clear_errors(tmp_path, flags, msg, capsys):
    assert main(["train", "--dataset", "digits", "--out", str(tmp_path), *flags]) == 1
    assert msg in capsys.readouterr().err


def _finished_run(out, **train_config):
    """A directory holding a complete checkpoint of a run with ``train_config`` (no training needed)."""
    from snn.train import TrainConfig, save_checkpoint
    from snn.train.checkpoint import RESUME_KEYS

    cfg = TrainConfig(**{**dict(dataset="digits", model="mlp", hidden=[8], T=2, epochs=1, lr=1e-3), **train_config})
    save_checkpoint(out / "checkpoint.pt", {**{k: {} for k in RESUME_KEYS}, "train_config": cfg.to_dict(),
                                            "dataset": "digits"})
    (out / "history.json").write_text("{}\n")
    return out


@pytest.mark.parametrize("command", ["train", "demo"])
def test_a_new_run_refuses_to_replace_a_finished_one(tmp_path, capsys, command):
    from badinput import expect_cli_error

    run = _finished_run(tmp_path / "run")
    err = expect_cli_error([command, "--out", run, "--epochs", "1"], capsys, "--out", str(run), "checkpoint.pt",
                           "--overwrite", unchanged=[tmp_path])
    assert ("--resume" in err) == (command == "train")


def test_overwrite_replaces_a_finished_run(tmp_path):
    run = _finished_run(tmp_path / "run")
    args = ["train", "--dataset", "digits", "--model", "mlp", "--hidden", "8", "--T", "2", "--epochs", "1",
            "--train-limit", "64", "--test-limit", "32", "--backend", "torch", "--out", str(run), "--overwrite"]
    assert main(args) == 0
    assert len(json.loads((run / "history.json").read_text())["test_acc"]) == 1


def test_resume_and_overwrite_together_are_refused(tmp_path, capsys):
    from badinput import expect_cli_error

    expect_cli_error(["train", "--resume", "--overwrite", "--out", tmp_path], capsys, "--resume", "--overwrite")


def test_resume_with_flags_that_contradict_the_checkpoint_lists_them(tmp_path, capsys):
    from badinput import expect_cli_error

    run = _finished_run(tmp_path / "run", lr=1e-3, T=4, hidden=[8])
    err = expect_cli_error(["train", "--resume", "--out", run, "--lr", "0.01", "--T", "8", "--hidden", "8",
                            "--epochs", "3", "--model", "mlp"], capsys,
                           "--resume", "--lr 0.01 (checkpoint 0.001)", "--T 8 (checkpoint 4)", "drop them",
                           unchanged=[tmp_path])
    assert "--hidden" not in err and "--epochs" not in err and "--model" not in err  # equal, or may change


def test_resume_flags_left_at_their_defaults_do_not_count(tmp_path, capsys):
    """The checkpoint's run used --lr 0.01 --T 8; resuming without those flags is not a contradiction
    although the parser's defaults differ."""
    from snn.cli import build_parser, given_flags
    from snn.train import load_checkpoint
    from snn.train.cli import contradicting_flags

    run = _finished_run(tmp_path / "run", lr=0.01, T=8)
    argv = ["train", "--resume", "--out", str(run), "--epochs", "5"]
    args = build_parser().parse_args(argv)
    args._given = given_flags(argv)
    assert args.lr != 0.01 and args.T != 8  # the parser's defaults differ from the checkpoint's
    assert contradicting_flags(args, load_checkpoint(run / "checkpoint.pt")) == []


def test_demo_replaces_an_earlier_demo_but_no_other_run(tmp_path):
    """`make demo` twice works: the demo's own earlier output is replaced; a training run's is not."""
    from snn.train.cli import DEMO_CONFIG, _is_demo_run

    assert _is_demo_run(_finished_run(tmp_path / "demo", **{**DEMO_CONFIG, "epochs": 2}))
    assert not _is_demo_run(_finished_run(tmp_path / "train"))
    assert not _is_demo_run(tmp_path / "empty")


def test_train_any_registered_data_set_and_report_its_operations(tmp_path):
    """Event frames of the offline stand-in (a sequence data set: T is its number of frames, here asked for 5);
    the summary holds synaptic operations and energy per sample; the checkpoint rebuilds the model."""
    import torch

    run = tmp_path / "run"
    assert main(["train", "--dataset", "event-digits", "--model", "mlp", "--hidden", "16", "--T", "5", "--epochs", "1",
                 "--train-limit", "64", "--test-limit", "32", "--out", str(run), "--json", str(tmp_path / "s.json"),
                 "--no-progress"]) == 0
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["dataset"] == "event-digits" and s["T"] == 5 and s["train_samples"] == 64
    assert s["sops_per_sample"] > 0 and s["energy_j_per_sample"] > 0 and len(s["history"]["sops_per_sample"]) == 1
    assert load_model(run / "checkpoint.pt")(torch.rand(5, 3, 2, 22, 22)).shape == (5, 3, 10)
