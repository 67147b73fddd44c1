"""Two gloo processes on localhost end with identical weights, equal to one process on the summed batch."""
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from snn.train import TrainConfig, Trainer
from snn.train import distributed as D

TIMEOUT_S = 120


def _config(out, batch_size):
    return TrainConfig(dataset="digits", model="mlp", hidden=[16], T=2, epochs=2, batch_size=batch_size, lr=1e-2,
                       seed=5, train_limit=200, test_limit=50, out=str(out), progress=False)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _join(rank, world, port):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=TIMEOUT_S))


def _worker(rank, world, port, out):
    torch.set_num_threads(1)
    _join(rank, world, port)
    with D.leaving_group_at_end():
        trainer = Trainer(_config(out / "run", 16), log=None)
        summary = trainer.fit()
        torch.save({"model": trainer.model.state_dict(), "summary": summary}, out / f"rank{rank}.pt")


def _run_two(worker, *args):
    ctx = mp.spawn(worker, args=(2, _free_port(), *args), nprocs=2, join=False)
    deadline = time.monotonic() + TIMEOUT_S
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("the two processes did not finish in time")


def test_two_processes_match_one_process_with_the_summed_batch(tmp_path):
    _run_two(_worker, tmp_path)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    for k in r0["model"]:
        assert torch.equal(r0["model"][k], r1["model"][k]), k
    assert r0["summary"]["world_size"] == 2
    assert (tmp_path / "run" / "checkpoint.pt").is_file()  # written by rank 0
    single = Trainer(_config(tmp_path / "single", 32), log=None)
    single.fit()
    for k, v in single.model.state_dict().items():
        assert torch.allclose(r0["model"][k], v, atol=1e-5), k
    assert r0["summary"]["test_acc"] == pytest.approx(single.history["test_acc"][-1], abs=0.021)


def _failing_worker(rank, world, port, out):
    _join(rank, world, port)
    t0 = time.monotonic()
    try:
        with D.leaving_group_at_end():
            if rank == 1:
                raise RuntimeError("rank 1 failed")
            D.all_reduce_sum(torch.ones(3))  # rank 1 never joins this collective
        outcome = "finished"
    except RuntimeError as e:
        outcome = f"raised {type(e).__name__}: {str(e)[:80]}"
    (out / f"rank{rank}.txt").write_text(f"{time.monotonic() - t0:.3f} {outcome}")


def test_a_failing_rank_makes_its_peer_fail_at_once_instead_of_waiting_for_the_timeout(tmp_path):
    _run_two(_failing_worker, tmp_path)
    for rank in (0, 1):
        seconds, outcome = (tmp_path / f"rank{rank}.txt").read_text().split(" ", 1)
        assert outcome.startswith("raised"), (rank, outcome)
        assert float(seconds) < TIMEOUT_S / 4, (rank, seconds)  # the peer's closed connection, not the timeout


def test_sharding_covers_each_global_batch_once():
    batches = D.global_batches(10, 2, 2, torch.Generator().manual_seed(0))
    assert [len(b) for b in batches] == [4, 4, 2]  # a last batch smaller than world would be dropped
    assert [len(b) for b in D.global_batches(9, 2, 2, None, shuffle=False)] == [4, 4]
    seen = torch.cat([torch.cat([D.shard(b, r, 2) for r in range(2)]) for b in batches])
    assert len(set(seen.tolist())) == len(seen)


@pytest.mark.skipif(not os.path.exists(os.path.join(os.path.dirname(sys.executable), "torchrun")),
                    reason="torchrun not installed")
def test_torchrun_cli_smoke(tmp_path):
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    cmd = [torchrun, "--nproc_per_node=2", "--master_port", str(_free_port()), "-m", "snn", "train",
           "--dataset", "digits", "--model", "mlp", "--hidden", "16", "--T", "2", "--epochs", "1",
           "--batch-size", "16", "--train-limit", "96", "--test-limit", "32", "--threads", "1",
           "--out", str(tmp_path / "run"), "--json", str(tmp_path / "s.json")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-2000:]
    import json

    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["world_size"] == 2
    assert res.stdout.count("snn train: summary") == 1  # only rank 0 prints


def test_leaving_the_group_alone_is_a_no_op_and_errors_pass_through():
    with D.leaving_group_at_end():
        pass
    with pytest.raises(RuntimeError, match="boom"):
        with D.leaving_group_at_end():
            raise RuntimeError("boom")
    assert not dist.is_initialized()
