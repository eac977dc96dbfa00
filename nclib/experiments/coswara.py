"""The audio experiment (COVID-19 from coughs, Coswara in the paper) at its two scales.

``paper``: the paper's protocol. The cough-heavy recordings of the Coswara participants
with an RT-PCR result (:func:`nclib.data.coswara.coswara_splits`: 48 kHz, 64-band
log-mel, 100 ms windows, 50 % overlap, 70 / 15 / 15 stratified split), the five models of
Table 1 (:func:`nclib.models.audio.audio_zoo`) pre-trained here on the real source
tasks read by :func:`nclib.data.audio_sources.load_source_task` (DCASE 2018 scenes,
GTZAN music, Speech Commands; 40 / 40 / 30 ms windows), AUROC, Adam at 1e-4, batch 32,
250 epochs, 10 seeds. The paper does not say how its source models were trained; we
use Adam at 1e-3, batch 32, :data:`PAPER` ``["pretrain_epochs"]`` epochs, keeping the
epoch with the best validation accuracy.

``quick`` (default): the same pipeline on a CPU in minutes, on procedural audio
(:mod:`nclib.data.synthetic_audio`), all at 48 kHz through the same front end. The three
source tasks (ten "genres", ten "words", ten "scenes") are generated in memory; the
binary cough-like target goes through files: its clips are written as WAV files into
the data folder together with a few deliberately bad ones
(:func:`nclib.experiments.audio_support.synthetic_cough_files`) and read back by
:func:`nclib.data.audio_files.log_mel_dataset`, so the bad-audio policy runs as it would on the real
recordings. Fewer epochs and seeds, and a larger learning rate for the few epochs there
are.

In both profiles every log-mel input, source and target, is mapped to network scale by
the fixed affine map ``(dB + 40) / 20``
(:func:`nclib.experiments.audio_support.standardise_log_mel`).
"""

from __future__ import annotations

from functools import partial

from nclib.experiments.audio_support import INPUT_OFFSET_DB, INPUT_SCALE_DB

SOURCE_TASKS = ("scenes", "music", "speech")
INPUT_MAP = f"(dB + {INPUT_OFFSET_DB:g}) / {INPUT_SCALE_DB:g}"

PAPER = {
    "head_epochs": 250, "full_epochs": 250, "seeds": tuple(range(10)), "lr": 1e-4, "batch_size": 32,
    "pretrain_epochs": {"scenes": 50, "music": 50, "speech": 50}, "pretrain_lr": 1e-3,
    "pretrain_batch_size": 32, "split_seed": 0,
}
QUICK = {
    "head_epochs": 60, "full_epochs": 3, "seeds": (0, 1, 2), "lr": 1e-3, "batch_size": 32,
    "pretrain_epochs": {"scenes": 8, "music": 8, "speech": 8}, "pretrain_lr": 1e-3,
    "pretrain_batch_size": 32, "source_per_class": {"scenes": 30, "music": 30, "speech": 30},
    "num_positive": 560, "num_negative": 250, "duration": 1.5, "sample_rate": 48_000, "split_seed": 0,
}


# ----------------------------------------------------------------------------- quick profile
def quick_source(task: str, per_class: int, seed: int = 0, duration: float = 1.0):
    """A synthetic source task as standardised log-mel inputs, split 85 / 15 (train, val).

    Parameters
    ----------
    task : {"scenes", "music", "speech"}
    per_class : int
        Clips per class (10 classes at 48 kHz, the paper's 40 / 40 / 30 ms windows); at
        least 4, so that every class has a validation clip.
    seed : int
        Seed of the clips and of the split.
    duration : float
        Seconds per clip.

    Returns
    -------
    train, val : nclib.data.base.Dataset
        ``inputs`` (N, 1, frames, 64) float32 after ``(dB + 40) / 20``.

    Examples
    --------
    Four clips per class is the least that leaves one for validation (3 + 1 per class);
    generating 40 clips takes about a second, so only the refusal runs here:

    >>> quick_source("speech", 2)
    Traceback (most recent call last):
    ...
    ValueError: per_class must be an integer >= 4 (an 85/15 split per class), got 2
    """
    from nclib.data.base import stratified_split
    from nclib.data.synthetic_audio import synthetic_audio_dataset
    from nclib.experiments.audio_support import standardise_dataset

    if task not in SOURCE_TASKS:
        raise ValueError(f"unknown source task {task!r}; choose from {SOURCE_TASKS}")
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 4:
        raise ValueError(f"per_class must be an integer >= 4 (an 85/15 split per class), got {per_class!r}")
    data = standardise_dataset(synthetic_audio_dataset(task, per_class, seed=seed, duration=duration))
    train, val = stratified_split(data.labels, (0.85, 0.15), seed=seed)
    return data.subset(train), data.subset(val)


def quick_target(num_positive: int = QUICK["num_positive"], num_negative: int = QUICK["num_negative"],
                 seed: int = 0, duration: float = QUICK["duration"], frames: int | None = None,
                 sample_rate: int = QUICK["sample_rate"], split_seed: int = 0, root=None, cache=None):
    """The quick profile's target: synthetic cough recordings read back from WAV files.

    The clips and the bad files of
    :func:`~nclib.experiments.audio_support.synthetic_cough_files` go through
    :func:`nclib.data.audio_files.log_mel_dataset` at ``sample_rate`` with the paper's Coswara front
    end (64 bands, 100 ms windows, 50 % overlap, fixed length ``frames``); the files that
    survive the bad-audio policy are standardised and split 70 / 15 / 15, stratified by
    label (:func:`nclib.data.base.stratified_split` with ``split_seed``).

    Parameters
    ----------
    num_positive, num_negative, seed, duration, sample_rate
        As in :func:`nclib.data.synthetic_audio.cough_task` (default 280 : 125, the
        paper's ratio of 960 : 428).
    frames : int, optional
        Default: the frames of one whole clip (29 for 1.5 s).
    split_seed : int
    root : path-like, optional
        Folder for the WAV files (default: the data folder).
    cache : nclib.cache.Cache, optional
        Cache of the log-mel features (default: ``Cache()`` in the data folder).

    Returns
    -------
    splits : nclib.data.base.Splits
        ``inputs`` (n, 1, frames, 64) float32; labels 0 negative, 1 positive.
    report : nclib.data.audio_files.AudioReport
        One row per file, the bad ones included.

    Examples
    --------
    >>> import tempfile
    >>> from nclib.cache import Cache
    >>> splits, report = quick_target(14, 7, duration=0.6, root=tempfile.mkdtemp(), cache=Cache(enabled=False))
    >>> splits.sizes(), len(report), len(report.skipped())
    ({'train': 15, 'val': 3, 'test': 3}, 25, 4)
    """
    from nclib.audio import PAPER_WINDOW_SECONDS, num_frames
    from nclib.cache import Cache
    from nclib.data.audio_files import log_mel_dataset
    from nclib.data.base import Splits, stratified_split
    from nclib.data.synthetic_audio import task_classes
    from nclib.experiments.audio_support import standardise_splits, synthetic_cough_files

    paths, labels, _ = synthetic_cough_files(num_positive, num_negative, seed, duration, sample_rate, root)
    if frames is None:
        frames = num_frames(int(round(duration * sample_rate)), sample_rate)
    dataset, report = log_mel_dataset(paths, labels, task_classes("cough"), frames, sample_rate,
                                      Cache() if cache is None else cache,
                                      window_seconds=PAPER_WINDOW_SECONDS)
    dataset.info.update(source="synthetic cough", synthetic=True)
    parts = stratified_split(dataset.labels, (0.7, 0.15, 0.15), split_seed)
    return standardise_splits(Splits(*(dataset.subset(index) for index in parts))), report


def _quick_pretrained(spec, cache, settings, sources: dict):
    """Pre-train (or load) one model; ``sources`` keeps each generated source task, so the
    two models that share a task do not generate it twice."""
    from nclib.experiments.runner import pretrained_model

    task = spec.source_task
    per_class = settings["source_per_class"][task]

    def load_source():
        if task not in sources:
            sources[task] = quick_source(task, per_class)
        return sources[task]

    return pretrained_model(
        spec, cache, load_source, epochs=settings["pretrain_epochs"][task],
        lr=settings["pretrain_lr"], batch_size=settings["pretrain_batch_size"], seed=0,
        key_parts={"source": f"synthetic-{task}", "per_class": per_class, "input_map": INPUT_MAP},
    )


# ----------------------------------------------------------------------------- paper profile
def paper_source(task: str, root=None, frames: int | None = None, seed: int = 0, cache=None):
    """A real pre-training task as standardised log-mel inputs: ``(train, val)``.

    Speech Commands keeps its official ``train`` and ``validation`` lists; the scenes and
    music sets are split 85 / 15, stratified, with ``seed``.

    Parameters
    ----------
    task : {"scenes", "music", "speech"}
    root : path-like, optional
        Where the data sets lie (see :func:`nclib.data.audio_sources.load_source_task`).
    frames : int, optional
        Default: one whole nominal clip of the task (499, 1499, 65 frames).
    seed : int
    cache : nclib.cache.Cache, optional
        Cache of the log-mel features (default: ``Cache()`` in the data folder).

    Returns
    -------
    train, val : nclib.data.base.Dataset

    Examples
    --------
    >>> paper_source("music", "/no/such/folder")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no genres/<genre>/*.wav under /no/such/folder; ...
    """
    from nclib.cache import Cache
    from nclib.data.audio_sources import load_source_task
    from nclib.data.base import stratified_split
    from nclib.experiments.audio_support import standardise_dataset

    cache = Cache() if cache is None else cache
    if task == "speech":
        train, _ = load_source_task(task, root, subset="train", frames=frames, cache=cache)
        val, _ = load_source_task(task, root, subset="validation", frames=frames, cache=cache)
        return standardise_dataset(train), standardise_dataset(val)
    data, _ = load_source_task(task, root, frames=frames, cache=cache)
    data = standardise_dataset(data)
    train, val = stratified_split(data.labels, (0.85, 0.15), seed=seed)
    return data.subset(train), data.subset(val)


def paper_target(root=None, frames: int | None = None, seed: int = 0, cache=None, registry=None):
    """The real Coswara target (:func:`nclib.data.coswara.coswara_splits`), standardised.

    Parameters
    ----------
    root : path-like, optional
        The Coswara-Data folder (default ``<data folder>/Coswara-Data``).
    frames : int, optional
        Frames per input (default :data:`nclib.data.coswara.COSWARA_FRAMES`).
    seed : int
        Seed of the stratified 70 / 15 / 15 split.
    cache : nclib.cache.Cache, optional
        Where the log-mel features are cached (default ``Cache()``).
    registry : path-like, optional
        Registry holding the archive parts' digests, passed to
        :func:`nclib.data.coswara.prepare_coswara` (default ``data/registry.csv``, the
        pinned commit's; for another copy or a test fixture, one written by
        :func:`nclib.data.coswara.write_part_registry`).

    Returns
    -------
    splits : nclib.data.base.Splits
    report : nclib.data.audio_files.AudioReport

    Examples
    --------
    >>> paper_target("/no/such/folder")
    Traceback (most recent call last):
    ...
    FileNotFoundError: /no/such/folder has no combined_data.csv; ...
    """
    from nclib.cache import Cache
    from nclib.data.coswara import COSWARA_FRAMES, coswara_splits
    from nclib.experiments.audio_support import standardise_splits

    splits, report = coswara_splits(root, seed=seed, frames=COSWARA_FRAMES if frames is None else frames,
                                    cache=Cache() if cache is None else cache, registry=registry)
    return standardise_splits(splits), report


def _paper_pretrained(spec, cache, settings, source_root, source_frames):
    from nclib.experiments.runner import pretrained_model

    task = spec.source_task
    frames = source_frames.get(task) if isinstance(source_frames, dict) else source_frames

    def load_source():
        train, val = paper_source(task, source_root, frames, seed=settings["split_seed"])
        outputs = spec.build().classifier.out_features
        if len(train.classes) > outputs:
            raise ValueError(
                f"the {task} data has {len(train.classes)} classes but {spec.name} has {outputs} outputs; "
                f"pass source_classes={{{task!r}: {len(train.classes)}}} to coswara_experiment"
            )
        return train, val

    return pretrained_model(
        spec, cache, load_source, epochs=settings["pretrain_epochs"][task], lr=settings["pretrain_lr"],
        batch_size=settings["pretrain_batch_size"], seed=0,
        key_parts={"source": task, "frames": frames, "input_map": INPUT_MAP,
                   "source_root": None if source_root is None else str(source_root)},
    )


# ----------------------------------------------------------------------------- the config
def _per_task(value, default: dict, name: str) -> dict:
    """An int for every source task, or a mapping overriding some of them."""
    if value is None:
        return dict(default)
    if isinstance(value, dict):
        unknown = set(value) - set(SOURCE_TASKS)
        if unknown:
            raise ValueError(f"{name}: unknown source tasks {sorted(unknown)}; known: {SOURCE_TASKS}")
        return {**default, **value}
    return dict.fromkeys(SOURCE_TASKS, value)


def coswara_experiment(profile: str = "quick", *, root=None, source_root=None, seeds=None, head_epochs=None,
                       full_epochs=None, frames=None, source_frames=None, pretrain_epochs=None,
                       source_per_class=None, source_classes=None, scores=None, registry=None):
    """The audio experiment's :class:`~nclib.experiments.runner.ExperimentConfig`.

    Parameters
    ----------
    profile : {"quick", "paper"}
    root : path-like, optional
        Paper: the Coswara-Data folder (default ``<data folder>/Coswara-Data``). Quick:
        where the synthetic WAV files are written (default: the data folder).
    source_root : path-like, optional
        Paper: where the DCASE 2018, GTZAN and Speech Commands copies lie (default: the
        data folder).
    seeds, head_epochs, full_epochs : optional
        Override the profile's settings (e.g. one seed and one epoch in tests).
    frames : int, optional
        Frames per target input (paper default 159 = 8 s; quick: one whole clip).
    source_frames : int or mapping of task to int, optional
        Paper: frames per source input (default: one nominal clip per task).
    pretrain_epochs : int or mapping of task to int, optional
        Override the pre-training epochs (all tasks, or some of them).
    source_per_class : int or mapping of task to int, optional
        Quick: synthetic clips per source class.
    source_classes : mapping of task to int, optional
        Paper: source classes per task, if the local copies differ from the paper's data
        (scenes 10, music 10, speech 35).
    scores : tuple of str, optional
        REGISTRY scores to compute (default: every registered score).
    registry : path-like, optional
        Paper: the registry with the Coswara archive parts' digests, passed to
        :func:`paper_target` (default ``data/registry.csv``, the pinned commit's; for a
        copy at another revision or a test fixture, one written by
        :func:`nclib.data.coswara.write_part_registry`). Ignored by the quick profile.

    Returns
    -------
    ExperimentConfig
        ``metric="auroc"``; ``description`` says what produced the results.

    Examples
    --------
    >>> config = coswara_experiment("quick")
    >>> config.metric, config.seeds, config.profile
    ('auroc', (0, 1, 2), 'quick')
    >>> coswara_experiment("paper").seeds == tuple(range(10)), coswara_experiment("paper").lr
    (True, 0.0001)
    """
    from nclib.experiments.runner import ExperimentConfig
    from nclib.models.audio import audio_zoo

    if profile == "quick":
        settings = dict(QUICK)
        settings["source_per_class"] = _per_task(source_per_class, QUICK["source_per_class"], "source_per_class")
        settings["pretrain_epochs"] = _per_task(pretrain_epochs, QUICK["pretrain_epochs"], "pretrain_epochs")
        load_target = partial(_first, partial(
            quick_target, settings["num_positive"], settings["num_negative"], 0, settings["duration"], frames,
            settings["sample_rate"], settings["split_seed"], root))
        zoo = partial(audio_zoo, dict.fromkeys(SOURCE_TASKS, 10))
        prepare = partial(_quick_pretrained, settings=settings, sources={})
        key_parts = {k: settings[k] for k in ("pretrain_epochs", "pretrain_lr", "pretrain_batch_size",
                                              "source_per_class", "num_positive", "num_negative", "duration",
                                              "sample_rate")}
        description = (
            "Quick profile: synthetic audio at 48 kHz through the paper's front end. The five models of "
            "Table 1 were pre-trained here on procedural source tasks (10 classes each; "
            + ", ".join(f"{task} {settings['source_per_class'][task]} clips per class for "
                        f"{settings['pretrain_epochs'][task]} epochs" for task in SOURCE_TASKS)
            + f") and transferred to a synthetic cough-like task ({settings['num_positive']} positive, "
            f"{settings['num_negative']} negative clips of {settings['duration']:g} s written as WAV files with "
            f"bad files among them; 70/15/15 split); head regime {head_epochs or settings['head_epochs']} epochs, "
            f"full fine-tuning {full_epochs or settings['full_epochs']} epochs, Adam lr {settings['lr']:g}, "
            f"batch {settings['batch_size']}, seeds {tuple(seeds) if seeds is not None else settings['seeds']}."
        )
    elif profile == "paper":
        settings = dict(PAPER)
        settings["pretrain_epochs"] = _per_task(pretrain_epochs, PAPER["pretrain_epochs"], "pretrain_epochs")
        load_target = partial(_first, partial(paper_target, root, frames, settings["split_seed"], registry=registry))
        zoo = partial(audio_zoo, source_classes)
        prepare = partial(_paper_pretrained, settings=settings, source_root=source_root,
                          source_frames=source_frames)
        key_parts = {"pretrain_epochs": settings["pretrain_epochs"], "pretrain_lr": settings["pretrain_lr"],
                     "pretrain_batch_size": settings["pretrain_batch_size"], "frames": frames,
                     "source_frames": source_frames, "source_classes": source_classes, "input_map": INPUT_MAP}
        description = (
            "Paper profile: Coswara cough-heavy recordings of the participants with an RT-PCR result "
            "(48 kHz, 64-band log-mel, 100 ms windows, 50 % overlap, 70/15/15 split); the five models of "
            "Table 1 pre-trained on DCASE 2018 scenes, GTZAN and Speech Commands; AUROC; Adam lr "
            f"{settings['lr']:g}, batch {settings['batch_size']}, {head_epochs or settings['head_epochs']} / "
            f"{full_epochs or settings['full_epochs']} epochs, "
            f"{len(seeds) if seeds is not None else len(settings['seeds'])} seeds."
        )
    else:
        raise ValueError(f"unknown profile {profile!r}; known: ('quick', 'paper')")
    key_parts["input_map"] = INPUT_MAP
    return ExperimentConfig(
        name="coswara", profile=profile, metric="auroc", load_target=load_target, zoo=zoo,
        prepare_model=prepare, head_epochs=head_epochs or settings["head_epochs"],
        full_epochs=full_epochs or settings["full_epochs"],
        seeds=tuple(seeds) if seeds is not None else settings["seeds"], lr=settings["lr"],
        batch_size=settings["batch_size"], scores=scores, description=description, key_parts=key_parts,
        extra={"settings": settings},
    )


def _first(load):
    """``load()[0]``: the splits of a loader that also returns its audio report."""
    return load()[0]


__all__ = ["PAPER", "QUICK", "coswara_experiment", "paper_source", "paper_target", "quick_source",
           "quick_target"]
