"""--response-zscore trials: each lag's response volumes z-scored over the run's trials (Wang et al.'s code)."""

from __future__ import annotations

import numpy as np

from bids_taskenc.responses.travg import clean_and_zscore
from bids_taskenc.responses.zscoring import ZSCORING, zscore_over_trials


def test_each_lag_is_z_scored_over_the_trials_whatever_the_run_z_scoring():
    rng = np.random.default_rng(0)
    series = rng.normal(size=(60, 4)) * np.array([1.0, 5.0, 0.2, 30.0]) + 100.0
    series[:, 3] += np.linspace(0, 50, 60)  # a drift: the run's SD is not the trials' SD
    vols = np.array([[3, 4], [13, 14], [23, 24], [33, 34], [43, 44]])
    z = zscore_over_trials(clean_and_zscore(series, rows=vols))
    raw = series[vols]  # (5 trials, 2 lags, 4 voxels): the paper's zscore(d, axis=0) of the sampled volumes
    expected = (raw - raw.mean(0)) / raw.std(0)
    assert np.allclose(z, expected, atol=1e-5)
    assert np.allclose(z.mean(0), 0, atol=1e-6) and np.allclose(z.std(0), 1, atol=1e-5)
    # not what z-scoring over the run gives
    assert not np.allclose(clean_and_zscore(series, rows=vols), expected, atol=0.1)
    assert set(ZSCORING) == {"run", "trials"}


def test_a_voxel_constant_over_the_trials_is_dropped_as_nan():
    z = np.ones((4, 2, 3), np.float32)
    z[:, :, 1] = np.arange(4)[:, None]
    out = zscore_over_trials(z)
    assert np.isnan(out[:, :, 0]).all() and np.isnan(out[:, :, 2]).all() and np.isfinite(out[:, :, 1]).all()
    assert np.isnan(zscore_over_trials(np.ones((1, 2, 1)))).all()  # a run of one trial has no spread
