"""What the kernel backends' torch custom ops share (``torch.library``): a spec named by a string, and the
parameter block as a tensor.

Under ``torch.compile`` the fused kernels (``snn::cpp_scan``, ``snn::triton_scan`` and their backward ops) run as
custom ops: opaque to the compiler, with a fake implementation that gives the output shapes and a registered
autograd formula, so that a model with snn neurons compiles with ``fullgraph=True``. An op's arguments must be
tensors, numbers or strings: the neuron spec travels as its registered name (:func:`spec_key`),
and the parameter block as a float64 tensor built inside the graph (:func:`param_tensor`), so that a learnable
parameter (PLIF's decay) gets its gradient through it and no value is read back to Python while tracing.
"""
from __future__ import annotations

import torch

from .. import neurons
from .inputs import param_slots

__all__ = ["spec_key", "spec_of_key", "param_tensor"]

def spec_key(spec) -> str:
    """The string naming ``spec`` for the custom ops: its registered name (:func:`snn.neurons.register`; a
    neuron module class that declares ``spec = ...`` registers it). A spec that is not the one registered
    under its name cannot be named to an op: a clear error."""
    if spec.name not in neurons.names() or neurons.get(spec.name) is not spec:
        raise ValueError(f"neuron spec {spec.name!r} is not registered under its name (snn.neurons.register), "
                         f"so torch.compile cannot name it to snn's kernel ops; register it, or bind it to a neuron "
                         f"class (spec = ... in a snn.neuron.BaseNeuron subclass), or run it uncompiled")
    return spec.name


def spec_of_key(key: str):
    """The spec :func:`spec_key` named ``key``."""
    return neurons.get(key)


def param_tensor(spec, params, who: str, device, extra=()) -> torch.Tensor:
    """The parameter block ``params`` (then ``extra`` numbers) as a float64 tensor ``[len]`` on ``device``.

    Numbers must be finite (checked here); a learnable slot may be a one-element tensor (its gradient flows
    through this tensor), checked for NaN/Inf inside the graph; a tensor in another slot must not require a
    gradient: the eager path's rules (:func:`snn.ops.inputs.param_slots`), without reading a tensor's value
    back to Python."""
    values = []
    for _, name, p in param_slots(spec, params, who):
        if isinstance(p, torch.Tensor):
            p = p.reshape(()).to(device=device, dtype=torch.float64)
            torch._assert_async(torch.isfinite(p), f"{who}: {name} must be finite")
            values.append(p)
        else:
            values.append(torch.tensor(p, dtype=torch.float64, device=device))
    values += [torch.tensor(float(v), dtype=torch.float64, device=device) for v in extra]
    return torch.stack(values)
