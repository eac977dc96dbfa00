"""The paper's audio pre-training tasks, read from local copies (nothing is downloaded).

The paper (Section 4, Table 1) pre-trains the DCASE baseline on acoustic scenes
(DCASE 2018 task 1A), and the CNN and CRNN on music genres (GTZAN, Tzanetakis & Cook
2002) and speech commands (Warden 2018), with 64-band log-mel inputs from 40 ms
(scenes, music) or 30 ms (speech) windows and 50 % overlap. Each loader finds the data
set's usual layout under ``root`` (default :func:`nclib.config.data_dir`), runs every
file through :func:`nclib.data.audio_files.log_mel_dataset` (bad-audio policy, log-mel, fixed
length, optional cache) and returns ``(Dataset, AudioReport)``.

Features are computed at each data set's native rate (48 kHz scenes, 22.05 kHz music,
16 kHz speech); upsampling would add no information. Files at another rate are
resampled to it and reported. The default ``frames`` cover a whole nominal clip (10 s,
30 s, 1 s); shorter clips are padded with their silence floor.

* ``"scenes"``: ``TUT-urban-acoustic-scenes-2018-development/meta.csv`` (tab-separated)
  and ``audio/*.wav``; 40 ms windows; 499 frames (10 s at 48 kHz).
* ``"music"``: ``genres/<genre>/<genre>.000NN.wav`` (or ``.au``); 40 ms windows;
  1499 frames (30 s at 22.05 kHz).
* ``"speech"``: ``<word>/<speaker>_nohash_<n>.wav`` with ``validation_list.txt`` and
  ``testing_list.txt``; 30 ms windows; 65 frames (1 s at 16 kHz).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nclib.audio import PAPER_N_MELS, PAPER_OVERLAP, num_frames
from nclib.config import data_dir
from nclib.data.audio_files import log_mel_dataset

SCENES_FOLDER = "TUT-urban-acoustic-scenes-2018-development"
MUSIC_FOLDERS = ("genres", "genres_original", "gtzan/genres", "GTZAN/genres")
SPEECH_FOLDERS = ("speech_commands_v0.02", "speech_commands")
SPEECH_SUBSETS = ("train", "validation", "testing", "all")

#: Front-end settings per task: native rate, window (the paper), nominal clip length.
SOURCE_SETTINGS = {
    "scenes": {"sample_rate": 48_000, "window_seconds": 0.04, "seconds": 10.0},
    "music": {"sample_rate": 22_050, "window_seconds": 0.04, "seconds": 30.0},
    "speech": {"sample_rate": 16_000, "window_seconds": 0.03, "seconds": 1.0},
}


def default_frames(task: str, sample_rate: int | None = None) -> int:
    """Frames of one nominal clip of ``task`` (10 s scenes, 30 s music, 1 s speech).

    Examples
    --------
    >>> [default_frames(t) for t in ("scenes", "music", "speech")]
    [499, 1499, 65]
    """
    settings = _settings(task)
    rate = sample_rate or settings["sample_rate"]
    return num_frames(int(round(settings["seconds"] * rate)), rate, settings["window_seconds"], PAPER_OVERLAP)


def dcase2018_scenes(root=None, frames: int | None = None, sample_rate: int = 48_000,
                     cache=None, progress: bool = False):
    """DCASE 2018 task 1A development set (TUT Urban Acoustic Scenes 2018), 10 scenes.

    Parameters
    ----------
    root : path-like, optional
        The folder ``TUT-urban-acoustic-scenes-2018-development`` or its parent
        (default :func:`nclib.config.data_dir`). ``meta.csv`` is tab-separated with
        ``filename`` (``audio/<scene>-<city>-...wav``), ``scene_label``, ``identifier``,
        ``source_label``.
    frames : int, optional
        Default :func:`default_frames` ``("scenes")`` = 499 (10 s).
    sample_rate : int
        Front-end rate (native 48 kHz).
    cache : nclib.cache.Cache, optional
    progress : bool

    Returns
    -------
    dataset : nclib.data.base.Dataset
        ``inputs`` (N, 1, frames, 64) float32; ``classes`` the sorted scene labels.
    report : nclib.data.audio_files.AudioReport

    Examples
    --------
    >>> dcase2018_scenes("/no/such/folder")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no TUT-urban-acoustic-scenes-2018-development/meta.csv under /no/such/folder; ...
    """
    folder = _find_folder(root, (SCENES_FOLDER,), "meta.csv",
                          f"{SCENES_FOLDER}/meta.csv", "the DCASE 2018 task 1A development set (Zenodo)")
    meta = pd.read_csv(folder / "meta.csv", sep="\t", dtype=str, keep_default_na=False)
    if "filename" not in meta.columns:  # a copy without the header row
        meta = pd.read_csv(folder / "meta.csv", sep="\t", dtype=str, keep_default_na=False, header=None,
                           names=["filename", "scene_label", "identifier", "source_label"])
    if "scene_label" not in meta.columns:
        raise ValueError(f"{folder / 'meta.csv'} has no scene_label column: {list(meta.columns)}")
    paths = [folder / name for name in meta["filename"]]
    return _load("scenes", paths, meta["scene_label"].tolist(), frames, sample_rate, cache, progress)


def gtzan_genres(root=None, frames: int | None = None, sample_rate: int = 22_050,
                 cache=None, progress: bool = False):
    """GTZAN music genres (10 genres x 100 clips of 30 s at 22,050 Hz).

    Parameters
    ----------
    root : path-like, optional
        The ``genres`` folder (``<genre>/<genre>.000NN.wav``, ``.au`` accepted) or a
        folder holding ``genres/`` (or ``genres_original/``). Default
        :func:`nclib.config.data_dir`.
    frames : int, optional
        Default 1499 (30 s, 40 ms windows).
    sample_rate, cache, progress : see :func:`dcase2018_scenes`.

    Returns
    -------
    dataset : nclib.data.base.Dataset
        ``inputs`` (N, 1, frames, 64); ``classes`` the sorted genre names.
    report : nclib.data.audio_files.AudioReport
        GTZAN's known undecodable clip (``jazz.00054``) shows up here as ``"unreadable"``.

    Examples
    --------
    >>> gtzan_genres("/no/such/folder")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no genres/<genre>/*.wav under /no/such/folder; ...
    """
    folder = _find_genres(root)
    paths = sorted(p for p in folder.glob("*/*") if p.suffix.lower() in {".wav", ".au"}
                   and not p.parent.name.startswith((".", "_")))
    return _load("music", paths, [p.parent.name for p in paths], frames, sample_rate, cache, progress)


def speech_commands(root=None, subset: str = "train", frames: int | None = None,
                    sample_rate: int = 16_000, cache=None, progress: bool = False):
    """Speech Commands v0.02 (35 words, 1 s clips at 16 kHz), one official subset.

    Parameters
    ----------
    root : path-like, optional
        The data set folder (``<word>/<speaker>_nohash_<n>.wav``,
        ``validation_list.txt``, ``testing_list.txt``) or a folder holding
        ``speech_commands_v0.02/``. Default :func:`nclib.config.data_dir`.
        ``_background_noise_`` is not a word and is left out.
    subset : {"train", "validation", "testing", "all"}
        The official split: files named in ``validation_list.txt`` /
        ``testing_list.txt``, ``"train"`` the rest.
    frames : int, optional
        Default 65 (1 s, 30 ms windows).
    sample_rate, cache, progress : see :func:`dcase2018_scenes`.

    Returns
    -------
    dataset : nclib.data.base.Dataset
        ``inputs`` (N, 1, frames, 64); ``classes`` all sorted words (in every subset).
    report : nclib.data.audio_files.AudioReport

    Examples
    --------
    >>> speech_commands("/no/such/folder")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no <word>/*.wav with validation_list.txt under /no/such/folder; ...
    """
    if subset not in SPEECH_SUBSETS:
        raise ValueError(f"subset must be one of {SPEECH_SUBSETS}, got {subset!r}")
    folder = _find_folder(root, SPEECH_FOLDERS, "validation_list.txt",
                          "<word>/*.wav with validation_list.txt",
                          "Speech Commands v0.02 (TensorFlow datasets)")
    words = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    listed = {name: _read_list(folder / f"{name}_list.txt") for name in ("validation", "testing")}
    paths = []
    for word in words:
        for path in sorted((folder / word).glob("*.wav")):
            relative = f"{word}/{path.name}"
            part = next((name for name, names in listed.items() if relative in names), "train")
            if subset in ("all", part):
                paths.append(path)
    labels = [p.parent.name for p in paths]
    return _load("speech", paths, labels, frames, sample_rate, cache, progress, classes=words)


def load_source_task(task: str, root=None, **options):
    """Load a pre-training task by name: ``"scenes"``, ``"music"`` or ``"speech"``.

    Examples
    --------
    >>> load_source_task("images")
    Traceback (most recent call last):
    ...
    ValueError: unknown audio source task 'images'; choose from ['scenes', 'music', 'speech']
    """
    _settings(task)
    loader = {"scenes": dcase2018_scenes, "music": gtzan_genres, "speech": speech_commands}[task]
    return loader(root, **options)


def _settings(task: str) -> dict:
    if task not in SOURCE_SETTINGS:
        raise ValueError(f"unknown audio source task {task!r}; choose from {list(SOURCE_SETTINGS)}")
    return SOURCE_SETTINGS[task]


def _load(task, paths, names, frames, sample_rate, cache, progress, classes=None):
    if not paths:
        raise FileNotFoundError(f"the {task} data set folder holds no audio files")
    classes = sorted(set(names)) if classes is None else list(classes)
    index = {name: code for code, name in enumerate(classes)}
    labels = np.array([index[name] for name in names], dtype=np.int64)
    settings = _settings(task)
    frames = default_frames(task, sample_rate) if frames is None else frames
    dataset, report = log_mel_dataset(
        paths, labels, classes, frames, sample_rate, cache, n_mels=PAPER_N_MELS,
        window_seconds=settings["window_seconds"], overlap=PAPER_OVERLAP, progress=progress,
    )
    dataset.info["source"] = task
    return dataset, report


def _find_folder(root, names, marker: str, layout: str, where: str) -> Path:
    base = Path(root) if root is not None else data_dir()
    for folder in (*(base / name for name in names), base):
        if (folder / marker).is_file():
            return folder
    raise FileNotFoundError(
        f"no {layout} under {base}; nclib downloads no pre-training data: put {where} there by hand"
    )


def _find_genres(root) -> Path:
    base = Path(root) if root is not None else data_dir()
    for folder in (*(base / name for name in MUSIC_FOLDERS), base):
        if folder.is_dir() and (any(folder.glob("*/*.wav")) or any(folder.glob("*/*.au"))):
            return folder
    raise FileNotFoundError(
        f"no genres/<genre>/*.wav under {base}; nclib downloads no pre-training data: "
        "put the GTZAN genre collection there by hand"
    )


def _read_list(path: Path) -> set:
    if not path.is_file():
        return set()
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}
