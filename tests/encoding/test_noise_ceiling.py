"""NSD noise ceiling on simulated repeats with known signal and noise variance."""

import numpy as np
import pytest

from bids_taskenc.encoding import noise_ceiling


def _simulate(seed=0, n_single=300, n_repeated=1000, repeats=3, v=400):
    rng = np.random.default_rng(seed)
    signal_var = np.linspace(0.05, 2.0, v)
    n_images = n_single + n_repeated
    signal = rng.standard_normal((n_images, v)) * np.sqrt(signal_var)
    ids = np.concatenate([np.arange(n_single), np.repeat(np.arange(n_single, n_images), repeats)])
    trials = signal[ids] + rng.standard_normal((ids.size, v)) + 10.0  # noise variance 1, offset
    return trials, ids, signal_var, signal


@pytest.mark.parametrize("n_average", [1, 3])
def test_noise_ceiling_recovers_truth(n_average):
    trials, ids, signal_var, _ = _simulate()
    ncsnr, nc = noise_ceiling(trials, ids, n_average=n_average)
    true_nc = signal_var / (signal_var + 1.0 / n_average)
    assert np.abs(nc - true_nc).mean() < 0.03
    assert np.corrcoef(ncsnr, np.sqrt(signal_var))[0, 1] > 0.98
    assert ((nc >= 0) & (nc < 1)).all()


def test_noise_ceiling_bounds_achievable_r2():
    trials, ids, signal_var, signal = _simulate(seed=1)
    _, nc = noise_ceiling(trials, ids)
    # the best possible model (the true signal) explains about NC of single-trial variance
    r = np.array([np.corrcoef(signal[ids, j], trials[:, j])[0, 1] for j in range(trials.shape[1])])
    assert np.abs(r**2 - nc).mean() < 0.03


def test_noise_ceiling_mixed_repeats_and_edge_cases():
    trials, ids, signal_var, _ = _simulate(seed=2)
    counts = np.array([1, 2, 4, 4])
    _, nc = noise_ceiling(trials, ids, n_average=counts)
    snr2 = signal_var
    assert np.abs(nc - snr2 / (snr2 + np.mean(1 / counts))).mean() < 0.03
    trials[:, 0] = 7.0
    ncsnr, nc = noise_ceiling(trials, ids)
    assert np.isnan(ncsnr[0]) and np.isnan(nc[0]) and np.isfinite(nc[1:]).all()
    with pytest.raises(ValueError, match="repeats"):
        noise_ceiling(trials[:300], ids[:300])
    with pytest.raises(ValueError, match="n_average"):
        noise_ceiling(trials, ids, n_average=0)
    with pytest.raises(ValueError, match="image_ids"):
        noise_ceiling(trials, ids[:-1])


def test_noise_ceiling_z_scores_within_session():
    """NSD z-scores each session: session offsets and scales are neither signal nor noise."""
    rng = np.random.default_rng(5)
    v, n_images, repeats, n_sessions = 200, 400, 3, 3
    signal_var = np.linspace(0.1, 1.5, v)
    signal = rng.standard_normal((n_images, v)) * np.sqrt(signal_var)
    ids = np.repeat(np.arange(n_images), repeats)
    sessions = np.tile(np.arange(n_sessions), n_images)  # each image once per session
    offset = rng.normal(0, 2.0, (n_sessions, v))
    scale = rng.uniform(0.5, 2.0, (n_sessions, v))
    trials = (signal[ids] + rng.standard_normal((ids.size, v))) * scale[sessions] + offset[sessions]
    true_nc = signal_var / (signal_var + 1.0)
    _, nc_session = noise_ceiling(trials, ids, sessions=sessions.astype(str))
    _, nc_all = noise_ceiling(trials, ids)
    assert np.abs(nc_session - true_nc).mean() < 0.03
    assert np.abs(nc_all - true_nc).mean() > 0.15  # z-scoring over all trials: offsets count as noise
    # one session of a single trial is left at its mean; the rest still estimate the ceiling
    ncsnr, _ = noise_ceiling(trials[:-2], ids[:-2], sessions=np.r_[sessions[:-3], 7])
    assert np.isfinite(ncsnr).all()


def _ceiling_simulation(seed=0, n_images=1200, n_repeated=100, v=2000, signal_fraction=0.1, test_fraction=0.15):
    """Most voxels have no signal (ceiling ~ 0); a test set scored with ridge-like shrunk predictions."""
    rng = np.random.default_rng(seed)
    signal_var = np.zeros(v)
    n_sig = int(v * signal_fraction)
    signal_var[:n_sig] = rng.uniform(0.1, 0.6, n_sig)
    signal = rng.standard_normal((n_images, v)) * np.sqrt(signal_var)
    ids = np.concatenate([np.arange(n_images), np.repeat(np.arange(n_repeated), 3)])  # repeated: 4 showings
    trials = signal[ids] + rng.standard_normal((ids.size, v))
    counts = np.bincount(ids, minlength=n_images)
    data = np.stack([trials[ids == i].mean(0) for i in range(n_images)])
    test = np.sort(rng.choice(n_images, int(test_fraction * n_images), replace=False))
    # predictions: a shrunk, noisy estimate of the signal (pure noise where there is none)
    pred = 0.3 * signal[test] + 0.1 * rng.standard_normal((test.size, v))
    return trials, ids, counts[test], data[test], pred, signal_var


def test_normalised_score_is_nan_where_the_ceiling_is_unreliable_and_bounded_elsewhere():
    from bids_taskenc.encoding import ceiling_pvalue, fdr_bh, noise_normalized_score
    from bids_taskenc.encoding.stats import pearson_r, r2_score

    trials, ids, test_counts, y_test, pred, signal_var = _ceiling_simulation()
    _, nc = noise_ceiling(trials, ids, n_average=test_counts)
    r, r2 = pearson_r(y_test, pred), r2_score(y_test, pred)
    with np.errstate(divide="ignore", invalid="ignore"):
        old = np.where(nc >= 1e-3, r2 / nc, np.nan)  # the former R² / NC with a 1e-3 floor
    assert np.nanmin(old) < -10 and np.nanpercentile(old, 1) < -2  # the huge negative ratios
    q = fdr_bh(ceiling_pvalue(trials, ids), 0.05)
    reliable = q < 0.05
    score = noise_normalized_score(r, nc, reliable)
    has_signal = signal_var > 0
    assert np.isnan(score[~reliable]).all() and np.isfinite(score[reliable]).all()
    assert reliable[has_signal].mean() > 0.85 and reliable[~has_signal].mean() < 0.02
    assert np.nanmin(score) >= 0 and np.nanpercentile(score, 99) < 3
    # the prediction is the signal, shrunk (r ignores the scale) plus its own noise: signal voxels score below 1
    assert 0.5 < np.nanmedian(score[has_signal & reliable]) < 1.1
    out = noise_normalized_score(
        np.array([0.5, -0.2, 0.5, 0.5]), np.array([0.5, 0.5, 0.0, np.nan]), np.array([True, True, True, True])
    )
    np.testing.assert_allclose(out[:2], [0.5, 0.0])
    assert np.isnan(out[2:]).all()
    assert np.isnan(noise_normalized_score(np.array([0.5]), np.array([0.5]), np.array([False]))).all()


def test_ceiling_pvalue_is_uniform_without_signal_and_small_with_it():
    from bids_taskenc.encoding import ceiling_pvalue

    rng = np.random.default_rng(3)
    ids = np.repeat(np.arange(100), 3)
    signal = rng.standard_normal((100, 400)) * np.r_[np.zeros(200), np.ones(200)]
    p = ceiling_pvalue(signal[ids] + rng.standard_normal((300, 400)), ids)
    assert 0.02 < np.mean(p[:200] < 0.05) < 0.1 and np.mean(p[200:] < 0.001) > 0.95


def test_split_half_reliability_tracks_the_signal_to_noise():
    from bids_taskenc.encoding.noise_ceiling import split_half_reliability

    rng = np.random.default_rng(0)
    n_images, k = 200, 4
    signal = rng.standard_normal((n_images, 3)) * np.array([0.0, 1.0, 3.0])  # voxels: none, some, strong signal
    ids = np.repeat(np.arange(n_images), k)
    trials = signal[ids] + rng.standard_normal((n_images * k, 3))
    r, n = split_half_reliability(trials, ids, seed=1)
    assert n == n_images
    # two halves of 2 trials: reliability = s² / (s² + 1/2)
    np.testing.assert_allclose(r, [0.0, 1 / 1.5, 9 / 9.5], atol=0.1)
    with pytest.raises(ValueError, match="at least 3 images"):
        split_half_reliability(trials[:8], ids[:8])
