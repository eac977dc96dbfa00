"""The paper profile's Keras zoo: every architecture built once with random weights."""

import numpy as np
import pytest
import torch

from nclib.config import prepare_keras
from nclib.models import image
from nclib.models.image import KerasBackbone, PAPER_ARCHITECTURES, image_paper_zoo

# Widths of the global average pooling, as Keras documents them and the authors' demo
# reports (ResNet50 / Xception 2048, DenseNet121 1024, MobileNetV2 / EfficientNetB0
# 1280) and NASNet-Mobile's penultimate_filters (1056).
EMBEDDING_DIMS = {
    "resnet-50": 2048,
    "efficientnet-b0": 1280,
    "xception": 2048,
    "densenet-121": 1024,
    "nasnet-mobile": 1056,
    "mobilenet-v2": 1280,
}


pytestmark = pytest.mark.usefixtures("single_thread")


def _spread_predictions(keras_model):
    """Give the random predictions layer a large kernel so its softmax is far from uniform."""
    dense = keras_model.get_layer("predictions")
    rng = np.random.default_rng(0)
    dense.kernel.assign(rng.normal(0.0, 1.0, size=tuple(dense.kernel.shape)).astype("float32"))
    dense.bias.assign(rng.normal(0.0, 1.0, size=tuple(dense.bias.shape)).astype("float32"))


@pytest.mark.parametrize("name", list(EMBEDDING_DIMS))
def test_backbone_matches_keras_and_fine_tunes(name):
    arch = PAPER_ARCHITECTURES[name]
    prepare_keras()
    import keras

    keras.utils.set_random_seed(0)  # the same random network on every run
    keras_model = image._build_keras_model(arch, weights=None)
    _spread_predictions(keras_model)
    net = KerasBackbone(name, keras_model=keras_model).eval()
    named = dict(net.network.named_parameters())
    moving_name = next(k for k in named if "moving_mean" in k)
    moving_initial = named[moving_name].detach().clone()
    assert net.embedding_dim == EMBEDDING_DIMS[name]
    assert (net.classifier.in_features, net.classifier.out_features) == (EMBEDDING_DIMS[name], 1000)

    # One forward pass of the wrapper reproduces Keras' features, logits and softmax at the
    # default size. The spread kernel puts the logits in the thousands, where float32 sums
    # taken in another order (another CPU, another oneDNN path) differ in their last
    # bits, so logits are compared relative to their scale and the softmax within what
    # that logit error can move it: |dp_i| <= 2 p_i max|dlogit|.
    torch.manual_seed(0)
    size = arch.default_size
    images = torch.rand(1, 3, size, size) * 255
    channels_last = images.permute(0, 2, 3, 1)
    predictions = keras_model.get_layer("predictions")
    keras_features_model = keras.Model(keras_model.inputs, predictions.input)
    with torch.no_grad():
        keras_probs = torch.as_tensor(keras_model(channels_last, training=False))
        keras_features = torch.as_tensor(keras_features_model(channels_last, training=False))
        features = net.embed(images)
        logits = net(images)
    assert float(keras_probs.max()) > 0.01  # not the uniform 0.001
    feature_scale = float(keras_features.abs().max())
    torch.testing.assert_close(features, keras_features, rtol=1e-4, atol=1e-5 * feature_scale)
    kernel = predictions.kernel.value.detach().double()
    bias = predictions.bias.value.detach().double()
    keras_logits = keras_features.double() @ kernel + bias
    logit_tolerance = 1e-5 * float(keras_logits.abs().max())
    torch.testing.assert_close(logits.double(), keras_logits, atol=logit_tolerance, rtol=0)
    probs = torch.softmax(logits, dim=1)
    allowed = 2 * logit_tolerance * keras_probs + 1e-6
    assert torch.all((probs - keras_probs).abs() <= allowed)

    # Demo mode: CIFAR-10's native 32x32 pixels, no resizing.
    cifar_like = torch.rand(2, 3, 32, 32) * 255
    with torch.no_grad():
        assert net.embed(cifar_like).shape == (2, EMBEDDING_DIMS[name])
        assert net(cifar_like).shape == (2, 1000)

    # Evaluation mode leaves the batch-norm statistics alone.
    assert torch.equal(named[moving_name].detach(), moving_initial)

    # Full fine-tuning with a plain torch optimizer over module.parameters().
    kernel_name = next(k for k, p in named.items() if p.requires_grad and p.ndim == 4)
    assert not named[moving_name].requires_grad
    kernel_before = named[kernel_name].detach().clone()
    moving_before = named[moving_name].detach().clone()
    head_before = net.classifier.weight.detach().clone()
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    loss = torch.nn.functional.cross_entropy(net(cifar_like), torch.tensor([3, 7]))
    optimizer.zero_grad()
    loss.backward()
    assert named[kernel_name].grad is not None
    optimizer.step()
    assert not torch.equal(named[kernel_name].detach(), kernel_before)
    assert not torch.equal(net.classifier.weight.detach(), head_before)
    assert not torch.equal(named[moving_name].detach(), moving_before)  # batch norm in training mode


@pytest.fixture(scope="module")
def mobilenet_keras_mode():
    return KerasBackbone("MobileNetV2", input_mode="keras").eval()


def test_keras_mode_resizes_and_applies_preprocess_input(mobilenet_keras_mode):
    red = torch.zeros(1, 3, 32, 32)
    red[:, 0] = 255.0
    prepared = mobilenet_keras_mode.prepare_inputs(red)
    assert prepared.shape == (1, 224, 224, 3)  # bilinear resize keeps a constant image
    # MobileNetV2 uses Keras' "tf" mode: x / 127.5 - 1.
    torch.testing.assert_close(prepared[0, 100, 7], torch.tensor([1.0, -1.0, -1.0]))
    with torch.no_grad():
        assert mobilenet_keras_mode(red).shape == (1, 1000)
    # Keras' "caffe" mode (ResNet50): RGB -> BGR minus the ImageNet BGR means.
    pixel = torch.tensor([[[[255.0, 0.0, 0.0]]]])
    caffe = image._preprocess_input(PAPER_ARCHITECTURES["resnet-50"], pixel)
    torch.testing.assert_close(caffe.flatten(), torch.tensor([-103.939, -116.779, 255.0 - 123.68]))
    # Keras' "torch" mode (DenseNet121): x / 255 standardised with ImageNet's mean and std.
    standardised = image._preprocess_input(PAPER_ARCHITECTURES["densenet-121"], pixel)
    expected = torch.tensor([(1 - 0.485) / 0.229, -0.456 / 0.224, -0.406 / 0.225])
    torch.testing.assert_close(standardised.flatten(), expected)
    assert pixel.flatten().tolist() == [255.0, 0.0, 0.0]  # the caller's tensor is untouched


def test_demo_mode_passes_raw_pixels():
    net = KerasBackbone("mobilenet-v2", keras_model=image._build_keras_model(
        PAPER_ARCHITECTURES["mobilenet-v2"], None))
    images = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    prepared = net.prepare_inputs(images)
    assert prepared.shape == (2, 4, 5, 3)
    assert prepared[1, 2, 3, 0] == images[1, 0, 2, 3] and prepared[0, 3, 4, 2] == images[0, 2, 3, 4]
    with pytest.raises(ValueError, match="batch, 3, height, width"):
        net.embed(torch.zeros(2, 1, 32, 32))


def test_missing_imagenet_weights_fail_with_the_path(tmp_path, monkeypatch):
    monkeypatch.setattr(image, "_keras_cache_dir", lambda: tmp_path)
    expected = tmp_path / "models" / "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
    assert image.imagenet_weights_path("resnet-50") == expected
    with pytest.raises(FileNotFoundError, match="resnet50_weights_tf_dim_ordering_tf_kernels.h5") as error:
        KerasBackbone("resnet-50", weights="imagenet")
    assert str(expected) in str(error.value)
    assert not (tmp_path / "models").exists()  # nothing was downloaded


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown architecture"):
        KerasBackbone("vgg16")
    with pytest.raises(ValueError, match="weights"):
        KerasBackbone("xception", weights="cifar")
    with pytest.raises(ValueError, match="input_mode"):
        KerasBackbone("xception", input_mode="upsample")
    with pytest.raises(ValueError, match="input_mode"):
        image_paper_zoo(input_mode="raw")


def test_paper_zoo_lists_the_six_models_without_building_them():
    zoo = image_paper_zoo(weights=None, input_mode="keras")
    assert [spec.name for spec in zoo] == list(EMBEDDING_DIMS)
    assert {spec.source_task for spec in zoo} == {"imagenet"}
    assert len({spec.family for spec in zoo}) == 6
    assert all(spec.build.keywords == {"weights": None, "input_mode": "keras"} for spec in zoo)


def test_state_dict_moves_between_instances():
    # EfficientNet-B0 has auto-named layers ("normalization", "normalization_1", ...),
    # so its raw Keras variable names differ between two builds in one process.
    source = KerasBackbone("efficientnet-b0").eval()
    target = KerasBackbone("efficientnet-b0").eval()
    state = source.state_dict()
    assert state.keys() == target.state_dict().keys()
    target.load_state_dict(state)
    images = torch.rand(2, 3, 32, 32) * 255
    with torch.no_grad():
        torch.testing.assert_close(target(images), source(images))
