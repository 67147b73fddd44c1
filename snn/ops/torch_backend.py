"""The ``torch`` backend: the pure-torch reference, differentiated by autograd. Always available."""
from __future__ import annotations

from .. import functional as F

NAME = "torch"
FAMILIES = ("lif", "alif", "cubalif")


def _last(seq, initial):
    """The state after the last step; the initial state when there were no steps (T = 0)."""
    return seq[-1] if len(seq) else initial


def is_available() -> bool:
    return True


def supports_device(device) -> bool:
    return True


def lif_multistep(x_seq, v_init, decay, *, v_threshold, v_reset, decay_input, detach_reset, surrogate,
                  record_v=False, strict_threshold=False):
    s, v_seq = F.lif_multistep(x_seq, v_init, decay, v_threshold=v_threshold, v_reset=v_reset,
                               decay_input=decay_input, detach_reset=detach_reset, surrogate=surrogate,
                               strict_threshold=strict_threshold)
    return s, _last(v_seq, v_init), (v_seq if record_v else None)


def alif_multistep(x_seq, v_init, b_init, decay, *, rho, beta, v_threshold, v_reset, decay_input, detach_reset,
                   surrogate, record_v=False, strict_threshold=False):
    s, v_seq, b_seq = F.alif_multistep(x_seq, v_init, b_init, decay, rho=rho, beta=beta, v_threshold=v_threshold,
                                       v_reset=v_reset, decay_input=decay_input, detach_reset=detach_reset,
                                       surrogate=surrogate, strict_threshold=strict_threshold)
    return s, _last(v_seq, v_init), _last(b_seq, b_init), (v_seq if record_v else None)


def cubalif_multistep(x_seq, u_init, v_init, *, du, dv, v_threshold, bias, detach_reset, surrogate, record_v=False):
    s, u_seq, v_seq = F.cubalif_multistep(x_seq, u_init, v_init, du=du, dv=dv, v_threshold=v_threshold, bias=bias,
                                          detach_reset=detach_reset, surrogate=surrogate)
    return s, _last(u_seq, u_init), _last(v_seq, v_init), (v_seq if record_v else None)
