"""The procedural audio tasks: determinism, shapes, ranges, counts, and that the recipes
give the spectral differences they were designed to give."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from nclib.data import synthetic_audio as sa

RATE = 48_000


def spectrum(waveforms, sample_rate=RATE):
    """Power spectra (N, bins) and bin frequencies of whole clips."""
    power = np.abs(np.fft.rfft(waveforms.astype(np.float64), axis=1)) ** 2
    return power, np.fft.rfftfreq(waveforms.shape[1], 1.0 / sample_rate)


def centroid(waveforms):
    power, freqs = spectrum(waveforms)
    return (power * freqs).sum(1) / power.sum(1)


def class_mean(values, data, name):
    return values[data.labels == data.classes.index(name)].mean()


@pytest.fixture(scope="module")
def small_tasks():
    return {
        "music": sa.music_task(n_per_class=6, seed=0),
        "speech": sa.speech_task(n_per_class=6, seed=0),
        "scenes": sa.scenes_task(n_per_class=6, seed=0),
        "cough": sa.cough_task(num_positive=6, num_negative=4, seed=0),
    }


@pytest.fixture(scope="module")
def cough():
    return sa.cough_task(num_positive=80, num_negative=40, seed=0)


@pytest.mark.parametrize("task", sa.TASKS)
def test_same_seed_gives_identical_clips(task):
    first = list(sa.generate_clips(task, 2, seed=3))
    second = list(sa.generate_clips(task, 2, seed=3))
    assert [label for label, _ in first] == [label for label, _ in second]
    for (_, a), (_, b) in zip(first, second):
        np.testing.assert_array_equal(a, b)
    other = np.stack([w for _, w in sa.generate_clips(task, 2, seed=4)])
    assert not np.array_equal(np.stack([w for _, w in first]), other)


def test_task_functions_are_deterministic(small_tasks):
    again = sa.cough_task(num_positive=6, num_negative=4, seed=0)
    np.testing.assert_array_equal(again.inputs, small_tasks["cough"].inputs)
    np.testing.assert_array_equal(again.labels, small_tasks["cough"].labels)


def test_larger_sets_contain_the_smaller_sets_clips():
    # Clip i of class c depends only on (seed, task, c, i): n=1 is a subset of n=2.
    small = sa.scenes_task(n_per_class=1, seed=5, duration=0.5)
    large = sa.scenes_task(n_per_class=2, seed=5, duration=0.5)
    for waveform, label in zip(small.inputs, small.labels):
        matches = [np.array_equal(waveform, w) for w in large.inputs[large.labels == label]]
        assert sum(matches) == 1


@pytest.mark.parametrize("task, seconds", [("music", 1.0), ("speech", 1.0), ("scenes", 1.0), ("cough", 1.5)])
def test_waveform_shapes_ranges_and_counts(small_tasks, task, seconds):
    data = small_tasks[task]
    assert data.inputs.dtype == np.float32
    assert data.inputs.shape == (len(data), int(seconds * RATE))
    assert np.isfinite(data.inputs).all()
    peaks = np.abs(data.inputs).max(axis=1)
    assert (peaks <= 0.9 + 1e-6).all() and (peaks >= 0.3 - 1e-6).all()  # random peak in [0.3, 0.9]
    assert data.labels.dtype == np.int64
    expected = [4, 6] if task == "cough" else [6] * 10
    assert np.bincount(data.labels, minlength=len(data.classes)).tolist() == expected
    assert data.classes == sa.task_classes(task)
    assert data.info["sample_rate"] == RATE and data.info["synthetic"] is True


def test_clips_are_shuffled_not_sorted_by_class(small_tasks):
    labels = small_tasks["music"].labels
    assert not (np.diff(labels) >= 0).all()


def test_cough_defaults_keep_the_coswara_ratio():
    counts = sa.DEFAULT_COUNTS["cough"]
    assert (counts["positive"], counts["negative"]) == (1729, 771)
    # Coswara in the paper: 960 positive, 428 negative.
    assert abs(counts["positive"] / counts["negative"] - 960 / 428) < 0.01


def test_class_counts_as_sequence_and_mapping():
    labels = [label for label, _ in sa.generate_clips("cough", [3, 1], seed=0, duration=0.6)]
    assert sorted(labels) == [0, 0, 0, 1]
    labels = [label for label, _ in sa.generate_clips("cough", {"positive": 2, "negative": 0}, duration=0.6)]
    assert labels == [1, 1]


@pytest.mark.parametrize("kwargs, message", [
    ({"task": "birds"}, "unknown synthetic task"),
    ({"task": "music", "seed": -1}, "seed"),
    ({"task": "music", "seed": 1.5}, "seed"),
    ({"task": "music", "n_per_class": [1, 2]}, "needs 10 counts"),
    ({"task": "music", "n_per_class": 0}, "not all zero"),
    ({"task": "music", "n_per_class": -2}, "non-negative"),
    ({"task": "cough", "n_per_class": {"positive": 3}}, "every class"),
    ({"task": "music", "duration": 0.1}, "duration"),
    ({"task": "music", "duration": float("nan")}, "duration"),
    ({"task": "music", "sample_rate": 100}, "sample_rate"),
])
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        list(sa.generate_clips(**{"n_per_class": 1, **kwargs}))


def test_log_mel_dataset_frames_follow_the_papers_windows():
    # No centring: frames = 1 + (samples - n_fft) // hop, hop = n_fft / 2.
    expected = {
        "music": 1 + (48_000 - 1920) // 960,    # 40 ms -> 49
        "speech": 1 + (48_000 - 1440) // 720,   # 30 ms -> 65
        "scenes": 1 + (48_000 - 1920) // 960,   # 40 ms -> 49
        "cough": 1 + (72_000 - 4800) // 2400,   # 100 ms, 1.5 s -> 29
    }
    for task, frames in expected.items():
        counts = {"negative": 1, "positive": 1} if task == "cough" else [1] + [0] * 9
        data = sa.synthetic_audio_dataset(task, counts, seed=0)
        assert data.inputs.shape == (len(data), 1, frames, 64)
        assert data.inputs.dtype == np.float32 and np.isfinite(data.inputs).all()
        assert data.info["window_seconds"] == sa.WINDOW_SECONDS[task]


def test_log_mel_dataset_matches_the_waveforms_and_validates_window():
    from nclib.audio import log_mel

    waves = sa.speech_task(n_per_class=[1] + [0] * 9, seed=2, duration=0.5)
    data = sa.synthetic_audio_dataset("speech", [1] + [0] * 9, seed=2, duration=0.5, window_seconds=0.05)
    np.testing.assert_array_equal(data.inputs[0, 0], log_mel(waves.inputs[0], RATE, 64, 0.05, 0.5))
    assert data.inputs.shape[2] == 1 + (24_000 - 2400) // 1200
    with pytest.raises(ValueError, match="window_seconds"):
        sa.synthetic_audio_dataset("speech", 1, duration=0.5, window_seconds=0.6)
    with pytest.raises(ValueError, match="unknown synthetic task"):
        sa.synthetic_audio_dataset("birds", 1)


def test_music_recipes_differ_in_brightness(small_tasks):
    # hiphop: bass register (MIDI 36), 4 harmonics, steep roll-off; classical and pop:
    # MIDI 64-67 with more harmonics. The spectral centroid must order them accordingly.
    data = small_tasks["music"]
    c = centroid(data.inputs)
    assert class_mean(c, data, "hiphop") * 2 < class_mean(c, data, "classical")
    assert class_mean(c, data, "hiphop") * 2 < class_mean(c, data, "pop")


def test_speech_fricative_onsets_add_high_frequency_energy(small_tasks):
    # Words starting with /s/ carry 3.8-10 kHz noise that vowels lack.
    data = small_tasks["speech"]
    power, freqs = spectrum(data.inputs)
    high = np.log(power[:, (freqs > 4000) & (freqs < 9000)].sum(1) / power.sum(1))
    has_s = np.array([name.startswith("s") for name in data.classes])[data.labels]
    assert roc_auc_score(has_s, high) > 0.75


def test_scene_textures_differ_in_colour(small_tasks):
    # park: white noise above 200 Hz with bird chirps; bus / street_traffic: brown noise
    # plus low rumble -> much lower spectral centroid.
    data = small_tasks["scenes"]
    c = centroid(data.inputs)
    park = class_mean(c, data, "park")
    assert park > 3 * class_mean(c, data, "bus")
    assert park > 3 * class_mean(c, data, "street_traffic")


def test_cough_not_separable_by_energy(cough):
    rms = np.sqrt((cough.inputs.astype(np.float64) ** 2).mean(axis=1))
    assert 0.3 < roc_auc_score(cough.labels, rms) < 0.7


def test_cough_positive_cue_present_but_imperfect(cough):
    # Wheezes are tonal partials at 250-900 Hz: the spectral peak-to-median ratio in that
    # band is higher for positives on average, but crackle-only and faint positives
    # overlap with negatives.
    power, freqs = spectrum(cough.inputs)
    band = power[:, (freqs > 250) & (freqs < 900)]
    peakiness = np.log(band.max(axis=1) / np.median(band, axis=1))
    auroc = roc_auc_score(cough.labels, peakiness)
    assert 0.6 < auroc < 0.95


def test_frame_filter_with_unit_gains_is_the_identity():
    # Periodic Hann windows at 50 % overlap sum to one, so unit gains change nothing.
    signal = np.random.default_rng(0).standard_normal(5000)
    for frame in (256, 1024):
        gains = np.ones((sa._num_frames(len(signal), frame), frame // 2 + 1))
        np.testing.assert_allclose(sa._shape_frames(signal, gains, frame), signal, atol=1e-12)


def test_events_are_cut_at_both_ends():
    event = np.array([1.0, 2.0, 3.0])
    for start, expected in [(-1, [2, 3, 0, 0, 0]), (3, [0, 0, 0, 1, 2]), (-5, [0] * 5), (9, [0] * 5)]:
        signal = np.zeros(5)
        sa._add_at(signal, event, start)
        assert signal.tolist() == expected


def test_cough_defaults_give_a_thousand_test_clips_in_the_quick_split():
    from nclib.data.base import stratified_split

    counts = sa.DEFAULT_COUNTS["cough"]
    labels = np.repeat([1, 0], [counts["positive"], counts["negative"]])
    train, val, test = stratified_split(labels, (0.4, 0.2, 0.4), seed=0)
    assert (len(train), len(val), len(test)) == (1000, 500, 1000)
    # both classes in every part, in the Coswara proportion
    assert abs(labels[test].mean() - 960 / 1388) < 0.01
