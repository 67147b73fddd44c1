"""Linear probing of a liquid state machine on an event data set, against the same readout on raw events.

Both sides see the same samples and the same ``n_bins`` time bins: the raw baseline reads the event counts
``[n_bins, 2, H, W]`` of each sample (flattened), the LSM side reads the reservoir features (spike counts,
traces and the membrane potential per bin by default). Readout hyper-parameters are chosen on a validation part of the training set.
"""
from __future__ import annotations

import time

import torch

from ..data.events import load_event_dataset
from .device import ResistiveMemory
from .readout import make_readout
from .reservoir import LiquidStateMachine

__all__ = ["SENSOR_SHAPES", "VISION_KW", "RETINOTOPIC_KW", "PRESETS", "reservoir_for", "load_event_split",
           "raw_features", "linear_probe", "accuracy_se", "paired_difference"]

SENSOR_SHAPES = {"event-fmnist": (2, 34, 34), "event-digits": (2, 22, 22)}
# Reservoir settings for event vision (see benchmarks/RESULTS-archive.md, liquid state machines). VISION_KW, the
# default: dense mixed-sign smooth random input fields and a slow membrane (tau 30 steps = the whole 30-step
# sample), chosen on a split of the training set; RETINOTOPIC_KW: sparse local positive fields (tau 3), which a
# linear readout finds barely better than the raw events; the throughput benchmark against Brian2 uses it.
VISION_KW = dict(input_fields="smooth", input_smooth=1.5, input_scale=10.0, tau=30.0, p_rec=0.1,
                 spectral_radius=0.5)
RETINOTOPIC_KW = dict(input_fields="local", p_in=0.5, input_radius=3.0, tau=3.0, input_scale=3.0, p_rec=0.1,
                      spectral_radius=1.0)


PRESETS = {"vision": VISION_KW, "retinotopic": RETINOTOPIC_KW}


def reservoir_for(dataset: str, n_neurons: int, device_model: ResistiveMemory | None = None, seed: int = 0,
                  preset: str = "vision", **kw) -> LiquidStateMachine:
    """A reservoir for an event vision set: the settings of ``preset`` (a name in ``PRESETS``) overridden by
    ``kw``."""
    if dataset not in SENSOR_SHAPES:
        raise ValueError(f"unknown event dataset {dataset!r}; accepted: {tuple(SENSOR_SHAPES)}")
    if preset not in PRESETS:
        raise ValueError(f"unknown reservoir preset {preset!r}; accepted: {tuple(PRESETS)}")
    shape = SENSOR_SHAPES[dataset]
    cfg = dict(PRESETS[preset], **kw)
    return LiquidStateMachine(shape[0] * shape[1] * shape[2], n_neurons, input_shape=shape,
                              device_model=device_model, seed=seed, **cfg)


def load_event_split(dataset: str, n_train: int | None, n_test: int | None, seed: int = 0):
    """``(x_train [T, n, C], y_train, x_test [T, m, C], y_test)``: flattened event counts, kept as uint8 (the
    full 60,000 event Fashion-MNIST samples are 4.2 GB so; the reservoir and :func:`raw_features` convert a
    block of samples at a time)."""
    xtr, ytr = load_event_dataset(dataset, "train", n=n_train, seed=seed)
    xte, yte = load_event_dataset(dataset, "test", n=n_test, seed=seed + 1)
    flat = lambda x: x.reshape(x.shape[0], x.shape[1], -1)  # noqa: E731
    return flat(xtr), ytr, flat(xte), yte


def raw_features(x: torch.Tensor, n_bins: int, block: int = 4096) -> torch.Tensor:
    """Raw event counts summed into ``n_bins`` equal time bins: ``[T, B, C]`` → ``[B, n_bins·C]`` float32
    (``block`` samples at a time)."""
    t_steps, b, c = x.shape
    edges = [round(k * t_steps / n_bins) for k in range(n_bins + 1)]
    out = torch.empty(b, n_bins * c)
    for i in range(0, b, block):
        xb = x[:, i:i + block].float()
        out[i:i + block] = torch.stack([xb[edges[k]:edges[k + 1]].sum(0) for k in range(n_bins)], 1).reshape(len(xb[0]), -1)
    return out


def _fit_predict(readout: str, ftr, ytr, fte, readout_kw: dict | None = None):
    """``(test predictions, fit seconds, chosen alpha or None)``."""
    t0 = time.perf_counter()
    r = make_readout(readout, **(readout_kw or {})).fit(ftr, ytr)
    return r.predict(fte), time.perf_counter() - t0, getattr(r, "alpha_", None)


def accuracy_se(correct: torch.Tensor) -> tuple[float, float]:
    """Accuracy and its standard error ``sqrt(p(1-p)/n)`` from a 0/1 vector of test outcomes."""
    p = float(correct.double().mean())
    return p, (p * (1 - p) / len(correct)) ** 0.5


def paired_difference(correct_a: torch.Tensor, correct_b: torch.Tensor) -> tuple[float, float]:
    """Accuracy difference a - b on the same test samples and its standard error ``std(d)/sqrt(n)`` with
    ``d_i = a_i - b_i`` (paired: only the samples where the two disagree contribute)."""
    d = correct_a.double() - correct_b.double()
    return float(d.mean()), float(d.std() / len(d) ** 0.5) if len(d) > 1 else 0.0


def linear_probe(data, n_neurons: int, *, dataset: str = "event-fmnist", readout: str = "ridge",
                 device_model: ResistiveMemory | None = None, n_bins: int = 3, seed: int = 0,
                 with_raw: bool = True, raw_predictions: torch.Tensor | None = None, with_input: bool = False,
                 keep_lsm: bool = False, readout_kw: dict | None = None, features: str = "all", **lsm_kw) -> dict:
    """Probe accuracy of an ``n_neurons`` reservoir on ``data = (x_train, y_train, x_test, y_test)``.

    ``with_raw``: also the same readout on the raw binned events (or reuse ``raw_predictions`` of an earlier
    call on the same data); ``with_input``: also the readout on [raw events, reservoir features] (an
    echo-state-network style readout that sees the input too). Accuracies come with standard errors, and
    LSM - raw with the paired standard error; ``raw_predictions`` (a tensor) is returned for reuse.
    ``readout_kw``: keyword arguments of the readout (e.g. ``alphas``, the ridge grid searched on the validation
    part), the same for every side (reused ``raw_predictions`` must come from the same ``readout_kw``).
    ``features``: the reservoir features (:data:`snn.lsm.FEATURES`); the default 'all' (spike counts, traces and
    the membrane potential at each bin's end) read out best on a split of the training set
    (benchmarks/RESULTS-archive.md, liquid state machines).
    """
    xtr, ytr, xte, yte = data
    lsm = reservoir_for(dataset, n_neurons, device_model, seed, **lsm_kw)
    t0 = time.perf_counter()
    ftr, fte = lsm.features(xtr, n_bins, features), lsm.features(xte, n_bins, features)
    sim_s = time.perf_counter() - t0
    steps = xtr.shape[0] * (xtr.shape[1] + xte.shape[1])
    pred, fit_s, alpha = _fit_predict(readout, ftr, ytr, fte, readout_kw)
    ok = pred == yte
    acc, se = accuracy_se(ok)
    out = dict(dataset=dataset, n_neurons=n_neurons, readout=readout, device_model="rram" if device_model else "none",
               n_train=len(ytr), n_test=len(yte), n_bins=n_bins, features=features, time_steps=xtr.shape[0], seed=seed,
               lsm_accuracy=acc, lsm_se=se, lsm_alpha=alpha, n_features=ftr.shape[1], simulate_s=sim_s,
               readout_s=fit_s, neuron_steps_per_s=steps * n_neurons / sim_s,
               firing_rate=float(ftr[:, : n_bins * n_neurons].sum() / (len(ftr) * n_neurons * xtr.shape[0])),
               reservoir=lsm.stats(), lsm_config=dict(lsm.config), readout_kw=dict(readout_kw or {}))
    if with_raw or with_input:
        rtr, rte = raw_features(xtr, n_bins), raw_features(xte, n_bins)
    if with_raw:
        if raw_predictions is None:
            raw_predictions, out["raw_readout_s"], out["raw_alpha"] = _fit_predict(readout, rtr, ytr, rte, readout_kw)
        raw_ok = raw_predictions == yte
        out["raw_accuracy"], out["raw_se"] = accuracy_se(raw_ok)
        d, d_se = paired_difference(ok, raw_ok)
        out["lsm_minus_raw_points"], out["lsm_minus_raw_se_points"] = 100 * d, 100 * d_se
        out["raw_predictions"] = raw_predictions
    if with_input:
        both, _, out["lsm_plus_input_alpha"] = _fit_predict(readout, torch.cat([rtr, ftr], 1), ytr,
                                                            torch.cat([rte, fte], 1), readout_kw)
        out["lsm_plus_input_accuracy"], out["lsm_plus_input_se"] = accuracy_se(both == yte)
        if with_raw:
            d, d_se = paired_difference(both == yte, raw_ok)
            out["lsm_plus_input_minus_raw_points"], out["lsm_plus_input_minus_raw_se_points"] = 100 * d, 100 * d_se
    if keep_lsm:
        out["lsm"] = lsm
    return out
