"""The procedural shapes task: determinism, shapes, ranges, balance, classes."""

import numpy as np
import pytest

from nclib.data.synthetic_images import SHAPE_CLASSES, render_image, shapes_task


def test_same_seed_same_images_other_seed_other_images():
    first = shapes_task(n_per_class=3, seed=7, size=24, num_classes=4)
    again = shapes_task(n_per_class=3, seed=7, size=24, num_classes=4)
    other = shapes_task(n_per_class=3, seed=8, size=24, num_classes=4)
    np.testing.assert_array_equal(first.inputs, again.inputs)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert not np.array_equal(first.inputs, other.inputs)


def test_shapes_ranges_dtypes_and_balance():
    task = shapes_task(n_per_class=5, seed=0)
    assert task.inputs.shape == (50, 3, 32, 32)
    assert task.inputs.dtype == np.float32 and task.labels.dtype == np.int64
    assert task.inputs.min() >= 0.0 and task.inputs.max() <= 255.0
    assert task.classes == list(SHAPE_CLASSES[:10])
    assert np.bincount(task.labels).tolist() == [5] * 10
    assert task.labels[:10].tolist() != sorted(task.labels[:10].tolist())  # shuffled
    assert task.info["seed"] == 0


def test_every_class_draws_a_visible_figure():
    rng = np.random.default_rng(3)
    for name in SHAPE_CLASSES:
        image = render_image(name, rng, size=32)
        assert image.shape == (32, 32, 3)
        # Foreground and background differ by >= 90 in colour: the figure stands out of
        # the noise, so the per-image pixel spread is far above the noise level (<= 20).
        assert image.std(axis=(0, 1)).max() > 20.0, name


def test_images_vary_within_a_class():
    task = shapes_task(n_per_class=4, seed=1, num_classes=2)
    discs = task.inputs[task.labels == 0]
    assert not np.allclose(discs[0], discs[1])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_per_class": 0}, "n_per_class"),
        ({"seed": -1}, "seed"),
        ({"size": 8}, "size"),
        ({"num_classes": 1}, "num_classes"),
        ({"num_classes": len(SHAPE_CLASSES) + 1}, "num_classes"),
        ({"n_per_class": 2.5}, "n_per_class"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    arguments = {"n_per_class": 2, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        shapes_task(**arguments)


def test_unknown_class_is_refused():
    with pytest.raises(ValueError, match="unknown class"):
        render_image("hexagon", np.random.default_rng(0))
