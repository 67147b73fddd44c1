"""The two experiments behind ``snn hebbian`` and the benchmarks: SoftHebb + linear probe against its baselines,
and test-time adaptation under a corruption. Each returns a JSON-ready dict."""
from __future__ import annotations

import copy
import time

import torch

from ..checks import check_int
from ..data import load
from .corrupt import CORRUPTIONS, DEFAULT_SEVERITY, corrupt
from .modulated import modulated_cnn, train_source
from .net import softhebb_cnn
from .train import accuracy, calibrate_norms, extract_features, train_backprop, train_hebbian, train_probe
from .tta import METHODS, NoAdaptation, make_adapter, run_stream

__all__ = ["BASELINES", "load_split", "run_softhebb", "run_adaptation"]

BASELINES = ("random", "backprop")


def load_split(dataset: str, n_train: int | None, n_test: int | None, seed: int = 0, data_dir=None):
    """``(x_train, y_train, x_test, y_test)``: a random ``n_train`` of the training split (drawn with ``seed``)
    and the first ``n_test`` test images (all when None)."""
    x_tr, y_tr = load(dataset, "train", data_dir)
    x_te, y_te = load(dataset, "test", data_dir)
    if n_train is not None:
        n_train = check_int(n_train, "n_train", "load_split", 1)
        idx = torch.randperm(len(x_tr), generator=torch.Generator().manual_seed(seed))[:n_train]
        x_tr, y_tr = x_tr[idx], y_tr[idx]
    if n_test is not None:
        n_test = check_int(n_test, "n_test", "load_split", 1)
        x_te, y_te = x_te[:n_test], y_te[:n_test]
    return x_tr, y_tr, x_te, y_te


def _probe(net, x_tr, y_tr, x_te, y_te, epochs, seed, progress) -> dict:
    start = time.perf_counter()
    f_tr, f_te = extract_features(net, x_tr), extract_features(net, x_te)
    features_s = time.perf_counter() - start
    probe_s = train_probe(net, f_tr, y_tr, epochs, seed=seed, progress=progress)
    return {"accuracy": accuracy(net, f_te, y_te, features=True),
            "train_accuracy": accuracy(net, f_tr, y_tr, features=True),
            "features_s": features_s, "probe_s_per_epoch": probe_s}


def run_softhebb(dataset: str = "fashion-mnist", n_train: int | None = 10000, n_test: int | None = 5000,
                 channels=(32,), kernels=(5,), temperatures=(1.0,), powers=(0.7,), lrs=(0.08,), T: int | None = None,
                 neuron: str = "if", v_threshold: float = 1.0, encoding: str = "direct", hebbian_epochs: int = 1,
                 hebbian_batch_size: int = 16, probe_epochs: int = 10, baselines=BASELINES,
                 backprop_epochs: int = 1, seed: int = 0, data_dir=None, progress: bool = False,
                 fields_path=None) -> dict:
    """Train a SoftHebb network layer by layer, probe it linearly, and run the ``baselines``: the same
    architecture with its random initial weights frozen (``'random'``), trained end to end (``'backprop'``)."""
    bad = [b for b in baselines if b not in BASELINES]
    if bad:
        raise ValueError(f"baselines must be among {BASELINES}, got {bad}")
    x_tr, y_tr, x_te, y_te = load_split(dataset, n_train, n_test, seed, data_dir)
    arch = dict(in_shape=tuple(x_tr.shape[1:]), channels=channels, kernels=kernels, temperatures=temperatures,
                powers=powers, lrs=lrs, n_classes=int(y_tr.max()) + 1, T=T, neuron=neuron, v_threshold=v_threshold,
                encoding=encoding, seed=seed)
    torch.manual_seed(seed)
    net = softhebb_cnn(**arch)
    hebbian_s = train_hebbian(net, x_tr, hebbian_epochs, hebbian_batch_size, seed, progress)
    out = {"dataset": dataset, "n_train": len(x_tr), "n_test": len(x_te), "channels": list(channels),
           "spiking": T is not None, "T": T, "seed": seed, "hebbian_s_per_epoch": sum(hebbian_s),
           "weight_norms": [float(layer.norms().mean()) for layer in net.hebbian_layers()]}
    out["softhebb"] = _probe(net, x_tr, y_tr, x_te, y_te, probe_epochs, seed, progress)
    if fields_path:
        from .viz import receptive_fields

        out["fields"] = str(receptive_fields(net.hebbian_layers()[0].weight, fields_path,
                                             title=f"SoftHebb first-layer receptive fields ({dataset})"))
    if "random" in baselines:
        torch.manual_seed(seed)
        rnd = softhebb_cnn(**arch)
        calibrate_norms(rnd, x_tr)
        out["random"] = _probe(rnd, x_tr, y_tr, x_te, y_te, probe_epochs, seed, progress)
    if "backprop" in baselines:
        torch.manual_seed(seed)
        bp = softhebb_cnn(**arch)
        seconds = train_backprop(bp, x_tr, y_tr, backprop_epochs, seed=seed, progress=progress)
        out["backprop"] = {"accuracy": accuracy(bp, x_te, y_te), "s_per_epoch": seconds, "epochs": backprop_epochs}
    return out


def run_adaptation(dataset: str = "fashion-mnist", n_train: int | None = 10000, n_test: int | None = 5000,
                   corruptions=CORRUPTIONS, severities: dict | None = None, methods=METHODS,
                   hebbian_channels: int = 32, source_epochs: int = 2, hebbian_lr: float = 0.1,
                   modulator_lr: float = 1e-3, tent_lr: float = 1e-3, batch_size: int = 128, seed: int = 0,
                   data_dir=None, progress: bool = False) -> dict:
    """Train a :func:`~snn.hebbian.modulated.modulated_cnn` on the clean source data, then stream each corrupted
    test set through every adapter in ``methods``, each starting from the source model."""
    bad = [c for c in corruptions if c not in CORRUPTIONS]
    if bad:
        raise ValueError(f"corruptions must be among {CORRUPTIONS}, got {bad}")
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"methods must be among {METHODS}, got {bad}")
    severities = {**DEFAULT_SEVERITY, **(severities or {})}
    options = {"tent": {"lr": tent_lr}, "nhl": {"hebbian_lr": hebbian_lr, "modulator_lr": modulator_lr}}
    x_tr, y_tr, x_te, y_te = load_split(dataset, n_train, n_test, seed, data_dir)
    tiny = modulated_cnn(tuple(x_tr.shape[1:]), 1, top_channels=1)
    for m in methods:  # every adapter's options are checked before the source model trains
        make_adapter(m, tiny, **options.get(m, {}))
    source = modulated_cnn(tuple(x_tr.shape[1:]), hebbian_channels, n_classes=int(y_tr.max()) + 1, seed=seed)
    seconds = train_source(source, x_tr, y_tr, epochs=source_epochs, seed=seed, progress=progress)
    out = {"dataset": dataset, "n_train": len(x_tr), "n_test": len(x_te), "seed": seed, "batch_size": batch_size,
           "source": seconds, "clean": run_stream(NoAdaptation(source), x_te, y_te, batch_size), "corruptions": {}}
    for kind in corruptions:
        x_c = corrupt(x_te, kind, severities[kind], seed)
        row = {"severity": severities[kind]}
        for m in methods:
            adapter = make_adapter(m, copy.deepcopy(source), **options.get(m, {}))
            start = time.perf_counter()
            row[m] = run_stream(adapter, x_c, y_te, batch_size, progress)
            row[f"{m}_s"] = time.perf_counter() - start
        out["corruptions"][kind] = row
    return out
