"""Coswara (Bhattacharya et al. 2023): cough recordings labelled by RT-PCR test result.

Reads a local copy of the public repository ``iiscleap/Coswara-Data``:

* ``combined_data.csv`` at the root: one row per participant (``id``, ``covid_status``,
  ``test_status``, ``testType``, ``record_date``, ``a`` (age), ``g`` (gender), ...);
* one folder per recording date, ``YYYYMMDD/``, holding a split archive
  ``YYYYMMDD.tar.gz.aa``, ``.ab``, ... which, joined and extracted, gives
  ``YYYYMMDD/<participant id>/cough-heavy.wav`` and the other eight sounds.

:func:`prepare_coswara` joins and extracts every date once (each member checked by
:func:`nclib.data.fetch.safe_extract`: nothing may land outside the extraction folder).
The repository publishes no checksums; a git clone's objects are content-addressed, and
gzip's CRC catches corrupt parts during extraction. :func:`coswara_metadata` selects the
participants, :func:`coswara_splits` builds the 70 / 15 / 15 log-mel splits.

Selection rule (the paper keeps participants "for whom the PCR test information was
available", 960 positive and 428 negative): ``testType == "rtpcr"`` and
``test_status`` in ``{"p", "n"}`` (case and spaces ignored). ``p`` is labelled
*positive*, ``n`` *negative*; ``covid_status`` is not used for the label, because it is
self-reported and includes states (recovered, exposed, under validation) that are not a
test result. Rapid antigen tests (``rat``), pending or untested participants (``ut``,
``na``) and rows without test information are left out. Older revisions of the CSV
without a ``testType`` column are read with the ``test_status`` rule alone (logged);
revisions without ``test_status`` carry no test information and are refused.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from nclib.audio import PAPER_SAMPLE_RATE, PAPER_WINDOW_SECONDS, log_mel_dataset, num_frames
from nclib.config import data_dir
from nclib.data.base import Splits, stratified_split
from nclib.data.fetch import atomic_path, join_parts, safe_extract

logger = logging.getLogger("nclib.data.coswara")

REPOSITORY = "https://github.com/iiscleap/Coswara-Data.git"
FOLDER_NAME = "Coswara-Data"
CLASSES = ["negative", "positive"]
PAPER_COUNTS = {"positive": 960, "negative": 428}
SOUNDS = (
    "breathing-deep", "breathing-shallow", "cough-heavy", "cough-shallow", "counting-fast",
    "counting-normal", "vowel-a", "vowel-e", "vowel-o",
)
COSWARA_FRAMES = num_frames(8 * PAPER_SAMPLE_RATE, PAPER_SAMPLE_RATE)  # 159: the paper's longest clips
METADATA_COLUMNS = ("covid_status", "test_status", "testType", "test_date", "record_date", "a", "g")
_DATE = re.compile(r"^\d{8}$")
_MARKERS = ".nclib-markers"
_OFFLINE = (
    "The Coswara data is not in {folder} and could not be fetched ({why}). Clone the public "
    "repository by hand: `git clone https://github.com/iiscleap/Coswara-Data {folder}` "
    "(or copy a clone there); nclib then joins and extracts the archives itself."
)


def coswara_root(root=None) -> Path:
    """The local Coswara-Data folder: ``root`` or ``<data_dir()>/Coswara-Data``.

    Raises
    ------
    FileNotFoundError
        If the folder has no ``combined_data.csv``, with instructions.

    Examples
    --------
    >>> coswara_root("/no/such/folder")
    Traceback (most recent call last):
    ...
    FileNotFoundError: /no/such/folder has no combined_data.csv; ...
    """
    folder = Path(root) if root is not None else data_dir() / FOLDER_NAME
    if not (folder / "combined_data.csv").is_file():
        raise FileNotFoundError(
            f"{folder} has no combined_data.csv; clone iiscleap/Coswara-Data there "
            f"(`git clone {REPOSITORY} {folder}`) or call nclib.data.coswara.fetch_coswara()"
        )
    return folder


def fetch_coswara(destination=None, timeout: float = 3600) -> Path:
    """Get a local copy of the Coswara repository (a shallow git clone).

    Returns ``destination`` at once when it already holds ``combined_data.csv``.
    Otherwise clones ``iiscleap/Coswara-Data`` into a temporary folder beside it and
    renames it into place, so an interrupted clone leaves nothing half-done. Git checks
    every object against its hash, which stands in for the checksums the repository
    does not publish.

    Parameters
    ----------
    destination : path-like, optional
        Default ``<data_dir()>/Coswara-Data``.
    timeout : float
        Seconds allowed for the clone.

    Raises
    ------
    FileNotFoundError
        Offline, or without git: the message says how to put a clone there by hand.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "combined_data.csv").write_text("id\\n")
    >>> fetch_coswara(folder) == folder
    True
    """
    destination = Path(destination) if destination is not None else data_dir() / FOLDER_NAME
    if (destination / "combined_data.csv").is_file():
        return destination
    git = shutil.which("git")
    if git is None:
        raise FileNotFoundError(_OFFLINE.format(folder=destination, why="git is not installed"))
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        subprocess.run(
            [git, "clone", "--depth", "1", REPOSITORY, str(staging / "clone")],
            check=True, capture_output=True, timeout=timeout, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
        if destination.exists() and not any(destination.iterdir()):
            destination.rmdir()
        os.replace(staging / "clone", destination)
    except (subprocess.SubprocessError, OSError) as error:
        raise FileNotFoundError(_OFFLINE.format(folder=destination, why=_short(error))) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination


def _short(error: Exception) -> str:
    stderr = getattr(error, "stderr", None)
    text = stderr.decode(errors="replace").strip() if isinstance(stderr, bytes) else str(error)
    return text.splitlines()[-1] if text else type(error).__name__


def date_folders(root) -> list[Path]:
    """The ``YYYYMMDD`` folders of a Coswara copy, in date order.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("20200415", "20200413", "extracted"): (folder / name).mkdir()
    >>> [p.name for p in date_folders(folder)]
    ['20200413', '20200415']
    """
    return sorted(p for p in Path(root).iterdir() if p.is_dir() and _DATE.match(p.name))


def prepare_coswara(root=None, destination=None, progress: bool = False) -> Path:
    """Join and extract every date's split archive, once.

    For each ``root/YYYYMMDD/`` with parts ``YYYYMMDD.tar.gz.aa``, ``.ab``, ...: the
    parts are joined (:func:`nclib.data.fetch.join_parts`) into a temporary archive,
    which :func:`nclib.data.fetch.safe_extract` checks member by member and extracts
    into ``destination`` (giving ``destination/YYYYMMDD/<id>/*.wav``). A marker
    recording the parts' names and sizes makes later calls skip that date; changed
    parts (a newer revision) are extracted again.

    Parameters
    ----------
    root : path-like, optional
        The Coswara-Data folder (default ``<data_dir()>/Coswara-Data``).
    destination : path-like, optional
        Extraction folder (default ``root/extracted``; it must not be ``root`` itself,
        whose date folders hold the parts).
    progress : bool
        Show a progress bar over the dates.

    Returns
    -------
    pathlib.Path
        ``destination``.

    Raises
    ------
    nclib.data.fetch.UnsafeArchiveError
        A member would land outside ``destination`` (a hostile or broken archive);
        nothing of that date is written.

    Examples
    --------
    >>> import io, tarfile, tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp()); _ = (root / "combined_data.csv").write_text("id\\n")
    >>> (root / "20200413").mkdir(); buffer = io.BytesIO()
    >>> with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
    ...     info = tarfile.TarInfo("20200413/abc/cough-heavy.wav"); info.size = 4
    ...     tar.addfile(info, io.BytesIO(b"RIFF"))
    >>> data = buffer.getvalue(); half = len(data) // 2
    >>> _ = (root / "20200413" / "20200413.tar.gz.aa").write_bytes(data[:half])
    >>> _ = (root / "20200413" / "20200413.tar.gz.ab").write_bytes(data[half:])
    >>> out = prepare_coswara(root)
    >>> (out / "20200413" / "abc" / "cough-heavy.wav").read_bytes()
    b'RIFF'
    """
    from nclib.progress import progress as progress_bar

    root = coswara_root(root)
    destination = Path(destination) if destination is not None else root / "extracted"
    if destination.resolve() == root.resolve():
        raise ValueError("destination must differ from root: extraction would replace the date folders")
    for folder in (progress_bar(date_folders(root), desc="Coswara archives") if progress else date_folders(root)):
        parts = sorted(folder.glob(f"{folder.name}.tar.gz.*"))
        if not parts:
            logger.warning("%s holds no %s.tar.gz.* parts; skipped", folder, folder.name)
            continue
        _extract_date(folder.name, parts, destination)
    return destination


def _extract_date(date: str, parts: list[Path], destination: Path) -> None:
    signature = json.dumps([[p.name, p.stat().st_size] for p in parts])
    marker = destination / _MARKERS / f"{date}.json"
    if marker.is_file() and marker.read_text() == signature:
        return
    archive = destination / _MARKERS / f".{date}.tar.gz"
    try:
        join_parts(parts, archive)
        safe_extract(archive, destination)
    finally:
        archive.unlink(missing_ok=True)
    with atomic_path(marker) as temporary:
        temporary.write_text(signature)
    logger.info("extracted %s (%d parts) into %s", date, len(parts), destination)


def coswara_metadata(root=None) -> pd.DataFrame:
    """Participants with an RT-PCR result, labelled positive / negative.

    Parameters
    ----------
    root : path-like, optional
        The Coswara-Data folder holding ``combined_data.csv``.

    Returns
    -------
    DataFrame
        One row per kept participant (duplicate ids: first row kept), columns ``id``,
        ``label`` (``"positive"`` / ``"negative"``), ``label_code`` (index into
        :data:`CLASSES`: negative 0, positive 1) and :data:`METADATA_COLUMNS` (empty
        strings where the CSV lacks a column). The rule is in the module docstring.

    Raises
    ------
    ValueError
        The CSV has no ``id`` or no ``test_status`` column.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "combined_data.csv").write_text(
    ...     "id,covid_status,test_status,testType\\n"
    ...     "a,positive_mild,p,rtpcr\\nb,healthy,n,RTPCR\\nc,healthy,n,rat\\nd,healthy,na,\\n")
    >>> coswara_metadata(root)[["id", "label"]].values.tolist()
    [['a', 'positive'], ['b', 'negative']]
    """
    path = coswara_root(root) / "combined_data.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.columns = [c.strip() for c in table.columns]
    for column in ("id", "test_status"):
        if column not in table.columns:
            raise ValueError(
                f"{path} has no {column!r} column (an old revision?); it has {list(table.columns)}. "
                "RT-PCR results are needed: update the clone of iiscleap/Coswara-Data"
            )
    status = table["test_status"].str.strip().str.lower()
    keep = status.isin(["p", "n"])
    if "testType" in table.columns:
        keep &= table["testType"].str.strip().str.lower() == "rtpcr"
    else:
        logger.warning("%s has no testType column: every p/n test_status is taken as RT-PCR", path)
    kept = table[keep].copy()
    kept["id"] = kept["id"].str.strip()
    duplicated = kept["id"].duplicated()
    if duplicated.any():
        logger.warning("%d duplicate participant ids in %s; first rows kept", int(duplicated.sum()), path)
        kept = kept[~duplicated]
    kept["label"] = np.where(status[kept.index] == "p", "positive", "negative")
    kept["label_code"] = (kept["label"] == "positive").astype(np.int64)
    for column in METADATA_COLUMNS:
        if column not in kept.columns:
            kept[column] = ""
    return kept[["id", "label", "label_code", *METADATA_COLUMNS]].reset_index(drop=True)


def coswara_counts(metadata: pd.DataFrame, report=None) -> pd.DataFrame:
    """Participants per label beside the paper's 960 positive / 428 negative.

    Parameters
    ----------
    metadata : DataFrame
        From :func:`coswara_metadata` (needs ``label``).
    report : nclib.audio.AudioReport, optional
        When given (from :func:`coswara_splits`), adds ``with_audio``: the participants
        whose recording was not skipped, taken from ``metadata`` in report order.

    Returns
    -------
    DataFrame
        Columns ``label, ours, paper`` (and ``with_audio``), positive first.

    Examples
    --------
    >>> coswara_counts(pd.DataFrame({"label": ["positive", "negative", "positive"]})).values.tolist()
    [['positive', 2, 960], ['negative', 1, 428]]
    """
    labels = ["positive", "negative"]
    counts = metadata["label"].value_counts()
    table = pd.DataFrame({
        "label": labels,
        "ours": [int(counts.get(label, 0)) for label in labels],
        "paper": [PAPER_COUNTS[label] for label in labels],
    })
    if report is not None:
        status = report.table()["status"].to_numpy()
        if len(status) != len(metadata):
            raise ValueError(f"report has {len(status)} files but metadata has {len(metadata)} rows")
        usable = metadata["label"].to_numpy()[status != "skipped"]
        table["with_audio"] = [int((usable == label).sum()) for label in labels]
    return table


def recording_paths(metadata: pd.DataFrame, extracted, sound: str = "cough-heavy") -> list[Path]:
    """Path of each participant's ``<sound>.wav`` under the extraction folder.

    Participants are found by scanning ``extracted`` (``YYYYMMDD/<id>/``); a participant
    with no folder gets the path where the file would be, which the front end reports
    as a ``"missing file"``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp()); (folder / "20200413" / "abc").mkdir(parents=True)
    >>> meta = pd.DataFrame({"id": ["abc"], "record_date": ["2020-04-13"]})
    >>> recording_paths(meta, folder)[0].relative_to(folder).as_posix()
    '20200413/abc/cough-heavy.wav'
    """
    if sound not in SOUNDS:
        raise ValueError(f"sound must be one of {SOUNDS}, got {sound!r}")
    extracted = Path(extracted)
    folders = _participant_folders(extracted)
    paths = []
    for row in metadata.itertuples(index=False):
        folder = folders.get(row.id)
        if folder is None:
            date = str(getattr(row, "record_date", "") or "unknown-date").replace("-", "")
            folder = extracted / date / row.id
        paths.append(folder / f"{sound}.wav")
    return paths


def _participant_folders(extracted: Path) -> dict:
    folders = {}
    if not extracted.is_dir():
        return folders
    for child in sorted(extracted.iterdir()):
        if not child.is_dir() or child.name.startswith("."):
            continue
        if _DATE.match(child.name):
            for participant in sorted(child.iterdir()):
                if participant.is_dir():
                    folders.setdefault(participant.name, participant)
        else:  # an archive without the date prefix
            folders.setdefault(child.name, child)
    return folders


def coswara_splits(root=None, seed: int = 0, sound: str = "cough-heavy", frames: int = COSWARA_FRAMES,
                   destination=None, cache=None, sample_rate: int = PAPER_SAMPLE_RATE,
                   fractions=(0.7, 0.15, 0.15), progress: bool = False):
    """The paper's Coswara target task: log-mel inputs, stratified 70 / 15 / 15 splits.

    Prepares the archives (:func:`prepare_coswara`, a no-op once done), selects the
    participants (:func:`coswara_metadata`), reads each one's ``<sound>.wav`` through
    the bad-audio policy of :mod:`nclib.audio`, resampled to ``sample_rate`` (the
    repository's README gives 44.1 kHz, the paper 48 kHz; we follow the paper), and
    computes 64-band log-mel spectrograms with 100 ms windows and 50 % overlap, cropped
    or padded to ``frames``. The recordings that survive are split stratified by label
    with :func:`nclib.data.base.stratified_split` and ``seed``.

    Parameters
    ----------
    root : path-like, optional
        The Coswara-Data folder (default ``<data_dir()>/Coswara-Data``).
    seed : int
        Seed of the split.
    sound : str
        One of :data:`SOUNDS` (the paper: ``"cough-heavy"``).
    frames : int
        Frames per input (default 159 = 8 s, the longest clips the paper mentions).
    destination : path-like, optional
        Extraction folder (see :func:`prepare_coswara`).
    cache : nclib.cache.Cache, optional
        Cache for the log-mel features.
    sample_rate : int
    fractions : tuple of float
        Train, validation and test fractions.
    progress : bool

    Returns
    -------
    splits : nclib.data.base.Splits
        ``inputs`` (n, 1, frames, 64) float32, labels 0 = negative, 1 = positive.
    report : nclib.audio.AudioReport
        One row per selected participant, in :func:`coswara_metadata` order.

    Examples
    --------
    >>> coswara_splits("/no/such/folder")
    Traceback (most recent call last):
    ...
    FileNotFoundError: /no/such/folder has no combined_data.csv; ...
    """
    if len(fractions) != 3:
        raise ValueError(f"fractions must give train, validation and test, got {fractions}")
    root = coswara_root(root)
    extracted = prepare_coswara(root, destination, progress=progress)
    metadata = coswara_metadata(root)
    if metadata.empty:
        raise ValueError(f"no participant in {root / 'combined_data.csv'} has an RT-PCR result")
    paths = recording_paths(metadata, extracted, sound)
    dataset, report = log_mel_dataset(
        paths, metadata["label_code"].to_numpy(), CLASSES, frames, sample_rate, cache,
        window_seconds=PAPER_WINDOW_SECONDS, progress=progress,
    )
    if len(dataset) == 0:
        raise ValueError(f"every {sound}.wav was skipped or missing: {report.counts().to_dict('records')}")
    counts = coswara_counts(metadata, report).to_dict("records")
    dataset.info.update(source="coswara", sound=sound, counts=counts)
    parts = stratified_split(dataset.labels, fractions, seed)
    return Splits(*(dataset.subset(index) for index in parts)), report
