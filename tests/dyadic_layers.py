"""Networks whose every sum is exact in float32: Linear/Conv2d weights and biases k/8 (|k| <= 4), BatchNorm2d with
ε = 0, σ² a power of four (so γ/sqrt(σ²+ε) is a power of two times γ), γ = k/2, μ and β = k/8. Paths that add in
different orders (dense matmul, event-driven kernels, BatchNorm folded into a convolution or not) must then agree
bit for bit."""
import torch
import torch.nn as nn


def dyadic_(net: nn.Module, seed: int) -> nn.Module:
    """Set ``net``'s Linear, Conv2d and BatchNorm2d values on those grids, in place; returns ``net``."""
    g = torch.Generator().manual_seed(seed)

    def grid(shape, lo, hi, div):
        return torch.randint(lo, hi + 1, shape, generator=g) / div

    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(grid(m.weight.shape, -4, 4, 8))
                if m.bias is not None:
                    m.bias.copy_(grid(m.bias.shape, -4, 4, 8))
            elif isinstance(m, nn.BatchNorm2d):
                c = (m.num_features,)
                m.eps = 0.0
                m.running_var.copy_(4.0 ** grid(c, -1, 1, 1))
                m.running_mean.copy_(grid(c, -4, 4, 8))
                m.weight.copy_(grid(c, 1, 4, 2))
                m.bias.copy_(grid(c, -4, 4, 8))
    return net
