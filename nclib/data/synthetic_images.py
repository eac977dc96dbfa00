"""A procedural source task for the quick profile: coloured shapes and textures.

The quick profile pre-trains its small image zoo (:mod:`nclib.models.quick_image`) on a
task that needs no download and no stored file: every image is drawn here with NumPy
from a seed. Each class is one kind of figure (a filled disc, a ring, stripes, a
checkerboard, ...) drawn at a random position, scale and rotation, in random foreground
and background colours, over a background gradient and Gaussian pixel noise. Texture
classes fill a random round or square patch, so that a patch's outline alone does not
give the class away. Nothing here reads the target data (scikit-learn's digits or
CIFAR-10).

The images follow the contract of the image zoos: float32 arrays of shape
(N, 3, size, size) with values in [0, 255].
"""

from __future__ import annotations

import numpy as np

from nclib.data.base import Dataset

SHAPE_CLASSES = (
    "disc",
    "ring",
    "square",
    "triangle",
    "cross",
    "horizontal stripes",
    "vertical stripes",
    "diagonal stripes",
    "checkerboard",
    "dots",
    "frame",
    "blob",
)
"""Class names in label order; ``shapes_task(num_classes=k)`` uses the first ``k``."""

MIN_SIZE = 16
MIN_COLOUR_DISTANCE = 90.0


def shapes_task(n_per_class: int, seed: int, size: int = 32, num_classes: int = 10) -> Dataset:
    """Generate the balanced, shuffled shapes-and-textures classification task.

    Parameters
    ----------
    n_per_class : int
        Images per class (at least 1).
    seed : int
        Non-negative seed; the same arguments always give the same arrays.
    size : int, default 32
        Height and width in pixels (at least 16).
    num_classes : int, default 10
        Number of classes, 2 to ``len(SHAPE_CLASSES)``; the first ``num_classes`` of
        :data:`SHAPE_CLASSES` are used.

    Returns
    -------
    Dataset
        ``inputs`` float32 of shape (num_classes * n_per_class, 3, size, size) in
        [0, 255]; ``labels`` int64 of shape (num_classes * n_per_class,), exactly
        ``n_per_class`` of each class, in shuffled order; ``classes`` the class names;
        ``info`` the generator's settings.

    Raises
    ------
    ValueError
        If an argument is out of range.

    Examples
    --------
    >>> task = shapes_task(n_per_class=2, seed=0, size=16, num_classes=3)
    >>> task.inputs.shape, task.inputs.dtype, task.classes
    ((6, 3, 16, 16), dtype('float32'), ['disc', 'ring', 'square'])
    >>> np.bincount(task.labels).tolist()
    [2, 2, 2]
    """
    n_per_class = _check_int(n_per_class, "n_per_class", 1)
    seed = _check_int(seed, "seed", 0)
    size = _check_int(size, "size", MIN_SIZE)
    num_classes = _check_int(num_classes, "num_classes", 2)
    if num_classes > len(SHAPE_CLASSES):
        raise ValueError(f"num_classes must be at most {len(SHAPE_CLASSES)}, got {num_classes}")
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes, dtype=np.int64), n_per_class)
    labels = labels[rng.permutation(len(labels))]
    inputs = np.empty((len(labels), 3, size, size), dtype=np.float32)
    for index, label in enumerate(labels):
        inputs[index] = render_image(SHAPE_CLASSES[label], rng, size).transpose(2, 0, 1)
    info = {
        "source": "procedural shapes and textures (nclib.data.synthetic_images)",
        "seed": seed,
        "size": size,
        "n_per_class": n_per_class,
    }
    return Dataset(inputs, labels, list(SHAPE_CLASSES[:num_classes]), info)


def render_image(class_name: str, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """Draw one random image of ``class_name``.

    Parameters
    ----------
    class_name : str
        One of :data:`SHAPE_CLASSES`.
    rng : numpy.random.Generator
        Source of every random choice (position, scale, rotation, colours, noise).
    size : int, default 32
        Height and width in pixels (at least 16).

    Returns
    -------
    ndarray of shape (size, size, 3), float32
        RGB values in [0, 255] (channels last, ready for plotting).

    Examples
    --------
    >>> image = render_image("ring", np.random.default_rng(0), size=20)
    >>> image.shape, bool(image.min() >= 0 and image.max() <= 255)
    ((20, 20, 3), True)
    """
    if class_name not in SHAPE_CLASSES:
        raise ValueError(f"unknown class {class_name!r}; expected one of {SHAPE_CLASSES}")
    size = _check_int(size, "size", MIN_SIZE)
    mask = _MASKS[class_name](_Canvas(size, rng), rng)
    background, foreground = _colours(rng)
    image = _background(background, size, rng) * (1.0 - mask[..., None])
    image += foreground * mask[..., None]
    image += rng.normal(0.0, rng.uniform(4.0, 20.0), size=image.shape)
    return np.clip(image, 0.0, 255.0).astype(np.float32)


class _Canvas:
    """Pixel coordinates of one image, centred on a random point and rotated at random.

    ``dx``, ``dy`` are pixel offsets from the figure's centre, ``u``, ``v`` the same
    offsets rotated, ``distance`` the distance to the centre, ``radius`` the figure's
    scale in pixels; ``x``, ``y`` the plain pixel grid.
    """

    def __init__(self, size: int, rng: np.random.Generator):
        self.size = size
        self.radius = size * rng.uniform(0.2, 0.38)
        margin = min(self.radius, size / 2)
        centre_x, centre_y = rng.uniform(margin, size - margin, size=2)
        self.y, self.x = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
        angle = rng.uniform(0.0, 2.0 * np.pi)
        self.dx, self.dy = dx, dy = self.x - centre_x, self.y - centre_y
        self.u = np.cos(angle) * dx + np.sin(angle) * dy
        self.v = -np.sin(angle) * dx + np.cos(angle) * dy
        self.distance = np.hypot(dx, dy)


def _soft(signed_inside: np.ndarray) -> np.ndarray:
    """Anti-aliased mask from a signed distance (positive inside, in pixels)."""
    return np.clip(signed_inside + 0.5, 0.0, 1.0)


def _disc(canvas, rng):
    return _soft(canvas.radius - canvas.distance)


def _ring(canvas, rng):
    half_width = canvas.radius * rng.uniform(0.12, 0.22)
    return _soft(half_width - np.abs(canvas.distance - canvas.radius))


def _square(canvas, rng):
    half_side = canvas.radius * 0.85
    return _soft(half_side - np.maximum(np.abs(canvas.u), np.abs(canvas.v)))


def _frame(canvas, rng):
    half_side = canvas.radius * 0.9
    half_width = canvas.radius * rng.uniform(0.12, 0.2)
    box = np.maximum(np.abs(canvas.u), np.abs(canvas.v))
    return _soft(half_width - np.abs(box - half_side))


def _triangle(canvas, rng):
    # Equilateral triangle: inside all three edges, each at the inradius (R / 2).
    edges = [
        np.cos(a) * canvas.u + np.sin(a) * canvas.v - canvas.radius / 2
        for a in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3)
    ]
    return _soft(-np.max(edges, axis=0))


def _cross(canvas, rng):
    half_width = canvas.radius * rng.uniform(0.2, 0.32)
    u, v = np.abs(canvas.u), np.abs(canvas.v)
    bar_one = np.minimum(half_width - v, canvas.radius - u)
    bar_two = np.minimum(half_width - u, canvas.radius - v)
    return _soft(np.maximum(bar_one, bar_two))


def _blob(canvas, rng):
    # Union of three to five overlapping Gaussian bumps, cut at a level set.
    field = np.zeros_like(canvas.u)
    for _ in range(rng.integers(3, 6)):
        offset = rng.normal(0.0, canvas.radius * 0.6, size=2)
        width = canvas.radius * rng.uniform(0.3, 0.5)
        field += np.exp(-((canvas.u - offset[0]) ** 2 + (canvas.v - offset[1]) ** 2) / (2 * width**2))
    return np.clip((field - 0.5) * 4.0 + 0.5, 0.0, 1.0)


def _patch(canvas, rng):
    """Region a texture fills: a disc or an axis-aligned square, larger than the shapes."""
    radius = canvas.radius * rng.uniform(1.2, 1.6)
    if rng.random() < 0.5:
        return _soft(radius - canvas.distance)
    return _soft(radius - np.maximum(np.abs(canvas.dx), np.abs(canvas.dy)))


def _stripes(canvas, rng, angle):
    period = rng.uniform(4.0, 7.0)
    coordinate = np.cos(angle) * canvas.x + np.sin(angle) * canvas.y
    wave = np.sin(2 * np.pi * coordinate / period + rng.uniform(0, 2 * np.pi))
    return _patch(canvas, rng) * _soft(wave * period / np.pi)


def _horizontal(canvas, rng):
    return _stripes(canvas, rng, np.pi / 2 + rng.uniform(-0.15, 0.15))


def _vertical(canvas, rng):
    return _stripes(canvas, rng, rng.uniform(-0.15, 0.15))


def _diagonal(canvas, rng):
    return _stripes(canvas, rng, rng.choice([np.pi / 4, 3 * np.pi / 4]) + rng.uniform(-0.15, 0.15))


def _checkerboard(canvas, rng):
    period = rng.uniform(5.0, 8.0)
    angle = rng.uniform(-0.2, 0.2)
    u = np.cos(angle) * canvas.x + np.sin(angle) * canvas.y
    v = -np.sin(angle) * canvas.x + np.cos(angle) * canvas.y
    wave = np.sin(2 * np.pi * u / period) * np.sin(2 * np.pi * v / period)
    return _patch(canvas, rng) * _soft(wave * period / np.pi)


def _dots(canvas, rng):
    period = rng.uniform(5.0, 8.0)
    dot_radius = period * rng.uniform(0.22, 0.32)
    phase = rng.uniform(0, period, size=2)
    dx = (canvas.x + phase[0]) % period - period / 2
    dy = (canvas.y + phase[1]) % period - period / 2
    return _patch(canvas, rng) * _soft(dot_radius - np.hypot(dx, dy))


_MASKS = {
    "disc": _disc,
    "ring": _ring,
    "square": _square,
    "triangle": _triangle,
    "cross": _cross,
    "horizontal stripes": _horizontal,
    "vertical stripes": _vertical,
    "diagonal stripes": _diagonal,
    "checkerboard": _checkerboard,
    "dots": _dots,
    "frame": _frame,
    "blob": _blob,
}


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A background and a foreground RGB colour at least ``MIN_COLOUR_DISTANCE`` apart."""
    background = rng.uniform(0.0, 255.0, size=3)
    while True:
        foreground = rng.uniform(0.0, 255.0, size=3)
        if np.linalg.norm(foreground - background) >= MIN_COLOUR_DISTANCE:
            return background, foreground


def _background(colour: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A (size, size, 3) linear colour gradient around ``colour``."""
    y, x = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
    angle = rng.uniform(0.0, 2.0 * np.pi)
    ramp = np.cos(angle) * x + np.sin(angle) * y
    return colour + ramp[..., None] * rng.uniform(-50.0, 50.0, size=3)


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)
