"""``TrainConfig``: every knob of a training run, checked up front with clear errors."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .. import data, ops
from ..models import DSR_NEURONS, MODELS, NEURONS, NORMS

__all__ = ["TrainConfig", "METHODS", "OPTIMIZERS", "ENCODINGS", "DATASET_BATCH_SIZE"]

METHODS = ("bptt", "dsr", "ottt")
OPTIMIZERS = ("adam", "sgd")
ENCODINGS = ("direct", "poisson")
OTTT_MODES = ("A", "O")
# batch_size=None: about 45 updates per epoch on the 1,438 training digits (128 would give 12, too few
# for 3 epochs, and leave BatchNorm's running statistics 28% at their initial values), 469 on Fashion-MNIST.
DATASET_BATCH_SIZE = {"digits": 32, "fashion-mnist": 128}


@dataclass
class TrainConfig:
    """A training run. ``channels``/``hidden`` default to the preset's (csnn 32/64, mlp 256);
    ``batch_size=None`` to the data set's (:data:`DATASET_BATCH_SIZE`, filled in by :meth:`for_dataset`).

    ``lr`` 5e-3 (Adam) trains every preset with every method to >= 90% on the digits in 3 epochs and >= 82%
    on Fashion-MNIST in one (benchmarks/train_fashion.py --defaults).
    ``train_limit``/``test_limit`` keep the first N samples (for quick runs and tests);
    ``norm`` defaults to BatchNorm, except for OTTT, which uses scaled weight standardisation.
    """

    dataset: str = "auto"
    model: str = "csnn"
    neuron: str = "lif"
    method: str = "bptt"
    ottt_mode: str = "A"
    T: int = 4
    epochs: int = 10
    batch_size: int | None = None
    lr: float = 5e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    seed: int = 0
    data_dir: str | None = None
    out: str | None = None
    backend: str = "auto"
    encoding: str = "direct"
    tau: float = 2.0
    channels: list[int] | None = None
    hidden: list[int] | None = None
    norm: str | None = None
    train_limit: int | None = None
    test_limit: int | None = None
    threads: int | None = None
    progress: bool | None = None  # None: only when stdout is a terminal
    extra: dict = field(default_factory=dict)

    def validate(self) -> "TrainConfig":
        def choice(name, accepted):
            val = getattr(self, name)
            if val not in accepted:
                raise ValueError(f"unknown {name} {val!r}; accepted: {', '.join(map(str, accepted))}")

        choice("dataset", data.DATASETS)
        choice("model", MODELS)
        choice("neuron", NEURONS)
        choice("method", METHODS)
        choice("ottt_mode", OTTT_MODES)
        choice("optimizer", OPTIMIZERS)
        choice("encoding", ENCODINGS)
        if self.backend != "auto" and self.backend not in ops.BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; accepted: auto, {', '.join(ops.BACKENDS)}")
        if self.norm is not None:
            choice("norm", NORMS)
        for name in ("T", "epochs"):
            val = getattr(self, name)
            if not isinstance(val, int) or isinstance(val, bool) or val < 1:
                raise ValueError(f"{name} must be a positive integer, got {val!r}")
        for name in ("batch_size", "train_limit", "test_limit", "threads"):
            val = getattr(self, name)
            if val is not None and (not isinstance(val, int) or isinstance(val, bool) or val < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {val!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not (math.isfinite(self.tau) and self.tau > 1):
            raise ValueError(f"tau must be > 1, got {self.tau}")
        if self.method == "dsr" and self.neuron not in DSR_NEURONS:
            raise ValueError(f"method 'dsr' supports the neurons {', '.join(DSR_NEURONS)} (its representation "
                             f"mapping is derived for IF and LIF), got {self.neuron!r}")
        if self.method == "ottt" and self.norm == "bn":
            raise ValueError("method 'ottt' runs one time step at a time and cannot use BatchNorm statistics over "
                             "time; use norm 'ws' (scaled weight standardisation, the default for OTTT) or 'none'")
        return self

    def for_dataset(self, dataset: str) -> "TrainConfig":
        """A copy with the data set's defaults filled in where a field is None (``batch_size``)."""
        if self.batch_size is not None:
            return self
        return dataclasses.replace(self, batch_size=DATASET_BATCH_SIZE[dataset])

    def model_config(self, in_shape, num_classes: int) -> dict:
        """The config dict :func:`snn.models.build_model` rebuilds this run's network from."""
        from ..models import model_config

        kw = dict(in_shape=list(in_shape), num_classes=num_classes, neuron=self.neuron, method=self.method,
                  tau=self.tau, backend=self.backend)
        if self.model == "csnn":
            if self.channels:
                kw["channels"] = list(self.channels)
            kw["norm"] = self.norm or ("ws" if self.method == "ottt" else "bn")
        elif self.hidden:
            kw["hidden"] = list(self.hidden)
        return model_config(self.model, **kw)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"TrainConfig: unknown keys {sorted(unknown)}")
        return cls(**d)
