"""Multi-process data-parallel training on ``torch.distributed``.

Launch with ``torchrun --nproc_per_node=K -m snn train ...`` (gloo on CPU, nccl on GPU). ``--batch-size``
is per process: every optimizer step sees a global batch of K·B samples, drawn from one shuffled order
that every rank computes identically (same seed and epoch), and rank r takes its slice ``g[r::K]`` of the
global batch ``g``. Each rank's loss is its sum over its slice divided by the global batch size, and
gradients are summed across ranks, so one step equals a single-process step on the whole global batch.
Buffers (BatchNorm running statistics) are averaged across ranks after every epoch; only rank 0 logs
and writes checkpoints. A script of your own that trains under torchrun wraps its run in
``with leaving_group_at_end():`` so that every rank leaves the group together at the end.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["Context", "setup", "teardown", "leaving_group_at_end", "global_batches", "shard", "all_reduce_grads",
           "all_reduce_sum", "average_buffers", "broadcast_model"]


@dataclass
class Context:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def setup(device: str | None = None) -> Context:
    """Join the process group described by torchrun's environment (``WORLD_SIZE`` > 1), or run alone."""
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        backend = dist.get_backend()
    elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
        use_cuda = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
        backend = "nccl" if use_cuda else "gloo"
        dist.init_process_group(backend)
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        return Context(device=torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu")))
    if backend == "nccl":
        local = int(os.environ.get("LOCAL_RANK", rank % max(torch.cuda.device_count(), 1)))
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device(device or "cpu")
    return Context(rank, world, dev, backend)


def teardown(wait_for_peers: bool = True) -> None:
    """Leave the process group, if one was joined, and destroy it. ``wait_for_peers`` (the normal end of a
    run): first wait until every rank got here, so that no rank tears its connections down while rank 0 still
    writes its checkpoint or a peer is still inside a collective. Pass False when leaving on an error (the
    peers may never arrive). A no-op when running alone."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    if wait_for_peers and dist.get_world_size() > 1:
        dist.barrier()
    dist.destroy_process_group()


@contextmanager
def leaving_group_at_end():
    """Run the body, then :func:`teardown`: waiting for the peers after a normal end, at once on an error."""
    try:
        yield
    except BaseException:
        teardown(wait_for_peers=False)
        raise
    teardown()


def global_batches(n: int, batch_size: int, world: int, generator: torch.Generator | None,
                   shuffle: bool = True) -> list[torch.Tensor]:
    """The index tensors of the global batches (``batch_size·world`` each) of one epoch; a last batch
    smaller than ``world`` is dropped so that every rank gets at least one sample."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    size = batch_size * world
    out = [order[i:i + size] for i in range(0, n, size)]
    return [g for g in out if len(g) >= world]


def shard(indices: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Rank ``rank``'s slice of a global batch (or of the test set)."""
    return indices[rank::world]


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_reduce_grads(model: torch.nn.Module) -> None:
    """Sum every parameter's gradient over the ranks (one flat all-reduce)."""
    params = [p for p in model.parameters() if p.grad is not None]  # the same set on every rank
    if not params:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    all_reduce_sum(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n


def average_buffers(model: torch.nn.Module, world: int) -> None:
    """Average floating buffers (BatchNorm running statistics) over the ranks."""
    for b in model.buffers():
        if b.is_floating_point():
            all_reduce_sum(b.data)
            b.data /= world


def broadcast_model(model: torch.nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers."""
    for t in list(model.parameters()) + list(model.buffers()):
        dist.broadcast(t.data, src=0)
