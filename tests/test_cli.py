"""Tests of the command line (nclib.cli), called in-process through main()."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nclib import cli
from nclib.experiments import runner
from nclib.scores import REGISTRY, ScoreInfo


pytestmark = pytest.mark.usefixtures("quiet_single_thread", "isolated_data")


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
    assert pd.read_csv(out / "evaluation.csv").columns.tolist() == ["score", "regime", "measure", "value",
                                                                    "low", "high", "p_value"]
    written = sorted(path.name for path in (out / "embeddings").iterdir())
    assert written == sorted(f"{model}.npz" for model in pd.read_csv(out / "models.csv").name)
    printed = capsys.readouterr().out
    assert "wrote" in printed and "embeddings/" in printed
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
    monkeypatch.delitem(cli.PRETRAINED_ZOOS, "image")
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


# ----------------------------------------------------------------------------- inputs and outputs checked first
def one_clean_line(err):
    """The error is one line, and no traceback reached the user."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def npy_with_header(path, shape, descr="<f8", payload=b"\0" * 64):
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": descr, "fortran_order": False, "shape": shape})
        handle.write(payload)
    return str(path)


@pytest.fixture
def refuse_loading(monkeypatch):
    """np.load must not be reached for files whose header already shows they are bad."""
    real_load = np.load

    def load(path, *args, **kwargs):
        if Path(path).name == "bad.npy":
            pytest.fail("np.load reached a bad file")
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(cli.np, "load", load)


@pytest.mark.parametrize("make, message", [
    (lambda p: (p.write_bytes(b""), str(p))[1], "empty (0 bytes)"),
    (lambda p: npy_with_header(p, (10**12, 2048)), "header lies"),  # 16 PB claimed by a 200-byte file
    (lambda p: npy_with_header(p, (10, 3), payload=b"\0" * 200), "needs 240 bytes"),  # truncated
    (lambda p: npy_with_header(p, (10, 3), descr="|O"), "Python objects"),
    (lambda p: (p.write_bytes(b"\x93NUMPY\x01\x00\xff\xffgarbage"), str(p))[1], "not a valid .npy"),
    (lambda p: (p.write_bytes(b"just some text, not numpy"), str(p))[1], "not a valid .npy"),
])
def test_score_checks_the_npy_header_before_loading(tmp_path, arrays, make, message, capsys, refuse_loading):
    bad = make(tmp_path / "bad.npy")
    for argv in (["--features", bad, "--labels", arrays["labels"]], ["--features", arrays["features"], "--labels", bad]):
        assert cli.main(["score", *argv]) == 2
        assert message in one_clean_line(capsys.readouterr().err)


def test_score_loads_a_good_array_without_pickles(tmp_path, arrays, monkeypatch, capsys):
    seen = []
    real_load = np.load
    monkeypatch.setattr(cli.np, "load", lambda *a, **k: (seen.append(k), real_load(*a, **k))[1])
    assert cli.main(["score", "--features", arrays["features"], "--labels", arrays["labels"], "--score", "nc"]) == 0
    assert seen and all(k.get("allow_pickle") is False for k in seen)


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the run starts: outputs must be checked before any work."""
    monkeypatch.setattr(runner, "run_experiment", lambda *a, **k: pytest.fail("the run started"))


def test_run_refuses_an_out_that_is_a_file(tmp_path, capsys, no_work):
    out = tmp_path / "taken"
    out.write_text("precious")
    assert cli.main(["run", "toy", "--out", str(out)]) == 2
    assert "is not a folder" in one_clean_line(capsys.readouterr().err)
    assert out.read_text() == "precious"


def test_run_refuses_an_out_below_a_file(tmp_path, capsys, no_work):
    (tmp_path / "file").write_text("x")
    assert cli.main(["run", "toy", "--out", str(tmp_path / "file" / "a" / "b")]) == 2
    assert "is a file, not a folder" in one_clean_line(capsys.readouterr().err)


def test_run_refuses_an_unwritable_out(tmp_path, capsys, no_work, monkeypatch):
    out = tmp_path / "locked"
    out.mkdir()
    real_mkstemp = cli.tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):  # what a read-only folder answers (even to root)
        if Path(dir) == out:
            raise PermissionError(13, "Permission denied", str(out))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(cli.tempfile, "mkstemp", read_only)
    assert cli.main(["run", "toy", "--out", str(out / "new")]) == 2
    assert "not writable" in one_clean_line(capsys.readouterr().err)
    assert not (out / "new").exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders")
def test_run_refuses_a_read_only_out(tmp_path, capsys, no_work):
    out = tmp_path / "read-only"
    out.mkdir()
    out.chmod(0o555)
    try:
        assert cli.main(["run", "toy", "--out", str(out)]) == 2
        assert "not writable" in one_clean_line(capsys.readouterr().err)
    finally:
        out.chmod(0o755)


def test_run_refuses_an_unwritable_data_folder(tmp_path, monkeypatch, capsys, no_work):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("NCLIB_DATA", str(tmp_path / "file" / "data"))
    assert cli.main(["run", "toy", "--out", str(tmp_path / "out")]) == 2
    assert "data folder" in one_clean_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()  # nothing created before the checks passed


def _failing_experiment(monkeypatch, error):
    def fail():
        raise error

    def experiment(profile):
        import dataclasses

        from nclib.experiments.toy import toy_experiment

        return dataclasses.replace(toy_experiment(profile), load_target=fail)

    monkeypatch.setitem(runner.EXPERIMENTS, "failing", experiment)


@pytest.mark.parametrize("error, message", [
    (__import__("tarfile").ReadError("file could not be opened successfully"), "could not be opened"),
    (OSError(28, "No space left on device"), "No space left"),
    (PermissionError(13, "Permission denied", "/data/x.tar"), "/data/x.tar"),
    (__import__("zipfile").BadZipFile("File is not a zip file"), "not a zip file"),
    (__import__("nclib.data.fetch", fromlist=["x"]).ChecksumError("x.tar: sha256 is 1,\nexpected 2"), "expected 2"),
])
def test_runtime_failures_are_one_line_with_status_1(monkeypatch, tmp_path, capsys, error, message):
    _failing_experiment(monkeypatch, error)
    assert cli.main(["run", "failing", "--out", str(tmp_path / "out")]) == 1
    assert message in one_clean_line(capsys.readouterr().err)


# ----------------------------------------------------------------------------- cache info / clear
def test_cache_info_and_clear(tmp_path, capsys):
    import time

    from nclib.cache import Cache

    folder = tmp_path / "data" / "cache"  # $NCLIB_DATA/cache
    cache = Cache(folder)
    cache.arrays("features", {"m": 1}, lambda: {"x": np.zeros(1000)})
    cache.arrays("features", {"m": 2}, lambda: {"x": np.zeros(10)})
    cache.table("runs", {}, lambda: pd.DataFrame({"a": [1]}))
    orphan = folder / "features" / ".dead.npz.abc.part"
    orphan.write_bytes(b"half")
    old = time.time() - 3 * 86_400
    os.utime(orphan, (old, old))
    os.utime(cache.path("features", {"m": 1}, ".npz"), (old, old))
    assert cli.main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.split()[0] in ("features", "runs")}
    assert rows == {"features": "2", "runs": "1"}
    assert "total: 3 entries" in out and "orphaned temporary files: 1" in out
    assert orphan.exists()  # info reports, it does not delete
    assert cli.main(["cache", "clear", "--older-than", "2"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out and not orphan.exists()
    assert cli.main(["cache", "clear", "--folder", str(folder)]) == 0
    assert "removed 2 entries" in capsys.readouterr().out
    assert cli.main(["cache", "info"]) == 0
    assert "no entries" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["cache"], ["cache", "clear", "--older-than", "-1"],
                                  ["cache", "clear", "--older-than", "soon"], ["cache", "compact"]])
def test_cache_bad_arguments(argv, capsys):
    assert cli.main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_cache_info_on_a_missing_folder(tmp_path, capsys):
    assert cli.main(["cache", "info", "--folder", str(tmp_path / "none")]) == 0
    assert "no entries" in capsys.readouterr().out
    assert not (tmp_path / "none").exists()
