"""How fast this machine is today, so that the book's build times can be compared (a script, not a test).

The two-core machines that build the book are not equally fast: the same commit's
chapters have taken up to 1.8 times as long on one evening as on another. A build time means
little without the speed of the machine it was measured on. This script runs three
fixed workloads that stand for what the chapters spend their time on, each five times,
in this process, and prints the median seconds of each, their sum, and the ratio of that
sum to the sum measured on the reference run below (larger: slower than the reference):

* ``training``: a small convolutional network with batch normalisation (inverted
  residual blocks, like the image zoo's) trained with Adam on random 32 x 32 images in
  batches of 64, forward and backward, on ``torch.get_num_threads()`` threads;
* ``linear algebra``: symmetric eigendecompositions and matrix products in float64
  (the scores and the convex heads), through NumPy's BLAS and LAPACK;
* ``python``: an interpreter-bound loop (bookkeeping, tables, plotting set-up).

``.ci/run`` runs it (``make speed``) just before ``make book``, with the machine otherwise
idle, so that each CI log carries the build time and the machine's speed together.

Usage: python benchmarks/machine_speed.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

REFERENCE = {"training": 2.80, "linear algebra": 1.85, "python": 1.45}
"""Median seconds on the reference machine: the one on which the fresh-clone ``.ci/run`` of
4b9b288 took 1,260 s for ``make book`` from a cold cache (2026-12-02, 02:21 to 02:42 UTC),
measured idle right after it with OMP_NUM_THREADS=2. Back-to-back runs there differed by
up to 20 % per workload and 10 % in total: a ratio within 0.9 to 1.1 means "as fast"."""


def training(steps: int = 15) -> None:
    """Adam on a small inverted-residual network, batches of 64 random 32 x 32 images."""
    import torch
    from torch import nn

    def block(channels, expand):
        hidden = channels * expand
        return nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
            nn.ReLU6(), nn.Conv2d(hidden, channels, 1, bias=False), nn.BatchNorm2d(channels))

    torch.manual_seed(0)
    stem = nn.Sequential(nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU6())
    blocks = nn.ModuleList([block(32, 6), block(32, 6), block(32, 6)])
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    parameters = [*stem.parameters(), *blocks.parameters(), *head.parameters()]
    optimiser = torch.optim.Adam(parameters, lr=1e-3)
    images = torch.randn(steps, 64, 3, 32, 32)
    labels = torch.randint(0, 10, (steps, 64))
    for x, y in zip(images, labels):
        h = stem(x)
        for b in blocks:
            h = h + b(h)
        loss = nn.functional.cross_entropy(head(h), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()


def linear_algebra(size: int = 600, repeats: int = 30) -> None:
    """Symmetric eigendecompositions and products of size x size float64 matrices."""
    import numpy as np

    rng = np.random.default_rng(0)
    for _ in range(repeats):
        a = rng.normal(size=(2 * size, size))
        gram = a.T @ a
        np.linalg.eigh(gram)
        _ = a @ gram


def python(n: int = 12_000_000) -> None:
    """An interpreter-bound loop over small dictionaries and lists."""
    counts: dict = {}
    row: list = []
    for i in range(n):
        key = i % 97
        counts[key] = counts.get(key, 0) + 1
        row.append(key)
        if len(row) > 64:
            row.clear()


WORKLOADS = {"training": training, "linear algebra": linear_algebra, "python": python}


def measure(repeats: int = 5) -> dict:
    """Median seconds of each workload over ``repeats`` runs (after one untimed warm-up)."""
    medians = {}
    for name, work in WORKLOADS.items():
        work()  # imports, first-call set-up, caches
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            work()
            seconds.append(time.perf_counter() - started)
        medians[name] = statistics.median(seconds)
    return medians


def main(argv=None) -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    medians = measure(args.repeats)
    print(f"machine speed: {torch.get_num_threads()} torch threads, median of {args.repeats} runs")
    for name, seconds in medians.items():
        print(f"  {name:15s} {seconds:6.2f} s   reference {REFERENCE[name]:5.2f} s   "
              f"x{seconds / REFERENCE[name]:.2f}")
    total, reference = sum(medians.values()), sum(REFERENCE.values())
    print(f"machine speed: {total:.2f} s against {reference:.2f} s on the reference run: "
          f"x{total / reference:.2f} (larger is slower)")


if __name__ == "__main__":
    main()
