"""Analyses of nclib.analysis: uncertainty, agreement, generalisation, size and cost."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from nclib import nc_score
from nclib.analysis import (SPLITS, _selection_measures, bootstrap_measures, clustering_quality, evaluate_by,
                            experiment_embeddings, input_intensity, loglog_slope, oriented_scores, pareto_front,
                            ridge_transfer, score_agreement, score_picks, seed_evaluation, split_scores,
                            stability_plot, subsample_scores, sweep_picks, synthetic_problem, time_scores,
                            training_size_sweep, transfer_seconds, winners)
from nclib.cache import Cache
from nclib.data.base import stratified_split
from nclib.evaluate import ranking_measures
from nclib.experiments.runner import run_experiment
from nclib.experiments.toy import toy_experiment, toy_zoo
from nclib.transfer import head_transfer_seeds


def scores_table(values: dict) -> pd.DataFrame:
    """{score: {model: value}} -> tidy table."""
    return pd.DataFrame([(m, s, v) for s, per_model in values.items() for m, v in per_model.items()],
                        columns=["model", "score", "value"])


# --------------------------------------------------------------------------- access
def test_embeddings_are_the_runners(tmp_path):
    cache = Cache(tmp_path)
    config = dataclasses.replace(toy_experiment("quick"), zoo=lambda: toy_zoo()[2:], seeds=(0,),
                                 scores=("nc",), full_regime=False)
    results = run_experiment(config, cache=cache)
    files = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    embeddings = experiment_embeddings(config, cache=cache)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == files  # all hits, nothing new
    splits = config.load_target()
    assert list(embeddings) == ["mlp-deep", "mlp-random"]
    for model, parts in embeddings.items():
        assert set(parts) == set(SPLITS)
        for split in SPLITS:
            assert np.array_equal(parts[split]["labels"], getattr(splits, split).labels)
        stored = results.scores.query("model == @model")["value"].item()
        assert nc_score(parts["train"]["features"], parts["train"]["labels"]) == stored


# --------------------------------------------------------------------------- uncertainty
def test_selection_measures_agree_with_ranking_measures():
    rng = np.random.default_rng(0)
    for _ in range(5):
        values, performance = rng.normal(size=7), rng.uniform(0.5, 1.0, size=7)
        fast = _selection_measures(values, performance)
        full = ranking_measures(values, performance, greater_is_better=True)
        for measure, value in fast.items():
            assert value == pytest.approx(full[measure])


def test_bootstrap_of_two_models():
    # a resample holds either both models (every measure as in the full pool) or one model
    # twice (correlations undefined, relative top-1 = 1): the interval of relative top-1 is
    # [0.5, 1], the correlations are -1 whenever defined
    scores = scores_table({"logme": {"a": 2.0, "b": 1.0}})
    table = bootstrap_measures(scores, {"a": 0.4, "b": 0.8}, num_resamples=400, random_state=1).set_index("measure")
    assert table.loc["relative_top1", ["value", "low", "high"]].tolist() == [0.5, 0.5, 1.0]
    assert table.loc["pearson", ["value", "low", "high"]].tolist() == pytest.approx([-1.0, -1.0, -1.0])
    assert 150 < table.loc["pearson", "resamples"] < 250  # about half the resamples hold both models
    assert table.loc["relative_top1", "resamples"] == 400


def test_bootstrap_is_paired_and_oriented():
    # nc (lower is better) and its negation as a higher-is-better score get identical intervals
    values = {"a": 0.1, "b": 0.5, "c": 0.3, "d": 0.9}
    scores = scores_table({"nc": values, "mirror": {m: -v for m, v in values.items()}})
    table = bootstrap_measures(scores, {"a": 0.9, "b": 0.6, "c": 0.8, "d": 0.5}, num_resamples=200,
                               greater_is_better={"mirror": True}).set_index(["score", "measure"])
    assert table.loc["nc"].equals(table.loc["mirror"])
    assert table.loc[("nc", "weighted_tau"), "value"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no performance"):
        bootstrap_measures(scores, {"a": 1.0})
    with pytest.raises(ValueError, match="level"):
        bootstrap_measures(scores, values, level=1.5)


def test_seed_evaluation_uses_each_seed():
    scores = scores_table({"logme": {"a": 1.0, "b": 2.0, "c": 3.0}})
    transfer = pd.DataFrame({"model": list("abc") * 2, "regime": "head", "seed": [0] * 3 + [1] * 3,
                             "metric": "accuracy", "value": [0.1, 0.2, 0.3, 0.3, 0.2, 0.1]})
    table = seed_evaluation(scores, transfer).query("measure == 'kendall'").set_index("seed")["value"]
    assert table.to_dict() == {0: 1.0, 1: -1.0}


def test_subsample_scores_use_stratified_halves():
    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1, 2], 10)
    features = {"a": rng.normal(size=(30, 3)), "b": rng.normal(size=(30, 4))}
    table = subsample_scores(features, labels, ["nc"], fraction=0.4, num_subsets=2, random_state=7)
    keep = stratified_split(labels, (0.4, 0.6), seed=8)[0]  # subset 1 uses seed 7 + 1
    assert len(keep) == 12
    expected = nc_score(features["b"][keep], labels[keep])
    assert table.query("subset == 1 and model == 'b'")["value"].item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="fraction"):
        subsample_scores(features, labels, ["nc"], fraction=1.0)


def test_evaluate_by_and_winners():
    scores = pd.DataFrame({"subset": [0] * 4 + [1] * 4, "model": ["a", "b"] * 4,
                           "score": (["nc"] * 2 + ["logme"] * 2) * 2,
                           "value": [0.1, 0.9, 1.0, 2.0, 0.9, 0.1, 2.0, 1.0]})
    transfer = pd.DataFrame({"model": ["a", "b"], "regime": "head", "seed": 0, "metric": "accuracy",
                             "value": [0.9, 0.5]})
    table = evaluate_by(scores, transfer, "subset")
    top1 = table.query("measure == 'relative_top1'").set_index(["subset", "score"])["value"]
    # subset 0: nc picks a (lowest), logme picks b; subset 1 the other way round
    assert top1.to_dict() == {(0, "nc"): 1.0, (0, "logme"): 0.5 / 0.9, (1, "nc"): 0.5 / 0.9, (1, "logme"): 1.0}
    shares = winners(table, ["subset", "regime"], measure="relative_top1")
    assert shares.to_dict() == {"nc": 0.5, "logme": 0.5}
    tie = pd.DataFrame({"setup": 0, "score": ["x", "y", "z"], "measure": "weighted_tau", "value": [1.0, 1.0, 0.0]})
    assert winners(tie, "setup").to_dict() == {"x": 0.5, "y": 0.5}


# --------------------------------------------------------------------------- agreement
def test_agreement_and_picks_are_oriented():
    scores = scores_table({
        "nc": {"a": 0.1, "b": 0.2, "c": 0.3},        # lower is better: a > b > c
        "logme": {"a": 3.0, "b": 2.0, "c": 1.0},     # a > b > c
        "leep": {"a": -3.0, "b": -1.0, "c": -2.0},   # b > c > a
    })
    agreement = score_agreement(scores)
    assert agreement.loc["nc", "logme"] == pytest.approx(1.0)
    # leep against logme: pairs (a,b) and (a,c) reversed, (b,c) kept -> (1 - 2) / 3
    assert agreement.loc["leep", "logme"] == pytest.approx(-1 / 3)
    assert oriented_scores(scores).loc["b", "nc"] == -0.2
    assert score_picks(scores).to_dict() == {"nc": "a", "logme": "a", "leep": "b"}
    with pytest.raises(ValueError, match="method"):
        score_agreement(scores, method="pearson")


# --------------------------------------------------------------------------- generalisation
def toy_embeddings(seed=0, sizes=(60, 30, 30)):
    rng = np.random.default_rng(seed)
    embeddings = {}
    for model, shift in (("good", 3.0), ("bad", 0.3)):
        embeddings[model] = {}
        for split, size in zip(SPLITS, sizes):
            labels = np.arange(size) % 3
            features = rng.normal(size=(size, 4)) + shift * np.eye(3, 4)[labels]
            embeddings[model][split] = {"features": features.astype(np.float32),
                                        "source_probs": np.full((size, 2), 0.5), "labels": labels}
    return embeddings


def test_split_scores_equal_sizes_per_split():
    embeddings = toy_embeddings()
    table = split_scores(embeddings, ["nc"], size=24)
    assert sorted(table.split.unique()) == ["test", "train", "val"]
    good = table.query("model == 'good'").set_index("split")["value"]
    bad = table.query("model == 'bad'").set_index("split")["value"]
    assert (good < bad).all()
    full = split_scores(embeddings, ["nc"], splits=("val",))
    val = embeddings["good"]["val"]
    assert full.query("model == 'good'")["value"].item() == pytest.approx(nc_score(val["features"], val["labels"]))


def test_training_size_sweep_at_full_size_is_the_head_regime():
    embeddings = toy_embeddings()
    scores, transfer = training_size_sweep(embeddings, [12, 60, 1000], ["nc"], metric="accuracy", epochs=4,
                                           lr=0.05, batch_size=16, seeds=(0, 1))
    assert sorted(transfer["size"].unique()) == [12, 60]  # 1000 is capped at N = 60: a repeat, skipped
    assert len(transfer) == 2 * 2 * 2 and len(scores) == 2 * 2  # sizes x models (x seeds)
    p = embeddings["good"]
    direct = head_transfer_seeds(p["train"]["features"], p["train"]["labels"], p["val"]["features"],
                                 p["val"]["labels"], p["test"]["features"], p["test"]["labels"], num_classes=3,
                                 epochs=4, lr=0.05, batch_size=16, seeds=[0, 1])
    swept = transfer.query("size == 60 and model == 'good'")["value"].tolist()
    assert swept == [r.test_metric for r in direct]
    small = scores.query("size == 12 and model == 'good'")["value"].item()
    assert small > 0 and np.isfinite(small)


def test_updates_lengthen_small_training_sets():
    embeddings = {m: p for m, p in toy_embeddings().items() if m == "good"}
    embeddings["copy"] = embeddings["good"]
    _, short = training_size_sweep(embeddings, [12], ["nc"], metric="accuracy", epochs=1, lr=0.05, batch_size=4)
    _, longer = training_size_sweep(embeddings, [12], ["nc"], metric="accuracy", epochs=1, lr=0.05, batch_size=4,
                                    updates=30)  # 3 batches per epoch -> 10 epochs
    assert not short.equals(longer)


def test_sweep_picks_hand_computed():
    scores = pd.DataFrame({"size": [10, 10, 20, 20], "model": ["a", "b"] * 2, "score": "nc",
                           "value": [0.2, 0.4, 0.4, 0.2]})
    transfer = pd.DataFrame({"size": [10, 10, 20, 20], "model": ["a", "b"] * 2, "regime": "head", "seed": 0,
                             "metric": "accuracy", "value": [0.5, 0.8, 0.6, 0.9]})
    picks = sweep_picks(scores, transfer).set_index("size")
    assert picks.loc[10, ["pick", "best"]].tolist() == ["a", "b"]
    assert picks.loc[10, "relative_top1"] == pytest.approx(0.5 / 0.8)
    assert picks.loc[20, ["pick", "best", "relative_top1"]].tolist() == ["b", "b", 1.0]


# --------------------------------------------------------------------------- other tasks
def test_input_intensity_ridge_and_clustering():
    assert input_intensity(np.array([[[0.0, 2.0]], [[4.0, 4.0]]])).tolist() == [1.0, 4.0]
    with pytest.raises(ValueError, match="shape"):
        input_intensity(np.zeros(3))
    rng = np.random.default_rng(3)
    features = rng.normal(size=(120, 3))
    exact = 2 * features[:, 0] - features[:, 1]
    assert ridge_transfer(features[:60], exact[:60], features[60:90], exact[60:90], features[90:],
                          exact[90:]) == pytest.approx(1.0, abs=1e-3)
    noise = rng.normal(size=120)
    assert ridge_transfer(features[:60], noise[:60], features[60:90], noise[60:90], features[90:], noise[90:]) < 0.2
    labels = np.repeat([0, 1], 30)
    separated = np.column_stack([labels * 20.0, np.zeros(60)]) + rng.normal(size=(60, 2))
    assert clustering_quality(separated, labels) == 1.0
    assert abs(clustering_quality(rng.normal(size=(60, 2)), labels)) < 0.2


# --------------------------------------------------------------------------- size
def test_pareto_front_hand_computed():
    sizes = [10, 20, 30, 15, 20]
    performance = [0.5, 0.7, 0.6, 0.4, 0.7]
    # 30 is beaten by 20 (smaller, better); 15 by 10; the two (20, 0.7) models tie: neither dominates
    assert pareto_front(sizes, performance).tolist() == [True, True, False, False, True]
    with pytest.raises(ValueError, match="equal 1-D"):
        pareto_front([1, 2], [0.5])


# --------------------------------------------------------------------------- cost
def test_loglog_slope_and_synthetic_problem():
    assert loglog_slope([10, 100, 1000], [0.2, 2.0, 20.0]) == pytest.approx(1.0)
    assert loglog_slope([2, 4], [1.0, 1.0]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="positive"):
        loglog_slope([1, 2], [0.0, 1.0])
    features, labels, probs = synthetic_problem(30, 4, 3, num_source_classes=5)
    assert features.shape == (30, 4) and np.bincount(labels).tolist() == [10, 10, 10]
    assert probs.shape == (30, 5) and np.allclose(probs.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="two classes"):
        synthetic_problem(10, 2, 1)


def test_time_scores_covers_every_kind_of_score():
    table = time_scores(["nc", "leep", "ncti"], [(40, 3, 2), (80, 3, 2)])
    assert len(table) == 6 and (table.seconds > 0).all()
    assert table.groupby("score")["num_samples"].apply(list).to_dict() == {
        "leep": [40, 80], "nc": [40, 80], "ncti": [40, 80]}


def test_transfer_seconds_extrapolates_consistently():
    config = dataclasses.replace(toy_experiment("quick"), zoo=lambda: toy_zoo()[3:], full_epochs=5)
    cache = Cache(enabled=False)
    embeddings = experiment_embeddings(config, cache=cache)
    table = transfer_seconds(config, embeddings, cache=cache, num_batches=2).iloc[0]
    sizes = config.load_target().sizes()
    expected = (5 * (sizes["train"] * table.train_seconds_per_example + sizes["val"] * table.eval_seconds_per_example)
                + sizes["test"] * table.eval_seconds_per_example)
    assert table.full_seconds == pytest.approx(expected)
    assert table.head_seconds > 0 and table.train_seconds_per_example > 0


def test_stability_plot_draws_every_panel():
    summary = pd.DataFrame({"panel": ["x", "x", "y", "y"], "score": ["nc", "logme"] * 2,
                            "value": [0.1, 0.5, 0.2, 0.3], "low": [-0.2, 0.1, 0.0, 0.1], "high": [0.4, 0.9, 0.5, 0.6]})
    spread = pd.DataFrame({"panel": "x", "score": "nc", "source": ["seed", "subset"], "value": [0.0, 0.2]})
    fig = stability_plot(summary, spread)
    assert len(fig.axes) == 2
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["logme", "nc"]
