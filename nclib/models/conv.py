"""2-D convolutions that compute a 1x1 feature map as the matrix product it reduces to.

When a convolution reads a 1x1 map and writes a 1x1 map, every tap of its kernel but one
meets only zero padding, so the output is a matrix product with that one tap (an
element-wise product for a depthwise convolution). At the 32x32 inputs of the image
experiment, the last stage of every network in the pre-trained zoo
(:mod:`nclib.models.pretrained_image`) reads 1x1 maps, and top fine-tuning
(:func:`nclib.transfer.top_transfer`) trains exactly that stage. PyTorch's CPU
convolution kernels are slow on such maps, above all when computing gradients:
``benchmarks/top_stage.py`` times top fine-tuning of the zoo both ways.

:class:`Conv2d` and :class:`SameConv2d` are drop-in subclasses of ``torch.nn.Conv2d``:
the same parameters, the same state-dict keys, the same results (to float rounding) on
every input; only 1x1 maps take the matrix-product path.

Importing this module imports torch; ``import nclib`` does not import this module.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def _single_tap(conv: nn.Conv2d, height: int, width: int) -> tuple[int, int] | None:
    """The kernel position that alone touches a 1x1 input, or None when another path is needed."""
    if (height, width) != (1, 1) or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        return None
    tap = []
    for kernel, pad, dilation, stride in zip(conv.kernel_size, conv.padding, conv.dilation, conv.stride):
        if (2 * pad - dilation * (kernel - 1)) // stride + 1 != 1 or pad % dilation or pad // dilation >= kernel:
            return None  # more than one output position, or the input falls between taps
        tap.append(pad // dilation)
    return tap[0], tap[1]


def _tap_product(x: torch.Tensor, tap: torch.Tensor, bias: torch.Tensor | None, groups: int) -> torch.Tensor | None:
    """The convolution of a 1x1 map with one kernel tap (out, in / groups); None when not handled."""
    batch = x.shape[0]
    flat = x.reshape(batch, -1)
    if groups == 1:
        out = F.linear(flat, tap, bias)
    elif groups == flat.shape[1] == tap.shape[0] and tap.shape[1] == 1:  # depthwise
        out = flat * tap[:, 0]
        out = out if bias is None else out + bias
    else:
        return None
    return out.view(batch, -1, 1, 1)


class Conv2d(nn.Conv2d):
    """``torch.nn.Conv2d`` that computes a 1x1 output from a 1x1 input as a matrix product.

    Same arguments, parameters and state-dict keys as ``torch.nn.Conv2d``. When the
    input map is 1x1, the output is 1x1 and padding is numeric zeros, the only kernel tap
    that touches the input is ``weight[:, :, p_h / d_h, p_w / d_w]`` (padding ``p``,
    dilation ``d``), and the output is ``x @ tap.T + bias`` for ``groups = 1`` or
    ``x * tap`` channel by channel for a depthwise convolution. A grouped convolution of a
    channels-last input (:func:`nclib.learning_curves.channels_last_for_training`) pads a
    copy of the input and convolves it unpadded, which PyTorch's CPU kernels do faster
    (``benchmarks/full_fine_tuning.py``). Every other case, and other group counts, is
    ``torch.nn.Conv2d``'s own.

    Examples
    --------
    >>> conv = Conv2d(4, 4, 3, padding=1, groups=4)
    >>> x = torch.randn(2, 4, 1, 1)
    >>> torch.allclose(conv(x), nn.Conv2d._conv_forward(conv, x, conv.weight, conv.bias), atol=1e-6)
    True
    >>> conv(torch.randn(2, 4, 5, 5)).shape
    torch.Size([2, 4, 5, 5])
    """

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        tap = _single_tap(self, x.shape[-2], x.shape[-1]) if x.dim() == 4 else None
        if tap is not None:
            out = _tap_product(x, weight[:, :, tap[0], tap[1]], bias, self.groups)
            if out is not None:
                return out
        if (self.groups > 1 and self.padding_mode == "zeros" and not isinstance(self.padding, str)
                and any(self.padding) and _is_channels_last(x)):
            # oneDNN's grouped kernels on channels-last maps are faster on a padded copy
            pad_h, pad_w = self.padding
            return F.conv2d(F.pad(x, [pad_w, pad_w, pad_h, pad_h]), weight, bias, self.stride, 0, self.dilation,
                            self.groups)
        return super()._conv_forward(x, weight, bias)


def _is_channels_last(x: torch.Tensor) -> bool:
    """Whether a 4-D tensor is stored channels-last (NHWC) and not also plain contiguous."""
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


class SameConv2d(Conv2d):
    """:class:`Conv2d` with TensorFlow's ``padding='SAME'`` computed from the input size.

    The input is zero-padded so that the output has ``ceil(size / stride)`` positions,
    the extra pixel (if the padding is odd) at the bottom and right, as TensorFlow does;
    the layer's own ``padding`` must be 0. On a 1x1 input the padding is ``(k - 1) // 2``
    before, so the matrix-product path applies to it too.

    Examples
    --------
    >>> conv = SameConv2d(3, 5, 3, stride=2)
    >>> conv(torch.randn(1, 3, 7, 7)).shape
    torch.Size([1, 5, 4, 4])
    >>> conv(torch.randn(1, 3, 1, 1)).shape
    torch.Size([1, 5, 1, 1])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, in_channels, H, W) -> (batch, out_channels, ceil(H / s), ceil(W / s)), stride s."""
        if x.shape[-2:] == (1, 1) and self.dilation == (1, 1):
            tap = ((self.kernel_size[0] - 1) // 2, (self.kernel_size[1] - 1) // 2)
            out = _tap_product(x, self.weight[:, :, tap[0], tap[1]], self.bias, self.groups)
            if out is not None:
                return out
        return super().forward(tf_same_pad(x, self.kernel_size, self.stride))


def tf_same_pad(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], value: float = 0.0) -> torch.Tensor:
    """Pad (batch, C, H, W) like TensorFlow's ``padding='SAME'`` (the extra pixel bottom/right).

    Parameters
    ----------
    x : torch.Tensor of shape (batch, channels, height, width)
    kernel, stride : (int, int)
        Kernel size and stride, (height, width).
    value : float
        The padding value (``-inf`` for max pooling).

    Returns
    -------
    torch.Tensor of shape (batch, channels, height + pad_h, width + pad_w)
        With ``pad = max((ceil(size / stride) - 1) * stride + kernel - size, 0)``.

    Examples
    --------
    >>> tf_same_pad(torch.ones(1, 1, 4, 4), (3, 3), (2, 2)).shape
    torch.Size([1, 1, 5, 5])
    """
    pads = []
    for size, k, s in ((x.shape[3], kernel[1], stride[1]), (x.shape[2], kernel[0], stride[0])):
        total = max((math.ceil(size / s) - 1) * s + k - size, 0)  # F.pad wants the last dimension first
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value) if any(pads) else x
