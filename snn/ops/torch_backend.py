"""The ``torch`` backend: the pure-torch reference scan (:mod:`snn.functional.scan`), differentiated by
autograd. Always available, for every spec.

Spikes and the recorded state come back in the input dtype, the returned states in the state dtype
(float32 for 16-bit inputs, :func:`snn.functional.state_dtype`)."""
from __future__ import annotations

from ..functional import scan

NAME = "torch"


def is_available() -> bool:
    return True


def supports(spec, device) -> str | None:
    """Why this backend cannot run ``spec`` on ``device`` (None: it can)."""
    return None


def run(spec, x_seq, states, params, flags, *, surrogate, detach_reset, strict_threshold, record_v):
    s, seqs = scan.multistep(spec, x_seq, states, params, flags, surrogate=surrogate, detach_reset=detach_reset,
                             strict_threshold=strict_threshold)
    # T = 0: the initial state passes through, in the state dtype
    last = tuple(seq[-1] if len(seq) else scan.as_state(s0, x_seq) for seq, s0 in zip(seqs, states))
    v_seq = seqs[spec.record_index].to(x_seq.dtype) if record_v else None
    return s, last, v_seq
