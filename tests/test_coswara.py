"""The Coswara loader on a fixture in the repository's exact layout."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import soundfile

from coswara_fixture import DATES, ODD_RATE_PARTICIPANT, write_coswara_fixture, write_hostile_coswara
from nclib.cache import Cache
from nclib.data import coswara
from nclib.data.coswara import (
    COSWARA_FRAMES,
    coswara_counts,
    coswara_metadata,
    coswara_splits,
    fetch_coswara,
    prepare_coswara,
)
from nclib.data.fetch import UnsafeArchiveError


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("coswara") / "Coswara-Data"
    expected = write_coswara_fixture(root)  # 48 participants: 6 blocks of the 8-row pattern
    return root, expected


@pytest.fixture(scope="module")
def prepared(fixture_root):
    root, expected = fixture_root
    splits, report = coswara_splits(root, seed=0, registry=expected["registry"])
    return root, expected, splits, report


def test_metadata_keeps_rtpcr_positive_and_negative_only(fixture_root):
    root, expected = fixture_root
    metadata = coswara_metadata(root)
    # 6 blocks x (3 RT-PCR p, 2 RT-PCR n); rat / na / empty rows are left out.
    assert (metadata["label"] == "positive").sum() == 18
    assert (metadata["label"] == "negative").sum() == 12
    assert set(metadata["id"]) == set(expected["positive"]) | set(expected["negative"])
    assert not set(metadata["id"]) & set(expected["excluded"])
    positives = metadata.set_index("id")["label_code"]
    assert all(positives[i] == 1 for i in expected["positive"])
    assert all(positives[i] == 0 for i in expected["negative"])
    assert set(metadata["testType"]) == {"rtpcr"}


def test_counts_are_reported_beside_the_paper(fixture_root):
    root, _ = fixture_root
    table = coswara_counts(coswara_metadata(root))
    assert table.to_dict("records") == [
        {"label": "positive", "ours": 18, "paper": 960},
        {"label": "negative", "ours": 12, "paper": 428},
    ]


def test_prepare_extracts_the_exact_layout(prepared):
    root, expected, _, _ = prepared
    extracted = root / "extracted"
    for participant in expected["ids"]:
        folder = extracted / expected["dates"][participant] / participant
        assert (folder / "cough-heavy.wav").is_file()
        assert (folder / "cough-shallow.wav").is_file()
    assert sorted(p.name for p in extracted.iterdir() if not p.name.startswith(".")) == list(DATES)
    # The parts stay where they were; no joined archive is left behind.
    assert (root / DATES[0] / f"{DATES[0]}.tar.gz.aa").is_file()
    assert not list(extracted.rglob("*.tar.gz"))


def test_splits_are_stratified_70_15_15(prepared):
    _, _, splits, report = prepared
    # positives 18 -> bounds round(12.6)=13, round(15.3)=15: 13 / 2 / 3
    # negatives 12 -> bounds round(8.4)=8, round(10.2)=10:   8 / 2 / 2
    assert splits.sizes() == {"train": 21, "val": 4, "test": 5}
    assert [int(part.labels.sum()) for part in (splits.train, splits.val, splits.test)] == [13, 2, 3]
    assert splits.train.classes == ["negative", "positive"]
    assert splits.train.inputs.shape == (21, 1, COSWARA_FRAMES, 64)
    assert splits.train.inputs.dtype == np.float32
    assert np.isfinite(splits.train.inputs).all()
    assert len(report) == 30 and len(report.skipped()) == 0


def test_the_44khz_recording_is_resampled_and_counted(prepared):
    _, expected, _, report = prepared
    counts = report.counts().set_index("reason")["count"].to_dict()
    assert counts == {"ok": 29, "resampled": 1}
    fixed = report.table().query("status == 'fixed'")
    assert fixed["path"].str.contains(expected["ids"][ODD_RATE_PARTICIPANT]).all()
    assert fixed["detail"].tolist() == ["44100 Hz -> 48000 Hz"]


def test_splits_are_seeded(fixture_root):
    root, expected = fixture_root
    first, _ = coswara_splits(root, seed=3, registry=expected["registry"])
    again, _ = coswara_splits(root, seed=3, registry=expected["registry"])
    other, _ = coswara_splits(root, seed=4, registry=expected["registry"])
    np.testing.assert_array_equal(first.test.inputs, again.test.inputs)
    assert not np.array_equal(first.test.inputs, other.test.inputs)


def test_prepare_is_idempotent(fixture_root, monkeypatch):
    root, expected = fixture_root
    registry = expected["registry"]
    prepare_coswara(root, registry=registry)
    calls = []
    monkeypatch.setattr(coswara, "safe_extract", lambda *args: calls.append(args))
    prepare_coswara(root, registry=registry)
    assert calls == []
    (root / "extracted" / ".nclib-markers" / f"{DATES[0]}.json").unlink()
    monkeypatch.undo()
    real = coswara.safe_extract
    monkeypatch.setattr(coswara, "safe_extract", lambda *args: calls.append(args) or real(*args))
    prepare_coswara(root, registry=registry)
    assert len(calls) == 1  # only the date whose marker was removed


def test_hostile_member_is_refused_and_nothing_escapes(tmp_path):
    root = tmp_path / "hostile" / "Coswara-Data"
    expected = write_hostile_coswara(root)  # its registry trusts the hostile parts
    with pytest.raises(UnsafeArchiveError, match=r"\.\./escape\.wav"):
        prepare_coswara(root, registry=expected["registry"])
    assert not list(tmp_path.rglob("escape.wav"))
    assert not list(tmp_path.rglob("intruder"))  # the hostile archive's other member neither
    markers = root / "extracted" / ".nclib-markers"
    assert not (markers / f"{DATES[1]}.json").exists()
    assert not list(markers.glob("*.tar.gz"))


def test_skipped_and_missing_recordings_are_counted(tmp_path):
    root = tmp_path / "Coswara-Data"
    expected = write_coswara_fixture(root, participants=16)
    extracted = prepare_coswara(root, registry=expected["registry"])
    silent, missing = expected["positive"][1], expected["negative"][0]
    silent_path = extracted / expected["dates"][silent] / silent / "cough-heavy.wav"
    soundfile.write(silent_path, np.zeros(24_000), 48_000)
    (extracted / expected["dates"][missing] / missing / "cough-heavy.wav").unlink()
    splits, report = coswara_splits(root, registry=expected["registry"])
    skipped = report.skipped().set_index("reason")["path"]
    assert silent in skipped["silent"] and missing in skipped["missing file"]
    # 16 participants: 6 positive + 4 negative selected, 2 skipped.
    assert sum(splits.sizes().values()) == 8
    metadata = coswara_metadata(root)
    counts = coswara_counts(metadata, report)
    assert counts["with_audio"].tolist() == [5, 3]


def test_cough_shallow_and_cache(tmp_path):
    root = tmp_path / "Coswara-Data"
    registry = write_coswara_fixture(root, participants=8)["registry"]
    cache = Cache(tmp_path / "cache")
    splits, report = coswara_splits(root, sound="cough-shallow", frames=5, cache=cache, registry=registry)
    assert splits.train.inputs.shape[1:] == (1, 5, 64)
    assert all(path.endswith("cough-shallow.wav") for path in report.table()["path"])
    cached, cached_report = coswara_splits(root, sound="cough-shallow", frames=5, cache=cache, registry=registry)
    np.testing.assert_array_equal(cached.train.inputs, splits.train.inputs)
    pd.testing.assert_frame_equal(cached_report.table(), report.table())
    with pytest.raises(ValueError, match="sound must be one of"):
        coswara_splits(root, sound="sneeze", registry=registry)


def test_older_csv_revisions(tmp_path, caplog):
    root = tmp_path / "old"
    root.mkdir()
    (root / "combined_data.csv").write_text(
        "id,covid_status,test_status\na,positive_mild,p\nb,healthy,n\nc,healthy,na\n"
    )
    with caplog.at_level(logging.WARNING, logger="nclib.data.coswara"):
        metadata = coswara_metadata(root)
    assert metadata["label"].tolist() == ["positive", "negative"]
    assert metadata["testType"].tolist() == ["", ""]
    assert "no testType column" in caplog.text
    (root / "combined_data.csv").write_text("id,covid_status\na,positive_mild\n")
    with pytest.raises(ValueError, match="no 'test_status' column"):
        coswara_metadata(root)


def test_duplicate_ids_keep_the_first_row(tmp_path):
    (tmp_path / "combined_data.csv").write_text("id,test_status,testType\nx,p,rtpcr\nx,n,rtpcr\ny,n,rtpcr\n")
    metadata = coswara_metadata(tmp_path)
    assert metadata[["id", "label"]].values.tolist() == [["x", "positive"], ["y", "negative"]]


def test_missing_copy_and_offline_fetch(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="git clone"):
        coswara_splits(tmp_path / "nowhere")
    monkeypatch.setattr(coswara.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="iiscleap/Coswara-Data"):
        fetch_coswara(tmp_path / "Coswara-Data")
    assert not (tmp_path / "Coswara-Data").exists()


# --- archive verification against the registry (pinned commit) ---------------------------

import subprocess  # noqa: E402

from nclib.data.fetch import ChecksumError, file_digest  # noqa: E402
from nclib.data.registry import registry_entries  # noqa: E402


def fixture_with_registry(base, **options):
    root = base / "Coswara-Data"
    expected = write_coswara_fixture(root, **options)
    assert expected["registry"] == base / "registry.csv"  # beside the copy, not inside it
    return root, expected, expected["registry"]


def test_the_registry_pins_every_part_of_the_commit():
    parts = coswara.coswara_part_digests()
    assert sum(len(p) for p in parts.values()) == 153 and len(parts) == 43
    assert sorted(parts["20200413"]) == [f"20200413.tar.gz.a{c}" for c in "abcd"]
    rows = {k: v for k, v in registry_entries().items() if k.startswith("coswara-")}
    for name, row in rows.items():
        assert row["algorithm"] == "git-blob-sha1" and len(row["digest"]) == 40
        assert coswara.COMMIT in row["url"] and row["url"].endswith(row["filename"])
        assert row["filename"] == f"{name[8:16]}/{name[8:]}"


def test_the_fixture_is_refused_by_the_official_registry(tmp_path):
    root = tmp_path / "Coswara-Data"
    write_coswara_fixture(root, participants=8)
    with pytest.raises(ChecksumError, match="20200413: parts differ from the registry"):
        prepare_coswara(root)
    assert not (root / "extracted" / DATES[0]).exists()


def test_every_part_is_verified_before_anything_is_joined(tmp_path, monkeypatch):
    root, _, registry = fixture_with_registry(tmp_path, participants=8)
    part = root / DATES[1] / f"{DATES[1]}.tar.gz.ab"
    data = bytearray(part.read_bytes())
    data[-20] ^= 0xFF  # same size, one byte changed
    part.write_bytes(bytes(data))
    joined, real = [], coswara.join_parts
    monkeypatch.setattr(coswara, "join_parts", lambda *args: joined.append(args) or real(*args))
    with pytest.raises(ChecksumError, match=f"{part.name}: git-blob-sha1 is .*expected"):
        prepare_coswara(root, registry=registry)
    assert len(joined) == 1  # the first date, intact, was joined; the damaged one never
    assert not (root / "extracted" / DATES[1]).exists()


@pytest.mark.parametrize("change, message", [
    ("remove", r"missing \['20210507.tar.gz.ab'\], unexpected \[\]"),
    ("add", r"missing \[\], unexpected \['20210507.tar.gz.ac'\]"),
])
def test_missing_or_extra_parts_are_refused(tmp_path, change, message):
    root, _, registry = fixture_with_registry(tmp_path, participants=8)
    folder = root / DATES[1]
    if change == "remove":
        (folder / f"{DATES[1]}.tar.gz.ab").unlink()
    else:
        (folder / f"{DATES[1]}.tar.gz.ac").write_bytes(b"more")
    with pytest.raises(ChecksumError, match=message):
        prepare_coswara(root, registry=registry)


def test_an_unregistered_date_and_an_empty_registry(tmp_path):
    root, _, registry = fixture_with_registry(tmp_path, participants=8)
    extra = root / "20991231"
    extra.mkdir()
    (extra / "20991231.tar.gz.aa").write_bytes(b"x")
    with pytest.raises(ChecksumError, match="20991231 is not in the registry .*registry="):
        prepare_coswara(root, registry=registry)
    empty = tmp_path / "empty.csv"
    empty.write_text(",".join(coswara.REGISTRY_COLUMNS) + "\n")
    with pytest.raises(ValueError, match="has no coswara-YYYYMMDD.tar.gz.xx rows"):
        prepare_coswara(root, registry=empty)


def test_a_verified_fixture_extracts_and_a_changed_registry_verifies_again(tmp_path, monkeypatch):
    root, expected, registry = fixture_with_registry(tmp_path, participants=8)
    splits, _ = coswara_splits(root, seed=0, frames=9, registry=registry)
    assert sum(splits.sizes().values()) == 5  # 8 participants: 3 positive and 2 negative RT-PCR
    checked = []
    real = coswara.verify_file
    monkeypatch.setattr(coswara, "verify_file", lambda *args: checked.append(args[0].name) or real(*args))
    prepare_coswara(root, registry=registry)
    assert checked == []  # the markers record what was verified
    text = registry.read_text().replace(file_digest(root / DATES[0] / f"{DATES[0]}.tar.gz.aa", "git-blob-sha1"),
                                        "0" * 40)
    registry.write_text(text)
    with pytest.raises(ChecksumError, match=f"{DATES[0]}.tar.gz.aa: git-blob-sha1 is"):
        prepare_coswara(root, registry=registry)


def test_a_trusted_hostile_archive_is_still_refused_by_safe_extract(tmp_path):
    root = tmp_path / "hostile" / "Coswara-Data"
    registry = write_hostile_coswara(root)["registry"]  # written from the hostile parts: trusted
    assert coswara.coswara_part_digests(registry)[DATES[1]] == {
        part.name: ("git-blob-sha1", file_digest(part, "git-blob-sha1"))
        for part in (root / DATES[1]).glob(f"{DATES[1]}.tar.gz.*")}
    with pytest.raises(UnsafeArchiveError, match=r"'\.\./escape\.wav' has a '\.\.' component"):
        prepare_coswara(root, registry=registry)
    assert not list(tmp_path.rglob("escape.wav")) and not list(tmp_path.rglob("intruder"))


def test_extraction_replaces_only_its_own_date_folder(tmp_path):
    root, expected, registry = fixture_with_registry(tmp_path, participants=8)
    extracted = root / "extracted"
    (extracted / DATES[0] / "stale-participant").mkdir(parents=True)
    (extracted / "notes").mkdir()
    (extracted / "notes" / "mine.txt").write_text("keep")
    prepare_coswara(root, registry=registry)
    assert not (extracted / DATES[0] / "stale-participant").exists()  # its own folder: replaced
    assert (extracted / "notes" / "mine.txt").read_text() == "keep"
    assert sorted(p.name for p in extracted.iterdir()) == [".nclib-markers", *DATES, "notes"]


def test_write_part_registry_refuses_to_write_inside_the_copy(tmp_path):
    root = tmp_path / "Coswara-Data"
    write_coswara_fixture(root, participants=8)
    with pytest.raises(ValueError, match="must lie outside the copy"):
        coswara.write_part_registry(root, root / "registry.csv")


def git(*arguments, cwd):
    return subprocess.run(["git", *arguments], cwd=cwd, check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(cwd), "PATH": "/usr/bin:/bin"}).stdout.strip()


@pytest.mark.skipif(coswara.shutil.which("git") is None, reason="git is not installed")
def test_fetch_checks_out_the_pinned_commit_not_the_newest(tmp_path):
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    git("init", "-q", cwd=upstream)
    (upstream / "combined_data.csv").write_text("id\npinned\n")
    git("add", ".", cwd=upstream)
    git("commit", "-qm", "pinned", cwd=upstream)
    pinned = git("rev-parse", "HEAD", cwd=upstream)
    (upstream / "combined_data.csv").write_text("id\nnewer\n")
    git("commit", "-qam", "newer", cwd=upstream)
    copy = fetch_coswara(tmp_path / "data" / "Coswara-Data", repository=upstream.as_uri(), commit=pinned)
    assert (copy / "combined_data.csv").read_text() == "id\npinned\n"
    assert git("rev-parse", "HEAD", cwd=copy) == pinned
    with pytest.raises(FileNotFoundError, match="checkout " + "0" * 40):
        fetch_coswara(tmp_path / "other", repository=upstream.as_uri(), commit="0" * 40)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "upstream"]  # nothing half-done
    with pytest.raises(ValueError, match="full 40-digit"):
        fetch_coswara(tmp_path / "other", commit="main")
