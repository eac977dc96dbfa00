"""The image experiment (CIFAR-10 in the paper) at its two scales.

``paper``: the paper's protocol. CIFAR-10 from the official archive in the data folder
(40,000 / 10,000 / 10,000), the six Keras ImageNet models (ResNet-50, EfficientNet-B0,
Xception, DenseNet-121, NASNet-Mobile, MobileNet-V2) with their weights from the Keras
cache, inputs as in the authors' demo (raw 32x32 pixels, no ``preprocess_input``), LEEP
from the 1,000-way ImageNet softmax, Adam at 1e-4, batch 32, 250 epochs, 10 seeds.

``quick`` (default): the same pipeline on a CPU in minutes. Six small networks from six
architecture families (:func:`nclib.models.quick_image.image_quick_zoo`) are pre-trained
here on a procedurally generated 10-class shapes task
(:func:`nclib.data.synthetic_images.shapes_task`) and transferred to scikit-learn's real
handwritten digits resized to 32x32 (:func:`nclib.data.digits.digits_splits`), or to a
class-balanced subset of CIFAR-10 when the official archive is in the data folder. LEEP
reads the shapes head's 10-way softmax. Fewer epochs and seeds, and a larger learning rate
for the few epochs there are; the chapter says all of this next to the results.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from nclib.config import data_dir

PAPER = {"head_epochs": 250, "full_epochs": 250, "seeds": tuple(range(10)), "lr": 1e-4, "batch_size": 32}
QUICK = {
    "head_epochs": 60, "full_epochs": 2, "seeds": (0, 1, 2), "lr": 1e-3, "batch_size": 32,
    "pretrain_epochs": 5, "pretrain_lr": 2e-3, "pretrain_batch_size": 64,
    "source_per_class": 160, "source_classes": 10, "cifar_per_class": 150,
}
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"


def shapes_source(per_class: int, num_classes: int, seed: int = 0):
    """The quick source task: procedural shapes, split 85 / 15 into train and validation.

    Examples
    --------
    >>> train, val = shapes_source(4, 3)
    >>> len(train) + len(val), train.inputs.shape[1:]
    (12, (3, 32, 32))
    """
    from nclib.data.base import stratified_split
    from nclib.data.synthetic_images import shapes_task

    data = shapes_task(per_class, seed=seed, size=32, num_classes=num_classes)
    train, val = stratified_split(data.labels, (0.85, 0.15), seed=seed)
    return data.subset(train), data.subset(val)


def quick_target(folder=None, per_class: int = QUICK["cifar_per_class"]):
    """The quick target: CIFAR-10 subset if the archive is present, else the digits.

    Returns
    -------
    splits : nclib.data.base.Splits
    name : str
        ``"cifar10-subset"`` or ``"digits"``.
    """
    folder = data_dir() if folder is None else Path(folder)
    if (folder / CIFAR_ARCHIVE).is_file():
        from nclib.data.cifar10 import cifar10_splits

        return cifar10_splits(seed=0, folder=folder, per_class=per_class), "cifar10-subset"
    from nclib.data.digits import digits_splits

    return digits_splits(seed=0, size=32), "digits"


def _pretrain(spec, cache, settings):
    from nclib.experiments.runner import pretrained_model

    source = partial(shapes_source, settings["source_per_class"], settings["source_classes"])
    return pretrained_model(
        spec, cache, source, epochs=settings["pretrain_epochs"], lr=settings["pretrain_lr"],
        batch_size=settings["pretrain_batch_size"], seed=0,
        key_parts={"source": "shapes", "per_class": settings["source_per_class"]},
    )


def _load_paper_model(spec, cache):
    return spec.build()


def cifar10_experiment(profile: str = "quick", *, folder=None, weights: str | None = "imagenet",
                       input_mode: str = "demo", architectures=None, seeds=None, head_epochs=None,
                       full_epochs=None, train_size: int = 40_000, val_size: int = 10_000,
                       expected_digest=None, scores=None):
    """The image experiment's :class:`~nclib.experiments.runner.ExperimentConfig`.

    Parameters
    ----------
    profile : {"quick", "paper"}
    folder : path-like, optional
        Where ``cifar-10-python.tar.gz`` lies (default: the data folder).
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
    >>> config.metric, config.seeds, config.head_epochs
    ('accuracy', (0, 1, 2), 60)
    >>> cifar10_experiment("paper").seeds == tuple(range(10))
    True
    """
    from nclib.experiments.runner import ExperimentConfig

    if profile == "quick":
        settings = dict(QUICK)
        from nclib.models.quick_image import image_quick_zoo

        def load_target():
            return quick_target(folder)[0]

        zoo = partial(image_quick_zoo, settings["source_classes"])
        prepare = partial(_pretrain, settings=settings)
        archive = (data_dir() if folder is None else Path(folder)) / CIFAR_ARCHIVE
        target_name = "cifar10-subset" if archive.is_file() else "digits"
        description = (
            "Quick profile: six small CNNs (VGG-, ResNet-, DenseNet-, Xception-, MobileNetV2- and "
            "EfficientNet-style), pre-trained here for "
            f"{settings['pretrain_epochs']} epochs on a procedurally generated 10-class shapes task "
            f"({settings['source_per_class']} images per class), transferred to "
            + ("a class-balanced subset of CIFAR-10" if target_name == "cifar10-subset"
               else "scikit-learn's 1,797 real handwritten digits resized to 32x32 (60/20/20 split)")
            + f"; head regime {settings['head_epochs']} epochs, full fine-tuning {settings['full_epochs']} "
            f"epochs, Adam lr {settings['lr']:g}, batch {settings['batch_size']}, seeds {settings['seeds']}."
        )
        key_parts = {k: settings[k] for k in ("pretrain_epochs", "pretrain_lr", "pretrain_batch_size",
                                              "source_per_class", "source_classes")}
        key_parts["target"] = target_name
    elif profile == "paper":
        settings = dict(PAPER)
        from nclib.data.cifar10 import cifar10_splits
        from nclib.models.image import image_paper_zoo

        load_target = partial(cifar10_splits, seed=0, folder=folder, train_size=train_size, val_size=val_size,
                              **({} if expected_digest is None else {"expected_digest": expected_digest}))

        def zoo():
            specs = image_paper_zoo(weights=weights, input_mode=input_mode)
            if architectures is not None:
                specs = [s for s in specs if s.name in set(architectures)]
            return specs

        prepare = _load_paper_model
        description = (
            "Paper profile: CIFAR-10 (40,000 / 10,000 / 10,000), six Keras applications with "
            f"{'ImageNet' if weights == 'imagenet' else 'random'} weights, input mode {input_mode!r}, "
            f"LEEP from the 1,000-way ImageNet softmax; Adam lr {settings['lr']:g}, batch "
            f"{settings['batch_size']}, {head_epochs or settings['head_epochs']} epochs, "
            f"{len(seeds) if seeds else len(settings['seeds'])} seeds."
        )
        key_parts = {"weights": weights, "input_mode": input_mode, "train_size": train_size, "val_size": val_size}
    else:
        raise ValueError(f"unknown profile {profile!r}; known: ('quick', 'paper')")
    return ExperimentConfig(
        name="cifar10", profile=profile, metric="accuracy", load_target=load_target, zoo=zoo,
        prepare_model=prepare,
        head_epochs=head_epochs or settings["head_epochs"], full_epochs=full_epochs or settings["full_epochs"],
        seeds=tuple(seeds) if seeds is not None else settings["seeds"], lr=settings["lr"],
        batch_size=settings["batch_size"], description=description, key_parts=key_parts,
        scores=tuple(scores) if scores is not None else None,
    )
