"""The overfitting study (nclib.experiments.overfitting_study) on a toy pool with a trunk/top split."""

import dataclasses
from functools import partial

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from nclib.cache import Cache
from nclib.experiments.overfitting_study import full_curves, study_subsets, subset_scores, top_curves
from nclib.experiments.toy import INPUT_DIM, toy_experiment, toy_splits
from nclib.models import ModelSpec
from nclib.overfitting import run_gaps, score_gap_association


pytestmark = pytest.mark.usefixtures("quiet_single_thread")  # tests/conftest.py


class SplitNet(nn.Module):
    """The zoo contract with the optional trunk/top split: ``embed(x) = top(trunk(x))``."""

    def __init__(self, width: int):
        super().__init__()
        self.first = nn.Linear(INPUT_DIM, 6)
        self.top = nn.Sequential(nn.Linear(6, width), nn.BatchNorm1d(width), nn.Tanh())
        self.classifier = nn.Linear(width, 4)
        self.embedding_dim = width

    def trunk(self, x):
        return torch.relu(self.first(x))

    def embed(self, x):
        return self.top(self.trunk(x))

    def forward(self, x):
        return self.classifier(self.embed(x))


def build(width, seed):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return SplitNet(width).eval()


def split_zoo():
    return [ModelSpec("narrow", "split", partial(build, 3, 0), "none"),
            ModelSpec("wide", "split", partial(build, 12, 1), "none")]


def build_spec(spec, cache):
    return spec.build()


def split_pool():
    """The pool, picklable (module-level functions), so worker processes can run it too."""
    return dataclasses.replace(toy_experiment("quick"), zoo=split_zoo, prepare_model=build_spec,
                               key_parts={"test": "split-pool"})


def test_study_subsets_are_nested_per_seed():
    subsets = study_subsets(toy_splits(), (2, 6), seeds=(0, 3))
    assert all(np.isin(s[2], s[6]).all() for s in subsets.values())
    assert not np.array_equal(subsets[0][2], subsets[3][2])
    with pytest.raises(ValueError, match="seeds"):
        study_subsets(toy_splits(), (2, 6), seeds=(0, 0))


def test_top_curves_cover_every_model_seed_and_size_and_are_cached(tmp_path):
    config, cache = split_pool(), Cache(tmp_path)
    kwargs = dict(per_class=(4, 12), seeds=(0, 1), updates=12, lr=0.01, batch_size=8, records=3)
    curves = top_curves(config, cache=cache, **kwargs)
    runs = curves.groupby(["model", "size", "seed"]).size()
    assert len(runs) == 2 * 2 * 2
    assert (curves.groupby(["model", "size", "seed"])["updates"].max() >= 12).all()
    assert set(curves.query("model == 'wide'")["top_parameters"]) == {6 * 12 + 12 + 2 * 12}
    assert (curves.groupby(["model", "size", "seed"])["seconds"].nunique() == 1).all()
    assert (curves["seconds"] > 0).all()
    again = top_curves(config, cache=cache, **kwargs)  # read back, not recomputed
    pd.testing.assert_frame_equal(curves, again, check_dtype=False)
    assert len(list((tmp_path / "top_curves").glob("*.csv"))) == 2
    gaps = run_gaps(curves)
    assert len(gaps) == 8 and gaps["gap_end"].between(-1, 1).all()
    scores = subset_scores(config, ["nc", "knn"], per_class=(4, 12), seeds=(0, 1), cache=cache)
    assert len(scores) == 2 * 2 * 2 * 2 and scores["value"].notna().all()
    table = score_gap_association(scores, gaps, num_resamples=50)
    assert set(table["score"]) == {"nc", "knn"} and (table["seeds"] == 2).all()
    with pytest.raises(ValueError, match="records"):
        top_curves(config, cache=cache, **{**kwargs, "records": 0})
    # part of the pool: the same runs as in the whole pool, read from the same cache entry
    wide = top_curves(config, networks=["wide"], cache=cache, **kwargs)
    pd.testing.assert_frame_equal(wide.reset_index(drop=True),
                                  curves.query("model == 'wide'").reset_index(drop=True), check_dtype=False)
    with pytest.raises(ValueError, match="networks must be distinct models of the pool"):
        top_curves(config, networks=["wide", "huge"], cache=cache, **kwargs)


def test_full_curves_train_every_layer_of_the_chosen_models(tmp_path):
    config, cache = split_pool(), Cache(tmp_path)
    kwargs = dict(per_class=(4, 12), seeds=(0, 1), updates=12, lr=0.01, batch_size=8, records=3)
    full = full_curves(config, networks=["wide"], cache=cache, **kwargs)
    assert set(full["model"]) == {"wide"} and "top_parameters" not in full.columns
    assert len(full.groupby(["size", "seed"])) == 4
    assert set(full["parameters"]) == {sum(p.numel() for p in build(12, 1).parameters())}
    top = top_curves(config, cache=cache, **kwargs).query("model == 'wide'")
    # the same subsets, updates and head seed; only what is trained differs
    assert list(full["epoch"]) == list(top["epoch"])
    assert not np.allclose(full["train_loss"], top["train_loss"])
    again = full_curves(config, networks=["wide"], cache=cache, **kwargs)
    pd.testing.assert_frame_equal(full, again, check_dtype=False)
    assert len(list((tmp_path / "full_curves").glob("*.csv"))) == 1
    assert len(full_curves(config, cache=cache, **kwargs).groupby("model")) == 2
    for bad in (["huge"], [], ["wide", "wide"]):
        with pytest.raises(ValueError, match="networks must be distinct models of the pool"):
            full_curves(config, networks=bad, cache=cache, **kwargs)


def test_full_curves_until_memorised_stop_where_the_subset_is_fitted(tmp_path):
    config, cache = split_pool(), Cache(tmp_path)
    kwargs = dict(per_class=(4, 12), seeds=(0, 1), lr=0.05, batch_size=8, records=3)
    fixed = full_curves(config, networks=["wide"], cache=cache, updates=400, **{**kwargs, "records": 400})
    memorised = full_curves(config, networks=["wide"], cache=cache, updates=400, until_memorised=True, **kwargs)
    assert len(memorised) == 4 and memorised["memorised"].all()  # one row per run: where it stopped
    assert (memorised["train_accuracy"] == 1.0).all()
    last = fixed.groupby(["size", "seed"])["epoch"].max()
    stopped = memorised.set_index(["size", "seed"])["epoch"]
    assert (stopped < last.loc[stopped.index]).all()  # every run stopped before the cap
    # up to where it stopped, a run is the fixed-length run: same subset, seed and updates
    for (size, seed), epoch in stopped.items():
        same = fixed.query("size == @size and seed == @seed and epoch == @epoch")  # every epoch recorded
        row = memorised.query("size == @size and seed == @seed")
        assert same["train_loss"].item() == pytest.approx(row["train_loss"].item(), rel=1e-6)
        assert same["train_accuracy"].item() == 1.0
    # a cap too short to memorise: every run ends at the cap, not memorised
    short = full_curves(config, networks=["wide"], cache=cache, updates=1, until_memorised=True, **kwargs)
    assert not short["memorised"].any()
    assert len(list((tmp_path / "full_curves").glob("*.csv"))) == 3  # each design its own entry


def test_worker_processes_give_the_same_curves(tmp_path):
    from nclib.experiments.executors import ProcessExecutor

    config = split_pool()
    kwargs = dict(per_class=(4,), seeds=(0,), updates=6, lr=0.01, batch_size=8, records=2)
    here = top_curves(config, cache=Cache(tmp_path / "here"), **kwargs)
    with ProcessExecutor(workers=2, threads_per_worker=torch.get_num_threads()) as executor:
        away = top_curves(config, cache=Cache(tmp_path / "away"), executor=executor, **kwargs)
        assert executor._pool is not None
    pd.testing.assert_frame_equal(here.drop(columns="seconds"), away.drop(columns="seconds"))
    with ProcessExecutor(workers=2) as executor:   # stored: read here, no worker started
        again = top_curves(config, cache=Cache(tmp_path / "away"), executor=executor, **kwargs)
        assert executor._pool is None
    pd.testing.assert_frame_equal(away, again, check_dtype=False)


def test_a_refused_score_is_missing_for_that_model_only(monkeypatch):
    import nclib.scores as scores_module

    real = scores_module.compute_scores

    def refuse_wide(features, labels, probs, names, options=None):
        if "nc" in names and any(f.shape[1] == 12 for f in features.values()):
            raise ValueError("refused")
        return real(features, labels, probs, names, options)

    monkeypatch.setattr(scores_module, "compute_scores", refuse_wide)
    table = subset_scores(split_pool(), ["nc"], per_class=(4,), seeds=(0,), cache=Cache(enabled=False))
    assert table.set_index("model")["value"].isna().to_dict() == {"narrow": False, "wide": True}
