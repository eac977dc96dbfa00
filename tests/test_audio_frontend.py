"""The log-mel front end and bad-audio policy (nclib.audio), and data sets built from audio files."""

from __future__ import annotations

import logging
import math
import os

import numpy as np
import pytest
import soundfile

from nclib import audio
from nclib.audio import fixed_length, frame_settings, log_mel, num_frames, read_audio
from nclib.cache import Cache
from nclib.data.audio_files import AudioReport, log_mel_dataset

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


# --- hostile files: overflow, absurd headers, lying lengths ----------------------------------


def raw_wav(path, rate, payload, channels=1, bits=16, data_size=None):
    """A PCM WAV written byte by byte, so its header can say anything."""
    import struct

    block = channels * bits // 8
    size = len(payload) if data_size is None else data_size
    header = (b"RIFF" + struct.pack("<I", (36 + size) & 0xFFFFFFFF) + b"WAVE"
              + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, (rate * block) & 0xFFFFFFFF, block, bits)
              + b"data" + struct.pack("<I", size))
    path.write_bytes(header + payload)
    return path


def pcm16(samples):
    return (np.asarray(samples) * 32767).astype("<i2").tobytes()


def lying_flac(path, claimed_frames=(1 << 36) - 1):
    """A valid 0.1 s FLAC whose STREAMINFO claims ``claimed_frames`` samples (24 days at 48 kHz)."""
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(4800) / RATE)
    soundfile.write(path, tone, RATE, format="FLAC")
    data = bytearray(path.read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO first
    field = int.from_bytes(data[18:26], "big")  # rate(20) channels(3) bits(5) total samples(36)
    mask = (1 << 36) - 1
    data[18:26] = ((field & ~mask) | claimed_frames).to_bytes(8, "big")
    path.write_bytes(bytes(data))
    return path


def refuse_decoding(monkeypatch):
    monkeypatch.setattr(audio, "_decode_mono", lambda *a, **k: pytest.fail("decoding started"))
    monkeypatch.setattr(soundfile, "read", lambda *a, **k: pytest.fail("decoding started"))


@pytest.mark.parametrize("rate", [100, 999, 384_001, 1_000_000])
def test_an_absurd_header_rate_is_skipped_before_decoding(tmp_path, monkeypatch, rate):
    path = raw_wav(tmp_path / f"r{rate}.wav", rate, pcm16(noise(0.5, rate=10_000)))
    assert soundfile.info(str(path)).samplerate == rate  # libsndfile itself accepts it
    refuse_decoding(monkeypatch)
    result = read_audio(path)
    assert (result.status, result.reason, result.waveform) == ("skipped", "implausible sample rate", None)
    assert str(rate) in result.detail


def test_plausible_extreme_rates_are_read(tmp_path):
    for rate in (1_000, 384_000):
        path = raw_wav(tmp_path / f"r{rate}.wav", rate, pcm16(noise(0.2, rate=rate)))
        assert read_audio(path, sample_rate=rate).status == "ok"


def test_a_file_beyond_max_seconds_is_skipped_before_decoding(tmp_path, monkeypatch):
    path = write(tmp_path / "long.wav", noise(2.0))
    refuse_decoding(monkeypatch)
    result = read_audio(path, max_seconds=1.5)
    assert (result.status, result.reason) == ("skipped", "too long")
    assert "96000 frames = 2.0 s > 1.5 s" in result.detail
    monkeypatch.undo()
    assert read_audio(path, max_seconds=2.5).status == "ok"


def test_a_lying_flac_header_allocates_nothing(tmp_path):
    import tracemalloc

    path = lying_flac(tmp_path / "lie.flac")
    assert path.stat().st_size < 4096 and soundfile.info(str(path)).frames == (1 << 36) - 1
    tracemalloc.start()
    result = read_audio(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert (result.status, result.reason) == ("skipped", "too long")
    assert peak < 10 * 2**20  # soundfile.read would have asked for 256 GiB


def test_a_lying_wav_data_size_reads_only_what_is_there(tmp_path):
    import tracemalloc

    real = noise(0.2)  # 9,600 frames, 19 KB, in a header that claims 4 GB
    path = raw_wav(tmp_path / "lie.wav", RATE, pcm16(real), data_size=0xFFFFFFF0)
    tracemalloc.start()
    result = read_audio(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.status == "ok" and result.waveform.shape == (9_600,)
    np.testing.assert_allclose(result.waveform, real, atol=1 / 16384)
    assert peak < 50 * 2**20


def test_decoding_stops_once_max_seconds_is_passed(tmp_path):
    # The header is checked first; the decoder enforces the same bound on what it really gets.
    path = write(tmp_path / "a.wav", noise(0.5))
    with pytest.raises(audio._Skip) as skip:
        audio._decode_mono(soundfile, path, 1, max_frames=1000, max_amplitude=1e3)
    assert skip.value.reason == "too long"


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_float_wavs_with_inf_or_nan_are_skipped(tmp_path, value):
    samples = noise(0.3, channels=2)
    samples[5000, 1] = value
    path = write(tmp_path / "inf.wav", samples, subtype="FLOAT")
    result = read_audio(path)
    assert (result.status, result.reason) == ("skipped", "non-finite samples")
    assert "frame 5000" in result.detail


@pytest.mark.parametrize("peak", [1.5e3, 32767.0, 1e30])
def test_samples_far_outside_the_nominal_range_are_skipped(tmp_path, peak):
    samples = noise(0.3)
    samples[100] = peak  # e.g. integers written into a float WAV without scaling
    result = read_audio(write(tmp_path / "loud.wav", samples, subtype="FLOAT"))
    assert (result.status, result.reason) == ("skipped", "out-of-range samples")
    samples[100] = 1.5  # slight float overshoot is a real recording: kept
    assert read_audio(write(tmp_path / "hot.wav", samples, subtype="FLOAT")).status == "ok"


def test_many_full_scale_int16_channels_mix_without_overflow(tmp_path):
    channels = 64
    full = np.full((4800, channels), 32767, "<i2")
    full[:, ::2] = 32767
    path = raw_wav(tmp_path / "many.wav", RATE, full.tobytes(), channels=channels)
    result = read_audio(path)
    assert (result.status, result.reason) == ("fixed", "stereo mixed to mono")
    assert result.detail == "64 channels averaged"
    np.testing.assert_array_equal(result.waveform, np.float32(32767 / 32768))  # no wrap-around
    negative = raw_wav(tmp_path / "neg.wav", RATE, np.full((4800, channels), -32768, "<i2").tobytes(),
                       channels=channels)
    np.testing.assert_array_equal(read_audio(negative).waveform, np.float32(-1.0))


def test_mixing_that_overflows_float32_is_skipped(tmp_path):
    samples = np.full((4800, 2), 1e300)  # finite doubles whose mono mix does not fit float32
    path = write(tmp_path / "huge.wav", samples, subtype="DOUBLE")
    assert read_audio(path).reason == "out-of-range samples"  # the default limit catches it first
    result = read_audio(path, max_amplitude=np.inf)
    assert (result.status, result.reason) == ("skipped", "overflow")
    assert "mixing 2 channels" in result.detail


def test_resampling_that_overflows_float32_is_skipped(tmp_path):
    # A full-float32-scale square wave: the resampler's ringing overshoots past float32's max.
    square = np.where(np.arange(8000) % 8 < 4, 3.4e38, -3.4e38).astype(np.float32)
    path = write(tmp_path / "square16k.wav", square, 16_000, subtype="FLOAT")
    result = read_audio(path, max_amplitude=np.inf)
    assert (result.status, result.reason) == ("skipped", "overflow")
    assert "resampling" in result.detail


def test_features_that_overflow_are_never_kept(tmp_path):
    loud = write(tmp_path / "loud.wav", noise(0.3) * 1e37, subtype="FLOAT")  # power overflows float32
    good = write(tmp_path / "good.wav", noise(0.3))
    dataset, report = log_mel_dataset([loud, good], [0, 1], ["a", "b"], frames=4, max_amplitude=np.inf)
    assert report.table()["reason"].tolist() == ["overflow", ""]
    assert dataset.labels.tolist() == [1] and np.isfinite(dataset.inputs).all()


def test_a_folder_of_hostile_files_is_read_with_each_skip_counted(tmp_path):
    files = {
        "good": write(tmp_path / "good.wav", noise(0.3)),
        "rate100": raw_wav(tmp_path / "rate100.wav", 100, pcm16(noise(1.0, rate=1000))),
        "rate1M": raw_wav(tmp_path / "rate1M.wav", 1_000_000, pcm16(noise(0.01, rate=1_000_000))),
        "inf": write(tmp_path / "inf.wav", np.r_[noise(0.3), np.inf].astype(np.float32), subtype="FLOAT"),
        "unscaled": write(tmp_path / "unscaled.wav", noise(0.3) * 65536, subtype="FLOAT"),
        "lying": lying_flac(tmp_path / "lying.flac"),
        "long": write(tmp_path / "long.wav", noise(3.0)),
        "many": raw_wav(tmp_path / "many.wav", RATE, np.full((4800, 32), 32767, "<i2").tobytes(), channels=32),
        "also_good": write(tmp_path / "also_good.wav", noise(0.3, seed=3), rate=44_100),
    }
    paths = list(files.values())
    dataset, report = log_mel_dataset(paths, np.zeros(len(paths), int), ["a"], frames=4, max_seconds=2.0)
    reasons = dict(zip(files, report.table()["reason"]))
    assert reasons == {"good": "", "rate100": "implausible sample rate", "rate1M": "implausible sample rate",
                       "inf": "non-finite samples", "unscaled": "out-of-range samples", "lying": "too long",
                       "long": "too long", "many": "stereo mixed to mono", "also_good": "resampled"}
    assert dataset.inputs.shape == (3, 1, 4, 64) and np.isfinite(dataset.inputs).all()
    counts = {(r["reason"], r["status"]): r["count"] for r in report.counts().to_dict("records")}
    assert counts[("too long", "skipped")] == 2 and counts[("implausible sample rate", "skipped")] == 2
    assert dataset.info["skipped"] == 6 and dataset.info["front_end"]["max_seconds"] == 2.0


def test_bad_limits_are_rejected(tmp_path):
    path = write(tmp_path / "a.wav", noise(0.2))
    for bad in (0, -1, np.nan):
        with pytest.raises(ValueError, match="max_seconds"):
            read_audio(path, max_seconds=bad)
        with pytest.raises(ValueError, match="max_amplitude"):
            read_audio(path, max_amplitude=bad)
        with pytest.raises(ValueError, match="max_seconds"):
            log_mel_dataset([path], [0], ["a"], frames=4, max_seconds=bad)
