"""The quick profile's image zoo: contract, families, capacities, training."""

import pytest
import torch

from nclib.models.quick_image import QuickImageNet, image_quick_zoo

EXPECTED_NAMES = ["vgg-s", "resnet-s", "densenet-s", "xception-s", "mobilenetv2-s", "efficientnet-s"]


pytestmark = pytest.mark.usefixtures("single_thread")


def _num_parameters(model):
    return sum(p.numel() for p in model.parameters())


def test_zoo_names_families_and_capacities():
    zoo = image_quick_zoo(10)
    assert [spec.name for spec in zoo] == EXPECTED_NAMES
    assert len({spec.family for spec in zoo}) == 6
    assert {spec.source_task for spec in zoo} == {"shapes"}
    sizes = [_num_parameters(spec.build()) for spec in zoo]
    assert all(20_000 <= n <= 400_000 for n in sizes), sizes
    assert max(sizes) >= 5 * min(sizes)  # clearly different capacities


@pytest.mark.parametrize("spec", image_quick_zoo(7), ids=lambda spec: spec.name)
def test_contract_and_one_training_step(spec):
    torch.manual_seed(0)
    model = spec.build()
    assert isinstance(model, QuickImageNet)
    assert isinstance(model.classifier, torch.nn.Linear)
    assert (model.classifier.in_features, model.classifier.out_features) == (model.embedding_dim, 7)
    images = torch.rand(4, 3, 32, 32) * 255
    labels = torch.tensor([0, 1, 2, 6])

    model.eval()
    with torch.no_grad():
        embedding = model.embed(images)
        logits = model(images)
    assert embedding.shape == (4, model.embedding_dim)
    torch.testing.assert_close(logits, model.classifier(embedding))

    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    before = first_conv.weight.detach().clone()
    loss = torch.nn.functional.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert not torch.equal(first_conv.weight.detach(), before)


def test_transfer_replaces_the_head():
    model = image_quick_zoo()[1].build().eval()
    model.classifier = torch.nn.Linear(model.embedding_dim, 3)
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 3)


def test_inputs_are_scaled_inside_the_model():
    # A trunk that returns its input shows the scaling: 0 -> -1, 127.5 -> 0, 255 -> 1.
    model = QuickImageNet(torch.nn.Identity(), embedding_dim=3, num_classes=2)
    images = torch.stack([torch.full((3, 2, 2), value) for value in (0.0, 127.5, 255.0)])
    torch.testing.assert_close(model.embed(images), torch.tensor([[-1.0] * 3, [0.0] * 3, [1.0] * 3]))


def test_bad_inputs_are_refused():
    model = image_quick_zoo()[0].build()
    with pytest.raises(ValueError, match="batch, 3, height, width"):
        model.embed(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match="num_source_classes"):
        image_quick_zoo(1)
    with pytest.raises(ValueError, match="num_source_classes"):
        image_quick_zoo(2.5)
