"""``snn.train.fit``: train any spiking model on any data, with one loop.

    result = fit(model, train_loader, val_loader, method="bptt", T=4, epochs=10, lr=1e-3,
                 checkpoint="runs/x", amp="bf16", clip_grad=1.0, schedule="cosine")
    result.history["val_acc"], result.val_acc, result.checkpoint

Per batch: ``x`` becomes ``[T, B, ...]`` (:mod:`snn.train.batches`), the method runs forward/backward and
asks for the update through a :class:`snn.train.step.Step` (mixed precision, loss scaling, gradient sync
across processes, clipping), the state of every neuron is reset before and after the forward
(:func:`snn.functional.reset`), the loss must stay finite. Per epoch: validation loss/accuracy, firing rate per
spiking layer, synaptic operations (SOPs), MACs and energy per sample (:class:`snn.monitor.OpCounter` on the
first validation batches), the
silent/saturated-layer warnings, the LR schedule, a checkpoint.

Before any training (each a clear error): a model without snn neurons; data whose samples the model cannot
take (one tiny forward; the error names the data's per-step shape and the model's first layer); labels out of
the model's range (all of them when the data set holds them in one tensor, else each batch before its
step); a data set with more classes than the model has outputs; what the method needs and the model lacks.

Checkpoints (``checkpoint=DIR``: ``DIR/checkpoint.pt`` and ``DIR/history.json``, written atomically after every
epoch): model, optimizer, scheduler, GradScaler, the RNG states (now and at the start of the epoch), epoch,
batch position, that epoch's running sums, history, and the settings. ``resume=True`` continues exactly: the
same batches in the same order with the same random draws as an uninterrupted run; the passed model must have
the checkpoint's parameter names and shapes (an error names the first that differ). Ctrl-C (SIGINT) is deferred
to the end of the running batch, a checkpoint with the batch position is written, then ``KeyboardInterrupt``
is raised. Models built by :func:`snn.models.get` keep their config in the checkpoint, so
:func:`snn.train.load_model` rebuilds them.

Callbacks: objects with any of ``on_fit_start``, ``on_epoch_start``, ``on_batch_end``, ``on_epoch_end``,
``on_fit_end``, each called with the running :class:`Fit` (``model``, ``optimizer``, ``epoch`` (0-based,
the running one), ``batch`` (batches done in it), ``history``, ``last_loss``); setting ``fit.stop = True``
ends the run after the current batch, with a checkpoint.

Under ``torchrun`` every process runs the same call: the model is broadcast from rank 0, each optimizer step
sums the gradients of all processes (:mod:`snn.train.distributed`), the data are sharded, only rank 0 logs and
writes checkpoints.
"""
from __future__ import annotations

import math
import random
import signal
import sys
import threading
import time
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checks
from ..functional import reset
from ..io import atomic_write_json
from . import distributed as D
from .activity import SpikeCounter, activity_problems, flat_counts, spiking_layers, warning_class
from .batches import ENCODINGS, Source, check_labels, time_major
from .checkpoint import CUSTOM_MODEL, check_same_model, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .memory import PeakMemory, peak_rss_mb
from .methods import Method, make_method
from .step import AMP_MODES, Step, autocast_dtype, full_precision, make_scaler, train_step

__all__ = ["fit", "Fit", "FitResult", "CHECKPOINT_NAME", "OPTIMIZERS", "CALLBACK_HOOKS", "DEFAULT_T",
           "seed_everything"]

CHECKPOINT_NAME = "checkpoint.pt"
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = (None, "cosine")
CALLBACK_HOOKS = ("on_fit_start", "on_epoch_start", "on_batch_end", "on_epoch_end", "on_fit_end")
DEFAULT_T = 4  # time steps of static samples when T is not given
MONITOR_BATCHES = 4  # validation batches whose synaptic operations are counted (snn.monitor) each epoch
# settings that may change when a run is resumed
_RESUMABLE = ("epochs",)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


class FitResult(dict):
    """The summary of a run (a dict; keys also read as attributes): final and best validation metrics,
    ``history`` (per epoch), timing, peak memory, firing rates, warnings, ``checkpoint``."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class _Stop(Exception):
    """A callback asked the run to end after this batch."""


def fit(model: nn.Module, train_data, val_data=None, **options) -> FitResult:
    """Train ``model`` on ``train_data`` (validated on ``val_data`` after every epoch); see :class:`Fit` for the
    options. Returns the run's :class:`FitResult`."""
    return Fit(model, train_data, val_data, **options).run()


def _first_layer(model: nn.Module) -> str:
    for name, m in model.named_modules():
        if any(True for _ in m.parameters(recurse=False)):
            return f"{name or type(model).__name__!r} ({m})"
    return f"{type(model).__name__} (no layer with parameters)"


class Fit:
    """One training run (what :func:`fit` builds and runs; callbacks receive it).

    ``method``: a registered name (:func:`snn.train.methods.method_names`) or a Method, with
    ``method_options`` (``{'mode': 'O'}`` for OTTT_O, ``{'lam': 0.5}``). ``T``: time steps of static samples
    (default 4); for sequence data the data's own (a given T must match). ``encoding``: 'direct' or 'poisson'
    for static samples. ``sequence``: True/False overrides the data set's ``sequence``.
    ``optimizer``: 'adam' | 'adamw' | 'sgd' (with ``lr``, ``weight_decay``, ``momentum``), an Optimizer over
    the model's parameters, or a function ``params -> Optimizer``. ``schedule``: None (constant lr),
    'cosine' (to 0 over ``epochs``, stepped per epoch), or a function ``optimizer -> LRScheduler`` (stepped per
    epoch). ``amp``: None, 'bf16' or 'fp16' (CUDA). ``clip_grad``: max gradient norm. ``batch_size``: for a
    Dataset passed directly. ``checkpoint``: a directory; ``resume``: continue from it. ``progress``: a tqdm bar
    (None: only on a terminal). ``seed``: seeds torch/numpy/random and the sampling order. ``device``: default
    CUDA when available. ``log``: one line per epoch (None: silent). ``model_config``: what rebuilds the model
    (default: the config of a :func:`snn.models.get` model). ``val_name``: the history's prefix for validation
    metrics. ``train_config``/``extra``: stored in checkpoints as they are (the preset trainer's).
    """

    def __init__(self, model: nn.Module, train_data, val_data=None, *, method: str | Method = "bptt",
                 method_options: dict | None = None, T: int | None = None, epochs: int = 1, lr: float = 1e-3,
                 optimizer="adam", momentum: float = 0.9, weight_decay: float = 0.0, batch_size: int | None = None,
                 encoding: str = "direct", sequence: bool | None = None, amp: str | None = None,
                 clip_grad: float | None = None, schedule=None, checkpoint=None, resume=False,
                 progress: bool | None = None, callbacks=(), seed: int = 0, device=None,
                 log: Callable[[str], None] | None = print, model_config: dict | None = None,
                 val_name: str = "val", train_config: dict | None = None, extra: dict | None = None):
        self._check_options(model, T, epochs, lr, momentum, weight_decay, batch_size, encoding, sequence, amp,
                            clip_grad, schedule, optimizer, callbacks, seed, progress, resume, checkpoint)
        self.ctx = D.setup(None if device is None else str(device))
        self.log = log if self.ctx.is_main else None
        self.epochs, self.lr, self.encoding, self.val_name = int(epochs), float(lr), encoding, val_name
        self.clip_grad, self.amp, self.progress = clip_grad, amp, progress
        self.callbacks = tuple(callbacks)
        self.checkpoint_dir = Path(checkpoint) if checkpoint is not None else None
        self.train_config, self.extra = train_config, dict(extra or {})
        self.stop, self.last_loss = False, math.nan
        self._sigint, self._consistent, self._batch_rng, self.epoch_rng = False, True, None, None
        self.model = model.to(self.ctx.device)
        self.layers = spiking_layers(self.model)
        self.model_config = self._model_config(model_config)
        self.amp_dtype = autocast_dtype(amp, self.ctx.device)
        self.scaler = make_scaler(amp, self.ctx.device)

        ckpt = self._find_checkpoint(resume)
        self.seed = int(seed)
        self.train = Source(train_data, name="train_data", shuffle=True, batch_size=batch_size, seed=seed,
                            world=self.ctx.world, rank=self.ctx.rank)
        self.val = None if val_data is None else Source(val_data, name="val_data", shuffle=False,
                                                        batch_size=batch_size, seed=seed, world=self.ctx.world,
                                                        rank=self.ctx.rank, evaluation=True)
        if epochs > 1 and self.train.kind == "iterator":
            raise ValueError(f"{self.train.why_not}, so it cannot give {epochs} epochs: pass a DataLoader, a list "
                             f"of batches or another re-iterable object, or epochs=1")
        name = self.train.attr("name", None)
        if isinstance(name, str) and name:
            self.extra.setdefault("dataset", name)  # which data set the checkpoint was trained on (snn deploy)
        self.sequence = bool(self.train.attr("sequence", False)) if sequence is None else bool(sequence)
        self.T = T if (T is not None or self.sequence) else DEFAULT_T
        x_probe = self._probe()
        self.method = make_method(method, model=self.model, x_seq=x_probe, **dict(method_options or {}))
        self.method_options = dict(method_options or {})
        self.optimizer = self._make_optimizer(optimizer, momentum, weight_decay)
        self.schedule_name = schedule if isinstance(schedule, str) or schedule is None else "custom"
        self.scheduler = self._make_scheduler(schedule)
        self.settings = dict(method=self.method.describe(), method_options=self._plain(self.method_options),
                             T=self.T, epochs=self.epochs, lr=self.lr, encoding=encoding, sequence=self.sequence,
                             optimizer=optimizer if isinstance(optimizer, str) else type(self.optimizer).__name__,
                             momentum=float(momentum), weight_decay=float(weight_decay), amp=amp,
                             clip_grad=clip_grad, schedule=self.schedule_name, seed=self.seed)
        if self.ctx.enabled:
            D.broadcast_model(self.model)
        self.history: dict = {k: [] for k in ("train_loss", "train_acc", f"{val_name}_loss", f"{val_name}_acc",
                                              "epoch_seconds", "lr")}
        self.history.update(firing_rate={}, train_firing_rate={}, activity_warnings=[])
        self.epoch, self.batch, self.partial = 0, 0, None
        self.memory = PeakMemory(self.ctx.device)
        self.resumed_from = None
        if ckpt is not None:
            self._restore(ckpt)
        else:
            seed_everything(self.seed)

    # -- checks and set-up ---------------------------------------------------------------------------------
    @staticmethod
    def _check_options(model, T, epochs, lr, momentum, weight_decay, batch_size, encoding, sequence, amp,
                       clip_grad, schedule, optimizer, callbacks, seed, progress, resume, checkpoint):
        if not isinstance(model, nn.Module):
            raise TypeError(f"fit: model must be a torch nn.Module, got {type(model).__name__}")
        if not spiking_layers(model):
            raise ValueError(f"fit: the model ({type(model).__name__}) has no snn neuron, so it is not a spiking "
                             f"network: put spiking layers (snn.neuron.LIF, IF, PLIF, ALIF, ..., or the DSR neurons) "
                             f"between its synapses, or build one with snn.models.get(...)")
        if T is not None:
            checks.check_int(T, "T", "fit", 1)
        checks.check_int(epochs, "epochs", "fit", 1)
        checks.check_range(lr, "lr", "fit", low=0.0, low_open=True)
        checks.check_range(momentum, "momentum", "fit", low=0.0, high=1.0)
        checks.check_range(weight_decay, "weight_decay", "fit", low=0.0)
        if batch_size is not None:
            checks.check_int(batch_size, "batch_size", "fit", 1)
        if clip_grad is not None:
            checks.check_range(clip_grad, "clip_grad", "fit", low=0.0, low_open=True)
        checks.check_int(seed, "seed", "fit", 0)
        if encoding not in ENCODINGS:
            raise ValueError(f"fit: unknown encoding {encoding!r}; accepted: {', '.join(ENCODINGS)}")
        if sequence is not None:
            checks.check_bool(sequence, "sequence", "fit")
        if progress is not None:
            checks.check_bool(progress, "progress", "fit")
        if amp not in AMP_MODES:
            raise ValueError(f"fit: amp must be None, 'bf16' or 'fp16', got {amp!r}")
        if isinstance(schedule, str) and schedule not in SCHEDULES:
            raise ValueError(f"fit: unknown schedule {schedule!r}; accepted: None, 'cosine' or a function "
                             f"optimizer -> LRScheduler")
        if schedule is not None and not isinstance(schedule, str) and not callable(schedule):
            raise TypeError(f"fit: schedule must be None, 'cosine' or a function optimizer -> LRScheduler, got "
                            f"{type(schedule).__name__}")
        if isinstance(optimizer, str) and optimizer not in OPTIMIZERS:
            raise ValueError(f"fit: unknown optimizer {optimizer!r}; accepted: {', '.join(OPTIMIZERS)}, an "
                             f"Optimizer, or a function params -> Optimizer")
        if isinstance(resume, bool) and resume and checkpoint is None:
            raise ValueError("fit: resume=True needs checkpoint=DIR, the directory holding the checkpoint")
        for cb in callbacks:
            if not any(callable(getattr(cb, h, None)) for h in CALLBACK_HOOKS):
                raise TypeError(f"fit: callback {cb!r} has none of the hooks {', '.join(CALLBACK_HOOKS)}")

    def _model_config(self, given: dict | None) -> dict:
        if given is not None:
            return dict(given)
        try:
            from ..models import model_config

            return model_config(self.model)
        except (ImportError, ValueError, TypeError):
            return {"model": CUSTOM_MODEL, "class": type(self.model).__name__}

    @staticmethod
    def _plain(d: dict) -> dict:
        return {k: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)) for k, v in d.items()}

    def _probe(self) -> torch.Tensor:
        """Run two samples of the first training batch through the model (eval mode, no gradient, RNGs
        untouched); check the output, the classes and the labels. Returns the encoded sample ``[T, b, ...]``."""
        x, y, tm = self.train.peek()
        state = rng_state()
        per_step = list(x.shape[2:] if self.sequence else x.shape[1:])
        try:
            x_seq = time_major(x[:2] if not tm else x[:, :2], T=self.T, encoding=self.encoding,
                               sequence=self.sequence, is_time_major=tm, where="train_data")
        finally:
            set_rng_state(state)
        if self.T is None:
            self.T = int(x_seq.shape[0])
        x_seq = x_seq.to(self.ctx.device)
        entered: list[str] = []
        hooks = [m.register_forward_pre_hook(lambda mod, args, name=name: entered.append(name))
                 for name, m in self.model.named_modules() if name and not any(True for _ in m.children())]
        was_training = self.model.training
        self.model.eval()
        try:
            reset(self.model)
            with torch.no_grad():
                out = self.model(x_seq)
        except (RuntimeError, ValueError, TypeError, IndexError) as e:
            where = f"; the error arose in layer {entered[-1]!r}" if entered else ""
            name = self.train.attr("name", None)
            raise ValueError(f"the model cannot take train_data{f' (data set {name!r})' if name else ''}: its "
                             f"samples have the per-step shape {per_step} (the model gets [T={x_seq.shape[0]}, "
                             f"B, {', '.join(map(str, per_step))}]); the model's first layer is "
                             f"{_first_layer(self.model)}{where}: {type(e).__name__}: {e}") from None
        finally:
            for h in hooks:
                h.remove()
            reset(self.model)
            self.model.train(was_training)
            set_rng_state(state)
        if not isinstance(out, torch.Tensor) or out.dim() != 3 or tuple(out.shape[:2]) != tuple(x_seq.shape[:2]):
            got = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"fit expects the model to return its readout at every step, [T, B, classes] = "
                             f"[{x_seq.shape[0]}, {x_seq.shape[1]}, classes], for an input {list(x_seq.shape)}; "
                             f"it returned {got}")
        self.num_outputs = int(out.shape[-1])
        self._check_classes(y)
        return x_seq

    def _check_classes(self, first_y: torch.Tensor) -> None:
        c = self.num_outputs
        for src in (self.train, self.val):
            if src is None:
                continue
            n = src.attr("num_classes", None)
            if isinstance(n, int) and n > c:
                raise ValueError(f"{src.name} has {n} classes (its data set's num_classes) but the model has only "
                                 f"{c} outputs; build the model with num_classes={n}")
            targets = src.known_targets()
            if targets is not None:
                check_labels(targets, c, f"{src.name} labels (the model has {c} outputs)")
        check_labels(first_y, c, f"train_data labels (the model has {c} outputs)")

    def _make_optimizer(self, optimizer, momentum, weight_decay):
        params = [p for p in self.model.parameters() if p.requires_grad]
        if isinstance(optimizer, torch.optim.Optimizer):
            return optimizer
        if callable(optimizer) and not isinstance(optimizer, str):
            opt = optimizer(params)
            if not isinstance(opt, torch.optim.Optimizer):
                raise TypeError(f"fit: the optimizer function returned a {type(opt).__name__}, not a "
                                f"torch.optim.Optimizer")
            return opt
        if optimizer == "adam":
            return torch.optim.Adam(params, lr=self.lr, weight_decay=weight_decay)
        if optimizer == "adamw":
            return torch.optim.AdamW(params, lr=self.lr, weight_decay=weight_decay)
        return torch.optim.SGD(params, lr=self.lr, momentum=momentum, weight_decay=weight_decay)

    def _make_scheduler(self, schedule):
        if schedule is None:
            return None
        if schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=self.epochs)
        sched = schedule(self.optimizer)
        if not (hasattr(sched, "step") and hasattr(sched, "state_dict")):
            raise TypeError(f"fit: the schedule function returned a {type(sched).__name__}, not an LRScheduler")
        return sched

    # -- checkpoints ---------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return self.checkpoint_dir / CHECKPOINT_NAME if self.checkpoint_dir else None

    def _find_checkpoint(self, resume):
        if isinstance(resume, dict):
            return resume
        if not resume:
            return None
        if not self.checkpoint_path.is_file():
            if self.log:
                self.log(f"no checkpoint in {self.checkpoint_dir}; starting from scratch")
            return None
        return load_checkpoint(self.checkpoint_path, require=("model", "optimizer", "rng", "epoch", "batch",
                                                               "history"))

    def state(self) -> dict:
        return {"train_config": self.train_config if self.train_config is not None else self.settings,
                "model_config": self.model_config, "fit": self.settings,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "rng": self._batch_rng if self.batch else rng_state(),
                "epoch_rng": self.epoch_rng if self.batch else None, "epoch": self.epoch,
                "batch": self.batch, "partial": self.partial, "history": self.history, **self.extra}

    def save(self, path=None) -> Path | None:
        """Write the checkpoint (rank 0 only) and history.json beside it; returns its path."""
        path = path or self.checkpoint_path
        if path is None or not self.ctx.is_main:
            return None
        save_checkpoint(path, self.state())
        atomic_write_json(Path(path).with_name("history.json"), self.history)
        return Path(path)

    def _restore(self, ckpt: dict) -> None:
        where = self.checkpoint_path or "the checkpoint"
        check_same_model(ckpt["model"], self.model, where)
        stored = ckpt.get("fit")
        if stored is not None:
            differ = [f"{k}: {self.settings[k]!r} (checkpoint {stored[k]!r})" for k in self.settings
                      if k in stored and k not in _RESUMABLE and stored[k] != self.settings[k]]
            if differ:
                raise ValueError(f"resume: these settings differ from the run in {where}: {'; '.join(differ)}; "
                                 f"use the checkpoint's, or start a new run")
        if ckpt["batch"] and self.train.kind == "iterator":
            raise ValueError(f"cannot resume {where} inside epoch {ckpt['epoch'] + 1}: {self.train.why_not}")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt.get("scheduler"):
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.history = ckpt["history"]
        self.epoch, self.batch, self.partial = ckpt["epoch"], ckpt["batch"], ckpt["partial"]
        self.epoch_rng = ckpt.get("epoch_rng")
        self._batch_rng = ckpt["rng"] if self.batch else None
        set_rng_state(ckpt["rng"])
        before = (stored or ckpt.get("train_config") or {}).get("epochs", self.epochs)
        if self.schedule_name == "cosine" and before != self.epochs:
            self._stretch_schedule()
        self.resumed_from = (self.epoch, self.batch)
        if self.log:
            at = f"epoch {self.epoch}" + (f", batch {self.batch}" if self.batch else "")
            self.log(f"resumed from {where} after {at}")

    def _stretch_schedule(self) -> None:
        """Resuming with a different ``epochs``: the cosine schedule continues over the new length,
        lr = eta_min + (base_lr - eta_min)·(1 + cos(π·epoch/epochs))/2."""
        sched = self.scheduler
        sched.T_max = self.epochs
        for group, base in zip(self.optimizer.param_groups, sched.base_lrs):
            group["lr"] = sched.eta_min + (base - sched.eta_min) * (1 + math.cos(math.pi * self.epoch / sched.T_max)) / 2
        sched._last_lr = [g["lr"] for g in self.optimizer.param_groups]
        if self.log:
            self.log(f"epochs changed to {self.epochs}: the cosine schedule now spans {self.epochs} epochs")

    # -- one epoch -----------------------------------------------------------------------------------------
    def _sync(self):
        if self.ctx.enabled:
            D.all_reduce_grads(self.model)

    def _bar(self, total: int, initial: int, desc: str):
        from tqdm.auto import tqdm

        show = self.progress if self.progress is not None else sys.stdout.isatty()
        return tqdm(total=total or None, initial=initial, desc=desc, leave=False, dynamic_ncols=True,
                    disable=not (show and self.ctx.is_main))

    def _inputs(self, x, y, tm, source: Source, i: int):
        check_labels(y, self.num_outputs, f"{source.name} labels of batch {i + 1} in epoch {self.epoch + 1} "
                                          f"(the model has {self.num_outputs} outputs)")
        x = x.to(self.ctx.device, non_blocking=True)
        x_seq = time_major(x, T=self.T, encoding=self.encoding, sequence=self.sequence, is_time_major=tm,
                           where=source.name)
        return x_seq, y.to(self.ctx.device, non_blocking=True)

    def train_epoch(self) -> dict:
        """Train the running epoch (from ``self.batch`` on); returns its loss/accuracy/seconds/spike counts."""
        self.model.train()
        if self.batch == 0:
            self.epoch_rng = rng_state()
        p = self.partial or {"loss": 0.0, "correct": 0, "n": 0, "seconds": 0.0}
        start = time.perf_counter() - p["seconds"]
        batches = self.train.epoch(self.epoch, self.batch, self.epoch_rng if self.batch else None)
        bar = self._bar(len(self.train), self.batch, f"epoch {self.epoch + 1}/{self.epochs}")
        counter = SpikeCounter(self.model, p.get("spikes"))
        with bar, counter:
            for i, (x, y, denom, tm) in enumerate(batches, start=self.batch):
                x_seq, y = self._inputs(x, y, tm, self.train, i)
                step = Step(self.optimizer, denom=denom, sync=self._sync if self.ctx.enabled else None,
                            scaler=self.scaler, clip_grad=self.clip_grad, amp_dtype=self.amp_dtype,
                            device_type=self.ctx.device.type)
                self._consistent = False
                with self.memory:
                    loss, logits = train_step(self.model, self.method, x_seq, y, step)
                self._consistent = True
                if not math.isfinite(loss):
                    raise RuntimeError(f"the loss became {loss} at epoch {self.epoch + 1}, batch {i + 1}; lower the "
                                       f"learning rate (lr {self.lr:g})" + (" or clip the gradients (clip_grad)"
                                                                             if self.clip_grad is None else ""))
                self.last_loss = loss * denom / max(len(y), 1)
                p["loss"] += loss * denom  # loss is the local sum / global size
                p["correct"] += int((logits.argmax(1) == y).sum())
                p["n"] += len(y)
                p["spikes"] = counter.flush()
                self.batch = i + 1
                self._batch_rng = rng_state()  # what a checkpoint written before the next batch must hold
                p["seconds"] = time.perf_counter() - start
                self.partial = p
                if p["n"]:
                    bar.set_postfix(loss=f"{p['loss'] / p['n']:.3f}", acc=f"{p['correct'] / p['n']:.3f}")
                bar.update(1)
                self._call("on_batch_end")
                if self._sigint:
                    raise KeyboardInterrupt
                if self.stop:
                    raise _Stop
        names = list(counter.totals)
        sums = D.all_reduce_sum(torch.tensor([p["loss"], p["correct"], p["n"]] + flat_counts(counter.totals),
                                             dtype=torch.float64))
        seconds = time.perf_counter() - start
        if self.ctx.enabled:
            D.average_buffers(self.model, self.ctx.world)
        n = max(float(sums[2]), 1.0)
        spikes = {nm: [int(sums[3 + 2 * k]), int(sums[4 + 2 * k])] for k, nm in enumerate(names)}
        return {"train_loss": float(sums[0]) / n, "train_acc": float(sums[1]) / n, "epoch_seconds": seconds,
                "spikes": spikes}

    @torch.no_grad()
    def evaluate(self, source: Source | None = None) -> dict:
        """Loss, accuracy and firing rate per spiking layer on ``source`` (the validation data), summed over
        processes; with :mod:`snn.monitor`, synaptic operations and energy per sample."""
        source = source or self.val
        self.model.eval()
        loss = correct = n = 0.0
        ops = _op_counter(self.model)
        with SpikeCounter(self.model) as counter:
            for i, (x, y, _, tm) in enumerate(source.epoch(0)):
                x_seq, y = self._inputs(x, y, tm, source, i)
                counting = ops if ops is not None and i < MONITOR_BATCHES else nullcontext()
                with counting, Step(denom=1, amp_dtype=self.amp_dtype, device_type=self.ctx.device.type).autocast():
                    logits = self.method.logits(self.model, x_seq)
                loss += float(F.cross_entropy(full_precision(logits), y, reduction="sum"))
                correct += float((logits.argmax(1) == y).sum())
                n += len(y)
        reset(self.model)
        names = list(counter.totals)
        counts = torch.tensor([loss, correct, n] + flat_counts(counter.totals), dtype=torch.float64)
        D.all_reduce_sum(counts)
        total = max(float(counts[2]), 1.0)
        v = self.val_name
        out = {f"{v}_loss": float(counts[0]) / total, f"{v}_acc": float(counts[1]) / total,
               "firing_rate": {nm: float(counts[3 + 2 * k] / max(float(counts[4 + 2 * k]), 1.0))
                               for k, nm in enumerate(names)}}
        if ops is not None:
            out.update(_per_sample(ops))
        return out

    def _record(self, train: dict, val: dict | None) -> list[dict]:
        """Append the epoch to the history; returns its silent/saturated layers (also recorded)."""
        h = self.history
        for k in ("train_loss", "train_acc", "epoch_seconds"):
            h[k].append(train[k])
        h["lr"].append(self.optimizer.param_groups[0]["lr"])
        if val is not None:
            for k, value in val.items():
                if k == "firing_rate":
                    for name, r in value.items():
                        h["firing_rate"].setdefault(name, []).append(r)
                else:
                    h.setdefault(k, []).append(value)
        for name, (spikes, steps) in train["spikes"].items():
            h["train_firing_rate"].setdefault(name, []).append(spikes / max(steps, 1))
        problems = activity_problems(train["spikes"], self.layers, self.epoch + 1)
        h["activity_warnings"].extend(problems)
        return problems

    def _warn(self, problems: list[dict]) -> None:
        if self.ctx.is_main:
            for p in problems:
                warnings.warn(p["message"], warning_class(p["kind"]), stacklevel=4)

    def _call(self, hook: str) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if callable(fn):
                fn(self)

    # -- the run -------------------------------------------------------------------------------------------
    def run(self) -> FitResult:
        """Train up to ``epochs`` epochs; returns the :class:`FitResult`."""
        self._consistent = True
        old_handler = self._install_sigint()
        finite_checks = checks.finite_checks_enabled()
        checks.set_finite_checks(False)  # per-layer NaN scans cost ~10% on CPU; the loss is checked instead
        try:
            self._call("on_fit_start")
            while self.epoch < self.epochs and not self.stop:
                self._call("on_epoch_start")
                train = self.train_epoch()
                val = self.evaluate() if self.val is not None else None
                self._warn(self._record(train, val))
                if self.scheduler is not None:
                    self.scheduler.step()
                self.epoch, self.batch, self.partial = self.epoch + 1, 0, None
                self.save()
                if self.log:
                    self.log(self._epoch_line())
                self._call("on_epoch_end")
        except _Stop:
            path = self.save()
            if self.log:
                self.log(f"stopped by a callback at epoch {self.epoch + 1}, batch {self.batch}"
                         + (f"; checkpoint saved to {path}" if path else ""))
        except KeyboardInterrupt:
            if self._consistent:
                path = self.save()
                if self.log and path:
                    self.log(f"interrupted: checkpoint saved to {path} (epoch {self.epoch}, batch {self.batch}); "
                             f"continue with resume")
            elif self.log:
                self.log("interrupted inside an update: the checkpoint of the last completed epoch is kept")
            raise
        finally:
            checks.set_finite_checks(finite_checks)
            if old_handler is not None:
                signal.signal(signal.SIGINT, old_handler)
        self._call("on_fit_end")
        return self.result()

    def _install_sigint(self):
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame):
            if self._sigint or self._consistent:  # second Ctrl-C, or between batches: stop now
                raise KeyboardInterrupt
            self._sigint = True

        return signal.signal(signal.SIGINT, handler)

    def _epoch_line(self) -> str:
        h, v = self.history, self.val_name
        line = (f"epoch {self.epoch}/{self.epochs}  train loss {h['train_loss'][-1]:.4f} acc "
                f"{h['train_acc'][-1]:.4f}")
        if h[f"{v}_acc"]:
            rates = ", ".join(f"{r[-1]:.3f}" for r in h["firing_rate"].values())
            line += (f"  {v} loss {h[f'{v}_loss'][-1]:.4f} acc {h[f'{v}_acc'][-1]:.4f}  "
                     f"{h['epoch_seconds'][-1]:.1f} s  firing rates [{rates}]")
        else:
            line += f"  {h['epoch_seconds'][-1]:.1f} s"
        return line

    def result(self) -> FitResult:
        h, v = self.history, self.val_name
        secs = h["epoch_seconds"]
        last = (lambda k: h[k][-1] if h.get(k) else math.nan)
        backends = sorted({getattr(m, "last_backend", None) or type(m).__name__ for m in self.layers.values()})
        out = FitResult(
            method=self.method.describe(), T=self.T, epochs=self.epoch, world_size=self.ctx.world,
            parameters=sum(p.numel() for p in self.model.parameters()),
            train_acc=last("train_acc"), train_loss=last("train_loss"),
            **{f"{v}_acc": last(f"{v}_acc"), f"best_{v}_acc": max(h[f"{v}_acc"]) if h[f"{v}_acc"] else math.nan,
               f"{v}_loss": last(f"{v}_loss")},
            seconds_per_epoch=sum(secs) / len(secs) if secs else math.nan, train_seconds=sum(secs),
            peak_memory_mb=self.memory.peak_mb, peak_memory_kind=self.memory.kind, peak_rss_mb=peak_rss_mb(),
            firing_rate={k: r[-1] for k, r in h["firing_rate"].items()},
            activity_warnings=[w["message"] for w in h["activity_warnings"]],
            backend=",".join(backends), checkpoint=str(self.checkpoint_path) if self.checkpoint_path else None,
            history=h)
        for k in ("sops_per_sample", "macs_per_sample", "energy_j_per_sample"):
            if h.get(k):
                out[k] = h[k][-1]
        return out


def _op_counter(model: nn.Module):
    """An :class:`snn.monitor.OpCounter` on ``model`` when that module is installed, else None."""
    try:
        from ..monitor import OpCounter
    except ImportError:
        return None
    return OpCounter(model)


def _per_sample(ops) -> dict:
    """Synaptic operations, MACs and energy per sample counted by ``ops`` (summed over processes)."""
    keys = ("sops", "macs", "energy_j")
    summary = ops.summary() if ops.passes else dict.fromkeys(keys + ("samples",), 0)
    totals = D.all_reduce_sum(torch.tensor([float(summary[k]) for k in keys + ("samples",)], dtype=torch.float64))
    samples = max(float(totals[-1]), 1.0)
    return {f"{k}_per_sample": float(t) / samples for k, t in zip(keys, totals[:-1])}

