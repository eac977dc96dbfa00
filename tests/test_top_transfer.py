"""Regime "top": the last stage and a new head fine-tuned on cached trunk outputs."""

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from nclib.cache import Cache
from nclib.experiments.runner import ExperimentConfig, run_experiment
from nclib.experiments.toy import INPUT_DIM, toy_experiment, toy_splits
from nclib.models import ModelSpec
from nclib.models.pretraining import build_model
from nclib.transfer import TopNetwork, TrainingResult, new_head, top_transfer, trunk_outputs


pytestmark = pytest.mark.usefixtures("quiet_single_thread")


class TrunkTopMlp(nn.Module):
    """A toy backbone with the trunk/top split: tanh layer | linear + batch norm + tanh."""

    def __init__(self, hidden: int = 16, embedding_dim: int = 8, num_classes: int = 6):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(INPUT_DIM, hidden), nn.Tanh())
        self.last = nn.Sequential(nn.Linear(hidden, embedding_dim), nn.BatchNorm1d(embedding_dim), nn.Tanh())
        self.classifier = nn.Linear(embedding_dim, num_classes)
        self.embedding_dim = embedding_dim

    def trunk(self, x):
        return self.body(x)

    @property
    def top(self):
        return self.last

    def embed(self, x):
        return self.top(self.trunk(x))

    def forward(self, x):
        return self.classifier(self.embed(x))


def _model(seed=0, **options):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TrunkTopMlp(**options).eval()


def _same(a: TrainingResult, b: TrainingResult) -> bool:
    return (a.best_epoch == b.best_epoch and a.history.equals(b.history)
            and all(torch.equal(a.state[k], b.state[k]) for k in a.state)
            and np.array_equal(a.test_probs, b.test_probs))


# ----------------------------------------------------------------------------- top_transfer
def test_top_transfer_trains_the_top_and_a_new_head_and_leaves_the_model_alone():
    model, splits = _model(), toy_splits()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = top_transfer(model, splits, epochs=20, lr=0.02, batch_size=16, seed=0)
    assert isinstance(result, TrainingResult)
    assert result.test_probs.shape == (len(splits.test.labels), 3) and 0 <= result.test_metric <= 1
    assert result.epochs_run == 20 and not result.stopped_early and 1 <= result.best_epoch <= 20
    assert sorted(result.state) == ["classifier.bias", "classifier.weight", "top.0.bias", "top.0.weight",
                                    "top.1.bias", "top.1.num_batches_tracked", "top.1.running_mean",
                                    "top.1.running_var", "top.1.weight"]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())   # a copy was trained
    # the representation changed (not the head regime), batch norm trained normally
    assert not torch.equal(result.state["top.0.weight"], model.last[0].weight)
    assert not torch.equal(result.state["top.1.running_mean"], model.last[1].running_mean)
    trained = TopNetwork(_model().last, new_head(8, 3, 0))
    trained.load_state_dict(result.state)
    trained.eval()
    with torch.no_grad():
        x = torch.from_numpy(splits.test.inputs)
        assert not torch.allclose(trained.embed(model.trunk(x)), model.embed(x), atol=1e-3)
        # test_probs are the kept checkpoint's
        np.testing.assert_allclose(torch.softmax(trained(model.trunk(x)), 1).numpy(), result.test_probs,
                                   atol=1e-6)


def test_top_transfer_stops_early_on_validation():
    result = top_transfer(_model(), toy_splits(), epochs=300, lr=0.05, batch_size=16, seed=0, patience=3)
    assert result.stopped_early and result.epochs_run < 300
    assert result.epochs_run == result.best_epoch + 3
    assert len(result.history) == result.epochs_run


def test_top_transfer_repeats_exactly_and_depends_on_the_seed():
    model, splits = _model(), toy_splits()
    state = torch.random.get_rng_state()
    a = top_transfer(model, splits, epochs=5, lr=0.02, batch_size=16, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())   # global random state untouched
    b = top_transfer(model, splits, epochs=5, lr=0.02, batch_size=16, seed=3)
    c = top_transfer(model, splits, epochs=5, lr=0.02, batch_size=16, seed=4)
    assert _same(a, b) and not _same(a, c)


def test_shared_trunk_outputs_give_the_same_result_as_computing_them():
    model, splits = _model(), toy_splits()
    cached = trunk_outputs(model, splits)
    assert {k: v.shape for k, v in cached.items()} == {"train": (90, 16), "val": (45, 16), "test": (45, 16)}
    assert all(v.dtype == np.float32 for v in cached.values())
    with torch.no_grad():
        np.testing.assert_array_equal(cached["val"], model.trunk(torch.from_numpy(splits.val.inputs)).numpy())
    np.testing.assert_allclose(trunk_outputs(model, splits, batch_size=7)["train"], cached["train"], atol=1e-6)
    a = top_transfer(model, splits, epochs=4, lr=0.02, batch_size=16, seed=1, trunk_outputs=cached)
    b = top_transfer(model, splits, epochs=4, lr=0.02, batch_size=16, seed=1)
    assert _same(a, b)


def test_trunk_outputs_run_in_eval_mode_and_restore_the_mode():
    model = _model().train()
    trunk_outputs(model, toy_splits())
    assert model.training


@pytest.mark.parametrize("change, message", [
    (dict(model=lambda: nn.Linear(8, 3)), "trunk/top split"),
    (dict(trunk_outputs={"train": np.zeros((90, 16), np.float32)}), "must map each of"),
    (dict(trunk_outputs={"train": np.zeros((90, 16), np.float32), "val": np.zeros((44, 16), np.float32),
                         "test": np.zeros((45, 16), np.float32)}), "expected \\(45, ...\\) for the val split"),
    (dict(patience=0), "patience"),
    (dict(epochs=0), "epochs"),
])
def test_top_transfer_refuses_bad_input(change, message):
    options = dict(model=_model, trunk_outputs=None, patience=None, epochs=2)
    options.update(change)
    with pytest.raises(ValueError, match=message):
        top_transfer(options["model"](), toy_splits(), epochs=options["epochs"], lr=0.01, seed=0,
                     patience=options["patience"], trunk_outputs=options["trunk_outputs"])


# ----------------------------------------------------------------------------- the runner
def _zoo():
    return [ModelSpec("narrow", "mlp", lambda: TrunkTopMlp(hidden=12), "none"),
            ModelSpec("wide", "mlp", lambda: TrunkTopMlp(hidden=24, embedding_dim=10), "none")]


def _config(**changes) -> ExperimentConfig:
    settings = dict(zoo=_zoo, prepare_model=lambda spec, cache: build_model(spec).eval(), seeds=(0, 1),
                    scores=("nc",), fine_tune="top", full_epochs=30, head_epochs=5, patience=3, lr=0.02)
    settings.update(changes)
    return dataclasses.replace(toy_experiment("quick"), **settings)


def test_the_runner_labels_top_runs_top_and_shares_the_trunk_outputs(tmp_path, counting_cache):
    cache = counting_cache(tmp_path)
    results = run_experiment(_config(), cache=cache)
    assert set(results.transfer.regime) == {"head", "top"}
    assert set(results.history.regime) == {"head", "top"} and set(results.convergence.regime) == {"head", "top"}
    assert set(results.evaluation.regime) == {"head", "top"}
    assert len(results.transfer.query("regime == 'top'")) == 4
    assert {("narrow", "top", 0), ("wide", "top", 1)} <= set(results.predictions)
    top = results.convergence.query("regime == 'top'")
    assert (top["epochs_run"] <= 30).all() and top["stopped_early"].any()
    assert cache.computed["trunk_outputs"] == 2 and cache.computed["top_transfer"] == 4   # once per model
    assert results.config.settings()["fine_tune"] == "top"
    warm = counting_cache(tmp_path)
    again = run_experiment(_config(), cache=warm)
    assert not warm.computed   # nothing recomputed, trunk outputs not even read
    assert again.transfer.equals(results.transfer)


def test_the_fine_tune_setting_enters_the_cache_keys(tmp_path, counting_cache):
    cache = counting_cache(tmp_path)
    full = run_experiment(_config(fine_tune="full", seeds=(0,)), cache=cache)
    assert set(full.transfer.regime) == {"head", "full"}
    top = run_experiment(_config(seeds=(0,)), cache=cache)
    assert set(top.transfer.regime) == {"head", "top"} and cache.computed["top_transfer"] == 2
    assert (full.transfer.query("regime == 'head'").reset_index(drop=True)
            .equals(top.transfer.query("regime == 'head'").reset_index(drop=True)))


def test_top_runs_repeat_exactly_without_a_cache():
    a = run_experiment(_config(seeds=(0,)), cache=Cache(enabled=False))
    b = run_experiment(_config(seeds=(0,)), cache=Cache(enabled=False))
    assert a.transfer.equals(b.transfer) and a.history.equals(b.history)


def test_the_runner_refuses_top_for_models_without_the_split_and_bad_settings():
    with pytest.raises(ValueError, match="fine_tune must be one of"):
        _config(fine_tune="last")
    toy = dataclasses.replace(toy_experiment("quick"), seeds=(0,), scores=("nc",), fine_tune="top")
    with pytest.raises(ValueError, match="trunk/top split"):
        run_experiment(toy, cache=Cache(enabled=False))
