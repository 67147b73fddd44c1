"""Training: :func:`fit` trains any spiking model on any data (BPTT, DSR, OTTT or a registered method;
checkpoints, exact resume, mixed precision, multi-process); :class:`Trainer` runs it on a registered model and
data set named by a :class:`TrainConfig`; :func:`load_model` rebuilds a trained network from a checkpoint.

>>> from snn.train import fit
>>> result = fit(model, train_loader, val_loader, method="bptt", T=4, epochs=3, checkpoint="runs/x")
>>> from snn.train import Trainer, TrainConfig
>>> summary = Trainer(TrainConfig(dataset="digits", model="csnn", epochs=3, out="runs/y")).fit()
>>> net = load_model("runs/y/checkpoint.pt")       # [T, B, 1, H, W] -> [T, B, 10]
"""
from .activity import SaturatedLayerWarning, SilentLayerWarning
from .checkpoint import load_checkpoint, load_model, save_checkpoint
from .config import METHODS, OPTIMIZERS, TrainConfig
from .dsr import DSRIF, DSRLIF, rate, weighted_rate
from .fit import CHECKPOINT_NAME, Fit, FitResult, fit
from .memory import PeakMemory
from .methods import BPTT, DSR, OTTT, Method, make_method, method_names, register_method
from .ottt import OnlineTraces
from .step import Step, train_step
from .trainer import Trainer

__all__ = ["fit", "Fit", "FitResult", "Trainer", "TrainConfig", "METHODS", "OPTIMIZERS", "load_model",
           "load_checkpoint", "save_checkpoint", "DSRIF", "DSRLIF", "rate", "weighted_rate", "PeakMemory", "Method",
           "BPTT", "DSR", "OTTT", "make_method", "method_names", "register_method", "Step", "train_step",
           "OnlineTraces", "CHECKPOINT_NAME", "SilentLayerWarning", "SaturatedLayerWarning"]
