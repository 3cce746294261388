"""The engine's options that make Wang et al.'s (2019) choices: the alpha grid rule, centring only, one 85/15
validation split, the negative-MSE criterion, two-sided p (analytic and permutation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats as sps

from bids_taskenc.encoding import fit_encoding_model
from bids_taskenc.encoding.alphas import ALPHA_GRIDS, alpha_grid, paper_alphas
from bids_taskenc.encoding.cv import validation_split_indices
from bids_taskenc.encoding.ridge import CV_SCORES
from bids_taskenc.encoding.stats import analytic_p, make_permutations, permutation_counts_torch, unit_columns_torch


def test_paper_grid_has_100_values_from_1e_minus_8_to_1e8_sqrt_p():
    for p in (1, 32, 2048):
        grid = paper_alphas(p)
        assert grid.shape == (100,)
        assert grid[0] == pytest.approx(1e-8, rel=1e-12)
        assert grid[-1] == pytest.approx(1e8 * np.sqrt(p), rel=1e-12)
        assert np.allclose(np.diff(np.log10(grid)), (np.log10(grid[-1]) + 8) / 99)
    assert np.array_equal(alpha_grid("paper", 2048), np.logspace(-8, 0.5 * np.log10(2048) + 8, 100))
    assert np.array_equal(alpha_grid("fixed", 2048, (1.0, 10.0)), [1.0, 10.0])
    assert set(ALPHA_GRIDS) == {"fixed", "paper"}
    with pytest.raises(ValueError, match="alpha grid must be one of"):
        alpha_grid("log", 10)


def test_validation_split_is_sklearns_shufflesplit_size_and_seeded():
    from sklearn.model_selection import ShuffleSplit

    for n in (20, 100, 4179, 4916):
        ((train, val),) = validation_split_indices(n, 0.15, seed=3)
        ref_train, ref_val = next(ShuffleSplit(test_size=0.15, random_state=0).split(np.zeros(n)))
        assert (len(train), len(val)) == (len(ref_train), len(ref_val))  # ceil(0.15 n) validate
        assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(n))
    assert len(validation_split_indices(100, 0.15)[0][1]) == 15
    a, b = validation_split_indices(50, 0.15, seed=1), validation_split_indices(50, 0.15, seed=1)
    assert np.array_equal(a[0][1], b[0][1])
    assert not np.array_equal(a[0][1], validation_split_indices(50, 0.15, seed=2)[0][1])


def _data(n=120, p=8, v=30, seed=0, scale=None):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)) * (scale if scale is not None else 1.0) + 5.0
    w = rng.normal(size=(p, v))
    y = ((x - 5.0) / (scale if scale is not None else 1.0)) @ w * 0.3 + rng.normal(size=(n, v))
    return x[:100], y[:100], x[100:], y[100:]


def test_centring_only_leaves_the_scale_of_the_features():
    scale = np.array([1.0, 10.0, 0.1, 3.0, 1.0, 100.0, 1.0, 0.5])
    xtr, ytr, xte, yte = _data(scale=scale)
    centred = fit_encoding_model(xtr, ytr, xte, yte, alphas=[10.0], standardize=False)
    scaled = fit_encoding_model(xtr, ytr, xte, yte, alphas=[10.0], standardize=True)
    assert np.allclose(centred.feature_mean, xtr.mean(0))
    assert np.array_equal(centred.feature_scale, np.ones(8))
    assert np.allclose(scaled.feature_scale, xtr.std(0))
    # ridge on the raw (centred) features: the closed form with X - mean, not (X - mean) / sd
    xc = xtr - xtr.mean(0)
    w = np.linalg.solve(xc.T @ xc + 10.0 * np.eye(8), xc.T @ (ytr - ytr.mean(0)))
    pred = (xte - xtr.mean(0)) @ w + ytr.mean(0)
    r = [np.corrcoef(pred[:, j], yte[:, j])[0, 1] for j in range(yte.shape[1])]
    assert np.allclose(centred.r, r, atol=1e-5)
    assert not np.allclose(scaled.r, r, atol=1e-3)


def test_holdout_scheme_chooses_alpha_on_one_split_by_negative_mse():
    xtr, ytr, xte, yte = _data(seed=2)
    alphas = np.logspace(-2, 4, 13)
    res = fit_encoding_model(xtr, ytr, xte, yte, alphas=alphas, validation_fraction=0.15, cv_score="negmse", seed=4)
    assert res.cv_scheme == "holdout" and res.n_folds == 1 and res.metadata()["ValidationFraction"] == 0.15
    assert res.metadata()["CVScore"] == "negative mean squared error"
    ((tr, va),) = validation_split_indices(100, 0.15, seed=4)
    # the criterion by hand: centred ridge on the split's training part, MSE on its validation part
    mse = np.empty((alphas.size, ytr.shape[1]))
    for i, a in enumerate(alphas):
        x_mean, y_mean = xtr[tr].mean(0), ytr[tr].mean(0)
        xs = (xtr[tr] - x_mean) / xtr[tr].std(0)
        w = np.linalg.solve(xs.T @ xs + a * np.eye(xs.shape[1]), xs.T @ (ytr[tr] - y_mean))
        pred = ((xtr[va] - x_mean) / xtr[tr].std(0)) @ w + y_mean
        mse[i] = ((pred - ytr[va]) ** 2).mean(0)
    assert np.allclose(res.cv_scores_per_alpha, -mse, rtol=1e-4, atol=1e-6)
    assert np.array_equal(res.alpha, alphas[np.argmin(mse, axis=0)].astype(np.float32))
    assert "negmse" in CV_SCORES
    with pytest.raises(ValueError, match="not both"):
        fit_encoding_model(xtr, ytr, xte, yte, validation_fraction=0.15, groups=np.arange(100) % 3)


def test_two_sided_p_equals_scipy_pearsonr():
    rng = np.random.default_rng(5)
    n = 12
    a = rng.normal(size=(n, 6))
    b = a * np.array([0.0, 0.3, -0.3, 1.0, -1.0, 0.1]) + rng.normal(size=(n, 6))
    r = np.array([sps.pearsonr(a[:, j], b[:, j])[0] for j in range(6)])
    p_ref = np.array([sps.pearsonr(a[:, j], b[:, j])[1] for j in range(6)])
    assert np.allclose(analytic_p(r, n, "two-sided"), p_ref, rtol=1e-8)
    one = np.array([sps.pearsonr(a[:, j], b[:, j], alternative="greater")[1] for j in range(6)])
    assert np.allclose(analytic_p(r, n), one, rtol=1e-8)
    with pytest.raises(ValueError, match="sides must be one of"):
        analytic_p(r, n, "greater")


def test_fit_records_two_sided_p():
    xtr, ytr, xte, yte = _data(seed=6)
    res = fit_encoding_model(xtr, ytr, xte, yte, alphas=[1.0, 100.0], p_sides="two-sided", return_predictions=True)
    ref = np.array([sps.pearsonr(res.predictions[:, j], yte[:, j])[1] for j in range(yte.shape[1])])
    assert np.allclose(res.p, ref, rtol=1e-3, atol=1e-7)
    assert res.metadata()["PValueSides"] == "two-sided (r != 0)"
    one = fit_encoding_model(xtr, ytr, xte, yte, alphas=[1.0, 100.0])
    assert one.metadata()["PValueSides"] == "one-sided (r > 0)"
    assert np.all(one.p[one.r > 0] < res.p[one.r > 0])


def test_permutation_p_two_sided_is_seeded_and_calibrated_on_null_data():
    rng = np.random.default_rng(7)
    n, v, n_perm = 30, 400, 199
    y = torch.from_numpy(rng.normal(size=(n, v)))
    pred = torch.from_numpy(rng.normal(size=(n, v)))
    yz, _ = unit_columns_torch(y)
    pz, _ = unit_columns_torch(pred)
    r = (yz * pz).sum(0)
    perms = torch.from_numpy(make_permutations(n, n_perm, seed=11))
    assert np.array_equal(make_permutations(n, n_perm, seed=11), make_permutations(n, n_perm, seed=11))
    counts = permutation_counts_torch(yz, pz, r, perms, 10**6, sides="two-sided")
    p = (1.0 + counts.numpy()) / (1.0 + n_perm)
    again = permutation_counts_torch(yz, pz, r, perms, 10**6, sides="two-sided")
    assert torch.equal(counts, again)
    # calibrated: under the null about 5 % (10 %) below 0.05 (0.10); 400 voxels, seed 7: binomial SD ~1.1 (1.5) %
    assert 0.02 <= np.mean(p <= 0.05) <= 0.08
    assert 0.06 <= np.mean(p <= 0.10) <= 0.14
    # and close to the analytic two-sided p
    assert np.corrcoef(p, analytic_p(r.numpy(), n, "two-sided"))[0, 1] > 0.95
    # a strong negative correlation is significant two-sided, not one-sided
    neg = -yz[:, :1]
    r_neg = (yz[:, :1] * neg).sum(0)
    assert int(permutation_counts_torch(yz[:, :1], neg, r_neg, perms, 10**6, sides="two-sided")[0]) == 0
    assert int(permutation_counts_torch(yz[:, :1], neg, r_neg, perms, 10**6)[0]) == n_perm


def test_two_sided_p_does_not_count_anti_predicted_voxels_as_predicted():
    """With --p-sides two-sided a voxel the model anti-predicts (test r strongly negative) reaches q below the
    level; it stays in the p and q maps but is not a predicted voxel (review: it entered the counts, the
    thresholded maps and the group similarity as a negative value)."""
    from bids_taskenc.encoding import fit_encoding_model

    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    w = rng.standard_normal(5)
    signal = X @ w
    Y = np.stack([signal, signal, rng.standard_normal(300)], axis=1) + 0.3 * rng.standard_normal((300, 3))
    Y[240:, 1] = -signal[240:] + 0.3 * rng.standard_normal(60)  # voxel 1: flipped on the test images
    res = fit_encoding_model(X[:240], Y[:240], X[240:], Y[240:], n_folds=3, p_sides="two-sided", seed=0)
    assert res.r[0] > 0.5 and res.r[1] < -0.5
    assert res.q[1] < 0.05, "two-sided: the anti-predicted voxel is significant in the q map"
    assert res.significant.tolist() == [True, False, False]
