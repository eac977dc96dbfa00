"""Size and cost measurements (nclib.costs)."""

import dataclasses

import numpy as np
import pytest

from nclib.cache import Cache
from nclib.costs import loglog_slope, pareto_front, synthetic_problem, time_scores, transfer_seconds
from nclib.experiments.embeddings import experiment_embeddings
from nclib.experiments.toy import toy_experiment, toy_zoo


def test_pareto_front_hand_computed():
    sizes = [10, 20, 30, 15, 20]
    performance = [0.5, 0.7, 0.6, 0.4, 0.7]
    # 30 is beaten by 20 (smaller, better); 15 by 10; the two (20, 0.7) models tie: neither dominates
    assert pareto_front(sizes, performance).tolist() == [True, True, False, False, True]
    with pytest.raises(ValueError, match="equal 1-D"):
        pareto_front([1, 2], [0.5])


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



def test_complexity_path_matches_a_grid_search():
    from nclib.costs import complexity_path

    rng = np.random.default_rng(1)
    likelihood = rng.normal(size=7) * 50
    parameters = rng.integers(10, 10**6, size=7)
    path = complexity_path(likelihood, parameters)
    assert path.from_weight.iloc[0] == 0 and np.isinf(path.to_weight.iloc[-1])
    assert (path.parameters.diff().dropna() < 0).all()  # the pick only moves to smaller models
    for weight in np.linspace(0, 200, 401):
        brute = int(np.argmax(likelihood - weight * np.log(parameters)))
        row = path[(path.from_weight <= weight) & (weight < path.to_weight)].iloc[0]
        if not np.isclose(weight, path.from_weight).any():  # away from exact ties
            assert row.model == str(brute)
    with pytest.raises(ValueError, match="positive"):
        complexity_path([1.0, 2.0], [0, 5])


def test_transfer_seconds_per_epoch_and_cache(tmp_path):
    from nclib.costs import cached_transfer_seconds

    config = dataclasses.replace(toy_experiment("quick"), zoo=lambda: toy_zoo()[3:], full_epochs=5)
    cache = Cache(tmp_path)
    embeddings = experiment_embeddings(config, cache=cache)
    table = cached_transfer_seconds(config, embeddings, cache=cache, num_batches=1)
    row = table.iloc[0]
    sizes = config.load_target().sizes()
    epoch = sizes["train"] * row.train_seconds_per_example + sizes["val"] * row.eval_seconds_per_example
    assert row.full_seconds_per_epoch == pytest.approx(epoch)
    assert np.isnan(row.top_seconds_per_epoch)  # the toy experiment fine-tunes every layer
    again = cached_transfer_seconds(config, embeddings, cache=cache, num_batches=1)
    assert again.equals(table)  # read back, not re-measured
    assert np.isnan(transfer_seconds(config, embeddings, cache=cache, full=False).full_seconds).all()
