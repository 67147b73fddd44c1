"""Zero-shot protocol on synthetic modalities that share a latent class code: unseen classes are recognised."""
import pytest
import torch

from snn.lsm.zeroshot import zero_shot_accuracy


# Small tensors: one torch thread is the fastest (see the one_thread fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def _modality(codes, y, a, gen, noise=0.1):
    """Features = a fixed random linear map ``a`` of the class code, plus noise (a shared latent structure)."""
    return codes[y] @ a + noise * torch.randn(len(y), a.shape[1], generator=gen)


def test_zero_shot_with_shared_latent_structure():
    g = torch.Generator().manual_seed(0)
    codes = torch.randn(10, 6, generator=g)
    yv_tr, yv_te, ya = (torch.arange(10).repeat(k) for k in (30, 10, 20))
    map_v, map_a = torch.randn(6, 40, generator=g), torch.randn(6, 25, generator=g)
    feats = dict(v_train=_modality(codes, yv_tr, map_v, g), yv_train=yv_tr, v_test=_modality(codes, yv_te, map_v, g),
                 yv_test=yv_te, a=_modality(codes, ya, map_a, g), ya=ya, a_train=torch.rand(len(ya), generator=g) < 0.7)
    r = zero_shot_accuracy(feats, (7, 8, 9), epochs=150, hidden=64, d_out=16)
    assert r["chance"] == pytest.approx(1 / 3)
    assert r["seen_cross_modal"] > 0.9
    assert r["zero_shot"] >= 2 * r["chance"]  # the heads generalise through the shared code


def test_bad_class_split():
    with pytest.raises(ValueError, match="proper subset"):
        zero_shot_accuracy({}, ())
