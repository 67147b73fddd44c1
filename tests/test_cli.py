import os

import pytest

from snn.cli import build_parser, main


def test_every_area_registers_its_commands():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert {"train", "demo", "bench", "export", "deploy", "lsm", "continual"} <= set(sub.choices)


def test_bad_value_is_a_one_line_error_unless_debugging(tmp_path, monkeypatch, capsys):
    args = ["train", "--dataset", "digits", "--method", "dsr", "--neuron", "plif", "--epochs", "1",
            "--out", str(tmp_path)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "method 'dsr' supports" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("SNN_DEBUG", "1")
    with pytest.raises(ValueError, match="method 'dsr' supports"):
        main(args)


def test_bad_flag_value_is_refused_by_the_parser_naming_the_flag(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--dataset", "digits", "--batch-size", "0", "--out", str(tmp_path)])
    assert e.value.code == 2
    assert "argument --batch-size: must be a positive integer, got 0" in capsys.readouterr().err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


TINY_TRAIN = ["train", "--dataset", "digits", "--model", "mlp", "--hidden", "8", "--T", "2", "--epochs", "2",
              "--train-limit", "64", "--test-limit", "32", "--backend", "torch", "--no-progress"]


def test_reader_gone_before_the_first_line_does_not_stop_the_work(tmp_path):
    """stdout is a pipe whose reader has already left: every print fails with EPIPE, from the first epoch's
    log line on; training still runs to the end and --json is written."""
    import json
    import subprocess
    import sys

    out, summary = tmp_path / "run", tmp_path / "s.json"
    child = subprocess.Popen([sys.executable, "-m", "snn", *TINY_TRAIN, "--out", str(out), "--json", str(summary)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
    child.stdout.close()  # the reader leaves at once
    err = child.stderr.read().decode()
    assert child.wait(timeout=300) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert json.loads(summary.read_text())["epochs"] == 2
    assert (out / "checkpoint.pt").is_file()


def test_head_of_a_pipeline_still_gets_the_json(tmp_path):
    """``snn export ... | head -1`` with pipefail: snn exits 0, head prints one line, --json is written."""
    import json
    import subprocess
    import sys

    from snn.models import build_model, model_config
    from snn.train import save_checkpoint

    cfg = model_config("mlp", in_shape=[1, 8, 8], hidden=[8], backend="torch")
    save_checkpoint(tmp_path / "c.pt", {"model_config": cfg, "model": build_model(cfg).state_dict(),
                                        "train_config": {"dataset": "digits", "T": 2}})
    cmd = (f"set -o pipefail; {sys.executable} -m snn export --to lava --mode float --checkpoint {tmp_path}/c.pt "
           f"--out {tmp_path}/net.pt --json {tmp_path}/s.json | head -1")
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["snn export: summary"]
    assert "Traceback" not in r.stderr
    assert json.loads((tmp_path / "s.json").read_text())["to"] == "lava"


@pytest.mark.parametrize("error", ["PermissionError", "ENOSPC"])
def test_os_errors_during_the_work_are_one_line_errors(tmp_path, monkeypatch, capsys, error):
    import errno

    import snn.train.cli as train_cli

    def fails(args):
        if error == "PermissionError":
            raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "x"))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(train_cli, "train_command", fails)
    assert main(["train", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert ("Permission denied" if error == "PermissionError" else "No space left") in err


def test_genuine_bugs_keep_their_traceback(tmp_path, monkeypatch):
    import snn.train.cli as train_cli

    monkeypatch.setattr(train_cli, "train_command", lambda args: {}["no such key"])
    with pytest.raises(KeyError):
        main(["train", "--out", str(tmp_path / "run")])
