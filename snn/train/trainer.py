"""The preset trainer: a :class:`TrainConfig` names the data set and the model, :class:`Trainer` builds them and
trains with :func:`snn.train.fit` (which does all the training: see :mod:`snn.train.fit`).

One run = :class:`TrainConfig` → :meth:`Trainer.fit` → a summary dict. The data come from the data registry
(:func:`snn.data.get_dataset`; ``'auto'`` is Fashion-MNIST when its files are found, else the digits;
``train_limit``/``test_limit`` keep the first N samples); the model from the model registry
(:func:`snn.models.build_model` of :meth:`TrainConfig.model_config`), built after seeding with ``seed``, so its
checkpoints rebuild with :func:`snn.train.load_model`. The schedule is cosine over ``epochs``; a checkpoint
(``<out>/checkpoint.pt``) is written after every epoch, and ``resume=True`` continues exactly (a different
``epochs`` stretches the schedule). Ctrl-C saves first, at the end of the running batch.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Subset

from .. import data
from . import distributed as D
from .activity import QUIET_RATE, SaturatedLayerWarning, SilentLayerWarning, SpikeCounter, activity_problems
from .batches import time_major
from .checkpoint import RESUME_KEYS, load_checkpoint
from .config import TrainConfig
from .fit import CHECKPOINT_NAME, DEFAULT_T, Fit, seed_everything
from .ottt import trace_decay

__all__ = ["Trainer", "CHECKPOINT_NAME", "SilentLayerWarning", "SaturatedLayerWarning", "SpikeCounter",
           "activity_problems", "QUIET_RATE", "load_split"]

# Fields that may differ between the run that wrote a checkpoint and the one resuming it.
_RESUMABLE_OVERRIDES = ("epochs", "out", "data_dir", "threads", "progress")
EVAL_BATCH_SIZE = 512


def _first(ds, n: int | None):
    """The first ``n`` samples of ``ds`` (all when None); snn's in-memory sets stay in memory."""
    if n is None or n >= len(ds):
        return ds
    if type(ds) is data.InMemoryDataset:
        x = ds.x[:, :n] if ds.sequence else ds.x[:n]
        return data.InMemoryDataset(x, ds.targets[:n], name=ds.name, classes=ds.classes, sequence=ds.sequence)
    return Subset(ds, range(n))


def load_split(cfg: TrainConfig, name: str, split: str, limit: int | None):
    """The ``split`` of the registered data set ``name`` for ``cfg``: a given T asks a sequence data set that
    converts frames for that many; ``limit`` keeps the first N images of an image set, and asks the others
    (converted per sample: events, audio) for a random subset of N (seeded with ``cfg.seed``)."""
    entry, options = data.entry(name), {}
    if cfg.T is not None and "n_frames" in entry.options():
        options["n_frames"] = cfg.T
    if limit is not None and entry.modality != "image" and "n" in entry.options():
        options.update(n=limit, seed=cfg.seed)
    return _first(data.get_dataset(name, root=cfg.data_dir, split=split, **options), limit)


class _OnBatch:
    """The callback behind ``Trainer(on_batch=...)``: ``on_batch(trainer, i)`` after batch ``i``."""

    def __init__(self, trainer, fn):
        self.trainer, self.fn = trainer, fn

    def on_batch_end(self, run):
        self.fn(self.trainer, run.batch - 1)


class Trainer:
    """Train a registered model on a registered data set with any registered method. ``log`` receives one line
    per epoch (rank 0 only); ``on_batch(trainer, i)`` is called after every batch (tests use it to interrupt).

    ``model`` trains your own network instead (input ``[T, B, ...]``, output ``[T, B, classes]``); its
    checkpoints then cannot be rebuilt by :func:`load_model`, only loaded into the same network.
    """

    def __init__(self, config: TrainConfig, *, resume: bool = False, log=print, on_batch=None,
                 model: nn.Module | None = None):
        self.cfg = config.validate()
        self.ctx = D.setup()
        self.log = log if self.ctx.is_main else None
        ckpt = self._find_checkpoint() if resume else None
        if ckpt is not None:
            self.cfg = self._merge_config(ckpt["train_config"])
        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        seed_everything(self.cfg.seed)
        self.dataset = data.resolve_name(self.cfg.dataset, self.cfg.data_dir) if self.cfg.dataset == "auto" \
            else self.cfg.dataset
        self.train_data = load_split(self.cfg, self.dataset, "train", self.cfg.train_limit)
        self.test_data = load_split(self.cfg, self.dataset, "test", self.cfg.test_limit)
        sequence = bool(getattr(self.train_data, "sequence", False))
        T = self.cfg.T or (DEFAULT_T if not sequence else int(self.train_data[0][0].shape[0]))
        self.cfg = dataclasses.replace(self.cfg.for_dataset(self.dataset), T=T)
        if model is None:
            from ..models import build_model

            shape = getattr(self.train_data, "input_shape", None) or tuple(self.train_data[0][0].shape[sequence:])
            model = build_model(self.cfg.model_config(shape, int(getattr(self.train_data, "num_classes", 10))))
        options = {"lam": trace_decay(self.cfg.neuron, self.cfg.tau), "mode": self.cfg.ottt_mode} \
            if self.cfg.method == "ottt" else {}
        self.run = Fit(
            model, DataLoader(self.train_data, batch_size=self.cfg.batch_size, shuffle=True),
            DataLoader(self.test_data, batch_size=EVAL_BATCH_SIZE), method=self.cfg.method, method_options=options,
            T=T, epochs=self.cfg.epochs, lr=self.cfg.lr, optimizer=self.cfg.optimizer, momentum=self.cfg.momentum,
            weight_decay=self.cfg.weight_decay, encoding=self.cfg.encoding, amp=self.cfg.amp,
            clip_grad=self.cfg.clip_grad, schedule="cosine", checkpoint=self.cfg.out, resume=ckpt or False,
            progress=self.cfg.progress, callbacks=[_OnBatch(self, on_batch)] if on_batch else [],
            seed=self.cfg.seed, device=self.ctx.device, log=self.log, val_name="test",
            train_config=self.cfg.to_dict(), extra={"dataset": self.dataset})

    # -- what the run holds ---------------------------------------------------------------------------------
    model = property(lambda self: self.run.model)
    method = property(lambda self: self.run.method)
    optimizer = property(lambda self: self.run.optimizer)
    history = property(lambda self: self.run.history)
    epoch = property(lambda self: self.run.epoch)
    batch = property(lambda self: self.run.batch)
    resumed_from = property(lambda self: self.run.resumed_from)
    model_config = property(lambda self: self.run.model_config)

    @property
    def out(self) -> Path | None:
        return Path(self.cfg.out) if self.cfg.out else None

    @property
    def checkpoint_path(self) -> Path | None:
        return self.out / CHECKPOINT_NAME if self.out else None

    def _find_checkpoint(self):
        if self.checkpoint_path is None:
            raise ValueError("resume needs an output directory (--out) holding a checkpoint")
        if not self.checkpoint_path.is_file():
            if self.log:
                self.log(f"no checkpoint in {self.out}; starting from scratch")
            return None
        return load_checkpoint(self.checkpoint_path, require=RESUME_KEYS)

    def _merge_config(self, stored: dict) -> TrainConfig:
        merged = dict(stored)
        for k in _RESUMABLE_OVERRIDES:
            merged[k] = getattr(self.cfg, k)
        return TrainConfig.from_dict(merged).validate()

    def state(self) -> dict:
        return self.run.state()

    def save(self, path=None) -> Path | None:
        return self.run.save(path)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """A batch of this run's samples as the model takes it, ``[T, B, ...]`` on the run's device."""
        return time_major(x.to(self.ctx.device), T=self.cfg.T, encoding=self.cfg.encoding,
                          sequence=self.run.sequence)

    # -- the run --------------------------------------------------------------------------------------------
    def fit(self) -> dict:
        """Train up to ``cfg.epochs`` epochs; returns the summary dict."""
        self.run.run()
        return self.summary()

    def summary(self) -> dict:
        r = self.run.result()
        return {
            "dataset": self.dataset, "model": self.cfg.model, "neuron": self.cfg.neuron, "method": r["method"],
            "T": self.cfg.T, "epochs": r["epochs"], "batch_size": self.cfg.batch_size, "world_size": r["world_size"],
            "train_samples": len(self.train_data), "test_samples": len(self.test_data),
            "parameters": r["parameters"], "test_acc": r["test_acc"], "best_test_acc": r["best_test_acc"],
            "train_acc": r["train_acc"], "test_loss": r["test_loss"],
            "seconds_per_epoch": r["seconds_per_epoch"], "train_seconds": r["train_seconds"],
            "peak_memory_mb": r["peak_memory_mb"], "peak_memory_kind": r["peak_memory_kind"],
            "peak_rss_mb": r["peak_rss_mb"], "firing_rate": r["firing_rate"],
            "activity_warnings": r["activity_warnings"], "backend": r["backend"], "threads": torch.get_num_threads(),
            "checkpoint": str(self.checkpoint_path) if self.checkpoint_path else None,
            **{k: r[k] for k in ("sops_per_sample", "macs_per_sample", "energy_j_per_sample") if k in r},
            "history": r["history"],
        }

