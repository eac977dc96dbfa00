"""Benchmark last-stage ("top") fine-tuning of the pre-trained image zoo (a script, not a test).

For each network of the quick image zoo, on the digits at 32x32 (where every trunk
output is a 1x1 map), it runs :func:`nclib.transfer.top_transfer` for a fixed number of
epochs (no early stop), one thread, twice in the same process on the same cached trunk
outputs, one after the other:

* ``nclib``: as the experiments run it: the convolutions of
  :mod:`nclib.models.conv` (1x1 maps as matrix products) and Adam's fused kernel;
* ``torch``: every convolution through ``torch.nn.Conv2d``'s own kernels and Adam's
  default (per-parameter) implementation, which is what nclib did before.

It reports the seconds of each, their ratio, and two checks that both compute the same
thing: the largest difference between the two embeddings of the validation images by the
pre-trained top (relative to the embeddings' largest magnitude), and the validation
accuracy each run reached. Float rounding differs between the two, so training
trajectories drift apart slowly; the accuracies should agree to within a few images.
A warm-up run (not timed) pays the one-off costs of the first optimiser and kernels.

Usage: python benchmarks/top_stage.py [--epochs 4] [--models a b ...]
"""

from __future__ import annotations

import argparse
import contextlib
import time


@contextlib.contextmanager
def torch_kernels():
    """Every convolution through torch's own kernels, and Adam unfused, inside the block."""
    import torch
    from torch import nn

    from nclib.models import conv

    saved = (conv.Conv2d._conv_forward, conv.SameConv2d.forward, torch.optim.Adam)

    def same_forward(self, x):
        return nn.Conv2d.forward(self, conv.tf_same_pad(x, self.kernel_size, self.stride))

    class UnfusedAdam(saved[2]):
        def __init__(self, params, **options):
            options.pop("fused", None)
            super().__init__(params, **options)

    conv.Conv2d._conv_forward, conv.SameConv2d.forward, torch.optim.Adam = (
        nn.Conv2d._conv_forward, same_forward, UnfusedAdam)
    try:
        yield
    finally:
        conv.Conv2d._conv_forward, conv.SameConv2d.forward, torch.optim.Adam = saved


def main(argv=None):
    import torch

    from nclib.experiments.cifar10 import cifar10_experiment
    from nclib.transfer import top_transfer, trunk_outputs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--models", nargs="*")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = cifar10_experiment("quick", target="digits")
    splits = config.load_target()
    specs = [spec for spec in config.zoo() if not args.models or spec.name in args.models]
    options = dict(epochs=args.epochs, lr=config.lr, batch_size=config.batch_size, seed=0)
    print(f"digits at 32x32, {len(splits.train)} training images, {args.epochs} epochs, batch "
          f"{config.batch_size}, one thread")
    print(f"{'network':<20} {'torch s':>8} {'nclib s':>8} {'speed-up':>8} {'emb. diff':>9} "
          f"{'torch val':>9} {'nclib val':>9}")
    totals = [0.0, 0.0]
    warmed = False
    for spec in specs:
        model = spec.build()
        cached = trunk_outputs(model, splits)
        if not warmed:
            top_transfer(model, splits, **{**options, "epochs": 1}, trunk_outputs=cached)
            warmed = True
        val = torch.from_numpy(cached["val"])
        with torch.no_grad():
            fast = model.top.eval()(val)
            with torch_kernels():
                slow = model.top.eval()(val)
        difference = float((fast - slow).abs().max() / slow.abs().max())
        seconds, accuracy = [], []
        for kernels in (torch_kernels, contextlib.nullcontext):
            with kernels():
                start = time.perf_counter()
                result = top_transfer(model, splits, **options, trunk_outputs=cached)
                seconds.append(time.perf_counter() - start)
            accuracy.append(float(result.best_val_metric))
        totals = [totals[0] + seconds[0], totals[1] + seconds[1]]
        print(f"{spec.name:<20} {seconds[0]:8.2f} {seconds[1]:8.2f} {seconds[0] / seconds[1]:7.2f}x "
              f"{difference:9.1e} {accuracy[0]:9.3f} {accuracy[1]:9.3f}", flush=True)
    print(f"{'all':<20} {totals[0]:8.2f} {totals[1]:8.2f} {totals[0] / totals[1]:7.2f}x")


if __name__ == "__main__":
    main()
