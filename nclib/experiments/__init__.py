"""Experiments: one declarative configuration each, run by one shared runner.

:func:`run_experiment` turns an :class:`ExperimentConfig` into the tables every chapter,
the command line and the tests read; :data:`EXPERIMENTS` names the registered
experiments (``toy``, ``cifar10``, ``coswara``), imported only when used. Importing this
package does not import torch.
"""

from nclib.experiments.runner import (
    COLUMNS,
    CSV_COLUMNS,
    EXPERIMENTS,
    ExperimentConfig,
    Results,
    build_model,
    get_experiment,
    pretrained_model,
    run_experiment,
)

__all__ = [
    "COLUMNS",
    "CSV_COLUMNS",
    "EXPERIMENTS",
    "ExperimentConfig",
    "Results",
    "build_model",
    "get_experiment",
    "pretrained_model",
    "run_experiment",
]
