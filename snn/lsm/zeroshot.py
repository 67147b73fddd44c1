"""Zero-shot multimodal demo: event digits (vision) and spoken digits (cochlear spikes), each through its own
liquid state machine, aligned by two contrastively trained projection heads.

Protocol
1. Visual: ``event-digits`` (scikit-learn digits → saccade events, 22x22 sensor); audio: espeak-ng spoken
   digits → gammatone cochlea spikes (32 channels). Each modality has its own fixed random reservoir; the
   features are spike counts and traces pooled over time bins.
2. Split the ten classes into ``n_unseen`` unseen and the rest seen. Train the two projection heads
   (:func:`snn.lsm.readout.train_contrastive`, InfoNCE with same-class positives) on seen classes only
   (visual train split, audio train utterances).
3. Zero-shot: for each unseen class the class embedding is the normalised mean audio embedding of its
   spoken utterances; a visual test sample of an unseen class is assigned to the nearest (cosine) unseen
   class embedding. Chance is ``1 / n_unseen``. Seen-class cross-modal accuracy (visual test samples of seen
   classes against the seen classes' spoken embeddings) is reported alongside.

Note: nothing physical links a digit's shape to its spoken word, so the alignment of unseen classes must
come from what the heads learned on seen ones; results are averaged over several class splits and seeds
so that one lucky split does not decide the figure.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ..data.audio import load_spoken_digits
from ..data.events import load_event_dataset
from .readout import train_contrastive
from .reservoir import LiquidStateMachine

__all__ = ["zero_shot_accuracy", "run_zeroshot", "encode_modalities"]


def encode_modalities(n_visual: int = 500, n_audio: int = 500, seed: int = 0, device_model=None,
                      n_bins: int = 3, audio_kw: dict | None = None):
    """Reservoir features of both modalities: a dict with ``v_train, yv_train, v_test, yv_test, a, ya, a_train``
    (boolean mask of the audio utterances used for training heads; the rest are held-out utterances)."""
    xv_tr, yv_tr = load_event_dataset("event-digits", "train")
    xv_te, yv_te = load_event_dataset("event-digits", "test")
    xa, ya, meta = load_spoken_digits(**(audio_kw or {}))
    lsm_v = LiquidStateMachine(2 * 22 * 22, n_visual, input_shape=(2, 22, 22), p_in=0.5, tau=3.0, input_scale=3.0,
                               device_model=device_model, seed=seed)
    lsm_a = LiquidStateMachine(xa.shape[2], n_audio, p_in=0.2, tau=3.0, input_scale=1.0, device_model=device_model,
                               seed=seed + 1)
    flat = lambda x: x.reshape(x.shape[0], x.shape[1], -1).float()  # noqa: E731
    gen = torch.Generator().manual_seed(seed)
    a_train = torch.rand(len(ya), generator=gen) < 0.7
    return dict(v_train=lsm_v.features(flat(xv_tr), n_bins), yv_train=yv_tr,
                v_test=lsm_v.features(flat(xv_te), n_bins), yv_test=yv_te,
                a=lsm_a.features(flat(xa), n_bins), ya=ya, a_train=a_train,
                n_audio_utterances=len(ya), audio_voices=meta["voices"])


def _prototypes(z: torch.Tensor, y: torch.Tensor, classes) -> torch.Tensor:
    return F.normalize(torch.stack([z[y == c].mean(0) for c in classes]), dim=-1)


def _nearest_accuracy(zq: torch.Tensor, yq: torch.Tensor, protos: torch.Tensor, classes) -> float:
    pred = torch.tensor(classes)[(zq @ protos.T).argmax(1)]
    return float((pred == yq).double().mean())


def zero_shot_accuracy(feats: dict, unseen, seed: int = 0, epochs: int = 300, **train_kw) -> dict:
    """Train heads on the seen classes and score the unseen ones (see the module docstring)."""
    unseen = sorted(int(c) for c in unseen)
    seen = [c for c in range(10) if c not in unseen]
    if not unseen or not seen:
        raise ValueError(f"unseen classes must be a non-empty proper subset of 0..9, got {unseen}")
    sv = torch.isin(feats["yv_train"], torch.tensor(seen))
    sa = torch.isin(feats["ya"], torch.tensor(seen)) & feats["a_train"]
    ha, hb = train_contrastive(feats["v_train"][sv].float(), feats["yv_train"][sv], feats["a"][sa].float(),
                               feats["ya"][sa], epochs=epochs, seed=seed, **train_kw)[:2]
    with torch.no_grad():
        zv, za = ha(feats["v_test"].float()), hb(feats["a"].float())
    yv, ya = feats["yv_test"], feats["ya"]
    qu = torch.isin(yv, torch.tensor(unseen))
    qs = torch.isin(yv, torch.tensor(seen))
    held = ~feats["a_train"]
    return dict(unseen=unseen, zero_shot=_nearest_accuracy(zv[qu], yv[qu], _prototypes(za, ya, unseen), unseen),
                seen_cross_modal=_nearest_accuracy(zv[qs], yv[qs], _prototypes(za[held], ya[held], seen), seen),
                chance=1.0 / len(unseen))


def run_zeroshot(n_neurons: int = 500, n_unseen: int = 3, n_splits: int = 5, epochs: int = 300, seed: int = 0,
                 device_model=None) -> dict:
    """The demo: ``n_splits`` random choices of ``n_unseen`` unseen classes (the first split is 7, 8, 9);
    returns the mean and per-split accuracies."""
    t0 = time.perf_counter()
    feats = encode_modalities(n_neurons, n_neurons, seed, device_model)
    t_enc = time.perf_counter() - t0
    gen = torch.Generator().manual_seed(seed)
    splits = [list(range(10 - n_unseen, 10))]
    while len(splits) < n_splits:
        s = sorted(torch.randperm(10, generator=gen)[:n_unseen].tolist())
        if s not in splits:
            splits.append(s)
    runs = [zero_shot_accuracy(feats, s, seed=seed + i, epochs=epochs) for i, s in enumerate(splits)]
    zs = torch.tensor([r["zero_shot"] for r in runs])
    return dict(n_neurons=n_neurons, n_unseen=n_unseen, chance=1.0 / n_unseen, epochs=epochs,
                zero_shot_mean=float(zs.mean()), zero_shot_std=float(zs.std()) if len(zs) > 1 else 0.0,
                zero_shot_first_split=runs[0]["zero_shot"],
                seen_cross_modal_mean=float(torch.tensor([r["seen_cross_modal"] for r in runs]).mean()),
                splits=runs, n_visual_train=len(feats["yv_train"]), n_visual_test=len(feats["yv_test"]),
                n_audio=feats["n_audio_utterances"], encode_s=t_enc, total_s=time.perf_counter() - t0)
