"""Transfer to target tasks other than classification: regression and clustering.

The paper's scores judge embeddings for classification. To ask whether they say
anything about other uses of the same embeddings, the chapters "The caveats, measured"
and "Towards an ideal measure" measure:

* a regression task -- predict :func:`input_intensity` (brightness of an image, mean
  log energy of a log-mel clip) or :func:`waveform_loudness` (mean power of a raw
  waveform, in dB) with a ridge head, :func:`ridge_transfer` (its predictions:
  :func:`ridge_predictions`, the family-matched control of "(b) Beyond classification");
* a clustering task -- k-means clusters of the embeddings against the classes,
  :func:`clustering_quality`.
"""

from __future__ import annotations

import numpy as np


def input_intensity(inputs) -> np.ndarray:
    """Mean value of each input: brightness (ink) of an image, mean log energy of a log-mel clip.

    Parameters
    ----------
    inputs : ndarray of shape (N, ...)

    Returns
    -------
    ndarray of shape (N,), float64

    Examples
    --------
    >>> input_intensity(np.arange(8.0).reshape(2, 1, 2, 2)).tolist()
    [1.5, 5.5]
    """
    inputs = np.asarray(inputs)
    if inputs.ndim < 2 or len(inputs) == 0:
        raise ValueError(f"inputs must have shape (N, ...) with N > 0, got {inputs.shape}")
    return inputs.reshape(len(inputs), -1).mean(axis=1, dtype=np.float64)


def waveform_loudness(waveforms, floor: float = 1e-10) -> np.ndarray:
    """Loudness of each waveform: its mean power in decibels, ``10 log10(mean(x^2) + floor)``.

    The regression target for raw audio: :func:`input_intensity` of a waveform is its
    mean sample value, which is about zero for any recording (no DC offset) and says
    nothing about the sound; its mean power does.

    Parameters
    ----------
    waveforms : ndarray of shape (N, T) or (N, channels, T)
    floor : float
        Added to the mean power so that silence gives ``10 log10(floor)`` (-100 dB), not -inf.

    Returns
    -------
    ndarray of shape (N,), float64

    Examples
    --------
    >>> waveforms = np.stack([np.full(100, 0.1), np.full(100, 1.0)])
    >>> waveform_loudness(waveforms).round(6).tolist()
    [-20.0, 0.0]
    """
    waveforms = np.asarray(waveforms)
    if waveforms.ndim < 2 or len(waveforms) == 0:
        raise ValueError(f"waveforms must have shape (N, ...) with N > 0, got {waveforms.shape}")
    power = np.square(waveforms.reshape(len(waveforms), -1), dtype=np.float64).mean(axis=1)
    return 10.0 * np.log10(power + floor)


def ridge_predictions(train_features, train_targets, val_features, val_targets, test_features,
                      alphas=tuple(10.0 ** np.arange(-3, 4))) -> np.ndarray:
    """Test predictions of a ridge regression head, its penalty chosen on validation data.

    The regression counterpart of the head regime: standardised features (training
    mean and deviation), one ridge fit per penalty, the penalty with the best
    validation R^2 kept (ties: the first, i.e. the weakest penalty).

    Parameters
    ----------
    train_features, val_features, test_features : array-like of shape (n, D)
    train_targets, val_targets : array-like of shape (n,)
    alphas : sequence of float

    Returns
    -------
    ndarray of shape (N_test,), float64

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(90, 3)); y = x @ [1.0, 2.0, 0.0]
    >>> ridge_predictions(x[:50], y[:50], x[50:70], y[50:70], x[70:]).shape
    (20,)
    """
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    best_fit, best_r2 = None, -np.inf
    for alpha in alphas:
        fit = make_pipeline(StandardScaler(), Ridge(alpha=alpha, solver="svd")).fit(train_features, train_targets)
        r2 = r2_score(val_targets, fit.predict(val_features))
        if r2 > best_r2:
            best_fit, best_r2 = fit, r2
    return np.asarray(best_fit.predict(test_features), dtype=np.float64)


def ridge_transfer(train_features, train_targets, val_features, val_targets, test_features, test_targets,
                   alphas=tuple(10.0 ** np.arange(-3, 4))) -> float:
    """Test R^2 of a ridge regression head, its penalty chosen on validation data.

    The test R^2 of :func:`ridge_predictions`.

    Parameters
    ----------
    train_features, val_features, test_features : array-like of shape (n, D)
    train_targets, val_targets, test_targets : array-like of shape (n,)
    alphas : sequence of float

    Returns
    -------
    float
        Coefficient of determination on the test split (1 is perfect, 0 predicts the mean).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(90, 3)); y = x @ [1.0, 2.0, 0.0]
    >>> round(ridge_transfer(x[:50], y[:50], x[50:70], y[50:70], x[70:], y[70:]), 3)
    1.0
    """
    from sklearn.metrics import r2_score

    predictions = ridge_predictions(train_features, train_targets, val_features, val_targets, test_features, alphas)
    return float(r2_score(test_targets, predictions))


def clustering_quality(features, labels, num_clusters: int | None = None, random_state: int = 0) -> float:
    """Adjusted Rand index between k-means clusters of the embeddings and the classes.

    A clustering "transfer": no labels are used to form the clusters (k-means with
    ``n_init=10`` on standardised embeddings); the labels only judge them.

    Parameters
    ----------
    features : array-like of shape (N, D)
    labels : array-like of shape (N,)
    num_clusters : int, optional
        Default: the number of classes.
    random_state : int

    Returns
    -------
    float
        1 for clusters equal to the classes, about 0 for chance.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1, 2], 20)
    >>> clustering_quality(rng.normal(size=(60, 2)) + 10 * np.eye(3, 2)[labels], labels)
    1.0
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray(labels)
    num_clusters = len(np.unique(labels)) if num_clusters is None else num_clusters
    points = StandardScaler().fit_transform(np.asarray(features, dtype=np.float64))
    clusters = KMeans(n_clusters=num_clusters, n_init=10, random_state=random_state).fit_predict(points)
    return float(adjusted_rand_score(labels, clusters))


__all__ = ["clustering_quality", "input_intensity", "ridge_predictions", "ridge_transfer", "waveform_loudness"]
