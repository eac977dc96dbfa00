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
  the awkward formats real crowd-sourced recordings come in (stereo, 16 kHz, 44.1 kHz),
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

from nclib.config import data_dir

INPUT_OFFSET_DB = 40.0
INPUT_SCALE_DB = 20.0
"""The fixed input map is ``(decibels + INPUT_OFFSET_DB) / INPUT_SCALE_DB``."""

SYNTHETIC_FOLDER = "synthetic-coswara"
MANIFEST = "manifest.csv"
# How many of the usable clips are written in each awkward-but-readable format.
ODD_FORMATS = {"stereo": 3, "16 kHz": 3, "44.1 kHz": 3}
# Files that must be skipped, one of each; their labels alternate negative / positive.
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
    elif fmt in ("16 kHz", "44.1 kHz"):
        to_rate = 16_000 if fmt == "16 kHz" else 44_100
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
    three clips are written in stereo, the next three resampled to 16 kHz and the next
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


__all__ = ["INPUT_OFFSET_DB", "INPUT_SCALE_DB", "ODD_FORMATS", "UNUSABLE", "captured_log", "standardise_dataset",
           "standardise_log_mel", "standardise_splits", "synthetic_cough_files", "write_cough_folder"]
