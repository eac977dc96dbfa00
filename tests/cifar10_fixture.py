"""A tiny CIFAR-10 archive in the exact official format, for tests.

Same member names as ``cifar-10-python.tar.gz`` (``cifar-10-batches-py/data_batch_1`` …
``data_batch_5``, ``test_batch``, ``batches.meta``, ``readme.html``), pickled dicts with
bytes keys (as Python 3 reads the official Python 2 pickles with ``encoding="bytes"``),
uint8 pixel rows of 3,072 values (red, green, blue planes, each 32x32 row-major).

Use: ``from cifar10_fixture import write_tiny_cifar10`` (pytest puts ``tests/`` on the path).
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck"]
BATCH_NAMES = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]
FOLDER = "cifar-10-batches-py"


def tiny_cifar10_batches(per_batch: int = 20, seed: int = 0) -> dict:
    """The pickled dicts of the tiny archive, by member file name.

    Each batch has ``per_batch`` images; labels cycle through the 10 classes (shuffled),
    so a batch with a multiple of 10 images is balanced.
    """
    rng = np.random.default_rng(seed)
    batches = {}
    for index, name in enumerate(BATCH_NAMES):
        labels = rng.permutation(np.arange(per_batch) % 10)
        label = "testing batch 1 of 1" if name == "test_batch" else f"training batch {index + 1} of 5"
        batches[name] = {
            b"batch_label": label.encode(),
            b"labels": [int(value) for value in labels],
            b"data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8),
            b"filenames": [f"tiny_{index}_{row:05d}.png".encode() for row in range(per_batch)],
        }
    batches["batches.meta"] = {
        b"num_cases_per_batch": per_batch,
        b"label_names": [name.encode() for name in LABEL_NAMES],
        b"num_vis": 3072,
    }
    return batches


def write_tiny_cifar10(folder, per_batch: int = 20, seed: int = 0) -> tuple[Path, str]:
    """Write ``<folder>/cifar-10-python.tar.gz``; return its path and MD5 hex digest."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cifar-10-python.tar.gz"
    members = {name: pickle.dumps(content, protocol=2)
               for name, content in tiny_cifar10_batches(per_batch, seed).items()}
    members["readme.html"] = b"<html><body>tiny CIFAR-10 test fixture</body></html>\n"
    with tarfile.open(path, "w:gz") as tar:
        directory = tarfile.TarInfo(FOLDER)
        directory.type, directory.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(directory)
        for name, payload in members.items():
            info = tarfile.TarInfo(f"{FOLDER}/{name}")
            info.size, info.mode = len(payload), 0o644
            tar.addfile(info, io.BytesIO(payload))
    return path, hashlib.md5(path.read_bytes()).hexdigest()
