"""Liquid state machines: a fixed random spiking reservoir, a resistive-memory device model for its weights,
light readouts (ridge, logistic, contrastive projection heads) and a zero-shot multimodal demo.

    from snn.data.events import load_event_dataset
    from snn.lsm import LiquidStateMachine, ResistiveMemory
    from snn.lsm.readout import RidgeReadout

    x, y = load_event_dataset("event-digits", "train")                   # [T, N, 2, 22, 22] event counts
    lsm = LiquidStateMachine(2 * 22 * 22, 500, input_shape=(2, 22, 22), p_in=0.5,
                             device_model=ResistiveMemory())              # or None: ideal weights
    feats = lsm.features(x.flatten(2).float())                           # [N, 2 * 3 bins * 500]
    readout = RidgeReadout().fit(feats, y)

Modules: ``reservoir`` (the LSM), ``connectivity`` (masks, Dale's law, spectral radius), ``synapses`` (dense /
CSR matmuls with read noise), ``event_kernel`` (event-driven C simulation), ``device`` (RRAM model),
``readout``, ``probe`` (LSM vs raw-event linear probe), ``zeroshot``, ``plots``, ``cli`` (``snn lsm``).
"""
from .device import DEVICE_MODELS, ProgrammedArray, ResistiveMemory, make_device_model
from .reservoir import FEATURES, LiquidStateMachine

__all__ = ["LiquidStateMachine", "FEATURES", "ResistiveMemory", "ProgrammedArray", "make_device_model",
           "DEVICE_MODELS"]
