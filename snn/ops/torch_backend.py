"""The ``torch`` backend: the pure-torch reference, differentiated by autograd. Always available.

Spikes and the recorded membrane come back in the input dtype, the returned states in the state dtype
(float32 for 16-bit inputs, :func:`snn.functional.state_dtype`)."""
from __future__ import annotations

from .. import functional as F

NAME = "torch"
FAMILIES = ("lif", "alif", "cubalif")


def _last(seq, initial, x_seq):
    """The state after the last step; the initial state (in the state dtype) when there were no steps (T = 0)."""
    return seq[-1] if len(seq) else F.as_state(initial, x_seq)


def _recorded(v_seq, x_seq, record_v):
    """The recorded membrane in the input dtype, or None."""
    return v_seq.to(x_seq.dtype) if record_v else None


def is_available() -> bool:
    return True


def supports_device(device) -> bool:
    return True


def lif_multistep(x_seq, v_init, decay, *, v_threshold, v_reset, decay_input, detach_reset, surrogate,
                  record_v=False, strict_threshold=False):
    s, v_seq = F.lif_multistep(x_seq, v_init, decay, v_threshold=v_threshold, v_reset=v_reset,
                               decay_input=decay_input, detach_reset=detach_reset, surrogate=surrogate,
                               strict_threshold=strict_threshold)
    return s, _last(v_seq, v_init, x_seq), _recorded(v_seq, x_seq, record_v)


def alif_multistep(x_seq, v_init, b_init, decay, *, rho, beta, v_threshold, v_reset, decay_input, detach_reset,
                   surrogate, record_v=False, strict_threshold=False):
    s, v_seq, b_seq = F.alif_multistep(x_seq, v_init, b_init, decay, rho=rho, beta=beta, v_threshold=v_threshold,
                                       v_reset=v_reset, decay_input=decay_input, detach_reset=detach_reset,
                                       surrogate=surrogate, strict_threshold=strict_threshold)
    return s, _last(v_seq, v_init, x_seq), _last(b_seq, b_init, x_seq), _recorded(v_seq, x_seq, record_v)


def cubalif_multistep(x_seq, u_init, v_init, *, du, dv, v_threshold, bias, detach_reset, surrogate, record_v=False):
    s, u_seq, v_seq = F.cubalif_multistep(x_seq, u_init, v_init, du=du, dv=dv, v_threshold=v_threshold, bias=bias,
                                          detach_reset=detach_reset, surrogate=surrogate)
    return s, _last(u_seq, u_init, x_seq), _last(v_seq, v_init, x_seq), _recorded(v_seq, x_seq, record_v)
