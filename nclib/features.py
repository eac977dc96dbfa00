"""Embeddings and source-classifier probabilities of a backbone, batched and cached.

One forward pass per batch yields both things the scores read: the penultimate
embedding ``model.embed(x)`` (NC, LogME and the other feature-based scores; the input of
the head regime of transfer) and the softmax of the source classifier applied to it
(LEEP and the other scores that read source predictions). This is how the authors' demo
works: the embedding is the output of the global-pooling layer, the probabilities come
from the model's own top (the 1,000-way ImageNet softmax in the paper profile).

The experiment runner (:mod:`nclib.experiments.runner`) extracts every model's features
here, for the chapters "The image experiment" and "The audio experiment".
"""

from __future__ import annotations

import numpy as np
import torch

from nclib.cache import Cache, fingerprint
from nclib.progress import progress

FEATURE_CODE = ("nclib.features", "nclib.models")
"""Modules whose source enters every features key: editing them recomputes the embeddings."""


def _device(model) -> torch.device:
    parameter = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    return parameter.device if parameter is not None else torch.device("cpu")


def extract(model, inputs, batch_size: int = 256, desc: str = "features") -> dict:
    """Embed ``inputs`` with a backbone and apply its source classifier.

    Parameters
    ----------
    model : torch.nn.Module
        A backbone of the zoo contract: ``embed(x) -> (B, D)`` and ``classifier`` mapping
        (B, D) to (B, Z) source logits. Run in eval mode without gradients; its training
        mode is restored afterwards.
    inputs : ndarray or torch.Tensor of shape (N, ...), float32
        Images (N, channels, height, width) or log-mel inputs (N, 1, frames, mel_bins).
    batch_size : int
        Examples per forward pass (memory only; the result does not depend on it).
    desc : str
        Label of the progress bar.

    Returns
    -------
    dict
        ``features``: ndarray of shape (N, D), float32 — the penultimate embeddings.
        ``source_probs``: ndarray of shape (N, Z), float32 — softmax of the source logits.

    Raises
    ------
    ValueError
        Empty or non-finite inputs, a bad batch size, or a model whose embeddings or
        logits are not finite or not 2-D.

    Examples
    --------
    >>> from nclib.experiments.toy import ToyMlp
    >>> out = extract(ToyMlp(hidden=8, embedding_dim=3, num_classes=4), np.zeros((5, 8), np.float32))
    >>> out["features"].shape, out["source_probs"].shape, out["features"].dtype.name
    ((5, 3), (5, 4), 'float32')
    """
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not torch.is_tensor(inputs):
        inputs = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    if inputs.ndim < 2 or len(inputs) == 0:
        raise ValueError(f"inputs must have shape (N, ...) with N > 0, got {tuple(inputs.shape)}")
    if not torch.isfinite(inputs).all():
        raise ValueError("inputs contain NaN or inf")
    device = _device(model)
    was_training = model.training
    model.eval()
    features, probs = [], []
    try:
        with torch.no_grad():
            starts = range(0, len(inputs), batch_size)
            for start in progress(starts, desc=desc, total=len(starts)):
                embedding = model.embed(inputs[start:start + batch_size].to(device))
                logits = model.classifier(embedding)
                features.append(embedding.float().cpu())
                probs.append(torch.softmax(logits.float(), dim=1).cpu())
    finally:
        model.train(was_training)
    result = {"features": torch.cat(features).numpy(), "source_probs": torch.cat(probs).numpy()}
    for name, array in result.items():
        if array.ndim != 2:
            raise ValueError(f"the model's {name} must be 2-D (N, width), got shape {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError(f"the model produced non-finite {name}")
    return result


def cached_extract(cache: Cache, key_parts: dict, model, inputs, batch_size: int = 256,
                   desc: str = "features") -> dict:
    """:func:`extract` through the on-disk cache.

    Parameters
    ----------
    cache : nclib.cache.Cache
    key_parts : dict
        Everything that identifies the model's weights (name, profile, pre-training
        settings, ...); JSON-serialisable values. A fingerprint of ``inputs`` is added
        under ``"data"`` unless the caller already gives one there (computing it once per
        split and passing it saves hashing large inputs for every model).
    model : torch.nn.Module or callable
        The backbone, or a function returning it, called only on a cache miss (so a warm
        cache never builds or loads the model).
    inputs, batch_size, desc
        As in :func:`extract`; ``batch_size`` is not part of the key.

    Returns
    -------
    dict
        ``features`` (N, D) and ``source_probs`` (N, Z), float32.

    Examples
    --------
    >>> import tempfile
    >>> from nclib.experiments.toy import ToyMlp
    >>> cache, inputs = Cache(tempfile.mkdtemp()), np.zeros((4, 8), np.float32)
    >>> model = ToyMlp(hidden=8, embedding_dim=3, num_classes=2)
    >>> first = cached_extract(cache, {"model": "demo"}, model, inputs)
    >>> second = cached_extract(cache, {"model": "demo"}, lambda: 1 / 0, inputs)  # a hit: not called
    >>> bool(np.array_equal(first["features"], second["features"]))
    True
    """
    parts = dict(key_parts)
    if "data" not in parts:
        parts["data"] = fingerprint(np.asarray(inputs))

    def compute() -> dict:
        backbone = model if isinstance(model, torch.nn.Module) else model()
        return extract(backbone, inputs, batch_size=batch_size, desc=desc)

    return cache.arrays("features", parts, compute, code=FEATURE_CODE)
