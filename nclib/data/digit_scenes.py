"""Digit scenes: targets that are not class labels, on the same images as a class label.

Every transferability score of the paper reads class labels. To ask how those scores rank
networks for other kinds of target, the chapter "(b) Beyond classification" needs images
that carry, besides a class, a continuous target and a dense one. :func:`digit_scenes`
builds them from scikit-learn's handwritten digits (Alpaydin and Kaynak, 1998; enlarged to
32x32 by :func:`nclib.data.digits.digits_dataset`): each digit is

1. shrunk to a random side of ``scale`` x 32 pixels (bilinear, :func:`scipy.ndimage.zoom`),
2. rotated by a random angle drawn uniformly from [-``max_angle``, ``max_angle``] degrees
   (bilinear, ``scipy.ndimage.rotate``, the canvas enlarged so nothing is cut off),
3. placed at a random position of a 32x32 canvas whose background is clutter: smooth
   random shading plus a few random line segments drawn with the same range of grey levels
   as the digit's ink, so that brightness alone does not tell digit from background.

Each scene has three targets: the digit (``labels``, 10 classes), the rotation angle in
degrees (``angles``, a regression target no pixel statistic gives away) and the digit's
foreground mask (``masks``, the clean placed digit thresholded at half its full ink, a
per-pixel target). Every draw comes from one :class:`numpy.random.Generator` seeded by the
caller, so a scene set is a pure function of its arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 32
"""Side of every scene in pixels (the image experiment's input size)."""

MASK_THRESHOLD = 0.5
"""A pixel is foreground when the clean placed digit has at least this share of full ink."""


@dataclass(frozen=True)
class DigitScenes:
    """Images with three targets each: a class, an angle and a mask.

    Attributes
    ----------
    inputs : ndarray of shape (N, 3, 32, 32), float32
        RGB images with values in [0, 255] (three equal channels).
    labels : ndarray of shape (N,), int64
        The digit shown, 0-9.
    angles : ndarray of shape (N,), float64
        Rotation of the digit in degrees (counter-clockwise).
    masks : ndarray of shape (N, 32, 32), bool
        Foreground: the pixels of the digit.

    Examples
    --------
    >>> scenes = digit_scenes(np.ones((2, 32, 32)), [3, 5], seed=0)
    >>> len(scenes), scenes.subset([1]).labels.tolist()
    (2, [5])
    """

    inputs: np.ndarray
    labels: np.ndarray
    angles: np.ndarray
    masks: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> "DigitScenes":
        """The scenes at ``index`` (integer array or boolean mask)."""
        return DigitScenes(self.inputs[index], self.labels[index], self.angles[index], self.masks[index])


def _check_range(name: str, value, low: float, high: float) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}") from None
    if not (low <= a <= b <= high):
        raise ValueError(f"{name} must satisfy {low} <= low <= high <= {high}, got {value!r}")
    return a, b


def _segment_alpha(rng, num_segments: int, width: float) -> np.ndarray:
    """Coverage (32, 32) in [0, 1] of ``num_segments`` random line segments, anti-aliased."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    alpha = np.zeros((SIZE, SIZE))
    for _ in range(num_segments):
        start = rng.uniform(0, SIZE - 1, size=2)
        direction = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(8, 20)
        end = start + length * np.array([np.sin(direction), np.cos(direction)])
        step = end - start
        along = ((rows - start[0]) * step[0] + (cols - start[1]) * step[1]) / (step @ step)
        along = np.clip(along, 0, 1)
        distance = np.hypot(rows - start[0] - along * step[0], cols - start[1] - along * step[1])
        alpha = np.maximum(alpha, np.clip(width / 2 + 0.5 - distance, 0, 1))
    return alpha


def _place(digit: np.ndarray, rng, side: float, angle: float) -> np.ndarray:
    """The digit (H, W) in [0, 1] shrunk to ``side`` pixels, rotated and placed on a 32x32 canvas."""
    from scipy.ndimage import rotate, zoom

    small = zoom(digit, side / digit.shape[0], order=1)
    turned = np.clip(rotate(small, angle, reshape=True, order=1), 0, 1)
    rows, cols = np.nonzero(turned > 0.02)
    turned = turned[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    if max(turned.shape) > SIZE:  # cannot happen for scale <= 0.7; kept as a guard
        turned = np.clip(zoom(turned, SIZE / max(turned.shape), order=1), 0, 1)
    top = rng.integers(0, SIZE - turned.shape[0] + 1)
    left = rng.integers(0, SIZE - turned.shape[1] + 1)
    canvas = np.zeros((SIZE, SIZE))
    canvas[top:top + turned.shape[0], left:left + turned.shape[1]] = turned
    return canvas


def _digits_and_labels(digits, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked digits (N, H, W) float64, labels (N,) and each digit's peak grey level (N,)."""
    digits = np.asarray(digits, dtype=np.float64)
    if digits.ndim == 4:
        digits = digits[:, 0]
    if digits.ndim != 3 or len(digits) == 0 or min(digits.shape[1:]) < 4:
        raise ValueError(f"digits must have shape (N, H, W) or (N, C, H, W) with N > 0, H, W >= 4, "
                         f"got {np.shape(digits)}")
    labels = np.asarray(labels)
    if labels.shape != (len(digits),):
        raise ValueError(f"labels must have shape ({len(digits)},), got {labels.shape}")
    peaks = digits.reshape(len(digits), -1).max(axis=1)
    if not (np.isfinite(digits).all() and (peaks > 0).all()):
        raise ValueError("every digit must be finite with some ink (a positive maximum)")
    return digits, labels, peaks


def _check_angle(max_angle) -> float:
    if isinstance(max_angle, bool) or not isinstance(max_angle, (int, float, np.number)) \
            or not 0 < float(max_angle) <= 180:
        raise ValueError(f"max_angle must lie in (0, 180], got {max_angle!r}")
    return float(max_angle)


def rotated_digits(digits, labels, *, seed: int, max_angle: float = 60.0) -> DigitScenes:
    """Each digit rotated in place by a random angle: the regression target is the angle.

    The digit keeps its size and centre (bilinear ``scipy.ndimage.rotate`` about the
    image centre, ``reshape=False``; corners that leave the frame are cut off, ink
    there is rare) on a black background: the only thing that varies besides the
    handwriting is the rotation.

    Parameters
    ----------
    digits : array-like of shape (N, 32, 32) or (N, C, 32, 32)
        Clean digits, ink bright on dark (values divided by each image's maximum).
    labels : array-like of shape (N,)
    seed : int
        Seed of the angles.
    max_angle : float
        Angles are uniform in [-max_angle, max_angle] degrees.

    Returns
    -------
    DigitScenes
        ``masks`` are the rotated digits thresholded at :data:`MASK_THRESHOLD`.

    Raises
    ------
    ValueError
        Bad shapes (images must be 32x32), a blank digit, a bad ``max_angle``.

    Examples
    --------
    >>> digit = np.zeros((1, 32, 32)); digit[0, 4:28, 15:17] = 1.0  # a vertical bar
    >>> turned = rotated_digits(digit, [1], seed=0, max_angle=90)
    >>> rows, cols = np.nonzero(turned.masks[0])  # the bar now leans by the angle (counter-clockwise)
    >>> slope = np.degrees(np.arctan(np.polyfit(rows, cols, 1)[0]))
    >>> round(float(turned.angles[0])), round(float(slope))
    (25, 25)
    """
    from scipy.ndimage import rotate

    digits, labels, peaks = _digits_and_labels(digits, labels)
    if digits.shape[1:] != (SIZE, SIZE):
        raise ValueError(f"digits must be {SIZE}x{SIZE}, got {digits.shape[1:]}")
    max_angle = _check_angle(max_angle)
    angles = np.random.default_rng(seed).uniform(-max_angle, max_angle, size=len(digits))
    turned = np.stack([np.clip(rotate(digit / peak, angle, reshape=False, order=1), 0, 1)
                       for digit, peak, angle in zip(digits, peaks, angles)])
    inputs = np.repeat((255.0 * turned).astype(np.float32)[:, None], 3, axis=1)
    return DigitScenes(inputs, labels, angles, turned >= MASK_THRESHOLD)


def digit_scenes(digits, labels, *, seed: int, max_angle: float = 60.0, scale=(0.4, 0.7),
                 segments=(3, 6), stroke_width: float = 2.0) -> DigitScenes:
    """Rotate, shrink and place digits on cluttered backgrounds; keep the angle and the mask.

    Parameters
    ----------
    digits : array-like of shape (N, H, W) or (N, C, H, W)
        Clean digit images, ink bright on a dark background; values are divided by their
        maximum (grey levels in [0, 255] or [0, 1] both work). With C channels the first
        is used.
    labels : array-like of shape (N,)
        The digit of each image (kept as ``labels``).
    seed : int
        Seed of every random draw (sizes, angles, positions, clutter, grey levels).
    max_angle : float
        Angles are uniform in [-max_angle, max_angle] degrees, 0 < max_angle <= 180.
    scale : (float, float)
        The shrunk digit's side, as a fraction of 32 pixels, is uniform in this range
        (within [0.25, 0.7], so that any rotation fits the canvas).
    segments : (int, int)
        Number of clutter line segments per scene, uniform between the two (inclusive).
    stroke_width : float
        Width of the clutter segments in pixels (the digits' strokes are about 2 pixels).

    Returns
    -------
    DigitScenes
        ``inputs`` (N, 3, 32, 32) float32 in [0, 255], ``labels`` (N,), ``angles`` (N,)
        in degrees, ``masks`` (N, 32, 32) bool.

    Raises
    ------
    ValueError
        Bad shapes, an empty or blank digit, or a setting out of range.

    Examples
    --------
    >>> from nclib.data.digits import digits_dataset
    >>> data = digits_dataset(size=32)
    >>> scenes = digit_scenes(data.inputs[:4], data.labels[:4], seed=0)
    >>> scenes.inputs.shape, scenes.masks.shape, scenes.masks.dtype
    ((4, 3, 32, 32), (4, 32, 32), dtype('bool'))
    >>> bool(np.all(np.abs(scenes.angles) <= 60)), bool(scenes.masks.any(axis=(1, 2)).all())
    (True, True)
    """
    digits, labels, peaks = _digits_and_labels(digits, labels)
    max_angle = _check_angle(max_angle)
    low, high = _check_range("scale", scale, 0.25, 0.7)
    fewest, most = _check_range("segments", segments, 0, 20)
    if not 0 < float(stroke_width) <= 8:
        raise ValueError(f"stroke_width must lie in (0, 8], got {stroke_width!r}")
    from scipy.ndimage import zoom

    rng = np.random.default_rng(seed)
    angles = rng.uniform(-max_angle, max_angle, size=len(digits))
    inputs = np.empty((len(digits), 3, SIZE, SIZE), dtype=np.float32)
    masks = np.empty((len(digits), SIZE, SIZE), dtype=bool)
    for k, (digit, peak) in enumerate(zip(digits, peaks)):
        placed = _place(digit / peak, rng, rng.uniform(low, high) * SIZE, angles[k])
        shading = zoom(rng.normal(size=(4, 4)), SIZE / 4, order=3)[:SIZE, :SIZE]
        shading = (shading - shading.min()) / max(np.ptp(shading), 1e-12) * rng.uniform(0.2, 0.5)
        clutter = _segment_alpha(rng, int(rng.integers(int(fewest), int(most) + 1)), float(stroke_width))
        background = np.maximum(shading, clutter * rng.uniform(0.6, 1.0))
        image = background * (1 - placed) + rng.uniform(0.6, 1.0) * placed
        inputs[k] = (255.0 * np.clip(image, 0, 1)).astype(np.float32)[None]
        masks[k] = placed >= MASK_THRESHOLD
    return DigitScenes(inputs, labels, angles, masks)


__all__ = ["DigitScenes", "MASK_THRESHOLD", "SIZE", "digit_scenes", "rotated_digits"]
