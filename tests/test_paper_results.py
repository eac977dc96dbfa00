"""The paper's reported numbers (nclib.paper_results)."""

import numpy as np
import pandas as pd
import pytest

from nclib.paper_results import NUM_MODELS, REPORTED, compare, reported, reported_p_value
from nclib.uncertainty import critical_pearson, pearson_p_value


def test_reported_table():
    table = reported()
    assert len(table) == 12
    assert NUM_MODELS == {"cifar10": 6, "coswara": 5}
    cifar = table.query("experiment == 'cifar10'").set_index(["regime", "score"]).abs_pearson
    assert cifar.to_dict() == {("head", "leep"): 0.44, ("head", "logme"): 0.76, ("head", "nc"): 0.93,
                               ("full", "leep"): 0.47, ("full", "logme"): 0.79, ("full", "nc"): 0.91}
    cos = table.query("experiment == 'coswara'").set_index(["regime", "score"]).abs_pearson
    assert cos[("head", "nc")] == 0.86 and cos[("full", "leep")] == 0.61
    # significance follows the critical values: only NC on CIFAR-10 clears 0.811; nothing clears 0.878
    assert set(table.loc[table.significant, "score"]) == {"nc"}
    assert (table.significant == (table.abs_pearson > table.critical)).all()
    assert table.query("experiment == 'coswara'").critical.round(3).eq(0.878).all()
    assert table.p_value.between(0, 1).all()


def test_reported_bad_alpha():
    with pytest.raises(ValueError, match="alpha"):
        reported(alpha=0)


def test_compare():
    ours = pd.DataFrame({"score": ["nc", "logme", "leep", "nc"], "regime": ["head", "head", "head", "full"],
                         "measure": "abs_pearson", "value": [0.5, 0.8, 0.1, 0.9]})
    table = compare(ours, "cifar10").set_index(["regime", "score"])
    assert len(table) == 6
    assert table.loc[("head", "nc"), "ours"] == 0.5 and table.loc[("head", "nc"), "paper"] == 0.93
    assert np.isnan(table.loc[("full", "leep"), "ours"])
    assert np.isnan(table.loc[("head", "nc"), "low"]) and np.isnan(table.loc[("head", "nc"), "paper_in_interval"])
    with_interval = ours.assign(low=0.0, high=0.95, p_value=0.2)
    table = compare(with_interval, "coswara").set_index(["regime", "score"])
    assert table.loc[("head", "nc"), "paper_in_interval"] == 1.0 and table.loc[("head", "nc"), "p_value"] == 0.2
    assert table.loc[("head", "nc"), "num_models"] == 5
    with pytest.raises(ValueError, match="experiment"):
        compare(ours, "imagenet")
    with pytest.raises(ValueError, match="columns"):
        compare(ours.drop(columns="measure"), "cifar10")


def test_critical_values_consistent_with_pool_sizes():
    for (experiment, _, _), r in REPORTED.items():
        assert 0 < r < 1
    assert round(critical_pearson(NUM_MODELS["cifar10"]), 3) == 0.811


def test_reported_p_value_of_one_reported_number():
    # the CIFAR-10 chapter's exercise: the paper's LEEP, |r| = 0.44 over six networks
    assert reported_p_value("cifar10", "head", "leep") == pytest.approx(pearson_p_value(0.44, 6))
    assert f"{reported_p_value('cifar10', 'head', 'leep'):.2f}" == "0.38"
    table = reported().set_index(["experiment", "regime", "score"])
    for key in REPORTED:
        assert reported_p_value(*key) == pytest.approx(table.loc[key, "p_value"])
    assert reported_p_value("cifar10", "full", "leep") < reported_p_value("cifar10", "head", "leep")  # 0.47 > 0.44
    with pytest.raises(KeyError, match="reports no"):
        reported_p_value("cifar10", "top", "leep")
