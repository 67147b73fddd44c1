"""``TrainConfig``: every knob of a run of the preset trainer (:class:`snn.train.Trainer`, ``snn train``), checked
up front with clear errors. Data sets, models, neurons and methods are looked up in their registries
(:func:`snn.data.available`, :func:`snn.models.available`, :func:`snn.models.neuron_names`,
:func:`snn.train.methods.method_names`)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .. import ops
from .batches import ENCODINGS
from .fit import OPTIMIZERS

__all__ = ["TrainConfig", "METHODS", "OPTIMIZERS", "ENCODINGS", "DATASET_BATCH_SIZE", "dataset_names",
           "model_names", "neuron_names", "method_names"]

METHODS = ("bptt", "dsr", "ottt")  # snn's own; method_names() also lists registered ones
OTTT_MODES = ("A", "O")
# batch_size=None: about 45 updates per epoch on the 1,438 training digits (128 would give 12, too few
# for 3 epochs, and leave BatchNorm's running statistics 28% at their initial values), 469 on Fashion-MNIST;
# other data sets: DEFAULT_BATCH_SIZE.
DATASET_BATCH_SIZE = {"digits": 32, "fashion-mnist": 128}
DEFAULT_BATCH_SIZE = 32


def dataset_names() -> tuple[str, ...]:
    """What ``dataset`` accepts: the registered data sets and 'auto'."""
    from .. import data

    return (*data.available(), "auto")


def model_names() -> tuple[str, ...]:
    from .. import models

    return tuple(models.available())


def neuron_names() -> tuple[str, ...]:
    from .. import models

    return tuple(models.neuron_names())


def method_names() -> tuple[str, ...]:
    from .methods import method_names as names

    return names()


@dataclass
class TrainConfig:
    """A training run. ``channels``/``hidden``/``norm`` apply to models that have them (csnn 32/64, mlp 256);
    ``batch_size=None`` is the data set's (:data:`DATASET_BATCH_SIZE`, filled in by :meth:`for_dataset`);
    ``T=None`` is 4 for static images and the data's own number of frames for sequences (a given T asks a
    sequence data set for that many frames).

    ``lr`` 5e-3 (Adam) trains every preset with every method to >= 90% on the digits in 3 epochs and >= 82%
    on Fashion-MNIST in one (benchmarks/train_fashion.py --defaults).
    ``train_limit``/``test_limit`` keep the first N images of an image set, a seeded random subset of N samples
    of an event or audio set (converted per sample); for quick runs and tests.
    ``norm`` defaults to BatchNorm, except for OTTT, which uses scaled weight standardisation.
    """

    dataset: str = "auto"
    model: str = "csnn"
    neuron: str = "lif"
    method: str = "bptt"
    ottt_mode: str = "A"
    T: int | None = None
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
    amp: str | None = None
    clip_grad: float | None = None
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

        choice("dataset", dataset_names())
        choice("model", model_names())
        choice("neuron", neuron_names())
        choice("method", method_names())
        choice("ottt_mode", OTTT_MODES)
        choice("optimizer", OPTIMIZERS)
        choice("encoding", ENCODINGS)
        if self.backend != "auto" and self.backend not in ops.BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; accepted: auto, {', '.join(ops.BACKENDS)}")
        if self.norm is not None:
            from ..models import NORMS

            choice("norm", NORMS)
        if self.amp is not None:
            choice("amp", ("bf16", "fp16"))
        val = self.epochs
        if not isinstance(val, int) or isinstance(val, bool) or val < 1:
            raise ValueError(f"epochs must be a positive integer, got {val!r}")
        for name in ("T", "batch_size", "train_limit", "test_limit", "threads"):
            val = getattr(self, name)
            if val is not None and (not isinstance(val, int) or isinstance(val, bool) or val < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {val!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not (math.isfinite(self.tau) and self.tau > 1):
            raise ValueError(f"tau must be > 1, got {self.tau}")
        if self.clip_grad is not None and not (math.isfinite(self.clip_grad) and self.clip_grad > 0):
            raise ValueError(f"clip_grad must be a finite number > 0 or None, got {self.clip_grad}")
        from ..models import DSR_NEURONS

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
        return dataclasses.replace(self, batch_size=DATASET_BATCH_SIZE.get(dataset, DEFAULT_BATCH_SIZE))

    def model_config(self, input_shape, num_classes: int) -> dict:
        """The config dict :func:`snn.models.build_model` rebuilds this run's network from, for samples whose
        time step has the shape ``input_shape`` (``[C, H, W]``, ``[F]``, ...)."""
        from ..models import model_config

        defaults = model_config(self.model)
        if "in_shape" in defaults and len(input_shape) == 1:  # features [F] as a one-channel [1, F] map
            input_shape = (1, *input_shape)
        from ..models import METHODS as NEURON_METHODS

        kw = dict(num_classes=num_classes, in_channels=int(input_shape[0]), neuron=self.neuron, tau=self.tau,
                  backend=self.backend)
        if self.method in NEURON_METHODS:  # the neurons the method needs (DSR's); other methods use the plain ones
            kw["method"] = self.method
        if self.T is not None:
            kw["T"] = self.T
        if "in_shape" in defaults:
            kw["in_shape"] = [int(s) for s in input_shape]
        own = dict(channels=self.channels, hidden=self.hidden,
                   norm=self.norm or ("ws" if self.method == "ottt" else "bn"))
        kw.update({k: list(v) if isinstance(v, (list, tuple)) else v for k, v in own.items()
                   if k in defaults and v is not None})
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
