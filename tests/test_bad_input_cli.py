"""Bad input to every ``snn`` sub-command: a one-line error naming the flag or file, before any work, with
nothing on disk changed (``expect_cli_error``). Every case fails in well under a second."""
from __future__ import annotations

import errno
import os

import pytest

from badinput import expect_cli_error

TINY = ["--dataset", "digits", "--model", "mlp", "--hidden", "8", "--T", "2", "--epochs", "1", "--train-limit", "32",
        "--test-limit", "16", "--backend", "torch"]


@pytest.fixture
def place(tmp_path):
    """A working directory with a file, a directory, a checkpoint of a digits mlp and a finished run."""
    from snn.models import build_model, model_config
    from snn.train import TrainConfig, save_checkpoint
    from snn.train.checkpoint import RESUME_KEYS

    (tmp_path / "a_file").write_text("not a directory\n")
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "random.pt").write_bytes(os.urandom(512))
    cfg = model_config("mlp", in_shape=[1, 8, 8], hidden=[8], backend="torch")
    state = {"model_config": cfg, "model": build_model(cfg).state_dict(), "dataset": "digits",
             "train_config": TrainConfig(dataset="digits", model="mlp", hidden=[8], T=2, lr=1e-3).to_dict()}
    save_checkpoint(tmp_path / "ckpt.pt", state)
    save_checkpoint(tmp_path / "no_config.pt", {k: v for k, v in state.items() if k != "model_config"})
    save_checkpoint(tmp_path / "run" / "checkpoint.pt", {**{k: {} for k in RESUME_KEYS}, **state})
    (tmp_path / "run" / "history.json").write_text("{}\n")
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "accuracy_vs_size.png").write_bytes(b"\x89PNG")
    (tmp_path / "matrices").mkdir()
    (tmp_path / "matrices" / "matrix.json").write_text("{}\n")
    return tmp_path


# (argv with {p} for the place, names the error must contain)
CASES = {
    # snn train
    "train-hidden-zero": (["train", "--hidden", "0"], ["--hidden"]),
    "train-hidden-negative": (["train", "--hidden", "16,-4"], ["--hidden"]),
    "train-channels-negative": (["train", "--channels", "-8"], ["--channels"]),
    "train-batch-size-negative": (["train", "--batch-size", "-1"], ["--batch-size"]),
    "train-epochs-zero": (["train", "--epochs", "0"], ["--epochs"]),
    "train-T-zero": (["train", "--T", "0"], ["--T"]),
    "train-lr-zero": (["train", "--lr", "0"], ["--lr"]),
    "train-lr-nan": (["train", "--lr", "nan"], ["--lr"]),
    "train-lr-text": (["train", "--lr", "fast"], ["--lr"]),
    "train-weight-decay-negative": (["train", "--weight-decay", "-0.1"], ["--weight-decay"]),
    "train-tau-below-one": (["train", "--tau", "0.5"], ["--tau"]),
    "train-seed-negative": (["train", "--seed", "-1"], ["--seed"]),
    "train-limit-zero": (["train", "--train-limit", "0"], ["--train-limit"]),
    "train-threads-zero": (["train", "--threads", "0"], ["--threads"]),
    "train-data-dir-missing": (["train", "--data-dir", "{p}/nowhere"], ["--data-dir", "nowhere"]),
    "train-backend-unknown": (["train", *TINY, "--backend", "gpu", "--out", "{p}/new"], ["backend"]),
    "train-out-is-a-file": (["train", *TINY, "--out", "{p}/a_file"], ["--out", "a_file", "not a directory"]),
    "train-out-below-a-file": (["train", *TINY, "--out", "{p}/a_file/run"], ["--out", "a_file"]),
    "train-json-is-a-directory": (["train", *TINY, "--out", "{p}/new", "--json", "{p}/a_dir"], ["--json", "a_dir"]),
    "train-json-is-a-device": (["train", *TINY, "--out", "{p}/new", "--json", "/dev/null"],
                               ["--json", "/dev/null", "not a regular file"]),
    "train-over-a-finished-run": (["train", *TINY, "--out", "{p}/run"], ["--out", "--resume", "--overwrite"]),
    "train-resume-contradicts": (["train", "--resume", "--out", "{p}/run", "--lr", "0.5", "--model", "csnn"],
                                 ["--lr 0.5 (checkpoint 0.001)", "--model csnn (checkpoint mlp)"]),
    "train-resume-and-overwrite": (["train", "--resume", "--overwrite", "--out", "{p}/run"], ["--overwrite"]),
    # snn demo
    "demo-epochs-zero": (["demo", "--epochs", "0"], ["--epochs"]),
    "demo-threads-negative": (["demo", "--threads", "-2"], ["--threads"]),
    "demo-out-is-a-file": (["demo", "--out", "{p}/a_file"], ["--out", "a_file"]),
    "demo-over-a-training-run": (["demo", "--out", "{p}/run", "--epochs", "1"], ["--out", "--overwrite"]),
    # snn bench kernels
    "bench-T-zero": (["bench", "kernels", "--T", "0"], ["--T"]),
    "bench-N-negative": (["bench", "kernels", "--N", "-5"], ["--N"]),
    "bench-repeat-zero": (["bench", "kernels", "--repeat", "0"], ["--repeat"]),
    "bench-threads-zero": (["bench", "kernels", "--threads", "0"], ["--threads"]),
    "bench-png-is-a-directory": (["bench", "kernels", "--png", "{p}/a_dir"], ["--png", "a_dir"]),
    # snn export
    "export-checkpoint-missing": (["export", "--to", "nir", "--checkpoint", "{p}/none.pt", "--out", "{p}/m.nir"],
                                  ["--checkpoint", "none.pt", "not found"]),
    "export-checkpoint-is-a-directory": (["export", "--to", "nir", "--checkpoint", "{p}/a_dir", "--out", "{p}/m"],
                                         ["--checkpoint", "a_dir"]),
    "export-checkpoint-random-bytes": (["export", "--to", "lava", "--checkpoint", "{p}/random.pt", "--out",
                                        "{p}/m.pt"], ["random.pt", "could not be read"]),
    "export-checkpoint-without-model-config": (["export", "--to", "lava", "--checkpoint", "{p}/no_config.pt",
                                                "--out", "{p}/m.pt"], ["no_config.pt", "'model_config'"]),
    "export-out-is-a-directory": (["export", "--to", "lava", "--checkpoint", "{p}/ckpt.pt", "--out", "{p}/a_dir"],
                                  ["--out", "a_dir", "is a directory"]),
    "export-to-unknown": (["export", "--to", "onnx", "--checkpoint", "{p}/ckpt.pt", "--out", "{p}/m"], ["--to"]),
    # snn deploy
    "deploy-samples-zero": (["deploy", "--checkpoint", "{p}/ckpt.pt", "--samples", "0"], ["--samples"]),
    "deploy-batch-size-negative": (["deploy", "--checkpoint", "{p}/ckpt.pt", "--batch-size", "-4"],
                                   ["--batch-size"]),
    "deploy-other-dataset": (["deploy", "--checkpoint", "{p}/ckpt.pt", "--no-lava", "--dataset", "fashion-mnist"],
                             ["--dataset fashion-mnist", "digits"]),
    "deploy-data-dir-missing": (["deploy", "--checkpoint", "{p}/ckpt.pt", "--data-dir", "{p}/nowhere"],
                                ["--data-dir"]),
    "deploy-json-below-a-file": (["deploy", "--checkpoint", "{p}/ckpt.pt", "--no-lava", "--json",
                                  "{p}/a_file/s.json"], ["--json", "a_file"]),
    # snn lsm
    "lsm-neurons-zero": (["lsm", "--neurons", "100", "0"], ["--neurons"]),
    "lsm-samples-negative": (["lsm", "--samples", "-10"], ["--samples"]),
    "lsm-bins-zero": (["lsm", "--bins", "0"], ["--bins"]),
    "lsm-out-is-a-file": (["lsm", "--samples", "8", "--out", "{p}/a_file"], ["--out", "a_file"]),
    "lsm-out-holds-plots": (["lsm", "--samples", "8", "--out", "{p}/plots"],
                            ["--out", "accuracy_vs_size.png", "--overwrite"]),
    # snn lsm zeroshot
    "zeroshot-unseen-all": (["lsm", "zeroshot", "--unseen", "10"], ["--unseen"]),
    "zeroshot-splits-zero": (["lsm", "zeroshot", "--splits", "0"], ["--splits"]),
    "zeroshot-json-is-a-directory": (["lsm", "zeroshot", "--neurons", "10", "--json", "{p}/a_dir"],
                                     ["--json", "a_dir"]),
    # snn continual
    "continual-hidden-zero": (["continual", "--hidden", "64,0"], ["--hidden"]),
    "continual-lr-negative": (["continual", "--lr", "-0.1"], ["--lr"]),
    "continual-ewc-lambda-negative": (["continual", "--ewc-lambda", "-1"], ["--ewc-lambda"]),
    "continual-k-negative": (["continual", "--hlop-k-first", "4,-1"], ["--hlop-k-first"]),
    "continual-consolidate-negative": (["continual", "--hlop-consolidate-batches", "-1"],
                                       ["--hlop-consolidate-batches"]),
    "continual-data-dir-missing": (["continual", "--data-dir", "{p}/nowhere"], ["--data-dir"]),
    "continual-out-holds-a-matrix": (["continual", "--benchmark", "sdigits", "--out", "{p}/matrices"],
                                     ["--out", "matrix.json", "--overwrite"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, place, capsys):
    argv, names = CASES[case]
    argv = [a.replace("{p}", str(place)) for a in argv]
    names = [n.replace("{p}", str(place)) for n in names]
    expect_cli_error(argv, capsys, *names, unchanged=[place])


def test_resume_from_a_damaged_checkpoint_names_it(place, capsys):
    (place / "a_dir" / "checkpoint.pt").write_bytes(b"PK\x03\x04 half a zip")
    expect_cli_error(["train", "--resume", "--out", place / "a_dir", "--epochs", "2"], capsys,
                     str(place / "a_dir" / "checkpoint.pt"), "could not be read", unchanged=[place])


def test_full_disk_is_found_before_training(place, capsys, monkeypatch):
    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    expect_cli_error(["train", *TINY, "--out", place / "new"], capsys, "--out", "disk is full", unchanged=[place])
    assert not (place / "new").exists()
