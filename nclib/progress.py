"""Progress bars, in one place.

Every loop in nclib that can take more than a few seconds (models of a zoo, seeds,
training epochs, feature batches) is wrapped in :func:`progress`. Setting the
environment variable ``NCLIB_PROGRESS=0`` turns all bars off; the book build does so,
because bars written to a notebook's stderr only clutter the pages.
"""

from __future__ import annotations

import os

DISABLING_VALUES = ("0", "false", "no", "off")


def enabled() -> bool:
    """Whether progress bars are shown (``NCLIB_PROGRESS`` is not ``0``/``false``/``no``/``off``).

    Examples
    --------
    >>> isinstance(enabled(), bool)
    True
    """
    return os.environ.get("NCLIB_PROGRESS", "1").strip().lower() not in DISABLING_VALUES


def progress(iterable, desc: str, total: int | None = None, leave: bool = False):
    """Wrap ``iterable`` in a text progress bar (tqdm) written to stderr.

    Parameters
    ----------
    iterable : iterable
        What the loop runs over; it is yielded unchanged.
    desc : str
        Label shown before the bar, e.g. ``"models"`` or ``"head cnn-music"``.
    total : int, optional
        Number of items, for iterables without ``len``.
    leave : bool
        Keep the finished bar on screen (default: erase it, so nested bars stay tidy).

    Returns
    -------
    iterable
        A ``tqdm`` object, or ``iterable`` itself when bars are disabled.

    Notes
    -----
    The plain-text ``tqdm`` is used rather than ``tqdm.auto``: the notebook variant needs
    ``ipywidgets``, which is not a dependency of this project.

    Examples
    --------
    >>> [item for item in progress(range(3), desc="demo")]
    [0, 1, 2]
    """
    if not enabled():
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=leave, dynamic_ncols=True)
