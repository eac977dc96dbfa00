"""Neural collapse at several depths: fitted heads, layer depths, depth profiles and their cache.

The four properties themselves (a simplex ETF gives 0 for each, random Gaussian features
stay far from 0, hand-computed values, invariances, bad input) are tested in
``tests/test_collapse.py``; this file adds what the depth analysis brings: the same two
extreme cases with a *fitted* logistic head as the classifier, ``":input"`` layers, the
relative depth of a layer, the per-layer table, its cache, and the layers named for the
pre-trained image zoo.
"""

import numpy as np
import pandas as pd
import pytest
import torch

from nclib.cache import Cache
from nclib.collapse import (DEPTH_COLUMNS, PROPERTIES, cached_depth_profile, collapse_properties, depth_profile,
                            fitted_head_properties, layer_depths, layer_embeddings)
from nclib.models.pretrained_image import NETWORKS
from nclib.network_depths import DEPTH_STRIDES, depth_layers


def simplex_samples(num_classes=5, per_class=30, noise=1e-6, rotate=False, seed=0):
    """Samples on the vertices of a simplex ETF (centred one-hot vectors), optionally rotated."""
    rng = np.random.default_rng(seed)
    frame = 4.0 * (np.eye(num_classes) - 1.0 / num_classes)
    if rotate:
        rotation, _ = np.linalg.qr(rng.normal(size=(num_classes, num_classes)))
        frame = frame @ rotation
    labels = np.repeat(np.arange(num_classes), per_class)
    return frame[labels] + noise * rng.normal(size=(len(labels), num_classes)), labels, frame


# ---- the four properties with a fitted head -------------------------------------------

@pytest.mark.parametrize("standardize, rotate", [(False, True), (True, False)])
def test_fitted_head_on_a_simplex_etf_is_fully_collapsed(standardize, rotate):
    # By the simplex's symmetry the unique optimum of the penalised logistic regression
    # has its weight rows along the centred means: NC3 is 0 for the fitted head too.
    # Standardising keeps the geometry only when every column has the same spread
    # (the unrotated frame), so the rotated case is measured in the raw space.
    features, labels, _ = simplex_samples(rotate=rotate)
    result = fitted_head_properties(features, labels, standardize=standardize)
    assert result["head_converged"] and result["head_accuracy"] == 1.0
    assert result["nc1_variability"] < 1e-10
    for name in ("nc2_equinorm", "nc2_equiangularity", "nc2_max_angle"):
        assert result[name] < 1e-5, name
    assert result["nc3_self_duality"] < 1e-4
    assert result["nc4_ncc_disagreement"] == 0.0
    assert result["nc"] < 1e-5


def test_fitted_head_on_random_gaussian_features_is_far_from_collapse():
    # correlated Gaussian noise with no class signal: the best linear rule is far from
    # the class means (W ~ Sigma^-1 M) and from the nearest-mean rule
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(4), 75)
    mixing = rng.normal(size=(20, 20)) * np.geomspace(0.1, 10, 20)[:, None]
    features = rng.normal(size=(300, 20)) @ mixing
    result = fitted_head_properties(features, labels)
    assert result["head_converged"] and result["head_accuracy"] < 0.5
    assert result["nc1_variability"] > 10.0
    assert result["nc2_equinorm"] > 0.1 and result["nc2_equiangularity"] > 0.3 and result["nc2_max_angle"] > 0.3
    assert result["nc3_self_duality"] > 1.0
    assert result["nc4_ncc_disagreement"] > 0.3
    assert result["nc"] > 1.0


def test_a_fitted_head_can_look_self_dual_without_collapse():
    # What NC3 of a fitted head cannot tell: with isotropic within-class noise the best
    # linear rule points along the class means anyway, and a strong penalty turns any
    # head towards them (the gradient at W = 0 has the centred means as its rows).
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(4), 75)
    features = rng.normal(size=(300, 20))
    weak = fitted_head_properties(features, labels, l2=1e-3)
    strong = fitted_head_properties(features, labels, l2=1e3)
    assert weak["nc1_variability"] > 1.0 and weak["nc3_self_duality"] < 0.4
    assert strong["nc3_self_duality"] < 1e-3 < weak["nc3_self_duality"]


def test_fitted_head_properties_are_those_of_the_standardised_features_with_the_fitted_head():
    from nclib.logistic import fit_logistic, standardizer

    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1, 2], 25)
    features = 3 * np.eye(3, 6)[labels] + rng.normal(size=(75, 6)) * [1, 2, 3, 4, 5, 6] + 10
    result = fitted_head_properties(features, labels, l2=0.01)
    mean, scale = standardizer(features)
    standardised = (features - mean) / scale
    fit = fit_logistic(standardised, labels, num_classes=3, l2=0.01)
    expected = collapse_properties(standardised, labels, fit["weight"].T, fit["bias"])
    for name in PROPERTIES:
        assert result[name] == pytest.approx(expected[name], rel=1e-9, abs=1e-12), name
    assert result["l2"] == 0.01
    # the default strength is 1 / N, and the NC score reads the raw features
    from nclib.scores.nc import nc_score

    default = fitted_head_properties(features, labels)
    assert default["l2"] == pytest.approx(1 / 75)
    assert default["nc"] == pytest.approx(nc_score(features, labels))


def test_fitted_head_properties_keep_string_labels_in_sorted_order():
    features, labels, _ = simplex_samples(num_classes=3, rotate=False)
    names = np.array(["cat", "dog", "eel"])[labels]
    assert fitted_head_properties(features, names) == pytest.approx(fitted_head_properties(features, labels))


@pytest.mark.parametrize("call, message", [
    (lambda f, y: fitted_head_properties(f, y, l2=0.0), "l2 must be a positive number"),
    (lambda f, y: fitted_head_properties(f, y, l2=float("nan")), "l2 must be a positive number"),
    (lambda f, y: fitted_head_properties(f[:, :, None], y), "2-D|shape"),
    (lambda f, y: fitted_head_properties(f, y[:-1]), "labels have"),
    (lambda f, y: fitted_head_properties(f, np.zeros_like(y)), "at least two classes"),
    (lambda f, y: fitted_head_properties(f[:-29], y[:-29]), "at least 2"),
])
def test_fitted_head_properties_bad_input(call, message):
    features, labels, _ = simplex_samples(num_classes=3)
    with pytest.raises(ValueError, match=message):
        call(features, labels)


# ---- layers, their inputs and their depths --------------------------------------------

def shrinking_net(num_classes=4, noise_dims=6, factor=0.5):
    """Three linear layers that keep the class signal and shrink the noise, then a classifier.

    Inputs are (class vertex, noise): each hidden layer multiplies the noise coordinates by
    ``factor``, so the within-class spread, and the NC score, fall strictly with depth.
    """
    width = num_classes + noise_dims
    scale = torch.tensor([1.0] * num_classes + [factor] * noise_dims)
    layers = []
    for _ in range(3):
        layer = torch.nn.Linear(width, width)
        with torch.no_grad():
            layer.weight.copy_(torch.diag(scale))
            layer.bias.zero_()
        layers.append(layer)
    return torch.nn.Sequential(*layers, torch.nn.Linear(width, num_classes))


def shrinking_data(num_classes=4, noise_dims=6, per_class=40, seed=3):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes), per_class)
    signal = 2.0 * np.eye(num_classes)[labels] + 0.3 * rng.normal(size=(len(labels), num_classes))
    noise = 2.0 * rng.normal(size=(len(labels), noise_dims))
    return np.hstack([signal, noise]).astype(np.float32), labels


def test_input_of_a_layer_is_the_output_of_the_one_before():
    net = shrinking_net()
    inputs, _ = shrinking_data()
    pooled = layer_embeddings(net, inputs, ["1", "2:input", "3:input", "0:input"], batch_size=7)
    np.testing.assert_array_equal(pooled["1"], pooled["2:input"])
    np.testing.assert_allclose(pooled["0:input"], inputs, rtol=1e-7)
    assert all(not module._forward_pre_hooks and not module._forward_hooks for module in net.modules())


def test_a_layer_the_forward_pass_never_runs_is_named_in_the_error():
    class PieceByPiece(torch.nn.Module):  # calls its container's members, never the container
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 3))
            self.classifier = torch.nn.Linear(3, 2)

        def forward(self, x):
            return self.classifier(self.body[1](self.body[0](x)))

    net = PieceByPiece()
    inputs = np.zeros((4, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="layer 'body' never ran"):
        layer_embeddings(net, inputs, ["body"])
    with pytest.raises(ValueError, match="layer 'body' never ran"):
        layer_depths(net, inputs, ["body"])
    assert layer_depths(net, inputs, ["body.0", "body.1", "classifier:input"]) == {
        "body.0": 0.5, "body.1": 1.0, "classifier:input": 1.0}


def test_layer_depths_count_weight_layers_in_call_order():
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),   # 0 1 2
        torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.ReLU(),                            # 3 4
        torch.nn.Conv2d(4, 8, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),     # 5 6 7
        torch.nn.Linear(8, 3))                                                           # 8
    inputs = np.zeros((2, 1, 6, 6), dtype=np.float32)
    depths = layer_depths(net, inputs, ["0:input", "0", "1", "2", "4", "6", "8:input"])
    assert depths == pytest.approx({"0:input": 0.0, "0": 1 / 3, "1": 1 / 3, "2": 1 / 3, "4": 2 / 3,
                                    "6": 1.0, "8:input": 1.0})
    with pytest.raises(ValueError, match="comes after the classifier"):
        layer_depths(net, inputs, ["8"])


@pytest.mark.parametrize("layers, message", [
    ([], "at least one layer"),
    (["0", "0"], "repeat"),
    (["nine"], "unknown layer 'nine'"),
    (["nine:input"], "unknown layer 'nine:input'"),
])
def test_layer_names_are_checked(layers, message):
    net = shrinking_net()
    inputs, _ = shrinking_data()
    for function in (layer_embeddings, layer_depths):
        with pytest.raises(ValueError, match=message):
            function(net, inputs, layers)


def test_layer_depths_need_two_weight_layers_and_an_example():
    single = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(3, 2))
    with pytest.raises(ValueError, match="at least two"):
        layer_depths(single, np.zeros((2, 3), dtype=np.float32), ["0"])
    with pytest.raises(ValueError, match="at least one example"):
        layer_depths(shrinking_net(), np.zeros((0, 10), dtype=np.float32), ["0"])


# ---- the per-layer table ------------------------------------------------------------------

def test_depth_profile_columns_shapes_and_a_monotone_case():
    net = shrinking_net()
    inputs, labels = shrinking_data()
    table = depth_profile(net, inputs, labels, ["0:input", "0", "1", "3:input"], batch_size=16)
    assert list(table.columns) == list(DEPTH_COLUMNS)
    assert list(table.layer) == ["0:input", "0", "1", "3:input"]
    assert table.depth.tolist() == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    assert table.dim.tolist() == [10] * 4
    assert table.head_converged.all() and table.l2.tolist() == pytest.approx([1 / len(labels)] * 4)
    # the noise shrinks layer by layer: NC falls strictly, the fitted head never gets worse
    assert (np.diff(table.nc) < 0).all()
    assert (np.diff(table.head_accuracy) >= 0).all()
    assert table.nc4_ncc_disagreement.iloc[-1] <= table.nc4_ncc_disagreement.iloc[0]
    # each row is fitted_head_properties of that layer's pooled features
    pooled = layer_embeddings(net, inputs, ["1"])["1"]
    row = table.set_index("layer").loc["1"]
    expected = fitted_head_properties(pooled, labels)
    for name in ("nc", *PROPERTIES, "head_accuracy"):
        assert row[name] == pytest.approx(expected[name], rel=1e-9, abs=1e-12), name


def test_depth_profile_bad_input():
    net = shrinking_net()
    inputs, labels = shrinking_data()
    with pytest.raises(ValueError, match=r"labels must have shape \(160,\)"):
        depth_profile(net, inputs, labels[:-1], ["0"])
    with pytest.raises(ValueError, match=r"labels must have shape \(160,\)"):
        depth_profile(net, inputs, labels[:, None], ["0"])
    with pytest.raises(ValueError, match="unknown layer"):
        depth_profile(net, inputs, labels, ["head"])
    with pytest.raises(ValueError, match="l2 must be a positive number"):
        depth_profile(net, inputs, labels, ["0"], l2=-1.0)


def test_cached_depth_profile_hits_without_building_and_keeps_layer_names(tmp_path):
    # names that a CSV would read back as numbers: "0.10" (-> 0.1), "2" (-> 2)
    body = torch.nn.Sequential(*[torch.nn.Linear(10, 10) for _ in range(11)])
    net = torch.nn.Sequential(body, torch.nn.ReLU(), torch.nn.Linear(10, 4))
    inputs, labels = shrinking_data()
    cache = Cache(tmp_path)
    first = cached_depth_profile(cache, {"model": "chain"}, lambda: net, inputs, labels, ["0.10", "2:input"])

    def no_build():
        raise AssertionError("built on a cache hit")

    again = cached_depth_profile(cache, {"model": "chain"}, no_build, inputs, labels, ["0.10", "2:input"])
    assert list(again.layer) == ["0.10", "2:input"] and again.head_converged.dtype == bool
    pd.testing.assert_frame_equal(first, again, check_dtype=False)
    # another l2, other layers or other data are other entries
    other = cached_depth_profile(cache, {"model": "chain"}, net, inputs, labels, ["0.10", "2:input"], l2=0.5)
    assert other.l2.tolist() == [0.5, 0.5] and not np.allclose(other.nc3_self_duality, first.nc3_self_duality)
    with pytest.raises(AssertionError, match="built on a cache hit"):
        cached_depth_profile(cache, {"model": "chain"}, no_build, inputs[::-1].copy(), labels, ["0.10"])
    with pytest.raises(ValueError, match="unknown options"):
        cached_depth_profile(cache, {"model": "chain"}, net, inputs, labels, ["0.10"], seed=1)


# ---- the layers named for the pre-trained image zoo ---------------------------------------

@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_depth_layers_are_one_per_resolution_and_end_at_the_embedding(name):
    net = NETWORKS[name].make(None).eval()  # random weights: the layout is what matters
    layers = depth_layers(name)
    assert len(layers) == len(DEPTH_STRIDES) and layers[-1] == "classifier:input"
    modules = dict(net.named_modules())
    sizes = {}

    def keep_size(layer):
        def hook(module, args, output):
            sizes[layer] = tuple(output.shape)
        return hook

    handles = [modules[layer].register_forward_hook(keep_size(layer)) for layer in layers[:-1]]
    images = torch.full((2, 3, 32, 32), 128.0)
    with torch.no_grad():
        embedding = net.embed(images)
    for handle in handles:
        handle.remove()
    for layer, stride in zip(layers[:-1], DEPTH_STRIDES):
        assert sizes[layer][2:] == (32 // stride, 32 // stride), layer
    # the last is the penultimate embedding itself, and the depths climb to 1
    pooled = layer_embeddings(net, images, layers[-1:])["classifier:input"]
    np.testing.assert_allclose(pooled, embedding.double().numpy(), rtol=1e-6, atol=1e-6)
    depths = list(layer_depths(net, images, layers).values())
    assert all(np.diff(depths) > 0) and depths[0] > 0 and depths[-1] == 1.0


def test_depth_layers_of_an_unknown_network():
    with pytest.raises(ValueError, match="unknown pre-trained network 'resnet-1000'"):
        depth_layers("resnet-1000")
