"""Held-out statistics: analytic and permutation p-values, FDR, NaN safety."""

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from bids_taskenc.encoding import analytic_p, fdr_bh, fit_encoding_model, pearson_r, r2_score


def test_analytic_p_matches_scipy_one_sided():
    rng = np.random.default_rng(0)
    n = 25
    a = rng.standard_normal((n, 40))
    b = a * np.linspace(-1, 1, 40) + rng.standard_normal((n, 40))
    r = pearson_r(a, b)
    expected = [stats.pearsonr(a[:, j], b[:, j], alternative="greater").pvalue for j in range(40)]
    np.testing.assert_allclose(analytic_p(r, n), expected, rtol=1e-9, atol=1e-15)
    assert analytic_p(np.array([1.0, -1.0, np.nan]), n).tolist() == [0.0, 1.0, 1.0]
    with pytest.raises(ValueError, match=">= 3"):
        analytic_p(r, 2)


def test_pearson_and_r2_column_wise():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((30, 5)), rng.standard_normal((30, 5))
    np.testing.assert_allclose(pearson_r(a, b), [np.corrcoef(a[:, j], b[:, j])[0, 1] for j in range(5)])
    a[:, 2] = 1.0
    assert np.isnan(pearson_r(a, b)[2]) and np.isnan(r2_score(a, b)[2])
    np.testing.assert_allclose(
        r2_score(b, a)[[0, 1]],
        [1 - ((b[:, j] - a[:, j]) ** 2).sum() / ((b[:, j] - b[:, j].mean()) ** 2).sum() for j in (0, 1)],
    )


def test_fdr_bh_matches_statsmodels_and_keeps_nan():
    rng = np.random.default_rng(2)
    p = rng.uniform(size=200) ** 3
    np.testing.assert_allclose(fdr_bh(p), multipletests(p, method="fdr_bh")[1])
    p_nan = p.copy()
    p_nan[::7] = np.nan
    q = fdr_bh(p_nan)
    assert np.isnan(q[::7]).all()
    finite = ~np.isnan(p_nan)
    np.testing.assert_allclose(q[finite], multipletests(p_nan[finite], method="fdr_bh")[1])
    assert np.isnan(fdr_bh(np.full(3, np.nan))).all()
    with pytest.raises(ValueError):
        fdr_bh(np.array([0.5, 1.5]))


def _null_and_signal(n_null, n_signal, seed, n_train=120, n_test=60, p=10, amplitude=0.6):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_train + n_test, p))
    Y = rng.standard_normal((n_train + n_test, n_null + n_signal))
    Y[:, n_null:] += amplitude * X @ rng.standard_normal((p, n_signal)) / np.sqrt(p)
    Y = Y.astype(np.float32)
    return X[:n_train], Y[:n_train], X[n_train:], Y[n_train:]


def test_permutation_p_uniform_under_null():
    Xtr, Ytr, Xte, Yte = _null_and_signal(2000, 0, seed=3)
    res = fit_encoding_model(Xtr, Ytr, Xte, Yte, alphas=np.logspace(0, 4, 5), n_permutations=199, seed=3)
    assert res.p_method == "permutation" and res.p_permutation is not None
    assert stats.kstest(res.p_permutation, "uniform").pvalue > 0.01
    assert stats.kstest(res.p_analytic, "uniform").pvalue > 0.01
    # permutation and analytic p agree closely on Gaussian data
    assert np.corrcoef(res.p_permutation, res.p_analytic)[0, 1] > 0.98
    np.testing.assert_array_equal(res.p, res.p_permutation)
    # p-values live on the (1 + k) / (1 + N) grid
    k = res.p_permutation.astype(np.float64) * 200 - 1
    np.testing.assert_allclose(k, np.round(k), atol=1e-3)


def test_fdr_controls_false_discoveries_and_has_power():
    fdps, powers = [], []
    n_null, n_signal = 900, 100
    for seed in range(6):
        Xtr, Ytr, Xte, Yte = _null_and_signal(n_null, n_signal, seed=10 + seed, amplitude=0.8)
        res = fit_encoding_model(Xtr, Ytr, Xte, Yte, alphas=np.logspace(0, 4, 5), fdr_alpha=0.1)
        sig = res.significant
        fdps.append(sig[:n_null].sum() / max(sig.sum(), 1))
        powers.append(sig[n_null:].mean())
    assert np.mean(fdps) <= 0.1 + 0.03
    assert np.mean(powers) > 0.9


def test_constant_voxels_get_r0_p1():
    Xtr, Ytr, Xte, Yte = _null_and_signal(5, 5, seed=4, amplitude=2.0)
    Ytr[:, 0] = 3.0  # constant in training: prediction is constant
    Yte[:, 1] = -1.0  # constant in test
    Ytr[:, 2] = 0.0
    Yte[:, 2] = 0.0
    res = fit_encoding_model(Xtr, Ytr, Xte, Yte, n_permutations=50)
    for arr in (res.r, res.r2, res.p, res.q, res.p_analytic, res.p_permutation, res.cv_score):
        assert np.isfinite(arr).all()
    assert res.r[:3].tolist() == [0.0, 0.0, 0.0]
    assert res.p[:3].tolist() == [1.0, 1.0, 1.0] and res.p_analytic[:3].tolist() == [1.0, 1.0, 1.0]
    # constant in every training fold -> all alphas tie at 0 -> the largest alpha
    assert res.alpha[0] == res.alphas.max() and res.alpha[2] == res.alphas.max()
    assert (res.q[5:] < 0.05).all()


@pytest.mark.parametrize("precision", ["exact", "fast"])
def test_constant_voxels_exact_whatever_the_rounding_of_their_mean(precision):
    """Constants whose mean does not round back to them (on any CPU) still give r = 0, p = 1.

    The centred residue of such a column used to survive the tolerance check as a
    tiny non-zero r (-1.4e-14 on some CPUs); the rule is now max == min, exact.
    """
    Xtr, Ytr, Xte, Yte = _null_and_signal(6, 4, seed=5, n_test=50, amplitude=2.0)
    Ytr[:, 0] = 123.456  # constant in training
    Yte[:, 1] = 123.456  # constant in test
    Yte[:, 2] = 2.7182818
    Ytr[:, 3], Yte[:, 3] = 0.7, 0.7
    res = fit_encoding_model(Xtr, Ytr, Xte, Yte, precision=precision)
    assert res.r[:4].tolist() == [0.0] * 4
    assert res.r2[1:4].tolist() == [0.0] * 3
    assert res.p[:4].tolist() == [1.0] * 4 and res.p_analytic[:4].tolist() == [1.0] * 4
    assert (res.q[6:] < 0.05).all()
