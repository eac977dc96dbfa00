"""Tests of nclib.features: batched extraction of embeddings and source probabilities."""

import numpy as np
import pytest
import torch
from torch import nn

from nclib.cache import Cache
from nclib.experiments.toy import ToyMlp
from nclib.features import cached_extract, extract


pytestmark = pytest.mark.usefixtures("quiet_single_thread")


class Doubler(nn.Module):
    """embed(x) = 2x; a zero classifier over 4 source classes: probabilities 1/4 each."""

    def __init__(self, width=3, dropout=0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width, 4)
        nn.init.zeros_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)
        self.embedding_dim = width

    def embed(self, x):
        return self.dropout(2 * x)

    def forward(self, x):
        return self.classifier(self.embed(x))


def test_extract_hand_case():
    inputs = np.arange(12, dtype=np.float32).reshape(4, 3)
    out = extract(Doubler(), inputs, batch_size=3)
    assert set(out) == {"features", "source_probs"}
    np.testing.assert_array_equal(out["features"], 2 * inputs)
    np.testing.assert_allclose(out["source_probs"], np.full((4, 4), 0.25))
    assert out["features"].dtype == np.float32 and out["source_probs"].dtype == np.float32


def test_extract_matches_the_model_and_does_not_depend_on_batch_size():
    torch.manual_seed(0)
    model = ToyMlp(hidden=8, embedding_dim=5, num_classes=3)
    inputs = np.random.default_rng(0).normal(size=(37, 8)).astype(np.float32)
    small, large = extract(model, inputs, batch_size=4), extract(model, inputs, batch_size=256)
    np.testing.assert_allclose(small["features"], large["features"], rtol=1e-6, atol=1e-7)
    with torch.no_grad():
        x = torch.from_numpy(inputs)
        np.testing.assert_allclose(large["features"], model.embed(x).numpy(), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(large["source_probs"], torch.softmax(model(x), 1).numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(large["source_probs"].sum(axis=1), 1.0, rtol=1e-6)


def test_extract_runs_in_eval_mode_and_restores_the_mode():
    model = Doubler(dropout=0.9).train()
    inputs = np.ones((50, 3), np.float32)
    out = extract(model, inputs)
    np.testing.assert_array_equal(out["features"], 2 * inputs)  # dropout inactive
    assert model.training
    assert extract(model.eval(), inputs) is not None and not model.training


def test_extract_accepts_tensors_and_image_shaped_inputs():
    class Pool(Doubler):
        def embed(self, x):
            return x.mean(dim=(2, 3))

    images = torch.ones(2, 3, 4, 4)
    out = extract(Pool(), images)
    np.testing.assert_array_equal(out["features"], np.ones((2, 3), np.float32))


@pytest.mark.parametrize("inputs, batch_size, message", [
    (np.zeros((0, 3), np.float32), 8, "N > 0"),
    (np.array([[np.nan, 0, 0]], np.float32), 8, "NaN"),
    (np.zeros((2, 3), np.float32), 0, "batch_size"),
])
def test_extract_refuses_bad_input(inputs, batch_size, message):
    with pytest.raises(ValueError, match=message):
        extract(Doubler(), inputs, batch_size=batch_size)


def test_extract_refuses_a_model_that_produces_nan():
    model = Doubler()
    with torch.no_grad():
        model.classifier.bias.fill_(float("nan"))
    with pytest.raises(ValueError, match="non-finite source_probs"):
        extract(model, np.zeros((2, 3), np.float32))


def test_cached_extract_hits_misses_and_never_builds_on_a_hit(tmp_path):
    cache = Cache(tmp_path)
    inputs = np.arange(6, dtype=np.float32).reshape(2, 3)
    builds = []

    def build():
        builds.append(1)
        return Doubler()

    first = cached_extract(cache, {"model": "doubler"}, build, inputs)
    second = cached_extract(cache, {"model": "doubler"}, build, inputs)
    assert len(builds) == 1
    np.testing.assert_array_equal(first["features"], second["features"])
    cached_extract(cache, {"model": "doubler"}, build, inputs + 1)  # other data: a miss
    cached_extract(cache, {"model": "other"}, build, inputs)  # other model: a miss
    assert len(builds) == 3
    cached_extract(cache, {"model": "doubler", "data": "given"}, build, inputs)  # a caller's data key
    cached_extract(cache, {"model": "doubler", "data": "given"}, build, inputs + 5)  # is trusted as given
    assert len(builds) == 4
    assert len(list((tmp_path / "features").glob("*.npz"))) == 4
