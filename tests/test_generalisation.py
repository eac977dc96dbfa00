"""Scores on held-out data and on smaller training sets (nclib.generalisation)."""

import numpy as np
import pandas as pd
import pytest

from nclib import nc_score
from nclib.data.base import SPLIT_NAMES as SPLITS
from nclib.generalisation import split_scores, sweep_picks, training_size_sweep
from nclib.transfer import head_transfer_seeds


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



def test_convex_sweep_is_the_converged_head_and_deterministic():
    from nclib.convex_head import convex_head_transfer

    embeddings = toy_embeddings()
    kwargs = dict(metric="accuracy", solver="convex", subsets=3)
    scores, transfer = training_size_sweep(embeddings, [12, 60], ["nc"], **kwargs)
    again = training_size_sweep(embeddings, [12, 60], ["nc"], **kwargs)
    pd.testing.assert_frame_equal(transfer, again[1])
    pd.testing.assert_frame_equal(scores, again[0])
    # three different subsets at n = 12, one (the whole set) at n = 60; no seeds
    assert transfer.groupby("size")["subset"].nunique().to_dict() == {12: 3, 60: 1}
    assert (transfer["seed"] == 0).all() and len(transfer) == (3 + 1) * 2
    assert len(scores) == (3 + 1) * 2
    p = embeddings["good"]
    direct = convex_head_transfer(p["train"]["features"], p["train"]["labels"], p["val"]["features"],
                                  p["val"]["labels"], p["test"]["features"], p["test"]["labels"],
                                  num_classes=3)
    assert transfer.query("size == 60 and model == 'good'")["value"].item() == direct.test_metric
    small = scores.query("size == 12 and model == 'good'").sort_values("subset")["value"]
    assert small.nunique() == 3  # the subsets differ


def test_sweep_picks_per_subset():
    embeddings = toy_embeddings()
    scores, transfer = training_size_sweep(embeddings, [12, 60], ["nc"], metric="accuracy",
                                           solver="convex", subsets=3)
    picks = sweep_picks(scores, transfer)
    assert list(picks.columns) == ["size", "subset", "score", "pick", "best", "relative_top1"]
    assert len(picks) == 3 + 1
    assert (picks.query("size == 60")["pick"] == "good").all()


def test_training_size_sweep_rejects_bad_options():
    embeddings = toy_embeddings()
    with pytest.raises(ValueError, match="solver"):
        training_size_sweep(embeddings, [12], ["nc"], metric="accuracy", solver="sgd")
    with pytest.raises(ValueError, match="epochs"):
        training_size_sweep(embeddings, [12], ["nc"], metric="accuracy")
    with pytest.raises(ValueError, match="subsets"):
        training_size_sweep(embeddings, [12], ["nc"], metric="accuracy", solver="convex", subsets=0)


def test_sweep_can_skip_a_score_that_refuses_a_subset(monkeypatch):
    import nclib.generalisation as generalisation

    real = generalisation.compute_scores

    def refuse_logme(features, labels, probs, names, options=None):
        if "logme" in names and len(labels) < 30:
            raise ValueError("logme refuses")
        return real(features, labels, probs, names, options)

    monkeypatch.setattr(generalisation, "compute_scores", refuse_logme)
    embeddings = toy_embeddings()
    with pytest.raises(ValueError, match="refuses"):
        training_size_sweep(embeddings, [12], ["nc", "logme"], metric="accuracy", solver="convex")
    scores, transfer = training_size_sweep(embeddings, [12, 60], ["nc", "logme"], metric="accuracy",
                                           solver="convex", errors="skip")
    assert set(scores.query("size == 12")["score"]) == {"nc"}
    assert set(scores.query("size == 60")["score"]) == {"nc", "logme"}
    assert set(sweep_picks(scores, transfer).query("size == 12")["score"]) == {"nc"}


def test_convex_sweep_passes_its_tolerance_and_grid(monkeypatch):
    import nclib.convex_head as convex_head

    seen = []
    real = convex_head.convex_head_transfer

    def spy(*args, **kwargs):
        seen.append((kwargs["gtol"], kwargs["l2_grid"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(convex_head, "convex_head_transfer", spy)
    training_size_sweep(toy_embeddings(), [12], ["nc"], metric="accuracy", solver="convex",
                        gtol=1e-5, l2_grid=(1.0, 0.1))
    assert seen and all(s == (1e-5, (1.0, 0.1)) for s in seen)
