"""Reading an experiment's cached embeddings (nclib.experiments.embeddings)."""

import dataclasses

import numpy as np

from nclib import nc_score
from nclib.cache import Cache
from nclib.data.base import SPLIT_NAMES as SPLITS
from nclib.experiments.embeddings import experiment_embeddings
from nclib.experiments.runner import run_experiment
from nclib.experiments.toy import toy_experiment, toy_zoo


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
        for split in SPLITS:  # the same arrays as the run's own results
            held = results.embedding(model, split)
            assert np.array_equal(parts[split]["features"], held["features"])
            assert np.array_equal(parts[split]["source_probs"], held["source_probs"])
        stored = results.scores.query("model == @model")["value"].item()
        assert nc_score(parts["train"]["features"], parts["train"]["labels"]) == stored

