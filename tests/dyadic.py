"""Networks whose potentials land exactly on their thresholds, for the tie tests of the exporters."""
import torch
import torch.nn as nn


def dyadic_weights_(net: nn.Module, seed: int) -> nn.Module:
    """Give every ``nn.Linear`` of ``net`` weights in {0, 1/4, 1/2, 3/4} and biases in {-1/4, 0, 1/4}: sums of
    such values are exact in float32 and float64, so many potentials land exactly on a dyadic threshold."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Linear):
                m.weight.copy_(torch.randint(0, 4, m.weight.shape, generator=g) / 4)
                if m.bias is not None:
                    m.bias.copy_(torch.randint(-1, 2, m.bias.shape, generator=g) / 4)
    return net
