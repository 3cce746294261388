"""NSD noise ceiling on simulated repeats with known signal and noise variance."""

import numpy as np
import pytest

from bids_taskenc.encoding import noise_ceiling, noise_normalized_r2


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


def test_noise_normalized_r2():
    out = noise_normalized_r2(np.array([0.1, 0.2, 0.3, 0.1]), np.array([0.5, 0.0, np.nan, 0.25]))
    np.testing.assert_allclose(out[[0, 3]], [0.2, 0.4])
    assert np.isnan(out[1]) and np.isnan(out[2])


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
