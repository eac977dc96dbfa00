"""The audio front end: reading a recording under a bad-audio policy, log-mel features.

The paper (Section 4, after Bhattacharya et al. 2023) represents each recording as a
64-band log-mel spectrogram from a short-time Fourier transform with a 100 ms FFT window
and 50 % overlap; the pre-training tasks use 40 ms (scenes, music) or 30 ms (speech)
windows. This module implements that front end with librosa and fixes the choices the
paper leaves open:

* **Framing.** ``n_fft = round(window_seconds * sample_rate)`` samples, a Hann window of
  the same length, ``hop = round(n_fft * (1 - overlap))`` and **no centring padding**
  (``center=False``): a clip of ``L >= n_fft`` samples gives exactly
  ``1 + (L - n_fft) // hop`` frames (:func:`num_frames`), and every frame holds only real
  signal.
* **Log.** ``10 * log10(max(power, 1e-10))`` (:func:`librosa.power_to_db` with
  ``ref=1``, ``amin=1e-10``, ``top_db=None``): absolute decibels of the power mel
  spectrogram (Slaney mel scale and filter normalisation, librosa's defaults, 0 Hz to
  Nyquist). No per-clip normalisation, so loudness differences between clips survive;
  digital silence sits at the -100 dB floor.
* **Fixed length** (:func:`fixed_length`): longer spectrograms are cropped **centred**
  (recordings tend to start and end with handling noise and silence); shorter ones are
  padded at the end with the clip's own minimum value (its silence floor), or tiled with
  ``policy="repeat"``.
* **Bad audio** (:func:`read_audio`): every file ends up ``"ok"``, ``"fixed"`` or
  ``"skipped"`` with a reason that is logged (logger ``"nclib.audio"``) and returned in an
  :class:`AudioResult`; nothing is dropped silently and nothing crashes. Data sets built
  from many files (:func:`nclib.data.audio_files.log_mel_dataset`) count these outcomes
  in an :class:`nclib.data.audio_files.AudioReport`.

The bad-audio policy, case by case (status, then reason). The header is read first
(``soundfile.info``) and checked before a single sample is decoded; samples are then
decoded in bounded blocks, so memory never exceeds ``max_seconds`` of mono audio plus one
block, whatever a header claims:

* file missing: skipped, ``"missing file"``;
* file of 0 bytes, or a header without samples: skipped, ``"empty file"``;
* not decodable (corrupt, foreign format): skipped, ``"unreadable"`` (the decoder's
  message is kept as the detail);
* a header sample rate below 1 kHz or above 384 kHz (:data:`MIN_FILE_RATE`,
  :data:`MAX_FILE_RATE`): skipped, ``"implausible sample rate"``;
* longer than ``max_seconds`` (default :data:`MAX_SECONDS`), by the header's frame count
  or by what is actually decoded: skipped, ``"too long"``;
* NaN or infinite samples: skipped, ``"non-finite samples"``;
* a sample beyond ``max_amplitude`` in absolute value (default :data:`MAX_AMPLITUDE`;
  decoded audio is nominally in [-1, 1], so such a file holds garbage or unscaled
  integers): skipped, ``"out-of-range samples"``;
* mixing or resampling that overflows float32, or a spectrogram that is not finite:
  skipped, ``"overflow"`` -- no non-finite value ever reaches the features;
* peak amplitude below 1e-4 (-80 dBFS): skipped, ``"silent"``;
* shorter than one FFT window: skipped, ``"too short"`` -- not one frame of real signal
  exists, so its feature would be nothing but padding;
* two or more channels: fixed, averaged to mono (in float64, so any number of full-scale
  channels mixes without overflow), ``"stereo mixed to mono"``;
* another sample rate: fixed, ``librosa.resample`` (soxr, high quality) to the
  requested rate, ``"resampled"`` (the detail names both rates).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nclib.config import prepare_numba

logger = logging.getLogger("nclib.audio")

PAPER_SAMPLE_RATE = 48_000
PAPER_N_MELS = 64
PAPER_WINDOW_SECONDS = 0.1
PAPER_OVERLAP = 0.5
SILENCE_THRESHOLD = 1e-4
POWER_FLOOR = 1e-10
MIN_FILE_RATE = 1_000
"""Lowest plausible sample rate of a recording, in Hz."""
MAX_FILE_RATE = 384_000
"""Highest plausible sample rate of a recording, in Hz."""
MAX_SECONDS = 300.0
"""Default longest recording read, in seconds (bounds memory: 5 minutes)."""
MAX_AMPLITUDE = 1e3
"""Default largest plausible absolute sample value after decoding (nominal range [-1, 1])."""
_BLOCK_SAMPLES = 1 << 22  # samples (all channels) decoded at a time: 32 MiB of float64
POLICIES = ("pad", "repeat")

MISSING = "missing file"
EMPTY = "empty file"
UNREADABLE = "unreadable"
NON_FINITE = "non-finite samples"
SILENT = "silent"
TOO_SHORT = "too short"
BAD_RATE = "implausible sample rate"
TOO_LONG = "too long"
OUT_OF_RANGE = "out-of-range samples"
OVERFLOW = "overflow"
STEREO = "stereo mixed to mono"
RESAMPLED = "resampled"


def frame_settings(sample_rate, window_seconds: float = PAPER_WINDOW_SECONDS,
                   overlap: float = PAPER_OVERLAP) -> tuple[int, int]:
    """FFT length and hop, in samples, for a window length and overlap.

    Parameters
    ----------
    sample_rate : int
        Samples per second, > 0.
    window_seconds : float
        FFT window length in seconds (the paper: 0.1 for Coswara, 0.04 / 0.03 for the
        source tasks).
    overlap : float
        Fraction of a window shared by consecutive frames, in [0, 1).

    Returns
    -------
    n_fft, hop : int
        ``round(window_seconds * sample_rate)`` and ``round(n_fft * (1 - overlap))``.

    Examples
    --------
    >>> frame_settings(48_000)
    (4800, 2400)
    >>> frame_settings(16_000, 0.03)
    (480, 240)
    """
    sample_rate = check_sample_rate(sample_rate)
    if not np.isfinite(window_seconds) or window_seconds <= 0:
        raise ValueError(f"window_seconds must be positive, got {window_seconds}")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must lie in [0, 1), got {overlap}")
    n_fft = int(round(window_seconds * sample_rate))
    hop = int(round(n_fft * (1 - overlap)))
    if n_fft < 2 or hop < 1:
        raise ValueError(
            f"a {window_seconds} s window at {sample_rate} Hz is {n_fft} samples; need at least 2"
        )
    return n_fft, hop


def num_frames(num_samples: int, sample_rate, window_seconds: float = PAPER_WINDOW_SECONDS,
               overlap: float = PAPER_OVERLAP) -> int:
    """Number of frames :func:`log_mel` gives for a clip of ``num_samples`` samples.

    ``1 + (num_samples - n_fft) // hop`` (no centring padding); 0 when the clip is
    shorter than one window. Use it to choose the ``frames`` of a fixed-length input.

    Examples
    --------
    >>> num_frames(8 * 48_000, 48_000)   # 8 s at the paper's Coswara settings
    159
    >>> num_frames(16_000, 16_000, 0.03)  # 1 s speech command, 30 ms windows
    65
    """
    n_fft, hop = frame_settings(sample_rate, window_seconds, overlap)
    if num_samples < n_fft:
        return 0
    return 1 + (int(num_samples) - n_fft) // hop


def log_mel(waveform, sample_rate, n_mels: int = PAPER_N_MELS,
            window_seconds: float = PAPER_WINDOW_SECONDS,
            overlap: float = PAPER_OVERLAP) -> np.ndarray:
    """Log-mel spectrogram of a mono waveform (the paper's input representation).

    Parameters
    ----------
    waveform : array-like of shape (num_samples,)
        Finite samples, nominally in [-1, 1]; at least one FFT window long.
    sample_rate : int
        Samples per second of ``waveform``.
    n_mels : int
        Mel bands (the paper: 64).
    window_seconds : float
        FFT (and Hann window) length in seconds (the paper: 0.1 for Coswara).
    overlap : float
        Overlap of consecutive windows (the paper: 0.5).

    Returns
    -------
    ndarray of shape (frames, n_mels), float32
        ``10 log10`` of the power mel spectrogram floored at 1e-10 (see the module
        docstring); ``frames == num_frames(len(waveform), sample_rate, window_seconds,
        overlap)``.

    Raises
    ------
    ValueError
        Not 1-D, not finite, empty, shorter than one window, or a non-positive rate.

    Examples
    --------
    >>> tone = np.sin(2 * np.pi * 440 * np.arange(48_000) / 48_000)
    >>> log_mel(tone, 48_000).shape   # 1 s: 1 + (48000 - 4800) // 2400 frames
    (19, 64)
    """
    sample_rate = check_sample_rate(sample_rate)
    if int(n_mels) != n_mels or n_mels < 1:
        raise ValueError(f"n_mels must be a positive integer, got {n_mels}")
    samples = _as_waveform(waveform)
    n_fft, hop = frame_settings(sample_rate, window_seconds, overlap)
    if samples.size < n_fft:
        raise ValueError(
            f"waveform has {samples.size} samples, shorter than one FFT window "
            f"({n_fft} samples = {window_seconds} s at {sample_rate} Hz)"
        )
    prepare_numba()
    import librosa

    power = librosa.feature.melspectrogram(
        y=samples, sr=sample_rate, n_fft=n_fft, hop_length=hop, win_length=n_fft,
        window="hann", center=False, power=2.0, n_mels=int(n_mels),
    )
    decibels = librosa.power_to_db(power, ref=1.0, amin=POWER_FLOOR, top_db=None)
    return np.ascontiguousarray(decibels.T, dtype=np.float32)


def fixed_length(log_mel, frames: int, policy: str = "pad") -> np.ndarray:
    """Crop or extend a spectrogram to exactly ``frames`` frames.

    Longer inputs are cropped centred (``start = (length - frames) // 2``). Shorter
    inputs are extended at the end: ``policy="pad"`` repeats the spectrogram's minimum
    value (its silence floor), ``policy="repeat"`` tiles the spectrogram from its start.

    Parameters
    ----------
    log_mel : array-like of shape (length, n_mels)
    frames : int
        Wanted number of frames, >= 1.
    policy : {"pad", "repeat"}

    Returns
    -------
    ndarray of shape (frames, n_mels), float32

    Examples
    --------
    >>> spectrogram = np.array([[1.0], [2.0], [3.0]])
    >>> fixed_length(spectrogram, 5)[:, 0].tolist()
    [1.0, 2.0, 3.0, 1.0, 1.0]
    >>> fixed_length(spectrogram, 5, policy="repeat")[:, 0].tolist()
    [1.0, 2.0, 3.0, 1.0, 2.0]
    >>> fixed_length(np.arange(6.0)[:, None], 2)[:, 0].tolist()   # centred crop
    [2.0, 3.0]
    """
    spectrogram = np.asarray(log_mel, dtype=np.float32)
    if spectrogram.ndim != 2 or spectrogram.shape[0] == 0 or spectrogram.shape[1] == 0:
        raise ValueError(f"log_mel must be a non-empty (frames, n_mels) array, got shape {spectrogram.shape}")
    if int(frames) != frames or frames < 1:
        raise ValueError(f"frames must be a positive integer, got {frames}")
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    frames = int(frames)
    length = spectrogram.shape[0]
    if length >= frames:
        start = (length - frames) // 2
        return spectrogram[start:start + frames].copy()
    if policy == "repeat":
        repeats = -(-frames // length)
        return np.tile(spectrogram, (repeats, 1))[:frames].copy()
    floor = np.full((frames - length, spectrogram.shape[1]), spectrogram.min(), dtype=np.float32)
    return np.concatenate([spectrogram, floor])


@dataclass(frozen=True)
class AudioResult:
    """What :func:`read_audio` made of one file.

    Attributes
    ----------
    path : str
    waveform : ndarray of shape (num_samples,), float32, or None
        Mono samples at ``rate``; ``None`` when the file was skipped.
    rate : int
        Sample rate of ``waveform`` (the requested rate).
    status : {"ok", "fixed", "skipped"}
    reasons : tuple of str
        Empty for ``"ok"``; what was fixed, or the one reason for skipping.
    detail : str
        Human-readable specifics (original rate, decoder message, peak level, ...).

    Examples
    --------
    >>> AudioResult("a.wav", None, 48_000, "skipped", ("silent",)).reason
    'silent'
    """

    path: str
    waveform: np.ndarray | None
    rate: int
    status: str
    reasons: tuple = ()
    detail: str = ""

    @property
    def reason(self) -> str:
        """The reasons joined by ``"; "`` (empty for ``"ok"``)."""
        return "; ".join(self.reasons)


def read_audio(path, sample_rate: int = PAPER_SAMPLE_RATE,
               min_seconds: float = PAPER_WINDOW_SECONDS,
               silence_threshold: float = SILENCE_THRESHOLD,
               max_seconds: float = MAX_SECONDS,
               max_amplitude: float = MAX_AMPLITUDE) -> AudioResult:
    """Read a recording as mono float32 at ``sample_rate``, applying the bad-audio policy.

    Decoding is done by soundfile (libsndfile); the policy is the table in the module
    docstring. The header (rate, length) is checked before any sample is decoded, and
    samples are decoded block by block, so a file whose header lies cannot make this
    allocate more than ``max_seconds`` of audio. Skips are logged as warnings and fixes as
    info on logger ``"nclib.audio"``; the function never raises for a bad file.

    Parameters
    ----------
    path : path-like
    sample_rate : int
        Rate of the returned waveform; other rates are resampled (the paper: 48 kHz).
    min_seconds : float
        Clips shorter than this (one FFT window of the front end) are skipped as
        ``"too short"``.
    silence_threshold : float
        Clips whose peak absolute amplitude is below this are skipped as ``"silent"``
        (1e-4 = -80 dBFS, about three steps of 16-bit quantisation).
    max_seconds : float
        Clips longer than this are skipped as ``"too long"`` (default 300 s).
    max_amplitude : float
        Clips with a sample beyond this in absolute value are skipped as
        ``"out-of-range samples"`` (default 1e3; ``numpy.inf`` disables the check).

    Returns
    -------
    AudioResult
        ``waveform`` of shape (num_samples,) float32, finite, or ``None`` when skipped.

    Raises
    ------
    ValueError
        Only for bad arguments (a non-positive rate or limit), never for a bad file.

    Examples
    --------
    >>> read_audio("/no/such/file.wav").status
    'skipped'
    """
    sample_rate = check_sample_rate(sample_rate)
    if not (max_seconds > 0):  # also refuses NaN
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    if not (max_amplitude > 0):
        raise ValueError(f"max_amplitude must be positive, got {max_amplitude}")
    path = Path(path)
    if not path.is_file():
        return skipped_result(path, sample_rate, MISSING, "no such file")
    if path.stat().st_size == 0:
        return skipped_result(path, sample_rate, EMPTY, "0 bytes")
    import soundfile

    try:
        header = soundfile.info(str(path))
    except (RuntimeError, OSError, ValueError, TypeError) as error:  # LibsndfileError is a RuntimeError
        return skipped_result(path, sample_rate, UNREADABLE, str(error))
    file_rate, channels, frames = int(header.samplerate), int(header.channels), int(header.frames)
    if frames <= 0 or channels <= 0:
        return skipped_result(path, sample_rate, EMPTY, "a header but no samples")
    if not MIN_FILE_RATE <= file_rate <= MAX_FILE_RATE:
        return skipped_result(path, sample_rate, BAD_RATE,
                              f"header says {file_rate} Hz, outside {MIN_FILE_RATE}..{MAX_FILE_RATE} Hz")
    max_frames = int(max_seconds * file_rate)
    if frames > max_frames:
        return skipped_result(path, sample_rate, TOO_LONG,
                              f"header says {frames} frames = {frames / file_rate:.1f} s > {max_seconds:g} s")
    try:
        samples = _decode_mono(soundfile, path, channels, max_frames, max_amplitude)
    except _Skip as skip:
        return skipped_result(path, sample_rate, skip.reason, skip.detail)
    except (RuntimeError, OSError, ValueError, TypeError, MemoryError) as error:
        return skipped_result(path, sample_rate, UNREADABLE, str(error))
    if samples.size == 0:
        return skipped_result(path, sample_rate, EMPTY, "a header but no samples")
    fixes, notes = [], []
    if channels > 1:
        fixes.append(STEREO)
        notes.append(f"{channels} channels averaged")
    peak = float(np.abs(samples).max())
    if peak < silence_threshold:
        return skipped_result(path, sample_rate, SILENT, f"peak amplitude {peak:.3g} < {silence_threshold:g}")
    duration = samples.size / file_rate
    if duration < min_seconds:
        return skipped_result(path, sample_rate, TOO_SHORT,
                              f"{duration * 1000:.1f} ms < one {min_seconds * 1000:g} ms window")
    if file_rate != sample_rate:
        with np.errstate(over="ignore", invalid="ignore"):
            samples = np.asarray(_resample(samples, file_rate, sample_rate), dtype=np.float32)
        if not np.isfinite(samples).all():
            return skipped_result(path, sample_rate, OVERFLOW,
                                  f"resampling {file_rate} Hz -> {sample_rate} Hz overflowed float32")
        fixes.append(RESAMPLED)
        notes.append(f"{file_rate} Hz -> {sample_rate} Hz")
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if not fixes:
        return AudioResult(str(path), samples, sample_rate, "ok")
    detail = "; ".join(notes)
    logger.info("fixed %s: %s (%s)", path, "; ".join(fixes), detail)
    return AudioResult(str(path), samples, sample_rate, "fixed", tuple(fixes), detail)


class _Skip(Exception):
    """Internal: a file to skip, with its reason and detail."""

    def __init__(self, reason: str, detail: str):
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def _decode_mono(soundfile, path: Path, channels: int, max_frames: int, max_amplitude: float) -> np.ndarray:
    """Decode ``path`` block by block into mono float32, checking every block.

    Memory: at most ``max_frames`` mono float32 samples plus one float64 block of
    ``_BLOCK_SAMPLES`` samples, whatever the header claims.
    """
    block = max(1, _BLOCK_SAMPLES // channels)
    pieces, total = [], 0
    with soundfile.SoundFile(str(path)) as handle:
        while True:
            data = handle.read(block, dtype="float64", always_2d=True)
            if data.shape[0] == 0:
                break
            total += data.shape[0]
            if total > max_frames:
                raise _Skip(TOO_LONG, f"more than {max_frames} frames decoded "
                                      f"(> {max_frames / handle.samplerate:g} s)")
            finite = np.isfinite(data)
            if not finite.all():
                first = int(np.argmax(~finite.all(axis=1))) + total - data.shape[0]
                raise _Skip(NON_FINITE, f"NaN or infinite samples (first at frame {first})")
            peak = float(np.abs(data).max())
            if peak > max_amplitude:
                raise _Skip(OUT_OF_RANGE, f"peak |sample| {peak:.3g} > {max_amplitude:g} (nominal range [-1, 1])")
            mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
            with np.errstate(over="ignore"):
                mono = mono.astype(np.float32)
            if not np.isfinite(mono).all():
                raise _Skip(OVERFLOW, f"mixing {data.shape[1]} channels overflowed float32 (peak {peak:.3g})")
            pieces.append(mono)
            if data.shape[0] < block:
                break
    return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)


def _resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    prepare_numba()
    import librosa

    return librosa.resample(samples, orig_sr=from_rate, target_sr=to_rate, res_type="soxr_hq")


def skipped_result(path, rate: int, reason: str, detail: str) -> AudioResult:
    """A skipped file's :class:`AudioResult`, logged as a warning on logger ``"nclib.audio"``.

    For readers of collections that apply a check of their own after
    :func:`read_audio` (e.g. a spectrogram that is not finite), so that every skip is
    logged and reported the same way.

    Parameters
    ----------
    path : path-like
    rate : int
    reason : str
        One of the reasons of the module docstring (e.g. :data:`TOO_SHORT`).
    detail : str

    Returns
    -------
    AudioResult
        Status ``"skipped"``, no waveform.

    Examples
    --------
    >>> skipped_result("a.wav", 48_000, TOO_SHORT, "2 ms").reason
    'too short'
    """
    logger.warning("skipped %s: %s (%s)", path, reason, detail)
    return AudioResult(str(path), None, rate, "skipped", (reason,), detail)


def check_sample_rate(sample_rate) -> int:
    """The sample rate as an int, or a ``ValueError`` unless it is a positive integer.

    Examples
    --------
    >>> check_sample_rate(48_000.0)
    48000
    """
    try:
        rate = int(sample_rate)
    except (TypeError, ValueError):
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}") from None
    if rate != sample_rate or rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    return rate


def _as_waveform(waveform) -> np.ndarray:
    try:
        samples = np.asarray(waveform, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f"waveform must be a numeric array: {error}") from None
    if samples.ndim != 1:
        raise ValueError(f"waveform must be 1-D (mono samples), got shape {samples.shape}")
    if samples.size == 0:
        raise ValueError("waveform is empty")
    if not np.isfinite(samples).all():
        first = int(np.argmax(~np.isfinite(samples)))
        raise ValueError(f"waveform contains NaN or inf (first at sample {first})")
    return np.ascontiguousarray(samples)
