"""Random connectivity of a liquid state machine: neuron types, masks, weight magnitudes, scaling.

Everything takes an explicit ``torch.Generator`` so that one seed gives one reservoir.

* random-sparse: ``P(i → j) = p`` for ``i != j``;
* distance-dependent (Maass, Natschläger & Markram 2002): neurons sit on a 3-D integer grid, and
  ``P(i → j) = C[type_i, type_j] · exp(-(D(i, j) / λ)²)`` with ``D`` the Euclidean grid distance and
  ``C = {EE: 0.3, EI: 0.2, IE: 0.4, II: 0.1}``;
* input fields: random-sparse over all channels, retinotopic (local: a random centre and a radius), or smooth
  (dense, mixed-sign Gaussian-blurred white noise over the whole sensor: "structured random receptive fields",
  Pandey et al. 2022, which make better random features of images than white-noise weights);
* Dale's law: all outgoing weights of an excitatory neuron are >= 0, of an inhibitory one <= 0
  (rows of ``W[pre, post]``).
"""
from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["neuron_types", "grid_positions", "random_mask", "distance_mask", "local_input_mask", "smooth_input_fields",
           "magnitudes", "spectral_radius",
           "MAASS_C"]

MAASS_C = {("E", "E"): 0.3, ("E", "I"): 0.2, ("I", "E"): 0.4, ("I", "I"): 0.1}


def neuron_types(n: int, frac_exc: float, gen: torch.Generator) -> torch.Tensor:
    """Boolean ``[n]``, True = excitatory; exactly ``round(frac_exc·n)`` excitatory neurons at random places."""
    if not 0 <= frac_exc <= 1:
        raise ValueError(f"frac_exc must lie in [0, 1], got {frac_exc}")
    exc = torch.zeros(n, dtype=torch.bool)
    exc[torch.randperm(n, generator=gen)[: int(round(frac_exc * n))]] = True
    return exc


def grid_positions(n: int, shape: tuple[int, int, int] | None = None) -> torch.Tensor:
    """``[n, 3]`` integer positions filling a 3-D grid (default: the smallest near-cube that holds ``n``)."""
    if shape is None:
        a = max(1, round(n ** (1 / 3)))
        b = a
        c = math.ceil(n / (a * b))
        shape = (a, b, c)
    if int(np.prod(shape)) < n:
        raise ValueError(f"grid {shape} holds {int(np.prod(shape))} neurons, fewer than n={n}")
    g = torch.stack(torch.meshgrid(*(torch.arange(s) for s in shape), indexing="ij"), -1).reshape(-1, 3)
    return g[:n].float()


def random_mask(n_pre: int, n_post: int, p: float, gen: torch.Generator, no_self: bool = False) -> torch.Tensor:
    """Bernoulli(p) connection mask ``[n_pre, n_post]`` (diagonal removed when ``no_self``)."""
    if not 0 <= p <= 1:
        raise ValueError(f"connection probability must lie in [0, 1], got {p}")
    m = torch.rand(n_pre, n_post, generator=gen) < p
    if no_self:
        m.fill_diagonal_(False)
    return m


def distance_mask(exc: torch.Tensor, lam: float, gen: torch.Generator, grid_shape=None, c=None) -> torch.Tensor:
    """Maass-style mask ``[n, n]``: ``P(i → j) = C[type_i, type_j]·exp(-(D_ij/λ)²)``, no self-connections."""
    if not lam > 0:
        raise ValueError(f"lambda (connection length, grid units) must be > 0, got {lam}")
    c = MAASS_C if c is None else c
    pos = grid_positions(len(exc), grid_shape)
    d2 = torch.cdist(pos, pos).pow(2)
    t = exc.long()  # 1 = E, 0 = I
    cm = torch.tensor([[c[("I", "I")], c[("I", "E")]], [c[("E", "I")], c[("E", "E")]]])
    prob = cm[t[:, None], t[None, :]] * torch.exp(-d2 / lam ** 2)
    m = torch.rand(prob.shape, generator=gen) < prob
    m.fill_diagonal_(False)
    return m


def magnitudes(shape, gen: torch.Generator, cv: float = 0.5) -> torch.Tensor:
    """Positive weight magnitudes with mean 1 and coefficient of variation ``cv`` (gamma distribution)."""
    k = 1.0 / cv ** 2  # gamma shape; scale 1/k gives mean 1, std cv
    g = torch.distributions.Gamma(torch.tensor(k), torch.tensor(k))
    state = torch.random.get_rng_state()
    try:  # Gamma sampling has no generator argument: seed the global stream from ours, then restore it
        torch.manual_seed(int(torch.randint(0, 2 ** 62, (1,), generator=gen)))
        return g.sample(shape)
    finally:
        torch.random.set_rng_state(state)


def spectral_radius(w: torch.Tensor) -> float:
    """Largest absolute eigenvalue of a square matrix (ARPACK above 64 neurons; BLAS kept to one thread,
    which is the fastest on a shared machine)."""
    from threadpoolctl import threadpool_limits

    a = w.detach().double().cpu().numpy()
    with threadpool_limits(1):
        if a.shape[0] > 64:
            from scipy.sparse.linalg import ArpackNoConvergence, eigs
            try:
                return float(np.abs(eigs(a, k=1, which="LM", return_eigenvectors=False, tol=1e-3, v0=np.ones(len(a)),
                                          maxiter=10000)).max())
            except ArpackNoConvergence:  # pragma: no cover - fall back to the dense solver
                pass
        return float(np.abs(np.linalg.eigvals(a)).max()) if a.size else 0.0


def local_input_mask(input_shape: tuple[int, int, int], n_post: int, radius: float, p: float,
                     gen: torch.Generator) -> torch.Tensor:
    """Retinotopic input mask ``[C·H·W, n_post]``: neuron ``j`` gets a random centre ``(cy, cx)`` on the sensor
    and connects, with probability ``p``, to every channel of the pixels within ``radius`` (pixels) of it."""
    ch, h, w = (int(s) for s in input_shape)
    if not radius > 0:
        raise ValueError(f"input radius must be > 0 pixels, got {radius}")
    cy = torch.rand(n_post, generator=gen) * (h - 1)
    cx = torch.rand(n_post, generator=gen) * (w - 1)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    near = ((ys.reshape(-1, 1) - cy) ** 2 + (xs.reshape(-1, 1) - cx) ** 2) <= radius ** 2  # [H·W, n_post]
    near = near.repeat(ch, 1)
    return near & (torch.rand(near.shape, generator=gen) < p)


def smooth_input_fields(input_shape: tuple[int, int, int], n_post: int, smooth: float,
                        gen: torch.Generator, envelope: float | None = None) -> torch.Tensor:
    """Dense mixed-sign input fields ``[C·H·W, n_post]``: for each neuron and channel, white noise on the
    ``H x W`` sensor blurred by a Gaussian of standard deviation ``smooth`` pixels (zero padding), times
    ``exp(-d²/(2·envelope²))`` with ``d`` the distance to a random centre when ``envelope`` (pixels) is given;
    the neuron's whole field (all channels) scaled to unit L2 norm."""
    ch, h, w = (int(s) for s in input_shape)
    if not smooth >= 0:
        raise ValueError(f"input field smoothing must be >= 0 pixels, got {smooth}")
    if envelope is not None and not envelope > 0:
        raise ValueError(f"input field envelope must be > 0 pixels or None, got {envelope}")
    f = torch.randn(n_post * ch, 1, h, w, generator=gen)
    if smooth > 0:
        r = int(3 * smooth) + 1
        k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * smooth ** 2))
        k = k / k.sum()
        f = torch.nn.functional.conv2d(f, k.view(1, 1, 1, -1), padding=(0, r))
        f = torch.nn.functional.conv2d(f, k.view(1, 1, -1, 1), padding=(r, 0))
    f = f.reshape(n_post, ch, h, w)
    if envelope is not None:
        cy = torch.rand(n_post, generator=gen) * (h - 1)
        cx = torch.rand(n_post, generator=gen) * (w - 1)
        ys, xs = torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32)
        d2 = (ys[None, :, None] - cy[:, None, None]) ** 2 + (xs[None, None, :] - cx[:, None, None]) ** 2
        f = f * torch.exp(-d2 / (2 * envelope ** 2))[:, None]
    f = f.reshape(n_post, ch * h * w)
    return (f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)).T.contiguous()
