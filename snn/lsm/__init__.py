"""Liquid state machines: a fixed random spiking reservoir, a resistive-memory device model for its weights,
light readouts (ridge, logistic, contrastive projection heads) and a zero-shot multimodal demo."""
from .device import DEVICE_MODELS, ProgrammedArray, ResistiveMemory, make_device_model
from .reservoir import FEATURES, LiquidStateMachine

__all__ = ["LiquidStateMachine", "FEATURES", "ResistiveMemory", "ProgrammedArray", "make_device_model",
           "DEVICE_MODELS"]
