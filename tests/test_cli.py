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
