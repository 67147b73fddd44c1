"""Zero-shot learning with liquid state machines: two protocols.

A. Spoken words ↔ their phoneme transcriptions (:func:`run_zeroshot_words`; the one that can work)
1. Audio: ``espeak-ng`` utterances (8 voices, several speeds) of a vocabulary of common English words
   (:data:`snn.data.audio.VOCABULARY`) and of the ten digit names, through the gammatone cochlea, into one
   fixed random reservoir; features = spike counts and traces in ``n_bins`` time bins.
2. Text (the shared semantic code): each word's phonemes from ``espeak-ng -x`` (voice en-us), encoded as a
   fixed, untrained vector :func:`phoneme_code` = [bag of phonemes, bag of phonemes in each of ``n_pos``
   thirds of the word], over the phoneme inventory of the *seen* words only, L2-normalised.
3. Unseen classes: digit names (all ten, or 3-word splits). Training sees only utterances of the other words
   and their transcriptions: a ridge map ``W`` from standardised reservoir features to the (centred) code,
   ``W = argmin ||Z W - C||² + α||W||²``. α is chosen by zero-shot accuracy on held-out *seen* words (folds
   of the seen vocabulary, grouped by word), so nothing about the unseen words enters the fit or the choice.
   Speaker-independent variant: two of the eight voices never occur in training; the test uses only them.
4. Test: an utterance of an unseen word is assigned to the unseen word whose code is nearest (cosine) to
   ``z W``; the test uses the unseen words' transcriptions (text), never their audio in training. Chance is
   ``1 / n_unseen``. Why it can work: words share phonemes, so a map learned on 160 words transfers.
   The same readout on the raw binned cochlear spikes is reported alongside.

B. Event digits (vision) ↔ spoken digits (:func:`run_zeroshot`), the paper's set-up, two contrastively
   trained projection heads:

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

from ..data.audio import DIGIT_WORDS, VOCABULARY, load_spoken_digits, load_spoken_words, phonemes
from ..data.events import load_event_dataset
from .probe import raw_features
from .readout import RidgeReadout, Standardizer, train_contrastive
from .reservoir import LiquidStateMachine

__all__ = ["zero_shot_accuracy", "run_zeroshot", "encode_modalities", "phoneme_code", "word_zero_shot",
           "run_zeroshot_words"]


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


# -- A. spoken words <-> phoneme transcriptions ----------------------------------------------------------
WORD_ALPHAS = (10.0, 100.0, 1e3, 3e3, 1e4, 3e4, 1e5)


def phoneme_code(transcriptions, inventory, n_pos: int = 3) -> torch.Tensor:
    """``[W, (1 + n_pos)·P]``: per word, phoneme counts over ``inventory`` (P phonemes), then the counts in each
    of ``n_pos`` equal parts of the word (phoneme k of K sits in part ``floor(n_pos·(k + ½)/K)``); rows
    L2-normalised. Phonemes outside the inventory are dropped."""
    index = {p: i for i, p in enumerate(inventory)}
    n_ph = len(index)
    out = torch.zeros(len(transcriptions), (1 + n_pos) * n_ph, dtype=torch.float64)
    for w, phs in enumerate(transcriptions):
        for k, ph in enumerate(phs):
            if ph in index:
                part = int(n_pos * (k + 0.5) / len(phs))
                out[w, index[ph]] += 1.0
                out[w, (1 + part) * n_ph + index[ph]] += 1.0
    return F.normalize(out, dim=1)


def _fit_code_map(z: torch.Tensor, c: torch.Tensor, alphas):
    """Ridge maps (one per alpha) from standardised features ``z`` to centred codes ``c``."""
    sc = Standardizer().fit(z)
    mu = c.mean(0)
    return sc, mu, RidgeReadout._solutions(sc(z), c - mu, alphas)


def _code_accuracy(sc, mu, w, z, y, codes, classes) -> float:
    """Nearest (cosine) class code among ``classes`` for each row of ``z``; accuracy against ``y``."""
    pred = F.normalize(sc(z) @ w, dim=1) @ F.normalize(codes[classes] - mu, dim=1).T
    return float((torch.as_tensor(classes)[pred.argmax(1)] == y).double().mean())


def word_zero_shot(feats: torch.Tensor, y: torch.Tensor, codes: torch.Tensor, unseen, alphas=WORD_ALPHAS,
                   n_folds: int = 5, seed: int = 0, train_rows: torch.Tensor | None = None,
                   test_rows: torch.Tensor | None = None) -> dict:
    """Zero-shot accuracy on the words ``unseen`` (indices into ``codes``) from utterance features ``feats``
    with word labels ``y`` (protocol A in the module docstring); alpha by grouped CV over the seen words.
    ``train_rows`` / ``test_rows`` (boolean masks over the utterances, default all) restrict which utterances
    may be fitted and tested, e.g. to hold out speakers."""
    train_rows = torch.ones(len(y), dtype=torch.bool) if train_rows is None else train_rows
    test_rows = torch.ones(len(y), dtype=torch.bool) if test_rows is None else test_rows
    unseen = sorted(int(u) for u in unseen)
    seen = [w for w in range(len(codes)) if w not in unseen and bool((y == w).any())]
    if not unseen or len(seen) < 2 * n_folds:
        raise ValueError(f"word_zero_shot: need unseen words and >= {2 * n_folds} seen words, "
                         f"got {len(unseen)} unseen, {len(seen)} seen")
    feats = feats.double()
    perm = torch.tensor(seen)[torch.randperm(len(seen), generator=torch.Generator().manual_seed(seed))]
    cv = torch.zeros(len(alphas), dtype=torch.float64)
    for fold in perm.tensor_split(n_folds):
        fit = torch.isin(y, torch.tensor(seen)) & ~torch.isin(y, fold) & train_rows
        held = torch.isin(y, fold) & train_rows
        sc, mu, ws = _fit_code_map(feats[fit], codes[y[fit]], alphas)
        cv += torch.tensor([_code_accuracy(sc, mu, w, feats[held], y[held], codes, fold.tolist()) for w in ws])
    best = int(cv.argmax())
    fit = torch.isin(y, torch.tensor(seen)) & train_rows
    test = torch.isin(y, torch.tensor(unseen)) & test_rows
    sc, mu, (w,) = _fit_code_map(feats[fit], codes[y[fit]], [alphas[best]])
    return dict(unseen=unseen, n_seen_words=len(seen), alpha=alphas[best],
                cv_accuracy=dict(zip(alphas, (cv / n_folds).tolist())),
                zero_shot=_code_accuracy(sc, mu, w, feats[test], y[test], codes, unseen),
                n_test_utterances=int(test.sum()), chance=1.0 / len(unseen))


def run_zeroshot_words(n_neurons: int = 500, n_bins: int = 4, n_pos: int = 3, n_unseen: int = 3, n_splits: int = 5,
                       seed: int = 0, speeds=(130, 170, 210), pitches=(50,), held_out_voices: int = 2,
                       n_folds: int = 3, device_model=None) -> dict:
    """Protocol A: the ten digit names unseen at once (10-way) and ``n_splits`` splits of ``n_unseen`` digit
    names (the first is seven, eight, nine; the others random), for the reservoir and for the raw binned
    cochlear spikes with the same readout; each (a) with every voice in training (other words) and test, and
    (b) speaker-independent: the last ``held_out_voices`` voices never in training, the test only theirs."""
    t0 = time.perf_counter()
    words = list(VOCABULARY) + list(DIGIT_WORDS)
    digits = list(range(len(VOCABULARY), len(words)))
    trans = [phonemes(w) for w in words]
    for d in digits:  # no seen word may sound like an unseen one
        same = [words[i] for i in range(len(VOCABULARY)) if trans[i] == trans[d]]
        if same:
            raise ValueError(f"vocabulary words {same} are transcribed like the digit name {words[d]!r}")
    x, y, meta = load_spoken_words(words, speeds=speeds, pitches=pitches)
    t_data = time.perf_counter() - t0
    voices = meta["voices"]
    if not 0 < held_out_voices < len(voices):
        raise ValueError(f"held_out_voices must lie in [1, {len(voices) - 1}], got {held_out_voices}")
    test_voices = voices[-held_out_voices:]
    new_voice = torch.tensor([u[0] in test_voices for u in meta["utterances"]])
    lsm = LiquidStateMachine(x.shape[2], n_neurons, p_in=0.2, tau=3.0, input_scale=1.0, device_model=device_model,
                             seed=seed + 1)
    t1 = time.perf_counter()
    feats = dict(lsm=lsm.features(x, n_bins), raw=raw_features(x, n_bins))
    t_sim = time.perf_counter() - t1
    gen = torch.Generator().manual_seed(seed)
    splits = [digits] + [digits[-n_unseen:]]
    while len(splits) < n_splits + 1:
        s = sorted(torch.tensor(digits)[torch.randperm(len(digits), generator=gen)[:n_unseen]].tolist())
        if s not in splits:
            splits.append(s)
    out = dict(n_neurons=n_neurons, n_bins=n_bins, n_pos=n_pos, n_folds=n_folds, n_words=len(words),
               n_vocabulary=len(VOCABULARY), n_utterances=len(y), voices=voices, held_out_voices=test_voices,
               speeds=list(speeds), pitches=list(pitches), data_s=t_data, simulate_s=t_sim,
               reservoir=lsm.stats(), transcriptions={w: " ".join(t) for w, t in zip(words, trans)})
    settings = {"all_voices": (None, None), "new_voices": (~new_voice, new_voice)}
    for name, f in feats.items():
        out[name] = dict(features=f.shape[1])
        for setting, (train_rows, test_rows) in settings.items():
            runs = []
            for s in splits:
                seen_words = [i for i in range(len(words)) if i not in s]
                inventory = sorted({p for i in seen_words for p in trans[i]})  # seen words' phonemes only
                r = word_zero_shot(f, y, phoneme_code(trans, inventory, n_pos), s, n_folds=n_folds, seed=seed,
                                   train_rows=train_rows, test_rows=test_rows)
                r["unseen_words"] = [words[i] for i in s]
                runs.append(r)
            three = torch.tensor([r["zero_shot"] for r in runs[1:]])
            out[name][setting] = dict(ten_way=runs[0]["zero_shot"], ten_way_chance=0.1,
                                      ten_way_test_utterances=runs[0]["n_test_utterances"],
                                      splits_mean=float(three.mean()),
                                      splits_std=float(three.std()) if len(three) > 1 else 0.0,
                                      splits_chance=1.0 / n_unseen, runs=runs)
    out["total_s"] = time.perf_counter() - t0
    return out
