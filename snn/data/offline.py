"""The data sets that need no download: the static image sets and their event and audio stand-ins.

``'fashion-mnist'``  Fashion-MNIST IDX files (Debian's ``dataset-fashion-mnist``, ``$SNN_DATA`` or ``root``);
                     images ``[1, 28, 28]``.
``'digits'``         scikit-learn's 8x8 digits (shipped with scikit-learn); images ``[1, 8, 8]``.
``'event-fmnist'``   Fashion-MNIST seen by a simulated DVS moving along N-MNIST's three saccades
                     (:func:`snn.data.events.images_to_event_tensor`); frames ``[T, 2, 34, 34]``. The converted
                     set is cached in ``$SNN_CACHE/frames`` (keyed by the settings and the IDX files).
``'event-digits'``   the digits, upsampled to 16x16, through the same converter; frames ``[T, 2, 22, 22]``.
``'spoken-digits'``  "zero" ... "nine" spoken by espeak-ng voices through the gammatone cochlea
                     (:mod:`snn.data.audio`); spike counts ``[T, n_channels]``. Train and test hold different
                     voices (``test_voices``, default the last quarter), so the test measures unseen speakers.
"""
from __future__ import annotations

import torch

from ..checks import check_bool
from ._validate import check_int
from .audio import DEFAULT_PITCHES, DEFAULT_SPEEDS, DEFAULT_VOICES, DIGIT_WORDS, load_spoken_digits
from .datasets import InMemoryDataset
from .events import load_event_dataset
from .frame_cache import FrameCache, default_cache_dir, file_identity
from .images import FASHION_CLASSES, fashion_mnist_files, load_digits, load_fashion_mnist
from .registry import register

__all__ = ["spoken_digits"]

DIGIT_CLASSES = tuple(str(d) for d in range(10))


def _subset(ds: InMemoryDataset, n, seed) -> InMemoryDataset:
    if n is not None:
        n = check_int(n, "n (subset size)", ds.name, 1)
    return ds.subset(n, check_int(seed, "seed", ds.name))


def fashion_mnist(root=None, split="train", n=None, seed=0):
    """Fashion-MNIST images ``[1, 28, 28]`` in [0, 1]; ``n``: a random subset of that size (``seed``)."""
    x, y = load_fashion_mnist(split, root)
    return _subset(InMemoryDataset(x, y, name="fashion-mnist", classes=FASHION_CLASSES, sequence=False), n, seed)


def digits(root=None, split="train", n=None, seed=0):
    """scikit-learn's digits ``[1, 8, 8]`` in [0, 1] (``root`` is not used: the data ship with scikit-learn)."""
    x, y = load_digits(split)
    return _subset(InMemoryDataset(x, y, name="digits", classes=DIGIT_CLASSES, sequence=False), n, seed)


def _source_identity(name, root, split) -> dict:
    """What the converted set depends on besides the settings: the image files, or scikit-learn's version."""
    if name == "event-fmnist":
        return {"files": [file_identity(p) for p in fashion_mnist_files(split, root)]}
    import sklearn

    return {"scikit-learn": sklearn.__version__}


def _event_standin(name, classes, root, split, n, seed, n_frames, cache, converter):
    n = None if n is None else check_int(n, "n (subset size)", name, 1)
    seed, n_frames = check_int(seed, "seed", name), check_int(n_frames, "n_frames", name, 1)
    cache = check_bool(cache, "cache", name)
    convert = lambda: dict(zip(("frames", "labels"), load_event_dataset(  # noqa: E731
        name, split, n=n, n_bins=n_frames, seed=seed, data_dir=root, **converter)))
    if cache:
        key = {"dataset": name, "split": split, "n": n, "seed": seed, "n_frames": n_frames, "converter": converter,
               "source": _source_identity(name, root, split), "version": 1}
        shaped = lambda e: (set(e) == {"frames", "labels"} and e["frames"].dtype == torch.uint8  # noqa: E731
                            and e["frames"].dim() == 5 and e["frames"].shape[0] == n_frames
                            and e["labels"].dtype == torch.int64 and e["labels"].shape == e["frames"].shape[1:2])
        entry = FrameCache(default_cache_dir() / name).fetch(
            key, convert, lambda e: None if shaped(e) else "it does not hold uint8 frames [T, N, 2, H, W] and "
                                                            "int64 labels [N]")
    else:
        entry = convert()
    return InMemoryDataset(entry["frames"], entry["labels"], name=name, classes=classes, sequence=True)


def event_fmnist(root=None, split="train", n=None, seed=0, n_frames=30, threshold=0.3, amplitude=3.0,
                 steps_per_saccade=10, cache=True):
    """Fashion-MNIST through the saccade DVS converter: frames ``[n_frames, 2, 34, 34]`` of event counts
    (``n_frames`` must divide ``3 * steps_per_saccade``); the converted set is cached on disk (``cache``)."""
    return _event_standin("event-fmnist", FASHION_CLASSES, root, split, n, seed, n_frames, cache,
                          dict(threshold=threshold, amplitude=amplitude, steps_per_saccade=steps_per_saccade))


def event_digits(root=None, split="train", n=None, seed=0, n_frames=30, threshold=0.3, amplitude=3.0,
                 steps_per_saccade=10, cache=True):
    """The digits through the saccade DVS converter: frames ``[n_frames, 2, 22, 22]`` (cached like
    ``event-fmnist``)."""
    return _event_standin("event-digits", DIGIT_CLASSES, root, split, n, seed, n_frames, cache,
                          dict(threshold=threshold, amplitude=amplitude, steps_per_saccade=steps_per_saccade))


def spoken_digits(root=None, split="train", n=None, seed=0, n_frames=40, n_channels=32, voices=DEFAULT_VOICES,
                  speeds=DEFAULT_SPEEDS, pitches=DEFAULT_PITCHES, test_voices=None, duration_s=0.8,
                  max_rate=200.0, cache=True):
    """Spoken digits as cochlear spike counts ``[n_frames, n_channels]``; utterances of ``test_voices``
    (default: the last quarter of ``voices``, at least one) form the test split, the others the train split.
    Needs espeak-ng unless the utterances are cached (``$SNN_CACHE``)."""
    voices = tuple(voices)
    test_voices = tuple(voices[-max(1, len(voices) // 4):] if test_voices is None else test_voices)
    unknown = [v for v in test_voices if v not in voices]
    if unknown or not test_voices or len(test_voices) >= len(voices):
        raise ValueError(f"spoken-digits: test_voices must be a non-empty proper subset of voices {voices}, got "
                         f"{test_voices}")
    x, y, meta = load_spoken_digits(voices, speeds, pitches, n_frames, n_channels, duration_s, max_rate, cache)
    in_test = torch.tensor([u[0] in test_voices for u in meta["utterances"]])
    keep = in_test if split == "test" else ~in_test
    ds = InMemoryDataset(x[:, keep], y[keep], name="spoken-digits", classes=DIGIT_WORDS, sequence=True)
    return _subset(ds, n, seed)


_OFFLINE = "offline: built from files already on this machine"
register("fashion-mnist", fashion_mnist, modality="image", description="Fashion-MNIST images [1, 28, 28]",
         source="IDX files: Debian package dataset-fashion-mnist, $SNN_DATA, or "
                "https://github.com/zalandoresearch/fashion-mnist")
register("digits", digits, modality="image", description="scikit-learn's 8x8 digits [1, 8, 8]",
         source="shipped with scikit-learn")
register("event-fmnist", event_fmnist, modality="event",
         description="Fashion-MNIST through a simulated DVS on N-MNIST's saccades, frames [T, 2, 34, 34]",
         source=_OFFLINE + " (the Fashion-MNIST IDX files)")
register("event-digits", event_digits, modality="event",
         description="scikit-learn digits through the saccade DVS converter, frames [T, 2, 22, 22]",
         source=_OFFLINE + " (scikit-learn's digits)")
register("spoken-digits", spoken_digits, modality="audio",
         description="digits spoken by espeak-ng voices through a gammatone cochlea, spike counts [T, 32]",
         source=_OFFLINE + " (espeak-ng, Debian package espeak-ng)")
