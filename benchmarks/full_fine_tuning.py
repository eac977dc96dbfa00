"""Benchmark full fine-tuning (every layer) of the pre-trained image zoo (a script, not a test).

For each network of the quick image zoo, on the digits at 32x32, it trains a copy of
the network with a new head on one training subset (25 images per class, the larger
subset of the chapter on caveat (c)) for a fixed number of epochs, one thread, twice in
the same process, one after the other:

* ``contiguous``: weights and activations in PyTorch's default layout (NCHW);
* ``channels-last``: the weights stored NHWC, as
  :func:`nclib.learning_curves.channels_last_for_training` stores those of a network
  with grouped convolutions (the last column says whether it does for this network,
  i.e. which layout :func:`nclib.learning_curves.full_learning_curves` trains it in).

It reports the seconds of each, their ratio, and two checks that both compute the same
thing: the largest difference between the pre-trained network's logits on the
validation images in the two layouts (relative to their largest magnitude), and the
training-subset accuracy each run reached. A warm-up epoch (not timed) pays one-off
costs first.

Usage: python benchmarks/full_fine_tuning.py [--epochs 3] [--batch-size 32] [--models a b ...]
"""

from __future__ import annotations

import argparse
import copy
import time


def main(argv=None):
    import numpy as np
    import torch

    from nclib.experiments.cifar10 import cifar10_experiment
    from nclib.experiments.overfitting_study import study_subsets
    from nclib.learning_curves import channels_last_for_training
    from nclib.train import fit
    from nclib.transfer import new_head

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="the chapter's batch size")
    parser.add_argument("--models", nargs="*")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = cifar10_experiment("quick", target="digits")
    splits = config.load_target()
    rows = study_subsets(splits, (25,), (0,))[0][25]
    inputs = np.asarray(splits.train.inputs)[rows]
    labels = np.asarray(splits.train.labels)[rows]
    val = torch.as_tensor(np.asarray(splits.val.inputs))
    num_classes = len(splits.train.classes)
    specs = [spec for spec in config.zoo() if not args.models or spec.name in args.models]
    print(f"digits at 32x32, {len(rows)} training images, {args.epochs} epochs of every layer, batch "
          f"{args.batch_size}, one thread")
    print(f"{'network':<20} {'NCHW s':>8} {'NHWC s':>8} {'speed-up':>8} {'logit diff':>10} "
          f"{'NCHW acc':>8} {'NHWC acc':>8} {'nclib':>6}")
    totals = [0.0, 0.0, 0.0]
    for spec in specs:
        model = spec.build().eval()
        with torch.no_grad():
            plain = model(val)
            fast = copy.deepcopy(model)
            last = fast.to(memory_format=torch.channels_last)(val)
        difference = float((plain - last).abs().max() / plain.abs().max())
        seconds, accuracy = [], []
        converted = channels_last_for_training(copy.deepcopy(model))
        chosen = "NHWC" if any(p.dim() == 4 and not p.is_contiguous() for p in converted.parameters()) else "NCHW"
        for layout in (lambda net: net, lambda net: net.to(memory_format=torch.channels_last)):
            network = copy.deepcopy(model).requires_grad_(True)
            network.classifier = new_head(int(model.embedding_dim), num_classes, 0)
            network = layout(network).train()
            fit(copy.deepcopy(network), inputs, labels, epochs=1, lr=1e-3, batch_size=args.batch_size)  # warm-up
            start = time.perf_counter()
            fit(network, inputs, labels, epochs=args.epochs, lr=1e-3, batch_size=args.batch_size)
            seconds.append(time.perf_counter() - start)
            accuracy.append(_accuracy(network, inputs, labels))
        totals = [totals[0] + seconds[0], totals[1] + seconds[1], totals[2] + seconds[chosen == "NHWC"]]
        print(f"{spec.name:<20} {seconds[0]:8.2f} {seconds[1]:8.2f} {seconds[0] / seconds[1]:7.2f}x "
              f"{difference:10.1e} {accuracy[0]:8.3f} {accuracy[1]:8.3f} {chosen:>6}", flush=True)
    print(f"{'all':<20} {totals[0]:8.2f} {totals[1]:8.2f} {totals[0] / totals[1]:7.2f}x")
    print(f"nclib's choice of layout per network: {totals[2]:.2f} s, {totals[0] / totals[2]:.2f}x faster than NCHW")


def _accuracy(network, inputs, labels) -> float:
    import torch

    network.eval()
    with torch.no_grad():
        predicted = network(torch.as_tensor(inputs)).argmax(dim=1).numpy()
    network.train()
    return float((predicted == labels).mean())


if __name__ == "__main__":
    main()
