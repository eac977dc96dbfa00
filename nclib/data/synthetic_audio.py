"""Procedural, deterministic stand-ins for the audio experiment's data (quick profile).

No cough, music, speech-command or acoustic-scene recordings ship with any dependency
and none can be downloaded offline, so the quick profile synthesises them with numpy:

``music``
    10 "genres" named after GTZAN's, each a recipe of tempo, note density, register,
    scale, timbre (number and roll-off of harmonics, odd-only or not), note decay
    (plucked or sustained), kick and hi-hat levels and distortion.
``speech``
    10 "words": sequences of 2-3 vowels made by formant synthesis (a glottal pulse train
    with pitch jitter shaped by moving formant resonances), some with an /s/ or /t/
    onset, spoken by 8 "speakers" (pitch and vocal-tract-length scaling).
``scenes``
    10 acoustic "scenes" named after DCASE 2018 task 1's: coloured-noise textures with
    rumble, hum, babble and slow level changes plus sparse events (clicks, chirps, beeps).
``cough`` (the target)
    1-3 cough-like bursts (broadband noise, fast attack, exponential decay) over
    background noise; *positive* clips also carry a faint wheeze (a sustained tonal
    partial) and/or crackles (trains of short clicks) at a random, sometimes very low
    level, so that the task is learnable but far from trivially separable. Imbalanced as
    the paper's Coswara selection (960 positive : 428 negative), by default 1,729 : 771:
    2,500 clips, enough for a 1,000-clip test set (the quick profile splits them 40 / 20 /
    40), so that the test-set error of an AUROC (about 0.01-0.015) is small next to the
    differences between models.

Every parameter has random per-clip variation (tempo, pitch, speaker, levels, timing,
noise), so the source tasks are learnable but not trivial. What these stand-ins can
show: that the pipeline, the scores and their evaluation run end to end, and how the
scores rank models on *these* tasks. What they cannot show: anything about real coughs,
COVID-19 or the paper's numbers.

Determinism: clip ``i`` of class ``c`` is drawn from its own generator seeded with
``(seed, task, c, i)``, so the same arguments give identical arrays on every call and
platform-independent numpy code, and a larger data set extends a smaller one with the
same clips (in a different, seeded order).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import NamedTuple

import numpy as np

from nclib.data.base import Dataset

DEFAULT_SAMPLE_RATE = 48_000
TASKS = ("music", "speech", "scenes", "cough")
SOURCE_TASKS = ("music", "speech", "scenes")
#: Analysis windows of the paper (50 % overlap): 40 ms for scenes and music, 30 ms for
#: speech (pre-training), 100 ms for the cough target.
WINDOW_SECONDS = {"music": 0.04, "speech": 0.03, "scenes": 0.04, "cough": 0.1}
#: Short clips keep the quick profile on a CPU budget: 49 (music, scenes) and 65 (speech)
#: log-mel frames for the source tasks, 29 for the target.
DURATION_SECONDS = {"music": 1.0, "speech": 1.0, "scenes": 1.0, "cough": 1.5}
_TASK_CODES = {"music": 1, "speech": 2, "scenes": 3, "cough": 4}
_TINY = 1e-12

# --------------------------------------------------------------------------- signals


def _rms(signal: np.ndarray) -> float:
    return float(np.sqrt(np.mean(signal**2) + _TINY))


def _spectral_gain(freqs: np.ndarray, slope_db: float, low: float, high: float) -> np.ndarray:
    """Amplitude gain of a spectral tilt (dB per octave around 1 kHz) within a soft band."""
    f = np.maximum(freqs, 1.0)
    tilt = (f / 1000.0) ** (slope_db / 6.0206)
    return tilt / (1.0 + (low / f) ** 4) / (1.0 + (f / high) ** 4)


def _coloured_noise(rng, num_samples: int, sample_rate: int, slope_db: float = -3.0,
                    low: float = 30.0, high: float = 16_000.0) -> np.ndarray:
    """Gaussian noise with a spectral tilt and band, unit RMS, shape (num_samples,)."""
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    freqs = np.fft.rfftfreq(num_samples, 1.0 / sample_rate)
    noise = np.fft.irfft(spectrum * _spectral_gain(freqs, slope_db, low, high), num_samples)
    return noise / _rms(noise)


def _envelope(num_samples: int, sample_rate: int, attack: float, decay: float) -> np.ndarray:
    """Linear attack over ``attack`` seconds, then exponential decay (time constant ``decay``)."""
    t = np.arange(num_samples) / sample_rate
    return np.minimum(t / attack, 1.0) * np.exp(-np.maximum(t - attack, 0.0) / decay)


def _fade(num_samples: int, sample_rate: int, ramp: float = 0.01) -> np.ndarray:
    """Flat envelope with raised-cosine ramps of ``ramp`` seconds at both ends."""
    ramp_len = max(1, min(int(ramp * sample_rate), num_samples // 2))
    envelope = np.ones(num_samples)
    rise = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp_len) / ramp_len)
    envelope[:ramp_len] = rise
    envelope[num_samples - ramp_len:] = rise[::-1]
    return envelope


def _tone(frequency, sample_rate: int, num_samples: int, harmonics=(1.0,), phase: float = 0.0):
    """Sum of harmonics of a (possibly per-sample) fundamental; unit peak amplitude per partial."""
    frequency = np.broadcast_to(np.asarray(frequency, dtype=float), (num_samples,))
    phase = phase + 2 * np.pi * np.cumsum(frequency) / sample_rate
    out = np.zeros(num_samples)
    for k, amplitude in enumerate(harmonics, start=1):
        alias_free = k * frequency < 0.45 * sample_rate
        out += amplitude * np.sin(k * phase) * alias_free
    return out


def _add_at(signal: np.ndarray, event: np.ndarray, start: int) -> None:
    """Add ``event`` into ``signal`` from sample ``start`` on (which may be negative),
    cut at both ends of ``signal``."""
    start = int(start)
    skip = max(0, -start)
    stop = min(len(signal), start + len(event))
    if stop > start + skip:
        signal[start + skip:stop] += event[skip: stop - start]


def _smooth_random(rng, num_samples: int, sample_rate: int, rate: float) -> np.ndarray:
    """Smooth standard-normal fluctuation with about ``rate`` independent values per second."""
    knots = max(2, int(np.ceil(num_samples / sample_rate * rate)) + 2)
    positions = np.linspace(0, num_samples, knots)
    return np.interp(np.arange(num_samples), positions, rng.standard_normal(knots))


def _shape_frames(signal: np.ndarray, gains: np.ndarray, frame: int) -> np.ndarray:
    """Time-varying filter: Hann-windowed frames (hop ``frame // 2``) multiplied by
    ``gains`` of shape (num_frames, frame // 2 + 1), overlap-added.

    Frame ``k`` is centred on sample ``k * frame // 2``; with unit gains the signal comes
    back unchanged (periodic Hann windows at 50 % overlap sum to one).
    """
    hop = frame // 2
    num_frames = gains.shape[0]
    padded = np.zeros((num_frames + 1) * hop)
    padded[hop:hop + len(signal)] = signal
    index = np.arange(num_frames)[:, None] * hop + np.arange(frame)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(frame) / frame)
    frames = np.fft.irfft(np.fft.rfft(padded[index] * window, axis=1) * gains, frame, axis=1)
    out = np.zeros_like(padded)
    out[: num_frames * hop] += frames[:, :hop].ravel()
    out[hop: (num_frames + 1) * hop] += frames[:, hop:].ravel()
    return out[hop:hop + len(signal)]


def _num_frames(num_samples: int, frame: int) -> int:
    return num_samples // (frame // 2) + 2


def _finish(clip: np.ndarray, rng) -> np.ndarray:
    """Remove DC, scale to a random peak in [0.3, 0.9]; float32 in [-1, 1]."""
    clip = clip - clip.mean()
    peak = np.max(np.abs(clip))
    if not peak > 0:
        raise ValueError("internal error: a synthetic clip came out silent")
    return (clip * (rng.uniform(0.3, 0.9) / peak)).astype(np.float32)


def _log_level(rng, level: float, spread_db: float = 4.0) -> float:
    """``level`` times a random factor of +-``spread_db`` dB."""
    return level * 10 ** (rng.uniform(-spread_db, spread_db) / 20)


# --------------------------------------------------------------------------- music

_SCALES = {
    "major": [0, 2, 4, 5, 7, 9, 11], "minor": [0, 2, 3, 5, 7, 8, 10],
    "pentatonic": [0, 2, 4, 7, 9], "blues": [0, 3, 5, 6, 7, 10], "chromatic": list(range(12)),
}


class _Genre(NamedTuple):
    tempo: float  # beats per minute
    notes_per_beat: int
    harmonics: int
    rolloff: float  # harmonic k has amplitude k ** -rolloff
    odd_only: bool  # clarinet-like timbre
    register: int  # MIDI note of the root
    note_decay: float  # seconds: plucked (short) or sustained (long)
    kick: float
    hat: float
    drive: float  # tanh distortion, 0 for none
    scale: str
    offbeat: bool  # notes between the beats


_GENRES = {name: _Genre(*recipe) for name, recipe in {
    "blues": (80, 1, 7, 1.0, False, 48, 0.30, 0.5, 0.2, 0.5, "blues", False),
    "classical": (90, 2, 6, 1.6, False, 67, 0.50, 0.0, 0.0, 0.0, "major", False),
    "country": (110, 2, 8, 1.2, False, 55, 0.08, 0.4, 0.2, 0.0, "pentatonic", False),
    "disco": (120, 2, 6, 1.2, False, 60, 0.10, 1.2, 0.6, 0.0, "major", False),
    "hiphop": (90, 1, 4, 1.5, False, 36, 0.35, 1.3, 0.3, 0.0, "minor", False),
    "jazz": (130, 3, 5, 1.8, True, 57, 0.20, 0.2, 0.4, 0.0, "blues", False),
    "metal": (170, 4, 12, 0.7, False, 40, 0.15, 1.0, 0.6, 5.0, "chromatic", False),
    "pop": (115, 2, 5, 1.4, False, 64, 0.20, 0.8, 0.4, 0.0, "major", False),
    "reggae": (75, 2, 6, 1.3, False, 55, 0.10, 0.6, 0.3, 0.0, "major", True),
    "rock": (125, 2, 10, 1.0, False, 52, 0.30, 1.0, 0.4, 2.0, "minor", False),
}.items()}


def _note(rng, midi: float, num_samples: int, sample_rate: int, genre: _Genre, rolloff: float):
    k = np.arange(1, genre.harmonics + 1)
    amplitudes = k ** -rolloff * rng.uniform(0.7, 1.3, genre.harmonics)
    if genre.odd_only:
        amplitudes[1::2] = 0.0
    frequency = 440.0 * 2 ** ((midi - 69) / 12)
    envelope = _envelope(num_samples, sample_rate, 0.005, genre.note_decay * rng.uniform(0.7, 1.3))
    return _tone(frequency, sample_rate, num_samples, amplitudes, rng.uniform(0, 2 * np.pi)) * envelope


def _drums(rng, num_samples: int, sample_rate: int, beat: float, offset: float, genre: _Genre):
    kick_level, hat_level = genre.kick, genre.hat
    drums = np.zeros(num_samples)
    kick_len, hat_len = int(0.15 * sample_rate), int(0.05 * sample_rate)
    sweep = 45 + 100 * np.exp(-np.arange(kick_len) / (0.03 * sample_rate))
    kick = _tone(sweep, sample_rate, kick_len) * _envelope(kick_len, sample_rate, 0.002, 0.06)
    for start in np.arange(offset, num_samples / sample_rate, beat):
        if kick_level > 0:
            _add_at(drums, _log_level(rng, kick_level) * kick, start * sample_rate)
        if hat_level > 0:
            hat = np.diff(rng.standard_normal(hat_len + 1)) * _envelope(hat_len, sample_rate, 0.001, 0.012)
            _add_at(drums, _log_level(rng, 0.5 * hat_level) * hat, (start + beat / 2) * sample_rate)
    return drums


def _music_clip(rng, label: int, num_samples: int, sample_rate: int) -> np.ndarray:
    genre = list(_GENRES.values())[label]
    scale = _SCALES[genre.scale]
    beat = 60.0 / (genre.tempo * rng.uniform(0.9, 1.1))
    step = beat / genre.notes_per_beat
    root = genre.register + rng.integers(-3, 4)
    rolloff = genre.rolloff + rng.uniform(-0.3, 0.3)
    offset = rng.uniform(0, beat)
    tonal = np.zeros(num_samples)
    for onset in np.arange(offset + (step / 2 if genre.offbeat else 0.0), num_samples / sample_rate, step):
        if rng.random() < 0.15:  # a rest
            continue
        midi = root + scale[rng.integers(len(scale))] + 12 * (rng.random() < 0.2)
        length = int(step * rng.uniform(0.8, 1.6) * sample_rate)
        _add_at(tonal, rng.uniform(0.5, 1.0) * _note(rng, midi, length, sample_rate, genre, rolloff),
                onset * sample_rate)
    tonal /= _rms(tonal)
    if genre.drive > 0:
        tonal = np.tanh(genre.drive * rng.uniform(0.7, 1.3) * tonal)
        tonal /= _rms(tonal)
    clip = tonal + _drums(rng, num_samples, sample_rate, beat, offset, genre)
    noise = _coloured_noise(rng, num_samples, sample_rate, rng.uniform(-6, 0))
    return clip + 10 ** (rng.uniform(-35, -15) / 20) * noise


# --------------------------------------------------------------------------- speech

_VOWELS = {  # formants F1, F2, F3 in Hz (adult male averages)
    "a": (730, 1090, 2440), "e": (530, 1840, 2480), "i": (270, 2290, 3010),
    "o": (570, 840, 2410), "u": (300, 870, 2240),
}
_BANDWIDTHS = np.array([80.0, 100.0, 150.0])
_WORDS = [("", "ai"), ("", "ia"), ("s", "oe"), ("t", "ua"), ("", "eu"),
          ("s", "aoi"), ("t", "iea"), ("", "uio"), ("s", "oae"), ("t", "eiu")]
# 8 speakers: (mean pitch in Hz, vocal-tract scaling of the formants)
_SPEAKERS = [(95, 0.92), (110, 0.96), (125, 1.0), (140, 1.02),
             (185, 1.10), (205, 1.13), (225, 1.16), (245, 1.20)]
_SPEECH_FRAME = 1024


def _formant_tracks(rng, vowels: str, start: float, durations, times: np.ndarray, scale: float):
    """Formant frequencies (3, len(times)): plateaus on each vowel, linear glides between."""
    knots_t, knots_f = [], []
    edges = start + np.r_[0.0, np.cumsum(durations)]
    for vowel, lo, hi in zip(vowels, edges[:-1], edges[1:]):
        formants = np.array(_VOWELS[vowel]) * scale * rng.uniform(0.95, 1.05, 3)
        glide = 0.25 * (hi - lo)
        knots_t += [lo + glide, hi - glide]
        knots_f += [formants, formants]
    knots_f = np.array(knots_f)
    return np.stack([np.interp(times, knots_t, knots_f[:, j]) for j in range(3)])


def _formant_gains(formants: np.ndarray, bandwidths: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """Cascade-resonator magnitude (frames, bins) with a -6 dB/octave source tilt."""
    gain = 1.0 / (1.0 + freqs / 200.0)
    gain = np.broadcast_to(gain, (formants.shape[1], len(freqs))).copy()
    for f_res, bandwidth in zip(formants, bandwidths):
        centre = f_res[:, None] ** 2
        gain *= centre / np.sqrt((centre - freqs**2) ** 2 + (bandwidth * freqs) ** 2)
    return gain


def _voiced(rng, vowels, start, durations, num_samples, sample_rate, f0, scale):
    t = np.arange(num_samples) / sample_rate
    end = start + sum(durations)
    progress = np.clip((t - start) / (end - start), 0, 1)
    pitch = f0 * (1.05 - 0.12 * progress) * (1 + 0.03 * _smooth_random(rng, num_samples, sample_rate, 8))
    cycles = np.floor(np.cumsum(pitch) / sample_rate)
    pulses = np.zeros(num_samples)
    pulse_at = np.flatnonzero(np.diff(cycles) > 0) + 1
    pulses[pulse_at] = rng.uniform(0.85, 1.15, len(pulse_at))  # shimmer
    source = pulses + 0.02 * rng.standard_normal(num_samples)
    gate = np.zeros(num_samples)
    lo, hi = int(start * sample_rate), min(num_samples, int(end * sample_rate))
    gate[lo:hi] = _fade(hi - lo, sample_rate, 0.015)
    hop = _SPEECH_FRAME // 2
    frames = _num_frames(num_samples, _SPEECH_FRAME)
    tracks = _formant_tracks(rng, vowels, start, durations, np.arange(frames) * hop / sample_rate, scale)
    freqs = np.fft.rfftfreq(_SPEECH_FRAME, 1.0 / sample_rate)
    gains = _formant_gains(tracks, _BANDWIDTHS * scale * rng.uniform(0.8, 1.2), freqs)
    voiced = _shape_frames(source * gate, gains, _SPEECH_FRAME)
    return voiced / _rms(voiced[lo:hi])


def _consonant(rng, onset: str, length: int, sample_rate: int, scale: float):
    if onset == "s":
        noise = _coloured_noise(rng, length, sample_rate, 0.0, 3800 * scale, 10_000)
        return 0.5 * noise * _fade(length, sample_rate, 0.02)
    burst = _coloured_noise(rng, length, sample_rate, -2.0, 1500 * scale, 8000)  # "t"
    return 1.5 * burst * _envelope(length, sample_rate, 0.002, 0.012)


def _speech_clip(rng, label: int, num_samples: int, sample_rate: int) -> np.ndarray:
    onset, vowels = _WORDS[label]
    f0, scale = _SPEAKERS[rng.integers(len(_SPEAKERS))]
    f0, scale = f0 * rng.uniform(0.93, 1.07), scale * rng.uniform(0.97, 1.03)
    duration = num_samples / sample_rate
    durations = rng.uniform(0.12, 0.2, len(vowels))
    onset_length = rng.uniform(0.05, 0.09) if onset else 0.0
    fit = min(1.0, 0.8 * duration / (onset_length + durations.sum()))
    durations, onset_length = durations * fit, onset_length * fit
    word_start = rng.uniform(0.02, duration - onset_length - durations.sum() - 0.02)
    clip = _voiced(rng, vowels, word_start + onset_length, durations, num_samples, sample_rate, f0, scale)
    if onset:
        length = int(onset_length * sample_rate)
        _add_at(clip, _consonant(rng, onset, length, sample_rate, scale), word_start * sample_rate)
    noise = _coloured_noise(rng, num_samples, sample_rate, rng.uniform(-6, -1))
    return clip + 10 ** (-rng.uniform(15, 35) / 20) * noise


# --------------------------------------------------------------------------- scenes


class _Scene(NamedTuple):
    colour: float  # spectral tilt of the base texture, dB per octave
    low: float  # band of the texture, Hz
    high: float
    rumble: float  # level of < 200 Hz rumble
    hum_hz: float
    hum: float  # level of a harmonic hum
    babble: float  # level of syllable-modulated 300-3000 Hz noise
    mod_rate: float  # slow level changes per second
    mod_depth: float
    clicks: float  # events per second
    birds: float
    screeches: float
    beeps: float
    beep_hz: float


_SCENES = {name: _Scene(*recipe) for name, recipe in {
    "airport": (-3, 60, 9000, 0.3, 0, 0.0, 0.6, 0.2, 0.2, 1.0, 0.0, 0.0, 0.8, 660),
    "bus": (-6, 30, 6000, 1.0, 90, 0.4, 0.1, 0.5, 0.4, 0.5, 0.0, 0.0, 0.0, 0),
    "metro": (-6, 30, 7000, 1.2, 0, 0.0, 0.0, 1.0, 0.5, 0.0, 0.0, 0.8, 0.0, 0),
    "metro_station": (-3, 50, 9000, 0.4, 0, 0.0, 0.3, 0.3, 0.2, 4.0, 0.0, 0.2, 1.2, 2000),
    "park": (0, 200, 12000, 0.1, 0, 0.0, 0.0, 0.2, 0.2, 0.5, 3.0, 0.0, 0.0, 0),
    "public_square": (-3, 60, 10000, 0.2, 0, 0.0, 0.4, 0.3, 0.2, 3.0, 0.5, 0.0, 0.0, 0),
    "shopping_mall": (-3, 60, 9000, 0.2, 220, 0.3, 0.6, 0.3, 0.1, 1.0, 0.0, 0.0, 0.3, 880),
    "street_pedestrian": (-4, 40, 10000, 0.3, 0, 0.0, 0.3, 0.5, 0.3, 6.0, 0.3, 0.0, 0.0, 0),
    "street_traffic": (-6, 30, 8000, 1.0, 0, 0.0, 0.0, 0.3, 0.8, 0.3, 0.0, 0.0, 0.5, 400),
    "tram": (-5, 30, 8000, 0.7, 300, 0.5, 0.0, 0.8, 0.3, 0.5, 0.0, 0.3, 0.7, 1200),
}.items()}


def _scatter(rng, signal, rate: float, sample_rate: int, make_event) -> None:
    """Add a Poisson number (mean ``rate`` per second) of events at uniform onsets."""
    duration = len(signal) / sample_rate
    for _ in range(rng.poisson(rate * duration)):
        _add_at(signal, make_event(), rng.uniform(-0.1, duration) * sample_rate)


def _click(rng, sample_rate: int) -> np.ndarray:
    length = int(rng.uniform(0.002, 0.006) * sample_rate)
    envelope = _envelope(length, sample_rate, 0.0005, 0.0015)
    return _log_level(rng, 3.0, 6) * rng.standard_normal(length) * envelope


def _chirp(rng, sample_rate: int, low: float, high: float, duration: tuple, upward: bool):
    length = int(rng.uniform(*duration) * sample_rate)
    sweep = np.geomspace(*sorted(rng.uniform(low, high, 2))[:: 1 if upward else -1], length)
    return _log_level(rng, 1.0, 6) * _tone(sweep, sample_rate, length) * _fade(length, sample_rate, 0.005)


def _beep(rng, sample_rate: int, pitch: float) -> np.ndarray:
    length = int(rng.uniform(0.1, 0.3) * sample_rate)
    envelope = _envelope(length, sample_rate, 0.005, 0.15)
    tone = _tone(pitch * rng.uniform(0.97, 1.03), sample_rate, length, (1.0, 0.4, 0.2))
    return _log_level(rng, 1.0) * tone * envelope


def _scene_clip(rng, label: int, num_samples: int, sample_rate: int) -> np.ndarray:
    (colour, low, high, rumble, hum_hz, hum, babble, mod_rate, mod_depth,
     clicks, birds, screeches, beeps, beep_hz) = list(_SCENES.values())[label]
    texture = _coloured_noise(rng, num_samples, sample_rate, colour + rng.uniform(-1, 1), low, high)
    if rumble:
        texture += _log_level(rng, rumble) * _coloured_noise(rng, num_samples, sample_rate, -9, 20, 200)
    if hum:
        texture += _log_level(rng, hum) * _tone(hum_hz * rng.uniform(0.95, 1.05), sample_rate,
                                                num_samples, (1.0, 0.5, 0.3, 0.2))
    if babble:
        voices = _coloured_noise(rng, num_samples, sample_rate, -3, 300, 3000)
        syllables = np.exp(0.8 * _smooth_random(rng, num_samples, sample_rate, 8))
        texture += _log_level(rng, babble) * voices * syllables / _rms(syllables)
    if mod_rate:
        wobble = _smooth_random(rng, num_samples, sample_rate, 2 * mod_rate)
        texture *= np.exp(mod_depth * wobble)
    clip = texture / _rms(texture)
    _scatter(rng, clip, clicks, sample_rate, lambda: _click(rng, sample_rate))
    _scatter(rng, clip, birds, sample_rate,
             lambda: _chirp(rng, sample_rate, 2500, 7000, (0.04, 0.12), True))
    _scatter(rng, clip, screeches, sample_rate,
             lambda: _chirp(rng, sample_rate, 1800, 4500, (0.2, 0.6), False))
    _scatter(rng, clip, beeps, sample_rate, lambda: _beep(rng, sample_rate, beep_hz))
    return clip


# --------------------------------------------------------------------------- cough


def _burst(rng, sample_rate: int) -> np.ndarray:
    """One cough-like burst: broadband noise with a random resonance, fast attack, decay."""
    length = int(rng.uniform(0.15, 0.35) * sample_rate)
    noise = _coloured_noise(rng, length, sample_rate, rng.uniform(-4, 0), 100, 12_000)
    centre, width = rng.uniform(400, 2500), rng.uniform(300, 1200)
    freqs = np.fft.rfftfreq(length, 1.0 / sample_rate)
    resonance = 1.0 + 2.0 * np.exp(-0.5 * ((freqs - centre) / width) ** 2)
    noise = np.fft.irfft(np.fft.rfft(noise) * resonance, length)
    burst = noise * _envelope(length, sample_rate, rng.uniform(0.003, 0.015), rng.uniform(0.03, 0.1))
    return burst / _rms(burst[: int(0.1 * sample_rate)])


def _voiced_tail(rng, sample_rate: int) -> np.ndarray:
    """A pitched, decaying tail some coughs have (both classes: a nuisance, not a cue)."""
    length = int(rng.uniform(0.08, 0.2) * sample_rate)
    pitch = rng.uniform(150, 350) * (1 - 0.2 * np.linspace(0, 1, length))
    harmonics = tuple(rng.uniform(0.3, 1.0) / k for k in range(1, rng.integers(3, 7) + 1))
    return _tone(pitch, sample_rate, length, harmonics) * _envelope(length, sample_rate, 0.01, 0.06)


def _wheeze(rng, num_samples: int, sample_rate: int) -> np.ndarray:
    """A sustained tonal partial (250-900 Hz, slight vibrato), 0.3-0.9 s, unit RMS."""
    length = min(num_samples, int(rng.uniform(0.3, 0.9) * sample_rate))
    pitch = rng.uniform(250, 900) * (1 + 0.01 * _smooth_random(rng, length, sample_rate, 6))
    partials = (1.0, rng.uniform(0.0, 0.5))
    wheeze = _tone(pitch, sample_rate, length, partials) * _fade(length, sample_rate, 0.04)
    return wheeze / _rms(wheeze)


def _crackles(rng, sample_rate: int) -> np.ndarray:
    """A train of 4-15 short damped clicks over 0.1-0.5 s; each click of unit RMS."""
    span = int(rng.uniform(0.1, 0.5) * sample_rate)
    train = np.zeros(span + int(0.01 * sample_rate))
    for start in np.sort(rng.uniform(0, span, rng.integers(4, 16))):
        length = int(rng.uniform(0.002, 0.006) * sample_rate)
        click = _tone(rng.uniform(300, 1500), sample_rate, length, phase=rng.uniform(0, 2 * np.pi))
        click *= _envelope(length, sample_rate, 0.0003, length / sample_rate / 4)
        _add_at(train, click / _rms(click), start)
    return train


def _cough_clip(rng, label: int, num_samples: int, sample_rate: int) -> np.ndarray:
    clip = np.zeros(num_samples)
    duration = num_samples / sample_rate
    num_bursts = int(rng.integers(1, 4))
    slots = np.linspace(0.02, duration - 0.35, num_bursts + 1)
    starts = [rng.uniform(lo, max(lo, hi - 0.2)) for lo, hi in zip(slots[:-1], slots[1:])]
    for start in starts:
        _add_at(clip, 10 ** (rng.uniform(-6, 0) / 20) * _burst(rng, sample_rate), start * sample_rate)
        if rng.random() < 0.4:
            tail = 10 ** (rng.uniform(-22, -10) / 20) * _voiced_tail(rng, sample_rate)
            _add_at(clip, tail, (start + 0.03) * sample_rate)
    if rng.random() < 0.3:  # nuisance hum, both classes
        hum = _tone(rng.uniform(60, 250), sample_rate, num_samples, (1.0, 0.5))
        clip += 10 ** (rng.uniform(-40, -25) / 20) * hum / _rms(hum)
    if rng.random() < 0.3:  # nuisance clicks, both classes
        for _ in range(rng.integers(1, 3)):
            _add_at(clip, 10 ** (rng.uniform(-30, -15) / 20) * _click(rng, sample_rate),
                    rng.uniform(0, duration) * sample_rate)
    if label == 1:
        _add_pathology(rng, clip, starts, sample_rate)
    noise = _coloured_noise(rng, num_samples, sample_rate, rng.uniform(-6, 0))
    return clip + 10 ** (-rng.uniform(15, 35) / 20) * noise


def _add_pathology(rng, clip: np.ndarray, burst_starts, sample_rate: int) -> None:
    """Add a wheeze (-32 to -10 dB) and/or crackles (-28 to -8 dB) relative to the bursts,
    near one of them; onsets are kept at least 0.2 s before the clip's end."""
    kind = rng.choice(["wheeze", "crackles", "both"], p=[0.4, 0.3, 0.3])
    anchor = burst_starts[rng.integers(len(burst_starts))]
    latest = len(clip) - int(0.2 * sample_rate)
    if kind in ("wheeze", "both"):
        level = 10 ** (rng.uniform(-32, -10) / 20)
        onset = min(latest, int((anchor + rng.uniform(-0.1, 0.2)) * sample_rate))
        _add_at(clip, level * _wheeze(rng, len(clip), sample_rate), onset)
    if kind in ("crackles", "both"):
        level = 10 ** (rng.uniform(-28, -8) / 20)
        onset = min(latest, int((anchor + rng.uniform(0.1, 0.4)) * sample_rate))
        _add_at(clip, level * _crackles(rng, sample_rate), onset)


# --------------------------------------------------------------------------- public API

_RENDERERS = {"music": _music_clip, "speech": _speech_clip, "scenes": _scene_clip, "cough": _cough_clip}
_CLASSES = {
    "music": list(_GENRES),
    "speech": [onset + vowels for onset, vowels in _WORDS],
    "scenes": list(_SCENES),
    "cough": ["negative", "positive"],
}
#: Clips per class of each task (the cough classes in the ratio of the paper's Coswara
#: selection).
DEFAULT_COUNTS = {"music": 50, "speech": 50, "scenes": 50, "cough": {"negative": 771, "positive": 1729}}


def task_classes(task: str) -> list[str]:
    """Class names of a synthetic task, in label order.

    Parameters
    ----------
    task : {"music", "speech", "scenes", "cough"}

    Returns
    -------
    list of str
        Label ``c`` is ``task_classes(task)[c]``; for ``"cough"``, 0 is negative and 1
        positive.

    Examples
    --------
    >>> task_classes("cough")
    ['negative', 'positive']
    >>> len(task_classes("music")), task_classes("scenes")[0]
    (10, 'airport')
    """
    if task not in _CLASSES:
        raise ValueError(f"unknown synthetic task {task!r}; expected one of {TASKS}")
    return list(_CLASSES[task])


def _class_counts(task: str, n_per_class) -> np.ndarray:
    """Per-class clip counts from an int, a sequence in label order or a name mapping."""
    classes = task_classes(task)
    if n_per_class is None:
        n_per_class = DEFAULT_COUNTS[task]
    if isinstance(n_per_class, Mapping):
        unknown = set(n_per_class) - set(classes)
        if unknown or set(n_per_class) != set(classes):
            raise ValueError(f"n_per_class must name every class of {task!r} exactly: {classes}")
        n_per_class = [n_per_class[name] for name in classes]
    counts = np.broadcast_to(np.asarray(n_per_class), (len(classes),)) if np.ndim(n_per_class) == 0 \
        else np.asarray(n_per_class)
    if counts.shape != (len(classes),):
        raise ValueError(f"n_per_class needs {len(classes)} counts for {task!r}, got {counts.shape[0]}")
    if counts.dtype.kind not in "iu" or (counts < 0).any() or counts.sum() == 0:
        raise ValueError(f"n_per_class must be non-negative integers, not all zero; got {counts.tolist()}")
    return counts.astype(np.int64)


def _check_settings(seed, duration: float, sample_rate: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(sample_rate, (int, np.integer)) or not 8000 <= sample_rate <= 192_000:
        raise ValueError(f"sample_rate must be an integer in [8000, 192000] Hz, got {sample_rate!r}")
    if not np.isfinite(duration) or not 0.5 <= duration <= 30:
        raise ValueError(f"duration must lie in [0.5, 30] seconds, got {duration!r}")


def generate_clips(task: str, n_per_class=None, seed: int = 0, duration: float | None = None,
                   sample_rate: int = DEFAULT_SAMPLE_RATE) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(label, waveform)`` pairs of a synthetic task one clip at a time.

    The memory-light core of :func:`music_task`, :func:`speech_task`,
    :func:`scenes_task`, :func:`cough_task` and :func:`synthetic_audio_dataset`.

    Parameters
    ----------
    task : {"music", "speech", "scenes", "cough"}
    n_per_class : int, sequence of int (label order) or mapping of class name to int
        Clips per class; default :data:`DEFAULT_COUNTS`.
    seed : int
        Non-negative; clip ``i`` of class ``c`` depends only on ``(seed, task, c, i)``.
    duration : float, optional
        Seconds per clip; default :data:`DURATION_SECONDS`.
    sample_rate : int, default 48000

    Yields
    ------
    label : int
    waveform : ndarray of shape (round(duration * sample_rate),), float32 in [-1, 1]
        Clips come in a seeded random order of the classes.

    Examples
    --------
    >>> clips = list(generate_clips("speech", 1, seed=0, sample_rate=16000))
    >>> len(clips), clips[0][1].shape
    (10, (16000,))
    """
    classes = task_classes(task)
    duration = DURATION_SECONDS[task] if duration is None else float(duration)
    _check_settings(seed, duration, sample_rate)
    counts = _class_counts(task, n_per_class)
    num_samples = int(round(duration * sample_rate))
    pairs = [(label, i) for label in range(len(classes)) for i in range(counts[label])]
    order = np.random.default_rng([int(seed), _TASK_CODES[task]]).permutation(len(pairs))
    render = _RENDERERS[task]
    for position in order:
        label, index = pairs[position]
        rng = np.random.default_rng([int(seed), _TASK_CODES[task], label, index])
        yield label, _finish(render(rng, label, num_samples, int(sample_rate)), rng)


def _waveform_dataset(task, n_per_class, seed, duration, sample_rate) -> Dataset:
    labels, waveforms = [], []
    for label, waveform in generate_clips(task, n_per_class, seed, duration, sample_rate):
        labels.append(label)
        waveforms.append(waveform)
    duration = DURATION_SECONDS[task] if duration is None else float(duration)
    info = {"task": task, "synthetic": True, "seed": int(seed), "sample_rate": int(sample_rate),
            "duration": duration}
    return Dataset(np.stack(waveforms), np.asarray(labels, dtype=np.int64), task_classes(task), info)


def music_task(n_per_class=50, seed: int = 0, duration: float = 1.0,
               sample_rate: int = DEFAULT_SAMPLE_RATE) -> Dataset:
    """Synthetic music-genre source task (stand-in for GTZAN), 10 classes.

    Each genre is a recipe (tempo, notes per beat, register, scale, harmonics and their
    roll-off, note decay, kick and hi-hat levels, distortion) with random tempo, key,
    timbre, loudness and background noise per clip.

    Parameters
    ----------
    n_per_class : int or sequence of int, default 50
    seed : int, default 0
    duration : float, default 1.0
        Seconds.
    sample_rate : int, default 48000

    Returns
    -------
    Dataset
        ``inputs``: waveforms of shape (N, duration * sample_rate), float32 in [-1, 1];
        ``labels`` (N,); ``classes``: genre names; ``info``: task, seed, sample_rate,
        duration.

    Examples
    --------
    >>> data = music_task(n_per_class=1, seed=0, duration=0.5, sample_rate=16000)
    >>> data.inputs.shape, data.classes[:3]
    ((10, 8000), ['blues', 'classical', 'country'])
    """
    return _waveform_dataset("music", n_per_class, seed, duration, sample_rate)


def speech_task(n_per_class=50, seed: int = 0, duration: float = 1.0,
                sample_rate: int = DEFAULT_SAMPLE_RATE) -> Dataset:
    """Synthetic speech-command source task (stand-in for Speech Commands), 10 "words".

    A word is 2-3 vowels (formant synthesis: a jittered glottal pulse train through
    cascade formant resonances that glide between vowel targets), some with an /s/ or
    /t/ onset. One of 8 speakers (pitch 95-245 Hz, formants scaled 0.92-1.20) says it at
    a random time, rate and loudness over background noise.

    Parameters
    ----------
    n_per_class : int or sequence of int, default 50
    seed : int, default 0
    duration : float, default 1.0
    sample_rate : int, default 48000

    Returns
    -------
    Dataset
        Waveforms (N, duration * sample_rate) float32 in [-1, 1], labels, word names.

    Examples
    --------
    >>> speech_task(n_per_class=1, duration=0.5, sample_rate=16000).classes[:3]
    ['ai', 'ia', 'soe']
    """
    return _waveform_dataset("speech", n_per_class, seed, duration, sample_rate)


def scenes_task(n_per_class=50, seed: int = 0, duration: float = 1.0,
                sample_rate: int = DEFAULT_SAMPLE_RATE) -> Dataset:
    """Synthetic acoustic-scene source task (stand-in for DCASE 2018 task 1), 10 classes.

    Each scene is a noise texture (spectral colour and band, rumble, hum, babble, slow
    level changes) plus sparse events (clicks, bird chirps, screeches, beeps) at scene-
    specific rates, all levels and rates varying per clip.

    Parameters
    ----------
    n_per_class : int or sequence of int, default 50
    seed : int, default 0
    duration : float, default 1.0
    sample_rate : int, default 48000

    Returns
    -------
    Dataset
        Waveforms (N, duration * sample_rate) float32 in [-1, 1], labels, scene names.

    Examples
    --------
    >>> scenes_task(n_per_class=2, duration=0.5, sample_rate=16000).inputs.shape
    (20, 8000)
    """
    return _waveform_dataset("scenes", n_per_class, seed, duration, sample_rate)


def cough_task(num_positive: int = 1729, num_negative: int = 771, seed: int = 0,
               duration: float = 1.5, sample_rate: int = DEFAULT_SAMPLE_RATE) -> Dataset:
    """Synthetic binary cough target (stand-in for Coswara's cough-heavy recordings).

    Every clip holds 1-3 cough-like bursts (broadband noise with a random resonance,
    3-15 ms attack, 30-100 ms decay, levels within 6 dB), sometimes a voiced tail, a
    faint hum or stray clicks (in both classes), over coloured background noise at 15-35
    dB below the bursts. Positive clips add a wheeze (a sustained 250-900 Hz partial,
    -32 to -10 dB) and/or crackles (4-15 short clicks, -28 to -8 dB); at the low end of
    those ranges the cue is barely above the noise, so the task is hard. The default
    sizes keep the paper's Coswara ratio (960 positive : 428 negative, about 2.24 : 1) and
    give 2,500 clips: 1,000 / 500 / 1,000 in the quick profile's 40 / 20 / 40 split.

    Parameters
    ----------
    num_positive, num_negative : int
    seed : int, default 0
    duration : float, default 1.5
    sample_rate : int, default 48000

    Returns
    -------
    Dataset
        Waveforms (N, duration * sample_rate) float32 in [-1, 1]; labels 1 = positive,
        0 = negative; classes ``["negative", "positive"]``.

    Examples
    --------
    >>> data = cough_task(num_positive=3, num_negative=2, duration=0.8, sample_rate=16000)
    >>> data.inputs.shape, int(data.labels.sum())
    ((5, 12800), 3)
    """
    counts = {"negative": num_negative, "positive": num_positive}
    return _waveform_dataset("cough", counts, seed, duration, sample_rate)


def synthetic_audio_dataset(task: str, n_per_class=None, seed: int = 0, duration: float | None = None,
                            sample_rate: int = DEFAULT_SAMPLE_RATE,
                            window_seconds: float | None = None) -> Dataset:
    """A synthetic task as log-mel model inputs of shape (N, 1, frames, 64).

    Clips from :func:`generate_clips` go one at a time through the project's front end,
    :func:`nclib.audio.log_mel` (64 mel bands, 50 % overlap), so the waveforms are never
    all held in memory.

    Parameters
    ----------
    task : {"music", "speech", "scenes", "cough"}
    n_per_class : int, sequence of int (label order) or mapping of class name to int
        Default :data:`DEFAULT_COUNTS` (50 per class; cough 771 negative, 1,729 positive).
    seed : int, default 0
    duration : float, optional
        Seconds per clip; default :data:`DURATION_SECONDS` (1 s; cough 1.5 s).
    sample_rate : int, default 48000
    window_seconds : float, optional
        Analysis window; default the paper's, :data:`WINDOW_SECONDS` (40 ms for scenes
        and music, 30 ms for speech, 100 ms for the cough target).

    Returns
    -------
    Dataset
        ``inputs`` float32 of shape (N, 1, frames, 64); ``labels`` (N,); ``classes``;
        ``info`` with task, seed, sample_rate, duration, window_seconds, overlap and
        ``synthetic=True``.

    Examples
    --------
    >>> data = synthetic_audio_dataset("cough", {"negative": 1, "positive": 2}, duration=0.6)
    >>> data.inputs.shape[0], data.inputs.shape[1], data.inputs.shape[3], data.classes
    (3, 1, 64, ['negative', 'positive'])
    """
    from nclib.audio import log_mel

    window = WINDOW_SECONDS.get(task) if window_seconds is None else float(window_seconds)
    if window is None:
        task_classes(task)  # raises the unknown-task error
    duration_s = DURATION_SECONDS[task] if duration is None else float(duration)
    if not 0 < window < duration_s:
        raise ValueError(f"window_seconds must lie in (0, duration={duration_s}), got {window!r}")
    labels, features = [], []
    for label, waveform in generate_clips(task, n_per_class, seed, duration_s, sample_rate):
        labels.append(label)
        features.append(log_mel(waveform, sample_rate, n_mels=64, window_seconds=window, overlap=0.5))
    inputs = np.stack(features)[:, None].astype(np.float32)
    info = {"task": task, "synthetic": True, "seed": int(seed), "sample_rate": int(sample_rate),
            "duration": duration_s, "window_seconds": window, "overlap": 0.5, "n_mels": 64}
    return Dataset(inputs, np.asarray(labels, dtype=np.int64), task_classes(task), info)
