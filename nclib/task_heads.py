"""Converged heads for targets that are not class labels, and their paired bootstrap.

The ground truth of the chapter "(b) Beyond classification": how well a frozen network
serves a regression target and a dense (per-pixel) target, measured by a head of a model
family different from the scores' own (LogME and the book's prototype are Bayesian
*linear* models; NC, H-score and GBC read class means and covariances):

* :func:`fit_mlp_regressors` -- an MLP with one hidden layer on the pooled embedding
  (whitened by :func:`whiten`), predicting a real-valued target; scored by the test R^2;
* :func:`feature_maps` -- the *unpooled* activation map of a named intermediate layer
  (a forward hook), the input of a dense head;
* :func:`fit_conv_decoders` -- a small convolutional decoder on such a map (1x1
  convolution, ReLU, 3x3 convolution, bilinear upsampling to the image, as in fully
  convolutional segmentation networks, Long et al. 2015) predicting a foreground mask;
  scored by the test foreground IoU;
* :func:`paired_bootstrap_r2` and :func:`paired_bootstrap_iou` -- intervals for those
  metrics, resampling the seeds and the test examples with the *same* draws for every
  network, so that differences between networks keep their pairing (Efron and
  Tibshirani 1993).

**One training engine.** Both heads are trained by :func:`nclib.train.fit`, which
minimises a cross-entropy over integer labels, with every seed in one batched network
(``seed_axis``). A regression head fits that engine through an exact identity: the head
outputs a mean ``mu`` and, for a grid ``g_1 < ... < g_K`` of target values with spacing
``delta`` much finer than 1 (targets standardised), the logits ``-(g_k - mu)^2 / 2``.
The cross-entropy of the grid point nearest the target is then
``(g - mu)^2 / 2 + log sum_k exp(-(g_k - mu)^2 / 2)``, and the log-sum is
``log(sqrt(2 pi) / delta)`` up to terms of order ``exp(-2 pi^2 / delta^2)`` while ``mu``
stays well inside the grid: the loss is the squared error (halved) of the target rounded
to the grid, plus a constant -- least squares, with targets rounded by at most
``delta / 2`` (1/40 of a standard deviation by default). A dense head treats every
pixel as an example (its label 0 or 1): the decoder is given the flat indices of pixels,
decodes the images that hold them and returns the two-class logits ``(0, z)`` of the
pixels asked for, so the cross-entropy is the per-pixel logistic loss of segmentation.
The pixels are ordered image by image and the minibatches hold whole images, so a step
decodes only its own images; early stopping on the validation IoU ends the training.
The decoder's convolutions and upsampling are written as matrix products
(:meth:`ConvDecoders.logits`), several times faster on a CPU for maps this small.

References
----------
J. Long, E. Shelhamer, T. Darrell. Fully convolutional networks for semantic
segmentation. CVPR 2015.
L.-C. Chen, G. Papandreou, I. Kokkinos, K. Murphy, A. L. Yuille. Semantic image
segmentation with deep convolutional nets and fully connected CRFs. ICLR 2015.
B. Efron, R. J. Tibshirani. An Introduction to the Bootstrap. Chapman & Hall, 1993.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from nclib.train import fit

EVAL_BATCH = 512
GRID_MARGIN = 4
"""Standard deviations by which a regression head's output grid extends beyond the training targets."""


# ============================================================================ feature maps
def _module(model: nn.Module, layer: str) -> nn.Module:
    modules = dict(model.named_modules())
    if not isinstance(layer, str) or layer not in modules or layer == "":
        raise ValueError(f"unknown layer {layer!r}; named layers include {sorted(modules)[1:21]}")
    return modules[layer]


def feature_maps(model: nn.Module, inputs, layer: str, *, method: str = "embed",
                 batch_size: int = 256) -> dict:
    """The unpooled activation map of one named layer, and the model's output, in one pass.

    A forward hook on ``layer`` keeps its output as it is (no pooling, unlike
    :func:`nclib.collapse.layer_embeddings`) while ``getattr(model, method)`` runs on
    batches of ``inputs`` without gradients, the model in evaluation mode (its previous
    mode is restored and the hook removed afterwards, also after an error).

    Parameters
    ----------
    model : torch.nn.Module
    inputs : array-like or torch.Tensor of shape (N, ...)
        What ``method`` takes, batched along the first axis.
    layer : str
        A name of ``model.named_modules()`` whose output is (batch, C, h, w).
    method : str
        The model's method to call (``"embed"``: the pooled penultimate embedding;
        ``"forward"``: the logits).
    batch_size : int

    Returns
    -------
    dict
        ``maps``: ndarray of shape (N, C, h, w), float32; ``outputs``: ndarray of shape
        (N, ...), float32, what ``method`` returned.

    Raises
    ------
    ValueError
        An unknown layer or method, no inputs, a bad batch size, or a layer whose output
        is not a 4-D tensor.

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(),
    ...                     nn.AdaptiveAvgPool2d(1), nn.Flatten())
    >>> out = feature_maps(net, np.zeros((5, 3, 8, 8), np.float32), "1", method="forward")
    >>> out["maps"].shape, out["outputs"].shape
    ((5, 4, 4, 4), (5, 4))
    """
    target = _module(model, layer)
    call = getattr(model, method, None)
    if not callable(call):
        raise ValueError(f"the model has no method {method!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    inputs = torch.as_tensor(np.asarray(inputs, dtype=np.float32) if not torch.is_tensor(inputs) else inputs)
    if inputs.ndim == 0 or len(inputs) == 0:
        raise ValueError(f"inputs must hold at least one example, got shape {tuple(inputs.shape)}")
    maps, outputs = [], []

    def hook(module, args, output):
        if not torch.is_tensor(output) or output.ndim != 4:
            raise ValueError(f"layer {layer!r} returns {tuple(getattr(output, 'shape', ()))}; "
                             "need a map of shape (batch, C, h, w)")
        maps.append(output.detach().to("cpu", torch.float32))

    handle = target.register_forward_hook(hook)
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            for start in range(0, len(inputs), int(batch_size)):
                outputs.append(call(inputs[start:start + int(batch_size)]).detach().to("cpu", torch.float32))
    finally:
        model.train(was_training)
        handle.remove()
    return {"maps": torch.cat(maps).numpy(), "outputs": torch.cat(outputs).numpy()}


# ============================================================================ shared checks
def _standardise(train: np.ndarray, *others: np.ndarray, axis=0):
    """Arrays standardised with the training mean and deviation along ``axis`` (deviation 0 -> 1)."""
    mean = train.mean(axis=axis, keepdims=True)
    scale = train.std(axis=axis, keepdims=True)
    scale[scale == 0] = 1.0
    return [((array - mean) / scale).astype(np.float32) for array in (train, *others)]


def whiten(train, *others, components: int = 128) -> list[np.ndarray]:
    """Project onto the leading principal components of ``train``, scale to unit variance, clip.

    Components whose singular value is below ``1e-6`` of the largest are dropped, so
    constant columns and exact collinearities never reach a head; every projection is
    then clipped to the range the training data span on that component. (A pooled
    embedding of a 32x32 image has many units that fire on one or two training images;
    their components have unit variance only thanks to those images, and a test image
    that fires such a unit strongly would otherwise give an input far outside anything
    a head was fitted on.)

    Parameters
    ----------
    train : array-like of shape (n, D)
    *others : array-like of shape (m, D)
        Projected with the training mean, directions and scales.
    components : int
        At most this many components are kept.

    Returns
    -------
    list of ndarray of shape (n, k), float32
        ``train`` first, then each of ``others``; k <= min(components, n, D).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.c_[rng.normal(size=(50, 2)), np.zeros(50)]  # a constant column
    >>> white, other = whiten(x, x[:5], components=8)
    >>> white.shape, other.shape, np.round(white.std(axis=0), 6).tolist()
    ((50, 2), (5, 2), [1.0, 1.0])
    >>> bool(np.abs(whiten(x, 100 * x[:5])[1]).max() <= np.abs(white).max())  # clipped
    True
    """
    if isinstance(components, bool) or not isinstance(components, (int, np.integer)) or components < 1:
        raise ValueError(f"components must be a positive integer, got {components!r}")
    train = _matrix(train, "train")
    others = [_matrix(other, "features") for other in others]
    if any(other.shape[1] != train.shape[1] for other in others):
        raise ValueError(f"feature widths differ: {[train.shape[1]] + [o.shape[1] for o in others]}")
    mean = train.mean(axis=0)
    _, singular, directions = np.linalg.svd(train - mean, full_matrices=False)
    keep = min(int(components), int(np.count_nonzero(singular > 1e-6 * singular[0]))) if singular[0] > 0 else 0
    if keep == 0:
        raise ValueError("the training features are constant")
    scale = singular[:keep] / np.sqrt(len(train))
    projected = [(array - mean) @ directions[:keep].T / scale for array in (train, *others)]
    low, high = projected[0].min(axis=0), projected[0].max(axis=0)
    return [np.clip(array, low, high).astype(np.float32) for array in projected]


def _check_seeds(seeds) -> list[int]:
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"seeds must be distinct non-negative integers, at least one; got {seeds}")
    return seeds


def _matrix(values, name: str, rows: int | None = None, ndim: int = 2) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != ndim or len(array) == 0 or (rows is not None and len(array) != rows):
        want = f"{ndim}-D" + (f" with {rows} rows" if rows is not None else "")
        raise ValueError(f"{name} must be {want}, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite")
    return array


def _uniform(generator: torch.Generator, shape, fan_in: int) -> torch.Tensor:
    """PyTorch's default initialisation of a layer with ``fan_in`` inputs: U(-1/sqrt(fan_in), +)."""
    bound = 1.0 / math.sqrt(fan_in)
    return (torch.rand(shape, generator=generator) * 2 - 1) * bound


@dataclass
class HeadFit:
    """What a batch of seeded heads gives on the test split.

    Attributes
    ----------
    test_predictions : ndarray
        (S, N) predicted targets (regression) or (S, N, H, W) predicted masks (dense).
    val_metric : ndarray of shape (S,)
        Validation R^2 or IoU of each seed's kept checkpoint.
    best_epoch, epochs_run : ndarray of shape (S,), int
        Epoch of the kept checkpoint; epochs trained before early stopping.
    epoch_cap : int
        The most epochs allowed; a seed with ``epochs_run == epoch_cap`` did not stop.

    Examples
    --------
    >>> fitted = HeadFit(np.zeros((2, 3)), np.array([0.5, 0.6]), np.array([4, 7]), np.array([9, 12]), 50)
    >>> bool((fitted.epochs_run < fitted.epoch_cap).all())  # every seed stopped early
    True
    """

    test_predictions: np.ndarray
    val_metric: np.ndarray
    best_epoch: np.ndarray
    epochs_run: np.ndarray
    epoch_cap: int


def r2(targets, predictions) -> np.ndarray:
    """Coefficient of determination of predictions (..., N) against targets (N,).

    Examples
    --------
    >>> r2([1.0, 2.0, 3.0], [[1.0, 2.0, 3.0], [2.0, 2.0, 2.0]]).tolist()
    [1.0, 0.0]
    """
    targets = np.asarray(targets, dtype=np.float64)
    errors = np.square(np.asarray(predictions, dtype=np.float64) - targets).sum(axis=-1)
    return 1.0 - errors / np.square(targets - targets.mean()).sum()


def foreground_iou(masks, predictions) -> np.ndarray:
    """Foreground IoU pooled over images: total intersection over total union.

    Parameters
    ----------
    masks : array-like of shape (N, H, W), bool
    predictions : array-like of shape (..., N, H, W), bool

    Returns
    -------
    ndarray of shape (...)

    Examples
    --------
    >>> masks = np.array([[[True, True], [False, False]]])
    >>> foreground_iou(masks, np.array([[[True, False], [True, False]]])).item()
    0.3333333333333333
    """
    masks = np.asarray(masks, dtype=bool)
    predictions = np.asarray(predictions, dtype=bool)
    return (predictions & masks).sum(axis=(-3, -2, -1)) / (predictions | masks).sum(axis=(-3, -2, -1))


# ============================================================================ regression head
class MlpRegressors(nn.Module):
    """S one-hidden-layer MLP regressors held as batched parameters (a ``seed_axis`` network).

    ``mean(x) = relu(x W1 + b1) w2 + b2`` for each seed; ``forward`` returns the logits
    ``-(grid - mean)^2 / 2`` over a fixed grid of target values, so that
    :func:`nclib.train.fit`'s cross-entropy is least squares (see the module notes).

    Parameters
    ----------
    num_features, hidden : int
    seeds : sequence of int
        One initialisation per seed (PyTorch's default uniform initialisation, drawn from
        a ``torch.Generator`` seeded with the seed).
    grid : torch.Tensor of shape (K,)
        Target values (standardised) of the output grid.

    Examples
    --------
    >>> heads = MlpRegressors(3, 8, [0, 1], torch.linspace(-6, 6, 241))
    >>> heads(torch.zeros(2, 5, 3)).shape, heads.mean(torch.zeros(5, 3)).shape
    (torch.Size([2, 5, 241]), torch.Size([2, 5]))
    """

    seed_axis = True

    def __init__(self, num_features: int, hidden: int, seeds, grid: torch.Tensor):
        super().__init__()
        generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
        self.w1 = nn.Parameter(torch.stack([_uniform(g, (num_features, hidden), num_features) for g in generators]))
        self.b1 = nn.Parameter(torch.stack([_uniform(g, (hidden,), num_features) for g in generators]))
        self.w2 = nn.Parameter(torch.stack([_uniform(g, (hidden,), hidden) for g in generators]))
        self.b2 = nn.Parameter(torch.stack([_uniform(g, (), hidden) for g in generators]))
        self.register_buffer("grid", grid.detach().clone().float(), persistent=False)

    @property
    def num_seeds(self) -> int:
        """S, the number of regressors."""
        return self.w1.shape[0]

    def mean(self, features: torch.Tensor) -> torch.Tensor:
        """Predictions (S, B) of each seed's own features (S, B, D), or of shared features (B, D)."""
        if features.ndim == 2:
            features = features.expand(self.num_seeds, *features.shape)
        hidden = torch.relu(torch.baddbmm(self.b1[:, None, :], features, self.w1))
        return (hidden * self.w2[:, None, :]).sum(dim=2) + self.b2[:, None]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Grid logits (S, B, K): minus half the squared distance of each grid value to the mean."""
        return -0.5 * torch.square(self.grid - self.mean(features)[..., None])


def fit_mlp_regressors(train_features, train_targets, val_features, val_targets, test_features, *,
                       hidden: int = 64, seeds=(0, 1, 2, 3, 4), lr: float = 1e-3, batch_size: int = 64,
                       epochs: int = 500, patience: int = 20, grid_step: float = 0.05,
                       components: int | None = 128) -> HeadFit:
    """Train S seeded one-hidden-layer MLP regressors to convergence; predict the test split.

    The features are whitened by a principal component analysis of the training split
    (:func:`whiten`, at most ``components`` components; None: standardised only), and
    the targets standardised with the training mean and deviation (predictions are
    returned in the targets' units). Whitening matters for pooled embeddings of small
    images: many of their columns are constant or nearly so on the training split, and
    standardising such a column turns rounding noise into large inputs at test time.
    Each seed is trained by
    :func:`nclib.train.fit` (Adam, minibatches, least squares through the grid identity
    of the module notes) until its validation R^2 has not improved for ``patience``
    epochs, and its best epoch is kept.

    Parameters
    ----------
    train_features, val_features, test_features : array-like of shape (n, D)
    train_targets, val_targets : array-like of shape (n,)
        Real-valued targets.
    hidden : int
        Width of the hidden layer.
    seeds : sequence of int
        Initialisation and minibatch-order seeds, one regressor each.
    lr, batch_size, epochs, patience
        As in :func:`nclib.train.fit` (``epochs`` is the cap).
    grid_step : float
        Spacing of the output grid, in training standard deviations; the grid reaches
        ``GRID_MARGIN`` standard deviations beyond the training targets.
    components : int, optional
        Principal components kept (fewer when the training features have lower rank).

    Returns
    -------
    HeadFit
        ``test_predictions`` of shape (S, N_test); ``val_metric`` the validation R^2.

    Raises
    ------
    ValueError
        Bad shapes, non-finite values, a constant training target or a bad setting.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(-2, 2, size=(300, 4)); y = np.sin(2 * x[:, 0]) + x[:, 1] ** 2
    >>> out = fit_mlp_regressors(x[:200], y[:200], x[200:250], y[200:250], x[250:], seeds=[0, 1],
    ...                          hidden=32, lr=1e-2, batch_size=32, epochs=300)
    >>> out.test_predictions.shape, bool(r2(y[250:], out.test_predictions).min() > 0.8)
    ((2, 50), True)
    """
    seeds = _check_seeds(seeds)
    train_x = _matrix(train_features, "train_features")
    train_y = _matrix(train_targets, "train_targets", len(train_x), ndim=1)
    val_x = _matrix(val_features, "val_features")
    val_y = _matrix(val_targets, "val_targets", len(val_x), ndim=1)
    test_x = _matrix(test_features, "test_features")
    if not train_x.shape[1] == val_x.shape[1] == test_x.shape[1]:
        raise ValueError(f"feature widths differ: {train_x.shape[1]}, {val_x.shape[1]}, {test_x.shape[1]}")
    if not 0 < grid_step <= 0.25:
        raise ValueError(f"grid_step must lie in (0, 0.25], got {grid_step!r}")
    if isinstance(hidden, bool) or not isinstance(hidden, (int, np.integer)) or hidden < 1:
        raise ValueError(f"hidden must be a positive integer, got {hidden!r}")
    centre, scale = train_y.mean(), train_y.std()
    if scale == 0:
        raise ValueError("the training target is constant")
    standard_y = (train_y - centre) / scale
    low = math.floor(standard_y.min()) - GRID_MARGIN
    if components is None:
        inputs = _standardise(train_x, val_x, test_x)
    else:
        inputs = whiten(train_x, val_x, test_x, components=components)
    train_x, val_x, test_x = (torch.from_numpy(a) for a in inputs)
    grid = torch.arange(low, math.ceil(standard_y.max()) + GRID_MARGIN + grid_step / 2, grid_step,
                        dtype=torch.float64)
    labels = np.rint((standard_y - low) / grid_step).astype(np.int64)
    network = MlpRegressors(train_x.shape[1], int(hidden), seeds, grid.float())

    def predict(features: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return network.mean(features).double().numpy() * scale + centre

    run = fit(network, train_x, labels, epochs=epochs, lr=lr, batch_size=batch_size, seeds=seeds,
              validate=lambda net: r2(val_y, predict(val_x)), patience=patience, desc="mlp regressors",
              deterministic=False)
    return HeadFit(predict(test_x), run.best_metric, run.best_epoch, run.epochs_run, int(epochs))


# ============================================================================ dense head
_MATRICES: dict = {}


def _decoder_matrices(height: int, width: int, size: int):
    """Fixed matrices of a 3x3 convolution and a bilinear upsampling on (height, width) maps.

    ``shifts`` (9 P, P), P = height * width: row ``o * P + p``, column ``q`` is 1 when
    position p is the neighbour of q at kernel offset o (cross-correlation, zero
    padding). ``upsample`` (P, size^2): bilinear interpolation (``align_corners=False``)
    of a map to size x size, or None when no resizing is needed.
    """
    key = (height, width, size)
    if key not in _MATRICES:
        positions = height * width
        shifts = torch.zeros(9, positions, positions)
        for dy in range(3):
            for dx in range(3):
                for qy in range(height):
                    for qx in range(width):
                        py, px = qy + dy - 1, qx + dx - 1
                        if 0 <= py < height and 0 <= px < width:
                            shifts[dy * 3 + dx, py * width + px, qy * width + qx] = 1.0
        upsample = None
        if (height, width) != (size, size):
            basis = torch.eye(positions).reshape(positions, 1, height, width)
            upsample = F.interpolate(basis, size=(size, size), mode="bilinear", align_corners=False)
            upsample = upsample.reshape(positions, size * size)
        _MATRICES[key] = (shifts.reshape(9 * positions, positions), upsample)
    return _MATRICES[key]


class ConvDecoders(nn.Module):
    """S small convolutional decoders held as batched parameters (a ``seed_axis`` network).

    For each seed: a 1x1 convolution from C channels to ``hidden``, ReLU, a 3x3
    convolution (zero padding) to one logit per map position, and bilinear upsampling
    (``align_corners=False``) to ``out_size`` x ``out_size`` (Long et al. 2015's
    fully convolutional head, in miniature). :meth:`logits` maps feature maps to per-pixel
    logits; ``forward`` reads flat pixel indices into ``maps`` (set by the caller) and
    returns two-class logits ``(0, z)`` per pixel, so that :func:`nclib.train.fit`'s
    cross-entropy is the per-pixel logistic loss.

    Parameters
    ----------
    channels, hidden : int
    seeds : sequence of int
        One initialisation per seed (PyTorch's default uniform initialisation).
    out_size : int

    Examples
    --------
    >>> decoders = ConvDecoders(4, 8, [0, 1, 2], out_size=16)
    >>> decoders.logits(torch.zeros(5, 4, 4, 4)).shape
    torch.Size([3, 5, 16, 16])
    >>> decoders.maps = torch.zeros(5, 4, 4, 4)
    >>> decoders(torch.zeros(3, 7, 1)).shape
    torch.Size([3, 7, 2])
    """

    seed_axis = True

    def __init__(self, channels: int, hidden: int, seeds, out_size: int = 32):
        super().__init__()
        generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
        self.w1 = nn.Parameter(torch.stack([_uniform(g, (channels, hidden), channels) for g in generators]))
        self.b1 = nn.Parameter(torch.stack([_uniform(g, (hidden,), channels) for g in generators]))
        self.w2 = nn.Parameter(torch.stack([_uniform(g, (hidden, 3, 3), hidden * 9) for g in generators]))
        self.b2 = nn.Parameter(torch.stack([_uniform(g, (), hidden * 9) for g in generators]))
        self.out_size = int(out_size)
        self.train_size = self.out_size
        self.maps: torch.Tensor | None = None

    @property
    def num_seeds(self) -> int:
        """S, the number of decoders."""
        return self.w1.shape[0]

    def logits(self, maps: torch.Tensor, size: int | None = None) -> torch.Tensor:
        """Per-pixel foreground logits (S, N, size, size) of feature maps (N, C, h, w).

        ``size`` defaults to ``out_size``; the map's own side ``h`` skips the upsampling.
        Computed with matrix products (the same numbers as ``torch.nn.functional.conv2d``
        and ``interpolate``, several times faster on a CPU for maps this small): the 1x1
        convolution is one product over channels, the 3x3 convolution a product with
        each seed's kernel followed by fixed 0/1 shift matrices (zero padding), and the
        bilinear upsampling a fixed interpolation matrix.
        """
        size = self.out_size if size is None else int(size)
        num_seeds, channels, hidden = self.w1.shape
        count, _, height, width = maps.shape
        positions = height * width
        shifts, upsample = _decoder_matrices(height, width, size)
        pixels = maps.permute(0, 2, 3, 1).reshape(count * positions, channels)
        inner = torch.relu(torch.addmm(self.b1.reshape(-1), pixels,
                                       self.w1.permute(1, 0, 2).reshape(channels, num_seeds * hidden)))
        inner = inner.reshape(count * positions, num_seeds, hidden).transpose(0, 1)  # (S, N * P, hidden)
        taps = torch.bmm(inner, self.w2.reshape(num_seeds, hidden, 9))  # (S, N * P, 9)
        taps = taps.reshape(num_seeds * count, positions, 9).transpose(1, 2).reshape(num_seeds * count, 9 * positions)
        coarse = taps @ shifts + self.b2.repeat_interleave(count)[:, None]  # (S * N, P)
        fine = coarse if upsample is None else coarse @ upsample
        return fine.reshape(num_seeds, count, size, size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Two-class logits (S, B, 2) of flat pixel indices (S, B, 1) into ``maps`` at ``train_size``.

        Only the images that hold a requested pixel are decoded.
        """
        if self.maps is None:
            raise ValueError("set .maps to the training feature maps before training")
        per_image = self.train_size ** 2
        index = pixels.reshape(pixels.shape[0], -1).long()
        images, position = torch.unique(index // per_image, return_inverse=True)
        flat = self.logits(self.maps[images], self.train_size).flatten(1)  # (S, U * train_size^2)
        z = torch.gather(flat, 1, position * per_image + index % per_image)
        return torch.stack([torch.zeros_like(z), z], dim=2)


def downsample_masks(masks, size: int) -> np.ndarray:
    """Masks (N, H, H) reduced to (N, size, size): a block is foreground when at least half its pixels are.

    Examples
    --------
    >>> mask = np.zeros((1, 4, 4), bool); mask[0, :2, :] = True; mask[0, 2, 2:] = True
    >>> downsample_masks(mask, 2)[0].tolist()
    [[True, True], [False, True]]
    """
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3 or masks.shape[1] != masks.shape[2]:
        raise ValueError(f"masks must be square (N, H, H), got shape {masks.shape}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1 or masks.shape[1] % size:
        raise ValueError(f"size must be a positive divisor of {masks.shape[1]}, got {size!r}")
    block = masks.shape[1] // size
    return masks.reshape(len(masks), size, block, size, block).mean(axis=(2, 4)) >= 0.5


def fit_conv_decoders(train_maps, train_masks, val_maps, val_masks, test_maps, *, hidden: int = 32,
                      seeds=(0, 1, 2, 3, 4), lr: float = 1e-2, epochs: int = 300, patience: int = 20,
                      train_size: int | None = None, images_per_batch: int | None = 100) -> HeadFit:
    """Train S seeded convolutional decoders to convergence on frozen maps; predict test masks.

    Channels are standardised with the training maps' mean and deviation. Every pixel
    of every training mask, reduced to ``train_size`` (:func:`downsample_masks`), is one
    example; :func:`nclib.train.fit` takes Adam steps on the mean per-pixel logistic loss
    of minibatches of ``images_per_batch`` whole images (the images in one random order,
    drawn once from the first seed, so that a step decodes only its own images; the seeds
    differ in their initialisation), and a seed stops once its validation foreground IoU
    (:func:`foreground_iou`, logit > 0, at the masks' full size) has not improved for
    ``patience`` epochs; its best epoch is kept. Training on masks at the map's own
    resolution (the default) and upsampling the logits bilinearly at prediction is
    DeepLab's recipe (Chen et al. 2015, who subsample the ground truth by 8 in
    training); it spares the per-step upsampling of every image.

    Parameters
    ----------
    train_maps, val_maps, test_maps : array-like of shape (n, C, h, w)
        Frozen feature maps (:func:`feature_maps`).
    train_masks, val_masks : array-like of shape (n, H, W), bool
        Square masks (H = W) of the images the maps come from.
    hidden : int
        Channels after the 1x1 convolution.
    seeds : sequence of int
    lr, epochs, patience
        As in :func:`nclib.train.fit` (``epochs``, one step each, is the cap).
    train_size : int, optional
        Side of the training masks, a divisor of H (default: the maps' side h; H itself
        trains on the full masks).
    images_per_batch : int, optional
        Images per minibatch; None: one full batch per epoch.

    Returns
    -------
    HeadFit
        ``test_predictions`` of shape (S, N_test, H, W), bool; ``val_metric`` the
        validation IoU.

    Raises
    ------
    ValueError
        Bad shapes, non-finite maps, masks that are not square or of different sizes,
        a training mask set without foreground or background, or a bad setting.

    Examples
    --------
    A mask that is a channel of the map itself, enlarged twice:

    >>> rng = np.random.default_rng(0)
    >>> maps = rng.normal(size=(40, 3, 8, 8)).astype(np.float32)
    >>> masks = np.kron(maps[:, 0] > 0.5, np.ones((2, 2))).astype(bool)  # 16x16
    >>> out = fit_conv_decoders(maps[:24], masks[:24], maps[24:32], masks[24:32], maps[32:],
    ...                         seeds=[0], hidden=8, lr=0.05, epochs=200, train_size=16)
    >>> out.test_predictions.shape, bool(foreground_iou(masks[32:], out.test_predictions)[0] > 0.75)
    ((1, 8, 16, 16), True)
    """
    seeds = _check_seeds(seeds)
    splits = {}
    for name, maps, masks in (("train", train_maps, train_masks), ("val", val_maps, val_masks),
                              ("test", test_maps, None)):
        maps = _matrix(maps, f"{name}_maps", ndim=4)
        if masks is not None:
            masks = np.asarray(masks)
            if masks.ndim != 3 or len(masks) != len(maps) or masks.shape[1] != masks.shape[2]:
                raise ValueError(f"{name}_masks must be square (n, H, H) with n = {len(maps)}, got {masks.shape}")
            masks = masks.astype(bool)
        splits[name] = (maps, masks)
    if len({maps.shape[1:] for maps, _ in splits.values()}) != 1:
        raise ValueError(f"map shapes differ: {[maps.shape[1:] for maps, _ in splits.values()]}")
    train_masks, val_masks = splits["train"][1], splits["val"][1]
    if train_masks.shape[1:] != val_masks.shape[1:]:
        raise ValueError(f"train and val masks differ in size: {train_masks.shape[1:]}, {val_masks.shape[1:]}")
    if train_masks.all() or not train_masks.any():
        raise ValueError("the training masks need both foreground and background pixels")
    if isinstance(hidden, bool) or not isinstance(hidden, (int, np.integer)) or hidden < 1:
        raise ValueError(f"hidden must be a positive integer, got {hidden!r}")
    if images_per_batch is not None and (isinstance(images_per_batch, bool) or not isinstance(
            images_per_batch, (int, np.integer)) or images_per_batch < 1):
        raise ValueError(f"images_per_batch must be a positive integer or None, got {images_per_batch!r}")
    train, val, test = (torch.from_numpy(a) for a in _standardise(
        splits["train"][0], splits["val"][0], splits["test"][0], axis=(0, 2, 3)))
    network = ConvDecoders(train.shape[1], int(hidden), seeds, out_size=train_masks.shape[1])
    network.train_size = train.shape[2] if train_size is None else int(train_size)
    labels = downsample_masks(train_masks, network.train_size).reshape(-1).astype(np.int64)
    network.maps = train
    per_image = network.train_size ** 2
    order = np.random.default_rng(seeds[0]).permutation(len(train))  # images, in one fixed order
    pixels = torch.from_numpy((order[:, None] * per_image + np.arange(per_image)).reshape(-1, 1).astype(np.float32))
    labels = labels.reshape(len(train), per_image)[order].reshape(-1)
    batch = len(pixels) if images_per_batch is None else int(images_per_batch) * per_image

    def predict(maps: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return np.concatenate([(network.logits(maps[start:start + EVAL_BATCH]) > 0).numpy()
                                   for start in range(0, len(maps), EVAL_BATCH)], axis=1)

    run = fit(network, pixels, labels, epochs=epochs, lr=lr, batch_size=batch, seeds=seeds, shuffle=False,
              patience=patience, desc="conv decoders",
              validate=lambda net: foreground_iou(val_masks, predict(val)), deterministic=False)
    network.maps = None
    return HeadFit(predict(test), run.best_metric, run.best_epoch, run.epochs_run, int(epochs))


# ============================================================================ paired bootstrap
def _resamples(num_seeds: int, num_examples: int, num_resamples: int, random_state: int):
    """Seed draws (R, S) and example counts (R, N), shared by every model."""
    if isinstance(num_resamples, bool) or not isinstance(num_resamples, (int, np.integer)) or num_resamples < 1:
        raise ValueError(f"num_resamples must be a positive integer, got {num_resamples!r}")
    rng = np.random.default_rng(random_state)
    seed_draws = rng.integers(0, num_seeds, size=(num_resamples, num_seeds))
    examples = rng.integers(0, num_examples, size=(num_resamples, num_examples))
    counts = np.zeros((num_resamples, num_examples))
    np.add.at(counts, (np.arange(num_resamples)[:, None], examples), 1.0)
    return seed_draws, counts


def _seed_average(per_seed: np.ndarray, seed_draws: np.ndarray) -> np.ndarray:
    """(M, S, R) per-seed values averaged over each replicate's drawn seeds -> (R, M)."""
    replicate = np.arange(seed_draws.shape[0])[:, None]
    return per_seed.transpose(2, 0, 1)[replicate, :, seed_draws].mean(axis=1)


def paired_bootstrap_r2(predictions, targets, *, num_resamples: int = 1000, random_state: int = 0):
    """Test R^2 of M models (mean over S seeds) and its paired bootstrap replicates.

    Each replicate draws S seeds with replacement and N test examples with replacement,
    the same draws for every model; a model's replicate is the mean over the drawn seeds
    of each seed's R^2 on the drawn examples (weighted by how often each was drawn).

    Parameters
    ----------
    predictions : array-like of shape (M, S, N)
    targets : array-like of shape (N,)
    num_resamples, random_state : int

    Returns
    -------
    observed : ndarray of shape (M,)
    replicates : ndarray of shape (R, M)

    Examples
    --------
    >>> y = np.arange(10.0)
    >>> observed, replicates = paired_bootstrap_r2([[y, y], [y + 1, y - 1]], y, num_resamples=50)
    >>> observed.round(3).tolist(), replicates.shape, bool((replicates[:, 0] == 1).all())
    ([1.0, 0.879], (50, 2), True)
    """
    predictions = np.asarray(predictions, dtype=np.float64)
    targets = _matrix(targets, "targets", ndim=1)
    if predictions.ndim != 3 or predictions.shape[2] != len(targets):
        raise ValueError(f"predictions must be (M, S, N) with N = {len(targets)}, got {predictions.shape}")
    seed_draws, counts = _resamples(predictions.shape[1], len(targets), num_resamples, random_state)
    errors = np.square(predictions - targets) @ counts.T  # (M, S, R)
    weighted_mean = counts @ targets / counts.sum(axis=1)
    total = (counts * np.square(targets[None, :] - weighted_mean[:, None])).sum(axis=1)  # (R,)
    return r2(targets, predictions).mean(axis=1), _seed_average(1.0 - errors / total, seed_draws)


def paired_bootstrap_iou(predictions, masks, *, num_resamples: int = 1000, random_state: int = 0):
    """Test foreground IoU of M models (mean over S seeds) and its paired bootstrap replicates.

    As :func:`paired_bootstrap_r2`, resampling test images: a replicate's IoU is the
    total intersection over the total union of the drawn images.

    Parameters
    ----------
    predictions : array-like of shape (M, S, N, H, W), bool
    masks : array-like of shape (N, H, W), bool
    num_resamples, random_state : int

    Returns
    -------
    observed : ndarray of shape (M,)
    replicates : ndarray of shape (R, M)

    Examples
    --------
    >>> masks = np.zeros((4, 2, 2), bool); masks[:, 0] = True
    >>> observed, replicates = paired_bootstrap_iou([[masks], [~masks]], masks, num_resamples=20)
    >>> observed.tolist(), replicates.shape
    ([1.0, 0.0], (20, 2))
    """
    predictions = np.asarray(predictions, dtype=bool)
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3 or predictions.ndim != 5 or predictions.shape[2:] != masks.shape:
        raise ValueError(f"predictions must be (M, S, N, H, W) and masks (N, H, W); got {predictions.shape} "
                         f"and {masks.shape}")
    seed_draws, counts = _resamples(predictions.shape[1], len(masks), num_resamples, random_state)
    intersections = (predictions & masks).sum(axis=(3, 4)).astype(np.float64)  # (M, S, N)
    unions = (predictions | masks).sum(axis=(3, 4)).astype(np.float64)
    observed = (intersections.sum(axis=2) / unions.sum(axis=2)).mean(axis=1)
    return observed, _seed_average((intersections @ counts.T) / (unions @ counts.T), seed_draws)


__all__ = ["ConvDecoders", "HeadFit", "MlpRegressors", "downsample_masks", "feature_maps", "fit_conv_decoders",
           "fit_mlp_regressors", "foreground_iou", "paired_bootstrap_iou", "paired_bootstrap_r2", "r2",
           "whiten"]
