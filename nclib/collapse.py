"""Neural collapse as it happens: train a small network and measure its embeddings per epoch.

Backs the background chapter's live demonstration (the paper's Figure 1 analogue):
within-class variability of the penultimate embeddings shrinks as training goes on
(Papyan, Han and Donoho, 2020).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nclib._validation import features_and_labels
from nclib.scores.nc import class_means, nc_score


def within_class_variability(features, labels) -> float:
    """Papyan et al.'s NC1 statistic: tr(Sigma_W Sigma_B^+) / C.

    Sigma_W is the mean within-class covariance, Sigma_B the covariance of the class means
    around the global mean. It tends to 0 as the embeddings collapse onto their class
    means.

    Parameters
    ----------
    features : array-like of shape (N, D)
    labels : array-like of shape (N,)

    Returns
    -------
    float

    References
    ----------
    V. Papyan, X. Y. Han, D. L. Donoho. Prevalence of neural collapse during the terminal
    phase of deep learning training. PNAS 117(40), 2020.

    Examples
    --------
    Each class collapsed onto its mean gives 0:

    >>> within_class_variability([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [1.0, 1.0]], [0, 0, 1, 1])
    0.0
    """
    features, codes, classes, counts = features_and_labels(features, labels, "within_class_variability", 1)
    means = class_means(features, codes, counts)
    centred = features - means[codes]
    within = centred.T @ centred / len(features)
    between_dev = means - features.mean(axis=0)
    between = between_dev.T @ between_dev / len(classes)
    return float(np.trace(within @ np.linalg.pinv(between)) / len(classes))


def collapse_trajectory(features, labels, epochs: int = 60, hidden: int = 64, embedding_dim: int = 16,
                        lr: float = 1e-2, snapshot_epochs=(1,), seed: int = 0):
    """Train an MLP classifier and record its penultimate embeddings epoch by epoch.

    Parameters
    ----------
    features : array-like of shape (N, D)
        Inputs (e.g. scikit-learn's digits, 64 pixels).
    labels : array-like of shape (N,), integers in range(C)
    epochs : int
    hidden, embedding_dim : int
        Widths of the two hidden layers; the second is the penultimate embedding.
    lr : float
        Adam learning rate (full-batch training).
    snapshot_epochs : sequence of int
        Epochs whose embeddings are returned (the last epoch is always included).
    seed : int

    Returns
    -------
    history : pandas.DataFrame
        Columns ``epoch, train_loss, train_accuracy, within_class_variability, nc``.
    snapshots : dict of int to ndarray of shape (N, embedding_dim)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2], 20)
    >>> x = rng.normal(size=(60, 5)) + y[:, None]
    >>> history, snaps = collapse_trajectory(x, y, epochs=5, seed=0)
    >>> list(history.columns)
    ['epoch', 'train_loss', 'train_accuracy', 'within_class_variability', 'nc']
    >>> sorted(snaps)
    [1, 5]
    """
    import torch

    features, codes, _, _ = features_and_labels(features, labels, "collapse_trajectory", 2)
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    inputs = torch.as_tensor((features - features.mean(0)) / (features.std(0) + 1e-8), dtype=torch.float32)
    targets = torch.as_tensor(codes)
    body = torch.nn.Sequential(
        torch.nn.Linear(inputs.shape[1], hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, embedding_dim), torch.nn.ReLU(),
    )
    head = torch.nn.Linear(embedding_dim, int(codes.max()) + 1)
    for layer in [*body, head]:
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.kaiming_uniform_(layer.weight, generator=generator)
            torch.nn.init.zeros_(layer.bias)
    optimizer = torch.optim.Adam([*body.parameters(), *head.parameters()], lr=lr)
    rows, snapshots = [], {}
    wanted = set(snapshot_epochs) | {epochs}
    for epoch in range(1, epochs + 1):
        embedding = body(inputs)
        logits = head(embedding)
        loss = torch.nn.functional.cross_entropy(logits, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            embedding = body(inputs).numpy().astype(np.float64)
            accuracy = float((head(body(inputs)).argmax(1) == targets).float().mean())
        rows.append((epoch, loss.item(), accuracy, within_class_variability(embedding, codes),
                     nc_score(embedding, codes)))
        if epoch in wanted:
            snapshots[epoch] = embedding
    history = pd.DataFrame(rows, columns=["epoch", "train_loss", "train_accuracy", "within_class_variability", "nc"])
    return history, snapshots
