"""Settings read from the environment, in one place.

``NCLIB_DATA``
    The data folder: downloads, extracted archives and every on-disk cache. Default:
    ``data/cache`` in the project (the folder that holds ``nclib/``).
``NCLIB_PROFILE``
    The experiment scale, ``quick`` (default) or ``paper``.

Nothing here runs at import time. The functions that prepare third-party libraries
(:func:`prepare_keras`, :func:`prepare_numba`) are called by the nclib modules that need
those libraries, immediately before importing them.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROFILES = ("quick", "paper")


def data_dir() -> Path:
    """Return the data folder (``$NCLIB_DATA`` or ``<project>/data/cache``).

    Returns
    -------
    pathlib.Path
        The folder; it is not created here.

    Examples
    --------
    >>> data_dir().name in {"cache", os.environ.get("NCLIB_DATA", "cache").rstrip("/").split("/")[-1]}
    True
    """
    value = os.environ.get("NCLIB_DATA")
    return Path(value).expanduser() if value else PROJECT_ROOT / "data" / "cache"


def profile() -> str:
    """Return the experiment profile named by ``$NCLIB_PROFILE`` (default ``quick``).

    Raises
    ------
    ValueError
        If the variable names an unknown profile.

    Examples
    --------
    >>> profile() in PROFILES
    True
    """
    value = os.environ.get("NCLIB_PROFILE", "quick").strip().lower()
    if value not in PROFILES:
        raise ValueError(f"NCLIB_PROFILE={value!r} is not one of {PROFILES}")
    return value


def tool_dir(name: str) -> Path:
    """Folder for a third-party tool's own cache, inside the project's ``data/`` folder.

    Examples
    --------
    >>> tool_dir("keras").parent.name
    'data'
    """
    return PROJECT_ROOT / "data" / name


def prepare_keras() -> None:
    """Select Keras' torch backend and a project-local ``KERAS_HOME``.

    Must run before the first ``import keras``; values the user already set are kept.
    ``KERAS_BACKEND`` must be ``torch``: there is no TensorFlow in this project.

    Examples
    --------
    >>> prepare_keras(); os.environ["KERAS_BACKEND"]
    'torch'
    """
    os.environ.setdefault("KERAS_BACKEND", "torch")
    os.environ.setdefault("KERAS_HOME", str(tool_dir("keras")))
    if os.environ["KERAS_BACKEND"] != "torch":
        raise RuntimeError(
            f"KERAS_BACKEND={os.environ['KERAS_BACKEND']!r}; nclib needs the torch backend"
        )


def prepare_numba() -> None:
    """Send numba's compile cache (used by librosa) to a project-local folder.

    Examples
    --------
    >>> prepare_numba(); "NUMBA_CACHE_DIR" in os.environ
    True
    """
    os.environ.setdefault("NUMBA_CACHE_DIR", str(tool_dir("numba")))
