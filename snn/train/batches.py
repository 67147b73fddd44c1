"""What :func:`snn.train.fit` iterates: any DataLoader, data set or iterable of ``(x, y)``, as epochs of
batches that can be replayed from any position, and turned time-major ``[T, B, ...]``.

Sources, and how an epoch is replayed (resuming at batch k must see the batches an uninterrupted run saw):

- a ``DataLoader`` over a map-style data set (any sampler, batch size, collate function, workers): at the start
  of epoch e the sampler's ``generator`` is replaced by one seeded with ``(seed, e)`` (a ``DistributedSampler``
  gets ``set_epoch(e)``), and the epoch's index batches are listed with the global RNGs in their epoch-start
  state (kept in checkpoints); batch k on is then read, without reading the first k. ``TensorDataset`` and
  snn's in-memory data sets are read by indexing their tensors; any other through a DataLoader with the
  user's settings (its worker seeds from ``(seed, e)`` too). Under torch.distributed a plain shuffled or
  sequential loader is sharded here: global batches of ``batch_size·world`` samples, rank r takes ``g[r::world]``.
- a torch ``Dataset``: ``DataLoader(dataset, batch_size, shuffle=True)`` (validation: in order), as above.
- a list or tuple of ``(x, y)`` batches: in its order.
- any other iterable (a DataLoader over an ``IterableDataset``, an object with ``__iter__``): iterated again
  each epoch from the epoch-start RNG state; a resumed epoch re-reads and drops its first k batches, which is
  exact only if the order depends on nothing but the global RNGs (a warning says so).
- an iterator (consumed by one pass): one epoch only.

Time: static samples ``[B, ...]`` are encoded over ``T`` steps (direct or Poisson, :mod:`snn.encoding`);
sequence samples (``dataset.sequence = True``; collated ``[B, T, ...]``) are transposed to ``[T, B, ...]``.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset, default_collate

from .. import encoding as enc
from ..data.images import check_labels as _check_label_range
from .checkpoint import rng_state, set_rng_state

__all__ = ["ENCODINGS", "Source", "epoch_seed", "data_attr", "time_major", "check_labels", "as_pair"]

ENCODINGS = ("direct", "poisson")


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch``'s sampling order."""
    return int(seed) * 1_000_003 + int(epoch)


def data_attr(data, name: str, default=None):
    """``name`` of the data set behind ``data`` (a DataLoader's ``dataset``, through ``Subset`` wrappers)."""
    ds = data.dataset if isinstance(data, DataLoader) else data
    while ds is not None:
        if hasattr(ds, name) and not isinstance(ds, torch.utils.data.Subset):
            return getattr(ds, name)
        ds = getattr(ds, "dataset", None) if isinstance(ds, torch.utils.data.Subset) else None
    return default


def as_pair(batch, where: str):
    """``(x, y)`` of one batch; a clear error for anything else."""
    if isinstance(batch, dict):
        raise TypeError(f"{where} must yield (x, y) pairs, got a dict with keys {sorted(batch)[:6]}")
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        got = f"a {type(batch).__name__}" + (f" of {len(batch)} items" if isinstance(batch, (tuple, list)) else "")
        raise TypeError(f"{where} must yield (x, y) pairs (a sample tensor and its class labels), got {got}")
    x, y = batch
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where}: x must be a tensor, got {type(x).__name__}")
    return x, torch.as_tensor(y)


def check_labels(y: torch.Tensor, num_outputs: int, source: str) -> None:
    """Labels must be integer class indices in ``[0, num_outputs)``; the error names ``source``, the first bad
    label and the range."""
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise TypeError(f"{source} must be integer class indices, got dtype {y.dtype}")
    if y.dim() != 1:
        raise ValueError(f"{source} must be one class index per sample ([B]), got shape {list(y.shape)}")
    _check_label_range(y.cpu().numpy(), num_outputs, source)


def time_major(x: torch.Tensor, *, T: int | None, encoding: str, sequence: bool, is_time_major: bool = False,
               where: str = "data") -> torch.Tensor:
    """``x`` as ``[T, B, ...]``: a static batch ``[B, ...]`` encoded over ``T`` steps, a sequence batch
    ``[B, T, ...]`` (or already ``[T, B, ...]``) transposed; integer event counts become float32."""
    if not x.is_floating_point():
        x = x.float()
    if not sequence:
        return enc.poisson(x, T) if encoding == "poisson" else enc.direct(x, T)
    if x.dim() < 3:
        raise ValueError(f"{where}: sequence samples must be [T, ...] (batches [B, T, ...]), got a batch of shape "
                         f"{list(x.shape)}; pass sequence=False for static samples")
    x_seq = x if is_time_major else x.transpose(0, 1)
    if T is not None and x_seq.shape[0] != T:
        raise ValueError(f"{where}: the sequences have {x_seq.shape[0]} time steps but T={T} was asked for; "
                         f"leave T=None for sequence data, or convert the data to {T} frames")
    return x_seq


def _direct_reader(dataset, loader: DataLoader):
    """A function ``idx -> (x, y, time_major)`` reading a batch by indexing the data set's tensors, where that
    gives what the loader would (default collation, no workers); else None."""
    if loader.collate_fn is not default_collate or loader.num_workers:
        return None
    if type(dataset) is TensorDataset and len(dataset.tensors) == 2:
        x_all, y_all = dataset.tensors
        return lambda idx: (x_all[idx], y_all[idx], False)
    try:
        from ..data.datasets import InMemoryDataset
    except ImportError:  # pragma: no cover - depends on the snn.data version
        return None
    if type(dataset) is InMemoryDataset:
        if dataset.sequence:
            return lambda idx: (dataset.x[:, idx].to(torch.float32), dataset.targets[idx], True)
        return lambda idx: (dataset.x[idx].to(torch.float32), dataset.targets[idx], False)
    return None


def _known_targets(dataset) -> torch.Tensor | None:
    """Every label of the data set when it holds them in one tensor (checked before training), else None."""
    if type(dataset) is TensorDataset and len(dataset.tensors) == 2:
        return dataset.tensors[1]
    targets = getattr(dataset, "targets", None)
    return targets if isinstance(targets, torch.Tensor) else None


class Source:
    """Epochs of ``(x, y, denom)`` batches from ``data`` (see the module docstring); ``denom`` is the global
    batch size. ``name`` ('train data', 'validation data') is how errors call it."""

    def __init__(self, data, *, name: str, shuffle: bool, batch_size: int | None = None, seed: int = 0,
                 world: int = 1, rank: int = 0, evaluation: bool = False):
        self.name, self.seed, self.world, self.rank = name, int(seed), int(world), int(rank)
        self.evaluation = evaluation
        self._used = False
        if isinstance(data, Dataset) and not isinstance(data, IterableDataset):
            data = DataLoader(data, batch_size=batch_size or 32, shuffle=shuffle)
        elif isinstance(data, IterableDataset):
            data = DataLoader(data, batch_size=batch_size or 32)
        self.data = data
        self.loader = data if isinstance(data, DataLoader) else None
        map_style = (self.loader is not None and not isinstance(self.loader.dataset, IterableDataset)
                     and self.loader.batch_sampler is not None)  # batch_size=None: the data set makes the batches
        if map_style:
            self.kind, self.replayable, self.why_not = "indexed", True, ""
            self.reader = _direct_reader(self.loader.dataset, self.loader)
            self._shard_here = world > 1 and self._plain_batches()
            if world > 1 and not self._shard_here and not hasattr(self.loader.sampler, "set_epoch"):
                raise ValueError(f"{name}: under torch.distributed ({world} processes) fit shards a DataLoader "
                                 f"with shuffle=True/False itself; this one has a custom "
                                 f"{type(self.loader.batch_sampler or self.loader.sampler).__name__}: give it a "
                                 f"DistributedSampler, or use a plain DataLoader")
        elif isinstance(data, (list, tuple)):
            self.kind, self.replayable, self.why_not = "list", True, ""
        elif isinstance(data, Iterator):
            self.kind, self.replayable = "iterator", False
            self.why_not = f"{name} is an iterator ({type(data).__name__}): one pass consumes it"
        elif hasattr(data, "__iter__"):
            self.kind, self.replayable = "iterable", False
            self.why_not = (f"{name} ({type(data).__name__}) is not a DataLoader with a batch size over a map-style "
                            f"data set, so fit cannot list its batches without reading them")
        else:
            raise TypeError(f"{name} must be a DataLoader, a torch Dataset or an iterable of (x, y) batches, got "
                            f"{type(data).__name__}")
        if world > 1 and self.kind != "indexed":
            raise ValueError(f"{name}: under torch.distributed ({world} processes) the data must be a DataLoader "
                             f"over a map-style data set (fit shards it), got {type(data).__name__}")
        self._peeked = None

    # -- what the data set says about itself ---------------------------------------------------------------
    @property
    def dataset(self):
        return self.loader.dataset if self.loader is not None else None

    def attr(self, name: str, default=None):
        return data_attr(self.data, name, default) if self.loader is not None else default

    def known_targets(self) -> torch.Tensor | None:
        return _known_targets(self.dataset) if self.kind == "indexed" else None

    def __len__(self) -> int:
        if self.kind == "indexed":
            return len(self._plan(0)[0]) if self._shard_here else len(self.loader)
        if self.kind == "list":
            return len(self.data)
        try:
            return len(self.data)
        except TypeError:
            return 0

    # -- the order of an epoch ------------------------------------------------------------------------------
    def _plain_batches(self) -> bool:
        from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler

        bs = self.loader.batch_sampler
        return (type(bs) is BatchSampler and type(self.loader.sampler) in (RandomSampler, SequentialSampler)
                and not getattr(self.loader.sampler, "replacement", False))

    def _seed_sampler(self, epoch: int) -> torch.Generator:
        g = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        for s in (self.loader.sampler, self.loader.batch_sampler):
            if s is None:
                continue
            if hasattr(s, "set_epoch"):
                s.set_epoch(epoch)
            if hasattr(s, "generator"):
                s.generator = g
        return g

    def _plan(self, epoch: int) -> tuple[list, list]:
        """This rank's index batches of ``epoch`` and their global sizes."""
        self._seed_sampler(epoch)
        if not self._shard_here:
            batches = [list(b) for b in self.loader.batch_sampler]
            return batches, [len(b) * self.world for b in batches]
        order = list(self.loader.sampler)
        if self.evaluation:  # every sample once: rank r evaluates order[r::world]
            mine, b = order[self.rank::self.world], self.loader.batch_size
            batches = [mine[i:i + b] for i in range(0, len(mine), b)]
            return batches, [len(x) for x in batches]
        size = self.loader.batch_size * self.world
        globals_ = [order[i:i + size] for i in range(0, len(order), size)]
        keep = size if self.loader.drop_last else self.world  # every rank gets at least one sample
        globals_ = [g for g in globals_ if len(g) >= keep]
        return [g[self.rank::self.world] for g in globals_], [len(g) for g in globals_]

    def _read_indexed(self, epoch: int, batches: list, sizes: list, start: int):
        if self.reader is not None:
            for idx, size in zip(batches[start:], sizes[start:]):
                x, y, tm = self.reader(torch.as_tensor(idx, dtype=torch.long))
                yield x, y, size, tm
            return
        ld = self.loader
        g = torch.Generator().manual_seed(epoch_seed(self.seed, epoch) + 7919)
        extra = dict(prefetch_factor=ld.prefetch_factor) if ld.num_workers else {}
        loader = DataLoader(ld.dataset, batch_sampler=batches[start:], collate_fn=ld.collate_fn,
                            num_workers=ld.num_workers, pin_memory=ld.pin_memory, timeout=ld.timeout,
                            worker_init_fn=ld.worker_init_fn, multiprocessing_context=ld.multiprocessing_context,
                            generator=g, **extra)
        for batch, size in zip(loader, sizes[start:]):
            x, y = as_pair(batch, self.name)
            yield x, y, size, False

    def epoch(self, epoch: int, start: int = 0, epoch_rng: dict | None = None):
        """The batches ``(x, y, denom, is_time_major)`` of ``epoch`` from batch ``start`` on. ``epoch_rng``: the
        RNG state at the start of the epoch (resuming), restored while the order is drawn."""
        if start and not self.replayable and self.kind == "iterator":
            raise ValueError(f"cannot resume inside an epoch: {self.why_not}")
        resumed = rng_state() if epoch_rng is not None else None
        if epoch_rng is not None:
            set_rng_state(epoch_rng)
        if self.kind == "indexed":
            batches, sizes = self._plan(epoch)
            if resumed is not None:
                set_rng_state(resumed)
            yield from self._read_indexed(epoch, batches, sizes, start)
            return
        if self.kind == "list":
            if resumed is not None:
                set_rng_state(resumed)
            for i, batch in enumerate(self.data[start:]):
                x, y = as_pair(batch, self.name)
                yield x, y, len(y) * self.world, False
            return
        if self.kind == "iterator":
            if self._used and self._peeked is None:
                raise ValueError(f"{self.why_not}; it cannot give a second epoch: pass a DataLoader, a list of "
                                 f"batches or another re-iterable object, or train one epoch")
            self._used = True
        it = self._iterate()
        if start:
            warnings.warn(f"resuming inside epoch {epoch + 1}: {self.why_not}; its first {start} batches are read "
                          f"again and dropped, which replays the interrupted run exactly only if their order "
                          f"depends on nothing but torch's, numpy's and Python's global RNGs", stacklevel=3)
            for _ in range(start):
                next(it, None)
        if resumed is not None:
            set_rng_state(resumed)
        for batch in it:
            x, y = as_pair(batch, self.name)
            yield x, y, len(y) * self.world, False

    def _iterate(self):
        if self._peeked is not None:
            first, rest = self._peeked
            self._peeked = None
            yield first
            yield from rest
            return
        yield from iter(self.data)

    def peek(self):
        """One batch ``(x, y, is_time_major)`` for the checks before training, drawn without moving any RNG."""
        state = rng_state()
        try:
            if self.kind == "indexed":
                batches, _ = self._plan(0)
                if not batches:
                    raise ValueError(f"{self.name} is empty (no batch in an epoch)")
                x, y, _, tm = next(self._read_indexed(0, batches[:1], [0], 0))
                return x, y, tm
            if self.kind == "list":
                if not self.data:
                    raise ValueError(f"{self.name} is empty (no batch)")
                x, y = as_pair(self.data[0], self.name)
                return x, y, False
            it = iter(self.data)
            first = next(it, None)
            if first is None:
                raise ValueError(f"{self.name} is empty (no batch)")
            if self.kind == "iterator":
                self._peeked = (first, it)
            x, y = as_pair(first, self.name)
            return x, y, False
        finally:
            set_rng_state(state)
