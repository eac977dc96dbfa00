"""The image experiment end to end: the paper profile on a tiny official-format archive."""

import numpy as np
import pandas as pd
import pytest

from cifar10_fixture import write_tiny_cifar10
from nclib.cache import Cache
from nclib.experiments.cifar10 import cifar10_experiment, quick_target
from nclib.experiments.runner import CSV_COLUMNS, run_experiment


def test_paper_profile_runs_end_to_end_on_a_tiny_archive(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    _, md5 = write_tiny_cifar10(folder, per_batch=20, seed=0)  # 100 training, 20 test images
    config = cifar10_experiment(
        "paper", folder=folder, weights=None, architectures=["mobilenet-v2", "efficientnet-b0"],
        seeds=[0], head_epochs=1, full_epochs=1, train_size=80, val_size=20, expected_digest=md5,
        scores=("nc", "leep", "logme", "hscore"),
    )
    assert (config.lr, config.batch_size, config.metric) == (1e-4, 32, "accuracy")
    results = run_experiment(config, out=tmp_path / "out", cache=Cache(tmp_path / "cache"))
    for table in ("scores", "transfer", "evaluation"):
        written = pd.read_csv(tmp_path / "out" / f"{table}.csv")
        assert list(written.columns) == CSV_COLUMNS[table]
    transfer = results.transfer
    assert set(transfer.regime) == {"head", "full"} and set(transfer.metric) == {"accuracy"}
    assert set(transfer.model) == {"mobilenet-v2", "efficientnet-b0"}
    assert transfer.value.between(0, 1).all()
    scores = results.scores.pivot(index="model", columns="score", values="value")
    assert {"nc", "leep", "logme"} <= set(scores.columns)
    assert np.isfinite(scores[["nc", "leep", "logme"]].to_numpy()).all()
    # LEEP read the 1,000-way ImageNet head: its value is a mean log-probability
    assert (scores["leep"] <= 0).all()
    dims = results.models.set_index("name")["embedding_dim"]
    assert dims["mobilenet-v2"] == 1280 and dims["efficientnet-b0"] == 1280


def test_the_quick_target_is_an_explicit_field_never_guessed_from_files(tmp_path):
    write_tiny_cifar10(tmp_path, per_batch=20, seed=0)
    # an archive in the folder changes nothing unless the subset is asked for
    config = cifar10_experiment("quick", folder=tmp_path)
    assert config.key_parts["target"] == "digits" and "digits" in config.description
    assert config.load_target().train.inputs.shape[1:] == (3, 32, 32)
    subset = cifar10_experiment("quick", target="cifar10-subset", folder=tmp_path)
    assert subset.key_parts["target"] == "cifar10-subset" and "CIFAR-10" in subset.description
    with pytest.raises(ValueError, match="unknown target 'svhn'"):
        cifar10_experiment("quick", target="svhn")
    with pytest.raises(ValueError, match="unknown zoo"):
        cifar10_experiment("quick", zoo="hub")


def test_quick_profiles_differ_only_in_data():
    digits = cifar10_experiment("quick", target="digits")
    fashion = cifar10_experiment("quick", target="fashion-mnist")
    in_house = cifar10_experiment("quick", zoo="in-house")
    assert digits.head_solver == fashion.head_solver == "convex"
    assert digits.fine_tune == fashion.fine_tune == "top" and digits.patience == fashion.patience
    assert digits.seeds == fashion.seeds and len(digits.seeds) >= 5
    assert digits.key_parts != fashion.key_parts
    assert in_house.head_solver == "adam" and "in-house" in in_house.description
