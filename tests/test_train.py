"""Tests of nclib.train: the one training engine (fit), its checkpoints, seeds and callbacks."""

import numpy as np
import pytest
import torch
from torch import nn

from nclib.train import Callback, LinearHeads, Progress, Timing, fit, minibatches


pytestmark = pytest.mark.usefixtures("quiet_single_thread")  # tests/conftest.py


def blobs(num_classes=3, per_class=30, width=5, seed=0):
    """Overlapping Gaussian blobs: features (N, width) float32, labels (N,) int64."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes), per_class)
    means = rng.normal(size=(num_classes, width))
    return (means[labels] + rng.normal(size=(len(labels), width))).astype(np.float32), labels


def linear(width, num_classes, seed):
    """An nn.Linear whose initialisation depends on ``seed`` only."""
    generator = torch.Generator().manual_seed(seed)
    layer = nn.utils.skip_init(nn.Linear, width, num_classes)
    with torch.no_grad():
        layer.weight.copy_(torch.rand(num_classes, width, generator=generator) - 0.5)
        layer.bias.copy_(torch.rand(num_classes, generator=generator) - 0.5)
    return layer


def heads_accuracy(features, labels):
    """A ``validate`` for LinearHeads: each head's accuracy on (features, labels)."""
    x = torch.from_numpy(features)

    def validate(network):
        with torch.no_grad():
            return (network(x).argmax(2).numpy() == labels).mean(axis=1).tolist()
    return validate


class Scripted:
    """A ``validate`` returning prescribed scores, epoch by epoch: ``scores`` (epochs, S)."""

    def __init__(self, scores):
        self.scores = np.asarray(scores, dtype=float).reshape(len(scores), -1)
        self.calls = 0

    def __call__(self, network):
        self.calls += 1
        return self.scores[self.calls - 1].tolist()


class Snapshots(Callback):
    """The network's state after every epoch."""

    def __init__(self):
        self.states = []

    def on_epoch_end(self, run, outcome):
        self.states.append({k: v.detach().clone() for k, v in run.network.state_dict().items()})


# ----------------------------------------------------------------------------- seeds
def test_a_seed_trained_in_a_batch_equals_the_seed_trained_alone():
    train, labels = blobs(seed=1)
    val, val_labels = blobs(seed=2)
    common = dict(epochs=12, lr=0.05, batch_size=8, validate=heads_accuracy(val, val_labels), patience=3)
    together = fit(LinearHeads.from_linear([linear(5, 3, 0), linear(5, 3, 1)]), train, labels, seeds=[0, 1],
                   **common)
    alone = fit(LinearHeads.from_linear([linear(5, 3, 1)]), train, labels, seeds=[1], **common)
    assert together.best_epoch[1] == alone.best_epoch[0] and together.epochs_run[1] == alone.epochs_run[0]
    np.testing.assert_allclose(together.histories[1].train_loss, alone.histories[0].train_loss, rtol=1e-6)
    assert together.histories[1].val_metric.tolist() == alone.histories[0].val_metric.tolist()
    for name in ("weight", "bias"):
        np.testing.assert_allclose(together.state[name][1].numpy(), alone.state[name][0].numpy(), rtol=1e-5,
                                   atol=1e-6)
    # and the other seed really is a different run (its own order and initialisation)
    assert not np.allclose(together.histories[0].train_loss[:3], together.histories[1].train_loss[:3])



@pytest.mark.parametrize("batch_size", [1, 2, 3, 7, 32, 64])
def test_minibatches_cover_the_order_and_keep_no_tiny_trailing_batch(batch_size):
    for size in range(1, 5 * batch_size + 3):
        order = torch.randperm(size, generator=torch.Generator().manual_seed(size))
        batches = minibatches(order, batch_size)
        assert torch.equal(torch.cat(batches), order)  # every example once, in order
        assert all(len(b) == batch_size for b in batches[:-1])
        last, most = len(batches[-1]), batch_size + max(1, (batch_size - 1) // 2)
        assert last <= most
        if len(batches) > 1:  # a trailing batch of one, or of under half a batch, joined
            assert last != 1 and 2 * last >= batch_size
    # the case that stopped full fine-tuning from fitting 100 images: 32, 32, 32 and 4
    assert [len(b) for b in minibatches(torch.arange(100), 32)] == [32, 32, 36]

def test_each_seed_draws_its_own_minibatch_order():
    seen = []

    class Spy(nn.Module):
        seed_axis, num_seeds = True, 2

        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(2, 1, 2))

        def forward(self, x):
            seen.append(x[..., 0].clone())
            return torch.baddbmm(torch.zeros(1, 1, 2), x, self.weight)

    inputs = np.arange(10, dtype=np.float32)[:, None]
    fit(Spy(), inputs, np.zeros(10, dtype=int), epochs=1, lr=0.1, batch_size=10, seeds=[3, 4])
    for k, seed in enumerate([3, 4]):
        expected = torch.randperm(10, generator=torch.Generator().manual_seed(seed)).float()
        assert torch.equal(seen[0][k], expected)


# ----------------------------------------------------------------------------- checkpoints and patience
def test_the_best_checkpoint_is_restored():
    train, labels = blobs()
    network, snapshots = nn.Linear(5, 3), Snapshots()
    scores = [0.2, 0.6, 0.5, 0.6, 0.1]  # the first epoch reaching the best (0.6) is kept: epoch 2
    result = fit(network, train, labels, epochs=5, lr=0.05, batch_size=16, validate=Scripted(scores),
                 callbacks=[snapshots])
    assert result.best_epoch.tolist() == [2] and result.best_metric.tolist() == [0.6]
    assert result.epochs_run.tolist() == [5] and not result.stopped_early[0]
    kept = snapshots.states[1]
    assert not torch.equal(kept["weight"], snapshots.states[-1]["weight"])
    for name, tensor in network.state_dict().items():
        assert torch.equal(tensor, kept[name]) and torch.equal(result.state[name], kept[name])


def test_without_validation_the_last_state_is_kept():
    train, labels = blobs()
    network, snapshots = nn.Linear(5, 3), Snapshots()
    result = fit(network, train, labels, epochs=3, lr=0.05, batch_size=16, callbacks=[snapshots])
    assert result.best_epoch.tolist() == [3] and np.isnan(result.best_metric).all()
    assert torch.equal(network.weight, snapshots.states[-1]["weight"])
    assert result.histories[0].val_metric.isna().all()


def test_patience_stops_after_that_many_epochs_without_improvement():
    train, labels = blobs()
    scores = [0.2, 0.6, 0.5, 0.6, 0.7, 0.9, 0.9]
    validate = Scripted(scores)
    result = fit(nn.Linear(5, 3), train, labels, epochs=7, lr=0.05, batch_size=16, validate=validate, patience=2)
    assert result.epochs_run.tolist() == [4] and result.stopped_early.tolist() == [True]
    assert result.best_epoch.tolist() == [2] and validate.calls == 4
    assert result.histories[0].epoch.tolist() == [1, 2, 3, 4]
    # the same scores with a larger patience run to the cap, not stopped early
    capped = fit(nn.Linear(5, 3), train, labels, epochs=7, lr=0.05, batch_size=16, validate=Scripted(scores),
                 patience=3)
    assert capped.epochs_run.tolist() == [7] and capped.stopped_early.tolist() == [False]
    assert capped.best_epoch.tolist() == [6]


def test_batched_seeds_stop_and_keep_checkpoints_each_on_their_own():
    train, labels = blobs()
    scores = [[0.1, 0.1], [0.5, 0.2], [0.4, 0.3], [0.4, 0.4], [0.9, 0.5], [0.9, 0.6]]
    heads, snapshots = LinearHeads.from_linear([linear(5, 3, 0), linear(5, 3, 1)]), Snapshots()
    result = fit(heads, train, labels, epochs=6, lr=0.05, batch_size=16, seeds=[0, 1], validate=Scripted(scores),
                 patience=2, callbacks=[snapshots])
    assert result.best_epoch.tolist() == [2, 6] and result.epochs_run.tolist() == [4, 6]
    assert result.stopped_early.tolist() == [True, False]
    assert [len(h) for h in result.histories] == [4, 6]  # seed 0's history ends when it stops
    for k, epoch in enumerate([2, 6]):
        kept = snapshots.states[epoch - 1]
        for name in ("weight", "bias"):
            assert torch.equal(heads.state_dict()[name][k], kept[name][k])
            assert torch.equal(result.state[name][k], kept[name][k])


# ----------------------------------------------------------------------------- global state
def test_fit_leaves_the_global_random_state_unchanged_and_repeats_exactly():
    train, labels = blobs()

    def run(global_seed):
        torch.manual_seed(global_seed)
        before = torch.get_rng_state()
        network = nn.Sequential(linear(5, 8, 0), nn.Dropout(0.5), linear(8, 3, 1))  # dropout draws
        result = fit(network, train, labels, epochs=3, lr=0.05, batch_size=16, seeds=[7])
        assert torch.equal(torch.get_rng_state(), before)
        return result

    first, other_global = run(0), run(123)
    assert first.histories[0].equals(other_global.histories[0])  # dropout draws from the seed, not the caller
    assert all(torch.equal(first.state[k], other_global.state[k]) for k in first.state)


def test_fit_restores_the_deterministic_flags():
    before = torch.are_deterministic_algorithms_enabled()
    seen = []

    class Spy(Callback):
        def on_step_end(self, run, losses):
            seen.append(torch.are_deterministic_algorithms_enabled())

    train, labels = blobs()
    fit(nn.Linear(5, 3), train, labels, epochs=1, lr=0.05, batch_size=30, callbacks=[Spy()])
    assert seen and all(seen) and torch.are_deterministic_algorithms_enabled() == before


# ----------------------------------------------------------------------------- callbacks
class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_fit_start(self, run):
        self.events.append("fit_start")

    def on_epoch_start(self, run):
        self.events.append(f"epoch_start {run.epoch}")

    def on_step_start(self, run):
        self.events.append("step_start")

    def on_step_end(self, run, losses):
        assert losses.shape == (1,) and run.step >= 1
        self.events.append(f"step_end {run.batch_size}")

    def on_epoch_end(self, run, outcome):
        assert outcome.train_loss.shape == (1,) and outcome.recorded.tolist() == [True]
        self.events.append(f"epoch_end {outcome.epoch}")

    def on_fit_end(self, run):
        self.events.append("fit_end")


def test_callbacks_are_called_in_order():
    train, labels = blobs(per_class=3)  # 9 examples: batches of 4 and 5 (a trailing single joins)
    recorder = Recorder()
    fit(nn.Linear(5, 3), train, labels, epochs=2, lr=0.05, batch_size=4, callbacks=[recorder, Progress("test")])
    epoch = ["step_start", "step_end 4", "step_start", "step_end 5"]
    assert recorder.events == ["fit_start", "epoch_start 1", *epoch, "epoch_end 1", "epoch_start 2", *epoch,
                               "epoch_end 2", "fit_end"]


def test_fit_end_is_called_when_training_diverges():
    train, labels = blobs()
    network = nn.Linear(5, 3)
    with torch.no_grad():
        network.weight.fill_(float("nan"))
    recorder = Recorder()
    with pytest.raises(ValueError, match="diverged at epoch 1"):
        fit(network, train, labels, epochs=3, lr=0.05, batch_size=16, callbacks=[recorder])
    assert recorder.events[-1] == "fit_end" and "epoch_end 1" not in recorder.events


def test_history_and_timing_callbacks():
    train, labels = blobs()
    timing = Timing()
    result = fit(nn.Linear(5, 3), train, labels, epochs=3, lr=0.05, batch_size=30, callbacks=[timing])
    history = result.histories[0]
    assert history.epoch.tolist() == [1, 2, 3] and history.train_loss.iloc[-1] < history.train_loss.iloc[0]
    assert len(timing.step_seconds) == 9 and timing.step_examples == [30] * 9 and len(timing.epoch_seconds) == 3
    assert all(s > 0 for s in timing.step_seconds) and timing.seconds_per_example(skip=1) > 0
    stopper = Timing(max_steps=4)  # stops inside the second epoch: it is neither validated nor recorded
    validate = Scripted([[0.5]] * 3)
    stopped = fit(nn.Linear(5, 3), train, labels, epochs=3, lr=0.05, batch_size=30, validate=validate,
                  callbacks=[stopper])
    assert len(stopper.step_seconds) == 4 and stopped.epochs_run.tolist() == [1] and validate.calls == 1


def test_the_engine_matches_a_plain_torch_loop():
    train, labels = blobs(per_class=16, width=4, seed=6)
    result = fit(linear(4, 3, 5), train, labels, epochs=3, lr=0.02, batch_size=16, seeds=[11])
    reference = linear(4, 3, 5)
    optimizer = torch.optim.Adam(reference.parameters(), lr=0.02, fused=True)  # fit's kernel on CPU
    order = torch.Generator().manual_seed(11)
    x, y = torch.from_numpy(train), torch.from_numpy(labels)
    for _ in range(3):
        for batch in minibatches(torch.randperm(len(y), generator=order), 16):
            optimizer.zero_grad()
            nn.functional.cross_entropy(reference(x[batch]), y[batch]).backward()
            optimizer.step()
    assert all(torch.equal(result.state[k], v) for k, v in reference.state_dict().items())


@pytest.mark.parametrize("change, message", [
    (dict(epochs=0), "epochs"),
    (dict(lr=float("nan")), "lr"),
    (dict(batch_size=0), "batch_size"),
    (dict(seeds=[]), "seeds"),
    (dict(seeds=[1, 1]), "seeds"),
    (dict(seeds=[0, 1]), "one seed"),
    (dict(patience=2), "validate"),
    (dict(labels=np.zeros(3, dtype=int)), "must be"),
    (dict(validate=lambda network: [0.5, 0.5]), "2 scores for 1 seeds"),
])
def test_fit_refuses_bad_settings(change, message):
    train, labels = blobs()
    arguments = dict(inputs=train, labels=labels, epochs=2, lr=0.1, batch_size=8)
    arguments.update(change)
    with pytest.raises(ValueError, match=message):
        fit(nn.Linear(5, 3), **arguments)
    with pytest.raises(ValueError, match="holds 2 models"):
        fit(LinearHeads(torch.zeros(2, 5, 3), torch.zeros(2, 3)), train, labels, epochs=1, lr=0.1, batch_size=8,
            seeds=[0])


def test_the_engine_sits_below_the_experiments():
    # engine layer (see the design's layer table): it may import the leaves, the models
    # and torch, never the experiments, the presentation or the transfer regimes built on it
    import ast
    from pathlib import Path

    import nclib.train

    tree = ast.parse(Path(nclib.train.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    own = {name for name in imported if name.startswith("nclib")}
    allowed = ("nclib.progress", "nclib._validation", "nclib._io", "nclib.seed", "nclib.config", "nclib.models")
    assert own and all(name.startswith(allowed) for name in own), own
