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

``quick`` (default): a CPU-sized run with a converged, low-noise ground truth, on a
pool of eight models of two kinds that all read the same 16 kHz waveforms:

* three networks with **published weights** from registry packages
  (:func:`nclib.models.pretrained_audio.pretrained_audio_zoo`: CREPE tiny, the GE2E speaker
  encoder, Silero VAD), each with its own front end inside ``embed``; CREPE full is left
  out for cost (about seven times CREPE tiny);
* the paper's five models (:func:`nclib.models.audio.audio_zoo`) **pre-trained here** on
  procedural scenes, music and speech at 48 kHz (:mod:`nclib.data.synthetic_audio`), each
  wrapped in :class:`~nclib.experiments.audio_support.LogMelFrontEnd`, which turns a 16 kHz
  waveform into exactly the standardised 48 kHz log-mel input the model was trained on.

The target is the procedural cough-like binary task, 2,500 clips of 1 s written as
16 kHz WAV files with a few deliberately odd and bad files among them
(:func:`nclib.experiments.audio_support.synthetic_cough_files`) and read back under the
bad-audio policy (:func:`nclib.experiments.audio_support.waveform_dataset`); split
40 / 20 / 40 (1,000 train, 500 validation, 1,000 test), so that the test-set standard
error of AUROC is small next to the differences between models. The head regime is the
convex head (L2-penalised logistic regression solved to convergence, L2 chosen on
validation; deterministic, so one run per model). Full fine-tuning does not fit a CPU
budget; regime ``"top"`` (:func:`nclib.transfer.top_transfer`: the last stage of each
network and a new head trained on the frozen trunk's outputs, 5 seeds, early stopping) can
be switched on with ``fine_tune="top"``. Only the log-mel
inputs of the in-house models go through the fixed map ``(dB + 40) / 20``
(:func:`nclib.experiments.audio_support.standardise_log_mel`).

The chapter "The audio experiment" runs it (``python -m nclib run coswara``).
"""

from __future__ import annotations

from functools import partial

from nclib.experiments.audio_support import INPUT_OFFSET_DB, INPUT_SCALE_DB

SOURCE_TASKS = ("scenes", "music", "speech")
INPUT_MAP = f"(dB + {INPUT_OFFSET_DB:g}) / {INPUT_SCALE_DB:g}"

#: The paper profile's settings: :class:`~nclib.experiments.runner.ExperimentConfig` fields
#: and the source models' pre-training.
PAPER = {
    "head_epochs": 250, "full_epochs": 250, "seeds": tuple(range(10)), "lr": 1e-4, "batch_size": 32,
    "pretrain_epochs": {"scenes": 50, "music": 50, "speech": 50}, "pretrain_lr": 1e-3,
    "pretrain_batch_size": 32, "split_seed": 0,
}
#: The quick profile's settings, in the same form as :data:`PAPER`.
QUICK = {
    "head_solver": "convex", "head_epochs": 40, "full_epochs": 40, "seeds": (0,), "lr": 1e-3,
    "batch_size": 32, "full_regime": False, "convergence_check": "raise",
    "top_seeds": (0, 1, 2, 3, 4), "top_epochs": 120, "top_patience": 5,
    "top_pretrained": ("silero-vad",),
    "pretrain_epochs": {"scenes": 8, "music": 8, "speech": 8}, "pretrain_lr": 1e-3,
    "pretrain_batch_size": 32, "source_per_class": {"scenes": 30, "music": 30, "speech": 30},
    "source_sample_rate": 48_000,
    "num_positive": 1729, "num_negative": 771, "duration": 1.0, "sample_rate": 16_000,
    "split": (0.4, 0.2, 0.4), "split_seed": 0,
    "pretrained": ("crepe-tiny", "resemblyzer-ge2e", "silero-vad"), "crepe_hop_length": 1600,
}
"""The quick profile: 1,729 positive and 771 negative clips of 1 s (the paper's 960 : 428
ratio) split 40 / 20 / 40 = 1,000 / 500 / 1,000; the convex head (one deterministic run per
model). No fine-tuning regime by default: ``coswara_experiment(fine_tune="top")`` adds regime
``"top"`` (each network's last stage and a new head on the frozen trunk's outputs) with the
``top_*`` settings: Adam, early stopping with patience 5 under a 120-epoch cap, 5 seeds,
an error if more than 10 % of the runs peak in the last tenth of the cap, and a pool
without the speaker encoder and CREPE tiny (``top_pretrained``: the published-weight
networks kept).
The chapter "The audio experiment" runs both.

Why these settings, measured on the two-core machine (2026-12-02, two worker processes,
nothing else running). With clips of 1.5 s, the first setting: under a 40-epoch cap CREPE
tiny's five runs all peaked at the cap (best epochs 38 to 40); under 120 they peaked at
epochs 63 to 78 (about 0.6 s per epoch). The speaker encoder (an LSTM over the mel
frames) took about 8 s per epoch, over 5 minutes per run and about 27 minutes of worker
time for five seeds, more than the rest of the book, so regime "top" leaves it out. The
others stopped well inside the cap: silero-vad (0.6 to 0.7 s per epoch) best epochs 4 to
20; the in-house dcase-scenes (2.0 to 2.8 s per epoch) 7 to 10; the four other in-house
networks 7 to 25. A learning rate of 3e-3 instead of 1e-3 brought CREPE tiny's best
epochs down to 23 to 32, but made most in-house runs longer and every network's seed
standard deviation 1.9 to 7.9 times wider, and the seven networks' 35 runs still took
408 s of wall time with their trunks' outputs already cached; so the rate stays at 1e-3.
At 1e-3 and a 120-epoch cap, the whole fine-tuned run (the trunks' outputs and the 35
runs, embeddings and heads cached) took 484 s, and the book's cold build 27 to 32
minutes, past its 25-minute budget.

Clips of 1 s give the networks about a third fewer frames (CREPE tiny 11 instead of 16,
silero-vad 32 chunks instead of 47, the in-house networks' log-mel input 19 instead of
29; the speaker encoder pads any clip to one partial of 160 frames, so it costs the
same). The fine-tuned run took 254 s (the same conditions), the head run 45 s (the
in-house networks' pre-training cached); best epochs: CREPE tiny 38 to 42 of 120,
silero-vad 5 to 11, dcase-scenes 6 to 12, the four other in-house networks 6 to 23. What
it cost in evidence: in the head regime the networks' AUROCs span 0.075 instead of 0.164
(test-set standard error about 0.012), and the two best, silero-vad and CREPE tiny, are
0.003 apart (silero-vad best in 60 % of the paired bootstrap replicates, against 99.8 %);
in regime "top" they span 0.103 instead of 0.151 (test-set standard error about 0.010,
seed standard deviation 0.003 to 0.012). The verdicts are the same at both lengths: NC
and LogME rank the head regime's networks better than chance (Kendall's tau, exact
permutation p below 0.05), LEEP does not, and none of the three ranks the fine-tuned
networks better than chance.

CREPE tiny then left regime "top" too. Its five runs took 225 epochs in all, against 71
to 116 for each of the other networks, and with 1 s clips the book's cold build still
took 1,565 s (26.1 minutes) on a slow hour (make speed x1.02), the fine-tuned run the
largest part of the audio chapter's 346 s. Without it the pool of regime "top" is
silero-vad and the five in-house networks.
"""


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
    from nclib._sampling import stratified_split
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
                 seed: int = 0, duration: float = QUICK["duration"], sample_rate: int = QUICK["sample_rate"],
                 split=QUICK["split"], split_seed: int = 0, root=None, cache=None):
    """The quick profile's target: synthetic cough recordings read back from WAV files as waveforms.

    The clips and the odd and bad files of
    :func:`~nclib.experiments.audio_support.synthetic_cough_files` (written at
    ``sample_rate``) are read back by
    :func:`~nclib.experiments.audio_support.waveform_dataset` under the bad-audio policy
    (the odd files mixed to mono or resampled, the bad ones skipped and counted), cut to
    ``duration`` and split by label with :func:`nclib.data.base.stratified_split`.

    Parameters
    ----------
    num_positive, num_negative, seed, duration
        As in :func:`nclib.data.synthetic_audio.cough_task` (default 1,729 : 771, the
        paper's ratio of 960 : 428).
    sample_rate : int, default 16000
        The rate every model of the quick zoo reads.
    split : tuple of float, default (0.4, 0.2, 0.4)
        Train, validation and test fractions (1,000 / 500 / 1,000 clips by default).
    split_seed : int
    root : path-like, optional
        Folder for the WAV files (default: the data folder).
    cache : nclib.cache.Cache, optional
        Cache of the waveforms read back (default: ``Cache()`` in the data folder).

    Returns
    -------
    splits : nclib.data.base.Splits
        ``inputs`` (n, samples) float32 waveforms; labels 0 negative, 1 positive.
    report : nclib.data.audio_files.AudioReport
        One row per file, the bad ones included.

    Examples
    --------
    >>> import tempfile
    >>> from nclib.cache import Cache
    >>> splits, report = quick_target(14, 7, duration=0.6, root=tempfile.mkdtemp(), cache=Cache(enabled=False))
    >>> splits.sizes(), splits.test.inputs.shape[1], len(report), len(report.skipped())
    ({'train': 9, 'val': 3, 'test': 9}, 9600, 25, 4)
    """
    from nclib._sampling import stratified_split
    from nclib.cache import Cache
    from nclib.data.base import Splits
    from nclib.data.synthetic_audio import task_classes
    from nclib.experiments.audio_support import synthetic_cough_files, waveform_dataset

    paths, labels, _ = synthetic_cough_files(num_positive, num_negative, seed, duration, sample_rate, root)
    dataset, report = waveform_dataset(paths, labels, task_classes("cough"), int(round(duration * sample_rate)),
                                       sample_rate, Cache() if cache is None else cache)
    dataset.info.update(source="synthetic cough", synthetic=True)
    parts = stratified_split(dataset.labels, tuple(split), split_seed)
    return Splits(*(dataset.subset(index) for index in parts)), report


def quick_zoo(pretrained=QUICK["pretrained"], crepe_hop_length: int = QUICK["crepe_hop_length"]) -> list:
    """The quick profile's pool: published-weight networks first, then the in-house five.

    Parameters
    ----------
    pretrained : sequence of str
        Names from :func:`nclib.models.pretrained_audio.pretrained_audio_zoo` to include
        (those whose package is missing are left out there, and logged).
    crepe_hop_length : int
        CREPE's frame hop in samples at 16 kHz.

    Returns
    -------
    list of nclib.models.ModelSpec
        The in-house specs build the bare log-mel networks (10 source classes each);
        :func:`coswara_experiment`'s ``prepare_model`` pre-trains them and wraps them in
        :class:`~nclib.experiments.audio_support.LogMelFrontEnd`.

    Examples
    --------
    >>> [spec.name for spec in quick_zoo(pretrained=())]
    ['dcase-scenes', 'cnn-music', 'cnn-speech', 'crnn-music', 'crnn-speech']
    """
    from nclib.models.audio import audio_zoo
    from nclib.models.pretrained_audio import pretrained_audio_zoo

    unknown = set(pretrained) - {"crepe-full", "crepe-tiny", "resemblyzer-ge2e", "silero-vad"}
    if unknown:
        raise ValueError(f"unknown pre-trained audio networks {sorted(unknown)}")
    published = [spec for spec in pretrained_audio_zoo(crepe_hop_length) if spec.name in set(pretrained)] \
        if pretrained else []
    return published + audio_zoo(dict.fromkeys(SOURCE_TASKS, 10))


def is_published(spec) -> bool:
    """Whether a zoo entry carries published weights (not one of the in-house five).

    Examples
    --------
    >>> [is_published(spec) for spec in quick_zoo(pretrained=())][:1]
    [False]
    """
    from nclib.models.audio import audio_zoo

    return spec.name not in {s.name for s in audio_zoo()}


def zoo_table(specs) -> "pd.DataFrame":  # noqa: F821
    """One row per model: where its weights come from and what its source head is.

    Parameters
    ----------
    specs : list of nclib.models.ModelSpec
        A zoo of :func:`quick_zoo` (or :func:`nclib.models.audio.audio_zoo`).

    Returns
    -------
    pandas.DataFrame
        Columns ``model, kind, source_task, parameters, embedding_dim, weights,
        has_source_head, head_activation``. ``parameters`` excludes a stand-in head;
        ``weights`` names the registry package, or ``"pre-trained here"``.

    Examples
    --------
    >>> table = zoo_table(quick_zoo(pretrained=()))
    >>> row = table.iloc[0]
    >>> row.model, int(row.parameters), int(row.embedding_dim)
    ('dcase-scenes', 4309450, 512)
    """
    import pandas as pd

    from nclib.models.audio import count_parameters
    from nclib.models.pretrained_audio import pretrained_audio_status, source_parameter_count

    status = pretrained_audio_status().set_index("name")
    rows = []
    for spec in specs:
        model = spec.build()
        if is_published(spec):
            rows.append((spec.name, "published weights", spec.source_task, source_parameter_count(model),
                         int(model.embedding_dim), str(status.loc[spec.name, "package"]),
                         bool(model.has_source_head), model.head_activation))
        else:
            rows.append((spec.name, "in-house", f"{spec.source_task} (procedural)", count_parameters(model),
                         int(model.embedding_dim), "pre-trained here", True, "softmax"))
    return pd.DataFrame(rows, columns=["model", "kind", "source_task", "parameters", "embedding_dim", "weights",
                                       "has_source_head", "head_activation"])


def _quick_pretrained(spec, cache, settings, sources: dict):
    """Pre-train (or load) one model; ``sources`` keeps each generated source task, so the
    two models that share a task do not generate it twice."""
    from nclib.models.pretraining import pretrained_model

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


def _quick_prepare(spec, cache, settings, sources: dict):
    """Published networks load their verified weights; the in-house ones are pre-trained
    (or loaded from the cache) and given their waveform front end."""
    from nclib.experiments.audio_support import LogMelFrontEnd

    if is_published(spec):
        return spec.build()
    inner = _quick_pretrained(spec, cache, settings, sources)
    return LogMelFrontEnd(inner, settings["sample_rate"], settings["source_sample_rate"], window_seconds=0.1)


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
    from nclib._sampling import stratified_split
    from nclib.cache import Cache
    from nclib.data.audio_sources import load_source_task
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
        :func:`nclib.data.coswara.prepare_coswara` (default ``nclib/data/registry.csv``, the
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
    from nclib.models.pretraining import pretrained_model

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
                       source_per_class=None, source_classes=None, scores=None, registry=None,
                       fine_tune=None):
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
        Paper: frames per target input (default 159 = 8 s). Ignored by the quick profile,
        whose inputs are whole waveforms.
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
        :func:`paper_target` (default ``nclib/data/registry.csv``, the pinned commit's; for a
        copy at another revision or a test fixture, one written by
        :func:`nclib.data.coswara.write_part_registry`). Ignored by the quick profile.
    fine_tune : {None, "top"}, optional
        Quick: add regime ``"top"`` (:func:`nclib.transfer.top_transfer`) with the
        ``top_*`` settings of :data:`QUICK` (seeds, epoch cap, patience). Default: the
        convex head only. The paper profile always fine-tunes every weight.

    Returns
    -------
    ExperimentConfig
        ``metric="auroc"``; ``description`` says what produced the results.

    Examples
    --------
    >>> config = coswara_experiment("quick")
    >>> config.metric, config.head_solver, config.profile
    ('auroc', 'convex', 'quick')
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
            quick_target, settings["num_positive"], settings["num_negative"], 0, settings["duration"],
            settings["sample_rate"], settings["split"], settings["split_seed"], root))
        prepare = partial(_quick_prepare, settings=settings, sources={})
        key_parts = {k: settings[k] for k in ("pretrain_epochs", "pretrain_lr", "pretrain_batch_size",
                                              "source_per_class", "source_sample_rate", "num_positive",
                                              "num_negative", "duration", "sample_rate", "crepe_hop_length")}
        key_parts["split"] = list(settings["split"])
        if fine_tune not in (None, "top"):
            raise ValueError(f"fine_tune must be None or 'top' in the quick profile, got {fine_tune!r}")
        if fine_tune == "top":
            settings.update(full_regime=True, fine_tune="top", seeds=settings["top_seeds"],
                            full_epochs=settings["top_epochs"], patience=settings["top_patience"],
                            pretrained=settings["top_pretrained"])
        zoo = partial(quick_zoo, settings["pretrained"], settings["crepe_hop_length"])
        description = quick_description(settings, seeds)
        sizes = _split_sizes(settings["num_positive"], settings["num_negative"], settings["split"])
        target = (f"procedural cough-like binary clips ({settings['num_positive']:,} positive, "
                  f"{settings['num_negative']:,} negative; {sizes[0]:,} / {sizes[1]:,} / {sizes[2]:,})")
    elif profile == "paper":
        if fine_tune is not None:
            raise ValueError("the paper profile fine-tunes every weight; fine_tune applies to the quick profile")
        settings = dict(PAPER)
        settings["pretrain_epochs"] = _per_task(pretrain_epochs, PAPER["pretrain_epochs"], "pretrain_epochs")
        load_target = partial(_first, partial(paper_target, root, frames, settings["split_seed"], registry=registry))
        zoo = partial(audio_zoo, source_classes)
        prepare = partial(_paper_pretrained, settings=settings, source_root=source_root,
                          source_frames=source_frames)
        key_parts = {"pretrain_epochs": settings["pretrain_epochs"], "pretrain_lr": settings["pretrain_lr"],
                     "pretrain_batch_size": settings["pretrain_batch_size"], "frames": frames,
                     "source_frames": source_frames, "source_classes": source_classes, "input_map": INPUT_MAP}
        target = "Coswara cough-heavy recordings with an RT-PCR result (70 / 15 / 15 split)"
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
        batch_size=settings["batch_size"], scores=scores, description=description, target=target,
        key_parts=key_parts,
        full_regime=settings.get("full_regime", True), head_solver=settings.get("head_solver", "adam"),
        fine_tune=settings.get("fine_tune", "full"), patience=settings.get("patience"),
        convergence_check=settings.get("convergence_check", "record"),
        extra={"settings": settings},
    )


def coswara_tuned_experiment(profile: str = "quick", **options):
    """The audio experiment with a fine-tuning regime at either profile.

    The quick profile's standard run (:func:`coswara_experiment`) has the convex head
    only; this one adds regime ``"top"`` (the ``top_*`` settings of :data:`QUICK`:
    five seeds, early stopping under a 120-epoch cap, the speaker encoder and CREPE tiny
    left out), as the chapter "The audio experiment" runs it. The paper profile fine-tunes every
    weight already, so there it is :func:`coswara_experiment` unchanged. Registered as
    ``coswara-tuned`` (``python -m nclib run coswara-tuned``); the embeddings, heads and
    scores it shares with the standard run come from the same cache entries.

    Parameters
    ----------
    profile : {"quick", "paper"}
    **options
        Passed to :func:`coswara_experiment` (not ``fine_tune``).

    Returns
    -------
    ExperimentConfig

    Examples
    --------
    >>> config = coswara_tuned_experiment("quick")
    >>> config.fine_tune, len(config.seeds), config.full_epochs
    ('top', 5, 120)
    >>> coswara_tuned_experiment("paper").fine_tune
    'full'
    """
    if "fine_tune" in options:
        raise ValueError("coswara_tuned_experiment chooses the fine-tuning regime itself")
    return coswara_experiment(profile, fine_tune="top" if profile == "quick" else None, **options)


def quick_description(settings: dict, seeds=None) -> str:
    """What produced the quick profile's results, in one paragraph (from its settings).

    Examples
    --------
    >>> quick_description(QUICK).split(":")[0]
    'Quick profile'
    """
    sizes = _split_sizes(settings["num_positive"], settings["num_negative"], settings["split"])
    regimes = "convex head (L2-penalised logistic regression to convergence, L2 chosen on validation)" \
        if settings["head_solver"] == "convex" else f"Adam head, {settings['head_epochs']} epochs"
    return (
        f"Quick profile: a procedural cough-like binary target ({settings['num_positive']:,} positive and "
        f"{settings['num_negative']:,} negative clips of {settings['duration']:g} s, written as "
        f"{settings['sample_rate'] / 1000:g} kHz WAV files with odd and bad files among them and read back "
        f"under the bad-audio policy; {sizes[0]:,} train / {sizes[1]:,} validation / {sizes[2]:,} test), "
        f"AUROC. Pool of {len(settings['pretrained']) + 5} models on the same waveforms: "
        f"{', '.join(settings['pretrained'])} with published weights, and the paper's five architectures "
        "pre-trained here on procedural scenes, music and speech ("
        + ", ".join(f"{task} {settings['source_per_class'][task]} clips per class, "
                    f"{settings['pretrain_epochs'][task]} epochs" for task in SOURCE_TASKS)
        + f"). Head regime: {regimes}. "
        + (f"Regime 'top': each network's last stage and a new head on its frozen trunk's outputs, Adam lr "
           f"{settings['lr']:g}, batch {settings['batch_size']}, early stopping with patience "
           f"{settings['patience']} under a {settings['full_epochs']}-epoch cap, "
           f"{len(tuple(seeds) if seeds is not None else settings['seeds'])} seeds."
           if settings.get("full_regime") and settings.get("fine_tune") == "top" else "No fine-tuning regime.")
    )


def _split_sizes(num_positive: int, num_negative: int, split) -> tuple:
    """Sizes of a stratified split (per class ``floor(cumulative fraction * n + 0.5)`` boundaries)."""
    import numpy as np

    sizes = np.zeros(len(split), int)
    for n in (num_positive, num_negative):
        bounds = np.floor(np.cumsum(split) * n + 0.5).astype(int)
        sizes += np.diff(np.concatenate([[0], bounds]))
    return tuple(int(x) for x in sizes)


def _first(load):
    """``load()[0]``: the splits of a loader that also returns its audio report."""
    return load()[0]


__all__ = ["PAPER", "QUICK", "coswara_experiment", "coswara_tuned_experiment", "is_published", "paper_source",
           "paper_target", "quick_description", "quick_source", "quick_target", "quick_zoo", "zoo_table"]
