"""Command line: ``python -m nclib run | models | score | scores``.

``run NAME``
    Run a registered experiment (``toy``, ``cifar10``, ``coswara``) at a profile and
    write ``scores.csv``, ``transfer.csv``, ``evaluation.csv`` (and ``history.csv``,
    ``models.csv``, ``run.json``) to ``--out`` (default ``results/NAME-PROFILE``).
    ``--executor sequential|processes|dask [--scheduler ADDRESS]`` chooses where its
    units of work run (:mod:`nclib.experiments.executors`; same tables).
``models --domain image|audio``
    Print a zoo: name, family, source task, parameter count, embedding width (for images,
    first the zoo of genuinely pre-trained networks with their weight files, then the in-house zoo).
``score --features F.npy --labels L.npy``
    Print registry scores of saved embeddings (several ``--features`` files form a pool,
    which the pool-normalised scores need).
``scores``
    List the score registry.
``cache info | cache clear [--older-than DAYS]``
    Show the cache's entries and size by kind and its orphaned temporary files; delete
    entries (all, or those older than DAYS) and orphans.

Inputs and outputs are checked before any work starts: ``.npy`` headers against the file
size (and never unpickled), ``--out`` and the data folder for writability. Every error
reaches the user as one line on stderr, never a traceback: bad arguments or input files
exit with status 2; a run that cannot find or use its data, or fails on the file system
(full disk, a corrupt archive), exits with status 1. :func:`main` returns the status
instead of exiting, so tests call it in-process.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

ZOOS = {
    "image": "nclib.models.quick_image:image_quick_zoo",
    "audio": "nclib.models.audio:audio_zoo",
}
"""Domain -> ``"module:function"`` returning a list of ``ModelSpec`` (imported on use)."""

PRETRAINED_ZOOS = {
    "image": "nclib.models.pretrained_image:pretrained_image_status",
}
"""Domain -> ``"module:function"`` returning the status table of a zoo of genuinely pre-trained
networks (name, architecture, source_task, package, file, parameters, embedding_dim, available,
reason); ``models`` prints it first and the in-house zoo of :data:`ZOOS` second."""


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
    run.add_argument("--executor", choices=("sequential", "processes", "dask"), default="sequential",
                     help="where the units of work run: this process (default), local processes, or Dask "
                          "(a LocalCluster, or the scheduler of --scheduler)")
    run.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="Dask scheduler address, e.g. tcp://host:8786 (only with --executor dask)")

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

    cache = commands.add_parser("cache", help="inspect or clear the on-disk cache")
    actions = cache.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("info", "entries and size by kind, orphaned temporary files"),
                         ("clear", "delete entries and orphaned temporary files")):
        sub = actions.add_parser(action, help=text)
        sub.add_argument("--folder", type=Path, default=None,
                         help="cache folder (default $NCLIB_DATA/cache)")
    actions.choices["clear"].add_argument("--older-than", type=float, default=None, metavar="DAYS",
                                          help="only entries not modified for DAYS days")
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
    from nclib.config import data_dir

    _check_writable_folder(out, "--out")  # before any long work
    _check_writable_folder(data_dir(), "the data folder ($NCLIB_DATA)")
    executor = _executor(args)
    try:
        results = run_experiment(config, out=out, cache=Cache(enabled=not args.no_cache), executor=executor)
    except (FileNotFoundError, ValueError) as error:  # missing data, or data the run cannot use
        return _fail(error, 1)
    finally:
        executor.close()
    summary = results.evaluation.query("measure in ['abs_pearson', 'kendall', 'relative_top1']")
    print(config.summary(models=list(results.models["name"])))
    print(results.mean_transfer().to_string(index=False))
    print(summary.pivot_table(index=["score", "regime"], columns="measure", values="value").round(3).to_string())
    tables = ", ".join(sorted(p.name for p in out.iterdir() if p.suffix in (".csv", ".json")))
    print(f"wrote {tables} and embeddings/<model>.npz to {out}")
    return 0


def _executor(args):
    """The executor of ``run --executor/--scheduler``; a :class:`UsageError` if it cannot start."""
    from nclib.experiments.executors import get_executor

    if args.scheduler is not None and args.executor != "dask":
        raise UsageError("--scheduler needs --executor dask")
    try:
        return get_executor(args.executor, scheduler=args.scheduler)
    except ImportError as error:
        raise UsageError(str(error)) from None
    except (OSError, TimeoutError) as error:  # no scheduler at the address (or it does not answer)
        where = args.scheduler if args.scheduler is not None else "a local cluster"
        raise UsageError(f"cannot reach the Dask scheduler at {where}: {' '.join(str(error).split())}") from None


def _load_zoo(domain: str, zoos: dict | None = None):
    """Call the zoo function registered for ``domain`` in ``zoos`` (default :data:`ZOOS`)."""
    zoos = ZOOS if zoos is None else zoos
    module_name, _, function_name = zoos[domain].partition(":")
    try:
        zoo = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise UsageError(f"the {domain} zoo is not available ({zoos[domain]}): {error}") from None
    return zoo()


def _models(args) -> int:
    formatters = {"parameters": lambda n: "-" if pd.isna(n) else f"{int(n):,}"}
    pretrained = args.domain in PRETRAINED_ZOOS
    if pretrained:
        status = _load_zoo(args.domain, PRETRAINED_ZOOS)
        columns = ["name", "architecture", "source_task", "package", "file", "parameters", "embedding_dim",
                   "available"] + (["reason"] if not status["available"].all() else [])
        print(f"First zoo, pre-trained: genuine weights shipped in registry packages ({PRETRAINED_ZOOS[args.domain]})")
        print(status[columns].to_string(index=False, formatters=formatters))
        print()
        print(f"Second zoo, in-house: small networks pre-trained here ({ZOOS[args.domain]})")
    rows = []
    for spec in _load_zoo(args.domain):
        model = spec.build()
        rows.append({"name": spec.name, "family": spec.family, "source_task": spec.source_task,
                     "parameters": sum(int(p.numel()) for p in model.parameters()),
                     "embedding_dim": int(model.embedding_dim)})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, formatters=formatters))
    return 0


def _check_writable_folder(path: Path, what: str) -> None:
    """Raise :class:`UsageError` unless ``path`` is, or can be created as, a writable folder.

    Nothing is created: a probe file is written into ``path`` or its nearest existing
    ancestor and deleted again.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} {str(path)!r} exists and is not a folder")
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{what} {str(path)!r} cannot be created: {str(existing)!r} is a file, not a folder")
    try:
        handle, probe = tempfile.mkstemp(prefix=".nclib-write-test.", dir=existing)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise UsageError(f"{what} {str(path)!r} is not writable ({str(existing)!r}: "
                         f"{error.strerror or error})") from None


def _npy_header(path: Path, what: str) -> tuple:
    """Check a ``.npy`` file's header against its size without loading it; return (shape, dtype)."""
    size = path.stat().st_size
    if size == 0:
        raise UsageError(f"{what} file {str(path)!r} is empty (0 bytes)")
    with open(path, "rb") as handle:
        if handle.read(4) == b"PK\x03\x04":
            raise UsageError(f"{str(path)!r} is an .npz archive; save one array with numpy.save")
        handle.seek(0)
        try:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(handle)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(handle)
            else:
                shape, fortran_order, dtype = np.lib.format._read_array_header(handle, version)
        except (ValueError, SyntaxError, EOFError, TypeError, AttributeError) as error:
            raise UsageError(f"cannot read {what} from {str(path)!r}: not a valid .npy file "
                             f"({' '.join(str(error).split())})") from None
        offset = handle.tell()
    if dtype.hasobject:
        raise UsageError(f"cannot read {what} from {str(path)!r}: it holds Python objects, which are never "
                         "unpickled; save a numeric array")
    needed = dtype.itemsize
    for extent in shape:
        needed *= int(extent)
    if needed > size - offset:
        raise UsageError(f"{what} file {str(path)!r} is truncated or its header lies: shape {tuple(shape)} of "
                         f"{dtype} needs {needed:,} bytes, the file holds {size - offset:,} after its header")
    return tuple(shape), dtype


def _load_array(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise UsageError(f"{what} file {str(path)!r} does not exist")
    try:
        _npy_header(path, what)
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        if isinstance(error, UsageError):
            raise
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


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1024


def _cache(args) -> int:
    from nclib.cache import Cache

    if args.action == "clear" and args.older_than is not None and not (0 <= args.older_than < float("inf")):
        raise UsageError(f"--older-than must be a non-negative number of days, got {args.older_than}")
    if args.folder is not None and args.folder.exists() and not args.folder.is_dir():
        raise UsageError(f"--folder {str(args.folder)!r} is not a folder")
    cache = Cache(args.folder, clean=False)
    if args.action == "clear":
        removed = cache.clear(older_than_days=args.older_than)
        print(f"removed {removed['entries']} entries ({_size(removed['bytes'])}) and "
              f"{removed['orphans']} orphaned temporary files from {cache.folder}")
        return 0
    table = cache.info()
    orphans = cache.orphans()
    print(f"cache folder: {cache.folder}")
    if table.empty:
        print("no entries")
    else:
        shown = table.assign(size=table["bytes"].map(_size))[["kind", "entries", "size"]]
        print(shown.to_string(index=False))
        print(f"total: {int(table['entries'].sum())} entries, {_size(int(table['bytes'].sum()))}")
    orphan_bytes = sum(path.stat().st_size for path in orphans if path.exists())
    print(f"orphaned temporary files: {len(orphans)} ({_size(orphan_bytes)})")
    return 0


COMMANDS = {"run": _run, "models": _models, "score": _score, "scores": _scores, "cache": _cache}


def main(argv=None) -> int:
    """Entry point of ``python -m nclib`` and of the ``nclib`` script.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 success; 1 a run failed on its data (missing or unusable) or on the
        file system; 2 bad arguments or input files. Errors are one line on stderr.

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
        return _fail(error, 2)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except ValueError as error:  # scores refusing the given arrays; nclib's ValueErrors (checksums, archives)
        return _fail(error, 2 if args.command == "score" else 1)
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError) as error:  # disk, archives
        return _fail(error, 1)


def _fail(error: BaseException, status: int) -> int:
    """Print ``error`` as one line on stderr and return ``status``."""
    message = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, OSError) and error.filename is not None and str(error.filename) not in message:
        message = f"{message}: {error.filename}"
    print(f"error: {message}", file=sys.stderr)
    return status
