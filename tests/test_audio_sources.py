"""Loaders of the paper's pre-training sets on tiny copies of each data set's layout."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from nclib.data.audio_sources import (
    dcase2018_scenes,
    default_frames,
    gtzan_genres,
    load_source_task,
    speech_commands,
)


def tone(path, frequency: float, rate: int, seconds: float = 0.2, channels: int = 1):
    time = np.arange(int(rate * seconds)) / rate
    samples = 0.3 * np.sin(2 * np.pi * frequency * time)
    if channels == 2:
        samples = np.stack([samples, samples], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, samples, rate)
    return path


@pytest.fixture
def scenes_root(tmp_path):
    folder = tmp_path / "TUT-urban-acoustic-scenes-2018-development"
    rows = ["filename\tscene_label\tidentifier\tsource_label"]
    for scene, frequency in (("park", 300), ("airport", 900)):
        for index in range(2):
            name = f"audio/{scene}-barcelona-{index}-0-a.wav"
            tone(folder / name, frequency, 48_000, channels=2)  # the recordings are stereo
            rows.append(f"{name}\t{scene}\tbarcelona-{index}\ta")
    (folder / "meta.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


@pytest.fixture
def gtzan_root(tmp_path):
    for genre, frequency in (("blues", 220), ("rock", 880)):
        for index in range(2):
            tone(tmp_path / "genres" / genre / f"{genre}.{index:05d}.wav", frequency, 22_050)
    return tmp_path


@pytest.fixture
def speech_root(tmp_path):
    folder = tmp_path / "speech_commands_v0.02"
    for word, frequency in (("yes", 400), ("no", 1200)):
        for speaker in ("0a7c2a8d", "0b09edd3"):
            tone(folder / word / f"{speaker}_nohash_0.wav", frequency, 16_000, seconds=1.0)
    tone(folder / "_background_noise_" / "white_noise.wav", 100, 16_000, seconds=1.0)
    (folder / "validation_list.txt").write_text("yes/0b09edd3_nohash_0.wav\n")
    (folder / "testing_list.txt").write_text("no/0b09edd3_nohash_0.wav\n")
    return tmp_path


def test_default_frames_follow_the_paper_windows():
    # scenes: 10 s at 48 kHz, n_fft 1920, hop 960: 1 + (480000 - 1920) // 960 = 499
    # music: 30 s at 22.05 kHz, n_fft 882, hop 441: 1 + (661500 - 882) // 441 = 1499
    # speech: 1 s at 16 kHz, n_fft 480, hop 240: 1 + (16000 - 480) // 240 = 65
    assert [default_frames(task) for task in ("scenes", "music", "speech")] == [499, 1499, 65]


def test_dcase_scenes(scenes_root):
    dataset, report = dcase2018_scenes(scenes_root)
    assert dataset.inputs.shape == (4, 1, 499, 64) and dataset.inputs.dtype == np.float32
    assert dataset.classes == ["airport", "park"]
    assert dataset.labels.tolist() == [1, 1, 0, 0]  # meta.csv order
    assert dataset.info["source"] == "scenes"
    assert dataset.info["front_end"]["window_seconds"] == 0.04
    assert report.counts().to_dict("records") == [
        {"reason": "stereo mixed to mono", "status": "fixed", "count": 4}
    ]
    # The folder itself works as root too.
    again, _ = dcase2018_scenes(scenes_root / "TUT-urban-acoustic-scenes-2018-development", frames=20)
    assert again.inputs.shape == (4, 1, 20, 64)


def test_dcase_meta_without_header(scenes_root):
    meta = scenes_root / "TUT-urban-acoustic-scenes-2018-development" / "meta.csv"
    meta.write_text("".join(meta.read_text().splitlines(keepends=True)[1:]))
    dataset, _ = dcase2018_scenes(scenes_root, frames=10)
    assert dataset.classes == ["airport", "park"] and len(dataset) == 4


def test_gtzan_genres(gtzan_root):
    dataset, report = gtzan_genres(gtzan_root)
    assert dataset.inputs.shape == (4, 1, 1499, 64)
    assert dataset.classes == ["blues", "rock"]
    assert dataset.labels.tolist() == [0, 0, 1, 1]
    assert report.counts()["reason"].tolist() == ["ok"]
    # The 220 Hz genre has more energy than the 880 Hz one in the lowest bands.
    low = dataset.inputs[:, 0, :9, :8].mean(axis=(1, 2))
    assert low[:2].min() > low[2:].max()


def test_gtzan_reports_a_corrupt_clip(gtzan_root):
    (gtzan_root / "genres" / "rock" / "rock.00002.wav").write_bytes(b"not audio at all" * 10)
    dataset, report = gtzan_genres(gtzan_root, frames=8)
    assert len(dataset) == 4
    assert report.skipped()["reason"].tolist() == ["unreadable"]


def test_speech_commands_official_subsets(speech_root):
    train, report = speech_commands(speech_root)
    assert train.inputs.shape == (2, 1, 65, 64)
    assert train.classes == ["no", "yes"] and train.labels.tolist() == [0, 1]
    assert not any("_background_noise_" in path for path in report.table()["path"])
    validation, _ = speech_commands(speech_root, subset="validation")
    testing, _ = speech_commands(speech_root, subset="testing")
    everything, _ = speech_commands(speech_root, subset="all")
    assert (validation.labels.tolist(), testing.labels.tolist()) == ([1], [0])
    assert validation.classes == ["no", "yes"]  # every word, in every subset
    assert len(everything) == 4
    with pytest.raises(ValueError, match="subset"):
        speech_commands(speech_root, subset="dev")


def test_another_front_end_rate_is_reported(speech_root):
    dataset, report = speech_commands(speech_root, sample_rate=48_000)
    assert dataset.inputs.shape == (2, 1, 65, 64)  # 30 ms windows: 65 frames per second at any rate
    assert set(report.table()["reason"]) == {"resampled"}


def test_load_source_task_by_name(speech_root):
    dataset, _ = load_source_task("speech", speech_root, subset="all", frames=10)
    assert dataset.inputs.shape == (4, 1, 10, 64)
    with pytest.raises(ValueError, match="unknown audio source task"):
        load_source_task("images", speech_root)


@pytest.mark.parametrize("loader", [dcase2018_scenes, gtzan_genres, speech_commands])
def test_absent_data_is_a_clear_error(tmp_path, loader):
    with pytest.raises(FileNotFoundError, match="by hand"):
        loader(tmp_path)
