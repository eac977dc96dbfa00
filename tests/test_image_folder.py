"""nclib.data.image_folder: the folder-of-images loader and its checks at the boundary."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")

from nclib.data.image_folder import image_folder_files, load_image_folder  # noqa: E402


def _write(path, array, **options):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array)).save(path, **options)
    return path


@pytest.fixture
def folder(tmp_path):
    """Two classes: 'cats' with a grey and an RGB image, 'dogs' with an RGBA image."""
    root = tmp_path / "images"
    _write(root / "cats" / "b.png", np.full((10, 6), 40, np.uint8))          # grey, not square
    _write(root / "cats" / "a.jpg", np.full((8, 8, 3), (255, 0, 0), np.uint8), quality=100)
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 2], rgba[..., 3] = 200, 0                                       # transparent blue
    _write(root / "dogs" / "x.png", rgba)
    return root


def test_reads_every_image_with_its_class_in_name_order(folder):
    images, labels, names = load_image_folder(folder, size=5)
    assert names == ["cats", "dogs"]
    assert images.shape == (3, 3, 5, 5) and images.dtype == np.float32
    assert labels.dtype == np.int64 and labels.tolist() == [0, 0, 1]
    red, grey, blue = images                                    # a.jpg, b.png, x.png
    np.testing.assert_allclose(red.mean(axis=(1, 2)), [255, 0, 0], atol=2)
    np.testing.assert_array_equal(grey, np.full((3, 5, 5), 40, np.float32))
    np.testing.assert_array_equal(blue.mean(axis=(1, 2)), [0, 0, 200])  # alpha dropped
    assert images.min() >= 0 and images.max() <= 255


def test_resizing_is_bilinear_and_the_default_size_is_32(tmp_path):
    ramp = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (64, 1))
    _write(tmp_path / "a" / "ramp.png", ramp)
    _write(tmp_path / "b" / "flat.png", np.zeros((3, 3), np.uint8))
    images, _, _ = load_image_folder(tmp_path)
    assert images.shape == (2, 3, 32, 32)
    row = images[0, 0, 16]
    assert np.all(np.diff(row) > 0)                    # a smooth ramp stays a ramp
    assert abs(row.mean() - ramp.mean()) < 3


def test_sixteen_bit_grey_is_scaled_to_eight_bits(tmp_path):
    _write(tmp_path / "a" / "deep.png", np.full((4, 4), 65535, np.uint16))
    _write(tmp_path / "b" / "mid.png", np.full((4, 4), 257 * 100, np.uint16))
    images, _, _ = load_image_folder(tmp_path, size=4)
    assert images[0].min() == 255 and images[1].max() == 100


def test_hidden_entries_are_ignored(folder):
    (folder / ".DS_Store").write_bytes(b"\x00\x01")
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / "cats" / ".thumbs").write_text("x")
    _, labels, names = load_image_folder(folder, size=4)
    assert names == ["cats", "dogs"] and len(labels) == 3


def test_matches_the_model_zoo_contract(folder):
    torch = pytest.importorskip("torch")
    from nclib.features import extract
    from nclib.models.pretrained_image import MobileNetV2

    torch.manual_seed(0)
    images, _, _ = load_image_folder(folder)
    out = extract(MobileNetV2(), images, batch_size=2)
    assert out["features"].shape == (3, 1280)


# ----------------------------------------------------------------------------- bad input
def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(ValueError, match="does not exist") as caught:
        load_image_folder(tmp_path / "nowhere")
    assert "nowhere" in str(caught.value)


def test_a_file_instead_of_a_folder(tmp_path):
    path = _write(tmp_path / "one.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="is not a folder"):
        load_image_folder(path)


def test_a_folder_without_classes(tmp_path):
    with pytest.raises(ValueError, match="no class folders"):
        load_image_folder(tmp_path)


def test_a_single_class_is_refused(tmp_path):
    _write(tmp_path / "only" / "a.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="one class folder.*'only'"):
        load_image_folder(tmp_path)


def test_an_empty_class_is_named(folder):
    (folder / "birds").mkdir()
    with pytest.raises(ValueError, match="holds no images") as caught:
        load_image_folder(folder)
    assert str(folder / "birds") in str(caught.value)


def test_a_class_with_only_hidden_files_is_empty(folder):
    (folder / "birds").mkdir()
    (folder / "birds" / ".DS_Store").write_bytes(b"")
    with pytest.raises(ValueError, match="birds holds no images"):
        load_image_folder(folder)


def test_a_file_outside_the_class_folders_is_named(folder):
    (folder / "README.txt").write_text("my photos")
    with pytest.raises(ValueError, match="README.txt is a file outside any class folder"):
        load_image_folder(folder)


def test_a_nested_folder_is_named(folder):
    (folder / "cats" / "kittens").mkdir()
    with pytest.raises(ValueError, match="kittens is a folder inside the class folder 'cats'"):
        load_image_folder(folder)


def test_a_non_image_file_is_named(folder):
    (folder / "dogs" / "labels.csv").write_text("file,label\nx.png,dog\n")
    with pytest.raises(ValueError, match=r"labels\.csv is not an image") as caught:
        load_image_folder(folder)
    assert str(folder / "dogs" / "labels.csv") in str(caught.value)


def test_an_empty_file_is_named(folder):
    (folder / "dogs" / "zero.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"zero\.png is not an image"):
        load_image_folder(folder)


def test_a_truncated_image_is_named(folder, tmp_path):
    whole = _write(tmp_path / "whole.png",
                   np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = whole.read_bytes()
    (folder / "dogs" / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cannot read the image .*cut\.png"):
        load_image_folder(folder)


def test_a_corrupt_jpeg_is_named(folder):
    data = (folder / "cats" / "a.jpg").read_bytes()
    (folder / "cats" / "broken.jpg").write_bytes(data[:20] + b"\xff" * 40)
    with pytest.raises(ValueError, match=r"broken\.jpg"):
        load_image_folder(folder)


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0,
                    reason="file permissions do not bind here")
def test_an_unreadable_file_is_named(folder):
    path = folder / "dogs" / "x.png"
    path.chmod(0)
    try:
        with pytest.raises(ValueError, match=r"cannot read the image .*x\.png"):
            load_image_folder(folder)
    finally:
        path.chmod(0o644)


def test_a_permission_error_is_named_even_as_root(folder, monkeypatch):
    real_open = Image.open

    def refuse(path, *args, **kwargs):
        if str(path).endswith("x.png"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(Image, "open", refuse)
    with pytest.raises(ValueError, match=r"cannot read the image .*x\.png: Permission denied"):
        load_image_folder(folder)


def test_floating_point_pixels_are_refused_by_name(folder):
    _write(folder / "dogs" / "depth.tif", np.full((3, 3), 0.5, np.float32))
    with pytest.raises(ValueError, match=r"depth\.tif has 'F' \(floating-point\) pixels"):
        load_image_folder(folder)


def test_a_decompression_bomb_is_refused(folder, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # a.jpg has 64 pixels: over 2 x 10
    with pytest.raises(ValueError, match=r"a\.jpg is too large to read safely"):
        load_image_folder(folder)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40)  # 64 pixels: only a warning in Pillow
    with pytest.raises(ValueError, match=r"a\.jpg is too large to read safely"):
        load_image_folder(folder)


@pytest.mark.parametrize("size", [0, -3, 2.5, "32", True, None])
def test_a_bad_size_is_refused(folder, size):
    with pytest.raises(ValueError, match="size must be a positive integer"):
        load_image_folder(folder, size=size)


def test_the_file_listing_checks_without_reading(folder):
    (folder / "dogs" / "notes.txt").write_text("not read here")
    files = image_folder_files(folder)
    assert list(files) == ["cats", "dogs"]
    assert [path.name for path in files["dogs"]] == ["notes.txt", "x.png"]
