r"""Light readouts on reservoir features: ridge regression, logistic regression, and contrastive projection heads.

Ridge (closed form, targets one-hot ±1, features standardised ``z = (x - μ)/σ``)::

    W = (ZᵀZ + α·I)⁻¹ Zᵀ Y        (primal, when F <= n; ZᵀZ from float64 moments summed over row blocks,
                                   so n = 60,000 rows of float32 features are never copied whole)
    W = Zᵀ (Z Zᵀ + α·I)⁻¹ Y       (dual, when F > n; the same solution)

Logistic: softmax regression ``p = softmax(Z W + b)`` minimising cross-entropy + ``(λ/2)·||W||²``
(full-batch L-BFGS).

Contrastive heads (CLIP-style InfoNCE): two ANN projection heads ``f_a``, ``f_b`` map each modality to a unit
vector; with similarities ``s_ij = <f_a(x_i), f_b(x'_j)> / τ`` the loss is::

    L = -½ [ mean_i log Σ_{j∈P(i)} softmax_j(s_i·) + mean_j log Σ_{i∈P(j)} softmax_i(s_·j) ]

where ``P(i)`` are the positives of ``i`` (pairs of the same class when labels are given; the diagonal
otherwise, which is the standard InfoNCE).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_int, check_range

__all__ = ["Standardizer", "RidgeReadout", "LogisticReadout", "ProjectionHead", "info_nce", "train_contrastive",
           "make_readout", "READOUTS"]

READOUTS = ("ridge", "logistic")


def _check_xy(x, y=None, who="readout", convert=True):
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        raise ValueError(f"{who}: features must be a 2-D tensor [n, F], got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{who}: features contain NaN or Inf")
    if y is not None:
        if not isinstance(y, torch.Tensor) or y.dim() != 1 or len(y) != len(x):
            raise ValueError(f"{who}: labels must be a 1-D tensor with one label per row of the features")
        if y.dtype.is_floating_point or (len(y) and y.min() < 0):
            raise ValueError(f"{who}: labels must be non-negative integers")
    return x.double() if convert else x


class Standardizer:
    """``z = (x - μ) / σ`` per feature, with σ floored so that constant features stay finite."""

    def fit(self, x: torch.Tensor) -> "Standardizer":
        self.mean = x.mean(0)
        self.std = x.std(0).clamp_min(1e-6) if len(x) > 1 else torch.ones_like(self.mean)
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class RidgeReadout:
    """Ridge regression classifier (see the module docstring).

    ``alpha``: the L2 strength, or ``'auto'``: pick it from ``alphas`` by accuracy on a stratified-by-chance
    ``val_fraction`` of the training set (one eigendecomposition serves every alpha), then refit on all of it.
    """

    ALPHAS = (1.0, 10.0, 100.0, 1e3, 3e3, 1e4, 3e4, 1e5)

    def __init__(self, alpha="auto", alphas=ALPHAS, val_fraction: float = 0.2, seed: int = 0):
        if alpha != "auto":
            check_range(alpha, "alpha", "RidgeReadout", low=0, low_open=True)
        for a in alphas:
            check_range(a, "alphas", "RidgeReadout", low=0, low_open=True)
        check_range(val_fraction, "val_fraction", "RidgeReadout", low=0, high=1, low_open=True, high_open=True)
        self.alpha, self.alphas, self.val_fraction, self.seed = alpha, tuple(alphas), val_fraction, seed

    @staticmethod
    def _solutions(z: torch.Tensor, t: torch.Tensor, alphas):
        """Ridge weights for every alpha from one eigendecomposition (primal if F <= n, else dual)."""
        n, f = z.shape
        if f <= n:
            s, v = torch.linalg.eigh(z.T @ z)
            proj = v.T @ (z.T @ t)
            return [v @ (proj / (s + a)[:, None]) for a in alphas]
        s, v = torch.linalg.eigh(z @ z.T)
        proj = v.T @ t
        return [z.T @ (v @ (proj / (s + a)[:, None])) for a in alphas]

    def _targets(self, y):
        t = -torch.ones(len(y), self.n_classes, dtype=torch.float64)
        t[torch.arange(len(y)), y] = 1.0
        return t

    CHUNK = 4096  # rows per block of the primal moments

    def _moments(self, x, y, rows):
        """``(n, Σx, Σxxᵀ, Σx tᵀ, Σt)`` over ``rows`` in float64, a block of rows at a time (so a large float32
        ``x`` is never copied whole)."""
        f, k = x.shape[1], self.n_classes
        s1, g = torch.zeros(f, dtype=torch.float64), torch.zeros(f, f, dtype=torch.float64)
        xt, st = torch.zeros(f, k, dtype=torch.float64), torch.zeros(k, dtype=torch.float64)
        for i in range(0, len(rows), self.CHUNK):
            r = rows[i:i + self.CHUNK]
            xb, tb = x[r].double(), self._targets(y[r])
            s1 += xb.sum(0)
            g += xb.T @ xb
            xt += xb.T @ tb
            st += tb.sum(0)
        return len(rows), s1, g, xt, st

    @staticmethod
    def _primal(m, alphas):
        """Standardiser, target mean and ridge weights (each alpha) from moments: with ``μ = Σx/n``,
        ``σ² = (diag Σxxᵀ - nμ²)/(n-1)``, ``D = diag σ``: ``ZᵀZ = D⁻¹(Σxxᵀ - nμμᵀ)D⁻¹`` and
        ``Zᵀ(T - t̄) = D⁻¹(ΣxTᵀ - μ·ΣTᵀ)``."""
        n, s1, g, xt, st = m
        sc = Standardizer()
        sc.mean = s1 / n
        var = (g.diagonal() - n * sc.mean ** 2) / max(n - 1, 1)
        sc.std = var.clamp_min(0).sqrt().clamp_min(1e-6) if n > 1 else torch.ones_like(sc.mean)
        zz = (g - n * torch.outer(sc.mean, sc.mean)) / torch.outer(sc.std, sc.std)
        zt = (xt - torch.outer(sc.mean, st)) / sc.std[:, None]
        s, v = torch.linalg.eigh(zz)
        proj = v.T @ zt
        return sc, st / n, [v @ (proj / (s + a)[:, None]) for a in alphas]

    def _predict_rows(self, sc, w, b, x, rows):
        return torch.cat([(sc(x[rows[i:i + self.CHUNK]].double()) @ w + b).argmax(1)
                          for i in range(0, len(rows), self.CHUNK)])

    def fit(self, x: torch.Tensor, y: torch.Tensor) -> "RidgeReadout":
        """Primal (F <= n): from moments accumulated in row blocks; dual (F > n): from the Gram matrix ``Z Zᵀ``."""
        _check_xy(x, y, "RidgeReadout", convert=False)
        self.n_classes = int(y.max()) + 1
        primal = x.shape[1] <= len(y)
        rows_all = torch.arange(len(y))
        if self.alpha == "auto":
            perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(self.seed))
            n_val = max(1, int(self.val_fraction * len(y)))
            va, tr = perm[:n_val], perm[n_val:]
            if primal:
                m_tr, m_va = self._moments(x, y, tr), self._moments(x, y, va)
                sc, b, ws = self._primal(m_tr, self.alphas)
                accs = [float((self._predict_rows(sc, w, b, x, va) == y[va]).double().mean()) for w in ws]
            else:
                xd = x.double()
                sc = Standardizer().fit(xd[tr])
                t = self._targets(y[tr])
                b = t.mean(0)
                ws = self._solutions(sc(xd[tr]), t - b, self.alphas)
                accs = [float(((sc(xd[va]) @ w + b).argmax(1) == y[va]).double().mean()) for w in ws]
            self.alpha_ = self.alphas[max(range(len(accs)), key=accs.__getitem__)]
            self.val_accuracy_ = dict(zip(self.alphas, accs))
        else:
            self.alpha_ = float(self.alpha)
        if primal:
            m = tuple(a + b for a, b in zip(m_tr, m_va)) if self.alpha == "auto" else self._moments(x, y, rows_all)
            self.scaler, self.bias, (self.w,) = self._primal(m, [self.alpha_])
        else:
            xd = x.double()
            self.scaler = Standardizer().fit(xd)
            t = self._targets(y)
            self.bias = t.mean(0)
            self.w = self._solutions(self.scaler(xd), t - self.bias, [self.alpha_])[0]
        return self

    def decision_function(self, x: torch.Tensor) -> torch.Tensor:
        _check_xy(x, None, "RidgeReadout", convert=False)
        return torch.cat([self.scaler(x[i:i + self.CHUNK].double()) @ self.w + self.bias
                          for i in range(0, len(x), self.CHUNK)]) if len(x) else torch.zeros(0, len(self.bias))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.decision_function(x).argmax(1)

    def score(self, x, y) -> float:
        return float((self.predict(x) == y).double().mean())


class LogisticReadout(RidgeReadout):
    """Multinomial logistic regression with L2 penalty ``l2`` (full-batch L-BFGS, ``max_iter`` steps)."""

    def __init__(self, l2: float = 1e-2, max_iter: int = 200):
        check_range(l2, "l2", "LogisticReadout", low=0)
        check_int(max_iter, "max_iter", "LogisticReadout", low=1)
        self.l2, self.max_iter = float(l2), int(max_iter)

    def fit(self, x: torch.Tensor, y: torch.Tensor) -> "LogisticReadout":
        x = _check_xy(x, y, "LogisticReadout")
        self.n_classes = int(y.max()) + 1
        self.scaler = Standardizer().fit(x)
        z = self.scaler(x).float()
        w = torch.zeros(z.shape[1], self.n_classes, requires_grad=True)
        b = torch.zeros(self.n_classes, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=self.max_iter, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(z @ w + b, y) + 0.5 * self.l2 * (w * w).sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            opt.step(closure)
        self.w, self.bias = w.detach().double(), b.detach().double()
        return self


def make_readout(name: str, **kw):
    """``'ridge'`` → :class:`RidgeReadout`, ``'logistic'`` → :class:`LogisticReadout`."""
    if name == "ridge":
        return RidgeReadout(**kw)
    if name == "logistic":
        return LogisticReadout(**kw)
    raise ValueError(f"unknown readout {name!r}; accepted: {READOUTS}")


class ProjectionHead(nn.Module):
    """ANN projection ``x → normalize(W2·ReLU(W1·standardize(x)))`` onto the unit sphere of ``d_out`` dims."""

    def __init__(self, d_in: int, d_out: int = 64, hidden: int = 256, dropout: float = 0.1):
        super().__init__()
        self.register_buffer("mean", torch.zeros(d_in))
        self.register_buffer("std", torch.ones(d_in))
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, d_out))

    def set_normalization(self, x: torch.Tensor) -> None:
        s = Standardizer().fit(x.double())
        self.mean.copy_(s.mean.float())
        self.std.copy_(s.std.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net((x - self.mean) / self.std), dim=-1)


def info_nce(za: torch.Tensor, zb: torch.Tensor, temperature: float = 0.1, labels_a=None, labels_b=None):
    """Symmetric InfoNCE between unit embeddings ``za [n, d]`` and ``zb [m, d]`` (see the module docstring)."""
    if za.dim() != 2 or zb.dim() != 2 or za.shape[1] != zb.shape[1]:
        raise ValueError(f"info_nce: embeddings must be [n, d] and [m, d], got {tuple(za.shape)}, {tuple(zb.shape)}")
    logits = za @ zb.T / temperature
    if labels_a is None:
        if len(za) != len(zb):
            raise ValueError("info_nce: without labels the two batches must pair up row by row (same length)")
        pos = torch.eye(len(za), dtype=torch.bool, device=za.device)
    else:
        pos = labels_a[:, None] == labels_b[None, :]
    neg_inf = torch.finfo(logits.dtype).min

    def one_side(lg, p):
        lse_pos = torch.logsumexp(lg.masked_fill(~p, neg_inf), 1)
        keep = p.any(1)
        return -(lse_pos - torch.logsumexp(lg, 1))[keep].mean()

    return 0.5 * (one_side(logits, pos) + one_side(logits.T, pos.T))


def train_contrastive(xa: torch.Tensor, ya: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor, *, d_out: int = 64,
                      hidden: int = 256, temperature: float = 0.1, epochs: int = 200, batch: int = 128,
                      lr: float = 1e-3, weight_decay: float = 1e-4, seed: int = 0):
    """Train two :class:`ProjectionHead` s so that same-class samples of modality a and b align (InfoNCE with
    class positives). Each step draws ``batch`` samples of each modality. Returns ``(head_a, head_b, losses)``."""
    _check_xy(xa, ya, "train_contrastive(a)")
    _check_xy(xb, yb, "train_contrastive(b)")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    ha, hb = ProjectionHead(xa.shape[1], d_out, hidden), ProjectionHead(xb.shape[1], d_out, hidden)
    ha.set_normalization(xa)
    hb.set_normalization(xb)
    opt = torch.optim.AdamW(list(ha.parameters()) + list(hb.parameters()), lr=lr, weight_decay=weight_decay)
    losses = []
    ha.train()
    hb.train()
    for _ in range(epochs):
        ia = torch.randint(len(xa), (batch,), generator=gen)
        ib = torch.randint(len(xb), (batch,), generator=gen)
        loss = info_nce(ha(xa[ia]), hb(xb[ib]), temperature, ya[ia], yb[ib])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    ha.eval()
    hb.eval()
    return ha, hb, losses
