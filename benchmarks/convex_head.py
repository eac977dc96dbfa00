"""Benchmark the convex head's solver on real embeddings (a script, not a test).

For each network of the quick image zoo, on the quick image experiment's target
(Fashion-MNIST when its files are here, else the digits), it solves the head regime's
L2 path twice on the same cached embeddings, one BLAS thread each, in the same process
and one after the other:

* ``nclib``: :func:`nclib.convex_head.convex_head_transfer` as the experiments run it
  (L-BFGS on features whitened in the eigenbasis of their covariance);
* ``plain``: the same path, grid, warm starts, stopping rule (largest gradient component
  at most ``GTOL``) and early stop of the path, with L-BFGS on the standardised features
  as they are (what nclib did before the preconditioning).

It reports the seconds and L-BFGS iterations of each; by how much nclib's objective
exceeds plain L-BFGS's at worst over the grid points both solved, relative (negative:
nclib's is lower everywhere; both stop at a gradient of ``GTOL``, which leaves objectives
a few 1e-6 apart in relative terms at the weakest penalties); whether both kept the same
L2 strength; and the covariance's condition number (largest over smallest eigenvalue
above 1e-10 of the largest) with the number of eigenvalues below that. Targets: nclib
is never slower, never worse than 1e-5 relative, and keeps the same strength.

The embeddings come from the data folder's cache (the book's build leaves them there);
a model whose embeddings are missing is run once to make them.

Usage: python benchmarks/convex_head.py [--target digits|fashion-mnist] [--models a b ...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def plain_path(train_x, train_y, val_x, val_y, num_classes, grid, gtol, patience):
    """The L2 path with unpreconditioned L-BFGS: per grid point (l2, val accuracy, iterations, objective)."""
    from scipy.optimize import minimize

    from nclib.logistic import _objective, _probs

    width = train_x.shape[1]
    theta, rows, best, stale = np.zeros(width * num_classes + num_classes), [], -np.inf, 0
    for l2 in grid:
        if stale >= patience:
            break
        iterations = 0
        for _ in range(4):  # restarts after a line-search failure, as nclib allows
            solution = minimize(_objective, theta, args=(train_x, train_y, l2, num_classes), jac=True,
                                method="L-BFGS-B", options=dict(maxiter=20_000, maxfun=40_000, gtol=gtol,
                                                                ftol=0.0, maxcor=10))
            theta, iterations = solution.x, iterations + int(solution.nit)
            value, gradient = _objective(theta, train_x, train_y, l2, num_classes)
            if np.abs(gradient).max() <= gtol or solution.nit == 0:
                break
        weight = theta[:width * num_classes].reshape(width, num_classes)
        accuracy = float(np.mean(_probs(val_x, weight, theta[width * num_classes:]).argmax(1) == val_y))
        rows.append((l2, accuracy, iterations, value))
        best, stale = (accuracy, 0) if accuracy > best else (best, stale + 1)
    return rows


def main(argv=None):
    from threadpoolctl import threadpool_limits

    from nclib.convex_head import DEFAULT_L2_GRID, GRID_PATIENCE, convex_head_transfer
    from nclib.logistic import GTOL, standardizer
    from nclib.experiments.cifar10 import available_targets, cifar10_experiment
    from nclib.experiments.embeddings import experiment_embeddings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default=None, help="quick image target (default: fashion-mnist if here)")
    parser.add_argument("--models", nargs="*", default=None, help="networks to run (default: the whole zoo)")
    args = parser.parse_args(argv)
    target = args.target or ("fashion-mnist" if "fashion-mnist" in available_targets() else "digits")
    embeddings = experiment_embeddings(cifar10_experiment("quick", target=target))
    models = args.models or list(embeddings)
    unknown = sorted(set(models) - set(embeddings))
    if unknown:
        parser.error(f"unknown networks {unknown}; known: {list(embeddings)}")
    grid = sorted(DEFAULT_L2_GRID, reverse=True)
    print(f"target {target}; L2 grid {grid[0]:g} to {grid[-1]:g}, path patience {GRID_PATIENCE}, gtol {GTOL:g}")
    print(f"{'network':<20} {'N x D':>11} {'condition':>9} {'null':>5} {'nclib s':>8} {'it.':>6} "
          f"{'plain s':>8} {'it.':>6} {'speed-up':>8} {'nclib above':>11} same l2")
    totals = np.zeros(2)
    for name in models:
        splits = embeddings[name]
        arrays = [splits[s][k] for s in ("train", "val", "test") for k in ("features", "labels")]
        num_classes = int(splits["train"]["labels"].max()) + 1
        with threadpool_limits(limits=1, user_api="blas"):
            start = time.perf_counter()
            ours = convex_head_transfer(*arrays, num_classes=num_classes)
            ours_seconds = time.perf_counter() - start
            mean, scale = standardizer(arrays[0])
            train_x, val_x = (arrays[0] - mean) / scale, (arrays[2] - mean) / scale
            start = time.perf_counter()
            plain = plain_path(train_x, arrays[1], val_x, arrays[3], num_classes, grid, GTOL, GRID_PATIENCE)
            plain_seconds = time.perf_counter() - start
            eigenvalues = np.linalg.eigvalsh(np.cov(train_x, rowvar=False, bias=True))
        top = eigenvalues.max()
        null = int((eigenvalues < 1e-10 * top).sum())
        condition = top / eigenvalues[eigenvalues >= 1e-10 * top].min()
        shared = min(len(plain), len(ours.history))
        objectives = ours.history["objective"].to_numpy()[:shared]
        reference = np.array([r[3] for r in plain[:shared]])
        difference = np.max((objectives - reference) / np.abs(reference))
        plain_l2 = max(plain, key=lambda r: (r[1], r[0]))[0]  # best accuracy; ties: the stronger penalty
        totals += (ours_seconds, plain_seconds)
        print(f"{name:<20} {f'{len(train_x)} x {train_x.shape[1]}':>11} {condition:9.1e} {null:5d} "
              f"{ours_seconds:8.1f} {int(ours.history['iterations'].sum()):6d} {plain_seconds:8.1f} "
              f"{sum(r[2] for r in plain):6d} {plain_seconds / ours_seconds:7.1f}x {difference:+11.1e} "
              f"{plain_l2 == ours.l2}")
    print(f"{'all':<20} {'':>11} {'':>9} {'':>5} {totals[0]:8.1f} {'':>6} {totals[1]:8.1f} {'':>6} "
          f"{totals[1] / totals[0]:7.1f}x")


if __name__ == "__main__":
    main()
