"""A small Coswara-Data copy in the repository's exact layout, for tests.

Layout written under ``root`` (as in iiscleap/Coswara-Data):

* ``combined_data.csv`` with the real column names;
* two date folders, each with ``YYYYMMDD.csv`` and the gzipped tar of
  ``YYYYMMDD/<id>/cough-heavy.wav`` and ``cough-shallow.wav`` split by bytes into
  ``YYYYMMDD.tar.gz.aa`` and ``.ab``.

Beside ``root`` (in ``root.parent / "registry.csv"``, outside the copy) a trusted
registry of the fixture's archive parts is written
(:func:`nclib.data.coswara.write_part_registry`): the fixture's dates coincide with real
Coswara dates, so ``nclib/data/registry.csv`` (the real digests) refuses its parts; pass
``expected["registry"]`` as ``registry=`` to ``prepare_coswara`` / ``coswara_splits``.

Participant ``i`` gets the test information ``PATTERN[i % 8]``: per block of eight,
three RT-PCR positives, two RT-PCR negatives, one rapid antigen test, one ``na`` and one
row with no test information. Recordings are 0.5 s mono 16-bit at 48 kHz, except
participant 0 (an RT-PCR positive) at 44.1 kHz. Positives carry a faint 500 Hz tone
under the noise bursts, so a model can learn something from the fixture.
"""

from __future__ import annotations

import csv
import io
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import soundfile

from nclib.data.coswara import write_part_registry

COLUMNS = [
    "id", "a", "covid_status", "record_date", "ep", "g", "l_c", "l_l", "l_s", "rU", "asthma",
    "cough", "smoker", "test_status", "test_date", "testType", "vacc",
]
DATES = ("20200413", "20210507")
# (testType, test_status, covid_status)
PATTERN = [
    ("rtpcr", "p", "positive_mild"),
    ("rtpcr", "n", "healthy"),
    ("rtpcr", "p", "positive_moderate"),
    ("rtpcr", "n", "resp_illness_not_identified"),
    ("rtpcr", "p", "positive_asymp"),
    ("rat", "p", "positive_mild"),
    ("", "na", "healthy"),
    ("", "", "recovered_full"),
]
SECONDS = {"cough-heavy": 0.5, "cough-shallow": 0.25}
ODD_RATE_PARTICIPANT = 0
_ALPHABET = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))


def write_coswara_fixture(root, participants: int = 48, seed: int = 0) -> dict:
    """Write the fixture under ``root``; return what a correct loader must find.

    Returns
    -------
    dict
        ``ids`` (all, in CSV order), ``positive`` and ``negative`` (RT-PCR ids),
        ``excluded`` (the others), ``dates`` (id -> YYYYMMDD), ``registry`` (the
        trusted registry of the parts, ``root.parent / "registry.csv"``).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows, expected = [], {"ids": [], "positive": [], "negative": [], "excluded": [], "dates": {}}
    with tempfile.TemporaryDirectory() as staging:
        staging = Path(staging)
        for index in range(participants):
            participant = "".join(rng.choice(_ALPHABET, 28))
            date = DATES[(index // 4) % len(DATES)]
            test_type, status, covid_status = PATTERN[index % len(PATTERN)]
            rate = 44_100 if index == ODD_RATE_PARTICIPANT else 48_000
            folder = staging / date / participant
            folder.mkdir(parents=True)
            for sound, seconds in SECONDS.items():
                soundfile.write(folder / f"{sound}.wav", _cough(rng, rate, seconds, status == "p"), rate,
                                subtype="PCM_16")
            rows.append(_row(participant, date, test_type, status, covid_status, rng))
            expected["ids"].append(participant)
            expected["dates"][participant] = date
            if test_type == "rtpcr":
                expected["positive" if status == "p" else "negative"].append(participant)
            else:
                expected["excluded"].append(participant)
        for date in DATES:
            archive = _tar_gz(staging, [date])
            _write_parts(root, date, archive)
            dated = [row for row in rows if row["record_date"].replace("-", "") == date]
            _write_csv(root / date / f"{date}.csv", dated)
    _write_csv(root / "combined_data.csv", rows)
    (root / "csv_labels_legend.json").write_text('{"test_status": {"p": "Positive", "n": "Negative"}}\n')
    expected["registry"] = write_part_registry(root, root.parent / "registry.csv")
    return expected


def write_hostile_coswara(root, participants: int = 8, seed: int = 0) -> dict:
    """A fixture whose second date's archive also holds a member ``../escape.wav``.

    The registry (``expected["registry"]``) is written after the hostile parts, so it
    trusts them: the digests pass and only ``safe_extract`` stands between the archive
    and the file system.
    """
    expected = write_coswara_fixture(root, participants, seed)
    root = Path(root)
    date = DATES[1]
    with tempfile.TemporaryDirectory() as staging:
        staging = Path(staging)
        with tarfile.open(staging / "joined.tar.gz", "w:gz") as tar:
            payload = b"RIFF-not-really-audio"
            info = tarfile.TarInfo("../escape.wav")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
            info = tarfile.TarInfo(f"{date}/intruder/cough-heavy.wav")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        for part in (root / date).glob(f"{date}.tar.gz.*"):
            part.unlink()
        _write_parts(root, date, (staging / "joined.tar.gz").read_bytes())
    expected["registry"] = write_part_registry(root, expected["registry"])
    return expected


def _cough(rng, rate: int, seconds: float, positive: bool) -> np.ndarray:
    samples = int(round(rate * seconds))
    time = np.arange(samples) / rate
    envelope = np.zeros(samples)
    for start in rng.uniform(0.0, seconds * 0.6, size=2):
        envelope += np.exp(-np.clip(time - start, 0, None) * 25) * (time >= start)
    signal = 0.4 * envelope * rng.standard_normal(samples) + 0.01 * rng.standard_normal(samples)
    if positive:
        signal += 0.05 * np.sin(2 * np.pi * 500 * time)
    return np.clip(signal, -1, 1).astype(np.float32)


def _row(participant, date, test_type, status, covid_status, rng) -> dict:
    row = {column: "" for column in COLUMNS}
    row.update(
        id=participant, a=str(int(rng.integers(18, 80))), covid_status=covid_status,
        record_date=f"{date[:4]}-{date[4:6]}-{date[6:]}", ep="y", g=str(rng.choice(["male", "female"])),
        l_c="India", l_l="Karnataka", l_s="Bangalore", rU="n", test_status=status, testType=test_type,
        test_date=f"{date[:4]}-{date[4:6]}-{date[6:]}" if test_type else "", vacc="n",
    )
    return row


def _tar_gz(staging: Path, names) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in names:
            tar.add(staging / name, arcname=name)
    return buffer.getvalue()


def _write_parts(root: Path, date: str, archive: bytes) -> None:
    folder = root / date
    folder.mkdir(parents=True, exist_ok=True)
    half = len(archive) // 2
    (folder / f"{date}.tar.gz.aa").write_bytes(archive[:half])
    (folder / f"{date}.tar.gz.ab").write_bytes(archive[half:])


def _write_csv(path: Path, rows) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)

