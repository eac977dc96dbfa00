"""The matrix-product path of nclib.models.conv gives torch's own convolution, values and gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from nclib.models.conv import Conv2d, SameConv2d, tf_same_pad


def _reference(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)


def _values_and_gradients(conv, forward, x):
    x = x.clone().requires_grad_(True)
    conv.zero_grad(set_to_none=True)
    out = forward(x)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out.detach(), x.grad, conv.weight.grad, None if conv.bias is None else conv.bias.grad


CASES = [  # in, out, kernel, stride, padding, dilation, groups, bias
    (6, 5, 1, 1, 0, 1, 1, True),
    (6, 5, 3, 1, 1, 1, 1, False),
    (6, 6, 3, 1, 1, 1, 6, False),     # depthwise, MobileNetV2
    (6, 6, 5, 2, 2, 1, 6, True),      # depthwise, stride 2
    (6, 4, 3, 1, 2, 2, 1, True),      # dilated: the input meets the centre tap
    (6, 4, 1, 2, 0, 1, 1, True),      # 1x1 stride 2 (a shortcut)
    (6, 4, 3, 1, 1, 1, 2, True),      # other groups: torch's own path
]


@pytest.mark.parametrize("case", CASES)
def test_on_1x1_maps_values_and_gradients_are_torchs(case):
    inp, out, kernel, stride, padding, dilation, groups, bias = case
    torch.manual_seed(0)
    conv = Conv2d(inp, out, kernel, stride, padding, dilation, groups, bias)
    x = torch.randn(7, inp, 1, 1)
    fast = _values_and_gradients(conv, conv, x)
    slow = _values_and_gradients(conv, lambda z: _reference(conv, z), x)
    assert fast[0].shape == slow[0].shape
    for a, b in zip(fast, slow):
        if a is None:
            assert b is None
        else:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_larger_maps_and_the_state_dict_are_torchs():
    torch.manual_seed(1)
    conv = Conv2d(4, 4, 3, padding=1, groups=4)
    x = torch.randn(2, 4, 6, 5)
    torch.testing.assert_close(conv(x), _reference(conv, x))
    plain = nn.Conv2d(4, 4, 3, padding=1, groups=4)
    assert list(conv.state_dict()) == list(plain.state_dict())
    plain.load_state_dict(conv.state_dict(), strict=True)


def test_the_matrix_product_path_is_taken_on_1x1_maps_only(monkeypatch):
    calls = []
    original = nn.Conv2d._conv_forward
    monkeypatch.setattr(nn.Conv2d, "_conv_forward", lambda self, *a: calls.append(1) or original(self, *a))
    conv = Conv2d(3, 3, 3, padding=1, groups=3)
    conv(torch.randn(2, 3, 1, 1))
    assert calls == []
    conv(torch.randn(2, 3, 2, 2))
    assert calls == [1]


@pytest.mark.parametrize("kernel, stride, groups", [(1, 1, 1), (3, 1, 8), (5, 2, 8), (3, 2, 1)])
@pytest.mark.parametrize("size", [1, 4, 7])
def test_same_padding_matches_tensorflows_rule(kernel, stride, groups, size):
    torch.manual_seed(2)
    conv = SameConv2d(8, 8, kernel, stride, groups=groups, bias=False)
    x = torch.randn(3, 8, size, size)
    fast = _values_and_gradients(conv, conv, x)
    slow = _values_and_gradients(conv, lambda z: _reference(conv, tf_same_pad(z, conv.kernel_size, conv.stride)), x)
    assert fast[0].shape[-1] == -(-size // stride)  # ceil(size / stride), as TensorFlow
    for a, b in zip(fast[:3], slow[:3]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_tf_same_pad_puts_the_odd_pixel_bottom_right():
    padded = tf_same_pad(torch.ones(1, 1, 4, 4), (2, 2), (1, 1), value=-1.0)
    assert padded.shape == (1, 1, 5, 5)
    assert padded[0, 0, :, -1].eq(-1).all() and padded[0, 0, -1].eq(-1).all() and padded[0, 0, 0, 0] == 1


@pytest.mark.parametrize("case", [c for c in CASES if c[6] > 1])
def test_channels_last_grouped_maps_values_and_gradients_are_torchs(case):
    inp, out, kernel, stride, padding, dilation, groups, bias = case
    torch.manual_seed(0)
    conv = Conv2d(inp, out, kernel, stride, padding, dilation, groups, bias).to(memory_format=torch.channels_last)
    x = torch.randn(3, inp, 7, 7).to(memory_format=torch.channels_last)
    ours = _values_and_gradients(conv, conv, x)
    theirs = _values_and_gradients(conv, lambda v: _reference(conv, v), x)
    for a, b in zip(ours, theirs):
        if a is not None:
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_the_padded_copy_is_taken_for_channels_last_grouped_maps_only(monkeypatch):
    calls = []
    original = nn.Conv2d._conv_forward
    monkeypatch.setattr(nn.Conv2d, "_conv_forward", lambda self, *a: calls.append(1) or original(self, *a))
    nhwc = torch.randn(2, 4, 5, 5).to(memory_format=torch.channels_last)
    Conv2d(4, 4, 3, padding=1, groups=4)(nhwc)
    assert calls == []  # the padded copy, convolved by F.conv2d itself
    Conv2d(4, 4, 3, padding=1, groups=4)(nhwc.contiguous())  # NCHW: torch's own
    Conv2d(4, 4, 3, padding=1)(nhwc)  # dense: torch's own
    Conv2d(4, 4, 3, groups=4)(nhwc)  # nothing to pad: torch's own
    assert calls == [1, 1, 1]
