"""Neural collapse: the four properties of Papyan, Han and Donoho (2020), and watching them form.

Notation shared by every function here. For features of shape (N, D) with labels naming
C classes: :math:`\\mu_c` is the mean of class c, :math:`\\mu_G` the mean of all N
samples, :math:`M` the (C, D) matrix whose row c is :math:`\\mu_c - \\mu_G`,
:math:`\\Sigma_W` the within-class covariance (average over all samples of
:math:`(f_i - \\mu_{y_i})(f_i - \\mu_{y_i})^T`) and :math:`\\Sigma_B = M^T M / C` the
between-class covariance. A last-layer classifier has weights W of shape (C, D), one row
per class, and an optional bias of shape (C,); row c of W belongs to the c-th class in
sorted order of the distinct labels (``np.unique(labels)``), so labels 0..C-1 match rows
0..C-1.

The properties, each a number that goes to 0 as training reaches the collapsed state:

====================  ============================================================
NC1 variability       :func:`nc1_variability`
NC2 simplex ETF       :func:`nc2_equinorm`, :func:`nc2_equiangularity`,
                      :func:`nc2_max_angle`
NC3 self-duality      :func:`nc3_self_duality`
NC4 nearest centre    :func:`nc4_ncc_disagreement`
====================  ============================================================

:func:`collapse_properties` computes all of them at once; :func:`collapse_trajectory`
trains a small network and records them epoch by epoch (the background chapter's live
demonstration, the paper's Figure 1 analogue).

At several depths of a network (chapter "Neural collapse in the pre-trained networks"):
:func:`layer_embeddings` reads pooled activations of named layers of a torch model,
:func:`layer_depths` places each layer as a share of the network's weight layers,
:func:`fitted_head_properties` measures all four properties of any embeddings with a
converged logistic head as their classifier, and :func:`depth_profile` (with its cached
form :func:`cached_depth_profile`) puts the three together, one row per layer.

References
----------
V. Papyan, X. Y. Han, D. L. Donoho. Prevalence of neural collapse during the terminal
phase of deep learning training. PNAS 117(40), 24652-24663, 2020.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import pandas as pd

from nclib._validation import as_features, features_and_labels
from nclib.scores.nc import class_means, nc_score

#: Names of the statistics :func:`collapse_properties` returns, in order.
PROPERTIES = ("nc1_variability", "nc2_equinorm", "nc2_equiangularity", "nc2_max_angle",
              "nc3_self_duality", "nc4_ncc_disagreement")


class _Geometry(NamedTuple):
    features: np.ndarray  # (N, D) float64
    codes: np.ndarray  # (N,) class codes 0..C-1
    means: np.ndarray  # (C, D) class means
    global_mean: np.ndarray  # (D,)
    centred_means: np.ndarray  # (C, D), the matrix M


def _geometry(features, labels, name: str) -> _Geometry:
    features, codes, _, counts = features_and_labels(features, labels, name, 1)
    means = class_means(features, codes, counts)
    global_mean = counts @ means / len(features)
    centred = means - global_mean
    # The count-weighted sum of the rows of M is 0; a second pass removes what rounding
    # left of it (of the order of eps times the features' offset, not of their spread).
    centred -= counts @ centred / len(features)
    return _Geometry(features, codes, means, global_mean, centred)


def _nc1(geometry: _Geometry, name: str) -> float:
    # Sigma_B = M^T M / C = V diag(s^2 / C) V^T from the thin SVD M = U diag(s) V^T, so
    # tr(Sigma_W Sigma_B^+) / C = sum_k (v_k^T Sigma_W v_k) / s_k^2: an O(N D C) sum over
    # the (at most C - 1) directions the class means span, with no D x D matrix formed.
    _, singular, directions = np.linalg.svd(geometry.centred_means, full_matrices=False)
    if singular[0] == 0.0:
        raise ValueError(f"{name} is undefined: all class means coincide")
    keep = singular > singular[0] * max(geometry.centred_means.shape) * np.finfo(float).eps
    keep[len(geometry.centred_means) - 1:] = False  # sum_c n_c (mu_c - mu_G) = 0: rank <= C - 1
    directions = directions[keep]
    residual = ((geometry.features - geometry.global_mean) @ directions.T
                - (geometry.centred_means @ directions.T)[geometry.codes])
    within = np.einsum("ik,ik->k", residual, residual) / len(residual)
    return float(np.sum(within / singular[keep] ** 2))


def _mean_norms(geometry: _Geometry, name: str) -> np.ndarray:
    norms = np.linalg.norm(geometry.centred_means, axis=1)
    if not norms.all():
        raise ValueError(f"{name} is undefined: the mean of class code {int(np.argmin(norms))} "
                         "equals the global mean")
    return norms


def _pairwise_cosines(geometry: _Geometry, name: str) -> np.ndarray:
    unit = geometry.centred_means / _mean_norms(geometry, name)[:, None]
    first, second = np.triu_indices(len(unit), k=1)
    return np.clip(np.einsum("ij,ij->i", unit[first], unit[second]), -1.0, 1.0)


def _nc2_equinorm(geometry: _Geometry, name: str) -> float:
    norms = _mean_norms(geometry, name)
    return float(norms.std() / norms.mean())


def _nc2_equiangularity(geometry: _Geometry, name: str) -> float:
    return float(_pairwise_cosines(geometry, name).std())


def _nc2_max_angle(geometry: _Geometry, name: str) -> float:
    num_classes = len(geometry.means)
    return float(np.abs(_pairwise_cosines(geometry, name) + 1.0 / (num_classes - 1)).mean())


def _classifier(weights, bias, geometry: _Geometry, name: str):
    weights = as_features(weights, "weights")
    num_classes, dim = geometry.centred_means.shape
    if weights.shape != (num_classes, dim):
        raise ValueError(f"{name}: weights must have shape (C, D) = ({num_classes}, {dim}) for {num_classes} "
                         f"classes of {dim}-dimensional features, got {weights.shape}")
    if bias is None:
        return weights, np.zeros(num_classes)
    bias = np.asarray(bias, dtype=np.float64)
    if bias.shape != (num_classes,):
        raise ValueError(f"{name}: bias must have shape ({num_classes},), got {bias.shape}")
    if not np.isfinite(bias).all():
        raise ValueError(f"{name}: bias contains NaN or inf")
    return weights, bias


def _nc3(geometry: _Geometry, weights: np.ndarray, name: str) -> float:
    weight_norm = np.linalg.norm(weights)
    means_norm = np.linalg.norm(geometry.centred_means)
    if weight_norm == 0.0:
        raise ValueError(f"{name} is undefined: the weights are all zero")
    if means_norm == 0.0:
        raise ValueError(f"{name} is undefined: all class means coincide")
    return float(np.linalg.norm(weights / weight_norm - geometry.centred_means / means_norm))


def _nc4(geometry: _Geometry, weights: np.ndarray, bias: np.ndarray) -> float:
    features = geometry.features - geometry.global_mean  # centring changes no nearest centre
    centres = geometry.centred_means
    # argmin_c ||f - mu_c||^2 = argmin_c (||mu_c||^2 - 2 f . mu_c); ||f||^2 is common to all c
    nearest = np.argmin(np.einsum("cd,cd->c", centres, centres) - 2.0 * features @ centres.T, axis=1)
    decided = np.argmax(geometry.features @ weights.T + bias, axis=1)
    return float(np.mean(decided != nearest))


def nc1_variability(features, labels) -> float:
    """NC1, within-class variability collapse: :math:`\\operatorname{tr}(\\Sigma_W \\Sigma_B^{+}) / C`.

    The within-class spread measured in the units of the spread of the class means, along
    the directions those means span (the pseudo-inverse ignores the others). It is 0 when
    every sample sits on its class mean and grows as the classes overlap.

    Parameters
    ----------
    features : array-like of shape (N, D)
        Penultimate embeddings (any float; cast to float64).
    labels : array-like of shape (N,)
        Any hashable class labels, at least two classes.

    Returns
    -------
    float
        Non-negative; invariant to translation, rotation and uniform scaling of the
        features and to renaming the classes.

    Raises
    ------
    ValueError
        Bad shapes, NaN/inf, fewer than two classes, or class means that all coincide.

    Notes
    -----
    Computed from the thin SVD of M (C x D) in O(N D C) operations, never forming a
    D x D matrix. At most C - 1 directions are used (the centred means, weighted by the
    class sizes, sum to zero), and singular values below ``max(C, D) * eps`` times the
    largest count as 0, as in ``numpy.linalg.matrix_rank``.

    References
    ----------
    V. Papyan, X. Y. Han, D. L. Donoho. Prevalence of neural collapse during the terminal
    phase of deep learning training. PNAS 117(40), 2020 (their Figure 6).

    Examples
    --------
    Each class collapsed onto its mean gives 0:

    >>> nc1_variability([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [1.0, 1.0]], [0, 0, 1, 1])
    0.0

    Two classes on a line, spread 1 around means -2 and 2: Sigma_W = 1, Sigma_B = 4.

    >>> nc1_variability([[-3.0], [-1.0], [1.0], [3.0]], ["a", "a", "b", "b"])
    0.125
    """
    return _nc1(_geometry(features, labels, "nc1_variability"), "nc1_variability")


#: The name the first version of this module used for :func:`nc1_variability`.
within_class_variability = nc1_variability


def nc2_equinorm(features, labels) -> float:
    """NC2, equal norms: coefficient of variation of the centred class-mean lengths.

    ``std / mean`` of the C norms :math:`\\|\\mu_c - \\mu_G\\|_2` (population standard
    deviation, ``ddof=0``). 0 when every class mean lies equally far from the global mean,
    as in a simplex equiangular tight frame.

    Parameters
    ----------
    features : array-like of shape (N, D)
    labels : array-like of shape (N,)

    Returns
    -------
    float
        Non-negative; invariant to translation, rotation and uniform scaling.

    Raises
    ------
    ValueError
        Bad input, or a class mean equal to the global mean.

    References
    ----------
    V. Papyan, X. Y. Han, D. L. Donoho. PNAS 117(40), 2020 (their Figure 2, which uses
    the sample standard deviation: multiply by ``sqrt(C / (C - 1))`` to compare).

    Examples
    --------
    Means at distances 1 and 3 from the global mean (two classes of sizes 3 and 1):

    >>> nc2_equinorm([[0.0], [0.0], [0.0], [4.0]], [0, 0, 0, 1])
    0.5
    """
    return _nc2_equinorm(_geometry(features, labels, "nc2_equinorm"), "nc2_equinorm")


def nc2_equiangularity(features, labels) -> float:
    """NC2, equal angles: standard deviation of the pairwise cosines of the centred class means.

    The cosines :math:`\\cos\\angle(\\mu_c - \\mu_G, \\mu_{c'} - \\mu_G)` over the
    C(C-1)/2 unordered pairs c < c', and their population standard deviation (spread
    around their own mean, not around the simplex value: see :func:`nc2_max_angle` for
    that). 0 when all pairs meet at the same angle. With two classes there is a single
    pair and the value is always 0.

    Parameters
    ----------
    features : array-like of shape (N, D)
    labels : array-like of shape (N,)

    Returns
    -------
    float
        In [0, 1]; invariant to translation, rotation and uniform scaling.

    Raises
    ------
    ValueError
        Bad input, or a class mean equal to the global mean (its angle is undefined).

    References
    ----------
    V. Papyan, X. Y. Han, D. L. Donoho. PNAS 117(40), 2020 (their Figure 3).

    Examples
    --------
    Three classes at the corners of an equilateral triangle, then one corner moved:

    >>> triangle = [[1.0, 0.0], [-0.5, 0.75 ** 0.5], [-0.5, -(0.75 ** 0.5)]]
    >>> round(nc2_equiangularity(triangle, [0, 1, 2]), 12)
    0.0
    >>> nc2_equiangularity([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], [0, 1, 2]) > 0.1
    True
    """
    return _nc2_equiangularity(_geometry(features, labels, "nc2_equiangularity"), "nc2_equiangularity")


def nc2_max_angle(features, labels) -> float:
    """NC2, maximal equal angles: mean of :math:`|\\cos + 1/(C-1)|` over pairs of centred class means.

    A simplex equiangular tight frame puts every pair of the C centred means at cosine
    :math:`-1/(C-1)`, the most negative value C vectors can share. This is the mean
    absolute deviation of the C(C-1)/2 pairwise cosines from that value. (Centred means
    balance around the global mean, so a common angle is necessarily this one; the two
    NC2 angle statistics differ in how they weigh the departures from it.)

    Parameters
    ----------
    features : array-like of shape (N, D)
    labels : array-like of shape (N,)

    Returns
    -------
    float
        In [0, C / (C - 1)]; invariant to translation, rotation and uniform scaling.

    Raises
    ------
    ValueError
        Bad input, or a class mean equal to the global mean.

    References
    ----------
    V. Papyan, X. Y. Han, D. L. Donoho. PNAS 117(40), 2020 (their Figure 4).

    Examples
    --------
    >>> triangle = [[1.0, 0.0], [-0.5, 0.75 ** 0.5], [-0.5, -(0.75 ** 0.5)]]
    >>> round(nc2_max_angle(triangle, [0, 1, 2]), 12)
    0.0
    """
    return _nc2_max_angle(_geometry(features, labels, "nc2_max_angle"), "nc2_max_angle")


def nc3_self_duality(features, labels, weights) -> float:
    """NC3, self-duality: :math:`\\| W/\\|W\\|_F - M/\\|M\\|_F \\|_F`.

    The Frobenius distance between the classifier's weights and the centred class means
    (row c of each belonging to class c), each scaled to unit Frobenius norm. 0 when the
    classifier's weight vectors are the centred means up to one common scale.

    Parameters
    ----------
    features : array-like of shape (N, D)
    labels : array-like of shape (N,)
    weights : array-like of shape (C, D)
        Last-layer weights, row c for the c-th class in sorted label order (for a torch
        ``nn.Linear(D, C)`` head this is ``head.weight``).

    Returns
    -------
    float
        In [0, 2] (the distance between two unit vectors; Papyan et al. plot its square).
        Invariant to scaling features or weights, and to rotating both together.

    Raises
    ------
    ValueError
        Bad input, weights of the wrong shape or all zero, or class means that all
        coincide.

    References
    ----------
    V. Papyan, X. Y. Han, D. L. Donoho. PNAS 117(40), 2020 (their Figure 5).

    Examples
    --------
    >>> features = [[-1.0, 0.0], [-3.0, 0.0], [1.0, 0.0], [3.0, 0.0]]
    >>> nc3_self_duality(features, [0, 0, 1, 1], [[-5.0, 0.0], [5.0, 0.0]])
    0.0
    >>> round(nc3_self_duality(features, [0, 0, 1, 1], [[5.0, 0.0], [-5.0, 0.0]]), 12)  # opposed
    2.0
    """
    geometry = _geometry(features, labels, "nc3_self_duality")
    weights, _ = _classifier(weights, None, geometry, "nc3_self_duality")
    return _nc3(geometry, weights, "nc3_self_duality")


def nc4_ncc_disagreement(features, labels, weights, bias=None) -> float:
    """NC4, the classifier becomes nearest class centre: the rate at which the two disagree.

    The fraction of the N samples whose class by the linear classifier,
    :math:`\\arg\\max_c (W f + b)_c`, differs from their nearest class mean,
    :math:`\\arg\\min_c \\|f - \\mu_c\\|_2`, the means taken over these same samples.
    Ties go to the lowest class code in both rules.

    Parameters
    ----------
    features : array-like of shape (N, D)
    labels : array-like of shape (N,)
        Only used to form the class means (the rule's agreement with the labels plays
        no part).
    weights : array-like of shape (C, D)
    bias : array-like of shape (C,), optional
        Zero when omitted.

    Returns
    -------
    float
        In [0, 1], a multiple of 1/N.

    Raises
    ------
    ValueError
        Bad input, or weights or bias of the wrong shape.

    References
    ----------
    V. Papyan, X. Y. Han, D. L. Donoho. PNAS 117(40), 2020 (their Figure 7).

    Examples
    --------
    Means at -2 and 2; a classifier whose threshold sits at 1.5 instead of 0 disagrees
    with the nearest mean on the sample at 1:

    >>> features = [[-3.0], [-1.0], [1.0], [3.0]]
    >>> nc4_ncc_disagreement(features, [0, 0, 1, 1], [[-1.0], [1.0]])
    0.0
    >>> nc4_ncc_disagreement(features, [0, 0, 1, 1], [[-1.0], [1.0]], bias=[1.5, -1.5])
    0.25
    """
    geometry = _geometry(features, labels, "nc4_ncc_disagreement")
    weights, bias = _classifier(weights, bias, geometry, "nc4_ncc_disagreement")
    return _nc4(geometry, weights, bias)


def collapse_properties(features, labels, weights=None, bias=None) -> dict:
    """All four neural-collapse properties of one set of embeddings (and its classifier).

    Validates the input and forms the class means once, then evaluates every statistic
    of :data:`PROPERTIES`.

    Parameters
    ----------
    features : array-like of shape (N, D)
    labels : array-like of shape (N,)
    weights : array-like of shape (C, D), optional
        Last-layer weights; without them NC3 and NC4 are NaN.
    bias : array-like of shape (C,), optional
        Last-layer bias (used by NC4 only); zero when omitted.

    Returns
    -------
    dict of str to float
        Keys :data:`PROPERTIES`: ``nc1_variability``, ``nc2_equinorm``,
        ``nc2_equiangularity``, ``nc2_max_angle``, ``nc3_self_duality``,
        ``nc4_ncc_disagreement``; each 0 at full collapse.

    Raises
    ------
    ValueError
        As the individual functions; ``bias`` without ``weights``.

    References
    ----------
    V. Papyan, X. Y. Han, D. L. Donoho. Prevalence of neural collapse during the terminal
    phase of deep learning training. PNAS 117(40), 2020.

    Examples
    --------
    >>> triangle = np.array([[1.0, 0.0], [-0.5, 0.75 ** 0.5], [-0.5, -(0.75 ** 0.5)]])
    >>> labels = np.repeat([0, 1, 2], 2)
    >>> properties = collapse_properties(triangle[labels], labels, weights=3 * triangle)
    >>> {name: round(value, 9) for name, value in properties.items()}  # doctest: +NORMALIZE_WHITESPACE
    {'nc1_variability': 0.0, 'nc2_equinorm': 0.0, 'nc2_equiangularity': 0.0, 'nc2_max_angle': 0.0,
     'nc3_self_duality': 0.0, 'nc4_ncc_disagreement': 0.0}
    >>> collapse_properties(triangle[labels], labels)["nc3_self_duality"]
    nan
    """
    name = "collapse_properties"
    geometry = _geometry(features, labels, name)
    values = [_nc1(geometry, name), _nc2_equinorm(geometry, name), _nc2_equiangularity(geometry, name),
              _nc2_max_angle(geometry, name)]
    if weights is None:
        if bias is not None:
            raise ValueError(f"{name}: a bias was given without weights")
        values += [np.nan, np.nan]
    else:
        weights, bias = _classifier(weights, bias, geometry, name)
        values += [_nc3(geometry, weights, name), _nc4(geometry, weights, bias)]
    return dict(zip(PROPERTIES, values))


def collapse_trajectory(features, labels, epochs: int = 60, hidden: int = 64, embedding_dim: int = 16,
                        lr: float = 1e-2, snapshot_epochs=(1,), seed: int = 0):
    """Train an MLP classifier and record its collapse, epoch by epoch.

    After every full-batch Adam step (:func:`nclib.train.fit`, one step per epoch on all
    examples), the penultimate embeddings of the whole training set and the classifier's
    weights and bias give the four properties of :func:`collapse_properties` and the
    paper's NC score. The random initialisation uses a private ``torch.Generator`` seeded
    with ``seed``: torch's global generator is neither read nor changed. Explained in the background chapter (``book/background.md``).

    Parameters
    ----------
    features : array-like of shape (N, D)
        Inputs (e.g. scikit-learn's digits, 64 pixels); standardised per column.
    labels : array-like of shape (N,)
        Any hashable labels (rows of the head follow their sorted order).
    epochs : int
    hidden, embedding_dim : int
        Widths of the two hidden layers; the second is the penultimate embedding.
    lr : float
        Adam learning rate (full-batch training).
    snapshot_epochs : sequence of int
        Epochs whose embeddings are returned (the last epoch is always included).
    seed : int

    Returns
    -------
    history : pandas.DataFrame
        One row per epoch, columns ``epoch, train_loss, train_accuracy``, the names of
        :data:`PROPERTIES`, and ``nc`` (the paper's score, :func:`nclib.nc_score`).
    snapshots : dict of int to ndarray of shape (N, embedding_dim)

    References
    ----------
    V. Papyan, X. Y. Han, D. L. Donoho. PNAS 117(40), 2020; S. Suresh, V. Abrol,
    A. Thakur, NeurIPS 2023 NeurReps workshop (Figure 1).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2], 20)
    >>> x = rng.normal(size=(60, 5)) + y[:, None]
    >>> history, snaps = collapse_trajectory(x, y, epochs=5, seed=0)
    >>> list(history.columns)  # doctest: +NORMALIZE_WHITESPACE
    ['epoch', 'train_loss', 'train_accuracy', 'nc1_variability', 'nc2_equinorm', 'nc2_equiangularity',
     'nc2_max_angle', 'nc3_self_duality', 'nc4_ncc_disagreement', 'nc']
    >>> sorted(snaps)
    [1, 5]
    """
    import torch

    from nclib.train import Callback, fit

    features, codes, classes, _ = features_and_labels(features, labels, "collapse_trajectory", 2)
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.as_tensor((features - features.mean(0)) / (features.std(0) + 1e-8), dtype=torch.float32)
    targets = torch.as_tensor(codes)
    linear = functools.partial(torch.nn.utils.skip_init, torch.nn.Linear)  # no default (global) draws
    body = torch.nn.Sequential(linear(inputs.shape[1], hidden), torch.nn.ReLU(),
                               linear(hidden, embedding_dim), torch.nn.ReLU())
    head = linear(embedding_dim, len(classes))
    for layer in [*body, head]:
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.kaiming_uniform_(layer.weight, generator=generator)
            torch.nn.init.zeros_(layer.bias)
    rows, snapshots = [], {}
    wanted = set(snapshot_epochs) | {epochs}

    class Record(Callback):
        """After each epoch's step: the embeddings, the head and their collapse statistics."""

        def on_epoch_end(self, run, outcome):
            with torch.no_grad():
                embedding = body(inputs)
                accuracy = float((head(embedding).argmax(1) == targets).float().mean())
            embedding = embedding.numpy().astype(np.float64)
            properties = collapse_properties(embedding, codes, head.weight.detach().numpy(),
                                             head.bias.detach().numpy())
            rows.append((outcome.epoch, float(outcome.train_loss[0]), accuracy, *properties.values(),
                         nc_score(embedding, codes)))
            if outcome.epoch in wanted:
                snapshots[outcome.epoch] = embedding

    # full-batch Adam: one step per epoch on all examples in their order
    fit(torch.nn.Sequential(body, head), inputs, targets, epochs=epochs, lr=lr, batch_size=len(targets),
        seeds=[seed], shuffle=False, callbacks=[Record()], desc="collapse_trajectory",
        deterministic=False)  # CPU results are the same, and torch's deterministic mode is ~7x slower here
    history = pd.DataFrame(rows, columns=["epoch", "train_loss", "train_accuracy", *PROPERTIES, "nc"])
    return history, snapshots


# ----------------------------------------------------------------------------- several depths
INPUT_SUFFIX = ":input"
"""A layer name ending in this (``"classifier:input"``) names the *input* of that submodule."""

DEPTH_CODE = ("nclib.collapse", "nclib.logistic", "nclib.scores.nc", "nclib._validation", "nclib.models")
"""Modules whose source enters every :func:`cached_depth_profile` key."""

DEPTH_COLUMNS = ("layer", "depth", "dim", "nc", *PROPERTIES, "head_accuracy", "head_converged", "l2")
"""Columns of :func:`depth_profile`, in order."""


def _module_name(layer: str) -> tuple[str, bool]:
    """``(submodule name, whether its input is meant)`` of a layer name."""
    if layer.endswith(INPUT_SUFFIX):
        return layer[:-len(INPUT_SUFFIX)], True
    return layer, False


def _check_layers(model, layers) -> list:
    layers = list(layers)
    modules = dict(model.named_modules())
    if not layers:
        raise ValueError("layer_embeddings needs at least one layer name")
    if len(set(layers)) != len(layers):
        raise ValueError(f"layer names repeat: {layers}")
    unknown = [name for name in layers if _module_name(name)[0] not in modules]
    if unknown:
        raise ValueError(f"unknown layer {unknown[0]!r}; the model has {sorted(modules)[:20]}")
    return layers


def _hooked(model, layers, record) -> list:
    """Hooks that call ``record(layer, value)`` with each layer's output (or input); returns the handles."""
    modules = dict(model.named_modules())
    handles = []
    for layer in layers:
        name, wants_input = _module_name(layer)
        if wants_input:
            def pre_hook(module, args, layer=layer):
                record(layer, args[0] if args else None)
            handles.append(modules[name].register_forward_pre_hook(pre_hook))
        else:
            def hook(module, args, output, layer=layer):
                record(layer, output)
            handles.append(modules[name].register_forward_hook(hook))
    return handles


def _run(model, inputs, batch_size: int, handles) -> None:
    """Forward ``inputs`` in batches, in eval mode without gradients; restore the mode, remove ``handles``."""
    import torch

    first_parameter = next(model.parameters(), None)
    device = first_parameter.device if first_parameter is not None else torch.device("cpu")
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            for start in range(0, len(inputs), batch_size):
                model(inputs[start:start + batch_size].to(device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()


def _as_inputs(inputs):
    import torch

    inputs = torch.as_tensor(inputs)
    if inputs.ndim == 0 or len(inputs) == 0:
        raise ValueError("inputs must hold at least one example along the first axis, "
                         f"got shape {tuple(inputs.shape)}")
    return inputs


def layer_embeddings(model, inputs, layers, batch_size: int = 256) -> dict:
    """Global-average-pooled activations of named submodules of a torch model.

    Registers a forward hook on each named submodule, runs the inputs through the model
    in batches without gradients, and averages each captured output over every axis after
    the channel axis (the spatial axes of a (B, C, H, W) map, the time axis of (B, C, T);
    a (B, C) output is kept as it is). A name ending in ``":input"`` (:data:`INPUT_SUFFIX`)
    captures the submodule's first input instead of its output: ``"classifier:input"`` is
    the penultimate embedding of a network whose forward pass ends in ``classifier``. The
    model is put in evaluation mode for the pass and restored to its previous mode
    afterwards; the hooks are always removed.

    Parameters
    ----------
    model : torch.nn.Module
    inputs : array-like or torch.Tensor of shape (N, ...)
        What ``model`` takes, batched along the first axis; moved to the model's device.
    layers : sequence of str
        Names as in ``model.named_modules()`` (e.g. ``"features.3"``, ``"layer2"``), each
        optionally followed by ``":input"``.
    batch_size : int

    Returns
    -------
    dict of str to ndarray of shape (N, channels), float64
        One entry per name in ``layers``, in the order given.

    Raises
    ------
    ValueError
        An unknown or repeated layer name, no layers, empty inputs, a bad batch size, a
        layer that the forward pass never runs, or a layer whose output is not a tensor
        with a batch and a channel axis.

    References
    ----------
    Collapse at several depths: V. Papyan, X. Y. Han, D. L. Donoho. PNAS 117(40), 2020;
    S. Suresh, V. Abrol, A. Thakur, NeurIPS 2023 NeurReps workshop (the score is "not
    restrictive to ... any specific model layer").

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 6, 3),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(6, 2))
    >>> pooled = layer_embeddings(net, np.zeros((5, 1, 8, 8), dtype=np.float32), ["1", "2", "5", "5:input"])
    >>> {name: array.shape for name, array in pooled.items()}
    {'1': (5, 4), '2': (5, 6), '5': (5, 2), '5:input': (5, 6)}
    """
    import torch

    layers = _check_layers(model, layers)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    inputs = _as_inputs(inputs)
    captured = {name: [] for name in layers}

    def record(layer, value):
        if not isinstance(value, torch.Tensor) or value.ndim < 2:
            shape = tuple(getattr(value, "shape", ()))
            verb = "takes" if _module_name(layer)[1] else "returns"
            raise ValueError(f"layer {layer!r} {verb} {type(value).__name__} {shape}; "
                             "need a tensor of shape (batch, channels, ...)")
        pooled = value.flatten(2).mean(2) if value.ndim > 2 else value
        captured[layer].append(pooled.detach().to("cpu", torch.float64))

    _run(model, inputs, int(batch_size), _hooked(model, layers, record))
    silent = [name for name in layers if not captured[name]]
    if silent:
        raise ValueError(f"layer {silent[0]!r} never ran in the model's forward pass (a container "
                         "the model calls piece by piece?); name one of its submodules instead")
    return {name: torch.cat(captured[name]).numpy() for name in layers}


def _weight_layers(model) -> list:
    """Leaf submodules holding a weight of two or more axes: convolutions, linear layers."""
    return [module for module in model.modules()
            if not any(True for _ in module.children())
            and any(parameter.ndim >= 2 for parameter in module.parameters(recurse=False))]


def layer_depths(model, inputs, layers) -> dict:
    """Relative depth of named layers: the share of the network's weight layers run before each.

    One forward pass of the first example counts, in call order, the calls of the
    model's weight layers (leaf modules with a weight of two or more axes: convolutions
    and linear layers; batch norms, activations and pooling do not count). A layer's depth
    is the count when its value is taken (its output, or its input for a ``":input"``
    name) divided by the count just before the last weight layer of the pass, the
    classifier: the penultimate embedding has depth 1, a layer as deep as half the
    network's weight layers 0.5.

    Parameters
    ----------
    model : torch.nn.Module
        Its forward pass must end in a weight layer (the classifier) and run at least two.
    inputs : array-like or torch.Tensor of shape (N, ...)
        Only the first example is used.
    layers : sequence of str
        As in :func:`layer_embeddings`.

    Returns
    -------
    dict of str to float
        In the order of ``layers``; values in [0, 1].

    Raises
    ------
    ValueError
        As :func:`layer_embeddings`; a model with fewer than two weight-layer calls or one
        whose last call comes before a named layer.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4),
    ...                           torch.nn.ReLU(), torch.nn.Linear(4, 2))
    >>> layer_depths(net, np.zeros((1, 3), dtype=np.float32), ["1", "3", "4:input"])
    {'1': 0.5, '3': 1.0, '4:input': 1.0}
    """
    layers = _check_layers(model, layers)
    inputs = _as_inputs(inputs)[:1]
    calls, taken = [0], {}

    def count(module, args, output):
        calls[0] += 1

    def record(layer, value):
        taken.setdefault(layer, calls[0])

    # counters first: a named weight layer's own output hook then sees itself counted
    handles = [module.register_forward_hook(count) for module in _weight_layers(model)]
    _run(model, inputs, 1, handles + _hooked(model, layers, record))
    silent = [name for name in layers if name not in taken]
    if silent:
        raise ValueError(f"layer {silent[0]!r} never ran in the model's forward pass")
    below_classifier = calls[0] - 1
    if below_classifier < 1:
        raise ValueError(f"the forward pass runs {calls[0]} weight layer(s); a depth needs at least two")
    beyond = [name for name in layers if taken[name] > below_classifier]
    if beyond:
        raise ValueError(f"layer {beyond[0]!r} comes after the classifier (the last weight layer)")
    return {name: taken[name] / below_classifier for name in layers}


def fitted_head_properties(features, labels, *, l2: float | None = None, standardize: bool = True) -> dict:
    """The four collapse properties of embeddings, with a converged logistic head as classifier.

    A pre-trained network has no classifier for the target task, so NC3 and NC4 need one:
    multinomial logistic regression fitted to the embeddings with
    :func:`nclib.logistic.fit_logistic` (L-BFGS to the tolerance
    :data:`nclib.logistic.GTOL`, no seed). With
    ``standardize`` (default) the features are first standardised with their own mean and
    standard deviation (:func:`nclib.logistic.standardizer`, as the head regime of
    transfer does) and *every* property is measured in that space, the one the head acts
    in; the paper's NC score is computed on the raw features, as the paper defines it.

    Parameters
    ----------
    features : array-like of shape (N, D)
    labels : array-like of shape (N,)
        At least two classes, each with at least two samples.
    l2 : float, optional
        L2 strength of the head on the mean cross-entropy (see
        :func:`~nclib.logistic.fit_logistic`). Default ``1 / N``: the minimiser of
        scikit-learn's default ``LogisticRegression(C=1)``. Held fixed rather than chosen
        on a validation split, so that layers and networks are compared with the same
        classifier; on separable data a much weaker penalty only scales the weights up,
        which NC3 ignores, at the price of many more iterations.
    standardize : bool

    Returns
    -------
    dict
        ``nc`` (the paper's score, lower is better), the six :data:`PROPERTIES`,
        ``head_accuracy`` (the head's accuracy on these same samples), ``head_converged``
        (bool) and ``l2`` (the strength used).

    Raises
    ------
    ValueError
        Bad features or labels (as :func:`collapse_properties`), a class with one sample,
        a non-positive ``l2``.

    Notes
    -----
    NC3 of a *fitted* head reads the head as much as the features. As ``l2`` grows the
    penalised optimum turns towards the gradient at W = 0, whose rows are the centred
    class means weighted by the class shares, so NC3 tends to 0 whatever the features; and
    with isotropic within-class noise the best linear rule (:math:`W \\propto \\Sigma_W^{-1} M`)
    points along the class means anyway. A small NC3 alone is no sign of collapse; keep
    the penalty weak, and read NC3 next to NC1.

    References
    ----------
    V. Papyan, X. Y. Han, D. L. Donoho. PNAS 117(40), 2020 (NC1-NC4); S. Suresh,
    V. Abrol, A. Thakur, NeurIPS 2023 NeurReps workshop (the NC score).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1, 2], 20)
    >>> features = 5 * np.eye(3, 4)[labels] + rng.normal(size=(60, 4))
    >>> result = fitted_head_properties(features, labels)
    >>> result["head_converged"], result["head_accuracy"], round(result["l2"], 4)
    (True, 1.0, 0.0167)
    >>> result["nc4_ncc_disagreement"] < 0.05 < result["nc3_self_duality"]
    True
    """
    from nclib.logistic import fit_logistic, standardizer

    name = "fitted_head_properties"
    features, codes, classes, _ = features_and_labels(features, labels, name, 2)
    l2 = 1.0 / len(features) if l2 is None else l2
    if not (isinstance(l2, (int, float, np.floating)) and np.isfinite(l2) and l2 > 0):
        raise ValueError(f"{name}: l2 must be a positive number, got {l2!r}")
    space = features
    if standardize:
        mean, scale = standardizer(features)
        space = (features - mean) / scale
    fit = fit_logistic(space, codes, num_classes=len(classes), l2=float(l2))
    weights, bias = fit["weight"].T, fit["bias"]
    properties = collapse_properties(space, codes, weights, bias)
    accuracy = float(np.mean(np.argmax(space @ weights.T + bias, axis=1) == codes))
    return {"nc": nc_score(features, codes), **properties, "head_accuracy": accuracy,
            "head_converged": bool(fit["converged"]), "l2": float(l2)}


def depth_profile(model, inputs, labels, layers, *, l2: float | None = None, standardize: bool = True,
                  batch_size: int = 256) -> pd.DataFrame:
    """Neural collapse at several depths of one network: one row per named layer.

    Each layer's activations are globally average-pooled (:func:`layer_embeddings`); its
    relative depth comes from :func:`layer_depths`; the paper's NC score and the four
    collapse properties, with a converged logistic head fitted to that layer's features,
    from :func:`fitted_head_properties`.

    Parameters
    ----------
    model : torch.nn.Module
        A network whose forward pass ends in its classifier (for the depths).
    inputs : array-like or torch.Tensor of shape (N, ...)
        The target's training inputs, as the model takes them.
    labels : array-like of shape (N,)
        Their classes (each with at least two samples).
    layers : sequence of str
        Layer names as in :func:`layer_embeddings` (``"classifier:input"`` for the
        penultimate embedding); for the pre-trained image zoo see
        :func:`nclib.network_depths.depth_layers`.
    l2, standardize
        As in :func:`fitted_head_properties`.
    batch_size : int

    Returns
    -------
    pandas.DataFrame
        One row per layer, in the order given, columns :data:`DEPTH_COLUMNS`: ``layer``,
        ``depth`` (in [0, 1], 1 = penultimate), ``dim`` (channels), ``nc`` (lower is
        better), the six :data:`PROPERTIES`, ``head_accuracy``, ``head_converged``, ``l2``.

    Raises
    ------
    ValueError
        Labels whose length is not that of the inputs, and as the functions above.

    References
    ----------
    S. Suresh, V. Abrol, A. Thakur, NeurIPS 2023 NeurReps workshop (the score at any
    layer); V. Papyan, X. Y. Han, D. L. Donoho. PNAS 117(40), 2020. Explained in the
    chapter "Neural collapse in the pre-trained networks" (``book/collapse_zoo.md``).

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 6),
    ...                           torch.nn.ReLU(), torch.nn.Linear(6, 3))
    >>> labels = np.repeat([0, 1, 2], 10)
    >>> inputs = (np.eye(3, 4)[labels] + 0.1 * np.random.default_rng(0).normal(size=(30, 4))).astype(np.float32)
    >>> table = depth_profile(net, inputs, labels, ["1", "3"])
    >>> table[["layer", "depth", "dim"]].to_dict("list")
    {'layer': ['1', '3'], 'depth': [0.5, 1.0], 'dim': [8, 6]}
    """
    layers = _check_layers(model, layers)
    labels = np.asarray(labels)
    count = len(_as_inputs(inputs))
    if labels.ndim != 1 or len(labels) != count:
        raise ValueError(f"depth_profile: labels must have shape ({count},) to match the inputs, "
                         f"got {labels.shape}")
    embeddings = layer_embeddings(model, inputs, layers, batch_size)
    depths = layer_depths(model, inputs, layers)
    rows = [{"layer": name, "depth": depths[name], "dim": int(features.shape[1]),
             **fitted_head_properties(features, labels, l2=l2, standardize=standardize)}
            for name, features in embeddings.items()]
    return pd.DataFrame(rows, columns=list(DEPTH_COLUMNS))


def cached_depth_profile(cache, key_parts: dict, model, inputs, labels, layers, **options) -> pd.DataFrame:
    """:func:`depth_profile` through the on-disk cache (:class:`nclib.cache.Cache`).

    Parameters
    ----------
    cache : nclib.cache.Cache
    key_parts : dict
        Everything that identifies the model's weights (e.g. ``{"network": "mobilenet-v2"}``
        for a network whose weight file is checksummed); JSON-serialisable values. The
        layers, the options, a fingerprint of the inputs and labels, and a hash of the code
        of :data:`DEPTH_CODE` are added.
    model : torch.nn.Module or callable
        The network, or a function returning it, called only on a cache miss (a warm cache
        never builds or loads the network).
    inputs, labels, layers
        As in :func:`depth_profile`.
    **options
        ``l2``, ``standardize``, ``batch_size`` of :func:`depth_profile` (``batch_size``
        is not part of the key).

    Returns
    -------
    pandas.DataFrame
        As :func:`depth_profile`.

    Examples
    --------
    >>> import tempfile, torch
    >>> from nclib.cache import Cache
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> labels = np.repeat([0, 1, 2], 4)
    >>> inputs = (np.eye(3, 4)[labels] + 0.01 * np.arange(12)[:, None]).astype(np.float32)
    >>> cache = Cache(tempfile.mkdtemp())
    >>> first = cached_depth_profile(cache, {"model": "demo"}, net, inputs, labels, ["1"])
    >>> again = cached_depth_profile(cache, {"model": "demo"}, lambda: 1 / 0, inputs, labels, ["1"])
    >>> bool(np.allclose(first.nc, again.nc)), list(again.layer)  # a hit: the model is not built
    (True, ['1'])
    """
    import torch

    from nclib.cache import fingerprint

    unknown = set(options) - {"l2", "standardize", "batch_size"}
    if unknown:
        raise ValueError(f"cached_depth_profile: unknown options {sorted(unknown)}")
    parts = dict(key_parts)
    parts.update(layers=list(layers), l2=options.get("l2"), standardize=options.get("standardize", True),
                 data=fingerprint(np.asarray(inputs), np.asarray(labels)))

    def compute() -> pd.DataFrame:
        network = model if isinstance(model, torch.nn.Module) else model()
        return depth_profile(network, inputs, labels, layers, **options)

    table = cache.table("collapse-depth", parts, compute, code=DEPTH_CODE)
    # CSV gives back "3" as 3 and "1.10" as 1.1: the names are the ones asked for, in order
    table["layer"] = [str(name) for name in layers]
    table["head_converged"] = table["head_converged"].astype(bool)
    return table
