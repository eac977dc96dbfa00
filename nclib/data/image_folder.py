"""Labelled images from a folder laid out one sub-folder per class.

The layout most image collections already have, and the one readers bring to the how-to
chapter::

    folder/
        cat/    img001.png  img002.jpg  ...
        dog/    a.png  b.png  ...

Each sub-folder is a class, named by the folder; every file in it must be an image that
Pillow can read (PNG, JPEG, GIF, BMP, TIFF, WebP, ...). The whole folder is checked
before anything is returned: a missing folder, a class folder with no images, a file
that is not an image or cannot be read, a file outside any class folder or a folder
nested inside a class raises a :class:`ValueError` that names it, so one bad file never
becomes a silently smaller data set. Names starting with a dot (``.DS_Store``,
``.ipynb_checkpoints``) are ignored.

Images come back as the model zoos of :mod:`nclib.models` take them: float32 RGB of shape
(N, 3, size, size) with values in [0, 255]. Grey images are copied into the three
channels; an alpha channel is dropped (the colour values are kept as stored); 16-bit
grey images are scaled to 8 bits; each image is resized to ``size`` x ``size`` with
bilinear interpolation, so an image that is not square is stretched, not cropped.

Pillow is a dependency of matplotlib (the ``book`` extra) and is imported only when a
folder is read.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

MIN_CLASSES = 2
"""Fewest class folders a labelled folder must have (a single class has nothing to rank)."""

_WIDE_GREY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def load_image_folder(path, size: int = 32) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read ``path/<class>/<image>`` into arrays the model zoos take.

    Parameters
    ----------
    path : str or pathlib.Path
        A folder with one sub-folder per class (at least two), each holding at least one
        image file and nothing else. Names starting with a dot are ignored.
    size : int
        Side in pixels of the square images returned (at least 1); every image is resized
        to ``size`` x ``size`` (bilinear; non-square images are stretched).

    Returns
    -------
    images : ndarray of shape (N, 3, size, size), float32
        RGB values in [0, 255], classes in the order of ``class_names`` and, within a
        class, files in the order of their names.
    labels : ndarray of shape (N,), int64
        Index into ``class_names`` of each image's class.
    class_names : list of str
        The class folders' names, sorted.

    Raises
    ------
    ValueError
        If ``path`` does not exist or is not a folder; ``size`` is not a positive integer;
        the folder has fewer than two class folders, a file outside any class folder, a
        class folder without images or a folder inside a class folder; or a file is not an
        image, cannot be read, is truncated or has a pixel format that is not colour or
        grey. The message names the offending file or folder.
    ImportError
        If Pillow is not installed.

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image
    >>> root = Path(tempfile.mkdtemp())
    >>> for name, grey in [("dark", 20), ("light", 230)]:
    ...     (root / name).mkdir()
    ...     for k in range(2):
    ...         Image.new("L", (8, 6), grey).save(root / name / f"{k}.png")
    >>> images, labels, class_names = load_image_folder(root, size=4)
    >>> images.shape, images.dtype.name, labels.tolist(), class_names
    ((4, 3, 4, 4), 'float32', [0, 0, 1, 1], ['dark', 'light'])
    >>> float(images[0].max()), float(images[-1].min())
    (20.0, 230.0)
    >>> (root / "light" / "notes.txt").write_text("not an image")
    12
    >>> load_image_folder(root)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: .../light/notes.txt is not an image Pillow can read
    """
    Image = _pillow()
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    files = image_folder_files(path)
    images = np.empty((sum(len(names) for names in files.values()), 3, size, size), np.float32)
    labels = np.empty(len(images), np.int64)
    row = 0
    for label, (class_name, paths) in enumerate(files.items()):
        for file in paths:
            images[row] = _read_image(Image, file, size)
            labels[row] = label
            row += 1
    return images, labels, list(files)


def image_folder_files(path) -> dict[str, list[Path]]:
    """The class folders of ``path`` and their files, checked but not yet read.

    Parameters
    ----------
    path : str or pathlib.Path
        As in :func:`load_image_folder`.

    Returns
    -------
    dict of str to list of pathlib.Path
        Class name -> its files sorted by name; classes sorted by name.

    Raises
    ------
    ValueError
        As in :func:`load_image_folder`, for everything but the images' contents.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> image_folder_files(root)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: the image folder ... has no class folders; lay it out as folder/<class>/<image>
    """
    root = Path(path)
    if not root.exists():
        raise ValueError(f"the image folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise ValueError(f"{str(root)!r} is not a folder; give the folder holding one "
                         "sub-folder per class")
    classes = {}
    for entry in _visible(root):
        if not entry.is_dir():
            raise ValueError(f"{entry} is a file outside any class folder; put every image "
                             "into folder/<class>/")
        files = []
        for item in _visible(entry):
            if item.is_dir():
                raise ValueError(f"{item} is a folder inside the class folder {entry.name!r}; "
                                 "a class folder holds image files only")
            files.append(item)
        if not files:
            raise ValueError(f"the class folder {entry} holds no images")
        classes[entry.name] = files
    if not classes:
        raise ValueError(f"the image folder {str(root)!r} has no class folders; lay it out as "
                         "folder/<class>/<image>")
    if len(classes) < MIN_CLASSES:
        raise ValueError(f"the image folder {str(root)!r} has one class folder "
                         f"({next(iter(classes))!r}); at least {MIN_CLASSES} classes are needed")
    return classes


def _visible(folder: Path) -> list[Path]:
    """The entries of ``folder`` whose names do not start with a dot, sorted by name."""
    try:
        entries = list(folder.iterdir())
    except OSError as error:
        raise ValueError(f"cannot list the folder {folder}: {error.strerror or error}") from None
    return sorted((entry for entry in entries if not entry.name.startswith(".")),
                  key=lambda entry: entry.name)


def _pillow():
    try:
        from PIL import Image
    except ImportError as error:  # pragma: no cover - Pillow comes with matplotlib
        raise ImportError("reading an image folder needs Pillow (pip install pillow, or "
                          "nclib[book], which brings it with matplotlib)") from error
    return Image


class _UnsupportedPixels(Exception):
    """An image whose pixel format this loader does not turn into RGB."""


def _read_image(Image, file: Path, size: int) -> np.ndarray:
    """One image file as float32 (3, size, size) in [0, 255]; a ValueError naming it if not."""
    from PIL import UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                image.load()
                return _as_rgb(Image, image, size)
    except UnidentifiedImageError:
        raise ValueError(f"{file} is not an image Pillow can read") from None
    except _UnsupportedPixels as error:
        raise ValueError(f"{file} has {error} pixels; save it as 8-bit colour or grey") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ValueError(f"{file} is too large to read safely: {error}") from None
    except (OSError, SyntaxError, EOFError, ValueError) as error:  # unreadable, truncated, corrupt
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise ValueError(f"cannot read the image {file}: {reason}") from None


def _as_rgb(Image, image, size: int) -> np.ndarray:
    """A loaded PIL image as float32 (3, size, size) RGB in [0, 255]."""
    if image.mode in _WIDE_GREY_MODES:  # 16-bit grey (Pillow reads it as "I;16" or "I")
        grey = np.asarray(image, dtype=np.float64)
        if grey.size and (grey.min() < 0 or grey.max() > 65535):
            raise _UnsupportedPixels(f"{image.mode!r} (32-bit integer)")
        grey = np.clip(np.rint(grey / 257.0), 0, 255).astype(np.uint8)  # 65535 -> 255
        image = Image.fromarray(grey)
    elif image.mode == "F":
        raise _UnsupportedPixels("'F' (floating-point)")
    rgb = image.convert("RGB")
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.BILINEAR)
    return np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1)
