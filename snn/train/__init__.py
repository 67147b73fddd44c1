"""Training: the :class:`Trainer` (BPTT, DSR, OTTT; checkpoints; resume; multi-process), its
:class:`TrainConfig`, and :func:`load_model` to rebuild a trained network from a checkpoint.

>>> from snn.train import Trainer, TrainConfig
>>> summary = Trainer(TrainConfig(dataset="digits", model="csnn", epochs=3, out="runs/x")).fit()
>>> net = load_model("runs/x/checkpoint.pt")       # [T, B, 1, H, W] -> [T, B, 10]
"""
from .checkpoint import load_checkpoint, load_model, save_checkpoint
from .config import METHODS, OPTIMIZERS, TrainConfig
from .dsr import DSRIF, DSRLIF, rate, weighted_rate
from .memory import PeakMemory
from .methods import BPTT, DSR, OTTT, make_method
from .ottt import OnlineTraces
from .trainer import CHECKPOINT_NAME, SaturatedLayerWarning, SilentLayerWarning, Trainer

__all__ = ["Trainer", "TrainConfig", "METHODS", "OPTIMIZERS", "load_model", "load_checkpoint", "save_checkpoint",
           "DSRIF", "DSRLIF", "rate", "weighted_rate", "PeakMemory", "BPTT", "DSR", "OTTT", "make_method",
           "OnlineTraces", "CHECKPOINT_NAME", "SilentLayerWarning", "SaturatedLayerWarning"]
