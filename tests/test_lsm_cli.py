"""``snn lsm``: a tiny probe run writes its JSON and plots; bad arguments are clear errors."""
import json

import pytest
import torch

from snn.cli import main


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)  # the command sets its own thread count


def test_lsm_probe_command(tmp_path, capsys):
    out = tmp_path / "s.json"
    rc = main(["lsm", "--dataset", "event-digits", "--neurons", "60", "--samples", "40", "--device-model", "rram",
               "--features", "all", "--json", str(out), "--out", str(tmp_path / "plots")])
    assert rc == 0
    s = json.loads(out.read_text())
    assert s["n_neurons"] == 60 and s["device_model"] == "rram" and 0 <= s["lsm_accuracy"] <= 1
    assert s["features"] == "all" and s["n_features"] == 3 * 3 * 60  # counts, traces, potentials x 3 bins
    assert "raw_accuracy" in s and (tmp_path / "plots" / "raster_N60.png").is_file()
    assert (tmp_path / "plots" / "accuracy_vs_size.png").is_file()
    assert "LSM" in capsys.readouterr().out


@pytest.mark.parametrize("preset, fields", [("vision", "smooth"), ("retinotopic", "local")])
def test_lsm_probe_preset(tmp_path, preset, fields):
    out = tmp_path / "s.json"
    assert main(["lsm", "--neurons", "30", "--samples", "40", "--preset", preset, "--json", str(out)]) == 0
    cfg = json.loads(out.read_text())["lsm_config"]
    assert cfg["input_fields"] == fields and cfg["input_shape"] == [2, 22, 22]


def test_lsm_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["lsm", "--neurons", "0"])
    with pytest.raises(SystemExit):
        main(["lsm", "--dataset", "event-cifar"])
    with pytest.raises(SystemExit):
        main(["lsm", "--preset", "cortex"])
    with pytest.raises(SystemExit) as e:
        main(["lsm", "zeroshot", "--help"])
    assert e.value.code == 0 and "unseen" in capsys.readouterr().out
