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
    splits, report = coswara_splits(root, seed=0)
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
    root, _ = fixture_root
    first, _ = coswara_splits(root, seed=3)
    again, _ = coswara_splits(root, seed=3)
    other, _ = coswara_splits(root, seed=4)
    np.testing.assert_array_equal(first.test.inputs, again.test.inputs)
    assert not np.array_equal(first.test.inputs, other.test.inputs)


def test_prepare_is_idempotent(fixture_root, monkeypatch):
    root, _ = fixture_root
    prepare_coswara(root)
    calls = []
    monkeypatch.setattr(coswara, "safe_extract", lambda *args: calls.append(args))
    prepare_coswara(root)
    assert calls == []
    (root / "extracted" / ".nclib-markers" / f"{DATES[0]}.json").unlink()
    monkeypatch.undo()
    real = coswara.safe_extract
    monkeypatch.setattr(coswara, "safe_extract", lambda *args: calls.append(args) or real(*args))
    prepare_coswara(root)
    assert len(calls) == 1  # only the date whose marker was removed


def test_hostile_member_is_refused_and_nothing_escapes(tmp_path):
    root = tmp_path / "hostile" / "Coswara-Data"
    write_hostile_coswara(root)
    with pytest.raises(UnsafeArchiveError, match=r"\.\./escape\.wav"):
        prepare_coswara(root)
    assert not list(tmp_path.rglob("escape.wav"))
    assert not list(tmp_path.rglob("intruder"))  # the hostile archive's other member neither
    markers = root / "extracted" / ".nclib-markers"
    assert not (markers / f"{DATES[1]}.json").exists()
    assert not list(markers.glob("*.tar.gz"))


def test_skipped_and_missing_recordings_are_counted(tmp_path):
    root = tmp_path / "Coswara-Data"
    expected = write_coswara_fixture(root, participants=16)
    extracted = prepare_coswara(root)
    silent, missing = expected["positive"][1], expected["negative"][0]
    silent_path = extracted / expected["dates"][silent] / silent / "cough-heavy.wav"
    soundfile.write(silent_path, np.zeros(24_000), 48_000)
    (extracted / expected["dates"][missing] / missing / "cough-heavy.wav").unlink()
    splits, report = coswara_splits(root)
    skipped = report.skipped().set_index("reason")["path"]
    assert silent in skipped["silent"] and missing in skipped["missing file"]
    # 16 participants: 6 positive + 4 negative selected, 2 skipped.
    assert sum(splits.sizes().values()) == 8
    metadata = coswara_metadata(root)
    counts = coswara_counts(metadata, report)
    assert counts["with_audio"].tolist() == [5, 3]


def test_cough_shallow_and_cache(tmp_path):
    root = tmp_path / "Coswara-Data"
    write_coswara_fixture(root, participants=8)
    cache = Cache(tmp_path / "cache")
    splits, report = coswara_splits(root, sound="cough-shallow", frames=5, cache=cache)
    assert splits.train.inputs.shape[1:] == (1, 5, 64)
    assert all(path.endswith("cough-shallow.wav") for path in report.table()["path"])
    cached, cached_report = coswara_splits(root, sound="cough-shallow", frames=5, cache=cache)
    np.testing.assert_array_equal(cached.train.inputs, splits.train.inputs)
    pd.testing.assert_frame_equal(cached_report.table(), report.table())
    with pytest.raises(ValueError, match="sound must be one of"):
        coswara_splits(root, sound="sneeze")


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
