"""The quick profile's image zoo: six small torch networks from six architecture families.

The paper's CIFAR-10 zoo holds ImageNet models from distinct families (ResNet-50,
DenseNet-121, Xception, MobileNet-V2, EfficientNet-B0, NASNet-Mobile). Neither ImageNet
weights nor CIFAR-10 can be downloaded here, so the quick profile pre-trains a zoo of
small networks that echo those families on a procedural source task
(:func:`nclib.data.synthetic_images.shapes_task`) on a CPU:

============== ================= ========= ===== =========================================
name           family            params    emb.  echoes
============== ================= ========= ===== =========================================
vgg-s          plain               168,650   128 VGG: 3x3 convolutions, no shortcut
resnet-s       residual            340,546    96 ResNet basic blocks, projection shortcuts
densenet-s     dense                64,948    87 DenseNet blocks (concatenation), transitions
xception-s     separable            48,154   192 Xception's depthwise-separable blocks
mobilenetv2-s  inverted-residual    24,786   160 MobileNet-V2: expand, depthwise, project
efficientnet-s mbconv-se            68,360   192 EfficientNet MBConv, squeeze-excitation
============== ================= ========= ===== =========================================

Parameter counts include a 10-class classifier; emb. is ``embedding_dim``.

The capacities differ on purpose (about 25k to 340k parameters) so that the transfer
accuracies differ. Every network follows the zoo contract (:mod:`nclib.models`): inputs
are float32 images of shape (batch, 3, height, width) with values in [0, 255] (32x32
in the quick profile), scaled inside the model to [-1, 1]; ``embed`` ends in global
average pooling; ``classifier`` is a ``torch.nn.Linear``.

The chapter "The image experiment" ranks this zoo as its second, clearly labelled one
(``zoo="in-house"`` of :func:`nclib.experiments.cifar10.cifar10_experiment`).
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from nclib.models import ModelSpec

SOURCE_TASK = "shapes"


class QuickImageNet(nn.Module):
    """A convolutional trunk, global average pooling and a linear classifier.

    Parameters
    ----------
    trunk : torch.nn.Module
        Maps scaled images (batch, 3, H, W) to feature maps (batch, embedding_dim, h, w).
    embedding_dim : int
        Number of channels the trunk outputs.
    num_classes : int
        Outputs of the classifier (the source task's classes).

    Attributes
    ----------
    embedding_dim : int
    classifier : torch.nn.Linear
        ``Linear(embedding_dim, num_classes)``; transfer replaces it.

    Examples
    --------
    >>> net = QuickImageNet(nn.Conv2d(3, 4, 3), embedding_dim=4, num_classes=2)
    >>> images = torch.full((5, 3, 8, 8), 255.0)
    >>> net.embed(images).shape, net(images).shape
    (torch.Size([5, 4]), torch.Size([5, 2]))
    """

    def __init__(self, trunk: nn.Module, embedding_dim: int, num_classes: int):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.trunk = trunk
        self.embedding_dim = int(embedding_dim)
        self.classifier = nn.Linear(self.embedding_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate embedding, shape (batch, embedding_dim), of images in [0, 255]."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images of shape (batch, 3, height, width), got {tuple(x.shape)}")
        scaled = x / 127.5 - 1.0
        return self.trunk(scaled).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Source-task logits, shape (batch, num_classes)."""
        return self.classifier(self.embed(x))


def conv_bn(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
            groups: int = 1, activation: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    """Convolution ("same" padding, no bias), batch norm and an optional activation.

    Examples
    --------
    >>> conv_bn(3, 8, stride=2)(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 8, 16, 16])
    """
    layers = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2,
                  groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """ResNet basic block (He et al., 2016): two 3x3 convolutions plus a shortcut.

    The shortcut is the identity, or a strided 1x1 projection where the shape changes.

    Examples
    --------
    >>> ResidualBlock(8, 16, stride=2)(torch.zeros(2, 8, 16, 16)).shape
    torch.Size([2, 16, 8, 8])
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(in_channels, out_channels, stride=stride),
            conv_bn(out_channels, out_channels, activation=None),
        )
        self.shortcut = (
            nn.Identity() if stride == 1 and in_channels == out_channels
            else conv_bn(in_channels, out_channels, 1, stride, activation=None)
        )

    def forward(self, x):
        """The block's output: ReLU of the two convolutions plus the shortcut."""
        return torch.relu(self.body(x) + self.shortcut(x))


class DenseBlock(nn.Module):
    """DenseNet block (Huang et al., 2017): each layer adds ``growth`` channels.

    Every layer is BN-ReLU-3x3 convolution on the concatenation of all earlier outputs;
    the block outputs ``in_channels + num_layers * growth`` channels.

    Examples
    --------
    >>> DenseBlock(8, num_layers=3, growth=4)(torch.zeros(1, 8, 6, 6)).shape
    torch.Size([1, 20, 6, 6])
    """

    def __init__(self, in_channels: int, num_layers: int, growth: int):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.BatchNorm2d(in_channels + k * growth),
                nn.ReLU(),
                nn.Conv2d(in_channels + k * growth, growth, 3, padding=1, bias=False),
            )
            for k in range(num_layers)
        )
        self.out_channels = in_channels + num_layers * growth

    def forward(self, x):
        """The input with every layer's ``growth`` new channels appended."""
        for layer in self.layers:
            x = torch.cat([x, layer(x)], dim=1)
        return x


def transition(in_channels: int, out_channels: int) -> nn.Sequential:
    """DenseNet transition: BN-ReLU-1x1 convolution, then 2x2 average pooling.

    Examples
    --------
    >>> transition(20, 10)(torch.zeros(1, 20, 8, 8)).shape
    torch.Size([1, 10, 4, 4])
    """
    return nn.Sequential(
        nn.BatchNorm2d(in_channels), nn.ReLU(),
        nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.AvgPool2d(2),
    )


def separable_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """Depthwise 3x3 then pointwise 1x1 convolution, then batch norm (Chollet, 2017).

    Examples
    --------
    >>> separable_conv(8, 16)(torch.zeros(1, 8, 5, 5)).shape
    torch.Size([1, 16, 5, 5])
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False),
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class XceptionBlock(nn.Module):
    """Xception entry-flow block: ReLU-separable conv twice, strided max pooling, plus a
    strided 1x1 projection shortcut.

    Examples
    --------
    >>> XceptionBlock(8, 16)(torch.zeros(1, 8, 8, 8)).shape
    torch.Size([1, 16, 4, 4])
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(), separable_conv(in_channels, out_channels),
            nn.ReLU(), separable_conv(out_channels, out_channels),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        self.shortcut = conv_bn(in_channels, out_channels, 1, 2, activation=None)

    def forward(self, x):
        """The block's output: the separable convolutions and pooling plus the shortcut."""
        return self.body(x) + self.shortcut(x)


class InvertedResidual(nn.Module):
    """MobileNet-V2 block (Sandler et al., 2018): 1x1 expansion, 3x3 depthwise, linear
    1x1 projection; a shortcut when the shape is unchanged.

    With ``squeeze_excite=True`` and SiLU activations it is EfficientNet's MBConv block
    (Tan and Le, 2019), which rescales channels by a squeeze-and-excitation gate.

    Examples
    --------
    >>> InvertedResidual(8, 8, stride=1, expansion=4)(torch.zeros(1, 8, 6, 6)).shape
    torch.Size([1, 8, 6, 6])
    >>> InvertedResidual(8, 16, 2, 4, squeeze_excite=True)(torch.zeros(1, 8, 6, 6)).shape
    torch.Size([1, 16, 3, 3])
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int,
                 squeeze_excite: bool = False):
        super().__init__()
        hidden = in_channels * expansion
        activation = nn.SiLU if squeeze_excite else nn.ReLU6
        layers = [
            conv_bn(in_channels, hidden, 1, activation=activation),
            conv_bn(hidden, hidden, 3, stride, groups=hidden, activation=activation),
        ]
        if squeeze_excite:
            layers.append(SqueezeExcite(hidden, max(4, in_channels // 4)))
        layers.append(conv_bn(hidden, out_channels, 1, activation=None))
        self.body = nn.Sequential(*layers)
        self.use_shortcut = stride == 1 and in_channels == out_channels

    def forward(self, x):
        """The block's output, plus the input when the stride is 1 and the channels match."""
        out = self.body(x)
        return out + x if self.use_shortcut else out


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation gate (Hu et al., 2018): channel weights from pooled features.

    Examples
    --------
    >>> SqueezeExcite(8, 2)(torch.ones(1, 8, 4, 4)).shape
    torch.Size([1, 8, 4, 4])
    """

    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, reduced, 1), nn.SiLU(),
            nn.Conv2d(reduced, channels, 1), nn.Sigmoid(),
        )

    def forward(self, x):
        """The input scaled channel by channel by the gate."""
        return x * self.gate(x)


def vgg_s(num_classes: int) -> QuickImageNet:
    """Plain VGG-style network (Simonyan and Zisserman, 2015): 3x3 convolutions and max
    pooling, no shortcuts; 128-d embedding.

    Examples
    --------
    >>> vgg_s(10)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """
    trunk = nn.Sequential(
        conv_bn(3, 32, stride=2),
        conv_bn(32, 48), nn.MaxPool2d(2),
        conv_bn(48, 96), nn.MaxPool2d(2),
        conv_bn(96, 128),
    )
    return QuickImageNet(trunk, 128, num_classes)


def resnet_s(num_classes: int) -> QuickImageNet:
    """Small ResNet: a strided stem and four basic blocks in three stages; 96-d embedding.

    Examples
    --------
    >>> resnet_s(10).embed(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 96])
    """
    trunk = nn.Sequential(
        conv_bn(3, 24, stride=2),
        ResidualBlock(24, 24),
        ResidualBlock(24, 48, stride=2),
        ResidualBlock(48, 96, stride=2),
        ResidualBlock(96, 96),
    )
    return QuickImageNet(trunk, 96, num_classes)


def densenet_s(num_classes: int) -> QuickImageNet:
    """Small DenseNet: three dense blocks (growth 12) joined by transitions; 87-d embedding.

    Examples
    --------
    >>> densenet_s(10).embed(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 87])
    """
    stem = conv_bn(3, 24, stride=2)
    block1 = DenseBlock(24, 3, 12)                      # 60 channels at 16x16
    block2 = DenseBlock(30, 4, 12)                      # 78 channels at 8x8
    block3 = DenseBlock(39, 4, 12)                      # 87 channels at 4x4
    trunk = nn.Sequential(
        stem, block1, transition(block1.out_channels, 30),
        block2, transition(block2.out_channels, 39),
        block3, nn.BatchNorm2d(block3.out_channels), nn.ReLU(),
    )
    return QuickImageNet(trunk, block3.out_channels, num_classes)


def xception_s(num_classes: int) -> QuickImageNet:
    """Small Xception: a strided stem, three separable blocks and a separable exit
    convolution; 192-d embedding.

    Examples
    --------
    >>> xception_s(10).embed(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 192])
    """
    trunk = nn.Sequential(
        conv_bn(3, 24, stride=2),
        XceptionBlock(24, 48),
        XceptionBlock(48, 96),
        nn.ReLU(), separable_conv(96, 192), nn.ReLU(),
    )
    return QuickImageNet(trunk, 192, num_classes)


def mobilenetv2_s(num_classes: int) -> QuickImageNet:
    """Small MobileNet-V2: inverted residual blocks (expansion 3) and a 1x1 head
    convolution; 160-d embedding.

    Examples
    --------
    >>> mobilenetv2_s(10).embed(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 160])
    """
    trunk = nn.Sequential(
        conv_bn(3, 16, stride=2, activation=nn.ReLU6),
        InvertedResidual(16, 16, 1, 3),
        InvertedResidual(16, 24, 2, 3),
        InvertedResidual(24, 32, 2, 3),
        InvertedResidual(32, 32, 1, 3),
        conv_bn(32, 160, 1, activation=nn.ReLU6),
    )
    return QuickImageNet(trunk, 160, num_classes)


def efficientnet_s(num_classes: int) -> QuickImageNet:
    """Small EfficientNet: MBConv blocks with squeeze-and-excitation and SiLU, and a
    1x1 head convolution; 192-d embedding.

    Examples
    --------
    >>> efficientnet_s(10).embed(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 192])
    """
    trunk = nn.Sequential(
        conv_bn(3, 16, stride=2, activation=nn.SiLU),
        InvertedResidual(16, 24, 2, 4, squeeze_excite=True),
        InvertedResidual(24, 40, 2, 4, squeeze_excite=True),
        InvertedResidual(40, 40, 1, 4, squeeze_excite=True),
        InvertedResidual(40, 64, 1, 4, squeeze_excite=True),
        conv_bn(64, 192, 1, activation=nn.SiLU),
    )
    return QuickImageNet(trunk, 192, num_classes)


_ZOO = (
    ("vgg-s", "plain", vgg_s, "VGG-style 3x3 convolution stack, no shortcuts"),
    ("resnet-s", "residual", resnet_s, "ResNet basic blocks with projection shortcuts"),
    ("densenet-s", "dense", densenet_s, "DenseNet blocks, growth 12, with transitions"),
    ("xception-s", "separable", xception_s, "Xception-style depthwise-separable blocks"),
    ("mobilenetv2-s", "inverted-residual", mobilenetv2_s, "MobileNet-V2 inverted residuals"),
    ("efficientnet-s", "mbconv-se", efficientnet_s, "EfficientNet MBConv with squeeze-excitation"),
)


def image_quick_zoo(num_source_classes: int = 10) -> list[ModelSpec]:
    """The quick profile's image zoo: six small networks, one per architecture family.

    Parameters
    ----------
    num_source_classes : int, default 10
        Classes of the source task (the classifier's outputs).

    Returns
    -------
    list of ModelSpec
        In a fixed order; ``spec.build()`` returns a freshly initialised
        :class:`QuickImageNet` (seed torch first for reproducible weights).

    Examples
    --------
    >>> [spec.name for spec in image_quick_zoo()]
    ['vgg-s', 'resnet-s', 'densenet-s', 'xception-s', 'mobilenetv2-s', 'efficientnet-s']
    >>> image_quick_zoo(4)[0].build().classifier.out_features
    4
    """
    if isinstance(num_source_classes, bool) or int(num_source_classes) != num_source_classes \
            or num_source_classes < 2:
        raise ValueError(f"num_source_classes must be an integer >= 2, got {num_source_classes!r}")
    return [
        ModelSpec(name, family, partial(builder, int(num_source_classes)), SOURCE_TASK, text)
        for name, family, builder, text in _ZOO
    ]
