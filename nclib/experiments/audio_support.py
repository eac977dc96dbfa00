"""Small pieces the audio experiment (:mod:`nclib.experiments.coswara`) is built from.

* **Input scaling.** :func:`nclib.audio.log_mel` returns absolute decibels: digital
  silence sits at the -100 dB floor and loud, broadband frames reach about +35 dB, with
  most of the mass between -80 and 0 dB. Networks train badly on inputs of that size, so
  every log-mel input of the experiment, source and target alike, goes through one fixed
  affine map, :func:`standardise_log_mel`: ``(x + 40) / 20``. It puts -40 dB at 0 and
  one unit at 20 dB (the floor becomes -3, a +35 dB frame 3.75). The map is fixed, not
  estimated from data, so no statistic leaks from one split into another and the same
  input always means the same thing to every model.
* **A synthetic "Coswara" on disk.** The quick profile's target must pass through the
  same file-reading path as the real recordings, bad-audio policy included.
  :func:`write_cough_folder` writes the procedural cough-like clips of
  :func:`nclib.data.synthetic_audio.cough_task` as 16-bit WAV files, a few of them in
  the awkward formats real crowd-sourced recordings come in (stereo, 22.05 kHz, 44.1 kHz),
  plus four files that cannot be used (empty, corrupt, silent, shorter than one FFT
  window). :func:`synthetic_cough_files` does this once per setting inside the data
  folder and returns the manifest the front end reads.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from nclib.config import data_dir

INPUT_OFFSET_DB = 40.0
INPUT_SCALE_DB = 20.0
"""The fixed input map is ``(decibels + INPUT_OFFSET_DB) / INPUT_SCALE_DB``."""

SYNTHETIC_FOLDER = "synthetic-coswara"
MANIFEST = "manifest.csv"
#: How many of the usable clips are written in each awkward-but-readable format.
ODD_FORMATS = {"stereo": 3, "22.05 kHz": 3, "44.1 kHz": 3}
#: Files that must be skipped, one of each; their labels alternate negative / positive.
UNUSABLE = ("empty", "corrupt", "silent", "too short")
TOO_SHORT_SECONDS = 0.05  # half of the target's 100 ms FFT window


def standardise_log_mel(inputs) -> np.ndarray:
    """Map absolute-decibel log-mel inputs to network scale: ``(x + 40) / 20``.

    Parameters
    ----------
    inputs : array-like of any shape
        Log-mel values in dB, as :func:`nclib.audio.log_mel` returns them (finite).

    Returns
    -------
    ndarray of the same shape, float32

    Raises
    ------
    ValueError
        NaN or infinite values.

    Examples
    --------
    >>> standardise_log_mel([-100.0, -40.0, 0.0, 35.0]).tolist()
    [-3.0, 0.0, 2.0, 3.75]
    """
    values = np.asarray(inputs, dtype=np.float32)
    if not np.isfinite(values).all():
        raise ValueError("log-mel inputs contain NaN or inf")
    return ((values + np.float32(INPUT_OFFSET_DB)) / np.float32(INPUT_SCALE_DB)).astype(np.float32)


def standardise_dataset(dataset):
    """A copy of a :class:`~nclib.data.base.Dataset` with :func:`standardise_log_mel` inputs.

    ``info["input_map"]`` records the map.

    Examples
    --------
    >>> from nclib.data.base import Dataset
    >>> data = standardise_dataset(Dataset(np.full((2, 1, 3, 4), -40.0, np.float32), [0, 1], ["a", "b"]))
    >>> float(data.inputs.max()), data.info["input_map"]
    (0.0, '(dB + 40) / 20')
    """
    from nclib.data.base import Dataset

    info = {**dataset.info, "input_map": f"(dB + {INPUT_OFFSET_DB:g}) / {INPUT_SCALE_DB:g}"}
    return Dataset(standardise_log_mel(dataset.inputs), dataset.labels, list(dataset.classes), info)


def standardise_splits(splits):
    """:func:`standardise_dataset` applied to the train, validation and test parts.

    Examples
    --------
    >>> from nclib.data.base import Dataset, Splits
    >>> part = Dataset(np.zeros((2, 1, 1, 1), np.float32), [0, 1], ["a", "b"])
    >>> standardise_splits(Splits(part, part, part)).test.inputs.ravel().tolist()
    [2.0, 2.0]
    """
    from nclib.data.base import Splits

    return Splits(*(standardise_dataset(part) for part in (splits.train, splits.val, splits.test)))


def _resampled(waveform: np.ndarray, rate: int, to_rate: int) -> np.ndarray:
    from math import gcd

    from scipy.signal import resample_poly

    common = gcd(rate, to_rate)
    return resample_poly(waveform, to_rate // common, rate // common).astype(np.float32)


def _write_clip(path: Path, waveform: np.ndarray, rate: int, fmt: str) -> None:
    import soundfile

    if fmt == "stereo":  # both channels hold the clip, the second slightly quieter
        soundfile.write(path, np.stack([waveform, 0.8 * waveform], axis=1), rate, subtype="PCM_16")
    elif fmt in ("22.05 kHz", "44.1 kHz"):
        to_rate = 22_050 if fmt == "22.05 kHz" else 44_100
        soundfile.write(path, np.clip(_resampled(waveform, rate, to_rate), -1, 1), to_rate, subtype="PCM_16")
    else:
        soundfile.write(path, waveform, rate, subtype="PCM_16")


def _write_unusable(path: Path, kind: str, example: np.ndarray, rate: int, seed: int) -> None:
    import soundfile

    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "corrupt":  # a WAV-like header followed by noise bytes
        noise = np.random.default_rng([seed, 7]).integers(0, 256, 2048, dtype=np.uint8).tobytes()
        path.write_bytes(b"RIFF\x00\x10\x00\x00WAVEfmt " + noise)
    elif kind == "silent":
        soundfile.write(path, np.zeros_like(example), rate, subtype="PCM_16")
    elif kind == "too short":  # the loudest 50 ms of a real clip
        length = int(TOO_SHORT_SECONDS * rate)
        start = int(np.clip(np.argmax(np.abs(example)) - length // 2, 0, len(example) - length))
        soundfile.write(path, example[start:start + length], rate, subtype="PCM_16")
    else:
        raise ValueError(f"unknown kind of unusable file {kind!r}; known: {UNUSABLE}")


def write_cough_folder(folder, num_positive: int, num_negative: int, seed: int = 0,
                       duration: float = 1.5, sample_rate: int = 48_000) -> pd.DataFrame:
    """Write the synthetic cough task as WAV files, with odd and unusable files among them.

    Clip ``k`` of :func:`nclib.data.synthetic_audio.generate_clips` ``("cough", ...)``
    becomes ``clip-<k>.wav``, 16-bit PCM at ``sample_rate``, mono, except: the first
    three clips are written in stereo, the next three resampled to 22.05 kHz and the next
    three to 44.1 kHz (:data:`ODD_FORMATS`; the front end mixes them down or resamples
    them back, and reports it). Four more files follow that the front end must skip
    (:data:`UNUSABLE`): ``empty.wav`` (0 bytes), ``corrupt.wav`` (a WAV header followed by
    noise bytes), ``silent.wav`` (digital silence) and ``too-short.wav`` (50 ms).

    Parameters
    ----------
    folder : path-like
        Created if missing; existing files of the same names are overwritten.
    num_positive, num_negative : int
        Clips per class (see :func:`nclib.data.synthetic_audio.cough_task`); together at
        least 9, so that every odd format is used.
    seed, duration, sample_rate
        As in :func:`nclib.data.synthetic_audio.cough_task`.

    Returns
    -------
    pandas.DataFrame
        One row per file, in writing order: ``file`` (name in ``folder``), ``label``
        (0 negative, 1 positive) and ``written_as`` (``"mono"``, an :data:`ODD_FORMATS`
        key, or an :data:`UNUSABLE` kind).

    Examples
    --------
    >>> import tempfile
    >>> table = write_cough_folder(tempfile.mkdtemp(), 6, 3, duration=0.6)
    >>> len(table), int((table.written_as == "stereo").sum()), table.file.iloc[-1]
    (13, 3, 'too-short.wav')
    """
    from nclib.data.synthetic_audio import generate_clips

    odd = [fmt for fmt, count in ODD_FORMATS.items() for _ in range(count)]
    if num_positive + num_negative < len(odd):
        raise ValueError(f"need at least {len(odd)} clips to write every odd format, "
                         f"got {num_positive + num_negative}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    counts = {"negative": int(num_negative), "positive": int(num_positive)}
    rows, example = [], None
    for index, (label, waveform) in enumerate(generate_clips("cough", counts, seed, duration, sample_rate)):
        fmt = odd[index] if index < len(odd) else "mono"
        name = f"clip-{index:04d}.wav"
        _write_clip(folder / name, waveform, sample_rate, fmt)
        rows.append((name, int(label), fmt))
        example = waveform if example is None else example
    for position, kind in enumerate(UNUSABLE):
        name = kind.replace(" ", "-") + ".wav"
        _write_unusable(folder / name, kind, example, sample_rate, seed)
        rows.append((name, position % 2, kind))
    return pd.DataFrame(rows, columns=["file", "label", "written_as"])


def synthetic_cough_files(num_positive: int, num_negative: int, seed: int = 0, duration: float = 1.5,
                          sample_rate: int = 48_000, root=None) -> tuple[list[Path], np.ndarray, pd.DataFrame]:
    """The synthetic cough recordings on disk, written once per setting.

    The files live in ``<root>/synthetic-coswara/<key>/`` (default root: the data
    folder, :func:`nclib.config.data_dir`), where ``key`` hashes the arguments and
    nclib's version. A folder is written completely in a temporary place and then
    renamed, so an interrupted run leaves nothing that a later run would trust, and an
    existing folder is reused as it is (which keeps the files' modification times, and
    with them the log-mel cache entries keyed on them, valid).

    Parameters
    ----------
    num_positive, num_negative, seed, duration, sample_rate
        As in :func:`write_cough_folder`.
    root : path-like, optional

    Returns
    -------
    paths : list of pathlib.Path
        Every file, usable or not, in manifest order.
    labels : ndarray of shape (len(paths),), int64
    manifest : pandas.DataFrame
        As returned by :func:`write_cough_folder` (read back from ``manifest.csv``).

    Examples
    --------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> paths, labels, manifest = synthetic_cough_files(6, 3, duration=0.6, root=root)
    >>> again = synthetic_cough_files(6, 3, duration=0.6, root=root)[0]
    >>> len(paths), paths == again, paths[0].stat().st_mtime == again[0].stat().st_mtime
    (13, True, True)
    """
    from nclib.cache import cache_key

    settings = {"num_positive": int(num_positive), "num_negative": int(num_negative), "seed": int(seed),
                "duration": float(duration), "sample_rate": int(sample_rate),
                "odd_formats": ODD_FORMATS, "unusable": list(UNUSABLE)}
    parent = (Path(root) if root is not None else data_dir()) / SYNTHETIC_FOLDER
    folder = parent / cache_key(kind="synthetic-cough-files", **settings)[:16]
    if not (folder / MANIFEST).is_file():
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=parent))
        try:
            table = write_cough_folder(staging, num_positive, num_negative, seed, duration, sample_rate)
            table.to_csv(staging / MANIFEST, index=False)
            if folder.exists():  # an incomplete folder (no manifest) from an older crash
                shutil.rmtree(folder)
            os.replace(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    manifest = pd.read_csv(folder / MANIFEST, dtype={"file": str, "label": np.int64, "written_as": str})
    return [folder / name for name in manifest["file"]], manifest["label"].to_numpy(np.int64), manifest


def fit_length(waveform, samples: int) -> np.ndarray:
    """Crop (centred) or zero-pad (at the end) a waveform to exactly ``samples`` samples.

    Parameters
    ----------
    waveform : array-like of shape (n,)
    samples : int
        Wanted length, >= 1.

    Returns
    -------
    ndarray of shape (samples,), float32

    Examples
    --------
    >>> fit_length([1.0, 2.0, 3.0, 4.0], 2).tolist(), fit_length([1.0], 3).tolist()
    ([2.0, 3.0], [1.0, 0.0, 0.0])
    """
    values = np.asarray(waveform, dtype=np.float32).ravel()
    if isinstance(samples, bool) or int(samples) != samples or samples < 1:
        raise ValueError(f"samples must be a positive integer, got {samples!r}")
    samples = int(samples)
    if values.size >= samples:
        start = (values.size - samples) // 2
        return values[start:start + samples].copy()
    return np.concatenate([values, np.zeros(samples - values.size, np.float32)])


def _file_identity(paths) -> list:
    identity = []
    for path in paths:
        try:
            stat = path.stat()
            identity.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
        except OSError:
            identity.append([str(path), -1, -1])
    return identity


def waveform_dataset(paths, labels, classes, samples: int, sample_rate: int = 16_000, cache=None):
    """Read recordings as fixed-length waveforms under the bad-audio policy, reporting every file.

    Each file goes through :func:`nclib.audio.read_audio` (mixed to mono, resampled to
    ``sample_rate``; empty, unreadable, silent and too-short files skipped, each logged
    and counted) and :func:`fit_length`. The waveform twin of
    :func:`nclib.data.audio_files.log_mel_dataset`, for models that bring their own front
    end (:mod:`nclib.models.pretrained_audio`, :class:`LogMelFrontEnd`).

    Parameters
    ----------
    paths : sequence of path-like, length N
    labels : array-like of shape (N,), int
    classes : sequence of str
    samples : int
        Samples per clip after :func:`fit_length`.
    sample_rate : int, default 16000
    cache : nclib.cache.Cache, optional
        Keyed by every file's path, size and modification time, the labels and the
        settings; ``None`` computes without caching.

    Returns
    -------
    dataset : nclib.data.base.Dataset
        ``inputs`` (K, samples) float32 for the K files kept, in input order.
    report : nclib.data.audio_files.AudioReport
        All N files with status and reason.

    Examples
    --------
    >>> import tempfile, pathlib, soundfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> soundfile.write(folder / "a.wav", np.full(8000, 0.1), 16_000)
    >>> _ = (folder / "b.wav").write_bytes(b"")
    >>> data, report = waveform_dataset([folder / "a.wav", folder / "b.wav"], [0, 1], ["x", "y"], 4000)
    >>> data.inputs.shape, report.skipped()["reason"].tolist()
    ((1, 4000), ['empty file'])
    """
    from nclib.audio import check_sample_rate, read_audio
    from nclib.data.audio_files import AudioReport
    from nclib.data.base import Dataset

    paths = [Path(p) for p in paths]
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(paths),):
        raise ValueError(f"labels must have shape ({len(paths)},) like paths, got {labels.shape}")
    rate = check_sample_rate(sample_rate)
    fit_length(np.zeros(1), samples)  # validates samples

    def compute() -> dict:
        report, inputs, kept = AudioReport(), [], []
        for index, path in enumerate(paths):
            result = read_audio(path, rate)
            report.add(result)
            if result.waveform is not None:
                inputs.append(fit_length(result.waveform, samples))
                kept.append(index)
        stacked = np.stack(inputs) if inputs else np.zeros((0, int(samples)), np.float32)
        return {"inputs": stacked, "labels": labels[kept], **report.to_arrays()}

    if cache is None:
        arrays = compute()
    else:
        parts = {"files": _file_identity(paths), "labels": labels.tolist(), "classes": [str(c) for c in classes],
                 "samples": int(samples), "sample_rate": rate}
        arrays = cache.arrays("waveforms", parts, compute)
    report = AudioReport.from_arrays(arrays)
    info = {"sample_rate": rate, "samples": int(samples), "files": len(paths), "skipped": len(report.skipped())}
    return Dataset(np.asarray(arrays["inputs"], np.float32), arrays["labels"], [str(c) for c in classes],
                   info), report


class LogMelFrontEnd(torch.nn.Module):
    """An in-house log-mel network (:mod:`nclib.models.audio`) that takes waveforms.

    ``embed(x)`` maps waveforms ``x`` of shape (batch, samples) at ``input_rate`` to the
    inner network's embedding, computing exactly the input the in-house pipeline gives it:
    each clip is resampled to ``model_rate`` (librosa's ``soxr_hq``, the resampler of
    :func:`nclib.audio.read_audio`), turned into a 64-band log-mel spectrogram
    (:func:`nclib.audio.log_mel`, ``window_seconds`` windows, 50 % overlap), cut or padded
    to ``frames`` (:func:`nclib.audio.fixed_length`) and mapped by
    :func:`standardise_log_mel`. The front end has no parameters; the inner network's
    weights are used unchanged, so a pool can hold these models next to networks that read
    raw 16 kHz audio (:mod:`nclib.models.pretrained_audio`). The spectrograms of the last
    batches are kept in memory, so five wrapped models embedding the same batches compute
    them once.

    Parameters
    ----------
    model : torch.nn.Module
        Has ``embed`` on (batch, 1, frames, 64) inputs, ``classifier`` and ``embedding_dim``.
    input_rate : int, default 16000
    model_rate : int, default 48000
        The rate the inner network was trained at.
    window_seconds : float, default 0.1
        The paper's Coswara window.
    frames : int, optional
        Fixed number of frames (default: the whole clip's).

    Attributes
    ----------
    inner : torch.nn.Module
        ``model``, whose weights are used unchanged.
    classifier, embedding_dim
        Those of ``model``.
    sample_rate : int
        ``input_rate``, the rate of the waveforms ``embed`` reads.
    has_source_head : bool
        True.
    head_activation : str
        ``"softmax"``.

    Examples
    --------
    >>> from nclib.models.audio import SmallCnn
    >>> model = LogMelFrontEnd(SmallCnn(num_classes=10)).eval()
    >>> model.embed(torch.zeros(2, 16_000) + 0.01).shape
    torch.Size([2, 192])
    >>> model(torch.zeros(1, 16_000) + 0.01).shape
    torch.Size([1, 10])
    """

    has_source_head = True
    head_activation = "softmax"

    def __init__(self, model, input_rate: int = 16_000, model_rate: int = 48_000,
                 window_seconds: float = 0.1, frames: int | None = None):
        super().__init__()
        from nclib.audio import check_sample_rate

        self.inner = model
        self.classifier = model.classifier
        self.embedding_dim = int(model.embedding_dim)
        self.sample_rate = check_sample_rate(input_rate)
        self.model_rate = check_sample_rate(model_rate)
        self.window_seconds = float(window_seconds)
        self.frames = None if frames is None else int(frames)

    def log_mel(self, x) -> torch.Tensor:
        """The standardised log-mel input of each clip, shape (batch, 1, frames, 64)."""
        from nclib.audio import _resample, fixed_length, log_mel
        from nclib.cache import fingerprint

        waveforms = np.asarray(x.detach().cpu().numpy() if torch.is_tensor(x) else x, dtype=np.float32)
        if waveforms.ndim != 2 or waveforms.shape[0] == 0:
            raise ValueError(f"expected waveforms of shape (batch, samples), got {waveforms.shape}")
        key = (fingerprint(waveforms), self.sample_rate, self.model_rate, self.window_seconds, self.frames)
        if key not in _LOG_MEL_MEMO:
            spectrograms = []
            for clip in waveforms:
                if self.model_rate != self.sample_rate:
                    clip = _resample(clip, self.sample_rate, self.model_rate)
                spectrogram = log_mel(clip, self.model_rate, window_seconds=self.window_seconds)
                if self.frames is not None:
                    spectrogram = fixed_length(spectrogram, self.frames)
                spectrograms.append(spectrogram)
            if len(_LOG_MEL_MEMO) >= _LOG_MEL_MEMO_SIZE:
                _LOG_MEL_MEMO.pop(next(iter(_LOG_MEL_MEMO)))
            _LOG_MEL_MEMO[key] = standardise_log_mel(np.stack(spectrograms)[:, None])
        inputs = torch.from_numpy(_LOG_MEL_MEMO[key])
        return inputs.to(next(self.inner.parameters()).device)

    def embed(self, x) -> torch.Tensor:
        """The inner network's embedding of each clip, shape (batch, embedding_dim)."""
        return self.inner.embed(self.log_mel(x))

    def trunk(self, x) -> torch.Tensor:
        """The front end and the inner network's trunk (for top fine-tuning)."""
        return self.inner.trunk(self.log_mel(x))

    @property
    def top(self) -> torch.nn.Module:
        """The inner network's top (its last stage and pooling)."""
        return self.inner.top

    @property
    def top_parameters(self) -> int:
        """Parameters in :attr:`top`."""
        return int(self.inner.top_parameters)

    def forward(self, x) -> torch.Tensor:
        """Source logits, shape (batch, num_source_classes)."""
        return self.classifier(self.embed(x))


_LOG_MEL_MEMO: dict = {}
_LOG_MEL_MEMO_SIZE = 48  # batches of standardised spectrograms (about 2 MB each at 256 x 29 x 64)


class _Collector(logging.Handler):
    def __init__(self, lines: list):
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname.lower()}: {record.getMessage()}")


@contextmanager
def captured_log(name: str = "nclib.audio", level: int = logging.INFO):
    """Collect what logger ``name`` writes inside the block instead of printing it.

    The front end logs every skipped file as a warning and every fixed file as info
    (:mod:`nclib.audio`); without a configured handler Python prints the warnings to
    stderr. A chapter that wants to *show* those lines, not spill them, wraps its calls
    in this block. The logger's handlers, level and propagation are restored on exit.

    Parameters
    ----------
    name : str
        Logger name.
    level : int
        Lowest level collected (default ``logging.INFO``).

    Yields
    ------
    list of str
        ``"<level>: <message>"`` per record, filled while the block runs.

    Examples
    --------
    >>> with captured_log("nclib.demo") as lines:
    ...     logging.getLogger("nclib.demo").warning("skipped %s", "a.wav")
    >>> lines
    ['warning: skipped a.wav']
    """
    logger = logging.getLogger(name)
    lines: list[str] = []
    handler = _Collector(lines)
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


__all__ = ["INPUT_OFFSET_DB", "INPUT_SCALE_DB", "ODD_FORMATS", "UNUSABLE", "LogMelFrontEnd", "captured_log",
           "fit_length", "standardise_dataset", "standardise_log_mel", "standardise_splits",
           "synthetic_cough_files", "waveform_dataset", "write_cough_folder"]
