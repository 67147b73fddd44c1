"""The trainer: data, model, optimizer, schedule, epochs, evaluation, checkpoints and resume.

One run = :class:`TrainConfig` → :meth:`Trainer.fit` → a summary dict. Determinism: the model is built
after seeding torch/numpy/random with ``seed``; the shuffle order of epoch e comes from its own generator
seeded with (seed, e); a checkpoint (``<out>/checkpoint.pt``, written atomically after every epoch)
holds model, optimizer, scheduler, RNG states, epoch and history, so ``resume=True`` continues exactly
where the run stopped. Ctrl-C (SIGINT) is deferred to the end of the running batch, a checkpoint with
the batch position is written, then ``KeyboardInterrupt`` is raised; resuming from it continues that epoch.

Checks: the labels must be class indices in ``[0, outputs of the model)`` (an error before training starts).
Every training epoch counts each spiking layer's spikes (history ``train_firing_rate``, spikes per
neuron-step); a layer that fired at under :data:`QUIET_RATE` (0.1%) of its neuron-steps in the whole epoch,
or at over 99.9% of them, gets a :class:`SilentLayerWarning` or :class:`SaturatedLayerWarning` naming its
module path and the likely fix, also recorded in history ``activity_warnings``.
"""
from __future__ import annotations

import math
import random
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checks, data, encoding
from ..data.images import check_labels as _check_label_range
from ..functional import reset
from ..io import atomic_write_json
from ..models import MODELS, build_model, spiking_layers
from . import distributed as D
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import TrainConfig
from .dsr import DSRNeuron
from .memory import PeakMemory, peak_rss_mb
from .methods import make_method

__all__ = ["Trainer", "CHECKPOINT_NAME", "SilentLayerWarning", "SaturatedLayerWarning", "SpikeCounter",
           "activity_problems", "QUIET_RATE"]

CHECKPOINT_NAME = "checkpoint.pt"
_HISTORY_KEYS = ("train_loss", "train_acc", "test_loss", "test_acc", "epoch_seconds", "lr")
# Fields that may differ between the run that wrote a checkpoint and the one resuming it.
_RESUMABLE_OVERRIDES = ("epochs", "out", "data_dir", "threads", "progress")


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


class SilentLayerWarning(UserWarning):
    """A spiking layer (almost) never fired during a whole training epoch."""


class SaturatedLayerWarning(UserWarning):
    """A spiking layer fired at (almost) every neuron and time step of a whole training epoch."""


# A layer is silent when it fires at under QUIET_RATE of its neuron-steps in a training epoch (one spike per
# neuron in 250 samples at T=4: no signal), saturated when at over 1 - QUIET_RATE of them.
QUIET_RATE = 1e-3
_ACTIVITY = {
    "silent": (SilentLayerWarning, "is silent in epoch {epoch}: {spikes:,} spikes in {steps:,} neuron-steps (rate "
               "{rate:.2g}), so it passes almost no signal on and its surrogate gradient is tiny; likely fix: raise "
               "the input scale or the weights feeding it, lower v_threshold, raise the learning rate (--lr), or "
               "check the encoding"),
    "saturated": (SaturatedLayerWarning, "is saturated in epoch {epoch}: {spikes:,} spikes in {steps:,} neuron-steps "
                  "(rate {rate:.4g}), so its output carries almost no information; likely fix: lower the input scale "
                  "or the weights feeding it, raise v_threshold, lower the learning rate (--lr), or check the "
                  "encoding"),
}


def _spike_size(mod: nn.Module):
    """The value of one spike in ``mod``'s output: V_th for DSR neurons (out = V_th·S), else 1."""
    if isinstance(mod, DSRNeuron):
        return mod.v_threshold.detach().clamp_min(mod.v_threshold_min)
    return 1.0


class SpikeCounter:
    """Forward hooks that count, per spiking layer, its spikes and its neuron-steps (output elements).

    spikes = Σ out / spike size (a sum, about 8x cheaper than counting non-zeros on CPU). The hooks add on
    the layer's device; :meth:`flush` moves the counts into ``totals`` (``{name: [spikes, neuron_steps]}``,
    Python ints), one sync per call.
    """

    def __init__(self, model: nn.Module, totals: dict | None = None):
        self.layers = spiking_layers(model)
        self.totals = {name: [0, 0] for name in self.layers}
        for name, (spikes, steps) in (totals or {}).items():
            if name in self.totals:
                self.totals[name] = [int(spikes), int(steps)]
        self._pending: dict[str, torch.Tensor] = {}
        self.handles = []

    def __enter__(self):
        for name, m in self.layers.items():
            self.handles.append(m.register_forward_hook(self._hook(name)))
        return self

    def _hook(self, name):
        def hook(mod, args, out):
            spikes = out.detach().sum() / _spike_size(mod)
            self._pending[name] = spikes if name not in self._pending else self._pending[name] + spikes
            self.totals[name][1] += out.numel()
        return hook

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        self.handles.clear()
        self.flush()
        return False

    def flush(self) -> dict[str, list[int]]:
        for name, spikes in self._pending.items():
            self.totals[name][0] += round(float(spikes))
        self._pending.clear()
        return self.totals


def _flat_counts(totals: dict) -> list[int]:
    return [v for counts in totals.values() for v in counts]


def check_labels(y: torch.Tensor, num_outputs: int, split: str) -> None:
    """Labels must be integer class indices in ``[0, num_outputs)``, ``num_outputs`` being the model's
    number of outputs; checked before training, the error names the first bad label and the range."""
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise TypeError(f"{split} labels must be integer class indices, got dtype {y.dtype}")
    _check_label_range(y.cpu().numpy(), num_outputs, f"{split} labels (the model has {num_outputs} outputs)")


def activity_problems(totals: dict, layers: dict, epoch: int, quiet: float = QUIET_RATE) -> list[dict]:
    """The silent (rate = spikes / neuron-steps < ``quiet``) and saturated (rate > 1 - ``quiet``) layers among
    ``totals`` (``{name: [spikes, neuron_steps]}``), each as ``{epoch, layer, kind, message}``."""
    found = []
    for name, (spikes, steps) in totals.items():
        if steps == 0:
            continue
        rate = spikes / steps
        kind = "silent" if rate < quiet else "saturated" if rate > 1 - quiet else None
        if kind is None:
            continue
        layer = f"{name} ({type(layers[name]).__name__})"
        message = f"spiking layer {layer} " + _ACTIVITY[kind][1].format(epoch=epoch, spikes=int(spikes),
                                                                         steps=int(steps), rate=rate)
        found.append({"epoch": epoch, "layer": layer, "kind": kind, "message": message})
    return found


class Trainer:
    """Train a preset with BPTT, DSR or OTTT. ``log`` receives one line per epoch (rank 0 only);
    ``on_batch(trainer, i)`` is called after every batch (tests use it to interrupt).

    ``model`` trains your own network instead of the preset (input ``[T, B, ...]``, output
    ``[T, B, classes]``, state cleared by :func:`snn.functional.reset` or by the network itself); its
    checkpoints then cannot be rebuilt by :func:`load_model`, only loaded into the same network.
    """

    def __init__(self, config: TrainConfig, *, resume: bool = False, log=print, on_batch=None,
                 model: nn.Module | None = None):
        self.cfg = config.validate()
        self.ctx = D.setup()
        self.log = log if self.ctx.is_main else None
        self.on_batch = on_batch
        self._stop = False
        self._consistent = True
        self._batch_rng = None
        ckpt = self._find_checkpoint() if resume else None
        if ckpt is not None:
            self.cfg = self._merge_config(ckpt["train_config"])
        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        seed_everything(self.cfg.seed)
        self.dataset = data.resolve_name(self.cfg.dataset, self.cfg.data_dir)
        self.cfg = self.cfg.for_dataset(self.dataset)
        self.train_x, self.train_y = self._load("train", self.cfg.train_limit)
        self.test_x, self.test_y = self._load("test", self.cfg.test_limit)
        if model is None:
            num_classes = int(max(self.train_y.max(), self.test_y.max())) + 1
            self.model_config = self.cfg.model_config(self.train_x.shape[1:], max(num_classes, 10))
            model = build_model(self.model_config)
        else:
            self.model_config = {"model": "custom", "class": type(model).__name__}
        self.model = model.to(self.ctx.device)
        num_outputs = self._num_outputs()
        check_labels(self.train_y, num_outputs, "train")
        check_labels(self.test_y, num_outputs, "test")
        if self.ctx.enabled:
            D.broadcast_model(self.model)
        self.method = make_method(self.cfg.method, neuron=self.cfg.neuron, tau=self.cfg.tau,
                                  ottt_mode=self.cfg.ottt_mode, model=self.model)
        self.optimizer = self._make_optimizer()
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=self.cfg.epochs)
        self.history: dict = {k: [] for k in _HISTORY_KEYS}
        self.history.update(firing_rate={}, train_firing_rate={}, activity_warnings=[])
        self.epoch, self.batch, self.partial = 0, 0, None
        self.memory = PeakMemory(self.ctx.device)
        self.resumed_from = None
        if ckpt is not None:
            self._restore(ckpt)

    # -- set-up ---------------------------------------------------------------------------------------
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
        return load_checkpoint(self.checkpoint_path)

    def _merge_config(self, stored: dict) -> TrainConfig:
        merged = dict(stored)
        for k in _RESUMABLE_OVERRIDES:
            merged[k] = getattr(self.cfg, k)
        return TrainConfig.from_dict(merged).validate()

    def _load(self, split: str, limit):
        x, y = data.load(self.dataset, split, self.cfg.data_dir)
        if limit is not None:
            x, y = x[:limit], y[:limit]
        return x, y

    @torch.no_grad()
    def _num_outputs(self) -> int:
        """Classes the model scores: the preset's ``num_classes``, or the last dimension of a custom model's
        output for one training sample (eval mode, direct encoding, state reset before and after)."""
        if self.model_config.get("model") in MODELS:
            return int(self.model_config["num_classes"])
        was_training = self.model.training
        self.model.eval()
        reset(self.model)
        out = self.model(encoding.direct(self.train_x[:1].to(self.ctx.device), self.cfg.T))
        reset(self.model)
        self.model.train(was_training)
        return int(out.shape[-1])

    def _make_optimizer(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        return torch.optim.SGD(params, lr=self.cfg.lr, momentum=self.cfg.momentum, weight_decay=self.cfg.weight_decay)

    # -- checkpoints ----------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"train_config": self.cfg.to_dict(), "model_config": self.model_config,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": self._batch_rng if self.batch else rng_state(), "epoch": self.epoch,
                "batch": self.batch, "partial": self.partial, "history": self.history,
                "dataset": self.dataset}

    def save(self, path=None) -> Path | None:
        """Write the checkpoint (rank 0 only); returns its path."""
        path = path or self.checkpoint_path
        if path is None or not self.ctx.is_main:
            return None
        save_checkpoint(path, self.state())
        atomic_write_json(Path(path).with_name("history.json"), self.history)
        return Path(path)

    def _restore(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.history = ckpt["history"]
        self.epoch, self.batch, self.partial = ckpt["epoch"], ckpt["batch"], ckpt["partial"]
        set_rng_state(ckpt["rng"])
        if ckpt["train_config"]["epochs"] != self.cfg.epochs:
            self._stretch_schedule()
        self.resumed_from = (self.epoch, self.batch)
        if self.log:
            where = f"epoch {self.epoch}" + (f", batch {self.batch}" if self.batch else "")
            self.log(f"resumed from {self.checkpoint_path} after {where}")

    def _stretch_schedule(self) -> None:
        """Resuming with a different --epochs: the cosine schedule continues over the new length,
        lr = eta_min + (base_lr - eta_min)·(1 + cos(π·epoch/epochs))/2."""
        sched = self.scheduler
        sched.T_max = self.cfg.epochs
        for group, base in zip(self.optimizer.param_groups, sched.base_lrs):
            group["lr"] = sched.eta_min + (base - sched.eta_min) * (1 + math.cos(math.pi * self.epoch / sched.T_max)) / 2
        sched._last_lr = [g["lr"] for g in self.optimizer.param_groups]
        if self.log:
            self.log(f"epochs changed to {self.cfg.epochs}: the cosine schedule now spans {self.cfg.epochs} epochs")

    # -- data -----------------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.ctx.device, non_blocking=True)
        if self.cfg.encoding == "poisson":
            return encoding.poisson(x, self.cfg.T)
        return encoding.direct(x, self.cfg.T)

    def _epoch_batches(self, epoch: int) -> list[torch.Tensor]:
        gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        return D.global_batches(len(self.train_x), self.cfg.batch_size, self.ctx.world, gen)

    # -- loops ----------------------------------------------------------------------------------------
    def _sync(self):
        if self.ctx.enabled:
            D.all_reduce_grads(self.model)

    def _progress(self, total: int, initial: int, desc: str):
        from tqdm.auto import tqdm

        show = self.cfg.progress if self.cfg.progress is not None else sys.stdout.isatty()
        return tqdm(total=total, initial=initial, desc=desc, leave=False, disable=not (show and self.ctx.is_main),
                    dynamic_ncols=True)

    def train_epoch(self) -> dict:
        """Train the running epoch (from ``self.batch`` on); returns its train loss/accuracy/seconds."""
        self.model.train()
        batches = self._epoch_batches(self.epoch)
        p = self.partial or {"loss": 0.0, "correct": 0, "n": 0, "seconds": 0.0}
        start = time.perf_counter() - p["seconds"]
        bar = self._progress(len(batches), self.batch, f"epoch {self.epoch + 1}/{self.cfg.epochs}")
        counter = SpikeCounter(self.model, p.get("spikes"))
        with bar, counter:
            for i in range(self.batch, len(batches)):
                g = batches[i]
                idx = D.shard(g, self.ctx.rank, self.ctx.world)
                x_seq = self.encode(self.train_x[idx])
                y = self.train_y[idx].to(self.ctx.device)
                self._consistent = False
                with self.memory:
                    loss, logits = self.method.train_batch(self.model, x_seq, y, self.optimizer, float(len(g)),
                                                           self._sync)
                self._consistent = True
                if not math.isfinite(loss):
                    raise RuntimeError(f"the loss became {loss} at epoch {self.epoch + 1}, batch {i + 1}; "
                                             f"lower the learning rate (--lr {self.cfg.lr})")
                p["loss"] += loss * len(g)  # loss is the local sum / global size
                p["correct"] += int((logits.argmax(1) == y).sum())
                p["n"] += len(idx)
                p["spikes"] = counter.flush()
                self.batch = i + 1
                self._batch_rng = rng_state()  # what a checkpoint written before the next batch must hold
                p["seconds"] = time.perf_counter() - start
                self.partial = p
                if p["n"]:
                    bar.set_postfix(loss=f"{p['loss'] / p['n']:.3f}", acc=f"{p['correct'] / p['n']:.3f}")
                bar.update(1)
                if self.on_batch is not None:
                    self.on_batch(self, i)
                if self._stop:
                    raise KeyboardInterrupt
        names = list(counter.totals)
        sums = D.all_reduce_sum(torch.tensor([p["loss"], p["correct"], p["n"]] + _flat_counts(counter.totals),
                                             dtype=torch.float64))
        seconds = time.perf_counter() - start
        if self.ctx.enabled:
            D.average_buffers(self.model, self.ctx.world)
        n = max(float(sums[2]), 1.0)
        spikes = {nm: [int(sums[3 + 2 * k]), int(sums[4 + 2 * k])] for k, nm in enumerate(names)}
        return {"train_loss": float(sums[0]) / n, "train_acc": float(sums[1]) / n, "epoch_seconds": seconds,
                "spikes": spikes}

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor | None = None, y: torch.Tensor | None = None, batch_size: int = 512) -> dict:
        """Test loss, accuracy and firing rate per spiking layer (sharded over ranks, then summed)."""
        x = self.test_x if x is None else x
        y = self.test_y if y is None else y
        self.model.eval()
        idx_all = D.shard(torch.arange(len(x)), self.ctx.rank, self.ctx.world)
        loss = correct = 0.0
        with SpikeCounter(self.model) as counter:
            for i in range(0, len(idx_all), batch_size):
                idx = idx_all[i:i + batch_size]
                yb = y[idx].to(self.ctx.device)
                logits = self.method.logits(self.model, self.encode(x[idx]))
                loss += float(F.cross_entropy(logits, yb, reduction="sum"))
                correct += float((logits.argmax(1) == yb).sum())
        reset(self.model)
        names = list(counter.totals)
        counts = torch.tensor([loss, correct, len(idx_all)] + _flat_counts(counter.totals), dtype=torch.float64)
        D.all_reduce_sum(counts)
        n = max(float(counts[2]), 1.0)
        rates = {nm: float(counts[3 + 2 * k] / max(float(counts[4 + 2 * k]), 1.0)) for k, nm in enumerate(names)}
        return {"test_loss": float(counts[0]) / n, "test_acc": float(counts[1]) / n, "firing_rate": rates}

    def _record(self, train: dict, test: dict) -> list[dict]:
        """Append the epoch to the history; returns its silent/saturated layers (also recorded)."""
        h = self.history
        for k in ("train_loss", "train_acc", "epoch_seconds"):
            h[k].append(train[k])
        h["test_loss"].append(test["test_loss"])
        h["test_acc"].append(test["test_acc"])
        h["lr"].append(self.optimizer.param_groups[0]["lr"])
        for name, r in test["firing_rate"].items():
            h["firing_rate"].setdefault(name, []).append(r)
        for name, (spikes, steps) in train["spikes"].items():
            h.setdefault("train_firing_rate", {}).setdefault(name, []).append(spikes / max(steps, 1))
        problems = activity_problems(train["spikes"], spiking_layers(self.model), self.epoch + 1)
        h.setdefault("activity_warnings", []).extend(problems)
        return problems

    def _warn(self, problems: list[dict]) -> None:
        if not self.ctx.is_main:
            return
        for p in problems:
            warnings.warn(p["message"], _ACTIVITY[p["kind"]][0], stacklevel=3)

    # -- the run --------------------------------------------------------------------------------------
    def fit(self) -> dict:
        """Train up to ``cfg.epochs`` epochs; returns the summary dict."""
        self._consistent = True
        old_handler = self._install_sigint()
        finite_checks = checks.finite_checks_enabled()
        checks.set_finite_checks(False)  # per-layer NaN scans cost ~10% on CPU; the loss is checked instead
        try:
            while self.epoch < self.cfg.epochs:
                train = self.train_epoch()
                test = self.evaluate()
                self._warn(self._record(train, test))
                self.scheduler.step()
                self.epoch, self.batch, self.partial = self.epoch + 1, 0, None
                self.save()
                if self.log:
                    self.log(self._epoch_line())
        except KeyboardInterrupt:
            if self._consistent:
                path = self.save()
                if self.log and path:
                    self.log(f"interrupted: checkpoint saved to {path} (epoch {self.epoch}, batch {self.batch}); "
                             f"continue with --resume")
            elif self.log:
                self.log("interrupted inside an update: the checkpoint of the last completed epoch is kept")
            raise
        finally:
            checks.set_finite_checks(finite_checks)
            if old_handler is not None:
                signal.signal(signal.SIGINT, old_handler)
        return self.summary()

    def _install_sigint(self):
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame):
            if self._stop or self._consistent:  # second Ctrl-C, or between batches: stop now
                raise KeyboardInterrupt
            self._stop = True

        return signal.signal(signal.SIGINT, handler)

    def _epoch_line(self) -> str:
        h = self.history
        rates = ", ".join(f"{v[-1]:.3f}" for v in h["firing_rate"].values())
        return (f"epoch {self.epoch}/{self.cfg.epochs}  train loss {h['train_loss'][-1]:.4f} acc "
                f"{h['train_acc'][-1]:.4f}  test loss {h['test_loss'][-1]:.4f} acc {h['test_acc'][-1]:.4f}  "
                f"{h['epoch_seconds'][-1]:.1f} s  firing rates [{rates}]")

    def summary(self) -> dict:
        h = self.history
        neurons = spiking_layers(self.model).values()
        backends = sorted({getattr(m, "last_backend", None) or "dsr" for m in neurons})
        secs = h["epoch_seconds"]
        return {
            "dataset": self.dataset, "model": self.cfg.model, "neuron": self.cfg.neuron, "method": self.cfg.method
            + (f"_{self.cfg.ottt_mode}" if self.cfg.method == "ottt" else ""),
            "T": self.cfg.T, "epochs": self.epoch, "batch_size": self.cfg.batch_size,
            "world_size": self.ctx.world, "train_samples": len(self.train_x), "test_samples": len(self.test_x),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "test_acc": h["test_acc"][-1] if h["test_acc"] else math.nan,
            "best_test_acc": max(h["test_acc"]) if h["test_acc"] else math.nan,
            "train_acc": h["train_acc"][-1] if h["train_acc"] else math.nan,
            "test_loss": h["test_loss"][-1] if h["test_loss"] else math.nan,
            "seconds_per_epoch": sum(secs) / len(secs) if secs else math.nan,
            "train_seconds": sum(secs),
            "peak_memory_mb": self.memory.peak_mb, "peak_memory_kind": self.memory.kind,
            "peak_rss_mb": peak_rss_mb(),
            "firing_rate": {k: v[-1] for k, v in h["firing_rate"].items()},
            "activity_warnings": [w["message"] for w in h.get("activity_warnings", [])],
            "backend": ",".join(backends), "threads": torch.get_num_threads(),
            "checkpoint": str(self.checkpoint_path) if self.checkpoint_path else None,
            "history": h,
        }
