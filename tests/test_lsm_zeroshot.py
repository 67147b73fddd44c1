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


def test_phoneme_code():
    from snn.lsm.zeroshot import phoneme_code

    c = phoneme_code([["a", "b", "c"], ["c", "b", "a"], ["a", "x"]], ["a", "b", "c"], n_pos=3)
    assert c.shape == (3, 12)
    assert torch.allclose(c.norm(dim=1), torch.ones(3, dtype=c.dtype))
    assert torch.equal(c[0, :3], c[1, :3]) and not torch.equal(c[0], c[1])  # same bag, different order
    assert c[2].nonzero().flatten().tolist() == [0, 3]  # bag and 'a' in the first part; 'x' is not in the inventory


def test_word_zero_shot_transfers_through_shared_phonemes():
    # words are random strings over 8 "phonemes"; an utterance's features are a fixed random linear map of its
    # positional phoneme code plus noise. Unseen words share phonemes with seen ones, so the ridge map
    # transfers; features unrelated to the code stay near chance.
    from snn.lsm.zeroshot import phoneme_code, word_zero_shot

    g = torch.Generator().manual_seed(0)
    inv = [chr(97 + i) for i in range(8)]
    words = [[inv[int(i)] for i in torch.randint(0, 8, (int(torch.randint(3, 6, (1,), generator=g)),), generator=g)]
             for _ in range(60)]
    codes = phoneme_code(words, inv)
    y = torch.arange(60).repeat_interleave(6)
    a = torch.randn(codes.shape[1], 50, generator=g, dtype=torch.float64)
    feats = codes[y] @ a + 0.05 * torch.randn(len(y), 50, generator=g, dtype=torch.float64)
    unseen = list(range(50, 60))
    r = word_zero_shot(feats, y, codes, unseen)
    assert r["chance"] == pytest.approx(0.1) and r["n_seen_words"] == 50
    assert r["zero_shot"] >= 0.6
    noise = torch.randn(len(y), 50, generator=g, dtype=torch.float64)
    assert word_zero_shot(noise, y, codes, unseen)["zero_shot"] < 0.3
    with pytest.raises(ValueError, match="seen words"):
        word_zero_shot(feats, y, codes, list(range(55)))


def test_word_zero_shot_row_masks():
    from snn.lsm.zeroshot import phoneme_code, word_zero_shot

    g = torch.Generator().manual_seed(1)
    inv = list("abcdef")
    words = [[inv[int(i)] for i in torch.randint(0, 6, (4,), generator=g)] for _ in range(30)]
    codes = phoneme_code(words, inv)
    y = torch.arange(30).repeat_interleave(4)
    feats = codes[y] @ torch.randn(codes.shape[1], 20, generator=g, dtype=torch.float64)
    odd = torch.arange(len(y)) % 2 == 1
    r = word_zero_shot(feats, y, codes, [27, 28, 29], train_rows=~odd, test_rows=odd)
    assert r["n_test_utterances"] == 6  # 3 unseen words x 2 odd utterances
