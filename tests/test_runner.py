"""Tests of nclib.experiments.runner on the toy experiment."""

import ast
import dataclasses
from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from nclib.cache import Cache
from nclib.evaluate import MEASURES
from nclib.experiments import runner
from nclib.experiments.runner import (
    COLUMNS,
    ExperimentConfig,
    get_experiment,
    run_experiment,
)
from nclib.experiments.toy import toy_experiment, toy_source, toy_splits, toy_zoo
from nclib.models.pretraining import pretrained_model

SCORES = ("nc", "leep", "logme")


pytestmark = pytest.mark.usefixtures("quiet_single_thread")


def small_config(**changes):
    """The quick toy experiment with one or two seeds and the three foundation scores."""
    prepared = []
    base = toy_experiment("quick")

    def prepare(spec, cache):
        prepared.append(spec.name)
        return base.prepare_model(spec, cache)

    settings = dict(seeds=(0, 1), scores=SCORES, prepare_model=prepare)
    settings.update(changes)
    return dataclasses.replace(base, **settings), prepared


def test_toy_run_writes_the_tables_with_the_exact_columns(tmp_path):
    config, _ = small_config()
    results = run_experiment(config, out=tmp_path / "out", cache=Cache(tmp_path / "cache"))
    headers = {name: pd.read_csv(tmp_path / "out" / f"{name}.csv").columns.tolist()
               for name in ("scores", "transfer", "evaluation", "history", "models", "convergence")}
    assert headers == {
        "scores": ["model", "score", "value"],
        "transfer": ["model", "regime", "seed", "metric", "value"],
        "evaluation": ["score", "regime", "measure", "value", "low", "high", "p_value"],
        "history": ["model", "regime", "seed", "epoch", "train_loss", "val_metric"],
        "models": ["name", "family", "source_task", "parameters", "embedding_dim"],
        "convergence": ["model", "regime", "seed", "best_epoch", "epochs_run", "stopped_early", "l2", "converged"],
    }
    assert (tmp_path / "out" / "run.json").is_file()
    # every correlation carries an interval and a p-value
    evaluation = results.evaluation
    assert evaluation[["low", "high", "p_value"]].notna().all().all()
    assert ((evaluation.low <= evaluation.high) & evaluation.p_value.between(0, 1)).all()
    # the embeddings of every model and split, for anyone to re-score or refit
    for model in results.models.name:
        with np.load(tmp_path / "out" / "embeddings" / f"{model}.npz", allow_pickle=False) as saved:
            assert sorted(saved.files) == sorted(f"{split}_{kind}" for split in ("train", "val", "test")
                                                  for kind in ("features", "labels"))
            assert saved["train_features"].shape == (len(saved["train_labels"]),
                                                     int(results.models.set_index("name").embedding_dim[model]))
            np.testing.assert_array_equal(saved["test_labels"], results.test_labels)
    assert not list((tmp_path / "out").glob("*.part"))
    for name, table in results.tables().items():
        assert table.columns.tolist() == COLUMNS[name]
    num_models, num_seeds = 4, 2
    assert len(results.scores) == num_models * len(SCORES)
    assert len(results.transfer) == num_models * 2 * num_seeds
    assert set(results.transfer.regime) == {"head", "full"} and set(results.transfer.metric) == {"accuracy"}
    assert results.transfer.value.between(0, 1).all()
    assert len(results.history) == num_models * num_seeds * (config.head_epochs + config.full_epochs)
    per_score_and_regime = len(MEASURES) + 1  # + best_in_top3
    assert len(results.evaluation) == len(SCORES) * 2 * per_score_and_regime
    # parameters counted by hand: Linear(8, 32) + Linear(32, 16) + Linear(16, 6) = 288 + 528 + 102
    assert results.models.set_index("name").loc["mlp-wide", "parameters"] == 918
    assert results.models.set_index("name").loc["mlp-narrow", "embedding_dim"] == 2


def test_a_warm_cache_recomputes_nothing_and_gives_identical_tables(tmp_path, counting_cache):
    config, prepared = small_config()
    cache = counting_cache(tmp_path)
    cold = run_experiment(config, cache=cache)
    assert cache.computed["features"] == 4 * 3 and cache.computed["head_transfer"] == 4 * 2
    assert cache.computed["full_transfer"] == 4 * 2 and cache.computed["scores"] == len(SCORES)
    assert cache.computed["pretrained"] == 3  # the random model is not pre-trained
    cold_prepared = len(prepared)
    cache.computed.clear()
    warm = run_experiment(config, cache=cache)
    assert sum(cache.computed.values()) == 0
    assert len(prepared) == cold_prepared  # no model built or loaded
    for name in COLUMNS:
        pd.testing.assert_frame_equal(cold.tables()[name], warm.tables()[name], check_exact=True)


def test_the_slowest_scores_go_to_the_workers_first_and_the_table_keeps_the_order(tmp_path):
    from nclib.experiments.executors import Executor

    class Recording(Executor):
        keys = []

        def _map(self, units, desc):
            self.keys += [unit.key for unit in units]
            return [unit.run() for unit in units]

    names = ("nc", "linear_probe", "logme", "pactran")
    config, _ = small_config(seeds=(0,), full_regime=False, scores=names)
    results = run_experiment(config, cache=Cache(tmp_path), executor=Recording())
    sent = [key.split()[2] for key in Recording.keys if key.split()[1] == "score"]
    assert sent == ["linear_probe", "pactran", "nc", "logme"]
    assert list(dict.fromkeys(results.scores.score)) == list(names)
    assert set(runner.SLOW_SCORES) <= set(runner.REGISTRY)


def test_a_changed_setting_recomputes_only_what_depends_on_it(tmp_path, counting_cache):
    config, _ = small_config(seeds=(0,))
    cache = counting_cache(tmp_path)
    run_experiment(config, cache=cache)
    cache.computed.clear()
    run_experiment(dataclasses.replace(config, head_epochs=config.head_epochs + 1), cache=cache)
    assert cache.computed == Counter({"head_transfer": 4, "head": 4})


def test_seeds_trained_together_equal_seeds_added_later(tmp_path):
    config, _ = small_config(full_regime=False)
    together = run_experiment(config, cache=Cache(enabled=False)).transfer
    cache = Cache(tmp_path)
    run_experiment(dataclasses.replace(config, seeds=(1,)), cache=cache)
    later = run_experiment(config, cache=cache).transfer
    np.testing.assert_allclose(later.value, together.value, rtol=1e-6)


def test_no_cache_runs_reproduce_each_other():
    config, _ = small_config(seeds=(0,))
    first = run_experiment(config, cache=Cache(enabled=False))
    second = run_experiment(config, cache=Cache(enabled=False))
    pd.testing.assert_frame_equal(first.transfer, second.transfer, check_exact=True)
    pd.testing.assert_frame_equal(first.scores.drop(columns="seconds"), second.scores.drop(columns="seconds"))


def test_head_regime_only_and_auroc_on_a_binary_target():
    config, _ = small_config(seeds=(0,), full_regime=False, metric="auroc",
                             load_target=partial(toy_splits, num_classes=2))
    results = run_experiment(config, cache=Cache(enabled=False))
    assert set(results.transfer.regime) == {"head"} and set(results.transfer.metric) == {"auroc"}
    assert results.transfer.value.between(0, 1).all()
    assert set(results.evaluation.regime) == {"head"}


def test_every_registered_score_runs_on_the_toy_pool():
    config, _ = small_config(seeds=(0,), full_regime=False, scores=None)
    results = run_experiment(config, cache=Cache(enabled=False))
    from nclib.scores import REGISTRY

    assert set(results.scores.score) == set(REGISTRY)
    assert np.isfinite(results.scores.value).all()


@pytest.mark.parametrize("change, message", [
    (dict(metric="f1"), "metric"),
    (dict(profile="huge"), "profile"),
    (dict(seeds=()), "seeds"),
    (dict(seeds=(0, 0)), "seeds"),
    (dict(seeds=(-1,)), "seeds"),
    (dict(head_epochs=0), "epochs"),
    (dict(scores=("no-such-score",)), "unknown"),
    (dict(key_parts={"f": print}), "JSON"),
    (dict(lr=0.0), "lr"),
    (dict(head_solver="sgd"), "head_solver"),
    (dict(patience=0), "patience"),
    (dict(l2_grid=(0.1, -1.0)), "l2_grid"),
    (dict(convergence_check="maybe"), "convergence_check"),
])
def test_config_refuses_bad_settings(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(toy_experiment("quick"), **change)


def test_run_refuses_a_bad_zoo_or_target():
    with pytest.raises(ValueError, match="at least two"):
        run_experiment(small_config(zoo=lambda: toy_zoo()[:1])[0], cache=Cache(enabled=False))
    with pytest.raises(ValueError, match="unique"):
        run_experiment(small_config(zoo=lambda: toy_zoo()[:1] * 2)[0], cache=Cache(enabled=False))
    with pytest.raises(ValueError, match="binary"):
        run_experiment(small_config(metric="auroc")[0], cache=Cache(enabled=False))


def test_registry_resolves_lazily(monkeypatch):
    assert get_experiment("toy", "paper").seeds == tuple(range(10))
    monkeypatch.setenv("NCLIB_PROFILE", "quick")
    assert get_experiment("toy").profile == "quick"
    with pytest.raises(ValueError, match="unknown experiment"):
        get_experiment("nope")
    with pytest.raises(ValueError, match="profile"):
        get_experiment("toy", "huge")
    monkeypatch.setitem(runner.EXPERIMENTS, "broken", "nclib.no_such_module:config")
    with pytest.raises(ImportError, match="broken"):
        get_experiment("broken", "quick")
    monkeypatch.setitem(runner.EXPERIMENTS, "direct", lambda profile: toy_experiment(profile))
    assert isinstance(get_experiment("direct", "quick"), ExperimentConfig)


def test_pretrained_model_caches_the_weights(tmp_path, counting_cache):
    cache = counting_cache(tmp_path)
    spec = toy_zoo()[0]
    settings = dict(epochs=2, lr=0.01, batch_size=32)
    first = pretrained_model(spec, cache, partial(toy_source, "gauss-a"), **settings)

    def no_data():
        raise AssertionError("the source data must not be loaded on a hit")

    second = pretrained_model(spec, cache, no_data, **settings)
    assert cache.computed["pretrained"] == 1
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
    assert not second.training
    pretrained_model(spec, cache, partial(toy_source, "gauss-a"), **{**settings, "epochs": 3})
    assert cache.computed["pretrained"] == 2


# ----------------------------------------------------------------------------- converged ground truth
def test_every_run_keeps_its_test_predictions_and_convergence_record(tmp_path):
    config, _ = small_config(seeds=(0, 1))
    results = run_experiment(config, out=tmp_path / "out", cache=Cache(tmp_path / "cache"))
    splits = toy_splits()
    np.testing.assert_array_equal(results.test_labels, splits.test.labels)
    assert set(results.predictions) == {tuple(row) for row in results.transfer[["model", "regime", "seed"]].values}
    from nclib.transfer import score_predictions

    for row in results.transfer.itertuples():
        probs = results.predictions[row.model, row.regime, row.seed]
        assert probs.shape == (len(splits.test.labels), 3) and probs.dtype == np.float32
        assert score_predictions("accuracy", results.test_labels, probs) == row.value
    convergence = results.convergence
    assert len(convergence) == len(results.transfer)
    assert (convergence.epochs_run == np.where(convergence.regime == "head", config.head_epochs,
                                               config.full_epochs)).all()
    assert not convergence.stopped_early.any() and convergence.l2.isna().all()
    # converged = not a late peak: the best epoch is not the last one (10 % of 10 or 3 epochs)
    np.testing.assert_array_equal(convergence.converged.to_numpy(bool),
                                  (convergence.best_epoch < convergence.epochs_run).to_numpy(bool))
    written = pd.read_csv(tmp_path / "out" / "convergence.csv")
    assert len(written) == len(convergence)


def test_convex_head_runs_once_per_model_and_is_cached(tmp_path, counting_cache):
    config, _ = small_config(seeds=(3, 4), head_solver="convex", l2_grid=(1e-1, 1e-3))
    cache = counting_cache(tmp_path)
    results = run_experiment(config, cache=cache)
    head = results.transfer.query("regime == 'head'")
    assert len(head) == 4 and set(head.seed) == {0}  # deterministic: one run, recorded as seed 0
    assert set(results.transfer.query("regime == 'full'").seed) == {3, 4}
    assert cache.computed["head_transfer"] == 4 and cache.computed["head"] == 4
    rows = results.convergence.query("regime == 'head'")
    assert rows.converged.all() and rows.l2.isin([1e-1, 1e-3]).all() and rows.best_epoch.isna().all()
    assert results.history.query("regime == 'head'").empty  # no epochs to plot
    cache.computed.clear()
    warm = run_experiment(config, cache=cache)
    assert sum(cache.computed.values()) == 0
    for name in COLUMNS:
        pd.testing.assert_frame_equal(results.tables()[name], warm.tables()[name], check_exact=True)
    # the grid enters the key; the Adam settings and the seeds do not
    run_experiment(dataclasses.replace(config, l2_grid=(1e-2,), full_regime=False), cache=cache)
    assert cache.computed["head_transfer"] == 4
    cache.computed.clear()
    run_experiment(dataclasses.replace(config, lr=0.02, head_epochs=3, seeds=(7,), full_regime=False), cache=cache)
    assert cache.computed["head_transfer"] == 0


def test_patience_enters_the_key_and_stops_runs_early(tmp_path, counting_cache):
    config, _ = small_config(seeds=(0,), head_epochs=200, full_epochs=200, patience=2)
    cache = counting_cache(tmp_path)
    results = run_experiment(config, cache=cache)
    convergence = results.convergence
    assert convergence.stopped_early.all() and (convergence.epochs_run < 200).all()
    assert (convergence.epochs_run == convergence.best_epoch + 2).all() and convergence.converged.all()
    history = results.history.groupby(["model", "regime"]).epoch.max()
    assert history.to_dict() == convergence.set_index(["model", "regime"]).epochs_run.to_dict()
    cache.computed.clear()
    run_experiment(dataclasses.replace(config, patience=3), cache=cache)
    assert cache.computed["head_transfer"] == 4 and cache.computed["full_transfer"] == 4


def test_convergence_check_raises_or_warns_on_late_peaks():
    from nclib.transfer import NotConvergedError

    # one epoch of everything: every run peaks in its last epoch
    config, _ = small_config(seeds=(0,), head_epochs=1, full_epochs=1)
    with pytest.raises(NotConvergedError, match="did not converge") as caught:
        run_experiment(dataclasses.replace(config, convergence_check="raise"), cache=Cache(enabled=False))
    assert len(caught.value.runs) == 8
    with pytest.warns(UserWarning, match="late peak"):
        run_experiment(dataclasses.replace(config, convergence_check="warn"), cache=Cache(enabled=False))
    recorded = run_experiment(config, cache=Cache(enabled=False))  # the default only records
    assert not recorded.convergence.converged.any()


def test_a_change_to_the_code_that_computed_an_entry_recomputes_exactly_that_entry(tmp_path, monkeypatch, counting_cache):
    import nclib.cache as cache_module
    from nclib.experiments import runner

    config, _ = small_config(seeds=(0,), full_regime=False)
    cache = counting_cache(tmp_path / "cache")
    run_experiment(config, cache=cache)
    first = dict(cache.computed)
    real = cache_module.code_hash

    def edited(*modules):  # as if nclib/scores had been edited since the first run
        return real(*modules) + ("-edited" if "nclib.scores" in modules else "")

    monkeypatch.setattr(cache_module, "code_hash", edited)
    cache.computed.clear()
    run_experiment(config, cache=cache)
    assert cache.computed["scores"] == first["scores"]  # every score recomputed
    assert set(cache.computed) == {"scores"}  # and nothing else: features, heads stay cached
    # every nclib module the scores import is in their key, so editing it recomputes them too
    imported = set()
    for path in (Path(runner.__file__).parents[1] / "scores").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nclib."):
                imported.add(node.module)
    assert {m for m in imported if not m.startswith("nclib.scores")} | {"nclib.scores"} == set(runner.CODE["scores"])


def test_the_cache_key_layout_is_defined_once_and_pinned():
    config = toy_experiment("quick")
    spec = config.zoo()[0]
    splits = config.load_target()
    from nclib.cache import fingerprint

    # the data identity: every split's inputs and labels, train, val, test
    expected = fingerprint(splits.train.inputs, splits.train.labels, splits.val.inputs, splits.val.labels,
                           splits.test.inputs, splits.test.labels)
    assert runner.data_fingerprint(splits) == expected
    assert runner.run_key_parts(config, splits) == runner.run_key_parts(config, expected) == {
        "experiment": "toy", "profile": "quick", "data": expected, "config": dict(config.key_parts)}
    # a changed layout would recompute every cached experiment: it is pinned here
    assert runner.model_key_parts(config, spec, expected) == {
        "experiment": "toy", "profile": "quick", "data": expected, "config": dict(config.key_parts),
        "model": spec.name, "family": spec.family, "source_task": spec.source_task}
    assert runner.feature_key_parts(config, spec, expected, "test") == {
        **runner.model_key_parts(config, spec, expected), "split": "test"}
    with pytest.raises(ValueError, match="split"):
        runner.feature_key_parts(config, spec, expected, "training")


def test_results_hold_every_models_embeddings_and_source_probs_by_split(tmp_path):
    from nclib.features import FEATURE_CODE

    config, _ = small_config(seeds=(0,), full_regime=False)
    cache = Cache(tmp_path / "cache")
    results = run_experiment(config, out=tmp_path / "out", cache=cache)
    splits = config.load_target()
    for spec in config.zoo():
        for split in ("train", "val", "test"):
            held = results.embedding(spec.name, split)
            assert set(held) == {"features", "labels", "source_probs"}
            # read with the runner's key layout: a hit (a miss would call 1 / 0)
            stored = cache.arrays("features", runner.feature_key_parts(config, spec, splits, split),
                                  lambda: 1 / 0, code=FEATURE_CODE)
            np.testing.assert_array_equal(held["features"], stored["features"])
            np.testing.assert_array_equal(held["source_probs"], stored["source_probs"])
            np.testing.assert_array_equal(held["labels"], getattr(splits, split).labels)
            assert held["source_probs"].dtype == np.float32
            assert held["source_probs"].shape[0] == len(held["labels"])
            np.testing.assert_allclose(held["source_probs"].sum(axis=1), 1.0, rtol=1e-5)
    softmax = results.source_softmax("val")
    assert list(softmax) == list(results.features("val")) == [spec.name for spec in config.zoo()]
    # the written embeddings are unchanged: features and labels only
    with np.load(tmp_path / "out" / "embeddings" / "mlp-wide.npz", allow_pickle=False) as saved:
        assert sorted(saved.files) == sorted(f"{s}_{k}" for s in ("train", "val", "test") for k in ("features", "labels"))
    bare = dataclasses.replace(results, source_probs={})
    assert "source_probs" not in bare.embedding("mlp-wide")
    with pytest.raises(KeyError, match="source probabilities"):
        bare.source_softmax()
