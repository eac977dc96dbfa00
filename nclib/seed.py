"""Explicit seeding: nclib never seeds anything on import."""

from __future__ import annotations

import random

import numpy as np


def set_seed(seed: int) -> np.random.Generator:
    """Seed Python's, NumPy's legacy and (when imported) torch's generators.

    Parameters
    ----------
    seed : int
        Non-negative seed.

    Returns
    -------
    numpy.random.Generator
        A fresh generator seeded with ``seed``, for code that prefers explicit state.

    Examples
    --------
    >>> rng = set_seed(0)
    >>> float(rng.random()) == float(np.random.default_rng(0).random())
    True
    """
    if int(seed) < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)
    return np.random.default_rng(seed)
