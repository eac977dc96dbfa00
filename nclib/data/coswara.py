"""Coswara (Bhattacharya et al. 2023): cough recordings labelled by RT-PCR test result.

Reads a local copy of the public repository ``iiscleap/Coswara-Data``:

* ``combined_data.csv`` at the root: one row per participant (``id``, ``covid_status``,
  ``test_status``, ``testType``, ``record_date``, ``a`` (age), ``g`` (gender), ...);
* one folder per recording date, ``YYYYMMDD/``, holding a split archive
  ``YYYYMMDD.tar.gz.aa``, ``.ab``, ... which, joined and extracted, gives
  ``YYYYMMDD/<participant id>/cough-heavy.wav`` and the other eight sounds.

The copy is pinned to one commit, :data:`COMMIT` (23 June 2023, the last of the
repository). The repository publishes no checksums, but git names every file by a digest
of its content, its blob id; ``nclib/data/registry.csv`` holds the blob id of each archive part
at the pinned commit (rows ``coswara-YYYYMMDD.tar.gz.aa``, algorithm ``git-blob-sha1``, read
from ``git ls-tree -r COMMIT``, which needs no download of the parts). :func:`prepare_coswara`
verifies every part against those rows before it joins them, then extracts each date once
(each member checked by :func:`nclib.data.fetch.safe_extract`: only plain files and
folders, nothing outside the extraction folder). A copy at another revision (or a test
fixture) is used by passing its own registry (:func:`write_part_registry` writes one from
a copy the caller trusts). :func:`coswara_metadata` selects the participants,
:func:`coswara_splits` builds the 70 / 15 / 15 log-mel splits.

Selection rule (the paper keeps participants "for whom the PCR test information was
available", 960 positive and 428 negative): ``testType == "rtpcr"`` and
``test_status`` in ``{"p", "n"}`` (case and spaces ignored). ``p`` is labelled
*positive*, ``n`` *negative*; ``covid_status`` is not used for the label, because it is
self-reported and includes states (recovered, exposed, under validation) that are not a
test result. Rapid antigen tests (``rat``), pending or untested participants (``ut``,
``na``) and rows without test information are left out. Older revisions of the CSV
without a ``testType`` column are read with the ``test_status`` rule alone (logged);
revisions without ``test_status`` carry no test information and are refused.

The paper profile of the chapter "The audio experiment" reads its target from here
(:func:`coswara_splits`).
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

from nclib.audio import PAPER_SAMPLE_RATE, PAPER_WINDOW_SECONDS, num_frames
from nclib.config import data_dir
from nclib.data.audio_files import log_mel_dataset
from nclib._sampling import stratified_split
from nclib.data.base import Splits
from nclib.data.fetch import (GIT_BLOB_SHA1, ChecksumError, atomic_path, file_digest, join_parts,
                              safe_extract, verify_file)
from nclib.data.registry import COLUMNS as REGISTRY_COLUMNS
from nclib.data.registry import registry_entries

logger = logging.getLogger("nclib.data.coswara")

REPOSITORY = "https://github.com/iiscleap/Coswara-Data.git"
#: The pinned commit of iiscleap/Coswara-Data (2023-06-23, "Update README.md").
COMMIT = "4942c97e31de7180a93d17f2e7530a9c543cfd50"
REGISTRY_PREFIX = "coswara-"  # registry rows "coswara-YYYYMMDD.tar.gz.aa", ...
FOLDER_NAME = "Coswara-Data"
#: The two classes, in label-code order (negative 0, positive 1).
CLASSES = ["negative", "positive"]
PAPER_COUNTS = {"positive": 960, "negative": 428}
#: The nine sounds recorded from each participant (one WAV file each).
SOUNDS = (
    "breathing-deep", "breathing-shallow", "cough-heavy", "cough-shallow", "counting-fast",
    "counting-normal", "vowel-a", "vowel-e", "vowel-o",
)
#: Frames per log-mel input: the paper's longest clips, 8 s at 48 kHz (159 frames).
COSWARA_FRAMES = num_frames(8 * PAPER_SAMPLE_RATE, PAPER_SAMPLE_RATE)  # 159: the paper's longest clips
#: The columns of ``combined_data.csv`` kept beside each participant's label.
METADATA_COLUMNS = ("covid_status", "test_status", "testType", "test_date", "record_date", "a", "g")
_DATE = re.compile(r"^\d{8}$")
_PART = re.compile(r"^(\d{8})\.tar\.gz\.[a-z]{2}$")
_MARKERS = ".nclib-markers"
_OFFLINE = (
    "The Coswara data is not in {folder} and could not be fetched ({why}). Clone the public "
    "repository by hand at the pinned commit: `git clone https://github.com/iiscleap/Coswara-Data {folder}"
    " && git -C {folder} checkout {commit}` (or copy such a clone there); nclib then verifies, joins "
    "and extracts the archives itself."
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


def fetch_coswara(destination=None, timeout: float = 3600, repository: str = REPOSITORY,
                  commit: str = COMMIT) -> Path:
    """Get a local copy of the Coswara repository at the pinned commit (shallow).

    Returns ``destination`` at once when it already holds ``combined_data.csv`` (its
    archive parts are verified later, by :func:`prepare_coswara`). Otherwise fetches
    exactly ``commit`` of ``repository`` (``git init``, ``git fetch --depth 1 <repository>
    <commit>``, ``git checkout <commit>``) into a temporary folder beside ``destination``,
    checks that the checkout is that commit, and renames it into place, so an
    interrupted or wrong fetch leaves nothing half-done. Git checks every object against
    its hash on the way.

    Parameters
    ----------
    destination : path-like, optional
        Default ``<data_dir()>/Coswara-Data``.
    timeout : float
        Seconds allowed for each git command.
    repository : str
        Git URL (default the public repository).
    commit : str
        Full commit id (default :data:`COMMIT`, the one the registry's digests belong to).

    Raises
    ------
    FileNotFoundError
        Offline, without git, or the commit cannot be fetched: the message says how to
        put a clone there by hand.

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
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise ValueError(f"commit must be a full 40-digit hexadecimal commit id, got {commit!r}")
    git = shutil.which("git")
    if git is None:
        raise FileNotFoundError(_OFFLINE.format(folder=destination, commit=commit, why="git is not installed"))
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    clone = staging / "clone"

    def run(*arguments) -> str:
        result = subprocess.run([git, *arguments], check=True, capture_output=True, timeout=timeout,
                                env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
        return result.stdout.decode(errors="replace").strip()

    try:
        run("init", "-q", str(clone))
        run("-C", str(clone), "fetch", "-q", "--depth", "1", repository, commit)
        run("-C", str(clone), "checkout", "-q", "--detach", commit)
        head = run("-C", str(clone), "rev-parse", "HEAD")
        if head != commit:
            raise OSError(f"the checkout is at {head}, not the pinned {commit}")
        if destination.exists() and not any(destination.iterdir()):
            destination.rmdir()
        os.replace(clone, destination)
    except (subprocess.SubprocessError, OSError) as error:
        raise FileNotFoundError(_OFFLINE.format(folder=destination, commit=commit, why=_short(error))) from None
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


def coswara_part_digests(registry=None) -> dict:
    """The registered archive parts of each date: ``{date: {part name: (algorithm, digest)}}``.

    Parameters
    ----------
    registry : path-like, optional
        A registry file (columns of :data:`nclib.data.registry.COLUMNS`); default
        ``nclib/data/registry.csv``, whose ``coswara-*`` rows hold the git blob ids of the parts
        at :data:`COMMIT`. To fill such rows for another commit, list the parts with
        ``git ls-tree -r <commit>`` (no download needed) and write one row per part:
        name ``coswara-<part file name>``, filename ``<date>/<part file name>``, algorithm
        ``git-blob-sha1``, digest the blob id.

    Returns
    -------
    dict
        Only rows named ``coswara-YYYYMMDD.tar.gz.xx``; other rows are ignored.

    Examples
    --------
    >>> digests = coswara_part_digests()
    >>> digests["20200413"]["20200413.tar.gz.aa"][0]
    'git-blob-sha1'
    """
    parts = {}
    for name, row in registry_entries(registry).items():
        match = _PART.match(name[len(REGISTRY_PREFIX):]) if name.startswith(REGISTRY_PREFIX) else None
        if match:
            parts.setdefault(match.group(1), {})[name[len(REGISTRY_PREFIX):]] = (row["algorithm"], row["digest"].lower())
    return parts


def write_part_registry(root, path) -> Path:
    """Write a registry of the archive parts of a local Coswara copy that you trust.

    For a copy at another revision than :data:`COMMIT` (or a test fixture): one row per
    ``YYYYMMDD/YYYYMMDD.tar.gz.xx`` with its git blob id (``git-blob-sha1``, what ``git
    hash-object`` prints) and size; pass the file as ``registry`` to
    :func:`prepare_coswara` or :func:`coswara_splits`. It only records what is there: it
    is as trustworthy as the copy it was made from.

    Parameters
    ----------
    root : path-like
        The Coswara-Data folder.
    path : path-like
        The registry file to write (atomically); it must lie outside ``root``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> base = pathlib.Path(tempfile.mkdtemp()); (base / "copy" / "20200413").mkdir(parents=True)
    >>> _ = (base / "copy" / "20200413" / "20200413.tar.gz.aa").write_bytes(b"abc")
    >>> registry = write_part_registry(base / "copy", base / "registry.csv")
    >>> coswara_part_digests(registry)
    {'20200413': {'20200413.tar.gz.aa': ('git-blob-sha1', 'f2ba8f84ab5c1bce84a7b441cb1959cfc7093b7f')}}
    """
    import csv

    root, path = Path(root), Path(path)
    if path.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"the registry {path} must lie outside the copy {root} it describes")
    rows = []
    for folder in date_folders(root):
        for part in sorted(folder.glob(f"{folder.name}.tar.gz.*")):
            if _PART.match(part.name):
                rows.append({"name": REGISTRY_PREFIX + part.name, "filename": f"{folder.name}/{part.name}",
                             "url": "", "algorithm": GIT_BLOB_SHA1, "digest": file_digest(part, GIT_BLOB_SHA1),
                             "size_bytes": part.stat().st_size, "notes": f"written from {root}"})
    with atomic_path(path) as temporary:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=REGISTRY_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    return path


def prepare_coswara(root=None, destination=None, progress: bool = False, registry=None) -> Path:
    """Verify, join and extract every date's split archive, once.

    For each ``root/YYYYMMDD/`` with parts ``YYYYMMDD.tar.gz.aa``, ``.ab``, ...: the set
    of parts must be the registered one and each part must have its registered digest
    (:func:`coswara_part_digests`) *before* anything is joined; then the parts are joined
    (:func:`nclib.data.fetch.join_parts`) into a temporary archive, which
    :func:`nclib.data.fetch.safe_extract` checks member by member and extracts into
    ``destination`` (giving ``destination/YYYYMMDD/<id>/*.wav``; only that date's folder
    may be replaced). A marker recording the parts' names, sizes and registered digests
    makes later calls skip that date without hashing again; changed parts or a changed
    registry mean verifying and extracting again. Registered dates missing from the copy
    are logged.

    Parameters
    ----------
    root : path-like, optional
        The Coswara-Data folder (default ``<data_dir()>/Coswara-Data``).
    destination : path-like, optional
        Extraction folder (default ``root/extracted``; it must not be ``root`` itself,
        whose date folders hold the parts).
    progress : bool
        Show a progress bar over the dates.
    registry : path-like, optional
        Registry with the parts' digests (default ``nclib/data/registry.csv``: the pinned
        :data:`COMMIT`); see :func:`write_part_registry` for another copy.

    Returns
    -------
    pathlib.Path
        ``destination``.

    Raises
    ------
    nclib.data.fetch.ChecksumError
        A part's digest differs, a part is missing or unexpected, or a date is not in the
        registry; nothing of that date has been joined or extracted.
    nclib.data.fetch.UnsafeArchiveError
        A member is not a plain file or folder, would land outside ``destination`` or
        replace anything but its own date folder, the archive is too large or damaged;
        nothing of that date is written.

    Examples
    --------
    >>> import io, tarfile, tempfile, pathlib
    >>> base = pathlib.Path(tempfile.mkdtemp()); root = base / "Coswara-Data"
    >>> (root / "20200413").mkdir(parents=True); _ = (root / "combined_data.csv").write_text("id\\n")
    >>> buffer = io.BytesIO()
    >>> with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
    ...     info = tarfile.TarInfo("20200413/abc/cough-heavy.wav"); info.size = 4
    ...     tar.addfile(info, io.BytesIO(b"RIFF"))
    >>> data = buffer.getvalue(); half = len(data) // 2
    >>> _ = (root / "20200413" / "20200413.tar.gz.aa").write_bytes(data[:half])
    >>> _ = (root / "20200413" / "20200413.tar.gz.ab").write_bytes(data[half:])
    >>> prepare_coswara(root)  # the pinned commit has four parts for that date, other contents
    Traceback (most recent call last):
    ...
    nclib.data.fetch.ChecksumError: ...20200413: parts differ from the registry (missing ['20200413.tar.gz.ac', ...
    >>> out = prepare_coswara(root, registry=write_part_registry(root, base / "registry.csv"))
    >>> (out / "20200413" / "abc" / "cough-heavy.wav").read_bytes()
    b'RIFF'
    """
    from nclib.progress import progress as progress_bar

    root = coswara_root(root)
    destination = Path(destination) if destination is not None else root / "extracted"
    if destination.resolve() == root.resolve():
        raise ValueError("destination must differ from root: extraction would replace the date folders")
    registered = coswara_part_digests(registry)
    if not registered:
        raise ValueError(f"the registry {registry or 'nclib/data/registry.csv'} has no {REGISTRY_PREFIX}YYYYMMDD.tar.gz.xx "
                         "rows to verify the Coswara archives with (see coswara_part_digests)")
    folders = date_folders(root)
    absent = sorted(set(registered) - {folder.name for folder in folders})
    if absent:
        logger.warning("%d registered Coswara dates are missing from %s (first: %s)", len(absent), root, absent[0])
    for folder in (progress_bar(folders, desc="Coswara archives") if progress else folders):
        parts = sorted(folder.glob(f"{folder.name}.tar.gz.*"))
        if not parts:
            logger.warning("%s holds no %s.tar.gz.* parts; skipped", folder, folder.name)
            continue
        _extract_date(folder.name, parts, destination, registered.get(folder.name))
    return destination


def _extract_date(date: str, parts: list[Path], destination: Path, expected: dict | None) -> None:
    if expected is None:
        raise ChecksumError(f"{parts[0].parent} is not in the registry (commit {COMMIT[:12]}): a copy at another "
                            "revision? Pass registry= with its digests (see write_part_registry)")
    names = [p.name for p in parts]
    missing, extra = sorted(set(expected) - set(names)), sorted(set(names) - set(expected))
    if missing or extra:
        raise ChecksumError(f"{parts[0].parent}: parts differ from the registry (missing {missing}, "
                            f"unexpected {extra}); fetch the copy again")
    signature = json.dumps([[p.name, p.stat().st_size, *expected[p.name]] for p in parts])
    marker = destination / _MARKERS / f"{date}.json"
    if marker.is_file() and marker.read_text() == signature:
        return
    for part in parts:  # every part, before anything is joined
        algorithm, digest = expected[part.name]
        verify_file(part, digest, algorithm)
    archive = destination / _MARKERS / f".{date}.tar.gz"
    try:
        join_parts(parts, archive)
        safe_extract(archive, destination, None, (date,))  # only its own date folder may be replaced
    finally:
        archive.unlink(missing_ok=True)
    with atomic_path(marker) as temporary:
        temporary.write_text(signature)
    logger.info("verified and extracted %s (%d parts) into %s", date, len(parts), destination)


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
                   fractions=(0.7, 0.15, 0.15), progress: bool = False, registry=None):
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
    registry : path-like, optional
        Registry with the archive parts' digests (see :func:`prepare_coswara`).

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
    extracted = prepare_coswara(root, destination, progress=progress, registry=registry)
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
