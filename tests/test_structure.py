"""The shared internals (stratified sampling, the scores' linear algebra, pre-training) and the
experiments API built on the runner: ExperimentConfig.summary, Results' embeddings, load_all."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from nclib import _sampling, experiments
from nclib.cache import Cache
from nclib.experiments import COLUMNS, Results, combine, load_all, run_experiment
from nclib.experiments.toy import toy_experiment, toy_zoo
from nclib.scores import _linalg

pytestmark = pytest.mark.usefixtures("quiet_single_thread")


# ----------------------------------------------------------------------------- sampling
def test_every_sampler_repeats_for_a_seed_and_keeps_the_classes():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    for sampler in (lambda s: _sampling.stratified_split(labels, (0.5, 0.5), s),
                    lambda s: _sampling.holdout_split(labels, 0.3, s),
                    lambda s: [_sampling.stratified_subsample(labels, 40, s)],
                    lambda s: [_sampling.limit_per_class(labels, 25, 3, s)],
                    lambda s: _sampling.per_class_parts(labels, (5, 5), 3, s)):
        first, again, other = sampler(1), sampler(1), sampler(2)
        assert all(np.array_equal(a, b) for a, b in zip(first, again))
        assert not all(np.array_equal(a, b) for a, b in zip(first, other))
        assert all(set(labels[part]) == {0, 1, 2} for part in first)
    assert np.bincount(labels[_sampling.limit_per_class(labels, 25, 3, 0)]).tolist() == [25, 25, 20]
    assert [np.bincount(labels[p]).tolist() for p in _sampling.per_class_parts(labels, (5, 2), 3, 0)] == [[5] * 3,
                                                                                                         [2] * 3]


def test_per_class_parts_refuses_a_short_class():
    with pytest.raises(ValueError, match="class 1 has 2 rows"):
        _sampling.per_class_parts([0, 0, 0, 1, 1], (2, 1), 2, 0)


def test_the_public_samplers_are_the_shared_ones():
    from nclib.data.base import stratified_split
    from nclib.scores.ideal import holdout_split
    from nclib.scores.knn import stratified_subsample

    assert stratified_split is _sampling.stratified_split and holdout_split is _sampling.holdout_split
    assert stratified_subsample is _sampling.stratified_subsample


# ----------------------------------------------------------------------------- linear algebra
def test_psd_eigh_drops_the_numerically_zero_directions():
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    matrix = basis @ np.diag([0.0, 1e-18, 1.0, 2.0, 3.0]) @ basis.T
    values, vectors = _linalg.psd_eigh(matrix, 5 * np.finfo(float).eps)
    np.testing.assert_allclose(values, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(vectors @ np.diag(values) @ vectors.T, matrix, atol=1e-12)
    vectors_ = rng.normal(size=(2, 5))
    np.testing.assert_allclose(_linalg.pinv_quadratic(matrix, vectors_, 1e-12),
                               np.einsum("cd,de,ce->c", vectors_, np.linalg.pinv(matrix, rcond=1e-12), vectors_))
    np.testing.assert_allclose(_linalg.solve_psd(matrix + np.eye(5), vectors_.T),
                               np.linalg.solve(matrix + np.eye(5), vectors_.T))


def test_class_means_is_one_function_for_every_score():
    from nclib.scores import hscore, nc, sfda

    assert nc.class_means is hscore.class_means is sfda.class_means is _linalg.class_means
    features, codes = np.arange(12.0).reshape(6, 2), np.array([0, 1, 0, 1, 2, 2])
    np.testing.assert_array_equal(_linalg.class_means(features, codes, np.bincount(codes)),
                                  [[2.0, 3.0], [4.0, 5.0], [9.0, 10.0]])


# ----------------------------------------------------------------------------- pre-training
def test_build_model_repeats_its_weights_and_leaves_the_random_state_alone():
    import torch

    from nclib.models.pretraining import build_model

    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    a, b, c = (build_model(toy_zoo()[0], seed=s).state_dict() for s in (5, 5, 6))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert not all(torch.equal(a[name], c[name]) for name in a)


def test_the_experiment_configs_import_no_runner_internals():
    import ast
    from pathlib import Path

    folder = Path(experiments.__file__).parent
    for name in ("toy", "cifar10", "coswara"):
        tree = ast.parse((folder / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "nclib.experiments.runner":
                assert {alias.name for alias in node.names} <= {"ExperimentConfig"}, name


# ----------------------------------------------------------------------------- the experiments API
def test_summary_names_profile_target_zoo_regimes_seeds_and_solver():
    config = toy_experiment("quick")
    text = config.summary()
    assert text.startswith("toy experiment, quick profile")
    for expected in ("target: a 3-class Gaussian target", "zoo: 4 models: mlp-wide", "regimes: head: Adam",
                     f"{config.head_epochs} epochs", "full (every weight)", "seeds: 0, 1 (2)", config.description):
        assert expected in text
    convex = dataclasses.replace(config, head_solver="convex", full_regime=False, patience=4, seeds=(7,))
    assert "logistic regression solved to convergence" in convex.summary(models=["x"])
    assert "full (" not in convex.summary(models=["x"]) and "zoo: 1 models: x" in convex.summary(models=["x"])
    broken = dataclasses.replace(config, zoo=lambda: 1 / 0)
    assert "zoo: not listed" in broken.summary()


def _tiny(name="toy", **changes):
    config = toy_experiment("quick")
    return dataclasses.replace(config, name=name, zoo=lambda: toy_zoo()[2:], seeds=(0,), scores=("nc", "leep"),
                               head_epochs=2, full_regime=False, **changes)


def test_results_expose_embeddings_by_model_and_split_and_run_json_holds_the_summary(tmp_path):
    results = run_experiment(_tiny(), out=tmp_path, cache=Cache(enabled=False))
    models = list(results.models["name"])
    train = results.embedding(models[0], "train")
    assert train["features"].dtype == np.float32 and len(train["features"]) == len(train["labels"]) == 90
    assert list(results.features("test")) == models and len(results.labels("val")) == 45
    with pytest.raises(KeyError, match="no embeddings of model"):
        results.embedding("nope")
    with pytest.raises(KeyError, match="split"):
        results.embedding(models[0], "holdout")
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["summary"] == results.config.summary(models=models)


def test_load_all_concatenates_the_tables_with_an_experiment_column(monkeypatch, tmp_path):
    monkeypatch.setitem(experiments.runner.EXPERIMENTS, "tiny-a", lambda profile: _tiny("tiny-a"))
    monkeypatch.setitem(experiments.runner.EXPERIMENTS, "tiny-b", lambda profile: _tiny("tiny-b", lr=0.02))
    tables = load_all(["tiny-a", "tiny-b"], "quick", cache=Cache(tmp_path))
    assert sorted(tables) == ["evaluation", "scores", "transfer"]
    for name, table in tables.items():
        assert list(table.columns) == ["experiment"] + COLUMNS[name]
        assert list(dict.fromkeys(table["experiment"])) == ["tiny-a", "tiny-b"]
    assert len(tables["scores"]) == 2 * 2 * 2  # experiments x models x scores
    with pytest.raises(ValueError, match="distinct"):
        load_all(["tiny-a", "tiny-a"], "quick")
    empty = Results(_tiny(), *[pd.DataFrame(columns=COLUMNS[t]) for t in ("scores", "transfer", "evaluation",
                                                                          "history", "models")])
    with pytest.raises(ValueError, match="unknown tables"):
        combine({"x": empty}, tables=["nope"])
