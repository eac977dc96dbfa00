"""The audio zoo: parameter counts against the paper's Table 1, the model contract, gradients."""

import pytest
import torch

from nclib.models import ModelSpec
from nclib.models.audio import (
    PAPER_CLASS_COUNTS,
    Crnn,
    DcaseBaselineCnn,
    SmallCnn,
    audio_zoo,
    count_parameters,
)

MODELS = [DcaseBaselineCnn, SmallCnn, Crnn]


def test_dcase_baseline_has_exactly_the_published_parameter_count():
    # Hand count: 5x5 convs 25*(1*64 + 64*128 + 128*256 + 256*512) = 4,302,400;
    # batch-norm scale + shift 2*(64+128+256+512) = 1,920; head 512*10 + 10 = 5,130.
    assert 25 * (64 + 64 * 128 + 128 * 256 + 256 * 512) + 2 * 960 + 5130 == 4_309_450
    assert count_parameters(DcaseBaselineCnn(num_classes=10)) == 4_309_450


@pytest.mark.parametrize("model_class, table_count", [(SmallCnn, 430_000), (Crnn, 530_000)])
def test_smaller_models_within_three_percent_of_table_1(model_class, table_count):
    count = count_parameters(model_class(num_classes=10))
    assert abs(count - table_count) <= 0.03 * table_count


def test_count_parameters_ignores_batch_norm_buffers_and_rejects_non_modules():
    assert count_parameters(torch.nn.BatchNorm2d(8)) == 16  # scale and shift only
    with pytest.raises(ValueError, match="torch.nn.Module"):
        count_parameters("not a model")


def test_head_size_changes_only_the_classifier():
    # 35 speech classes instead of 10: 25 more outputs of (512 weights + 1 bias).
    assert count_parameters(DcaseBaselineCnn(35)) - count_parameters(DcaseBaselineCnn(10)) == 25 * 513


@pytest.mark.parametrize("model_class", MODELS)
@pytest.mark.parametrize("frames, mel_bins", [(16, 64), (301, 64), (1, 1)])
def test_contract_shapes(model_class, frames, mel_bins):
    torch.manual_seed(0)
    model = model_class(num_classes=7).eval()
    x = torch.randn(3, 1, frames, mel_bins)
    with torch.no_grad():
        embedding = model.embed(x)
        logits = model(x)
    assert isinstance(model.classifier, torch.nn.Linear)
    assert model.classifier.in_features == model.embedding_dim
    assert embedding.shape == (3, model.embedding_dim)
    assert logits.shape == (3, 7)
    torch.testing.assert_close(logits, model.classifier(embedding))
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("model_class", MODELS)
def test_gradients_reach_the_first_layer(model_class):
    torch.manual_seed(0)
    model = model_class(num_classes=4).train()
    x = torch.randn(4, 1, 16, 64)
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    first_conv = model.features[0][0]
    assert first_conv.weight.grad is not None
    assert first_conv.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("model_class", MODELS)
def test_transfer_head_swap(model_class):
    model = model_class(num_classes=10)
    model.classifier = torch.nn.Linear(model.embedding_dim, 2)
    assert model(torch.randn(2, 1, 20, 64)).shape == (2, 2)


@pytest.mark.parametrize("bad_shape", [(2, 64, 16), (2, 3, 16, 64), (0, 1, 16, 64), (2, 1, 0, 64)])
def test_bad_input_shape_raises(bad_shape):
    with pytest.raises(ValueError, match="shape"):
        SmallCnn().embed(torch.zeros(bad_shape))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_num_classes_raises(bad):
    with pytest.raises(ValueError, match="num_classes"):
        SmallCnn(num_classes=bad)


def test_zoo_entries():
    zoo = audio_zoo()
    names = [spec.name for spec in zoo]
    assert names == ["dcase-scenes", "cnn-music", "cnn-speech", "crnn-music", "crnn-speech"]
    assert len(set(names)) == len(names)
    assert all(isinstance(spec, ModelSpec) for spec in zoo)
    assert {spec.name: spec.source_task for spec in zoo} == {
        "dcase-scenes": "scenes", "cnn-music": "music", "cnn-speech": "speech",
        "crnn-music": "music", "crnn-speech": "speech",
    }
    built = {spec.name: spec.build() for spec in zoo}
    assert isinstance(built["dcase-scenes"], DcaseBaselineCnn)
    assert isinstance(built["crnn-speech"], Crnn)
    assert type(built["cnn-music"]) is SmallCnn
    # Paper class counts: scenes 10, music 10, speech 35.
    assert PAPER_CLASS_COUNTS == {"scenes": 10, "music": 10, "speech": 35}
    assert built["cnn-speech"].classifier.out_features == 35
    assert built["cnn-music"].classifier.out_features == 10
    # build() gives a fresh model each call.
    assert zoo[0].build() is not zoo[0].build()


def test_zoo_class_counts():
    zoo = {spec.name: spec for spec in audio_zoo({"speech": 8, "scenes": 6})}
    assert zoo["crnn-speech"].build().classifier.out_features == 8
    assert zoo["dcase-scenes"].build().classifier.out_features == 6
    assert zoo["crnn-music"].build().classifier.out_features == 10
    assert all(s.build().classifier.out_features == 5 for s in audio_zoo(5))
    with pytest.raises(ValueError, match="unknown source tasks"):
        audio_zoo({"birds": 4})
    with pytest.raises(ValueError, match="num_classes"):
        audio_zoo({"music": 0})


# --- the waveform front end that lets the in-house models share a pool with waveform networks

def _clip(rate=16_000, seconds=0.6):
    from nclib.data.synthetic_audio import generate_clips

    return next(generate_clips("cough", {"negative": 0, "positive": 1}, seed=3, duration=seconds,
                               sample_rate=rate))[1]


@pytest.mark.parametrize("model_class", MODELS)
def test_waveform_front_end_gives_the_old_log_mel_paths_embedding(model_class, tmp_path):
    """A 16 kHz clip read the old way (a file resampled to 48 kHz by the bad-audio front end,
    log-mel, ``(dB + 40) / 20``) and through the wrapper gives the same embedding."""
    import numpy as np
    import soundfile

    from nclib.data.audio_files import log_mel_dataset
    from nclib.experiments.audio_support import LogMelFrontEnd, standardise_log_mel

    clip = _clip()
    soundfile.write(tmp_path / "clip.wav", clip, 16_000, subtype="FLOAT")  # lossless
    old, _ = log_mel_dataset([tmp_path / "clip.wav"], [0], ["x"], frames=11, sample_rate=48_000)
    torch.manual_seed(0)
    inner = model_class(num_classes=10).eval()
    wrapped = LogMelFrontEnd(inner, input_rate=16_000, model_rate=48_000).eval()
    with torch.no_grad():
        expected = inner.embed(torch.from_numpy(standardise_log_mel(old.inputs)))
        got = wrapped.embed(torch.from_numpy(clip[None]))
    assert got.shape == (1, inner.embedding_dim)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
    assert wrapped.classifier is inner.classifier and wrapped.sample_rate == 16_000


def test_waveform_front_end_has_no_parameters_of_its_own_and_checks_its_input():
    from nclib.experiments.audio_support import LogMelFrontEnd

    inner = SmallCnn(num_classes=10)
    wrapped = LogMelFrontEnd(inner)
    assert count_parameters(wrapped) == count_parameters(inner)
    with pytest.raises(ValueError, match="batch, samples"):
        wrapped.embed(torch.zeros(16_000))


@pytest.mark.parametrize("model_class", MODELS)
def test_trunk_and_top_compose_to_the_embedding_and_share_parameters(model_class):
    torch.manual_seed(0)
    model = model_class(num_classes=10).eval()
    x = torch.randn(3, 1, 19, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.top(model.trunk(x)), model.embed(x))
    keys = set(model.state_dict())
    assert model.top_parameters < count_parameters(model)
    assert all(p.data_ptr() in {q.data_ptr() for q in model.parameters()} for p in model.top.parameters())
    assert set(model.state_dict()) == keys  # the view adds nothing


def test_waveform_front_end_passes_the_trunk_and_top_through():
    import numpy as np

    from nclib.experiments.audio_support import LogMelFrontEnd

    torch.manual_seed(0)
    wrapped = LogMelFrontEnd(Crnn(num_classes=10)).eval()
    clip = torch.from_numpy(np.stack([_clip(), _clip()]))
    with torch.no_grad():
        torch.testing.assert_close(wrapped.top(wrapped.trunk(clip)), wrapped.embed(clip))
    assert wrapped.top_parameters == wrapped.inner.top_parameters
