"""Command line: ``python -m nclib run | models | score | scores``.

``run NAME``
    Run a registered experiment (``toy``, ``cifar10``, ``coswara``) at a profile and
    write ``scores.csv``, ``transfer.csv``, ``evaluation.csv`` (and ``history.csv``,
    ``models.csv``, ``run.json``) to ``--out`` (default ``results/NAME-PROFILE``).
``models --domain image|audio``
    Print a zoo: name, family, source task, parameter count, embedding width.
``score --features F.npy --labels L.npy``
    Print registry scores of saved embeddings (several ``--features`` files form a pool,
    which the pool-normalised scores need).
``scores``
    List the score registry.

Bad arguments print a message and exit with status 2; a run that cannot find or use its
data exits with status 1. :func:`main` returns the status instead of exiting, so tests call it
in-process.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ZOOS = {
    "image": "nclib.models.quick_image:image_quick_zoo",
    "audio": "nclib.models.audio:audio_zoo",
}
"""Domain -> ``"module:function"`` returning a list of ``ModelSpec`` (imported on use)."""


class UsageError(ValueError):
    """A bad command-line argument (exit status 2)."""


def _parser() -> argparse.ArgumentParser:
    from nclib.config import PROFILES
    from nclib.experiments.runner import EXPERIMENTS

    parser = argparse.ArgumentParser(prog="python -m nclib", description="Transferability scores and "
                                     "the experiments of 'Pitfalls in Measuring Neural Transferability'.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run an experiment and write its tables")
    run.add_argument("name", help=f"experiment: {', '.join(sorted(EXPERIMENTS))}")
    run.add_argument("--profile", choices=PROFILES, default=None,
                     help="quick (offline, CPU) or paper (the paper's protocol); default $NCLIB_PROFILE or quick")
    run.add_argument("--out", type=Path, default=None, help="output folder (default results/NAME-PROFILE)")
    run.add_argument("--seeds", type=int, default=None, metavar="N", help="use seeds 0..N-1")
    run.add_argument("--no-cache", action="store_true", help="recompute everything, store nothing")
    run.add_argument("--device", default=None, help="torch device for models and heads (default cpu)")

    models = commands.add_parser("models", help="print a model zoo")
    models.add_argument("--domain", choices=sorted(ZOOS), required=True)

    score = commands.add_parser("score", help="score saved embeddings")
    score.add_argument("--features", type=Path, nargs="+", required=True, metavar="F.npy",
                       help="(N, D) embeddings; several files form a pool of models")
    score.add_argument("--labels", type=Path, required=True, metavar="L.npy", help="(N,) target labels")
    score.add_argument("--source-probs", type=Path, nargs="+", default=None, metavar="P.npy",
                       help="(N, Z) source-classifier probabilities, one per features file (for LEEP-like scores)")
    score.add_argument("--score", action="append", default=None, metavar="NAME",
                       help="score to compute (repeatable); default: every applicable registry score")

    commands.add_parser("scores", help="list the registered scores")
    return parser


# ----------------------------------------------------------------------------- commands
def _run(args) -> int:
    import dataclasses

    from nclib.cache import Cache
    from nclib.experiments.runner import get_experiment, run_experiment

    try:
        config = get_experiment(args.name, args.profile)
        changes = {}
        if args.seeds is not None:
            if args.seeds < 1:
                raise UsageError(f"--seeds must be at least 1, got {args.seeds}")
            changes["seeds"] = tuple(range(args.seeds))
        if args.device is not None:
            changes["device"] = args.device
        config = dataclasses.replace(config, **changes)
    except (ImportError, ValueError) as error:
        raise UsageError(str(error)) from None
    out = args.out if args.out is not None else Path("results") / f"{config.name}-{config.profile}"
    try:
        results = run_experiment(config, out=out, cache=Cache(enabled=not args.no_cache))
    except (FileNotFoundError, ValueError) as error:  # missing data, or data the run cannot use
        print(f"error: {error}", file=sys.stderr)
        return 1
    summary = results.evaluation.query("measure in ['abs_pearson', 'kendall', 'relative_top1']")
    print(config.description)
    print(results.mean_transfer().to_string(index=False))
    print(summary.pivot_table(index=["score", "regime"], columns="measure", values="value").round(3).to_string())
    print(f"wrote {', '.join(sorted(p.name for p in out.iterdir() if p.suffix in ('.csv', '.json')))} to {out}")
    return 0


def _load_zoo(domain: str) -> list:
    module_name, _, function_name = ZOOS[domain].partition(":")
    try:
        zoo = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise UsageError(f"the {domain} zoo is not available ({ZOOS[domain]}): {error}") from None
    return zoo()


def _models(args) -> int:
    rows = []
    for spec in _load_zoo(args.domain):
        model = spec.build()
        rows.append({"name": spec.name, "family": spec.family, "source_task": spec.source_task,
                     "parameters": sum(int(p.numel()) for p in model.parameters()),
                     "embedding_dim": int(model.embedding_dim)})
    table = pd.DataFrame(rows)
    formatters = {"parameters": "{:,}".format}
    print(table.to_string(index=False, formatters=formatters))
    return 0


def _load_array(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise UsageError(f"{what} file {str(path)!r} does not exist")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise UsageError(f"cannot read {what} from {str(path)!r} as a .npy array: {error}") from None
    if not isinstance(array, np.ndarray):
        array.close()
        raise UsageError(f"{str(path)!r} is an .npz archive; save one array with numpy.save")
    return array


def _score(args) -> int:
    from nclib.scores import REGISTRY, compute_scores

    labels = _load_array(args.labels, "labels")
    names = [path.stem for path in args.features]
    if len(set(names)) != len(names):
        names = [str(path) for path in args.features]
    features = {name: _load_array(path, "features") for name, path in zip(names, args.features)}
    source_probs = None
    if args.source_probs is not None:
        if len(args.source_probs) != len(args.features):
            raise UsageError(f"give one --source-probs file per --features file "
                             f"({len(args.source_probs)} for {len(args.features)})")
        source_probs = {name: _load_array(path, "source probabilities")
                        for name, path in zip(names, args.source_probs)}
    chosen = args.score
    if chosen is None:
        chosen = [name for name, info in REGISTRY.items()
                  if (info.needs != "source_probs" or source_probs is not None)
                  and (not info.pool_level or len(features) > 1)]
    for name in chosen:
        if name not in REGISTRY:
            raise UsageError(f"unknown score {name!r}; known: {', '.join(sorted(REGISTRY))}")
        if REGISTRY[name].pool_level and len(features) < 2:
            raise UsageError(f"score {name!r} is normalised across a pool of models: give several --features files")
    table = compute_scores(features, labels, source_probs=source_probs, names=chosen)
    table["greater_is_better"] = [REGISTRY[name].greater_is_better for name in table["score"]]
    print(table[["model", "score", "value", "greater_is_better"]].to_string(index=False))
    return 0


def _scores(args) -> int:
    from nclib.scores import REGISTRY

    table = pd.DataFrame([{"name": info.name, "needs": info.needs, "greater_is_better": info.greater_is_better,
                           "citation": info.citation, "summary": info.summary} for info in REGISTRY.values()])
    print(table.to_string(index=False))
    return 0


COMMANDS = {"run": _run, "models": _models, "score": _score, "scores": _scores}


def main(argv=None) -> int:
    """Entry point of ``python -m nclib`` and of the ``nclib`` script.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 success, 1 a run failed on its data (missing or unusable), 2 bad arguments.

    Examples
    --------
    >>> main(["scores"])  # doctest: +ELLIPSIS
    name ...
    0
    >>> main(["run", "no-such-experiment"])
    2
    """
    if argv is None:  # a real command line: show nclib's warnings (skipped files, ...) on stderr
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse has printed its message (or the help)
        return int(exit_.code or 0)
    try:
        return COMMANDS[args.command](args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ValueError as error:  # scores refusing the arrays given on the command line
        if args.command != "score":
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
