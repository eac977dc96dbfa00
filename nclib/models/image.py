"""The paper profile's image zoo: six Keras 3 applications, run on the torch backend.

The paper's CIFAR-10 zoo is ResNet-50, EfficientNet-B0, Xception, DenseNet-121,
NASNet-Mobile and MobileNet-V2 with ImageNet weights (Keras applications). Each is
wrapped in :class:`KerasBackbone`, a ``torch.nn.Module`` following the zoo contract
(:mod:`nclib.models`): ``embed`` runs the Keras network up to its global average pooling
(the authors' ``layers[-2]``) and ``classifier`` is a ``torch.nn.Linear`` holding the
ImageNet ``predictions`` layer, so one forward pass yields the embedding and the 1,000
ImageNet logits, and ``softmax(logits)`` is Keras' prediction (the input of LEEP).

How weights are obtained at any input size
------------------------------------------
Keras builds an ``include_top`` ImageNet model only at its default size (224, or 299 for
Xception). The backbone builds that model (weights from the Keras cache, or random),
then re-runs the same layer objects on a ``(None, None, 3)`` input with
``keras.models.clone_model``: the weights are shared, not copied, and any input size
works. ``weights="imagenet"`` reads ``<KERAS_HOME>/models/<file>`` (see
:func:`imagenet_weights_path`); when the file is missing a ``FileNotFoundError`` names
that path: nothing is downloaded.

Input modes
-----------
``"demo"`` (default)
    As the authors' demo: raw [0, 255] pixels, no ``preprocess_input``, the images'
    own size (CIFAR-10's 32x32). Keras' minimum input sizes (32 px; 71 for Xception) are
    checks on a declared input shape, not limits of the graphs: with a flexible input,
    Xception runs at 32x32 (its exit-flow map is 1x1), as it did under TensorFlow's
    Keras 2, which only warns about an unexpected input shape. nclib follows the demo
    and does not upsample. (EfficientNet-B0 rescales and normalises inside the model,
    so it sees standardised inputs in both modes.)
``"keras"``
    As Keras intends: bilinear resize to the model's default size, then the model's own
    ``preprocess_input`` ("caffe" for ResNet-50, "torch" for DenseNet-121, "tf" for
    Xception, NASNet-Mobile and MobileNet-V2, nothing for EfficientNet-B0).

NASNet-Mobile on the torch backend
----------------------------------
``keras.applications.NASNetMobile`` refuses the torch backend because Keras' maintainers
found its *pretrained* predictions wrong there in 2023 (keras-team/keras#18451; Keras'
own tests still skip it). nclib builds the identical architecture with Keras' ``NASNet``
builder and NASNet-Mobile's arguments, so that the zoo keeps the paper's six models.
With Keras 3.15.1, the torch backend's forward pass of this graph agrees with the JAX
backend's on every one of its 770 layers (random weights with perturbed batch-norm
statistics, 224x224; relative error below 1e-6), and so do all six backbones at 32x32;
the ImageNet predictions themselves could not be checked offline, so loading ImageNet
weights into NASNet-Mobile emits a ``UserWarning`` naming the issue.

Demo mode at sizes other than the default
-----------------------------------------
The layers are built at the default size and re-used at any other: an explicit
``ZeroPadding2D`` (MobileNet-V2, EfficientNet-B0, NASNet-Mobile) keeps the amounts Keras
chose for the default size. This is what the demo's Keras 2 / TensorFlow graph did when
it was fed 32x32 images.

Fine-tuning
-----------
Keras layers on the torch backend are ``torch.nn.Module`` objects whose variables are
``torch.nn.Parameter`` objects (trainable ones with ``requires_grad=True``; batch-norm
statistics with ``False``), so a plain torch optimizer over ``backbone.parameters()``
fine-tunes the whole network. ``train()`` / ``eval()`` switch batch normalisation, which
the backbone passes to Keras as ``training=self.training``. Call ``eval()`` before
extracting embeddings. ``state_dict()`` numbers the Keras variables in graph order (Keras
names some after a process-wide counter), so weights saved from one backbone load into
any new one of the same architecture, in this process or another.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn

from nclib.config import prepare_keras
from nclib.models import ModelSpec

INPUT_MODES = ("demo", "keras")
WEIGHT_CHOICES = ("imagenet", None)
IMAGENET_CLASSES = 1000


@dataclass(frozen=True)
class PaperArchitecture:
    """One Keras application of the paper's zoo.

    Attributes
    ----------
    name : str
        Zoo name, e.g. ``"resnet-50"``.
    keras_name : str
        Name in ``keras.applications``, e.g. ``"ResNet50"``.
    family : str
    module : str
        Submodule of ``keras.applications`` holding ``preprocess_input``.
    default_size : int
        Input size of the ImageNet ``include_top`` model.
    keras_min_size : int
        Smallest input Keras accepts when an input shape is declared.
    embedding_dim : int
        Width of the global average pooling output.
    weights_file : str
        File name of the ``include_top`` ImageNet weights in ``<KERAS_HOME>/models``.

    Examples
    --------
    >>> PAPER_ARCHITECTURES["xception"].embedding_dim
    2048
    """

    name: str
    keras_name: str
    family: str
    module: str
    default_size: int
    keras_min_size: int
    embedding_dim: int
    weights_file: str


PAPER_ARCHITECTURES = {
    arch.name: arch
    for arch in (
        PaperArchitecture("resnet-50", "ResNet50", "residual", "resnet50", 224, 32, 2048,
                          "resnet50_weights_tf_dim_ordering_tf_kernels.h5"),
        PaperArchitecture("efficientnet-b0", "EfficientNetB0", "mbconv-se", "efficientnet",
                          224, 32, 1280, "efficientnetb0.h5"),
        PaperArchitecture("xception", "Xception", "separable", "xception", 299, 71, 2048,
                          "xception_weights_tf_dim_ordering_tf_kernels.h5"),
        PaperArchitecture("densenet-121", "DenseNet121", "dense", "densenet", 224, 32, 1024,
                          "densenet121_weights_tf_dim_ordering_tf_kernels.h5"),
        PaperArchitecture("nasnet-mobile", "NASNetMobile", "nas", "nasnet", 224, 32, 1056,
                          "nasnet_mobile.h5"),
        PaperArchitecture("mobilenet-v2", "MobileNetV2", "inverted-residual", "mobilenet_v2",
                          224, 32, 1280, "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"),
    )
}
"""The paper's six ImageNet models, by zoo name, in the paper's order."""


def find_architecture(name: str) -> PaperArchitecture:
    """Look up an architecture by zoo name (``"resnet-50"``) or Keras name (``"ResNet50"``).

    Examples
    --------
    >>> find_architecture("DenseNet121").name
    'densenet-121'
    """
    for arch in PAPER_ARCHITECTURES.values():
        if name in (arch.name, arch.keras_name):
            return arch
    raise ValueError(
        f"unknown architecture {name!r}; expected one of {list(PAPER_ARCHITECTURES)}"
    )


def imagenet_weights_path(name: str) -> Path:
    """Where Keras looks for an architecture's ``include_top`` ImageNet weights.

    The folder is ``<KERAS_HOME>/models`` (nclib's default ``KERAS_HOME`` is
    ``data/keras`` in the project; see :func:`nclib.config.prepare_keras`), or
    ``/tmp/.keras/models`` when ``KERAS_HOME`` is not writable, as Keras' ``get_file``
    does. Place the file there to use ``weights="imagenet"`` offline.

    Parameters
    ----------
    name : str
        Zoo or Keras name of the architecture.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> imagenet_weights_path("MobileNetV2").name
    'mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5'
    """
    arch = find_architecture(name)
    return _keras_cache_dir() / "models" / arch.weights_file


def _keras_cache_dir() -> Path:
    """Keras' cache folder, as ``keras.utils.get_file`` resolves it."""
    prepare_keras()
    if "keras" in sys.modules:  # Keras fixed its home when it was first imported
        from keras.src.backend.config import keras_home

        home = Path(keras_home()).expanduser()
    else:
        home = Path(os.environ["KERAS_HOME"]).expanduser()
    if home.exists() and not os.access(home, os.W_OK):
        return Path("/tmp/.keras")
    return home


class KerasBackbone(nn.Module):
    """A Keras application as a torch module: embedding, ImageNet logits, fine-tuning.

    Parameters
    ----------
    architecture : str
        Zoo name (``"resnet-50"``, ``"efficientnet-b0"``, ``"xception"``,
        ``"densenet-121"``, ``"nasnet-mobile"``, ``"mobilenet-v2"``) or Keras name.
    weights : {"imagenet", None}, default None
        ImageNet weights from the Keras cache (never downloaded), or random weights.
    input_mode : {"demo", "keras"}, default "demo"
        Input handling; see the module documentation.
    keras_model : keras.Model, optional
        An already built ``include_top`` model of this architecture (1,000-way
        ``predictions`` layer) to wrap instead of building one; ``weights`` is then
        only recorded. The backbone shares its layers and weights.

    Attributes
    ----------
    embedding_dim : int
        2048 / 1280 / 2048 / 1024 / 1056 / 1280 in the order above.
    classifier : torch.nn.Linear
        ``Linear(embedding_dim, 1000)`` with the ImageNet ``predictions`` kernel and bias.
    network : keras.Model
        The Keras graph from the input to the global average pooling, any input size.

    Raises
    ------
    FileNotFoundError
        With ``weights="imagenet"`` when the weights file is not in the Keras cache.

    Notes
    -----
    Inputs to :meth:`embed` and :meth:`forward` are float32 tensors of shape
    (batch, 3, height, width) with values in [0, 255]; they are moved to channels-last
    for Keras.

    Examples
    --------
    Random weights at CIFAR-10's size (building takes a second or so):

    >>> net = KerasBackbone("mobilenet-v2").eval()
    >>> images = torch.rand(2, 3, 32, 32) * 255
    >>> net.embed(images).shape, net(images).shape
    (torch.Size([2, 1280]), torch.Size([2, 1000]))
    """

    def __init__(self, architecture: str, weights: str | None = None, input_mode: str = "demo",
                 keras_model=None):
        super().__init__()
        if weights not in WEIGHT_CHOICES:
            raise ValueError(f"weights must be 'imagenet' or None, got {weights!r}")
        if input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {INPUT_MODES}, got {input_mode!r}")
        self.architecture = find_architecture(architecture)
        self.weights = weights
        self.input_mode = input_mode
        full_model = keras_model if keras_model is not None else _build_keras_model(self.architecture, weights)
        self.network = _flexible_embedding_model(full_model)
        self.embedding_dim = int(self.network.outputs[0].shape[-1])
        if self.embedding_dim != self.architecture.embedding_dim:
            raise RuntimeError(
                f"{self.architecture.keras_name} pools {self.embedding_dim} features, "
                f"expected {self.architecture.embedding_dim}"
            )
        self.classifier = _torch_linear(full_model.get_layer("predictions"))
        self._variable_paths = tuple(self.network.torch_params.keys())
        self.register_state_dict_post_hook(_numbered_keras_keys)
        self.register_load_state_dict_pre_hook(_named_keras_keys)

    def prepare_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Channels-last network input for images (batch, 3, H, W) in [0, 255].

        ``"demo"``: the pixels unchanged. ``"keras"``: resized to the default size and
        passed through the model's ``preprocess_input``.
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images of shape (batch, 3, height, width), got {tuple(x.shape)}")
        if not torch.is_floating_point(x):
            raise ValueError(f"images must be a floating-point tensor, got {x.dtype}")
        if self.input_mode == "keras":
            size = self.architecture.default_size
            if tuple(x.shape[2:]) != (size, size):
                x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        x = x.permute(0, 2, 3, 1).contiguous()
        if self.input_mode == "keras":
            x = _preprocess_input(self.architecture, x)
        return x

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled embedding, shape (batch, embedding_dim)."""
        return self.network(self.prepare_inputs(x), training=self.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet (or, after transfer, target) logits, shape (batch, num_classes)."""
        return self.classifier(self.embed(x))


# Keras names a variable after its layer, and unnamed layers get a process-wide counter
# ("normalization_3/mean" in EfficientNet-B0), so the torch keys of two identical
# backbones can differ. In state dicts the Keras variables are numbered instead, in the
# graph's order: weights saved from one backbone load into any other of its architecture.
_KERAS_PREFIX = "network._torch_params."
_NUMBERED_PREFIX = "network.variable."


def _numbered_keras_keys(module, state_dict, prefix, local_metadata):
    for index, path in enumerate(module._variable_paths):
        key = f"{prefix}{_KERAS_PREFIX}{path}"
        if key in state_dict:
            state_dict[f"{prefix}{_NUMBERED_PREFIX}{index:04d}"] = state_dict.pop(key)


def _named_keras_keys(module, state_dict, prefix, *args):
    for index, path in enumerate(module._variable_paths):
        key = f"{prefix}{_NUMBERED_PREFIX}{index:04d}"
        if key in state_dict:
            state_dict[f"{prefix}{_KERAS_PREFIX}{path}"] = state_dict.pop(key)


def _build_keras_model(arch: PaperArchitecture, weights: str | None):
    """The ``include_top`` Keras model at its default size, ImageNet or random weights."""
    if weights == "imagenet":
        path = imagenet_weights_path(arch.name)
        if not path.is_file():
            raise FileNotFoundError(
                f"ImageNet weights for {arch.keras_name} not found: Keras looks for {path} "
                f"(KERAS_HOME/models/{arch.weights_file}). nclib never downloads them; copy "
                "the file there (from a machine with a network, e.g. by building the model "
                "once in Keras) or use weights=None."
            )
    prepare_keras()
    import keras

    if arch.keras_name != "NASNetMobile":
        builder = getattr(keras.applications, arch.keras_name)
        return builder(include_top=True, weights=weights, classes=IMAGENET_CLASSES)
    from keras.src.applications import nasnet

    if weights == "imagenet":
        warnings.warn(
            "keras.applications refuses NASNetMobile on the torch backend: its ImageNet "
            "predictions were reported wrong there (keras-team/keras#18451). nclib found "
            "the torch and JAX forward passes equal with Keras 3.15.1 but could not check "
            "the ImageNet predictions; treat NASNet-Mobile's results with that caveat.",
            UserWarning,
            stacklevel=3,
        )
    # NASNetMobile's own arguments (keras.applications.nasnet.NASNetMobile), whose public
    # function refuses the torch backend.
    return nasnet.NASNet(
        (224, 224, 3), penultimate_filters=1056, num_blocks=4, stem_block_filters=32,
        skip_reduction=False, filter_multiplier=2, include_top=True, weights=weights,
        classes=IMAGENET_CLASSES, default_size=224, name="nasnet_mobile",
    )


def _flexible_embedding_model(full_model):
    """The graph up to the last global average pooling, on a (None, None, 3) input.

    ``clone_model`` with the identity as ``clone_function`` re-applies the same layer
    objects to the new input, so the weights are shared with ``full_model``.
    """
    import keras

    pooling = [layer for layer in full_model.layers
               if isinstance(layer, keras.layers.GlobalAveragePooling2D)][-1]
    fixed = keras.Model(full_model.inputs, pooling.output)
    return keras.models.clone_model(
        fixed, input_tensors=[keras.Input((None, None, 3))], clone_function=lambda layer: layer
    )


def _torch_linear(dense) -> nn.Linear:
    """A torch ``Linear`` with a Keras ``Dense`` layer's kernel (transposed) and bias."""
    kernel = dense.kernel.value.detach()  # (embedding_dim, 1000) torch tensor
    linear = nn.Linear(kernel.shape[0], kernel.shape[1], device=kernel.device)
    with torch.no_grad():
        linear.weight.copy_(kernel.T)
        linear.bias.copy_(dense.bias.value.detach())
    return linear


def _preprocess_input(arch: PaperArchitecture, x: torch.Tensor) -> torch.Tensor:
    """The architecture's own Keras ``preprocess_input`` on channels-last ``x``.

    Keras edits tensors in place, so it receives a copy.
    """
    import keras

    module = getattr(keras.applications, arch.module)
    return module.preprocess_input(x.clone(), data_format="channels_last")


def image_paper_zoo(weights: str | None = "imagenet", input_mode: str = "demo") -> list[ModelSpec]:
    """The paper profile's zoo: the six Keras applications of the paper, ImageNet-trained.

    Parameters
    ----------
    weights : {"imagenet", None}, default "imagenet"
        Passed to :class:`KerasBackbone`; ``None`` gives random weights (tests, fixtures).
    input_mode : {"demo", "keras"}, default "demo"
        Passed to :class:`KerasBackbone`.

    Returns
    -------
    list of ModelSpec
        In the paper's order; ``spec.build()`` returns a :class:`KerasBackbone`.
        Nothing is built or read until ``build`` is called.

    Examples
    --------
    >>> [spec.name for spec in image_paper_zoo(weights=None)]
    ['resnet-50', 'efficientnet-b0', 'xception', 'densenet-121', 'nasnet-mobile', 'mobilenet-v2']
    """
    if weights not in WEIGHT_CHOICES:
        raise ValueError(f"weights must be 'imagenet' or None, got {weights!r}")
    if input_mode not in INPUT_MODES:
        raise ValueError(f"input_mode must be one of {INPUT_MODES}, got {input_mode!r}")
    return [
        ModelSpec(
            arch.name, arch.family,
            partial(KerasBackbone, arch.name, weights=weights, input_mode=input_mode),
            "imagenet",
            f"Keras {arch.keras_name}, {arch.embedding_dim}-d embedding, "
            f"{weights or 'random'} weights, {input_mode} inputs",
        )
        for arch in PAPER_ARCHITECTURES.values()
    ]
