"""The audio experiment's configuration: the paper profile end to end on fixtures in the
real data sets' layouts, the quick profile's configuration and its file-based target."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile

from coswara_fixture import write_coswara_fixture
from nclib.cache import Cache
from nclib.data.coswara import coswara_splits
from nclib.experiments import coswara
from nclib.experiments.audio_support import captured_log, standardise_log_mel, synthetic_cough_files
from nclib.experiments.coswara import coswara_experiment, paper_target, quick_source, quick_target
from nclib.experiments.runner import COLUMNS, CSV_COLUMNS, run_experiment

ZOO = ["dcase-scenes", "cnn-music", "cnn-speech", "crnn-music", "crnn-speech"]
SCORES = ("nc", "leep", "logme")


pytestmark = pytest.mark.usefixtures("quiet_single_thread", "isolated_data")  # every default cache in tmp_path


# --- tiny copies of the three source data sets, in their published layouts ---------------

def tone(path, frequency: float, rate: int, seconds: float = 0.3):
    time = np.arange(int(rate * seconds)) / rate
    noise = np.random.default_rng(int(frequency)).normal(0, 0.02, time.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, 0.3 * np.sin(2 * np.pi * frequency * time) + noise, rate)


def write_sources(root):
    """Two classes of four clips in each of DCASE 2018 task 1A, GTZAN and Speech Commands."""
    scenes = root / "TUT-urban-acoustic-scenes-2018-development"
    rows = ["filename\tscene_label\tidentifier\tsource_label"]
    for scene, frequency in (("park", 300), ("airport", 900)):
        for index in range(4):
            name = f"audio/{scene}-barcelona-{index}-0-a.wav"
            tone(scenes / name, frequency + 10 * index, 48_000)
            rows.append(f"{name}\t{scene}\tbarcelona-{index}\ta")
    (scenes / "meta.csv").write_text("\n".join(rows) + "\n")
    for genre, frequency in (("blues", 220), ("rock", 880)):
        for index in range(4):
            tone(root / "genres" / genre / f"{genre}.{index:05d}.wav", frequency + 10 * index, 22_050)
    speech = root / "speech_commands_v0.02"
    for word, frequency in (("yes", 400), ("no", 1200)):
        for index in range(4):
            tone(speech / word / f"speaker{index}_nohash_0.wav", frequency + 10 * index, 16_000, seconds=1.0)
    (speech / "validation_list.txt").write_text("yes/speaker3_nohash_0.wav\nno/speaker3_nohash_0.wav\n")
    (speech / "testing_list.txt").write_text("")


# --- the paper profile, end to end ----------------------------------------------------------

def test_paper_profile_runs_end_to_end_on_fixtures(tmp_path):
    coswara_root = tmp_path / "Coswara-Data"
    registry = write_coswara_fixture(coswara_root)["registry"]  # 48 participants, 30 with an RT-PCR result
    write_sources(tmp_path / "sources")
    config = coswara_experiment(
        "paper", root=coswara_root, source_root=tmp_path / "sources", seeds=(0,), head_epochs=1,
        full_epochs=1, frames=9, source_frames=12, pretrain_epochs=1, scores=SCORES,
        source_classes={"scenes": 2, "music": 2, "speech": 2}, registry=registry,
    )
    assert (config.metric, config.lr, config.batch_size) == ("auroc", 1e-4, 32)
    results = run_experiment(config, out=tmp_path / "out", cache=Cache(tmp_path / "cache"))

    for name in ("scores", "transfer", "evaluation"):
        table = getattr(results, name)
        assert list(table.columns) == COLUMNS[name]
        written = pd.read_csv(tmp_path / "out" / f"{name}.csv")
        assert list(written.columns) == CSV_COLUMNS[name]
        assert len(written) == len(table)
    transfer = results.transfer
    assert set(transfer.metric) == {"auroc"}
    assert sorted(transfer.regime.unique()) == ["full", "head"]
    assert sorted(transfer.model) == sorted(ZOO * 2)  # five models x two regimes x one seed
    assert transfer.value.between(0, 1).all()
    assert set(results.scores.score) == set(SCORES) and len(results.scores) == 15
    assert np.isfinite(results.scores.value).all()
    evaluation = results.evaluation
    assert set(evaluation.score) == set(SCORES) and set(evaluation.regime) == {"head", "full"}
    assert {"abs_pearson", "weighted_tau", "relative_top1"} <= set(evaluation.measure)
    # one epoch per run: a history row per model and regime
    assert len(results.history) == 10 and set(results.history.epoch) == {1}
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["metric"] == "auroc" and run["profile"] == "paper"
    # the source classifiers have the fixture's two classes (LEEP reads 2-way softmaxes)
    assert set(results.models.name) == set(ZOO)


def test_paper_target_is_the_standardised_coswara_split(tmp_path):
    root = tmp_path / "Coswara-Data"
    registry = write_coswara_fixture(root)["registry"]
    splits, report = paper_target(root, frames=9, cache=Cache(enabled=False), registry=registry)
    # 18 positive and 12 negative RT-PCR participants; 70/15/15 per class:
    # positive 13/2/3, negative 8/2/2 (boundaries at floor(fraction * n + 0.5)).
    assert splits.sizes() == {"train": 21, "val": 4, "test": 5}
    assert splits.train.inputs.shape[1:] == (1, 9, 64)
    raw, _ = coswara_splits(root, seed=0, frames=9, registry=registry)
    np.testing.assert_allclose(splits.test.inputs, (raw.test.inputs + 40) / 20, rtol=1e-6)
    assert len(report) == 30


def test_paper_source_classes_must_fit_the_classifier(tmp_path):
    write_sources(tmp_path / "sources")
    config = coswara_experiment("paper", source_root=tmp_path / "sources", source_frames=12, pretrain_epochs=1,
                                source_classes={"music": 1})
    spec = next(spec for spec in config.zoo() if spec.name == "cnn-music")
    with pytest.raises(ValueError, match="2 classes but cnn-music has 1 outputs"):
        config.prepare_model(spec, Cache(enabled=False))


# --- the quick profile ------------------------------------------------------------------------

PUBLISHED = ["crepe-tiny", "resemblyzer-ge2e", "silero-vad"]


def test_quick_config_is_well_formed():
    config = coswara_experiment()
    assert (config.name, config.profile, config.metric) == ("coswara", "quick", "auroc")
    # converged and deterministic: the convex head, one run per model
    assert (config.head_solver, config.seeds, config.full_regime) == ("convex", (0,), False)
    assert config.scores is None  # every registered score unless asked otherwise
    specs = config.zoo()
    from nclib.models.pretrained_audio import pretrained_audio_status

    available = set(pretrained_audio_status().query("available").name)
    assert [spec.name for spec in specs] == [name for name in PUBLISHED if name in available] + ZOO
    in_house = [spec for spec in specs if spec.name in ZOO]
    assert [spec.source_task for spec in in_house] == ["scenes", "music", "speech", "music", "speech"]
    assert all(spec.build().classifier.out_features == 10 for spec in in_house)  # ten synthetic classes each
    json.dumps(config.settings())  # recorded in run.json
    assert config.key_parts["input_map"] == "(dB + 40) / 20"
    assert "procedural" in config.description.lower()



def test_quick_fine_tuned_config_leaves_out_the_speaker_encoder_and_crepe_and_shares_the_cache():
    head_only, tuned = coswara_experiment(), coswara_experiment(fine_tune="top")
    assert (tuned.full_regime, tuned.fine_tune, tuned.seeds) == (True, "top", coswara.QUICK["top_seeds"])
    assert (tuned.full_epochs, tuned.patience) == (coswara.QUICK["top_epochs"], coswara.QUICK["top_patience"])
    assert len(tuned.seeds) >= 5 and tuned.convergence_check == "raise"
    from nclib.models.pretrained_audio import pretrained_audio_status

    available = set(pretrained_audio_status().query("available").name)
    left_out = ("resemblyzer-ge2e", "crepe-tiny")  # for cost (QUICK's documentation)
    kept = [name for name in PUBLISHED if name in available and name not in left_out]
    assert [spec.name for spec in tuned.zoo()] == kept + ZOO
    assert f"Pool of {len(coswara.QUICK['top_pretrained']) + 5} models" in tuned.description
    # the same target and models: embeddings, heads and scores come from the head-only run's cache
    assert tuned.key_parts == head_only.key_parts
    # registered for the command line as the chapter runs it; the paper profile fine-tunes already
    from nclib.experiments.runner import get_experiment

    assert get_experiment("coswara-tuned", "quick").settings() == tuned.settings()
    assert get_experiment("coswara-tuned", "paper").settings() == coswara_experiment("paper").settings()
    with pytest.raises(ValueError, match="chooses the fine-tuning regime"):
        coswara.coswara_tuned_experiment("quick", fine_tune=None)

def test_quick_target_has_at_least_a_thousand_test_clips_at_default_settings():
    from nclib.data.base import stratified_split

    quick = coswara.QUICK
    labels = np.repeat([1, 0], [quick["num_positive"], quick["num_negative"]])
    sizes = [len(part) for part in stratified_split(labels, quick["split"], quick["split_seed"])]
    assert sizes == list(coswara._split_sizes(quick["num_positive"], quick["num_negative"], quick["split"]))
    assert sizes[0] >= 1000 and sizes[1] >= 500 and sizes[2] >= 1000
    assert quick["num_positive"] / quick["num_negative"] == pytest.approx(960 / 428, rel=0.01)
    assert str(sizes[2]) in coswara.quick_description(quick).replace(",", "")


def test_quick_overrides_enter_the_settings_and_the_cache_key():
    base = coswara_experiment()
    changed = coswara_experiment(seeds=(4,), head_epochs=2, full_epochs=1, pretrain_epochs={"scenes": 3},
                                 source_per_class=5, scores=SCORES)
    assert (changed.seeds, changed.head_epochs, changed.full_epochs, changed.scores) == ((4,), 2, 1, SCORES)
    expected_epochs = {**coswara.QUICK["pretrain_epochs"], "scenes": 3}
    assert changed.key_parts["pretrain_epochs"] == expected_epochs
    assert changed.key_parts["source_per_class"] == {"scenes": 5, "music": 5, "speech": 5}
    assert changed.key_parts != base.key_parts


def test_quick_profile_runs_end_to_end_on_a_tiny_version(monkeypatch, tmp_path):
    monkeypatch.setitem(coswara.QUICK, "num_positive", 14)
    monkeypatch.setitem(coswara.QUICK, "num_negative", 7)
    monkeypatch.setitem(coswara.QUICK, "duration", 0.6)
    config = coswara_experiment(root=tmp_path, scores=SCORES, source_per_class=4, pretrain_epochs=1)
    results = run_experiment(config, out=tmp_path / "out", cache=Cache(tmp_path / "cache"))
    names = [spec.name for spec in config.zoo()]
    assert set(PUBLISHED) & set(names), "no network with published weights is installed"
    assert sorted(results.transfer.model) == sorted(names)  # one convex head per model
    assert set(results.transfer.regime) == {"head"} and results.transfer.value.between(0, 1).all()
    assert results.convergence.converged.all()
    assert len(results.scores) == 3 * len(names) and np.isfinite(results.scores.value).all()
    assert results.predictions[names[0], "head", 0].shape == (len(results.test_labels), 2)
    models = results.models.set_index("name")
    assert models.loc["dcase-scenes", "embedding_dim"] == 512
    table = coswara.zoo_table(config.zoo())
    assert table.set_index("model").loc["dcase-scenes", "weights"] == "pre-trained here"
    if "resemblyzer-ge2e" in names:  # no source classifier: LEEP must skip it
        assert not table.set_index("model").loc["resemblyzer-ge2e", "has_source_head"]
    # a second run reads everything back from the cache and gives the same tables
    again = run_experiment(config, cache=Cache(tmp_path / "cache"))
    pd.testing.assert_frame_equal(again.transfer, results.transfer)


@pytest.mark.parametrize("arguments, message", [
    ({"profile": "huge"}, "unknown profile"),
    ({"pretrain_epochs": {"images": 2}}, "unknown source tasks"),
    ({"scores": ("no-such-score",)}, "unknown or no scores"),
])
def test_bad_arguments_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        coswara_experiment(**arguments)


def test_quick_target_reads_the_synthetic_files_under_the_bad_audio_policy(tmp_path):
    with captured_log() as lines:
        splits, report = quick_target(14, 7, duration=0.6, root=tmp_path, cache=Cache(tmp_path / "cache"))
    # 21 clips: 3 stereo, 3 at 22.05 kHz, 3 at 44.1 kHz, 12 untouched; then 4 unusable files.
    counts = {(row.reason, row.status): row.count for row in report.counts().itertuples()}
    assert counts == {("ok", "ok"): 12, ("stereo mixed to mono", "fixed"): 3, ("resampled", "fixed"): 6,
                      ("empty file", "skipped"): 1, ("silent", "skipped"): 1, ("too short", "skipped"): 1,
                      ("unreadable", "skipped"): 1}
    assert sum(line.startswith("warning: skipped") for line in lines) == 4
    assert sum(line.startswith("info: fixed") for line in lines) == 9
    # 14 positive: 6/2/6; 7 negative: 3/1/3 (40/20/40)
    assert splits.sizes() == {"train": 9, "val": 3, "test": 9}
    assert int(splits.train.labels.sum()) == 6
    # waveforms of 0.6 s at 16 kHz, in [-1, 1]
    assert splits.train.inputs.shape[1:] == (9600,)
    assert np.abs(splits.train.inputs).max() <= 1.0


def test_synthetic_files_are_written_once_in_the_promised_formats(tmp_path):
    paths, labels, manifest = synthetic_cough_files(6, 3, duration=0.6, root=tmp_path)
    assert [soundfile.info(p).channels for p in paths[:3]] == [2, 2, 2]
    assert [soundfile.info(p).samplerate for p in paths[3:9]] == [22_050] * 3 + [44_100] * 3
    assert paths[9].stat().st_size == 0 and paths[9].name == "empty.wav"
    assert soundfile.info(paths[12]).duration == pytest.approx(0.05)
    assert sorted(labels[:9].tolist()) == [0, 0, 0, 1, 1, 1, 1, 1, 1]
    stamp = paths[0].stat().st_mtime_ns
    again, _, _ = synthetic_cough_files(6, 3, duration=0.6, root=tmp_path)
    assert again == paths and again[0].stat().st_mtime_ns == stamp  # reused, not rewritten
    assert len(list((tmp_path / "synthetic-coswara").iterdir())) == 1  # no staging folder left


def test_quick_source_is_standardised_and_split(tmp_path):
    train, val = quick_source("music", 4, duration=0.5)
    # 4 clips per class, 85/15: floor(0.85 * 4 + 0.5) = 3 train, 1 val per class
    assert (len(train), len(val)) == (30, 10)
    assert train.inputs.shape[1:] == (1, 24, 64)  # 0.5 s, 40 ms windows: 1 + (24000 - 1920) // 960
    assert np.bincount(val.labels).tolist() == [1] * 10
    assert standardise_log_mel([-40.0]).tolist() == [0.0]
