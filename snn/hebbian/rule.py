r"""The SoftHebb plasticity rule (Moraitis et al. 2022; Journé et al., ICLR 2023) as pure tensor functions.

``K`` neurons with weights ``W`` (``[K, n]``) see an input ``x`` (``[n]``) and compete through a soft
winner-take-all::

    u   = W x                                  (pre-activation)
    y_k = softmax(u / τ)_k                     (soft-WTA; τ the temperature, the reference's t_invert = 1/τ)
    Δw_k = y_k (x - u_k w_k)                   (Hebbian term y x, weight decay y u w that keeps ‖w_k‖ → 1)

With ``anti_hebbian`` (the paper's deep SoftHebb) every neuron but the winner ``argmax_k u_k`` takes ``-y_k``:
the winner moves towards the input, the others away from it. With ``activation='linear'`` the factor is
``y = u`` and the rule is Oja's: one neuron converges to the principal eigenvector of ``E[x xᵀ]``. With the
softmax and a small ``τ``, each neuron converges to the normalised centroid ``E[x | k] / ‖E[x | k]‖`` of the
inputs it wins.

Over a batch the update is the mean over its rows (for a convolution: over samples and output positions,
each row an input patch). ``normalise`` divides it by its largest entry (the reference's update scaling), and
the adaptive learning rate of neuron ``k`` is ``η_k = η · (|‖w_k‖ - 1| + 1e-10)^p``: large while the weight is
far from the unit sphere, vanishing as it converges. An optional per-row ``modulation`` ``m ∈ [0, ∞)``
scales ``y`` (a neuro-modulatory signal: ``Δw_k = mean_b m_b y_bk (x_b - u_bk w_k)``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..checks import all_finite, check_range

__all__ = ["ACTIVATIONS", "soft_wta", "postsynaptic", "hebbian_delta", "conv_hebbian_delta", "adaptive_lr",
           "apply_update", "triangle", "check_input"]

ACTIVATIONS = ("softmax", "linear")


def check_input(x, name: str, who: str, dim: int | tuple[int, ...]) -> None:
    """``x`` must be a real floating tensor of rank ``dim`` with no NaN/Inf."""
    dims = (dim,) if isinstance(dim, int) else dim
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{who}: {name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{who}: {name} must be a floating-point tensor, got {x.dtype}")
    if x.dim() not in dims:
        raise ValueError(f"{who}: {name} must have rank {' or '.join(map(str, dims))}, got shape {tuple(x.shape)}")
    if not all_finite(x):
        raise ValueError(f"{who}: {name} contains NaN or Inf")


def soft_wta(u: torch.Tensor, temperature: float, dim: int = -1, anti_hebbian: bool = False) -> torch.Tensor:
    """``softmax(u / τ)`` over the neurons (``dim``); with ``anti_hebbian`` every non-winner's value is negated."""
    temperature = check_range(temperature, "temperature", "soft_wta", low=0, low_open=True)
    y = torch.softmax(u / temperature, dim=dim)
    if anti_hebbian:
        y = torch.where(u == u.amax(dim, keepdim=True), y, -y)  # a tie keeps every tied neuron Hebbian
    return y


def postsynaptic(u: torch.Tensor, activation: str, temperature: float, dim: int = -1,
                 anti_hebbian: bool = False) -> torch.Tensor:
    """The rule's postsynaptic factor ``y``: the soft-WTA of ``u`` (``'softmax'``) or ``u`` itself (``'linear'``)."""
    if activation == "linear":
        return u
    if activation == "softmax":
        return soft_wta(u, temperature, dim, anti_hebbian)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def hebbian_delta(x: torch.Tensor, u: torch.Tensor, y: torch.Tensor, w: torch.Tensor,
                  modulation: torch.Tensor | None = None) -> torch.Tensor:
    """``Δw_k = mean_b m_b y_bk (x_b - u_bk w_k)``: rows ``x`` ``[N, n]``, ``u``/``y`` ``[N, K]``, ``w`` ``[K, n]``."""
    if modulation is not None:
        y = y * modulation.reshape(-1, 1)
    n = x.shape[0]
    return (y.t() @ x - (y * u).sum(0).unsqueeze(1) * w) / n


def conv_hebbian_delta(x: torch.Tensor, u: torch.Tensor, y: torch.Tensor, w: torch.Tensor, stride, dilation,
                       modulation: torch.Tensor | None = None) -> torch.Tensor:
    """The rule for a convolution, every output position a row: ``x`` the (padded) input ``[B, C, H, W]``,
    ``u``/``y`` ``[B, K, H', W']``, ``w`` ``[K, C, kh, kw]``. ``Σ_rows y xᵀ`` is itself a convolution of the input
    with ``y`` (stride and dilation swap roles), which avoids unfolding every patch."""
    if modulation is not None:
        y = y * modulation.reshape(-1, 1, 1, 1)
    yx = F.conv2d(x.transpose(0, 1), y.transpose(0, 1), stride=dilation, dilation=stride).transpose(0, 1)
    yx = yx[:, :, :w.shape[2], :w.shape[3]]
    yu = (y * u).sum((0, 2, 3))
    rows = u.shape[0] * u.shape[2] * u.shape[3]
    return (yx - yu.view(-1, 1, 1, 1) * w) / rows


def adaptive_lr(w: torch.Tensor, lr: float, power: float) -> torch.Tensor:
    """Per-neuron learning rate ``η (|‖w_k‖ - 1| + 1e-10)^p`` (shape ``[K, 1, ...]``, broadcasting over ``w``)."""
    norm = w.flatten(1).norm(dim=1)
    rate = lr * ((norm - 1).abs() + 1e-10) ** power
    return rate.view(-1, *([1] * (w.dim() - 1)))


def apply_update(w: torch.Tensor, delta: torch.Tensor, lr: float, adaptive: bool, power: float,
                 normalise: bool) -> None:
    """``w += η Δw`` in place: ``Δw`` divided by ``max|Δw|`` if ``normalise``, ``η`` per neuron if ``adaptive``."""
    if normalise:
        delta = delta / (delta.abs().amax() + 1e-30)
    rate = adaptive_lr(w, lr, power) if adaptive else lr
    w.add_(rate * delta)


def triangle(u: torch.Tensor, power: float = 1.0, dim: int = 1) -> torch.Tensor:
    """The triangle activation: ``relu(u - mean_k u)^p``, the mean over the neurons (``dim``)."""
    r = F.relu(u - u.mean(dim, keepdim=True))
    return r if power == 1.0 else r ** power
