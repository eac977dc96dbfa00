"""The four neural-collapse properties, the live training demo and pooled layer activations."""

import numpy as np
import pytest

from nclib.collapse import (PROPERTIES, collapse_properties, collapse_trajectory, layer_embeddings,
                            nc1_variability, nc2_equiangularity, nc2_equinorm, nc2_max_angle,
                            nc3_self_duality, nc4_ncc_disagreement)

NC12 = {"nc1_variability": nc1_variability, "nc2_equinorm": nc2_equinorm,
        "nc2_equiangularity": nc2_equiangularity, "nc2_max_angle": nc2_max_angle}


def simplex_etf(num_classes, dim, rng, scale=3.0):
    """C vectors in R^dim of equal norm with pairwise cosines -1/(C-1), randomly rotated: (C, dim)."""
    centred = np.eye(num_classes) - 1.0 / num_classes
    frame = np.zeros((num_classes, dim))
    frame[:, :num_classes] = centred
    rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    return scale * frame @ rotation


def collapsed(num_classes=6, dim=10, per_class=25, noise=1e-6, seed=0):
    rng = np.random.default_rng(seed)
    means = simplex_etf(num_classes, dim, rng)
    labels = np.repeat(np.arange(num_classes), per_class)
    offset = rng.normal(size=dim)  # a global mean away from the origin changes nothing
    features = offset + means[labels] + noise * rng.normal(size=(len(labels), dim))
    return features, labels, means


def random_case(num_classes=5, dim=16, n=400, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, dim)), rng.integers(0, num_classes, n),
            rng.normal(size=(num_classes, dim)), rng.normal(size=num_classes))


def test_simplex_etf_construction_is_one():
    means = simplex_etf(5, 8, np.random.default_rng(0))
    norms = np.linalg.norm(means, axis=1)
    cosines = (means @ means.T) / np.outer(norms, norms)
    assert np.allclose(norms, norms[0])
    assert np.allclose(cosines[np.triu_indices(5, 1)], -1 / 4)


def test_collapsed_simplex_gives_zero_for_every_property():
    features, labels, means = collapsed()
    properties = collapse_properties(features, labels, weights=means)
    assert list(properties) == list(PROPERTIES)
    assert properties["nc1_variability"] < 1e-10
    for name in ("nc2_equinorm", "nc2_equiangularity", "nc2_max_angle", "nc3_self_duality"):
        assert properties[name] < 1e-5, name
    assert properties["nc4_ncc_disagreement"] == 0.0
    # the single-property functions give the same values
    for name, function in NC12.items():
        assert function(features, labels) == pytest.approx(properties[name], rel=1e-9, abs=1e-15)
    assert nc3_self_duality(features, labels, means) == pytest.approx(properties["nc3_self_duality"])
    assert nc4_ncc_disagreement(features, labels, means) == 0.0


def test_random_features_are_far_from_collapse():
    features, labels, weights, bias = random_case()
    properties = collapse_properties(features, labels, weights, bias)
    assert properties["nc1_variability"] > 1.0  # means of noise: Sigma_B is tiny next to Sigma_W
    assert properties["nc2_equinorm"] > 0.02
    assert properties["nc2_equiangularity"] > 0.05
    assert properties["nc2_max_angle"] > 0.05
    assert properties["nc3_self_duality"] > 0.5
    assert properties["nc4_ncc_disagreement"] > 0.3


def test_nc1_matches_the_pseudo_inverse_formula():
    rng = np.random.default_rng(2)
    for num_classes, dim, n in [(2, 1, 30), (3, 8, 90), (10, 4, 300), (7, 40, 200)]:
        labels = rng.integers(0, num_classes, n)
        features = rng.normal(size=(n, dim)) + rng.normal(size=(num_classes, dim))[labels]
        means = np.array([features[labels == c].mean(0) for c in range(num_classes)])
        residual = features - means[labels]
        within = residual.T @ residual / n
        centred = means - features.mean(0)
        between = centred.T @ centred / num_classes
        expected = np.trace(within @ np.linalg.pinv(between)) / num_classes
        assert nc1_variability(features, labels) == pytest.approx(expected, rel=1e-9)


def test_nc2_hand_computed():
    # three one-sample classes whose global mean is the origin: the rows are the centred means
    features = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, -2.0]])
    norms = np.linalg.norm(features, axis=1)  # the global mean is 0
    assert nc2_equinorm(features, [0, 1, 2]) == pytest.approx(norms.std() / norms.mean())
    cosines = np.array([0.0, -1 / np.sqrt(5), -4 / np.sqrt(20)])
    assert nc2_equiangularity(features, [0, 1, 2]) == pytest.approx(cosines.std())
    assert nc2_max_angle(features, [0, 1, 2]) == pytest.approx(np.abs(cosines + 0.5).mean())


def test_two_classes_are_always_equiangular_and_simplex():
    # two centred means are always opposite: cosine -1 = -1/(C-1)
    rng = np.random.default_rng(3)
    labels = np.repeat([0, 1], 10)
    features = rng.normal(size=(20, 4))
    assert nc2_equiangularity(features, labels) == 0.0
    assert nc2_max_angle(features, labels) == pytest.approx(0, abs=1e-12)


def test_nc3_orientation_and_scale():
    features, labels, means = collapsed(noise=0.0)
    assert nc3_self_duality(features, labels, 0.01 * means) == pytest.approx(0, abs=1e-12)
    # weights in the wrong class order are far from self-dual
    shuffled = means[np.roll(np.arange(len(means)), 1)]
    assert nc3_self_duality(features, labels, shuffled) > 1.0
    assert nc3_self_duality(features, labels, -means) == pytest.approx(2.0)


def test_nc4_bias_and_disagreement():
    features, labels, means = collapsed(noise=0.0)
    assert nc4_ncc_disagreement(features, labels, means) == 0.0
    # a huge bias for class 0 makes the classifier say 0 everywhere: 5/6 disagree
    bias = np.zeros(len(means))
    bias[0] = 1e6
    assert nc4_ncc_disagreement(features, labels, means, bias) == pytest.approx(5 / 6)
    # disagreement ignores whether either rule is right: reversed weights disagree on all
    assert nc4_ncc_disagreement(features, labels, -means) == 1.0


@pytest.mark.parametrize("name", list(NC12))
def test_nc1_nc2_invariances(name):
    function = NC12[name]
    features, labels, _, _ = random_case(seed=4)
    rng = np.random.default_rng(5)
    base = function(features, labels)
    rotation, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    assert function(features @ rotation, labels) == pytest.approx(base, rel=1e-9)
    assert function(1e-3 * features, labels) == pytest.approx(base, rel=1e-9)
    assert function(250.0 * features, labels) == pytest.approx(base, rel=1e-9)
    assert function(features + 40.0, labels) == pytest.approx(base, rel=1e-7)
    renamed = np.array(list("vwxyz"))[labels]
    assert function(features, renamed) == pytest.approx(base, rel=1e-12)
    order = rng.permutation(len(labels))
    assert function(features[order], labels[order]) == pytest.approx(base, rel=1e-9)


def test_nc3_nc4_invariances():
    features, labels, weights, bias = random_case(seed=6)
    rng = np.random.default_rng(7)
    rotation, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    base3 = nc3_self_duality(features, labels, weights)
    base4 = nc4_ncc_disagreement(features, labels, weights, bias)
    # rotate the features and the weights together
    assert nc3_self_duality(features @ rotation, labels, weights @ rotation) == pytest.approx(base3, rel=1e-9)
    assert nc4_ncc_disagreement(features @ rotation, labels, weights @ rotation, bias) == base4
    # scale weights (and bias with them) or features: no change
    assert nc3_self_duality(3.0 * features, labels, 0.2 * weights) == pytest.approx(base3, rel=1e-9)
    assert nc4_ncc_disagreement(features, labels, 0.2 * weights, 0.2 * bias) == base4


def test_string_labels_match_weight_rows_in_sorted_order():
    features, labels, means = collapsed()
    names = np.array(["cat", "dog", "eel", "fox", "gnu", "hen"])  # already sorted
    assert nc3_self_duality(features, names[labels], means) < 1e-5
    reversed_names = names[::-1][labels]  # class 0 is now "hen", the last row
    assert nc3_self_duality(features, reversed_names, means[::-1]) < 1e-5


def test_imbalanced_classes():
    rng = np.random.default_rng(8)
    means = simplex_etf(3, 5, rng)
    labels = np.repeat([0, 1, 2], [50, 10, 3])
    features = means[labels] + 1e-7 * rng.normal(size=(63, 5))
    properties = collapse_properties(features, labels, means)
    # the global mean is the sample mean, so imbalance moves it off the simplex centre:
    # NC2 sees unequal centred norms, NC1 and NC4 still see a collapse
    assert properties["nc1_variability"] < 1e-10
    assert properties["nc4_ncc_disagreement"] == 0.0
    assert properties["nc2_equinorm"] > 0.1


def test_without_weights_nc3_nc4_are_nan():
    features, labels, _ = collapsed()
    properties = collapse_properties(features, labels)
    assert np.isnan(properties["nc3_self_duality"]) and np.isnan(properties["nc4_ncc_disagreement"])
    assert not np.isnan(properties["nc1_variability"])


@pytest.mark.parametrize("call, message", [
    (lambda f, y, w: nc1_variability(f[:, :, None], y), "2-D|shape"),
    (lambda f, y, w: nc1_variability(f, y[:-1]), "labels have"),
    (lambda f, y, w: nc1_variability(f, np.zeros_like(y)), "at least two classes"),
    (lambda f, y, w: nc1_variability(np.where(np.arange(f.size).reshape(f.shape) == 7, np.nan, f), y), "NaN"),
    (lambda f, y, w: nc1_variability(np.zeros_like(f), y), "coincide"),
    (lambda f, y, w: nc3_self_duality(f, y, w[:-1]), r"shape \(C, D\)"),
    (lambda f, y, w: nc3_self_duality(f, y, w.T), r"shape \(C, D\)"),
    (lambda f, y, w: nc3_self_duality(f, y, np.zeros_like(w)), "all zero"),
    (lambda f, y, w: nc4_ncc_disagreement(f, y, np.where(w > 0, np.inf, w)), "NaN or inf"),
    (lambda f, y, w: nc4_ncc_disagreement(f, y, w, bias=np.zeros(3)), r"bias must have shape"),
    (lambda f, y, w: nc4_ncc_disagreement(f, y, w, bias=np.full(len(w), np.nan)), "bias contains"),
    (lambda f, y, w: collapse_properties(f, y, bias=np.zeros(len(w))), "bias was given without weights"),
    (lambda f, y, w: collapse_properties(f, y, w[:, :-1]), r"shape \(C, D\)"),
])
def test_bad_input(call, message):
    features, labels, means = collapsed()
    with pytest.raises(ValueError, match=message):
        call(features, labels, means)


def test_class_mean_at_the_global_mean_has_no_angle():
    features = np.array([[-1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="equals the global mean"):
        nc2_equiangularity(features, [0, 1, 2])
    with pytest.raises(ValueError, match="equals the global mean"):
        nc2_equinorm(features, [0, 1, 2])


# ---- the live demonstration ------------------------------------------------------

def test_trajectory_records_every_property_and_collapses():
    import torch

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 30)
    inputs = rng.normal(size=(90, 6)) + 3 * np.eye(3, 6)[labels]
    state = torch.random.get_rng_state()
    history, snapshots = collapse_trajectory(inputs, labels, epochs=40, hidden=32, embedding_dim=8,
                                             lr=1e-2, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator is untouched
    assert list(history.columns) == ["epoch", "train_loss", "train_accuracy", *PROPERTIES, "nc"]
    assert history[list(PROPERTIES)].notna().all().all()
    first, last = history.iloc[0], history.iloc[-1]
    assert last.train_accuracy == 1.0
    assert last.nc1_variability < 0.2 * first.nc1_variability
    assert last.nc3_self_duality < first.nc3_self_duality
    assert last.nc4_ncc_disagreement <= first.nc4_ncc_disagreement
    # NC1 and NC2 of the last snapshot are the recorded ones
    recomputed = collapse_properties(snapshots[40], labels)
    for name in ("nc1_variability", "nc2_equinorm", "nc2_equiangularity", "nc2_max_angle"):
        assert recomputed[name] == pytest.approx(last[name], rel=1e-9)
    again, _ = collapse_trajectory(inputs, labels, epochs=40, hidden=32, embedding_dim=8, lr=1e-2, seed=3)
    assert again.equals(history)


# ---- pooled activations of named layers ------------------------------------------

def tiny_cnn():
    import torch

    generator = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.Conv2d(4, 6, 3), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(6, 3),
    )
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.copy_(torch.rand(parameter.shape, generator=generator) - 0.5)
    return net


def test_layer_embeddings_pool_the_hooked_outputs():
    import torch

    net = tiny_cnn()
    net.train()
    images = np.random.default_rng(9).normal(size=(11, 1, 7, 7)).astype(np.float32)
    pooled = layer_embeddings(net, images, ["2", "4", "7"], batch_size=4)
    assert list(pooled) == ["2", "4", "7"]
    assert net.training  # the mode is restored
    assert all(not module._forward_hooks for module in net.modules())  # the hooks are gone
    net.eval()
    with torch.no_grad():
        x = torch.as_tensor(images)
        after_relu = net[:3](x)
        after_conv = net[:5](x)
        logits = net(x)
    assert pooled["2"].shape == (11, 4) and pooled["2"].dtype == np.float64
    np.testing.assert_allclose(pooled["2"], after_relu.mean((2, 3)).numpy(), rtol=1e-6)
    np.testing.assert_allclose(pooled["4"], after_conv.mean((2, 3)).numpy(), rtol=1e-6)
    np.testing.assert_allclose(pooled["7"], logits.numpy(), rtol=1e-6)
    # the batch size changes nothing
    whole = layer_embeddings(net, images, ["4"], batch_size=100)
    np.testing.assert_allclose(whole["4"], pooled["4"], rtol=1e-6)


def test_layer_embeddings_bad_input():
    net = tiny_cnn()
    images = np.zeros((2, 1, 7, 7), dtype=np.float32)
    with pytest.raises(ValueError, match="unknown layer 'conv9'"):
        layer_embeddings(net, images, ["conv9"])
    with pytest.raises(ValueError, match="at least one layer"):
        layer_embeddings(net, images, [])
    with pytest.raises(ValueError, match="repeat"):
        layer_embeddings(net, images, ["1", "1"])
    with pytest.raises(ValueError, match="batch_size"):
        layer_embeddings(net, images, ["1"], batch_size=0)
    with pytest.raises(ValueError, match="at least one example"):
        layer_embeddings(net, images[:0], ["1"])
    assert all(not module._forward_hooks for module in net.modules())


def test_layer_embeddings_refuse_outputs_that_are_not_batched_tensors():
    import torch

    class Pair(torch.nn.Module):
        def forward(self, x):
            return x, x

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pair = Pair()

        def forward(self, x):
            return self.pair(x)[0]

    net = Net()
    with pytest.raises(ValueError, match="layer 'pair' returns tuple"):
        layer_embeddings(net, np.zeros((3, 2), dtype=np.float32), ["pair"])
    assert not net.pair._forward_hooks
