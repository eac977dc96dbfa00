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

