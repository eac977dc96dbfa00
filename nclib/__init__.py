"""nclib: transferability scores and the experiments of *Pitfalls in Measuring Neural
Transferability* (Suresh, Abrol and Thakur).

Importing nclib does nothing beyond defining names: no seeding, no downloads, no
compilation, no plotting style. Heavy parts (torch, Keras, librosa) are imported by the
modules that need them, when they are used.
"""

__version__ = "0.1.0"

from nclib.scores import REGISTRY, ScoreInfo, compute_scores, leep_score, logme_score, nc_score  # noqa: E402
from nclib.evaluate import evaluate_scores, evaluate_run  # noqa: E402
from nclib.seed import set_seed  # noqa: E402

__all__ = [
    "REGISTRY",
    "ScoreInfo",
    "__version__",
    "compute_scores",
    "evaluate_run",
    "evaluate_scores",
    "leep_score",
    "logme_score",
    "nc_score",
    "set_seed",
]
