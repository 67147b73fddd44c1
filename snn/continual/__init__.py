"""Continual learning: HLOP (Hebbian-learning-based orthogonal projection), baselines, tasks and metrics.

- :mod:`.hlop`: the Oja subspace rule, projection, lateral subspace neurons, :class:`HLOP` for a network
- :mod:`.baselines`: strategies (fine-tune, EWC, replay, HLOP, HLOP+replay) for the trainer
- :mod:`.trainer`: :class:`ContinualTrainer` runs a task sequence and fills the accuracy matrix
- :mod:`.methods`: training-method step functions (BPTT here; DSR/OTTT from :mod:`snn.train`)
- :mod:`.tasks`: permuted and split Fashion-MNIST (and digits) task sequences
- :mod:`.metrics`: ACC, BWT, the accuracy-matrix heatmap
- :mod:`.net`: a multi-head spiking MLP for the harness
"""
from .baselines import EWC, STRATEGIES, Compose, FineTune, HLOPStrategy, Replay, Strategy, k_schedule, make_strategy
from .hlop import HLOP, Subspace, oja_step, principal_angles, project_out, quantise_spikes
from .metrics import acc, bwt, plot_matrix, summary
from .tasks import BENCHMARKS, Task, permuted, split
from .trainer import ContinualTrainer, evaluate

__all__ = ["HLOP", "Subspace", "oja_step", "project_out", "principal_angles", "quantise_spikes", "Strategy",
           "FineTune", "EWC", "Replay", "HLOPStrategy", "Compose", "STRATEGIES", "make_strategy", "k_schedule",
           "ContinualTrainer", "evaluate", "Task", "BENCHMARKS", "permuted", "split", "acc", "bwt", "summary",
           "plot_matrix"]
