"""Learning curves (nclib.learning_curves) and the overfitting measures read from them (nclib.overfitting)."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from nclib.learning_curves import (CurveRecorder, StopWhenMemorised, epochs_for_updates, learning_curves,
                                   record_schedule, top_learning_curves)
from nclib.overfitting import (bands_separate, curve_bands, mean_interval, nested_subsets,
                               paired_curve_difference, paired_difference_band, run_gaps,
                               score_gap_association, summarise)
from nclib.train import Callback, fit


pytestmark = pytest.mark.usefixtures("quiet_single_thread")  # tests/conftest.py


def seeded_mlp(width, hidden, num_classes, seed):
    """A two-layer MLP whose initialisation depends on ``seed`` only."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


def blobs(per_class=20, num_classes=3, width=4, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes), per_class)
    return (rng.normal(size=(len(labels), width)) + 2 * np.eye(num_classes, width)[labels]).astype(np.float32), labels


class TinyBackbone(nn.Module):
    """The trunk/top split of the zoo contract, with a batch-norm layer in the top."""

    def __init__(self):
        super().__init__()
        self.embedding_dim = 6
        self.top = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU())


# ----------------------------------------------------------------------------- recording
def test_curves_have_one_row_per_recorded_epoch_and_all_columns():
    x, y = blobs()
    data = {"train": (x, y), "test": blobs(seed=1)}
    curves = learning_curves(seeded_mlp(4, 8, 3, 0), x, y, data, epochs=7, lr=0.01, batch_size=16, seed=0,
                             record=record_schedule(7, 3))
    assert curves["epoch"].tolist() == [1, 3, 6, 7]
    assert curves.columns.tolist() == ["epoch", "train_loss", "train_accuracy", "train_cross_entropy",
                                       "test_accuracy", "test_cross_entropy"]
    assert curves["train_accuracy"].between(0, 1).all() and (curves["test_cross_entropy"] > 0).all()


def test_curves_repeat_exactly_with_a_seed_and_differ_between_seeds():
    x, y = blobs()
    data = {"train": (x, y), "val": blobs(seed=2)}

    def run(seed):
        return learning_curves(seeded_mlp(4, 8, 3, 0), x, y, data, epochs=5, lr=0.01, batch_size=8, seed=seed)

    pd.testing.assert_frame_equal(run(0), run(0))
    assert not run(0).equals(run(1))


def test_recording_does_not_change_training():
    """Evaluation draws no random numbers and leaves the network in training mode."""
    x, y = blobs()
    plain, recorded = seeded_mlp(4, 8, 3, 0), seeded_mlp(4, 8, 3, 0)
    fit(plain, x, y, epochs=4, lr=0.01, batch_size=8, seeds=[3])
    learning_curves(recorded, x, y, {"train": (x, y)}, epochs=4, lr=0.01, batch_size=8, seed=3)
    for a, b in zip(plain.parameters(), recorded.parameters()):
        assert torch.equal(a, b)


def test_random_labels_and_a_big_network_must_overfit():
    """Labels independent of the inputs: memorised (train accuracy 1), nothing learnt (test near chance)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 10)).astype(np.float32)
    y = rng.integers(0, 4, size=40)
    test = (rng.normal(size=(400, 10)).astype(np.float32), rng.integers(0, 4, size=400))
    curves = learning_curves(seeded_mlp(10, 256, 4, 0), x, y, {"train": (x, y), "test": test}, epochs=150,
                             lr=0.01, batch_size=20, seed=0, record=[1, 150])
    end = curves.iloc[-1]
    assert end["train_accuracy"] == 1.0
    assert abs(end["test_accuracy"] - 0.25) < 0.1
    curves["model"], curves["seed"], curves["val_accuracy"] = "mlp", 0, curves["test_accuracy"]
    gap = run_gaps(curves, keys=["model", "seed"])["gap_end"].item()
    assert gap > 0.6


def test_top_learning_curves_train_a_copy_of_the_top_on_the_chosen_rows():
    rng = np.random.default_rng(0)
    labels = {s: np.arange(n) % 3 for s, n in (("train", 30), ("val", 15), ("test", 15))}
    outputs = {s: (rng.normal(size=(len(y), 4)) + np.eye(3, 4)[y]).astype(np.float32) for s, y in labels.items()}
    model = TinyBackbone()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    kwargs = dict(num_classes=3, epochs=6, lr=0.01, batch_size=4, seed=0)
    curves = top_learning_curves(model, outputs, labels, np.arange(12), **kwargs)
    assert len(curves) == 6 and {"train_accuracy", "val_accuracy", "test_accuracy"} <= set(curves.columns)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name])  # the model is untouched
    pd.testing.assert_frame_equal(curves, top_learning_curves(model, outputs, labels, np.arange(12), **kwargs))
    with pytest.raises(ValueError, match="train_rows"):
        top_learning_curves(model, outputs, labels, np.array([0, 0, 1]), **kwargs)
    with pytest.raises(ValueError, match="missing"):
        top_learning_curves(model, {"train": outputs["train"]}, labels, np.arange(12), **kwargs)
    with pytest.raises(ValueError, match="top"):
        top_learning_curves(nn.Linear(4, 3), outputs, labels, np.arange(12), **kwargs)


def test_full_learning_curves_train_every_layer_of_a_copy():
    import copy

    from nclib.experiments.toy import ToyMlp
    from nclib.learning_curves import full_learning_curves
    from nclib.transfer import new_head

    rng = np.random.default_rng(0)
    labels = {s: np.arange(n) % 3 for s, n in (("train", 30), ("val", 15), ("test", 15))}
    inputs = {s: (rng.normal(size=(len(y), 8)) + np.eye(3, 8)[y]).astype(np.float32) for s, y in labels.items()}
    torch.manual_seed(0)
    model = ToyMlp(hidden=8, embedding_dim=4, num_classes=5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    kwargs = dict(num_classes=3, epochs=6, lr=0.01, batch_size=4, seed=0)
    curves = full_learning_curves(model, inputs, labels, np.arange(12), **kwargs)
    assert len(curves) == 6 and {"train_accuracy", "val_accuracy", "test_accuracy"} <= set(curves.columns)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name])  # the model is untouched
    pd.testing.assert_frame_equal(curves, full_learning_curves(model, inputs, labels, np.arange(12), **kwargs))
    # the same run with the backbone frozen (only the same new head trained) goes differently
    frozen = copy.deepcopy(model).requires_grad_(False)
    frozen.classifier = new_head(4, 3, seed=0)
    data = {"train": (inputs["train"][:12], labels["train"][:12]), "val": (inputs["val"], labels["val"]),
            "test": (inputs["test"], labels["test"])}
    head_only = learning_curves(frozen, *data["train"], data, epochs=6, lr=0.01, batch_size=4, seed=0)
    assert not np.allclose(curves["train_loss"], head_only["train_loss"])
    with pytest.raises(ValueError, match="train_rows"):
        full_learning_curves(model, inputs, labels, np.array([0, 0, 1]), **kwargs)
    with pytest.raises(ValueError, match="missing"):
        full_learning_curves(model, {"train": inputs["train"]}, labels, np.arange(12), **kwargs)
    with pytest.raises(ValueError, match="classifier"):
        full_learning_curves(nn.Linear(8, 3), inputs, labels, np.arange(12), **kwargs)


def test_schedules():
    assert record_schedule(10, 4) == [1, 4, 8, 10]
    assert epochs_for_updates(50, 32, 120) == 60  # batches of 32 and 18
    assert epochs_for_updates(33, 32, 10) == 10  # a trailing batch of one joins the previous one
    assert epochs_for_updates(100, 32, 120) == 40  # 32, 32 and 36: the trailing 4 joins too
    with pytest.raises(ValueError, match="every"):
        record_schedule(10, 0)
    with pytest.raises(ValueError, match="updates"):
        epochs_for_updates(50, 32, 0)


def test_recorder_rejects_bad_data_and_batched_networks():
    x, y = blobs()
    with pytest.raises(ValueError, match="non-empty mapping"):
        CurveRecorder({})
    with pytest.raises(ValueError, match="pair"):
        CurveRecorder({"train": x})
    with pytest.raises(ValueError, match="inputs"):
        CurveRecorder({"train": (x[:5], y)})
    with pytest.raises(ValueError, match="integer"):
        CurveRecorder({"train": (x, y.astype(float))})
    from nclib.train import LinearHeads

    heads = LinearHeads(torch.zeros(2, 4, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="one ordinary network"):
        fit(heads, x, y, epochs=1, lr=0.1, batch_size=8, seeds=[0, 1], callbacks=[CurveRecorder({"train": (x, y)})])


def test_stop_when_memorised_ends_training_after_the_first_epoch_without_errors():
    x, y = blobs(per_class=10)
    kwargs = dict(epochs=200, lr=0.05, batch_size=8, seed=0)
    # each epoch's training-pass errors, counted independently from the logits of every step
    errors = []

    class Count(Callback):
        def on_epoch_start(self, run):
            errors.append(0)

        def on_step_end(self, run, losses):
            errors[-1] += int((run.outputs.argmax(1) != run.targets).sum())

    every = learning_curves(seeded_mlp(4, 16, 3, 0), x, y, {"train": (x, y)}, **kwargs)
    fit(seeded_mlp(4, 16, 3, 0), x, y, epochs=200, lr=0.05, batch_size=8, seeds=[0], callbacks=[Count()])
    # the first epoch after which the network is right on every example, among those whose
    # training passes made at most one error (the only epochs the callback checks here)
    first = next(e for e in every["epoch"] if errors[e - 1] <= 1
                 and every.loc[every["epoch"] == e, "train_accuracy"].item() == 1.0)
    stopped = learning_curves(seeded_mlp(4, 16, 3, 0), x, y, {"train": (x, y)}, record=[200],
                              until_memorised=True, **kwargs)
    # the same run up to that epoch (recording changes nothing), recorded where it stopped
    assert stopped["epoch"].tolist() == [first] and stopped["memorised"].tolist() == [True]
    assert stopped["train_loss"].item() == every.loc[every["epoch"] == first, "train_loss"].item()
    assert stopped["train_accuracy"].item() == 1.0
    # labels no network can fit (two copies of one input, two classes): it runs to the cap
    twins = np.repeat(x[:1], 2, axis=0), np.array([0, 1])
    stop = StopWhenMemorised(*twins, tolerance=0)
    result = fit(seeded_mlp(4, 8, 2, 0), *twins, epochs=5, lr=0.05, batch_size=2, callbacks=[stop])
    assert stop.epoch is None and stop.errors == 1 and stop.checks == 0 and int(result.epochs_run[0]) == 5
    every_epoch = StopWhenMemorised(*twins, tolerance=2)  # checked after every epoch, never perfect
    fit(seeded_mlp(4, 8, 2, 0), *twins, epochs=5, lr=0.05, batch_size=2, callbacks=[every_epoch])
    assert every_epoch.checks == 5 and every_epoch.epoch is None
    capped = learning_curves(seeded_mlp(4, 8, 2, 0), *twins, {"train": twins}, epochs=5, lr=0.05,
                             batch_size=2, seed=0, record=[5], until_memorised=True)
    assert capped["epoch"].tolist() == [5] and capped["memorised"].tolist() == [False]
    from nclib.train import LinearHeads

    with pytest.raises(ValueError, match="one ordinary network"):
        fit(LinearHeads(torch.zeros(2, 4, 3), torch.zeros(2, 3)), x, y, epochs=1, lr=0.1, batch_size=8,
            seeds=[0, 1], callbacks=[StopWhenMemorised(x, y)])
    with pytest.raises(ValueError, match="inputs"):
        StopWhenMemorised(x[:5], y)
    with pytest.raises(ValueError, match="tolerance"):
        StopWhenMemorised(x, y, tolerance=-1)


# ----------------------------------------------------------------------------- gaps and intervals
def hand_curves():
    """Two models, two seeds, three epochs; model b overfits more and peaks earlier on validation."""
    rows = []
    for seed, shift in ((0, 0.0), (1, 0.02)):
        rows += [("a", seed, 1, 0.6, 0.5 + shift, 0.5), ("a", seed, 2, 0.9, 0.8 + shift, 0.78),
                 ("a", seed, 3, 1.0, 0.8 + shift, 0.8),
                 ("b", seed, 1, 0.8, 0.6 + shift, 0.6), ("b", seed, 2, 1.0, 0.7 + shift, 0.7),
                 ("b", seed, 3, 1.0, 0.65 + shift, 0.6)]
    curves = pd.DataFrame(rows, columns=["model", "seed", "epoch", "train_accuracy", "val_accuracy",
                                         "test_accuracy"])
    return curves.assign(size=5)


def test_run_gaps_on_hand_made_curves():
    gaps = run_gaps(hand_curves()).set_index(["model", "seed"])
    assert gaps.loc[("a", 0), "best_epoch"] == 2  # first epoch of the highest validation accuracy
    assert gaps.loc[("a", 0), "gap_best"] == pytest.approx(0.9 - 0.78)
    assert gaps.loc[("a", 0), "gap_end"] == pytest.approx(0.2)
    assert gaps.loc[("b", 1), "best_epoch"] == 2 and gaps.loc[("b", 1), "gap_end"] == pytest.approx(0.4)
    assert gaps.loc[("b", 1), "widening"] == pytest.approx(0.4 - 0.3)
    assert (gaps["last_epoch"] == 3).all()


def test_run_gaps_rejects_bad_tables():
    with pytest.raises(ValueError, match="lack the columns"):
        run_gaps(hand_curves().drop(columns="val_accuracy"))
    with pytest.raises(ValueError, match="several rows"):
        run_gaps(pd.concat([hand_curves(), hand_curves()]))
    with pytest.raises(ValueError, match="empty"):
        run_gaps(hand_curves().iloc[:0])


def test_mean_interval_and_summarise():
    mean, low, high = mean_interval([0.2, 0.2, 0.2])
    assert (mean, low, high) == pytest.approx((0.2, 0.2, 0.2))
    mean, low, high = mean_interval([0.0, 1.0] * 5, level=0.9)
    assert mean == 0.5 and 0.1 <= low < 0.5 < high <= 0.9
    table = summarise(run_gaps(hand_curves()), ["model"], ["gap_end", "widening"]).set_index(["model", "quantity"])
    assert table.loc[("b", "gap_end"), "mean"] == pytest.approx(0.4)
    assert table.loc[("a", "widening"), "n"] == 2
    with pytest.raises(ValueError, match="at least two"):
        mean_interval([0.3])
    with pytest.raises(ValueError, match="level"):
        mean_interval([0.1, 0.2], level=1.5)
    with pytest.raises(ValueError, match="lacks the columns"):
        summarise(run_gaps(hand_curves()), ["model"], ["nothing"])


def test_nested_subsets_are_nested_stratified_and_seeded():
    labels = np.arange(100) % 4
    subsets = nested_subsets(labels, [3, 10], num_classes=4, seed=1)
    assert np.bincount(labels[subsets[3]]).tolist() == [3] * 4
    assert np.isin(subsets[3], subsets[10]).all()
    again = nested_subsets(labels, [3, 10], num_classes=4, seed=1)
    assert all(np.array_equal(subsets[k], again[k]) for k in subsets)
    assert not np.array_equal(subsets[3], nested_subsets(labels, [3, 10], num_classes=4, seed=2)[3])
    with pytest.raises(ValueError, match="strictly increasing"):
        nested_subsets(labels, [10, 3], num_classes=4, seed=0)
    with pytest.raises(ValueError, match="fewer than"):
        nested_subsets(labels, [3, 30], num_classes=4, seed=0)


def test_score_gap_association_on_a_hand_made_pool():
    models = ["a", "b", "c", "d"]
    gaps = pd.DataFrame({"model": models * 3, "size": 5, "seed": np.repeat([0, 1, 2], 4),
                         "gap_end": [0.1, 0.2, 0.3, 0.4, 0.12, 0.22, 0.32, 0.42, 0.1, 0.25, 0.3, 0.45],
                         "test_best": [0.9, 0.8, 0.7, 0.6] * 3})
    follows = pd.DataFrame({"size": 5, "seed": gaps.seed, "model": gaps.model, "score": "logme",
                            "value": np.tile([1.0, 2.0, 3.0, 4.0], 3)})
    reverses = follows.assign(score="nc")  # lower is better: NC rates model a best
    row = score_gap_association(pd.concat([follows, reverses]), gaps).set_index("score")
    assert row.loc["logme", "tau"] == 1.0 and row.loc["logme", "p_value"] == pytest.approx(1 / 24)
    assert row.loc["logme", ["pick", "most", "best"]].tolist() == ["d", "d", "a"]
    assert row.loc["logme", "pick_is_most"] and row.loc["logme", "seeds_pick_is_most"] == 1.0
    assert row.loc["nc", "tau"] == -1.0 and row.loc["nc", "pick_is_best"] and row.loc["nc", "p_value"] == 1.0
    assert row.loc["logme", "low"] <= 1.0 <= row.loc["logme", "high"] + 1e-12
    refused = score_gap_association(follows.iloc[1:], gaps).iloc[0]  # seed 0 lacks model a's score
    assert refused["seeds"] == 2 and refused["tau"] == 1.0
    with pytest.raises(ValueError, match="two seeds"):
        score_gap_association(follows.iloc[1:].query("seed != 1"), gaps)
    with pytest.raises(ValueError, match="lack the columns"):
        score_gap_association(follows, gaps.drop(columns="test_best"))


def test_curve_bands_and_their_separation():
    bands = curve_bands(hand_curves())
    last = bands.query("epoch == 3").set_index("model")
    assert last.loc["a", ["mean", "low", "high", "n"]].tolist() == pytest.approx([0.8, 0.8, 0.8, 2])
    separate = bands_separate(bands, "a", "b")
    assert separate.tolist() == [False, True, True]
    assert bands_separate(bands, "b", "a").tolist() == [True, False, False]
    with pytest.raises(ValueError, match="lack the model"):
        bands_separate(bands, "a", "z")
    with pytest.raises(ValueError, match="one setting"):
        bands_separate(pd.concat([bands, bands]), "a", "b")


def _paired_curves(trend_per_epoch, offset, noise, epochs=(0, 4, 8, 12, 16, 20), seeds=5):
    """Two models' curves: ``a - b = offset + trend_per_epoch * epoch`` plus seed noise."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(seeds):
        base = rng.uniform(0.3, 0.6, size=len(epochs))  # shared by both models of a seed
        wobble = rng.normal(0.0, noise, size=len(epochs))
        for e, epoch in enumerate(epochs):
            rows.append(("b", seed, epoch, base[e]))
            rows.append(("a", seed, epoch, base[e] + offset + trend_per_epoch * epoch + wobble[e]))
    return pd.DataFrame(rows, columns=["model", "seed", "epoch", "test_accuracy"])


def test_paired_curve_difference_pairs_by_seed_and_finds_a_trend():
    # the shared per-seed level varies by 0.3 but cancels in the paired difference
    flat = paired_curve_difference(_paired_curves(0.0, 0.05, 0.002), "a", "b")
    assert flat["end_low"] > 0.04 and flat["end_high"] < 0.06
    assert flat["change_low"] < 0 < flat["change_high"]  # no trend: the interval holds zero
    assert flat["seeds"] == 5 and flat["late_epochs"] == 3  # epochs 12, 16 and 20
    rising = paired_curve_difference(_paired_curves(0.004, 0.0, 0.002), "a", "b")
    assert rising["change_low"] > 0
    assert rising["change"] == pytest.approx(0.004 * 8, abs=0.005)  # over epochs 12 to 20
    assert rising["end"] == pytest.approx(0.004 * 20, abs=0.005)
    # reversed order, reversed signs
    back = paired_curve_difference(_paired_curves(0.004, 0.0, 0.002), "b", "a")
    assert back["change"] == pytest.approx(-rising["change"])


def test_paired_curve_difference_refuses_what_it_cannot_compare():
    curves = _paired_curves(0.0, 0.05, 0.01)
    with pytest.raises(ValueError, match="lack the model 'c'"):
        paired_curve_difference(curves, "a", "c")
    with pytest.raises(ValueError, match="second half"):
        paired_curve_difference(curves.query("epoch <= 4"), "a", "b")
    with pytest.raises(ValueError, match="two seeds"):
        paired_curve_difference(curves.query("seed == 0"), "a", "b")
    with pytest.raises(ValueError, match="one setting"):
        paired_curve_difference(pd.concat([curves, curves]), "a", "b")
    with pytest.raises(ValueError, match="lack the column 'seed'"):
        paired_curve_difference(curves.drop(columns="seed"), "a", "b")


def test_paired_difference_band_ends_where_the_paired_difference_ends():
    curves = _paired_curves(0.004, 0.01, 0.002)
    band = paired_difference_band(curves, "a", "b")
    assert band["epoch"].tolist() == [0, 4, 8, 12, 16, 20] and (band["n"] == 5).all()
    assert (band["low"] <= band["mean"]).all() and (band["mean"] <= band["high"]).all()
    end = paired_curve_difference(curves, "a", "b")
    assert band.iloc[-1][["mean", "low", "high"]].tolist() == pytest.approx(
        [end["end"], end["end_low"], end["end_high"]])
    # the shared per-seed level (0.3 wide) cancels: the band is narrow and climbs
    assert (band["high"] - band["low"]).max() < 0.01
    assert band["mean"].iloc[0] == pytest.approx(0.01, abs=0.003)
    assert band["mean"].iloc[-1] == pytest.approx(0.09, abs=0.003)


def test_mean_interval_t_is_wider_than_the_bootstrap_with_five_seeds():
    # k-NN's last-stage case at 25 per class: all five differences positive, one large
    values = [0.008, 0.005, 0.012, 0.003, 0.056]
    mean, low, high = mean_interval(values)
    t_mean, t_low, t_high = mean_interval(values, method="t")
    assert t_mean == pytest.approx(mean)
    assert low > 0 > t_low  # the bootstrap excludes zero, Student's t does not
    assert t_high - t_low > high - low
    # a large sample: the two agree closely
    many = np.random.default_rng(0).normal(1.0, 2.0, size=400)
    boot, t = mean_interval(many), mean_interval(many, method="t")
    assert boot[1:] == pytest.approx(t[1:], abs=0.03)
    with pytest.raises(ValueError, match="method"):
        mean_interval(values, method="wald")
