"""The scikit-learn digits as CIFAR-like images, and their splits."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from nclib.data.digits import digits_dataset, digits_splits

# Class sizes of scikit-learn's 1,797 digits, 0..9 (its documentation: ~180 per class).
CLASS_SIZES = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


@pytest.fixture(scope="module")
def raw_images():
    return load_digits().images  # (1797, 8, 8), grey levels 0..16


def test_shapes_types_and_classes():
    data = digits_dataset()
    assert data.inputs.shape == (1797, 3, 32, 32) and data.inputs.dtype == np.float32
    assert data.labels.dtype == np.int64
    assert data.classes == ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
    assert np.bincount(data.labels).tolist() == CLASS_SIZES
    assert data.inputs.min() == 0.0 and data.inputs.max() == 255.0
    assert np.array_equal(data.inputs[:, 0], data.inputs[:, 2])  # grey copied to every channel


def test_native_size_is_the_original_scaled_to_255(raw_images):
    data = digits_dataset(size=8, channels=1)
    assert np.allclose(data.inputs[:, 0], raw_images * 255 / 16)
    assert data.inputs[0, 0, 0, 0] == 0.0  # the first image's corner is background


def test_bilinear_enlargement_keeps_corners_and_averages_between(raw_images):
    # size 15 maps output pixel i to input position i * 7 / 14 = i / 2 (corners aligned)
    data = digits_dataset(size=15, channels=2)
    image, enlarged = raw_images[10] * 255 / 16, data.inputs[10, 1]
    assert enlarged.shape == (15, 15)
    assert enlarged[2, 4] == pytest.approx(image[1, 2])
    assert enlarged[14, 14] == pytest.approx(image[7, 7])
    assert enlarged[4, 5] == pytest.approx((image[2, 2] + image[2, 3]) / 2)
    assert enlarged[3, 3] == pytest.approx((image[1, 1] + image[1, 2] + image[2, 1] + image[2, 2]) / 4)


def test_splits_are_stratified_and_cover_everything():
    splits = digits_splits(seed=0, size=8)
    counts = {name: np.bincount(part.labels, minlength=10) for name, part in vars(splits).items()}
    assert sum(splits.sizes().values()) == 1797
    assert (sum(counts.values()) == CLASS_SIZES).all()
    for name, fraction in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        assert np.all(np.abs(counts[name] - fraction * np.array(CLASS_SIZES)) <= 1), name
    assert splits.train.inputs.shape[1:] == (3, 8, 8)
    assert splits.test.info["split"] == "test" and splits.test.classes == splits.train.classes


def test_splits_are_seeded():
    first, again, other = (digits_splits(seed=s, size=8, channels=1) for s in (3, 3, 4))
    assert np.array_equal(first.train.inputs, again.train.inputs)
    assert np.array_equal(first.test.labels, again.test.labels)
    assert not np.array_equal(first.train.inputs, other.train.inputs)


def test_per_class_and_fractions():
    splits = digits_splits(seed=1, size=8, per_class=20, fractions=(0.5, 0.25, 0.25))
    for part in (splits.train, splits.val, splits.test):
        assert np.bincount(part.labels).tolist() == [20] * 10


@pytest.mark.parametrize("call, message", [
    (lambda: digits_dataset(size=7), "size must be an integer >= 8"),
    (lambda: digits_dataset(channels=0), "channels must be an integer >= 1"),
    (lambda: digits_dataset(size=16.0), "size must be an integer"),
    (lambda: digits_splits(fractions=(0.8, 0.2)), "fractions must give train, val and test"),
    (lambda: digits_splits(fractions=(0.6, 0.3, 0.3)), "sum to 1"),
    (lambda: digits_splits(per_class=0), "per_class must be an integer >= 1"),
])
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()
