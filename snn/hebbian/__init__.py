"""Hebbian learning without backprop: SoftHebb layers trained layer by layer (rate-based and spiking), and
neuro-modulated Hebbian test-time adaptation (NHL) with a Tent baseline.

- :mod:`.rule`: the soft winner-take-all plasticity rule as tensor functions
- :mod:`.layers`: ``SoftHebbLinear``, ``SoftHebbConv2d``, ``Triangle``
- :mod:`.net`: Hebbian blocks (rate-based / spiking), ``SoftHebbNet``, ``softhebb_cnn``
- :mod:`.train`: layer-wise Hebbian training, linear probe, backprop baseline
- :mod:`.modulated`: the network NHL adapts (Hebbian early layers, neuro-modulator, top)
- :mod:`.tta`: test-time adapters (none, norm, Tent, NHL) and the online stream
- :mod:`.corrupt`: noise, contrast and rotation shifts
- :mod:`.viz`: learned receptive fields as an image grid
"""
from .corrupt import CORRUPTIONS, corrupt
from .layers import SoftHebbConv2d, SoftHebbLinear, Triangle
from .modulated import ModulatedNet, NeuroModulator, modulated_cnn, train_source
from .net import HebbianBlock, SoftHebbNet, SpikingBlock, softhebb_cnn, softhebb_mlp
from .train import accuracy, calibrate_norms, extract_features, train_backprop, train_hebbian, train_probe
from .tta import NHL, METHODS, NoAdaptation, NormAdaptation, Tent, make_adapter, run_stream

__all__ = ["SoftHebbLinear", "SoftHebbConv2d", "Triangle", "HebbianBlock", "SpikingBlock", "SoftHebbNet",
           "softhebb_cnn", "softhebb_mlp", "train_hebbian", "calibrate_norms", "extract_features", "train_probe",
           "train_backprop",
           "accuracy", "NeuroModulator", "ModulatedNet", "modulated_cnn", "train_source", "NHL", "Tent",
           "NoAdaptation", "NormAdaptation", "make_adapter", "run_stream", "METHODS", "CORRUPTIONS", "corrupt"]
