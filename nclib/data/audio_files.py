"""Labelled log-mel data sets built from audio files, with a report of every file.

:func:`log_mel_dataset` reads a list of recordings through the front end of
:mod:`nclib.audio` (:func:`nclib.audio.read_audio` under the bad-audio policy, then
:func:`nclib.audio.log_mel` and :func:`nclib.audio.fixed_length`) and returns a
:class:`nclib.data.base.Dataset` of fixed-length inputs together with an
:class:`AudioReport` that lists each file as ``"ok"``, ``"fixed"`` or ``"skipped"`` with
its reason, so that no file is dropped silently. The Coswara loader and the audio
source tasks build their data sets with it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nclib.audio import (
    MAX_AMPLITUDE,
    MAX_SECONDS,
    OVERFLOW,
    PAPER_N_MELS,
    PAPER_OVERLAP,
    PAPER_SAMPLE_RATE,
    PAPER_WINDOW_SECONDS,
    POLICIES,
    SILENCE_THRESHOLD,
    TOO_SHORT,
    AudioResult,
    check_sample_rate,
    fixed_length,
    frame_settings,
    log_mel,
    read_audio,
    skipped_result,
)
from nclib.data.base import Dataset


class AudioReport:
    """Per-file outcomes of reading a collection of recordings.

    Every file read through :func:`log_mel_dataset` appears here with its path, status,
    reasons and detail, so skipped files are visible and countable.

    Examples
    --------
    >>> report = AudioReport()
    >>> report.add(AudioResult("a.wav", None, 48_000, "skipped", ("silent",)))
    >>> report.add(AudioResult("b.wav", np.zeros(1), 48_000, "ok"))
    >>> report.counts().to_dict("records")
    [{'reason': 'ok', 'status': 'ok', 'count': 1}, {'reason': 'silent', 'status': 'skipped', 'count': 1}]
    """

    COLUMNS = ("path", "status", "reason", "detail")

    def __init__(self, rows=()):
        self._rows = [dict(zip(self.COLUMNS, map(str, row))) for row in rows]

    def add(self, result: AudioResult) -> None:
        """Record one :class:`nclib.audio.AudioResult`."""
        self._rows.append({"path": str(result.path), "status": result.status,
                           "reason": result.reason, "detail": result.detail})

    def __len__(self) -> int:
        return len(self._rows)

    def table(self) -> pd.DataFrame:
        """One row per file: ``path, status, reason, detail``."""
        return pd.DataFrame(self._rows, columns=list(self.COLUMNS))

    def skipped(self) -> pd.DataFrame:
        """The rows of the skipped files (path, status, reason, detail)."""
        table = self.table()
        return table[table["status"] == "skipped"].reset_index(drop=True)

    def counts(self) -> pd.DataFrame:
        """Files per reason: columns ``reason, status, count``.

        Untouched files count under reason ``"ok"``. A file fixed in two ways (stereo
        *and* resampled) counts once under each reason, so the counts of ``"fixed"``
        rows can exceed the number of fixed files.
        """
        records = []
        for row in self._rows:
            reasons = row["reason"].split("; ") if row["reason"] else ["ok"]
            records.extend({"reason": reason, "status": row["status"]} for reason in reasons)
        if not records:
            return pd.DataFrame({"reason": [], "status": [], "count": []})
        frame = pd.DataFrame(records)
        counts = frame.groupby(["reason", "status"], sort=False).size().reset_index(name="count")
        order = counts["status"].map({"ok": 0, "fixed": 1, "skipped": 2})
        counts = counts.assign(_order=order).sort_values(["_order", "reason"], kind="stable")
        return counts.drop(columns="_order").reset_index(drop=True)

    def to_arrays(self) -> dict:
        """The table as string arrays (for :class:`nclib.cache.Cache`)."""
        return {f"report_{c}": np.array([row[c] for row in self._rows], dtype=str) for c in self.COLUMNS}

    @classmethod
    def from_arrays(cls, arrays: dict) -> "AudioReport":
        """Inverse of :meth:`to_arrays`."""
        columns = [arrays[f"report_{c}"].tolist() for c in cls.COLUMNS]
        return cls(zip(*columns))


def log_mel_dataset(paths, labels, classes, frames: int, sample_rate: int = PAPER_SAMPLE_RATE,
                    cache=None, *, n_mels: int = PAPER_N_MELS,
                    window_seconds: float = PAPER_WINDOW_SECONDS,
                    overlap: float = PAPER_OVERLAP, policy: str = "pad",
                    progress: bool = False, max_seconds: float = MAX_SECONDS,
                    max_amplitude: float = MAX_AMPLITUDE):
    """Read recordings, compute fixed-length log-mel inputs, and report every file.

    Each file goes through :func:`nclib.audio.read_audio` (resampled to ``sample_rate``;
    files shorter than one window are skipped), :func:`nclib.audio.log_mel` and
    :func:`nclib.audio.fixed_length`.

    Parameters
    ----------
    paths : sequence of path-like, length N
    labels : array-like of shape (N,), int
        Class index of each file, in ``range(len(classes))``.
    classes : sequence of str
    frames : int
        Frames of every input (see :func:`nclib.audio.num_frames`).
    sample_rate : int
        Rate the front end runs at.
    cache : nclib.cache.Cache, optional
        Store the result under a key made of every file's path, size and modification
        time, the labels and all settings; ``None`` computes without caching.
    n_mels, window_seconds, overlap : front-end settings (see :func:`nclib.audio.log_mel`).
    policy : {"pad", "repeat"}
        Fixed-length policy (see :func:`nclib.audio.fixed_length`).
    progress : bool
        Show a tqdm progress bar.
    max_seconds, max_amplitude : float
        Longest recording and largest absolute sample kept (see :func:`nclib.audio.read_audio`).

    Returns
    -------
    dataset : nclib.data.base.Dataset
        ``inputs`` of shape (K, 1, frames, n_mels) float32 and ``labels`` (K,) int64 for
        the K files that were not skipped, in input order; ``info`` holds the settings
        and the counts of files read and skipped.
    report : AudioReport
        All N files with their status and reason.

    Examples
    --------
    >>> import tempfile, pathlib, soundfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> noise = np.random.default_rng(0).uniform(-0.5, 0.5, 24_000)
    >>> soundfile.write(folder / "a.wav", noise, 48_000)
    >>> _ = (folder / "b.wav").write_bytes(b"")
    >>> data, report = log_mel_dataset([folder / "a.wav", folder / "b.wav"], [0, 1], ["x", "y"], frames=12)
    >>> data.inputs.shape, report.skipped()["reason"].tolist()
    ((1, 1, 12, 64), ['empty file'])
    """
    paths = [Path(p) for p in paths]
    classes = [str(c) for c in classes]
    labels = _check_labels(labels, len(paths), len(classes))
    if int(frames) != frames or frames < 1:
        raise ValueError(f"frames must be a positive integer, got {frames}")
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    settings = {"frames": int(frames), "sample_rate": check_sample_rate(sample_rate), "n_mels": int(n_mels),
                "window_seconds": float(window_seconds), "overlap": float(overlap), "policy": policy,
                "silence_threshold": SILENCE_THRESHOLD, "max_seconds": float(max_seconds),
                "max_amplitude": float(max_amplitude)}
    if not (settings["max_seconds"] > 0 and settings["max_amplitude"] > 0):
        raise ValueError(f"max_seconds and max_amplitude must be positive, got {max_seconds}, {max_amplitude}")
    frame_settings(settings["sample_rate"], window_seconds, overlap)  # validate early

    def compute() -> dict:
        return _compute_features(paths, labels, settings, progress)

    if cache is None:
        arrays = compute()
    else:
        parts = {"files": _file_identity(paths), "labels": labels.tolist(), "classes": classes, **settings}
        arrays = cache.arrays("log-mel", parts, compute)
    report = AudioReport.from_arrays(arrays)
    inputs = np.asarray(arrays["inputs"], dtype=np.float32)
    info = {"front_end": settings, "files": len(paths), "skipped": len(report.skipped())}
    return Dataset(inputs, arrays["labels"], classes, info), report


def _compute_features(paths, labels, settings, progress) -> dict:
    from nclib.progress import progress as progress_bar

    report = AudioReport()
    inputs, kept = [], []
    rate, window = settings["sample_rate"], settings["window_seconds"]
    n_fft = frame_settings(rate, window, settings["overlap"])[0]
    for index, path in enumerate(progress_bar(paths, desc="log-mel") if progress else paths):
        result = read_audio(path, rate, min_seconds=window, silence_threshold=settings["silence_threshold"],
                            max_seconds=settings["max_seconds"], max_amplitude=settings["max_amplitude"])
        if result.waveform is not None and result.waveform.size < n_fft:
            result = skipped_result(Path(path), rate, TOO_SHORT, "shorter than one FFT window after resampling")
        spectrogram = None
        if result.waveform is not None:
            with np.errstate(over="ignore", invalid="ignore"):
                spectrogram = log_mel(result.waveform, rate, settings["n_mels"], window, settings["overlap"])
            if not np.isfinite(spectrogram).all():
                result = skipped_result(Path(path), rate, OVERFLOW, "the log-mel spectrogram is not finite")
        report.add(result)
        if result.waveform is None:
            continue
        inputs.append(fixed_length(spectrogram, settings["frames"], settings["policy"]))
        kept.append(index)
    shape = (len(inputs), 1, settings["frames"], settings["n_mels"])
    stacked = np.stack(inputs)[:, None] if inputs else np.zeros(shape, np.float32)
    return {"inputs": stacked.astype(np.float32), "labels": labels[kept], **report.to_arrays()}


def _file_identity(paths) -> list:
    identity = []
    for path in paths:
        try:
            stat = path.stat()
            identity.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
        except OSError:
            identity.append([str(path), -1, -1])
    return identity


def _check_labels(labels, num_files: int, num_classes: int) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1 or array.shape[0] != num_files:
        raise ValueError(f"labels must have shape ({num_files},) like paths, got {array.shape}")
    if num_classes < 1:
        raise ValueError("classes is empty")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"labels must be integer class indices, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(f"labels must lie in range({num_classes}), got {array.min()}..{array.max()}")
    return array


__all__ = ["AudioReport", "log_mel_dataset"]
