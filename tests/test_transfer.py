"""Tests of nclib.transfer: metrics, the head and full regimes, checkpointing, seeding."""

import numpy as np
import pytest
import torch
from torch import nn

from nclib.data.base import Dataset, Splits
from nclib.experiments.toy import ToyMlp, gaussian_task, toy_splits
import pandas as pd

from nclib.transfer import (
    NotConvergedError,
    check_converged,
    deterministic_algorithms,
    full_transfer,
    head_transfer,
    head_transfer_seeds,
    late_peaks,
    new_head,
    score_predictions,
    train_classifier,
)


pytestmark = pytest.mark.usefixtures("quiet_single_thread")


def blobs(num_classes=3, per_class=40, width=5, distance=6.0, seed=0):
    """Well-separated Gaussian blobs: features (N, width) float32, labels (N,)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes), per_class)
    means = np.zeros((num_classes, width))
    means[np.arange(num_classes), np.arange(num_classes) % width] = distance
    return (means[labels] + rng.normal(size=(len(labels), width))).astype(np.float32), labels


# ----------------------------------------------------------------------------- metrics
def test_accuracy_hand_case():
    probs = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]
    assert score_predictions("accuracy", [0, 1, 1, 1], probs) == 0.75


def test_auroc_hand_cases():
    # positives score 0.35 and 0.8, negatives 0.1 and 0.4: 3 of the 4 pairs are ordered
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]])
    assert score_predictions("auroc", [0, 0, 1, 1], probs) == pytest.approx(0.75)
    # a tie between a positive and a negative counts one half: (0.5 + 1 + 1 + 1) / 4
    tied = np.array([[0.5, 0.5], [0.8, 0.2], [0.5, 0.5], [0.1, 0.9]])
    assert score_predictions("auroc", [0, 0, 1, 1], tied) == pytest.approx(0.875)


@pytest.mark.parametrize("metric, labels, probs, message", [
    ("f1", [0, 1], [[1, 0], [0, 1]], "unknown metric"),
    ("auroc", [0, 1, 2], np.eye(3), "binary"),
    ("auroc", [1, 1], [[0.2, 0.8], [0.4, 0.6]], "both classes"),
    ("accuracy", [0, 1], [[np.nan, 0.5], [0.5, 0.5]], "NaN"),
    ("accuracy", [0, 1, 1], [[1, 0], [0, 1]], "must be"),
])
def test_metric_refuses_bad_input(metric, labels, probs, message):
    with pytest.raises(ValueError, match=message):
        score_predictions(metric, labels, probs)


# ----------------------------------------------------------------------------- head regime
def test_head_transfer_learns_a_separable_problem():
    features, labels = blobs(seed=0)
    test_features, test_labels = blobs(seed=1)
    result = head_transfer(features, labels, features, labels, test_features, test_labels,
                           num_classes=3, epochs=15, lr=0.05, batch_size=16, seed=0)
    assert result.test_metric >= 0.95
    assert list(result.history.columns) == ["epoch", "train_loss", "val_metric"]
    assert result.history.epoch.tolist() == list(range(1, 16))
    assert result.history.train_loss.iloc[-1] < result.history.train_loss.iloc[0]
    assert result.state["weight"].shape == (3, 5) and result.state["bias"].shape == (3,)


def test_best_checkpoint_is_chosen_on_validation():
    # the training labels say "x > 0", the validation labels the opposite: the more the
    # head learns, the worse it does on validation, so the best epoch is an early one
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 1)).astype(np.float32)
    x[np.abs(x) < 0.2] += 0.5  # no point too close to the boundary
    train_labels = (x[:, 0] > 0).astype(np.int64)
    val_labels = 1 - train_labels
    result = head_transfer(x, train_labels, x, val_labels, x, val_labels, num_classes=2,
                           epochs=12, lr=0.1, batch_size=20, seed=3)
    history = result.history
    assert history.val_metric.iloc[-1] < history.val_metric.max()
    assert result.best_epoch == int(history.val_metric.idxmax()) + 1  # first epoch reaching the max
    assert result.best_val_metric == history.val_metric.max()
    # test split == validation split: the test metric is that of the kept checkpoint
    assert result.test_metric == pytest.approx(result.best_val_metric)
    head = nn.Linear(1, 2)
    head.load_state_dict(result.state)
    with torch.no_grad():
        predicted = head(torch.from_numpy(x)).argmax(1).numpy()
    assert np.mean(predicted == val_labels) == pytest.approx(result.best_val_metric)


def test_same_seed_same_head_initialisation_across_models_of_equal_width():
    a, b = new_head(6, 3, seed=7), new_head(6, 3, seed=7)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    assert not torch.equal(a.weight, new_head(6, 3, seed=8).weight)
    bound = 1 / np.sqrt(6)
    assert float(a.weight.detach().abs().max()) <= bound and float(a.bias.detach().abs().max()) <= bound
    # two "models" (different embeddings of equal width) start from that head: with a
    # negligible learning rate the kept state is still the initialisation
    labels = np.repeat([0, 1, 2], 10)
    first = blobs(per_class=10, width=6, seed=1)[0]
    second = np.random.default_rng(2).normal(size=(30, 6)).astype(np.float32)
    for features in (first, second):
        result = head_transfer(features, labels, features, labels, features, labels, num_classes=3,
                               epochs=1, lr=1e-12, seed=7)
        np.testing.assert_allclose(result.state["weight"].numpy(), a.weight.detach().numpy(), atol=1e-9)
        np.testing.assert_allclose(result.state["bias"].numpy(), a.bias.detach().numpy(), atol=1e-9)


def test_new_head_leaves_the_global_random_state_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    new_head(4, 2, seed=1)
    assert torch.equal(torch.rand(3), expected)


def test_head_transfer_repeats_exactly_and_depends_on_the_seed():
    features, labels = blobs(seed=4)
    run = lambda seed: head_transfer(features, labels, features, labels, features, labels,  # noqa: E731
                                     num_classes=3, epochs=3, lr=0.01, seed=seed)
    first, again, other = run(5), run(5), run(6)
    assert first.history.equals(again.history)
    assert torch.equal(first.state["weight"], again.state["weight"])
    assert not torch.equal(first.state["weight"], other.state["weight"])


def test_seeds_trained_together_equal_seeds_trained_alone():
    features, labels = blobs(seed=5)
    common = dict(num_classes=3, epochs=4, lr=0.01, batch_size=7)
    together = head_transfer_seeds(features, labels, features, labels, features, labels, seeds=[0, 1, 2], **common)
    for seed, result in zip([0, 1, 2], together):
        alone = head_transfer(features, labels, features, labels, features, labels, seed=seed, **common)
        np.testing.assert_allclose(result.history.train_loss, alone.history.train_loss, rtol=1e-6)
        np.testing.assert_allclose(result.state["weight"].numpy(), alone.state["weight"].numpy(), rtol=1e-5, atol=1e-7)
        assert result.test_metric == alone.test_metric


def test_batched_heads_match_a_plain_linear_layer_with_torch_adam():
    features, labels = blobs(per_class=16, width=4, seed=6)  # 48 examples, batches of 16
    epochs, lr, batch_size, seed = 5, 0.02, 16, 11
    result = head_transfer(features, labels, features, labels, features, labels, num_classes=3,
                           epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    # reference: nn.Linear + torch.optim.Adam + autograd, same initialisation and order
    head = new_head(4, 3, seed)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    x, y = torch.from_numpy(features), torch.from_numpy(labels)
    losses, states = [], []
    for _ in range(epochs):
        total = 0.0
        for batch in torch.randperm(len(y), generator=order).split(batch_size):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(head(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        losses.append(total / len(y))
        states.append({k: v.detach().clone() for k, v in head.state_dict().items()})
    np.testing.assert_allclose(result.history.train_loss, losses, rtol=1e-5)
    kept = states[result.best_epoch - 1]
    np.testing.assert_allclose(result.state["weight"].numpy(), kept["weight"].numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("change, message", [
    (dict(train_labels=np.full(120, 3)), "range"),
    (dict(train_features=np.full((120, 5), np.nan, np.float32)), "NaN"),
    (dict(val_features=np.zeros((120, 4), np.float32)), "width"),
    (dict(epochs=0), "epochs"),
    (dict(lr=-1.0), "lr"),
    (dict(metric="auroc"), "binary"),
    (dict(train_labels=np.zeros(7, np.int64)), "N = 7"),
])
def test_head_transfer_refuses_bad_input(change, message):
    features, labels = blobs()
    arguments = dict(train_features=features, train_labels=labels, val_features=features, val_labels=labels,
                     test_features=features, test_labels=labels, num_classes=3, epochs=1, seed=0)
    arguments.update(change)
    with pytest.raises(ValueError, match=message):
        head_transfer(**arguments)


# ----------------------------------------------------------------------------- full regime, pre-training
def test_train_classifier_pretrains_and_keeps_the_callers_random_state():
    source = toy_splits(num_classes=4, sizes=(120, 40, 40), seed=21)
    model = ToyMlp(hidden=16, embedding_dim=8, num_classes=4)
    torch.manual_seed(0)
    expected = torch.rand(2)
    torch.manual_seed(0)
    result = train_classifier(model, source.train, source.val, epochs=8, lr=0.02, batch_size=16, seed=0)
    assert torch.equal(torch.rand(2), expected)
    assert result.test_metric is None and result.best_val_metric >= 0.9
    with torch.no_grad():  # the model holds the kept checkpoint
        predicted = model(torch.from_numpy(source.val.inputs)).argmax(1).numpy()
    assert np.mean(predicted == source.val.labels) == pytest.approx(result.best_val_metric)


def test_full_transfer_replaces_the_classifier_and_fine_tunes():
    splits = toy_splits()
    torch.manual_seed(0)
    model = ToyMlp(hidden=16, embedding_dim=8, num_classes=6)
    body_before = model.body[0].weight.detach().clone()
    result = full_transfer(model, splits, epochs=15, lr=0.02, batch_size=16, seed=0)
    assert isinstance(model.classifier, nn.Linear) and model.classifier.weight.shape == (3, 8)
    assert not torch.equal(model.body[0].weight, body_before)  # every parameter trained
    assert result.test_metric >= 0.9
    assert set(result.state) == set(model.state_dict())


def test_full_transfer_repeats_exactly():
    def run():
        torch.manual_seed(1)
        model = ToyMlp(hidden=8, embedding_dim=4, num_classes=6)
        model.body.insert(1, nn.Dropout(0.3))  # random layers draw from the seeded generator
        return full_transfer(model, toy_splits(), epochs=3, lr=0.01, seed=4)

    first, second = run(), run()
    assert first.history.equals(second.history) and first.test_metric == second.test_metric


def test_trailing_single_example_does_not_break_batch_norm():
    inputs, labels = blobs(num_classes=3, per_class=11, width=4)  # 33 = 32 + 1 examples
    data = Dataset(inputs, labels, ["a", "b", "c"])
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    result = train_classifier(model, data, data, epochs=2, lr=0.01, batch_size=32, seed=0)
    assert len(result.history) == 2


def test_full_transfer_auroc_on_a_binary_task():
    splits = Splits(*[gaussian_task(2, size, seed=5, sample_seed=50 + k) for k, size in enumerate((60, 30, 30))])
    result = full_transfer(ToyMlp(hidden=8, embedding_dim=4, num_classes=6), splits, epochs=5, lr=0.02,
                           seed=0, metric="auroc")
    assert 0.5 < result.test_metric <= 1.0
    assert result.history.val_metric.between(0, 1).all()


# ----------------------------------------------------------------------------- early stopping
def test_full_transfer_stops_when_validation_stops_improving():
    splits = toy_splits()
    torch.manual_seed(0)
    result = full_transfer(ToyMlp(hidden=16, embedding_dim=8, num_classes=6), splits, epochs=200, lr=0.05,
                           batch_size=16, seed=0, patience=3)
    history = result.history
    assert result.stopped_early and result.epochs_run == len(history) < 200
    assert result.epochs_run == result.best_epoch + 3
    assert history.epoch.tolist() == list(range(1, result.epochs_run + 1))  # still one row per epoch
    assert history.val_metric.iloc[result.best_epoch:].max() <= result.best_val_metric
    assert result.test_probs.shape == (len(splits.test.labels), 3) and result.test_probs.dtype == np.float32
    assert result.test_metric == score_predictions("accuracy", splits.test.labels, result.test_probs)


def test_fixed_epochs_run_to_the_cap():
    result = full_transfer(ToyMlp(hidden=8, embedding_dim=4, num_classes=6), toy_splits(), epochs=4, lr=0.01,
                           seed=0)
    assert result.epochs_run == 4 and not result.stopped_early


def test_head_seeds_stop_each_on_their_own_and_match_solo_runs():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(120, 6)).astype(np.float32)
    labels = rng.integers(0, 3, 120)  # noise labels: validation accuracy wanders and stalls
    common = dict(num_classes=3, epochs=60, lr=0.05, batch_size=16, patience=4)
    together = head_transfer_seeds(features, labels, features[:60], labels[:60], features, labels,
                                   seeds=[0, 1, 2], **common)
    assert all(r.stopped_early and r.epochs_run == r.best_epoch + 4 for r in together)
    assert len({r.epochs_run for r in together}) > 1  # each seed stopped at its own epoch
    for seed, result in zip([0, 1, 2], together):
        alone = head_transfer(features, labels, features[:60], labels[:60], features, labels, seed=seed, **common)
        assert alone.epochs_run == result.epochs_run and alone.best_epoch == result.best_epoch
        np.testing.assert_allclose(alone.history.train_loss, result.history.train_loss, rtol=1e-6)
        np.testing.assert_allclose(alone.test_probs, result.test_probs, rtol=1e-5, atol=1e-6)


def test_patience_must_be_positive():
    features, labels = blobs()
    with pytest.raises(ValueError, match="patience"):
        head_transfer(features, labels, features, labels, features, labels, num_classes=3, epochs=2, seed=0,
                      patience=0)


def test_training_is_deterministic_and_restores_the_global_flags():
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.benchmark)
    seen = []

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(4, 3)

        def forward(self, x):
            seen.append(torch.are_deterministic_algorithms_enabled())
            return self.layer(x)

    inputs, labels = blobs(per_class=10, width=4)
    data = Dataset(inputs, labels, ["a", "b", "c"])
    train_classifier(Spy(), data, data, epochs=1, lr=0.01, batch_size=8, seed=0)
    assert seen and all(seen)
    after = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.benchmark)
    assert after == before
    with pytest.raises(RuntimeError):  # restored after an error too
        with deterministic_algorithms():
            raise RuntimeError("boom")
    assert torch.are_deterministic_algorithms_enabled() == before[0]


# ----------------------------------------------------------------------------- the late-peak guard
def history_of(curves):
    """A history table from {(model, seed): validation curve}."""
    return pd.concat([pd.DataFrame({"model": model, "regime": "head", "seed": seed,
                                    "epoch": np.arange(1, len(curve) + 1), "val_metric": curve})
                      for (model, seed), curve in curves.items()], ignore_index=True)


def test_late_peaks_reads_histories_and_per_run_tables():
    rising = np.linspace(0.5, 0.9, 20)           # best at epoch 20 of 20: late
    plateau = np.r_[np.linspace(0.5, 0.9, 10), np.full(10, 0.9)]  # first best at epoch 10: fine
    history = history_of({("a", 0): rising, ("b", 0): plateau, ("c", 0): np.r_[rising[:-2], 0.95, 0.9]})
    late = late_peaks(history, tail=0.1)
    assert late.model.tolist() == ["a", "c"] and late.best_epoch.tolist() == [20, 19]
    # a run that stopped early is never late, even with a small patience
    table = pd.DataFrame({"model": ["a", "b", "c"], "best_epoch": [95, 95, 50], "epochs_run": [100, 98, 100],
                          "stopped_early": [False, True, False]})
    assert late_peaks(table).model.tolist() == ["a"]
    # with a cap instead of a stopped_early column, fewer epochs than the cap means stopped early
    assert late_peaks(table.drop(columns="stopped_early"), cap=100).model.tolist() == ["a"]
    with pytest.raises(ValueError, match="tail"):
        late_peaks(table, tail=1.5)
    with pytest.raises(ValueError, match="columns"):
        late_peaks(pd.DataFrame({"x": [1]}))


def test_check_converged_trips_on_too_many_late_peaks():
    curves = {("m", seed): np.linspace(0.5, 0.9, 10) for seed in range(2)}  # both still rising
    curves.update({("m", seed): np.r_[0.5, 0.9, np.full(8, 0.8)] for seed in range(2, 10)})
    with pytest.raises(NotConvergedError, match=r"2 of 10 runs \(20%\).*model=m, regime=head, seed=0") as caught:
        check_converged(history_of(curves))
    assert isinstance(caught.value, ValueError) and len(caught.value.runs) == 2


def test_check_converged_passes_within_the_allowed_fraction():
    curves = {("m", seed): np.r_[0.5, 0.9, np.full(8, 0.8)] for seed in range(10)}
    curves["m", 0] = np.linspace(0.5, 0.9, 10)  # one late peak of ten: 10 % is allowed
    flagged = check_converged(history_of(curves))
    assert flagged.seed.tolist() == [0] and flagged.reason.tolist() == ["late peak"]
    assert check_converged(history_of({("m", 1): curves["m", 1]})).empty


def test_check_converged_counts_solver_failures_of_the_convex_head():
    table = pd.DataFrame({"model": ["a", "b"], "regime": "head", "seed": 0,
                          "best_epoch": pd.array([None, None], dtype="Int64"),
                          "epochs_run": pd.array([None, None], dtype="Int64"),
                          "stopped_early": pd.array([None, None], dtype="boolean"), "l2": [1e-2, 1e-3],
                          "converged": pd.array([True, False], dtype="boolean")})
    with pytest.raises(NotConvergedError, match="model=b.*solver did not converge"):
        check_converged(table)
    assert check_converged(table.assign(converged=True)).empty


def test_late_peaks_reads_a_mapping_of_results():
    features, labels = blobs(seed=7)
    results = {seed: head_transfer(features, labels, features, labels, features, labels, num_classes=3, epochs=3,
                                   lr=1e-12, seed=seed) for seed in (0, 1)}  # no learning: best at epoch 1
    assert late_peaks(results).empty
    outcomes = {"x": {"best_epoch": 10, "epochs_run": 10, "stopped_early": False}}
    assert late_peaks(outcomes).run.tolist() == ["x"]
