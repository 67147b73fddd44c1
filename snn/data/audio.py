r"""Audio to spikes: a cochlea-like gammatone filterbank and a spoken-digits set made with ``espeak-ng``.

Cochlea model (per utterance, sample rate ``fs`` Hz)

1. Gammatone filterbank: ``n_channels`` centre frequencies ``f_c`` evenly spaced on the ERB-rate scale
   between ``f_lo`` and ``f_hi``; channel ``c`` is the FIR filter with impulse response
   ``g(t) = t³·exp(-2π·1.019·ERB(f_c)·t)·cos(2π f_c t)``, ``ERB(f) = 24.7·(4.37·f/1000 + 1)`` Hz
   (Glasberg & Moore 1990), normalised to unit peak gain.
2. Hair cell: half-wave rectification and power-law compression ``e = max(y, 0)^0.3``, averaged over
   ``frame_ms`` frames (the envelope).
3. Spikes: one integrate-and-fire unit per channel, ``u += r·dt`` and a spike each time ``u`` crosses an
   integer, where the rate ``r = max_rate · e / max(e)`` (Hz; automatic gain control per utterance, so the
   loudest channel-frame fires at ``max_rate``). Spikes are events with ``x = channel``, ``p = 1``.

Spoken words (the digits "zero" … "nine", or any word list): synthesised by ``espeak-ng`` with several voices,
speeds (words per minute) and pitches (0-99), cut to their voiced part, converted to spikes and binned to
``[T, channels]``; cached in ``$SNN_CACHE`` (default ``~/.cache/snn``) keyed by the settings.
:func:`phonemes` gives espeak-ng's phoneme transcription of a word (the text side of the zero-shot task).
"""
from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import torch

from ..checks import check_range
from ..io import atomic_torch_save, safe_torch_load
from ._validate import check_int
from .events import bin_events_channels, make_events

__all__ = ["erb", "erb_space", "gammatone_bank", "cochleagram", "audio_to_events", "synthesize", "phonemes",
           "EspeakNotFound", "load_spoken_words", "load_spoken_digits", "DIGIT_WORDS", "VOCABULARY",
           "DEFAULT_VOICES", "cache_dir", "spoken_words_cache", "read_wav"]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# Common English words for the zero-shot word task (snn.lsm.zeroshot): varied phonemes, none of them a digit
# name, containing one, or sounding like one (checked there against the espeak-ng transcriptions).
VOCABULARY = ("apple", "baby", "back", "ball", "bear", "bed", "bird", "black", "blue", "boat", "book", "box", "boy",
              "bread", "bring", "brown", "bus", "cake", "call", "car", "cat", "chair", "cheese", "child", "city", "deer", "ear",
              "clock", "cloud", "cold", "come", "cook", "cow", "cup", "dance", "dark", "day", "deep", "desk", "dog",
              "door", "down", "dream", "drink", "duck", "earth", "egg", "face", "farm", "fast", "feather", "fish",
              "flag", "floor", "fly", "food", "foot", "frog", "fruit", "game", "garden", "girl", "give", "glass",
              "gold", "good", "grass", "green", "hand", "happy", "hat", "head", "heaven", "hello", "help", "hill",
              "horse", "house", "ice", "jazz", "jump", "key", "king", "kitchen", "lake", "lamp", "lazy", "leaf",
              "light", "lion", "little", "long", "love", "measure", "milk", "moon", "mouse", "music", "name",
              "night", "north", "ocean", "open", "orange", "paper", "park", "pen", "pig", "pink", "plant",
              "puzzle", "rain", "red", "river", "road", "rock", "room", "rose", "run", "salt", "sand", "school",
              "sea", "ship", "shoe", "sing", "sister", "sky", "sleep", "small", "snow", "song", "south", "star",
              "summer", "sun", "table", "teacher", "thank", "thumb", "tiger", "time", "tree", "truck", "under",
              "village", "vision", "voice", "walk", "water", "weather", "wind", "window", "winter", "wolf",
              "yellow", "young", "zebra", "zoo")
DEFAULT_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-us+f2", "en-us+f4", "en-gb+m3",
                  "en-us+m7")
DEFAULT_SPEEDS = (120, 150, 180, 210)
DEFAULT_PITCHES = (25, 50, 75)


class EspeakNotFound(RuntimeError):
    """``espeak-ng`` is not installed (or not on ``PATH``)."""


def erb(f):
    """Equivalent rectangular bandwidth (Hz) at frequency ``f`` (Hz), Glasberg & Moore."""
    return 24.7 * (4.37 * np.asarray(f, dtype=np.float64) / 1000.0 + 1.0)


def erb_space(f_lo: float, f_hi: float, n: int) -> np.ndarray:
    """``n`` centre frequencies (Hz) evenly spaced on the ERB-rate scale ``21.4·log10(4.37 f/1000 + 1)``."""
    if not 0 < f_lo < f_hi or n < 1:
        raise ValueError(f"erb_space: need 0 < f_lo < f_hi and n >= 1, got {f_lo}, {f_hi}, {n}")
    rate = lambda f: 21.4 * np.log10(4.37 * f / 1000 + 1)  # noqa: E731
    r = np.linspace(rate(f_lo), rate(f_hi), n)
    return (10 ** (r / 21.4) - 1) * 1000 / 4.37


def gammatone_bank(fs: int, n_channels: int = 32, f_lo: float = 100.0, f_hi: float = 7000.0,
                   duration_s: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
    """FIR gammatone filters ``[n_channels, taps]`` (4th order) and their centre frequencies (Hz)."""
    if f_hi >= fs / 2:
        raise ValueError(f"gammatone_bank: f_hi={f_hi} Hz must be below the Nyquist frequency {fs / 2} Hz")
    fc = erb_space(f_lo, f_hi, n_channels)
    t = np.arange(int(duration_s * fs)) / fs
    g = t[None, :] ** 3 * np.exp(-2 * np.pi * 1.019 * erb(fc)[:, None] * t) * np.cos(2 * np.pi * fc[:, None] * t)
    gain = np.abs(np.fft.rfft(g, 4 * g.shape[1], axis=1)).max(1, keepdims=True)
    return g / gain, fc


def cochleagram(signal: np.ndarray, fs: int, n_channels: int = 32, frame_ms: float = 1.0, f_lo: float = 100.0,
                f_hi: float = 7000.0) -> np.ndarray:
    """Compressed, rectified filterbank envelope ``[frames, n_channels]`` (see the module docstring)."""
    from scipy.signal import fftconvolve

    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"cochleagram: expected a non-empty 1-D signal, got shape {x.shape}")
    x = x / max(np.abs(x).max(), 1e-12)
    bank, _ = gammatone_bank(fs, n_channels, f_lo, f_hi)
    y = fftconvolve(x[None, :], bank, axes=1)[:, : x.size]
    e = np.maximum(y, 0.0) ** 0.3
    hop = max(1, int(round(fs * frame_ms / 1000)))
    frames = x.size // hop
    return e[:, : frames * hop].reshape(n_channels, frames, hop).mean(2).T


def audio_to_events(signal: np.ndarray, fs: int, n_channels: int = 32, max_rate: float = 200.0,
                    frame_ms: float = 1.0, **bank_kw) -> np.ndarray:
    """Signal → cochlear spike events (``x`` = channel, ``t`` in µs, ``p`` = 1); see the module docstring."""
    if not max_rate > 0:
        raise ValueError(f"max_rate must be > 0 Hz, got {max_rate}")
    env = cochleagram(signal, fs, n_channels, frame_ms, **bank_kw)
    rate = max_rate * env / max(env.max(), 1e-12)
    u = np.cumsum(rate * frame_ms / 1000.0, axis=0)
    n = np.diff(np.floor(u), axis=0, prepend=0.0).astype(np.int64)  # spikes per frame and channel
    f, c = np.nonzero(n)
    reps = n[f, c]
    t_us = (np.repeat(f, reps) * frame_ms * 1000).astype(np.int64)
    ch = np.repeat(c, reps)
    return make_events(ch, np.zeros_like(ch), t_us, np.ones_like(ch))


def _espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise EspeakNotFound("espeak-ng is not installed or not on PATH, so the spoken-digits set cannot be "
                             "synthesised. Install it (Debian/Ubuntu: `apt-get install espeak-ng`), or copy a "
                             "built cache into $SNN_CACHE (default ~/.cache/snn).")
    return exe


def synthesize(text: str, voice: str = "en-us", speed: int = 150, pitch: int = 50) -> tuple[np.ndarray, int]:
    """Speak ``text`` with espeak-ng; returns ``(samples float64 in [-1, 1], sample rate Hz)``."""
    if not 80 <= int(speed) <= 450 or not 0 <= int(pitch) <= 99:
        raise ValueError(f"espeak-ng speed must lie in [80, 450] wpm and pitch in [0, 99], got {speed}, {pitch}")
    out = subprocess.run([_espeak(), "-v", voice, "-s", str(int(speed)), "-p", str(int(pitch)), "--stdout", text],
                         capture_output=True, check=False)
    if out.returncode != 0 or not out.stdout:
        raise RuntimeError(f"espeak-ng failed for voice {voice!r}: {out.stderr.decode(errors='replace').strip()}")
    return read_wav(out.stdout, f"espeak-ng's output for {text!r} (voice {voice!r})")


def read_wav(data: bytes, source: str = "<bytes>") -> tuple[np.ndarray, int]:
    """Mono 16-bit PCM WAV bytes → ``(samples float64 in [-1, 1), sample rate Hz)``; anything else (not a
    WAV, truncated, another sample width, several channels) is a ValueError naming ``source``."""
    try:
        with wave.open(io.BytesIO(data)) as w:
            fs, width, channels, n = w.getframerate(), w.getsampwidth(), w.getnchannels(), w.getnframes()
            frames = w.readframes(n)
    except (wave.Error, EOFError, ValueError) as e:
        raise ValueError(f"{source}: not a readable WAV file ({e or type(e).__name__})") from None
    if width != 2 or channels != 1 or fs < 1:
        raise ValueError(f"{source}: expected mono 16-bit PCM audio at a positive sample rate, got {channels} "
                         f"channel(s) of {8 * width}-bit samples at {fs} Hz")
    if len(frames) % 2:
        raise ValueError(f"{source}: WAV data ends in the middle of a 16-bit sample")
    return np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0, fs


def _trim(x: np.ndarray, fs: int, rel: float = 0.02) -> np.ndarray:
    """Cut leading and trailing silence (samples below ``rel`` of the peak, in 10 ms windows)."""
    hop = fs // 100
    loud = np.flatnonzero(np.abs(x[: x.size // hop * hop]).reshape(-1, hop).max(1) > rel * np.abs(x).max())
    return x[loud[0] * hop:(loud[-1] + 1) * hop] if loud.size else x


def cache_dir() -> Path:
    return Path(os.environ.get("SNN_CACHE", Path.home() / ".cache" / "snn"))


def load_spoken_words(words, voices=DEFAULT_VOICES, speeds=DEFAULT_SPEEDS, pitches=DEFAULT_PITCHES, n_bins: int = 40,
                      n_channels: int = 32, duration_s: float = 0.8, max_rate: float = 200.0, cache: bool = True):
    """Spoken ``words`` as cochlear spikes: ``(spikes [T=n_bins, N, n_channels] float32, labels [N] int64 (index
    into ``words``), meta dict)``, one utterance per (word, voice, speed, pitch). Each utterance is trimmed of
    silence and binned over its first ``duration_s`` seconds (later spikes are dropped). Raises
    :class:`EspeakNotFound` without espeak-ng."""
    words, settings = _settings(words, voices, speeds, pitches, n_bins, n_channels, duration_s, max_rate)
    path = _cache_path(words, settings)
    if cache and path.is_file():
        return _load_cache(path, n_bins, n_channels, len(words))
    _espeak()  # fail early and clearly
    xs, ys, rows = [], [], []
    for (label, word), voice, speed, pitch in itertools.product(enumerate(words), voices, speeds, pitches):
        sig, fs = synthesize(word, voice, speed, pitch)
        ev = audio_to_events(_trim(sig, fs), fs, n_channels, max_rate)
        xs.append(bin_events_channels(ev, n_bins, n_channels, duration=int(duration_s * 1e6)))
        ys.append(label)
        rows.append((voice, speed, pitch))
    x, y = torch.stack(xs, 1), torch.tensor(ys, dtype=torch.int64)
    meta = dict(settings, words=words, utterances=rows)
    if cache:
        atomic_torch_save({"x": x, "y": y, "meta": meta}, path)
    return x, y, meta


def spoken_words_cache(words, voices=DEFAULT_VOICES, speeds=DEFAULT_SPEEDS, pitches=DEFAULT_PITCHES,
                       n_bins: int = 40, n_channels: int = 32, duration_s: float = 0.8,
                       max_rate: float = 200.0) -> Path:
    """The cache file :func:`load_spoken_words` reads and writes for these settings (in :func:`cache_dir`)."""
    return _cache_path(*_settings(words, voices, speeds, pitches, n_bins, n_channels, duration_s, max_rate))


def _settings(words, voices, speeds, pitches, n_bins, n_channels, duration_s, max_rate) -> tuple[list, dict]:
    """The checked word list and the settings dict that keys the cache."""
    words = [str(w) for w in words]
    if not words or len(set(words)) != len(words) or not all(w.strip() for w in words):
        raise ValueError(f"load_spoken_words: need distinct non-empty words, got {words[:5]}...")
    _check_settings(voices, speeds, pitches, n_bins, n_channels, duration_s, max_rate)
    settings = dict(voices=list(voices), speeds=list(speeds), pitches=list(pitches), n_bins=n_bins,
                    n_channels=n_channels, duration_s=duration_s, max_rate=max_rate,
                    version=2)  # changes whenever the conversion does, so that no stale cache is reused
    if tuple(words) != DIGIT_WORDS:  # the digits' cache key predates the word list
        settings["words"] = words
    return words, settings


def _cache_path(words: list, settings: dict) -> Path:
    key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir() / f"spoken-{'digits' if tuple(words) == DIGIT_WORDS else 'words'}-{key}.pt"


def _check_settings(voices, speeds, pitches, n_bins, n_channels, duration_s, max_rate) -> None:
    """The synthesis and binning settings of :func:`load_spoken_words`, checked before any work."""
    who = "load_spoken_words"
    for name, seq in (("voices", voices), ("speeds", speeds), ("pitches", pitches)):
        if isinstance(seq, (str, bytes)) or not len(seq):
            raise ValueError(f"{who}: {name} must be a non-empty list, got {seq!r}")
    for v in voices:
        if not isinstance(v, str) or not v.strip():
            raise ValueError(f"{who}: voices must be espeak-ng voice names, got {v!r}")
    for v in speeds:
        check_int(v, "speeds (words per minute)", who, 80, 450)
    for v in pitches:
        check_int(v, "pitches", who, 0, 99)
    check_int(n_bins, "n_bins", who, 1)
    check_int(n_channels, "n_channels", who, 1)
    check_range(duration_s, "duration_s (s)", who, 0, low_open=True)
    check_range(max_rate, "max_rate (Hz)", who, 0, low_open=True)


def _load_cache(path: Path, n_bins: int, n_channels: int, n_words: int):
    """``(x, y, meta)`` from a cache file written by :func:`load_spoken_words`, loaded without running any
    code from it (tensors and plain data only) and checked against the settings it is keyed by."""
    d = safe_torch_load(path, what="spoken-words cache file")
    x, y, meta = (d.get(k) for k in ("x", "y", "meta")) if isinstance(d, dict) else (None, None, None)
    ok = (isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.dim() == 3
          and x.shape[0] == n_bins and x.shape[2] == n_channels and isinstance(y, torch.Tensor)
          and y.dtype == torch.int64 and y.shape == (x.shape[1],) and isinstance(meta, dict)
          and (y.numel() == 0 or 0 <= int(y.min()) and int(y.max()) < n_words))
    if not ok:
        raise ValueError(f"spoken-words cache file {path} does not hold what snn writes there ({{'x': float32 "
                         f"[{n_bins}, N, {n_channels}], 'y': int64 [N] in 0..{n_words - 1}, 'meta': dict}}); "
                         f"delete it to rebuild the cache")
    return x, y, meta


def load_spoken_digits(voices=DEFAULT_VOICES, speeds=DEFAULT_SPEEDS, pitches=DEFAULT_PITCHES, n_bins: int = 40,
                       n_channels: int = 32, duration_s: float = 0.8, max_rate: float = 200.0, cache: bool = True):
    """The words "zero" … "nine" through :func:`load_spoken_words` (labels = the digits)."""
    return load_spoken_words(DIGIT_WORDS, voices, speeds, pitches, n_bins, n_channels, duration_s, max_rate, cache)


def phonemes(word: str, voice: str = "en-us") -> list[str]:
    """The phonemes of ``word`` as espeak-ng transcribes them (``espeak-ng -q -x --sep=_``, its ASCII phoneme
    mnemonics), stress marks removed: ``phonemes("seven") == ['s', 'E', 'v', '@', 'n']``."""
    if not isinstance(word, str) or not word.strip():
        raise ValueError(f"phonemes: expected a non-empty word, got {word!r}")
    out = subprocess.run([_espeak(), "-q", "-x", "--sep=_", "-v", voice, word], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"espeak-ng failed to transcribe {word!r}: {out.stderr.strip()}")
    toks = [t.replace("'", "").replace(",", "") for t in out.stdout.replace(" ", "_").split("_")]
    return [t for t in (t.strip() for t in toks) if t]
