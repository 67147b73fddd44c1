"""`snn train` and `snn demo` end to end, and clear errors for bad flags."""
import json

import pytest

from snn.cli import main
from snn.train import load_model

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
    assert s["history"]["lr"][1] == pytest.approx(1e-3 * 0.5)  # the cosine schedule now spans 2 epochs


@pytest.mark.parametrize("flags", [["--method", "hebb"], ["--model", "resnet"], ["--dataset", "mnist"],
                                   ["--neuron", "alif"]])
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
