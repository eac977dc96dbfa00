"""nclib: transferability scores and the experiments of *Pitfalls in Measuring Neural
Transferability* (Suresh, Abrol and Thakur).

Importing nclib does nothing beyond defining names: no seeding, no downloads, no
compilation, no plotting style. Heavy parts (torch, Keras, librosa) are imported by the
modules that need them, when they are used.
"""

__version__ = "0.1.0"

import logging as _logging  # noqa: E402

# A library logs, the application decides what is shown: without this, Python's
# last-resort handler would print nclib's warnings (e.g. skipped audio files, which are
# also counted in reports) to stderr. The command line configures logging explicitly.
_logging.getLogger(__name__).addHandler(_logging.NullHandler())

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
