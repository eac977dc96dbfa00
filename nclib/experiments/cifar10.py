"""The image experiment (CIFAR-10 in the paper) at its two scales.

``paper``: the paper's protocol. CIFAR-10 from the official archive in the data folder
(40,000 / 10,000 / 10,000), the six Keras ImageNet models (ResNet-50, EfficientNet-B0,
Xception, DenseNet-121, NASNet-Mobile, MobileNet-V2) with their weights from the Keras
cache, inputs as in the authors' demo (raw 32x32 pixels, no ``preprocess_input``), LEEP
from the 1,000-way ImageNet softmax, Adam at 1e-4, batch 32, 250 epochs, 10 seeds, full
fine-tuning.

``quick`` (default): the same question on a CPU in minutes, on **genuinely pre-trained
networks** that ship inside registry packages
(:func:`nclib.models.pretrained_image.pretrained_image_zoo`: MobileNetV2 and
EfficientNet-Lite0/1/2 trained on ImageNet, a ResNet-50-style open-NSFW network and a
PP-LCNet document-orientation network, each with its real source classifier), and on
**real target images**: scikit-learn's handwritten digits or Fashion-MNIST from its
official files, both at 32x32 as in the authors' demo (``input_size`` resizes inside
the networks instead). The target is an explicit field (:data:`TARGETS`), never guessed
from which files happen to exist. The ground truth is converged:

* head regime: multinomial logistic regression on standardised frozen embeddings,
  solved to convergence with the L2 strength chosen on validation
  (:func:`nclib.convex_head.convex_head_transfer`; deterministic, one run per model);
* second regime: the network's last stage and a new head fine-tuned with Adam until
  validation accuracy stops improving (``patience``) under an epoch cap, five seeds
  (regime ``"top"``; full fine-tuning of every layer, the paper's regime, is far too
  slow for these networks on a 2-core CPU and stays in the paper profile).

``zoo="in-house"`` keeps the earlier quick zoo as a clearly labelled second zoo: six
small CNNs pre-trained here for minutes on procedurally generated shapes.

The chapter "The image experiment" runs it (``python -m nclib run cifar10``); "All
scores, every setup, with their uncertainty" runs it on every available target.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

PAPER = {"head_epochs": 250, "full_epochs": 250, "seeds": tuple(range(10)), "lr": 1e-4, "batch_size": 32}
QUICK = {
    "head_solver": "convex", "fine_tune": "top", "full_epochs": 60, "patience": 6,
    "seeds": (0, 1, 2, 3, 4), "lr": 1e-3, "batch_size": 64, "head_epochs": 1,
    "fashion_per_class": (200, 100, 100), "digits_fractions": (0.6, 0.2, 0.2),
}
IN_HOUSE = {
    "head_epochs": 60, "full_epochs": 2, "seeds": (0, 1, 2), "lr": 1e-3, "batch_size": 32,
    "pretrain_epochs": 5, "pretrain_lr": 2e-3, "pretrain_batch_size": 64,
    "source_per_class": 160, "source_classes": 10,
}
TARGETS = {
    "digits": "scikit-learn's handwritten digits (1,797 real 8x8 scans, enlarged to 32x32; "
              "60 / 20 / 20 split), standing in for CIFAR-10",
    "fashion-mnist": "Fashion-MNIST from its official files (class-balanced: 2,000 training, "
                     "1,000 validation images from the official training set, 1,000 test "
                     "images from the official test set; 28x28 enlarged to 32x32), standing in "
                     "for CIFAR-10",
    "cifar10-subset": "a class-balanced subset of CIFAR-10 from the official archive",
}
"""The quick profile's targets and how the book describes them."""
ZOOS = ("pretrained", "in-house")
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"


def shapes_source(per_class: int, num_classes: int, seed: int = 0):
    """The in-house zoo's source task: procedural shapes, split 85 / 15 into train and validation.

    Examples
    --------
    >>> train, val = shapes_source(4, 3)
    >>> len(train) + len(val), train.inputs.shape[1:]
    (12, (3, 32, 32))
    """
    from nclib._sampling import stratified_split
    from nclib.data.synthetic_images import shapes_task

    data = shapes_task(per_class, seed=seed, size=32, num_classes=num_classes)
    train, val = stratified_split(data.labels, (0.85, 0.15), seed=seed)
    return data.subset(train), data.subset(val)


def quick_target(target: str = "digits", folder=None, seed: int = 0):
    """The quick profile's target splits.

    Parameters
    ----------
    target : {"digits", "fashion-mnist", "cifar10-subset"}
        See :data:`TARGETS`.
    folder : path-like, optional
        Where the CIFAR-10 archive or the Fashion-MNIST files lie (default: the data
        folder; Fashion-MNIST is also looked for where the Debian package puts it).
    seed : int
        Seed of the split.

    Returns
    -------
    nclib.data.base.Splits
        Images of shape (N, 3, 32, 32), float32 in [0, 255].

    Raises
    ------
    ValueError
        Unknown target.
    FileNotFoundError
        The target's files are missing (the message says how to get them).

    Examples
    --------
    >>> quick_target("digits").sizes()
    {'train': 1078, 'val': 360, 'test': 359}
    """
    if target == "digits":
        from nclib.data.digits import digits_splits

        return digits_splits(seed=seed, fractions=QUICK["digits_fractions"], size=32)
    if target == "fashion-mnist":
        from nclib.data.fashion_mnist import fashion_mnist_splits

        return fashion_mnist_splits(seed=seed, per_class=QUICK["fashion_per_class"], size=32, folder=folder)
    if target == "cifar10-subset":
        from nclib.config import data_dir
        from nclib.data.cifar10 import cifar10_splits

        folder = data_dir() if folder is None else Path(folder)
        return cifar10_splits(seed=seed, folder=folder, per_class=150)
    raise ValueError(f"unknown target {target!r}; known: {sorted(TARGETS)}")


def available_targets() -> list:
    """The quick targets whose data are here (digits always; the others if their files are).

    Examples
    --------
    >>> "digits" in available_targets()
    True
    """
    from nclib.config import data_dir
    from nclib.data.fashion_mnist import fashion_mnist_folder

    found = ["digits"]
    if fashion_mnist_folder() is not None:
        found.append("fashion-mnist")
    if (data_dir() / CIFAR_ARCHIVE).is_file():
        found.append("cifar10-subset")
    return found


def _pretrain(spec, cache, settings):
    from nclib.models.pretraining import pretrained_model

    source = partial(shapes_source, settings["source_per_class"], settings["source_classes"])
    return pretrained_model(
        spec, cache, source, epochs=settings["pretrain_epochs"], lr=settings["pretrain_lr"],
        batch_size=settings["pretrain_batch_size"], seed=0,
        key_parts={"source": "shapes", "per_class": settings["source_per_class"]},
    )


def _load_model(spec, cache):
    return spec.build()


def _quick_pretrained(target, folder, input_size, settings):
    from nclib.models.pretrained_image import pretrained_image_zoo

    size = "32x32 as the authors' demo" if input_size is None else f"resized to {input_size}x{input_size}"
    description = (
        f"Quick profile, target: {TARGETS[target]}. Zoo: the genuinely pre-trained networks "
        "that ship in registry packages (MobileNetV2 and EfficientNet-Lite0/1/2 on ImageNet, "
        "open-NSFW ResNet-50 on NSFW photographs, PP-LCNet on document orientation), each "
        f"with its real source classifier; inputs {size}. Head regime: logistic regression "
        "on standardised embeddings solved to convergence (L2 strength chosen on validation). "
        f"Second regime: last stage + new head fine-tuned with Adam (lr {settings['lr']:g}, "
        f"batch {settings['batch_size']}) until validation accuracy has not improved for "
        f"{settings['patience']} epochs (cap {settings['full_epochs']}), "
        f"{len(settings['seeds'])} seeds."
    )
    key_parts = {"zoo": "pretrained", "target": target, "input_size": input_size}
    return dict(load_target=partial(quick_target, target, folder), zoo=partial(pretrained_image_zoo, input_size),
                prepare_model=_load_model, description=description, key_parts=key_parts, target=TARGETS[target],
                head_solver=settings["head_solver"], fine_tune=settings["fine_tune"],
                patience=settings["patience"], convergence_check="raise",
                head_epochs=settings["head_epochs"], full_epochs=settings["full_epochs"],
                seeds=settings["seeds"], lr=settings["lr"], batch_size=settings["batch_size"])


def _quick_in_house(target, folder, settings):
    from nclib.models.quick_image import image_quick_zoo

    description = (
        "Quick profile, second (in-house) zoo: six small CNNs (VGG-, ResNet-, DenseNet-, "
        "Xception-, MobileNetV2- and EfficientNet-style), pre-trained here for "
        f"{settings['pretrain_epochs']} epochs on a procedurally generated 10-class shapes task "
        f"({settings['source_per_class']} images per class); target: {TARGETS[target]}; head "
        f"regime {settings['head_epochs']} epochs of Adam, full fine-tuning {settings['full_epochs']} "
        f"epochs, lr {settings['lr']:g}, batch {settings['batch_size']}, seeds {settings['seeds']}. "
        "Neither regime is trained to convergence: kept for comparison with earlier editions."
    )
    key_parts = {k: settings[k] for k in ("pretrain_epochs", "pretrain_lr", "pretrain_batch_size",
                                          "source_per_class", "source_classes")}
    key_parts["target"] = "digits" if target == "digits" else target
    return dict(load_target=partial(quick_target, target, folder),
                zoo=partial(image_quick_zoo, settings["source_classes"]),
                prepare_model=partial(_pretrain, settings=settings), description=description, target=TARGETS[target],
                key_parts=key_parts, head_epochs=settings["head_epochs"],
                full_epochs=settings["full_epochs"], seeds=settings["seeds"], lr=settings["lr"],
                batch_size=settings["batch_size"])


def _paper_zoo(weights, input_mode, architectures):
    """The paper profile's Keras zoo, restricted to ``architectures`` when given (picklable)."""
    from nclib.models.image import image_paper_zoo

    specs = image_paper_zoo(weights=weights, input_mode=input_mode)
    if architectures is not None:
        specs = [s for s in specs if s.name in set(architectures)]
    return specs


def cifar10_experiment(profile: str = "quick", *, target: str = "digits", zoo: str = "pretrained",
                       input_size: int | None = None, folder=None, weights: str | None = "imagenet",
                       input_mode: str = "demo", architectures=None, seeds=None, head_epochs=None,
                       full_epochs=None, train_size: int = 40_000, val_size: int = 10_000,
                       expected_digest=None, scores=None):
    """The image experiment's :class:`~nclib.experiments.runner.ExperimentConfig`.

    Parameters
    ----------
    profile : {"quick", "paper"}
    target : {"digits", "fashion-mnist", "cifar10-subset"}
        Quick profile: the target task (:data:`TARGETS`).
    zoo : {"pretrained", "in-house"}
        Quick profile: the genuinely pre-trained networks, or the small CNNs pre-trained
        here on procedural shapes (the second zoo).
    input_size : int, optional
        Quick profile, pre-trained zoo: resize inputs to this side inside each network
        (e.g. 224, the networks' native size); default: 32x32 as the authors' demo.
    folder : path-like, optional
        Where the CIFAR-10 archive (or Fashion-MNIST's files) lie (default: the data folder).
    weights : {"imagenet", None}
        Paper profile: ImageNet weights from the Keras cache, or random weights (tests).
    input_mode : {"demo", "keras"}
        Paper profile: raw 32x32 pixels as the authors' demo, or each model's own
        preprocessing and size (see :class:`nclib.models.image.KerasBackbone`).
    architectures : list of str, optional
        Paper profile: a subset of the six models (by zoo name).
    seeds, head_epochs, full_epochs : optional
        Override the profile's settings (e.g. one seed and one epoch in tests).
    train_size, val_size : int
        Paper profile: sizes of the split of the official training set.
    expected_digest : str, optional
        MD5 of the archive (default: the official one).
    scores : tuple of str, optional
        REGISTRY names to compute (default: every registered score).

    Examples
    --------
    >>> config = cifar10_experiment("quick")
    >>> config.metric, config.head_solver, config.fine_tune, len(config.seeds)
    ('accuracy', 'convex', 'top', 5)
    >>> cifar10_experiment("quick", target="fashion-mnist").key_parts["target"]
    'fashion-mnist'
    >>> cifar10_experiment("paper").seeds == tuple(range(10))
    True
    """
    from nclib.experiments.runner import ExperimentConfig

    if profile == "quick":
        if target not in TARGETS:
            raise ValueError(f"unknown target {target!r}; known: {sorted(TARGETS)}")
        if zoo == "pretrained":
            fields = _quick_pretrained(target, folder, input_size, dict(QUICK))
        elif zoo == "in-house":
            fields = _quick_in_house(target, folder, dict(IN_HOUSE))
        else:
            raise ValueError(f"unknown zoo {zoo!r}; known: {ZOOS}")
    elif profile == "paper":
        settings = dict(PAPER)
        from nclib.data.cifar10 import cifar10_splits
        load_target = partial(cifar10_splits, seed=0, folder=folder, train_size=train_size, val_size=val_size,
                              **({} if expected_digest is None else {"expected_digest": expected_digest}))

        description = (
            "Paper profile: CIFAR-10 (40,000 / 10,000 / 10,000), six Keras applications with "
            f"{'ImageNet' if weights == 'imagenet' else 'random'} weights, input mode {input_mode!r}, "
            f"LEEP from the 1,000-way ImageNet softmax; Adam lr {settings['lr']:g}, batch "
            f"{settings['batch_size']}, {head_epochs or settings['head_epochs']} epochs, "
            f"{len(seeds) if seeds else len(settings['seeds'])} seeds, full fine-tuning."
        )
        fields = dict(load_target=load_target,
                      zoo=partial(_paper_zoo, weights, input_mode, architectures), prepare_model=_load_model,
                      description=description, target=f"CIFAR-10 ({train_size:,} / {val_size:,} / 10,000)",
                      key_parts={"weights": weights, "input_mode": input_mode, "train_size": train_size,
                                 "val_size": val_size},
                      head_epochs=settings["head_epochs"], full_epochs=settings["full_epochs"],
                      seeds=settings["seeds"], lr=settings["lr"], batch_size=settings["batch_size"])
    else:
        raise ValueError(f"unknown profile {profile!r}; known: ('quick', 'paper')")
    if seeds is not None:
        fields["seeds"] = tuple(seeds)
    if head_epochs is not None:
        fields["head_epochs"] = head_epochs
    if full_epochs is not None:
        fields["full_epochs"] = full_epochs
    return ExperimentConfig(name="cifar10", profile=profile, metric="accuracy",
                            scores=tuple(scores) if scores is not None else None, **fields)
