"""The knobs of SPIDE training, checked once: backward time steps, gradient mode, error scale, IDE solver,
equilibrium checks."""
from __future__ import annotations

from dataclasses import dataclass

from ..checks import check_int, check_range

__all__ = ["SpideOptions", "GRAD_MODES", "SOLVERS", "ON_UNCONVERGED"]

GRAD_MODES = ("spide", "ide", "bptt")
SOLVERS = ("fixed_point", "broyden")
ON_UNCONVERGED = ("warn", "error", "ignore")


@dataclass(frozen=True)
class SpideOptions:
    """``T_back``: time steps of the spiking backward phase (paper: 100 on MNIST, 250 on CIFAR);
    ``grad``: how gradients are computed, ``'spide'`` (spikes of ternary neuron couples), ``'ide'`` (the same
    linear system solved numerically by ``solver``) or ``'bptt'`` (surrogate gradients through the T steps, as
    every snn model; the default, so that a generic training method gets what its name says: SPIDE is chosen by
    the ``'spide'`` training method or :func:`snn.spide.gradient`);
    ``grad_scale``: the factor applied to the output error before it drives the couples (and removed after),
    ``'auto'`` scales the largest error of the batch to ``auto_level`` spike sizes per step;
    ``tol``/``max_iter``: the IDE solver's relative tolerance and iteration limit;
    ``residual_tol``: the forward equilibrium is flagged when the mean |residual| of its rate equation exceeds
    the spike approximation bound plus ``residual_tol``; ``on_unconverged``: ``'warn'``
    (:class:`~snn.spide.EquilibriumWarning`), ``'error'`` (:class:`~snn.spide.EquilibriumError`) or ``'ignore'``.
    """

    T_back: int = 100
    grad: str = "bptt"
    grad_scale: float | str = "auto"
    auto_level: float = 0.5
    solver: str = "fixed_point"
    tol: float = 1e-6
    max_iter: int = 1000
    residual_tol: float = 0.05
    on_unconverged: str = "warn"

    def __post_init__(self):
        who = "SpideOptions"
        object.__setattr__(self, "T_back", check_int(self.T_back, "T_back", who, low=1))
        for name, accepted in (("grad", GRAD_MODES), ("solver", SOLVERS), ("on_unconverged", ON_UNCONVERGED)):
            if getattr(self, name) not in accepted:
                raise ValueError(f"{who}: {name} must be one of {accepted}, got {getattr(self, name)!r}")
        if self.grad_scale != "auto":
            object.__setattr__(self, "grad_scale", check_range(self.grad_scale, "grad_scale (a number > 0 or "
                                                               "'auto')", who, 0.0, low_open=True))
        object.__setattr__(self, "auto_level", check_range(self.auto_level, "auto_level", who, 0.0, 1.0,
                                                           low_open=True))
        object.__setattr__(self, "tol", check_range(self.tol, "tol", who, 0.0, low_open=True))
        object.__setattr__(self, "max_iter", check_int(self.max_iter, "max_iter", who, low=1))
        object.__setattr__(self, "residual_tol", check_range(self.residual_tol, "residual_tol", who, 0.0))
