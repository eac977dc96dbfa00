"""Transfer to regression and clustering (nclib.other_tasks)."""

import numpy as np
import pytest

from nclib.other_tasks import clustering_quality, input_intensity, ridge_transfer


def test_input_intensity_ridge_and_clustering():
    assert input_intensity(np.array([[[0.0, 2.0]], [[4.0, 4.0]]])).tolist() == [1.0, 4.0]
    with pytest.raises(ValueError, match="shape"):
        input_intensity(np.zeros(3))
    rng = np.random.default_rng(3)
    features = rng.normal(size=(120, 3))
    exact = 2 * features[:, 0] - features[:, 1]
    assert ridge_transfer(features[:60], exact[:60], features[60:90], exact[60:90], features[90:],
                          exact[90:]) == pytest.approx(1.0, abs=1e-3)
    noise = rng.normal(size=120)
    assert ridge_transfer(features[:60], noise[:60], features[60:90], noise[60:90], features[90:], noise[90:]) < 0.2
    labels = np.repeat([0, 1], 30)
    separated = np.column_stack([labels * 20.0, np.zeros(60)]) + rng.normal(size=(60, 2))
    assert clustering_quality(separated, labels) == 1.0
    assert abs(clustering_quality(rng.normal(size=(60, 2)), labels)) < 0.2



def test_waveform_loudness_is_mean_power_in_decibels():
    from nclib.other_tasks import waveform_loudness

    rng = np.random.default_rng(0)
    waveforms = rng.normal(size=(3, 16000)) * np.array([[0.01], [0.1], [1.0]])
    loudness = waveform_loudness(waveforms)
    assert loudness.shape == (3,)
    np.testing.assert_allclose(np.diff(loudness), [20.0, 20.0], atol=0.2)  # x10 amplitude = +20 dB
    assert waveform_loudness(np.zeros((1, 10)))[0] == pytest.approx(-100.0)
    with pytest.raises(ValueError):
        waveform_loudness(np.zeros(5))
