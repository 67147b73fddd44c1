"""kill -9 while a checkpoint or an export is written, and while training runs.

- A child process writes versions 1, 2, ... of a large checkpoint (or Lava export) in a loop and is killed
  with SIGKILL: at a random moment, or deterministically between writing its temporary file and renaming it.
  The target then loads and equals one complete version (the last one reported, or the one being renamed);
  the killed writer's temporary file is removed by the next write of the same target, which leaves no
  temporary files behind (a SIGKILLed process cannot remove its own).
- ``snn train`` killed with SIGKILL in the middle of epoch 3 (after epoch 2's checkpoint) and resumed equals
  the same run done in one go: weights, optimizer state and history.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from snn.cli import main
from snn.export.lava import load_lowered, save_lowered
from snn.export.loihi.lowering import CubaLayer, CubaNet
from snn.train import load_checkpoint, save_checkpoint

N = 1_000_000  # 4 MB of weights per version: writing takes a few milliseconds

WRITER = r"""
import sys, time
import torch

kind, target, pause, stop_at, tests_dir = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
sys.path.insert(0, tests_dir)
from test_fault_kill import write_version

real_save = torch.save
version = 0


def save_then_pause(obj, f, *a, **k):  # torch.save into the temporary file, then wait before the rename
    real_save(obj, f, *a, **k)
    print(f"temp {version}", flush=True)
    time.sleep(3600 if version == stop_at else pause)


torch.save = save_then_pause
for version in range(1, 10**6):
    write_version(kind, target, version)
    print(f"done {version}", flush=True)
"""


def write_version(kind: str, target, version: int) -> None:
    """Version ``version`` of a checkpoint or a Lava export: every weight equals ``version``."""
    w = torch.full((N,), float(version))
    if kind == "checkpoint":
        save_checkpoint(target, {"epoch": version, "w": w})
    else:
        layer = CubaLayer(name="0", weight=w.reshape(1000, 1000), bias=torch.zeros(1000), du=0.5, dv=0.5,
                          vth=float(version), out_shape=(1000,))
        save_lowered(CubaNet(in_shape=(1000,), layers=[layer], input_bits=8), target)


def read_version(kind: str, target) -> int:
    """The version of a complete file; fails unless every weight agrees with it."""
    if kind == "checkpoint":
        ckpt = load_checkpoint(target)
        version, w = ckpt["epoch"], ckpt["w"]
    else:
        layer = load_lowered(target).layers[0]
        version, w = int(layer.vth), layer.weight
    assert torch.equal(w.flatten(), torch.full((N,), float(version))), "a mix of two versions"
    return version


def temporaries(target) -> list[str]:
    return sorted(p.name for p in target.parent.glob(f".{target.name}.*.tmp"))


def _kill_writer(kind, target, pause: float, kill_when, stop_at: int = 0) -> tuple[int, int]:
    """Run the writer (``pause`` seconds between each temporary file and its rename; at version ``stop_at``,
    until killed) until ``kill_when(what, version)`` says so, then SIGKILL it; returns (last done, last temp)."""
    here = os.path.dirname(os.path.abspath(__file__))
    child = subprocess.Popen([sys.executable, "-c", WRITER, kind, str(target), str(pause), str(stop_at), here],
                             stdout=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in child.stdout:
            lines.append(line.split())
            if kill_when(lines[-1][0], int(lines[-1][1])):
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    lines += [line.split() for line in child.stdout]  # what it reported before dying but was not read yet
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    last = {what: int(v) for what, v in lines}
    return last.get("done", 0), last.get("temp", 0)


@pytest.mark.parametrize("kind", ["checkpoint", "lava-export"])
def test_kill_at_a_random_moment_keeps_a_complete_file(tmp_path, kind):
    rng = random.Random(int.from_bytes(os.urandom(4), "little"))
    delay = rng.uniform(0.0, 0.25)
    target = tmp_path / "target.pt"
    start = []

    def kill_when(what, v):
        if what == "done" and v == 2 and not start:
            start.append(time.perf_counter())
        if start and time.perf_counter() - start[0] >= delay:
            return True
        return False

    done, _ = _kill_writer(kind, target, 0.002, kill_when)
    version = read_version(kind, target)
    assert done <= version <= done + 1, (done, version, f"delay {delay:.3f} s")
    write_version(kind, target, 10**6)  # the next writer removes what the killed one left
    assert temporaries(target) == []
    assert read_version(kind, target) == 10**6


@pytest.mark.parametrize("kind", ["checkpoint", "lava-export"])
def test_kill_between_temporary_file_and_rename(tmp_path, kind):
    target = tmp_path / "target.pt"
    done, temp = _kill_writer(kind, target, 0.0, lambda what, v: what == "temp" and v == 3, stop_at=3)
    assert (done, temp) == (2, 3)
    assert read_version(kind, target) == 2  # the previous file, intact
    assert len(temporaries(target)) == 1  # the killed writer's temporary file (version 3, complete or not)
    write_version(kind, target, 4)
    assert temporaries(target) == [] and read_version(kind, target) == 4


TRAIN = ["train", "--dataset", "digits", "--model", "mlp", "--hidden", "16", "--T", "2", "--batch-size", "32",
         "--train-limit", "160", "--test-limit", "64", "--lr", "0.003", "--seed", "4", "--backend", "torch",
         "--epochs", "4", "--no-progress"]

KILLED_TRAIN = r"""
import os, signal, sys
from snn.train import trainer


class KilledMidEpoch3(trainer.Trainer):
    def __init__(self, *a, **k):
        k["on_batch"] = lambda t, i: os.kill(os.getpid(), signal.SIGKILL) if (t.epoch, i) == (2, 1) else None
        super().__init__(*a, **k)


trainer.Trainer = KilledMidEpoch3
from snn.cli import main
main(sys.argv[1:])
"""


def test_kill_mid_epoch_then_resume_equals_one_run(tmp_path, capsys):
    assert main(TRAIN + ["--out", str(tmp_path / "whole")]) == 0
    run = tmp_path / "killed"
    child = subprocess.run([sys.executable, "-c", KILLED_TRAIN, *TRAIN, "--out", str(run)], capture_output=True,
                           text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert (ckpt["epoch"], ckpt["batch"]) == (2, 0)  # epoch 2's checkpoint; epoch 3 was cut
    assert temporaries(run / "checkpoint.pt") == []
    assert main(TRAIN + ["--out", str(run), "--resume"]) == 0
    assert "resumed from" in capsys.readouterr().out
    whole, resumed = load_checkpoint(tmp_path / "whole" / "checkpoint.pt"), load_checkpoint(run / "checkpoint.pt")
    assert resumed["epoch"] == whole["epoch"] == 4
    for k, w in whole["model"].items():
        assert torch.equal(w, resumed["model"][k]), k
    for s_whole, s_resumed in zip(whole["optimizer"]["state"].values(), resumed["optimizer"]["state"].values()):
        for k in s_whole:
            assert torch.equal(torch.as_tensor(s_whole[k]), torch.as_tensor(s_resumed[k])), k
    timing = {"epoch_seconds"}
    assert {k: v for k, v in whole["history"].items() if k not in timing} == \
           {k: v for k, v in resumed["history"].items() if k not in timing}
