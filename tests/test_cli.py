"""Tests of the command line (nclib.cli), called in-process through main()."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from nclib import cli
from nclib.experiments import runner
from nclib.scores import REGISTRY, ScoreInfo


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("NCLIB_PROGRESS", "0")
    monkeypatch.setenv("NCLIB_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("NCLIB_PROFILE", raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def save(path, array):
    np.save(path, array)
    return str(path)


# ----------------------------------------------------------------------------- run
def test_run_writes_the_three_tables(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["run", "toy", "--profile", "quick", "--out", str(out), "--seeds", "1"]) == 0
    assert pd.read_csv(out / "scores.csv").columns.tolist() == ["model", "score", "value"]
    transfer = pd.read_csv(out / "transfer.csv")
    assert transfer.columns.tolist() == ["model", "regime", "seed", "metric", "value"]
    assert set(transfer.regime) == {"head", "full"} and set(transfer.seed) == {0}
    assert pd.read_csv(out / "evaluation.csv").columns.tolist() == ["score", "regime", "measure", "value"]
    assert "wrote" in capsys.readouterr().out
    assert (tmp_path / "data" / "cache").is_dir()  # the cache lives under NCLIB_DATA


def test_run_defaults_to_results_name_profile(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "toy", "--seeds", "1", "--no-cache"]) == 0
    assert (tmp_path / "results" / "toy-quick" / "transfer.csv").is_file()
    assert not (tmp_path / "data" / "cache").exists()  # --no-cache stores nothing


@pytest.mark.parametrize("argv", [
    ["run", "no-such-experiment"],
    ["run", "toy", "--seeds", "0"],
    ["run", "toy", "--profile", "huge"],
    ["run"],
    [],
    ["frobnicate"],
    ["models", "--domain", "video"],
])
def test_bad_arguments_exit_with_status_2(argv, capsys):
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.strip()


def test_an_unavailable_experiment_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(runner.EXPERIMENTS, "broken", "nclib.no_such_module:config")
    assert cli.main(["run", "broken"]) == 2
    assert "broken" in capsys.readouterr().err


def test_a_run_whose_data_is_missing_exits_with_status_1(monkeypatch, capsys):
    def missing_data():
        raise FileNotFoundError("cifar-10-python.tar.gz is not in data/cache; place it there by hand")

    def experiment(profile):
        import dataclasses

        from nclib.experiments.toy import toy_experiment

        return dataclasses.replace(toy_experiment(profile), load_target=missing_data)

    monkeypatch.setitem(runner.EXPERIMENTS, "absent", experiment)
    assert cli.main(["run", "absent"]) == 1
    assert "place it there by hand" in capsys.readouterr().err


def test_help_exits_cleanly(capsys):
    assert cli.main(["--help"]) == 0
    assert "run" in capsys.readouterr().out


# ----------------------------------------------------------------------------- models
def test_models_prints_the_zoo(monkeypatch, capsys):
    monkeypatch.setitem(cli.ZOOS, "image", "nclib.experiments.toy:toy_zoo")
    assert cli.main(["models", "--domain", "image"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "family", "source_task", "parameters", "embedding_dim"]
    wide = next(line for line in lines if line.split()[0] == "mlp-wide").split()
    # Linear(8, 32) + Linear(32, 16) + Linear(16, 6): 288 + 528 + 102 parameters
    assert wide == ["mlp-wide", "mlp", "gauss-a", "918", "16"]
    assert len(lines) == 5


def test_models_with_a_missing_zoo_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(cli.ZOOS, "audio", "nclib.models.no_such_zoo:audio_zoo")
    assert cli.main(["models", "--domain", "audio"]) == 2
    assert "audio zoo is not available" in capsys.readouterr().err


# ----------------------------------------------------------------------------- score, scores
def test_score_prints_the_hand_computed_nc(tmp_path, capsys):
    # classes {0, 2} and {10, 12}: spreads 1 + 1 over the distance 10 between the means
    features = save(tmp_path / "features.npy", np.array([[0.0], [2.0], [10.0], [12.0]]))
    labels = save(tmp_path / "labels.npy", np.array([0, 0, 1, 1]))
    assert cli.main(["score", "--features", features, "--labels", labels, "--score", "nc"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["model", "score", "value", "greater_is_better"]
    model, score, value, direction = lines[1].split()
    assert (model, score, float(value), direction) == ("features", "nc", pytest.approx(0.2), "False")


def test_score_defaults_to_every_applicable_score(tmp_path, capsys):
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 10)
    features = save(tmp_path / "f.npy", rng.normal(size=(20, 3)) + labels[:, None])
    probs = rng.dirichlet(np.ones(4), size=20)
    probs_path = save(tmp_path / "p.npy", probs)
    labels_path = save(tmp_path / "l.npy", labels)
    assert cli.main(["score", "--features", features, "--labels", labels_path]) == 0
    printed = capsys.readouterr().out
    expected = {n for n, info in REGISTRY.items() if info.needs == "features"}
    assert {line.split()[1] for line in printed.splitlines()[1:]} == expected
    assert cli.main(["score", "--features", features, "--labels", labels_path, "--source-probs", probs_path]) == 0
    assert "leep" in capsys.readouterr().out


@pytest.fixture
def arrays(tmp_path):
    labels = np.repeat([0, 1], 5)
    return dict(features=save(tmp_path / "f.npy", np.arange(20.0).reshape(10, 2)),
                labels=save(tmp_path / "l.npy", labels),
                short=save(tmp_path / "short.npy", labels[:4]),
                objects=save(tmp_path / "o.npy", np.array([{"a": 1}] * 10, dtype=object)),
                folder=tmp_path)


@pytest.mark.parametrize("argv, message", [
    (["--features", "{folder}/missing.npy", "--labels", "{labels}"], "does not exist"),
    (["--features", "{objects}", "--labels", "{labels}"], "cannot read"),
    (["--features", "{features}", "--labels", "{short}", "--score", "nc"], "labels"),
    (["--features", "{features}", "--labels", "{labels}", "--score", "nope"], "unknown score"),
    (["--features", "{features}", "--labels", "{labels}", "--source-probs", "{features}", "{features}"], "one --source-probs"),
])
def test_score_refuses_bad_input(arrays, argv, message, capsys):
    argv = [part.format(**arrays) for part in argv]
    assert cli.main(["score", *argv]) == 2
    assert message in capsys.readouterr().err


def test_score_refuses_npz_archives(tmp_path, arrays, capsys):
    np.savez(tmp_path / "f.npz", x=np.zeros((10, 2)))
    assert cli.main(["score", "--features", str(tmp_path / "f.npz"), "--labels", arrays["labels"]]) == 2
    assert ".npz" in capsys.readouterr().err


def test_pool_level_scores_need_several_feature_files(monkeypatch, arrays, tmp_path, capsys):
    def spread_rank(features_list, labels):
        """Toy pool-level score: each model's total variance over the pool's largest."""
        spreads = np.array([np.var(f) for f in features_list])
        return spreads / spreads.max()

    info = ScoreInfo("spread-rank", spread_rank, "features_pool", True, "none", "test only")
    monkeypatch.setitem(REGISTRY, "spread-rank", info)
    base = ["score", "--labels", arrays["labels"], "--score", "spread-rank"]
    assert cli.main([*base, "--features", arrays["features"]]) == 2
    assert "pool" in capsys.readouterr().err
    other = save(tmp_path / "g.npy", 2 * np.load(arrays["features"]))  # variance x4
    assert cli.main([*base, "--features", arrays["features"], other]) == 0
    values = [float(line.split()[2]) for line in capsys.readouterr().out.splitlines()[1:]]
    assert values == [0.25, 1.0]


def test_scores_lists_the_registry(capsys):
    assert cli.main(["scores"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["name", "needs", "greater_is_better", "citation"]
    rows = {line.split()[0]: line.split()[1:4] for line in lines[1:]}
    assert rows["nc"] == ["features", "False", "suresh2023pitfalls"]
    assert rows["leep"][:2] == ["source_probs", "True"]
    assert len(rows) == len(REGISTRY)


def test_python_dash_m_nclib_runs_the_cli():
    done = subprocess.run([sys.executable, "-m", "nclib", "scores"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "logme" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "nclib", "run", "nope"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown experiment" in bad.stderr
