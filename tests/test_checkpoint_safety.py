"""Checkpoints and Lava exports are read without running code from them; damaged files give only clear errors.

A crafted file whose unpickling would create a marker file is refused, by every way in (the Python API,
``snn train --resume``, ``snn export``, ``snn deploy``), and the marker never appears. Random bytes,
truncations and bit flips of real files (hypothesis, with a watchdog per case) give a ValueError naming the
file, or load, but never crash, hang or raise anything else.
"""
from __future__ import annotations

import pickle
import signal
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from badinput import expect_cli_error, expect_clear_error
from snn.export.lava import load_lowered, save_lowered
from snn.io import UnsafeFileError, safe_torch_load
from snn.models import build_model, model_config
from snn.train import load_checkpoint, load_model, save_checkpoint
from snn.train.checkpoint import FORMAT, RESUME_KEYS, rng_state, set_rng_state


class _Payload:
    """Unpickling this opens (creates) ``marker``: what a malicious checkpoint would do, harmlessly."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _tiny_state() -> dict:
    cfg = model_config("mlp", in_shape=[1, 8, 8], hidden=[6], backend="torch")
    torch.manual_seed(0)
    model = build_model(cfg)
    return {"model_config": cfg, "train_config": {"dataset": "digits", "T": 2, "encoding": "direct"},
            "model": model.state_dict(), "rng": rng_state(), "dataset": "digits"}


@pytest.fixture(scope="module")
def real_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("real") / "checkpoint.pt"
    save_checkpoint(path, _tiny_state())
    return path


@pytest.fixture(scope="module")
def real_export(tmp_path_factory, real_checkpoint):
    from snn.export.loihi import lower, quantize

    path = tmp_path_factory.mktemp("export") / "net.pt"
    save_lowered(quantize(lower(load_model(real_checkpoint), (1, 8, 8), input_bits=8)), path)
    return path


def _crafted(path, marker, legacy: bool = False):
    """An snn-looking checkpoint whose ``model`` entry runs code when unpickled."""
    state = {"format": FORMAT, **_tiny_state(), "model": _Payload(marker)}
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    return path


# -- crafted files run nothing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-format"])
@pytest.mark.parametrize("reader", [load_checkpoint, load_model, load_lowered], ids=lambda f: f.__name__)
def test_crafted_file_runs_nothing(tmp_path, reader, legacy):
    marker = tmp_path / "marker"
    path = _crafted(tmp_path / "evil.pt", marker, legacy)
    err = expect_clear_error(lambda: reader(path), UnsafeFileError, str(path), "refused", "GLOBAL io.open",
                             unchanged=[tmp_path])
    assert not marker.exists()
    assert isinstance(err, ValueError)  # the CLI's one-line errors cover it


def test_crafted_plain_pickle_runs_nothing(tmp_path):
    marker, path = tmp_path / "marker", tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"format": FORMAT, "model": _Payload(marker)}, protocol=2))
    expect_clear_error(lambda: load_checkpoint(path), ValueError, str(path), unchanged=[tmp_path])
    assert not marker.exists()


@pytest.mark.parametrize("command", ["export-lava", "export-nir", "deploy", "resume"])
def test_crafted_checkpoint_through_the_command_runs_nothing(tmp_path, capsys, command):
    run = tmp_path / "run"
    run.mkdir()
    marker = tmp_path / "marker"
    ckpt = _crafted(run / "checkpoint.pt", marker)
    argv = {"export-lava": ["export", "--to", "lava", "--checkpoint", ckpt, "--out", tmp_path / "net.pt"],
            "export-nir": ["export", "--to", "nir", "--checkpoint", ckpt, "--out", tmp_path / "net.nir"],
            "deploy": ["deploy", "--checkpoint", ckpt, "--no-lava", "--samples", "2"],
            "resume": ["train", "--resume", "--out", run, "--epochs", "1", "--dataset", "digits"]}[command]
    expect_cli_error(argv, capsys, str(ckpt), "refused", unchanged=[tmp_path])
    assert not marker.exists()


# -- what snn writes loads, including files of earlier versions --------------------------------------------------

def test_checkpoint_rng_state_round_trips_exactly(tmp_path):
    torch.manual_seed(5)
    np.random.seed(5)
    np.random.normal()  # a cached Gaussian in numpy's state
    save_checkpoint(tmp_path / "c.pt", {"rng": rng_state()})
    expected = (torch.rand(3), np.random.rand(3), np.random.normal())
    torch.manual_seed(0)
    np.random.seed(0)
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    got = (torch.rand(3), np.random.rand(3), np.random.normal())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]) and got[2] == expected[2]


def test_checkpoint_of_an_earlier_version_with_a_numpy_rng_state_still_loads(tmp_path):
    """Earlier snn versions stored numpy's RNG state as an array; those files load (arrays only, no code)."""
    np.random.seed(7)
    state = _tiny_state()
    state["rng"] = dict(state["rng"], numpy=np.random.get_state())
    path = tmp_path / "old.pt"
    torch.save({"format": FORMAT, **state}, path)
    expected = np.random.rand(4)
    np.random.seed(0)
    set_rng_state(load_checkpoint(path)["rng"])
    assert np.array_equal(np.random.rand(4), expected)
    assert load_model(path) is not None


def test_numpy_arrays_are_refused_where_snn_never_writes_them(tmp_path):
    path = tmp_path / "arr.pt"
    torch.save({"x": np.zeros(3)}, path)
    expect_clear_error(lambda: safe_torch_load(path, "Lava export"), UnsafeFileError, "Lava export", str(path))


# -- incomplete files --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("drop", ["model_config", "model"])
def test_checkpoint_without_what_rebuilds_the_network(tmp_path, drop):
    state = _tiny_state()
    del state[drop]
    save_checkpoint(tmp_path / "c.pt", state)
    expect_clear_error(lambda: load_model(tmp_path / "c.pt"), ValueError, str(tmp_path / "c.pt"), repr(drop),
                       unchanged=[tmp_path])


def test_checkpoint_that_is_not_a_dict_entry(tmp_path):
    save_checkpoint(tmp_path / "c.pt", {**_tiny_state(), "model_config": "mlp"})
    expect_clear_error(lambda: load_checkpoint(tmp_path / "c.pt", require=("model_config",)), ValueError,
                       str(tmp_path / "c.pt"), "'model_config'", "not a dict")


def test_model_config_that_does_not_rebuild(tmp_path):
    state = _tiny_state()
    save_checkpoint(tmp_path / "c.pt", {**state, "model_config": {**state["model_config"], "hidden": [7]}})
    expect_clear_error(lambda: load_model(tmp_path / "c.pt"), ValueError, str(tmp_path / "c.pt"), "model_config")


@pytest.mark.parametrize("drop", ["optimizer", "rng", "train_config"])
def test_resume_from_an_incomplete_checkpoint_names_the_key(tmp_path, capsys, drop):
    run = tmp_path / "run"
    state = {k: {} for k in RESUME_KEYS} | _tiny_state()
    del state[drop]
    save_checkpoint(run / "checkpoint.pt", state)
    expect_cli_error(["train", "--resume", "--out", run, "--epochs", "1"], capsys, str(run / "checkpoint.pt"),
                     repr(drop), unchanged=[tmp_path])


def test_export_file_that_does_not_rebuild(tmp_path):
    torch.save({"format": "snn-lava-export-1", "kind": "fixed", "net": {"layers": [{"nom": 1}]}}, tmp_path / "e.pt")
    expect_clear_error(lambda: load_lowered(tmp_path / "e.pt"), ValueError, "Lava export", str(tmp_path / "e.pt"))


@pytest.mark.parametrize("reader", [load_checkpoint, load_lowered], ids=lambda f: f.__name__)
def test_missing_file_and_directory(tmp_path, reader):
    expect_clear_error(lambda: reader(tmp_path / "none.pt"), FileNotFoundError, str(tmp_path / "none.pt"), "not found")
    expect_clear_error(lambda: reader(tmp_path), ValueError, str(tmp_path), "not a regular file")


# -- fuzzing -----------------------------------------------------------------------------------------------------

class Hang(Exception):
    pass


@contextmanager
def watchdog(seconds: float):
    """Fail the case if it runs longer than ``seconds`` (SIGALRM: the test runs in the main thread)."""
    def fire(signum, frame):
        raise Hang(f"reader still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _read_damaged(tmp_path, data: bytes, reader) -> None:
    path = tmp_path / "damaged.pt"
    path.write_bytes(data)
    with watchdog(5.0):
        try:
            reader(path)
        except (ValueError, FileNotFoundError) as e:
            assert str(path) in str(e), f"{type(e).__name__} does not name the file: {e}"


def _load_and_rebuild(path):
    load_checkpoint(path)
    load_model(path)


READERS = {"checkpoint": _load_and_rebuild, "export": load_lowered}
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=st.binary(max_size=4096), reader=st.sampled_from(sorted(READERS)))
def test_fuzz_random_bytes(tmp_path, data, reader):
    _read_damaged(tmp_path, data, READERS[reader])


@FUZZ
@given(cut=st.floats(0, 1, exclude_max=True), reader=st.sampled_from(sorted(READERS)))
def test_fuzz_truncated(tmp_path, real_checkpoint, real_export, cut, reader):
    data = (real_checkpoint if reader == "checkpoint" else real_export).read_bytes()
    _read_damaged(tmp_path, data[:int(cut * len(data))], READERS[reader])


@FUZZ
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=8),
       reader=st.sampled_from(sorted(READERS)))
def test_fuzz_bit_flips(tmp_path, real_checkpoint, real_export, flips, reader):
    data = bytearray((real_checkpoint if reader == "checkpoint" else real_export).read_bytes())
    for where, bit in flips:
        data[int(where * len(data))] ^= 1 << bit
    _read_damaged(tmp_path, bytes(data), READERS[reader])


def test_a_flipped_bit_in_the_weights_is_an_error_not_a_different_network(tmp_path, real_checkpoint):
    """torch.load does not check the zip records' checksums; snn does."""
    import struct
    import zipfile

    data = bytearray(real_checkpoint.read_bytes())
    with zipfile.ZipFile(real_checkpoint) as z:
        info = next(i for i in z.infolist() if "/data/" in i.filename and i.file_size >= 16)
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    data[info.header_offset + 30 + name_len + extra_len + 5] ^= 0x10  # one bit of one weight
    damaged = tmp_path / "checkpoint.pt"
    damaged.write_bytes(bytes(data))
    expect_clear_error(lambda: load_model(damaged), ValueError, str(damaged), "CRC-32")
