"""Settings read from the environment, in one place.

``NCLIB_DATA``
    The data folder: downloads, extracted archives and every on-disk cache. Default:
    ``data/cache`` in a source checkout (the folder that holds ``nclib/``, recognised by
    its ``pyproject.toml`` and ``_toc.yml``); for an installed package, the per-user cache
    folder :func:`user_cache_dir` (``~/.cache/nclib`` on Linux), never site-packages.
``NCLIB_PROFILE``
    The experiment scale, ``quick`` (default) or ``paper``.

Nothing here runs at import time. The functions that prepare third-party libraries
(:func:`prepare_keras`, :func:`prepare_numba`) are called by the nclib modules that need
those libraries, immediately before importing them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROFILES = ("quick", "paper")
APP_NAME = "nclib"
# Files beside ``nclib/`` that only a source checkout of the project has (an installed
# wheel puts ``nclib/`` into site-packages, where neither exists).
CHECKOUT_MARKERS = ("pyproject.toml", "_toc.yml")


def in_source_checkout() -> bool:
    """Whether nclib runs from a source checkout (editable install or ``PYTHONPATH``).

    Examples
    --------
    >>> isinstance(in_source_checkout(), bool)
    True
    """
    return all((PROJECT_ROOT / marker).is_file() for marker in CHECKOUT_MARKERS)


def user_cache_dir(app: str = APP_NAME, platform: str | None = None, environ=None) -> Path:
    """The per-user cache folder of ``app``, as ``pooch.os_cache`` places it (no pooch needed).

    ``$XDG_CACHE_HOME/<app>`` (an absolute path) or ``~/.cache/<app>`` on Linux and other
    Unix systems, ``~/Library/Caches/<app>`` on macOS, ``%LOCALAPPDATA%\\<app>\\Cache`` on
    Windows. Nothing is created.

    Parameters
    ----------
    app : str
        The folder's name.
    platform : str, optional
        A ``sys.platform`` value (default: this interpreter's).
    environ : mapping, optional
        The environment variables to read (default ``os.environ``).

    Examples
    --------
    >>> str(user_cache_dir(platform="linux", environ={"XDG_CACHE_HOME": "/tmp/xdg"}))
    '/tmp/xdg/nclib'
    >>> user_cache_dir(platform="darwin").parts[-3:]
    ('Library', 'Caches', 'nclib')
    >>> user_cache_dir(platform="win32", environ={"LOCALAPPDATA": "C:/Users/a/AppData/Local"}).parts[-2:]
    ('nclib', 'Cache')
    """
    platform = sys.platform if platform is None else platform
    environ = os.environ if environ is None else environ
    if platform.startswith("win"):
        base = environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / app / "Cache"
    if platform == "darwin":
        return Path.home() / "Library" / "Caches" / app
    xdg = environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / app


def data_dir() -> Path:
    """Return the data folder: ``$NCLIB_DATA``, else ``<project>/data/cache`` in a source
    checkout, else the per-user cache folder (:func:`user_cache_dir`).

    Returns
    -------
    pathlib.Path
        The folder; it is not created here.

    Examples
    --------
    >>> data_dir().name in {"cache", "nclib", os.environ.get("NCLIB_DATA", "cache").rstrip("/").split("/")[-1]}
    True
    """
    value = os.environ.get("NCLIB_DATA")
    if value:
        return Path(value).expanduser()
    return PROJECT_ROOT / "data" / "cache" if in_source_checkout() else user_cache_dir()


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
    """Folder for a third-party tool's own cache: inside the project's ``data/`` folder in
    a source checkout, else inside the per-user cache folder (:func:`user_cache_dir`).

    Examples
    --------
    >>> tool_dir("keras").parent == (PROJECT_ROOT / "data" if in_source_checkout() else user_cache_dir())
    True
    """
    return (PROJECT_ROOT / "data" if in_source_checkout() else user_cache_dir()) / name


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
