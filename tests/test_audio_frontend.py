"""The log-mel front end and the bad-audio policy of nclib.audio."""

from __future__ import annotations

import logging
import math
import os

import numpy as np
import pytest
import soundfile

from nclib import audio
from nclib.audio import (
    AudioReport,
    fixed_length,
    frame_settings,
    log_mel,
    log_mel_dataset,
    num_frames,
    read_audio,
)
from nclib.cache import Cache

RATE = 48_000


def noise(seconds: float, rate: int = RATE, seed: int = 0, channels: int = 1) -> np.ndarray:
    shape = (int(round(seconds * rate)), channels) if channels > 1 else int(round(seconds * rate))
    return np.random.default_rng(seed).uniform(-0.5, 0.5, shape).astype(np.float32)


def write(path, samples, rate=RATE, subtype="PCM_16"):
    soundfile.write(path, samples, rate, subtype=subtype)
    return path


@pytest.fixture
def bad_files(tmp_path):
    """One file per case of the policy, plus a good one."""
    files = {
        "good": write(tmp_path / "good.wav", noise(0.5)),
        "empty": tmp_path / "empty.wav",
        "corrupt": tmp_path / "corrupt.wav",
        "silent": write(tmp_path / "silent.wav", np.zeros(RATE // 2, np.float32)),
        "short": write(tmp_path / "short.wav", noise(0.05)),  # 2,400 samples < 4,800
        "stereo": write(tmp_path / "stereo.wav", noise(0.5, channels=2)),
        "rate16k": write(tmp_path / "rate16k.wav", noise(0.5, rate=16_000), rate=16_000),
    }
    files["empty"].write_bytes(b"")
    files["corrupt"].write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return files


# --- log_mel -------------------------------------------------------------------------


def test_frame_settings_follow_the_paper():
    assert frame_settings(48_000) == (4800, 2400)        # 100 ms, 50 %
    assert frame_settings(48_000, 0.04) == (1920, 960)   # scenes
    assert frame_settings(22_050, 0.04) == (882, 441)    # music
    assert frame_settings(16_000, 0.03) == (480, 240)    # speech
    assert frame_settings(44_100) == (4410, 2205)


def test_log_mel_frame_count_for_a_known_duration():
    # 1.3 s at 48 kHz = 62,400 samples: 1 + (62400 - 4800) // 2400 = 25 frames.
    features = log_mel(noise(1.3), RATE)
    assert features.shape == (25, 64) and features.dtype == np.float32
    assert num_frames(62_400, RATE) == 25
    # Exactly one window -> one frame; 1 s speech at 30 ms -> 1 + 15520 // 240 = 65.
    assert log_mel(noise(0.1), RATE).shape == (1, 64)
    assert log_mel(noise(1.0, rate=16_000), 16_000, window_seconds=0.03).shape == (65, 64)
    assert log_mel(noise(1.0), RATE, n_mels=40).shape == (19, 40)


def slaney_mel(frequency: float) -> float:
    """Slaney's mel scale (librosa's default), written out by hand."""
    if frequency < 1000:
        return 3 * frequency / 200
    return 15 + 27 * math.log(frequency / 1000) / math.log(6.4)


@pytest.mark.parametrize("frequency", [500.0, 4000.0])
def test_a_pure_tone_lands_in_its_mel_band(frequency):
    # 64 bands between 0 Hz and 24 kHz: 66 points equally spaced in mel; band k peaks at
    # point k + 1. 500 Hz -> mel 7.5 -> point 7.5 * 65 / 61.22 = 7.96 -> band 7;
    # 4 kHz -> mel 35.17 -> point 37.3 -> band 36.
    top = slaney_mel(RATE / 2)
    expected_band = round(slaney_mel(frequency) * 65 / top) - 1
    assert expected_band == {500.0: 7, 4000.0: 36}[frequency]
    time = np.arange(RATE) / RATE
    features = log_mel(0.5 * np.sin(2 * np.pi * frequency * time), RATE)
    assert int(np.argmax(features.mean(axis=0))) == expected_band


def test_log_mel_silence_sits_on_the_floor():
    features = log_mel(np.zeros(RATE), RATE)
    np.testing.assert_allclose(features, -100.0)  # 10 log10(1e-10)


@pytest.mark.parametrize(
    "waveform, rate, match",
    [
        (np.zeros((2, 4800)), RATE, "1-D"),
        (np.r_[np.zeros(4800), np.nan], RATE, "NaN"),
        (np.zeros(4799), RATE, "shorter than one FFT window"),
        (np.zeros(0), RATE, "empty"),
        (np.zeros(4800), 0, "sample_rate"),
        (np.zeros(4800), 44.5, "sample_rate"),
    ],
)
def test_log_mel_rejects_bad_input(waveform, rate, match):
    with pytest.raises(ValueError, match=match):
        log_mel(waveform, rate)


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="overlap"):
        frame_settings(RATE, 0.1, 1.0)
    with pytest.raises(ValueError, match="window_seconds"):
        frame_settings(RATE, 0.0)
    with pytest.raises(ValueError, match="n_mels"):
        log_mel(noise(0.2), RATE, n_mels=0)


# --- fixed_length ----------------------------------------------------------------------


def test_fixed_length_pads_with_the_silence_floor_at_the_end():
    spectrogram = np.array([[-3.0, 5.0], [1.0, -7.0]])
    padded = fixed_length(spectrogram, 4)
    np.testing.assert_array_equal(padded, [[-3, 5], [1, -7], [-7, -7], [-7, -7]])
    assert padded.dtype == np.float32


def test_fixed_length_crops_centred_and_repeats():
    spectrogram = np.arange(7.0)[:, None]
    assert fixed_length(spectrogram, 3)[:, 0].tolist() == [2.0, 3.0, 4.0]  # start (7 - 3) // 2
    assert fixed_length(spectrogram, 7)[:, 0].tolist() == list(range(7))
    assert fixed_length(np.arange(2.0)[:, None], 5, "repeat")[:, 0].tolist() == [0, 1, 0, 1, 0]
    with pytest.raises(ValueError, match="policy"):
        fixed_length(spectrogram, 3, "stretch")
    with pytest.raises(ValueError, match="frames"):
        fixed_length(spectrogram, 0)


# --- the bad-audio policy, one case at a time -------------------------------------------


@pytest.mark.parametrize(
    "case, reason",
    [("empty", "empty file"), ("corrupt", "unreadable"), ("silent", "silent"), ("short", "too short")],
)
def test_bad_files_are_skipped_with_a_logged_reason(bad_files, caplog, case, reason):
    with caplog.at_level(logging.WARNING, logger="nclib.audio"):
        result = read_audio(bad_files[case])
    assert (result.status, result.reason, result.waveform) == ("skipped", reason, None)
    assert str(bad_files[case]) in caplog.text and reason in caplog.text


def test_header_only_missing_and_non_finite_files(tmp_path):
    header_only = write(tmp_path / "header.wav", np.zeros(0, np.float32))
    assert read_audio(header_only).reason == "empty file"
    assert read_audio(tmp_path / "absent.wav").reason == "missing file"
    samples = noise(0.2)
    samples[10] = np.nan
    nan_file = write(tmp_path / "nan.wav", samples, subtype="FLOAT")
    assert read_audio(nan_file).reason == "non-finite samples"


def test_stereo_is_mixed_to_mono(tmp_path, caplog):
    left, right = np.full(4800, 0.25, np.float32), np.full(4800, -0.75, np.float32)
    path = write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), subtype="FLOAT")
    with caplog.at_level(logging.INFO, logger="nclib.audio"):
        result = read_audio(path)
    assert (result.status, result.reason) == ("fixed", "stereo mixed to mono")
    np.testing.assert_allclose(result.waveform, -0.25)  # (0.25 - 0.75) / 2
    assert "stereo mixed to mono" in caplog.text


def test_an_unexpected_rate_is_resampled(tmp_path, caplog):
    time = np.arange(8000) / 16_000
    path = write(tmp_path / "tone16k.wav", 0.5 * np.sin(2 * np.pi * 1000 * time), 16_000, "FLOAT")
    with caplog.at_level(logging.INFO, logger="nclib.audio"):
        result = read_audio(path, sample_rate=RATE)
    assert (result.status, result.reason, result.rate) == ("fixed", "resampled", RATE)
    assert result.detail == "16000 Hz -> 48000 Hz"
    assert result.waveform.shape == (24_000,)  # 0.5 s at 48 kHz
    spectrum = np.abs(np.fft.rfft(result.waveform))
    assert np.argmax(spectrum) * RATE / 24_000 == pytest.approx(1000, abs=2)
    assert "16000 Hz -> 48000 Hz" in caplog.text


def test_a_good_file_is_ok(bad_files):
    result = read_audio(bad_files["good"])
    assert (result.status, result.reason, result.rate) == ("ok", "", RATE)
    np.testing.assert_allclose(result.waveform, noise(0.5), atol=1 / 32768)


# --- the data set builder and its report ---------------------------------------------------


def test_dataset_counts_every_case_and_drops_nothing_silently(bad_files):
    paths = list(bad_files.values())
    labels = np.arange(len(paths)) % 2
    dataset, report = log_mel_dataset(paths, labels, ["a", "b"], frames=12)
    # good, stereo and rate16k survive, in input order.
    assert dataset.inputs.shape == (3, 1, 12, 64)
    assert dataset.labels.tolist() == [labels[0], labels[5], labels[6]]
    assert len(report) == len(paths)
    counts = {(row["reason"], row["status"]): row["count"] for row in report.counts().to_dict("records")}
    assert counts == {
        ("ok", "ok"): 1,
        ("resampled", "fixed"): 1,
        ("stereo mixed to mono", "fixed"): 1,
        ("empty file", "skipped"): 1,
        ("silent", "skipped"): 1,
        ("too short", "skipped"): 1,
        ("unreadable", "skipped"): 1,
    }
    skipped = report.skipped()
    assert set(skipped["path"]) == {str(bad_files[k]) for k in ("empty", "corrupt", "silent", "short")}
    assert dataset.info["skipped"] == 4 and dataset.info["files"] == 7


def test_a_file_fixed_twice_counts_under_both_reasons(tmp_path):
    path = write(tmp_path / "both.wav", noise(0.3, rate=44_100, channels=2), rate=44_100)
    _, report = log_mel_dataset([path], [0], ["a"], frames=4)
    assert report.table()["reason"].tolist() == ["stereo mixed to mono; resampled"]
    assert report.counts()["reason"].tolist() == ["resampled", "stereo mixed to mono"]


def test_all_skipped_gives_an_empty_dataset(tmp_path):
    empty = tmp_path / "e.wav"
    empty.write_bytes(b"")
    dataset, report = log_mel_dataset([empty], [0], ["a"], frames=4)
    assert dataset.inputs.shape == (0, 1, 4, 64) and len(report.skipped()) == 1
    assert AudioReport().counts().empty


def test_features_are_cached_and_invalidated_by_a_changed_file(tmp_path, monkeypatch):
    path = write(tmp_path / "a.wav", noise(0.3))
    cache = Cache(tmp_path / "cache")
    first, first_report = log_mel_dataset([path], [0], ["a"], frames=6, cache=cache)
    monkeypatch.setattr(audio, "read_audio", lambda *a, **k: pytest.fail("cache miss"))
    again, again_report = log_mel_dataset([path], [0], ["a"], frames=6, cache=cache)
    np.testing.assert_array_equal(first.inputs, again.inputs)
    assert again_report.table().equals(first_report.table())
    monkeypatch.undo()
    write(path, noise(0.3, seed=5))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    changed, _ = log_mel_dataset([path], [0], ["a"], frames=6, cache=cache)
    assert not np.array_equal(changed.inputs, first.inputs)
    other_settings, _ = log_mel_dataset([path], [0], ["a"], frames=7, cache=cache)
    assert other_settings.inputs.shape == (1, 1, 7, 64)


def test_dataset_rejects_mismatched_or_bad_labels(tmp_path):
    path = write(tmp_path / "a.wav", noise(0.2))
    with pytest.raises(ValueError, match="labels must have shape"):
        log_mel_dataset([path], [0, 1], ["a", "b"], frames=4)
    with pytest.raises(ValueError, match="range"):
        log_mel_dataset([path], [2], ["a", "b"], frames=4)
    with pytest.raises(ValueError, match="integer"):
        log_mel_dataset([path], ["a"], ["a", "b"], frames=4)
    with pytest.raises(ValueError, match="frames"):
        log_mel_dataset([path], [0], ["a", "b"], frames=0)
