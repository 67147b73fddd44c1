"""Cochlea filterbank and spike conversion; espeak-ng synthesis; a clear message without espeak-ng."""
import shutil

import numpy as np
import pytest
import torch

from snn.data import audio as A


# Small tensors: one torch thread is the fastest (see the one_thread fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def _tone(f, fs=16000, dur=0.3):
    t = np.arange(int(fs * dur)) / fs
    return np.sin(2 * np.pi * f * t)


def test_erb_space_and_bank():
    fc = A.erb_space(100, 7000, 16)
    assert fc[0] == pytest.approx(100) and fc[-1] == pytest.approx(7000) and np.all(np.diff(fc) > 0)
    bank, fc2 = A.gammatone_bank(16000, 16, 100, 7000)
    assert bank.shape[0] == 16 and np.allclose(fc, fc2)
    with pytest.raises(ValueError, match="Nyquist"):
        A.gammatone_bank(8000, 8, 100, 5000)


def test_tone_excites_its_channel():
    fs = 16000
    for f in (300.0, 2500.0):
        env = A.cochleagram(_tone(f, fs), fs, n_channels=24)
        fc = A.erb_space(100, 7000, 24)
        best = int(env.mean(0).argmax())
        assert abs(np.log(fc[best] / f)) < 0.25  # within ~a quarter octave


def test_spikes_follow_rate():
    fs = 16000
    ev = A.audio_to_events(_tone(1000.0, fs, 0.5), fs, n_channels=16, max_rate=200.0)
    assert ev.size > 0 and (ev["p"] == 1).all() and ev["x"].max() < 16
    counts = np.bincount(ev["x"], minlength=16)
    assert counts.max() <= 200 * 0.5 + 1  # never above max_rate
    assert counts.argmax() == int(A.cochleagram(_tone(1000.0, fs, 0.5), fs, 16).mean(0).argmax())
    with pytest.raises(ValueError, match="1-D"):
        A.cochleagram(np.zeros((2, 10)), fs)
    with pytest.raises(ValueError, match="max_rate"):
        A.audio_to_events(_tone(100.0), fs, max_rate=0)


def test_espeak_missing_gives_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no espeak-ng on PATH
    monkeypatch.setenv("SNN_CACHE", str(tmp_path / "cache"))
    with pytest.raises(A.EspeakNotFound, match="espeak-ng is not installed.*apt-get install espeak-ng"):
        A.load_spoken_digits(voices=("en-us",), speeds=(150,), pitches=(50,))
    with pytest.raises(A.EspeakNotFound):
        A.synthesize("one")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_spoken_digits_small_set(monkeypatch, tmp_path):
    monkeypatch.setenv("SNN_CACHE", str(tmp_path))
    x, y, meta = A.load_spoken_digits(voices=("en-us",), speeds=(150,), pitches=(50,), n_bins=20, n_channels=16)
    assert x.shape == (20, 10, 16) and y.tolist() == list(range(10))
    assert (x.sum((0, 2)) > 10).all()  # every utterance makes spikes
    assert len(list(tmp_path.glob("spoken-digits-*.pt"))) == 1
    x2, _, _ = A.load_spoken_digits(voices=("en-us",), speeds=(150,), pitches=(50,), n_bins=20, n_channels=16)
    assert torch.equal(x, x2)  # from the cache
    with pytest.raises(ValueError, match="speed"):
        A.synthesize("one", speed=10)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_phonemes_and_spoken_words(monkeypatch, tmp_path):
    assert A.phonemes("seven") == ["s", "E", "v", "@", "n"]  # espeak-ng's mnemonics, stress marks removed
    assert A.phonemes("six")[-2:] == ["k", "s"]
    with pytest.raises(ValueError, match="non-empty word"):
        A.phonemes(" ")
    monkeypatch.setenv("SNN_CACHE", str(tmp_path))
    x, y, meta = A.load_spoken_words(["sun", "moon"], voices=("en-us",), speeds=(150, 200), pitches=(50,),
                                     n_bins=10, n_channels=8)
    assert x.shape == (10, 4, 8) and y.tolist() == [0, 0, 1, 1] and meta["words"] == ["sun", "moon"]
    assert x.sum() > 0
    with pytest.raises(ValueError, match="distinct"):
        A.load_spoken_words(["sun", "sun"])
    assert not set(A.VOCABULARY) & set(A.DIGIT_WORDS)
