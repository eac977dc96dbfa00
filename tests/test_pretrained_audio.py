"""Genuinely pre-trained audio networks (nclib.models.pretrained_audio): verified loading,
strict weights, and behaviour that only the real weights and front ends produce."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import torch

from nclib.data.fetch import ChecksumError
from nclib.models import pretrained_audio as pa

SR = 16000
NETWORKS = ["crepe-full", "crepe-tiny", "resemblyzer-ge2e", "silero-vad"]


def _needs(network):
    if pa.package_file(network) is None:
        pytest.skip(f"{network}: weight package not installed (requirements-weights.txt)")


@pytest.fixture(scope="module")
def models():
    cache = {}

    def get(network, **options):
        _needs(network)
        key = (network, tuple(sorted(options.items())))
        if key not in cache:
            cache[key] = pa.load_pretrained_audio(network, **options)
        return cache[key]

    return get


def _sine(freq, seconds=0.6, amplitude=0.5):
    t = np.arange(int(seconds * SR)) / SR
    return torch.tensor(amplitude * np.sin(2 * np.pi * freq * t), dtype=torch.float32)[None]


def test_status_lists_every_network_with_its_task():
    table = pa.pretrained_audio_status()
    assert list(table["name"]) == NETWORKS
    assert dict(zip(table["name"], table["source_task"])) == {
        "crepe-full": "pitch", "crepe-tiny": "pitch",
        "resemblyzer-ge2e": "speaker", "silero-vad": "speech-activity"}
    assert dict(zip(table["name"], table["parameters"])) == {
        "crepe-full": 22_239_976, "crepe-tiny": 486_552,
        "resemblyzer-ge2e": 1_423_616, "silero-vad": 309_633}
    assert dict(zip(table["name"], table["top_parameters"])) == TOP_PARAMETERS
    for row in table.itertuples():
        assert row.available == (pa.package_file(row.name) is not None)
        assert (row.reason == "") == row.available


def test_a_tampered_file_is_refused_before_it_is_deserialised(tmp_path, monkeypatch):
    _needs("crepe-tiny")
    bad = tmp_path / "tiny.pth"
    shutil.copyfile(pa.package_file("crepe-tiny"), bad)
    with open(bad, "r+b") as handle:   # flip one byte in the middle
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))

    def forbidden(*args, **kwargs):
        raise AssertionError("deserialised an unverified file")

    monkeypatch.setattr(torch, "load", forbidden)
    with pytest.raises(ChecksumError):
        pa.load_pretrained_audio("crepe-tiny", path=bad)


def test_a_missing_package_is_skipped_logged_and_never_substituted(monkeypatch, caplog):
    real = pa.package_file
    monkeypatch.setattr(pa, "package_file", lambda n: None if n == "silero-vad" else real(n))
    with caplog.at_level(logging.WARNING, logger=pa.__name__):
        specs = pa.pretrained_audio_zoo()
    assert "silero-vad" not in [s.name for s in specs]
    assert "silero-vad" in caplog.text and "not installed" in caplog.text
    status = pa.pretrained_audio_status().set_index("name")
    assert not status.loc["silero-vad", "available"]
    with pytest.raises(FileNotFoundError, match="pip install --no-deps silero-vad"):
        pa.load_pretrained_audio("silero-vad")


@pytest.mark.parametrize("network", NETWORKS)
def test_each_network_loads_strictly_and_follows_the_zoo_contract(network, models):
    model = models(network, **({"hop_length": 4000} if network.startswith("crepe") else {}))
    assert not model.training and model.sample_rate == SR
    assert isinstance(model.classifier, torch.nn.Linear)
    x = torch.tensor(np.random.default_rng(0).uniform(-0.3, 0.3, (2, 8000)), dtype=torch.float32)
    with torch.no_grad():
        z, logits = model.embed(x), model(x)
    assert z.shape == (2, model.embedding_dim) and torch.isfinite(z).all()
    assert torch.allclose(logits, model.classifier(z))
    # The loaded tensors are the file's, not an initialisation.
    state = pa._load_state(network)
    target = model.encoder if network == "resemblyzer-ge2e" else model
    loaded = target.state_dict()
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


TOP_PARAMETERS = {"crepe-full": 8_390_144, "crepe-tiny": 131_264, "resemblyzer-ge2e": 592_128,
                  "silero-vad": 132_096}
TRUNK_SHAPES = {"crepe-full": (7, 256, 8), "crepe-tiny": (7, 32, 8), "resemblyzer-ge2e": (1, 160, 256),
                "silero-vad": (47, 128)}   # per 1.5 s clip (CREPE at a 4,000-sample hop)


@pytest.mark.parametrize("network", NETWORKS)
def test_embed_is_top_of_trunk_for_every_network(network, models):
    model = models(network, **({"hop_length": 4000} if network.startswith("crepe") else {}))
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.uniform(-0.3, 0.3, (2, 24000)), dtype=torch.float32)
    x[0] += _sine(220.0, seconds=1.5)[0]
    with torch.no_grad():
        trunk = model.trunk(x)
        torch.testing.assert_close(model.top(trunk), model.embed(x), rtol=0, atol=1e-5)
    assert tuple(trunk.shape) == (2, *TRUNK_SHAPES[network])
    assert model.top_parameters == TOP_PARAMETERS[network]
    own = {id(p) for p in model.parameters()}
    assert all(id(p) in own for p in model.top.parameters())   # shared, not copied
    assert not any(key.startswith("top") for key in model.state_dict())


def test_a_trained_copy_of_the_top_leaves_the_network_alone():
    import copy

    model = pa.SileroVad().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    top = copy.deepcopy(model.top)
    loss = top(torch.randn(2, 5, 128)).sum()
    loss.backward()
    with torch.no_grad():
        for p in top.parameters():
            p.add_(1.0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("network", ["crepe-tiny", "crepe-full"])
@pytest.mark.parametrize("freq", [220.0, 440.0])
def test_crepe_finds_the_pitch_of_a_sine(network, freq, models):
    model = models(network, hop_length=1600)
    with torch.no_grad():
        frames = model.frame_embeddings(_sine(freq))
        frame_bins = model.classifier(frames).argmax(-1)[0].numpy()
        pooled_bin = int(model.classifier(frames.mean(dim=1)).argmax())
    error = pa.hz_to_cents(pa.crepe_bin_to_hz(np.median(frame_bins))) - pa.hz_to_cents(freq)
    assert abs(error) < 20
    assert abs(pa.hz_to_cents(pa.crepe_bin_to_hz(pooled_bin)) - pa.hz_to_cents(freq)) < 20
    if network == "crepe-tiny":   # per-frame normalisation: the level does not matter
        with torch.no_grad():
            quiet = model.frame_logits(_sine(freq, amplitude=0.01)).argmax(-1)[0].numpy()
        np.testing.assert_array_equal(quiet, frame_bins)


def test_silero_matches_the_onnx_graph_of_the_package(models):
    """Our torch rewrite against the package's own ONNX model run by onnx's evaluator."""
    from onnx.reference import ReferenceEvaluator
    import onnx

    model = models("silero-vad")
    graph = ReferenceEvaluator(onnx.load(str(pa.package_file("silero-vad"))))
    rng = np.random.default_rng(1)
    t = np.arange(6 * 512) / SR
    x = (0.3 * np.sin(2 * np.pi * 150 * t) * np.sin(2 * np.pi * 3 * t)
         + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    state, context, expected = np.zeros((2, 1, 128), np.float32), np.zeros((1, 64), np.float32), []
    for start in range(0, x.size, 512):
        window = np.concatenate([context, x[None, start:start + 512]], axis=1)
        out, state = graph.run(None, {"input": window, "state": state, "sr": np.array(SR, np.int64)})
        expected.append(float(np.ravel(out)[0]))
        context = window[:, -64:]
    with torch.no_grad():
        ours = model.speech_probability(torch.from_numpy(x)[None])[0].numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-4)


def test_silero_hears_formant_speech_but_not_noise_or_silence(models):
    from nclib.data.synthetic_audio import generate_clips

    model = models("silero-vad")
    speech = np.stack([w for _, w in generate_clips("speech", n_per_class=1, seed=0,
                                                     duration=1.5, sample_rate=SR)])[:6]
    speech = 0.5 * speech / np.abs(speech).max(axis=1, keepdims=True)
    noise = np.random.default_rng(0).normal(0, 0.1, (2, 24000))
    x = torch.tensor(np.concatenate([speech, noise, np.zeros((1, 24000))]), dtype=torch.float32)
    with torch.no_grad():
        peak = model.speech_probability(x).amax(dim=1).numpy()
        pooled = torch.softmax(model(x), dim=1)[:, 1].numpy()
    assert peak[:6].min() > 0.9 and peak[6:].max() < 0.2
    assert pooled[:6].min() > pooled[6:].max()


def test_ge2e_front_end_is_resemblyzers_mel_spectrogram():
    import librosa

    encoder = pa.Ge2eSpeakerEncoder()
    wav = np.random.default_rng(0).uniform(-0.5, 0.5, 8000).astype(np.float32)
    reference = librosa.feature.melspectrogram(y=wav, sr=SR, n_fft=400, hop_length=160,
                                               n_mels=40, pad_mode="reflect").T
    ours = encoder.mel(torch.from_numpy(wav)[None])[0].numpy()
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-5 * reference.max())
    # Partial utterances of 160 frames, 1.3 per second, as Resemblyzer's embed_utterance.
    assert encoder.partial_starts(24000) == [0]
    assert encoder.partial_starts(48000) == [0, 77, 154]
    # Volume is raised to -30 dBFS, never lowered.
    quiet, loud = torch.full((1, 100), 1e-3), torch.full((1, 100), 0.5)
    assert float(encoder.normalise_volume(quiet).pow(2).mean().sqrt()) == pytest.approx(10 ** -1.5)
    assert torch.equal(encoder.normalise_volume(loud), loud)


def _voice(rng, f0, scale, vowels, seconds=1.6):
    """A formant-synthesised utterance: glottal pulses through three vowel resonators."""
    from scipy.signal import lfilter

    formants = {"a": (730, 1090, 2440), "e": (530, 1840, 2480), "i": (270, 2290, 3010),
                "o": (570, 840, 2410), "u": (300, 870, 2240)}
    n = int(seconds * SR)
    t = np.arange(n) / SR
    pitch = f0 * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(2, 4) * t + rng.uniform(0, 6)))
    source = (np.diff(np.floor(np.cumsum(pitch) / SR), prepend=0) > 0) + 0.01 * rng.standard_normal(n)
    out, segment = np.zeros(n), n // len(vowels)
    for k, vowel in enumerate(vowels):
        s = source[k * segment:(k + 1) * segment]
        for freq, bandwidth in zip(np.array(formants[vowel]) * scale, (80, 100, 150)):
            r, theta = np.exp(-np.pi * bandwidth / SR), 2 * np.pi * freq / SR
            s = lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], s)
        out[k * segment:(k + 1) * segment] = s * np.sin(np.linspace(0, np.pi, len(s))) ** 0.5
    return 0.3 * out / np.abs(out).max()


def test_ge2e_groups_utterances_by_voice_only_with_the_real_weights(models):
    model = models("resemblyzer-ge2e")
    rng = np.random.default_rng(0)
    voices = [(100, 0.92), (130, 1.0), (200, 1.12), (240, 1.2)]
    x = torch.tensor(np.stack([_voice(rng, f0, scale, words) for f0, scale in voices
                               for words in ("aeiou", "ouiea", "iaoue")]), dtype=torch.float32)
    labels = np.repeat(np.arange(4), 3)
    same = (labels[:, None] == labels[None]) & ~np.eye(12, dtype=bool)
    different = labels[:, None] != labels[None]

    def margin(encoder):
        with torch.no_grad():
            z = encoder.embed(x).numpy()
        assert np.allclose(np.linalg.norm(z, axis=1), 1, atol=1e-5) and (z >= 0).all()
        cosine = z @ z.T
        return cosine[same].mean() - cosine[different].mean()

    assert margin(model) > 0.1
    torch.manual_seed(0)
    assert abs(margin(pa.Ge2eSpeakerEncoder().eval())) < 0.05   # random weights: no voices
    assert not model.has_source_head and model.source_classes is None
    assert torch.equal(model.classifier.weight, torch.eye(256))


def test_onnx_translation_refuses_unexpected_initializers():
    source = {"model.stft.forward_basis_buffer": torch.zeros(258, 1, 256), "extra": torch.zeros(1)}
    with pytest.raises(ValueError, match="unexpected Silero VAD initializers"):
        pa.SileroVad.translate_state_dict(source)


@pytest.mark.parametrize("bad", [torch.zeros(100), torch.zeros(0, 100), torch.zeros(1, 0),
                                 torch.zeros(1, 100, dtype=torch.int16)])
def test_bad_waveforms_are_refused(bad):
    with pytest.raises(ValueError):
        pa.SileroVad().embed(bad)


def test_crepe_batch_norm_updates_its_running_statistics_when_fine_tuned():
    model = pa.Crepe("tiny", hop_length=4000)
    top = model.top
    before = top.conv6_BN.running_mean.clone()
    top.train()(torch.randn(4, 3, 32, 8))
    assert not torch.equal(before, top.conv6_BN.running_mean)
