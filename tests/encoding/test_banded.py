"""Banded ridge and variance partitioning: equal to himalaya, to our plain ridge, and recovering a planted truth."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from encoding_sim import simulate

from bids_taskenc.encoding import fit_encoding_model, kfold_indices
from bids_taskenc.encoding.banded import (
    band_weight_grid,
    fit_banded_ridge,
    r2_split,
    unique_variance_test,
    variance_partitioning,
)


def two_sets(n_train=120, n_test=40, p=(6, 9), v=25, seed=0):
    """Two correlated feature sets with non-zero means; voxels from A-driven to B-driven."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    xa = rng.standard_normal((n, p[0])) * rng.uniform(0.5, 2, p[0]) + 1.0
    xb = rng.standard_normal((n, p[1])) + 0.5 * xa[:, :1]
    y = (
        xa @ rng.standard_normal((p[0], v)) * np.linspace(0, 1, v)
        + xb @ rng.standard_normal((p[1], v)) * np.linspace(1, 0, v) / 2
        + 3.0 * rng.standard_normal((n, v))
    )
    return xa[:n_train], xb[:n_train], y[:n_train], xa[n_train:], xb[n_train:], y[n_train:]


def planted(n_train=400, n_test=200, p=40, k=3, per=100, snr=0.6, seed=0, feature_noise=0.3):
    """Set A carries latents LA and LS, set B carries LB and LS; voxels driven by LA, LB, LS or nothing.

    Returns train/test features of both sets, responses, and each voxel's class
    (0 unique-A, 1 unique-B, 2 shared, 3 null).
    """
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    la, lb, ls = (rng.standard_normal((n, k)) for _ in range(3))
    xa = np.hstack([la, ls]) @ rng.standard_normal((2 * k, p)) + feature_noise * rng.standard_normal((n, p))
    xb = np.hstack([lb, ls]) @ rng.standard_normal((2 * k, p)) + feature_noise * rng.standard_normal((n, p))
    signal = np.hstack([lat @ rng.standard_normal((k, per)) for lat in (la, lb, ls)] + [np.zeros((n, per))])
    sd = signal.std(0)
    signal /= np.where(sd > 0, sd, 1.0)
    y = (snr * signal + rng.standard_normal(signal.shape)).astype(np.float32)
    truth = np.repeat(np.arange(4), per)
    tr, te = slice(0, n_train), slice(n_train, None)
    return [xa[tr], xb[tr]], y[tr], [xa[te], xb[te]], y[te], truth


def test_default_grid():
    g2 = band_weight_grid(2)
    assert g2.shape == (9, 2)
    np.testing.assert_allclose(g2.sum(1), 1.0)
    np.testing.assert_allclose(g2[0], [0.5, 0.5])
    ratios = np.sort(np.log10(g2[:, 1] / g2[:, 0]))  # log10(λ_A/λ_B)
    np.testing.assert_allclose(ratios, np.arange(-2, 2.01, 0.5), atol=1e-12)
    g3 = band_weight_grid(3)
    assert g3.shape == (19, 3) and len({tuple(np.round(r, 12)) for r in g3}) == 19
    np.testing.assert_allclose(g3[0], [1 / 3] * 3)
    assert band_weight_grid(1).tolist() == [[1.0]]
    with pytest.raises(ValueError):
        band_weight_grid(2, span=1.0, step=0.3)


@pytest.mark.parametrize("gram", ["features", "samples"])
def test_one_set_is_plain_ridge(gram):
    xtr, ytr, xte, yte = simulate(p=15, v=20)
    ref = fit_encoding_model(xtr, ytr, xte, yte, gram=gram, n_folds=5, precision="double")
    res = fit_banded_ridge([xtr], ytr, [xte], yte, band_weights=[[1.0]], gram=gram, n_folds=5, precision="double")
    np.testing.assert_array_equal(res.alpha, ref.alpha)
    np.testing.assert_allclose(res.r, ref.r, atol=1e-6)
    np.testing.assert_allclose(res.r2, ref.r2, atol=1e-6)
    np.testing.assert_allclose(res.cv_score, ref.cv_score, atol=1e-6)


def test_kernel_and_feature_branches_agree_with_standardisation():
    # per-fold standardisation through the samples-side kernels equals the features-side Gram
    xa, xb, y, xa_t, xb_t, y_t = two_sets()
    kw = dict(n_folds=4, precision="double", standardize=True, return_predictions=True)
    f = fit_banded_ridge([xa, xb], y, [xa_t, xb_t], y_t, gram="features", **kw)
    s = fit_banded_ridge([xa, xb], y, [xa_t, xb_t], y_t, gram="samples", **kw)
    np.testing.assert_array_equal(f.grid_index, s.grid_index)
    np.testing.assert_array_equal(f.alpha, s.alpha)
    np.testing.assert_allclose(f.predictions, s.predictions, atol=1e-4)
    np.testing.assert_allclose(f.split_r2, s.split_r2, atol=1e-5)


def test_voxel_batches_do_not_change_results():
    xa, xb, y, xa_t, xb_t, y_t = two_sets(v=40)
    # R² scoring in float64: Pearson r of very large alphas ties to rounding (the prediction's direction
    # converges as α grows), and a batch's matmul rounds differently
    kw = dict(n_folds=4, return_predictions=True, cv_score="r2", precision="double")
    one = fit_banded_ridge([xa, xb], y, [xa_t, xb_t], y_t, **kw)
    many = fit_banded_ridge([xa, xb], y, [xa_t, xb_t], y_t, mem_gb=2e-4, **kw)  # a few voxels a batch
    np.testing.assert_array_equal(one.grid_index, many.grid_index)
    np.testing.assert_array_equal(one.alpha, many.alpha)
    np.testing.assert_allclose(one.predictions, many.predictions, atol=1e-4)


# Pairwise, not the full 3 x 2 x 2 cross-product: every pair of (solver, score), (solver, side) and (score, side)
# occurs once. The solvers differ only in how the CV scores are computed, which
# test_cv_scores_equal_refitting_every_fold checks for the full cross-product against refitting every fold;
# the other six cases ran no line these six do not (pytest-cov).
@pytest.mark.parametrize(
    "p, gram, score, solver",
    [
        ((6, 9), "features", "r2", "per-fold"),
        ((60, 90), "samples", "r", "per-fold"),
        ((6, 9), "features", "r", "hold-out"),
        ((60, 90), "samples", "r2", "hold-out"),
        ((6, 9), "features", "r2", "cholesky"),
        ((60, 90), "samples", "r", "cholesky"),
    ],
)
def test_matches_himalaya_multiple_kernel_ridge(p, gram, score, solver):
    pytest.importorskip("himalaya")
    from himalaya.backend import set_backend
    from himalaya.kernel_ridge import MultipleKernelRidgeCV
    from himalaya.scoring import correlation_score
    from himalaya.scoring import r2_score as h_r2

    set_backend("numpy")
    xa, xb, y, xa_t, xb_t, y_t = two_sets(p=p)
    grid = band_weight_grid(2)
    alphas = np.logspace(-1, 4, 11)
    # himalaya centres kernels per fold (fit_intercept) and does not scale: standardize=False
    ours = fit_banded_ridge(
        [xa, xb],
        y,
        [xa_t, xb_t],
        y_t,
        band_weights=grid,
        alphas=alphas,
        n_folds=5,
        cv_score=score,
        standardize=False,
        gram=gram,
        precision="double",
        return_predictions=True,
        cv_solver=solver,
    )
    assert ours.cv_scheme == "kfold"
    folds = kfold_indices(y.shape[0], 5, seed=0)
    model = MultipleKernelRidgeCV(
        kernels="precomputed",
        solver="random_search",
        fit_intercept=True,
        cv=folds,
        solver_params=dict(
            n_iter=grid, alphas=alphas, score_func=h_r2 if score == "r2" else correlation_score, progress_bar=False
        ),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(np.stack([xa @ xa.T, xb @ xb.T]), y)
        pred = model.predict(np.stack([xa_t @ xa.T, xb_t @ xb.T]))
    kernel_weights = np.exp(model.deltas_)  # γ/α
    h_alpha = 1.0 / kernel_weights.sum(0)
    np.testing.assert_allclose(ours.alpha, h_alpha, rtol=1e-6)
    np.testing.assert_allclose(ours.band_weights, (kernel_weights * h_alpha).T, rtol=1e-5)
    np.testing.assert_allclose(ours.deltas, model.deltas_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.cv_scores_per_weight, model.cv_scores_, atol=1e-6)
    np.testing.assert_allclose(ours.predictions, pred, rtol=1e-5, atol=1e-5 * np.abs(pred).max())
    assert len(np.unique(ours.grid_index)) > 2  # voxels chose different ratios: the check has teeth


def test_matches_himalaya_banded_ridge():
    pytest.importorskip("himalaya")
    from himalaya.backend import set_backend
    from himalaya.ridge import BandedRidgeCV
    from himalaya.scoring import r2_score as h_r2

    set_backend("numpy")
    xa, xb, y, xa_t, xb_t, y_t = two_sets()
    grid = band_weight_grid(2)
    alphas = np.logspace(-1, 4, 11)
    ours = fit_banded_ridge(
        [xa, xb],
        y,
        [xa_t, xb_t],
        y_t,
        band_weights=grid,
        alphas=alphas,
        n_folds=5,
        cv_score="r2",
        standardize=False,
        precision="double",
        return_predictions=True,
    )
    model = BandedRidgeCV(
        groups="input",
        solver="random_search",
        fit_intercept=True,
        cv=kfold_indices(y.shape[0], 5, seed=0),
        solver_params=dict(n_iter=grid, alphas=alphas, score_func=h_r2, progress_bar=False),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit([xa, xb], y)
        pred = model.predict([xa_t, xb_t])
    np.testing.assert_allclose(ours.deltas, model.deltas_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.predictions, pred, rtol=1e-5, atol=1e-5 * np.abs(pred).max())


def test_split_equals_himalaya_and_sums_to_the_centred_joint_r2():
    pytest.importorskip("himalaya")
    from himalaya.backend import set_backend
    from himalaya.scoring import r2_score_split

    set_backend("numpy")
    rng = np.random.default_rng(3)
    y = rng.standard_normal((50, 7))
    parts = rng.standard_normal((3, 50, 7)) * 0.4 + 0.3 * y
    y -= y.mean(0)
    parts -= parts.mean(1, keepdims=True)
    np.testing.assert_allclose(r2_split(y, parts), r2_score_split(y, parts), atol=1e-12)

    # the engine's split: per-set shares of the refit predictions, summing to the R² of the centred joint prediction
    xa, xb, yt, xa_t, xb_t, y_t = two_sets()
    res = fit_banded_ridge([xa, xb], yt, [xa_t, xb_t], y_t, n_folds=4, return_predictions=True)
    yc = y_t - y_t.mean(0)
    pc = res.predictions - res.predictions.mean(0)
    r2_centred = 1.0 - ((yc - pc) ** 2).sum(0) / (yc**2).sum(0)
    np.testing.assert_allclose(res.split_r2.sum(0), r2_centred, atol=1e-4)


def test_planted_truth_is_recovered():
    train, y, test, y_t, truth = planted()
    res = variance_partitioning(train, y, test, y_t, set_names=("A", "B"))
    sig = res.unique_q < 0.05
    for b in (0, 1):
        power = sig[b][truth == b].mean()
        fdp = (sig[b] & (truth != b)).sum() / max(1, sig[b].sum())
        assert power >= 0.9, (b, power)
        assert fdp <= 0.1, (b, fdp)
        assert res.unique_r2[b][truth == b].mean() > 0.15
        for c in {0, 1, 2, 3} - {b}:  # no unique variance of b where it carries nothing of its own
            assert abs(res.unique_r2[b][truth == c].mean()) < 0.05, (b, c)
    assert res.shared_r2[truth == 2].mean() > 0.15
    for c in (0, 1, 3):  # chosen by r instead of R², these were -0.04 to -0.06 (noisy reduced models)
        assert abs(res.shared_r2[truth == c].mean()) < 0.03, c
    np.testing.assert_allclose(res.shared_r2, res.joint.r2 - res.unique_r2.sum(0), atol=1e-6)
    np.testing.assert_allclose(res.unique_r2, res.joint.r2 - res.reduced_r2, atol=1e-6)
    # null voxels: rejected per set at most at about BH's level (the FDP above bounds them all)
    assert (sig[:, truth == 3].mean(1) <= 0.08).all(), sig[:, truth == 3].mean(1)
    for b in (0, 1):
        assert abs(res.unique_r2[b][truth == 3].mean()) < 0.02
    # the split gives each set its own voxels
    assert res.split_r2[0][truth == 0].mean() > 0.15 > abs(res.split_r2[1][truth == 0].mean())
    assert res.split_r2[1][truth == 1].mean() > 0.15 > abs(res.split_r2[0][truth == 1].mean())


def test_unique_test_is_calibrated_without_unique_signal():
    # where a set has no variance of its own (the other set's voxels, shared, null) p is ~uniform
    train, y, test, y_t, truth = planted(per=400, seed=5)
    res = variance_partitioning(train, y, test, y_t)
    for b in (0, 1):
        for c in {0, 1, 2, 3} - {b}:
            p = res.unique_p[b][truth == c]
            assert 0.02 <= (p < 0.05).mean() <= 0.085, (b, c, (p < 0.05).mean())
            assert 0.35 <= np.median(p) <= 0.7, (b, c, np.median(p))


def test_unique_variance_test_basics():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((80, 3))
    good = y + 0.5 * rng.standard_normal((80, 3))
    bad = rng.standard_normal((80, 3))
    t, p = unique_variance_test(y, good, bad)
    assert (p < 1e-6).all() and (t > 0).all()
    t, p = unique_variance_test(y, bad, good)
    assert (p > 0.999).all()
    t, p = unique_variance_test(y, good, good)
    assert (p == 1).all() and (t == 0).all()


def test_three_sets_partitioning():
    rng = np.random.default_rng(1)
    n, nt = 150, 60
    xs = [rng.standard_normal((n + nt, 8)) for _ in range(3)]
    y = xs[0] @ rng.standard_normal((8, 12)) + 2.0 * rng.standard_normal((n + nt, 12))
    res = variance_partitioning([x[:n] for x in xs], y[:n], [x[n:] for x in xs], y[n:], n_folds=3)
    assert res.joint.grid.shape == (19, 3)
    assert all(r.grid.shape == (5, 2) for r in res.reduced)  # same decade steps for the reduced models
    assert res.unique_r2.shape == (3, 12)
    assert res.unique_r2[0].mean() > 0.3 and (res.unique_q[0] < 0.05).all()
    np.testing.assert_allclose(res.shared_r2, res.joint.r2 - res.unique_r2.sum(0), atol=1e-6)


def test_bad_inputs():
    xa, xb, y, xa_t, xb_t, y_t = two_sets()
    with pytest.raises(ValueError, match="same number of samples"):
        fit_banded_ridge([xa, xb[:-1]], y, [xa_t, xb_t], y_t)
    with pytest.raises(ValueError, match="band_weights"):
        fit_banded_ridge([xa, xb], y, [xa_t, xb_t], y_t, band_weights=[[1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="at least two"):
        variance_partitioning([xa], y, [xa_t], y_t)


@pytest.mark.parametrize("gram", ["features", "samples"])
def test_a_zero_band_weight_removes_the_set(gram):
    xa, xb, y, xa_t, xb_t, y_t = two_sets()
    kw = dict(n_folds=4, gram=gram, precision="double", return_predictions=True)
    off = fit_banded_ridge([xa, xb], y, [xa_t, xb_t], y_t, band_weights=[[1.0, 0.0]], **kw)
    alone = fit_banded_ridge([xa], y, [xa_t], y_t, band_weights=[[1.0]], **kw)
    np.testing.assert_array_equal(off.alpha, alone.alpha)
    np.testing.assert_allclose(off.predictions, alone.predictions, atol=1e-4)
    np.testing.assert_allclose(off.split_r2[1], 0.0, atol=1e-6)
    assert np.isinf(off.band_penalties[:, 1]).all()


@pytest.mark.parametrize("gram", ["features", "samples"])
def test_fast_precision_float32_eigh_matches_exact(gram):
    """precision='fast' diagonalises in float32: same (γ, α) choices and test r as 'exact', to rounding."""
    xa, xb, ytr, ta, tb, yte = two_sets(n_train=300, n_test=60, p=(40, 50), v=60, seed=3)
    kw = dict(n_folds=4, gram=gram, return_predictions=True)
    exact = fit_banded_ridge([xa, xb], ytr, [ta, tb], yte, precision="exact", **kw)
    fast = fit_banded_ridge([xa, xb], ytr, [ta, tb], yte, precision="fast", **kw)
    same = (exact.grid_index == fast.grid_index) & (exact.alpha == fast.alpha)
    assert same.mean() >= 0.95
    np.testing.assert_allclose(fast.r[same], exact.r[same], atol=1e-4)
    np.testing.assert_allclose(fast.cv_scores_per_weight, exact.cv_scores_per_weight, atol=1e-4)


def test_kernel_basis_summed_validation_kernel():
    """The CV folds' u (validation kernels summed before the product) equals the refit's sum of per-set shares."""
    import torch

    from bids_taskenc.encoding.banded.kernels import _kernel_basis

    rng = np.random.default_rng(0)
    xa, xb = torch.from_numpy(rng.standard_normal((30, 5))), torch.from_numpy(rng.standard_normal((30, 7)))
    va, vb = torch.from_numpy(rng.standard_normal((8, 5))), torch.from_numpy(rng.standard_normal((8, 7)))
    kernels = [(xa @ xa.T, va @ xa.T), (xb @ xb.T, vb @ xb.T)]
    one = _kernel_basis(kernels, [0.3, 0.7], torch.float64)
    both, shares = _kernel_basis(kernels, [0.3, 0.7], torch.float64, band_u=True)
    torch.testing.assert_close(one.u, both.u)
    torch.testing.assert_close(sum(shares), both.u)


def _brute_force_cv(xs, y, folds, grid, alphas, cv_score):
    """Mean CV score (n_grid, n_alphas, v), each fold refit from scratch on its centred training part."""
    out = np.zeros((len(grid), len(alphas), y.shape[1]))
    for g, gamma in enumerate(grid):
        x = np.hstack([np.sqrt(gm) * xb for gm, xb in zip(gamma, xs)])
        for a, alpha in enumerate(alphas):
            for tr, va in folds:
                mx, my = x[tr].mean(0), y[tr].mean(0)
                xt, xv = x[tr] - mx, x[va] - mx
                w = np.linalg.solve(xt.T @ xt + alpha * np.eye(x.shape[1]), xt.T @ (y[tr] - my))
                pred, yv = xv @ w + my, y[va]
                if cv_score == "r":
                    s = [np.corrcoef(pred[:, j], yv[:, j])[0, 1] for j in range(y.shape[1])]
                else:
                    s = 1 - ((yv - pred) ** 2).sum(0) / ((yv - yv.mean(0)) ** 2).sum(0)
                out[g, a] += np.asarray(s) / len(folds)
    return out


@pytest.mark.parametrize("solver", ["per-fold", "hold-out", "cholesky"])
@pytest.mark.parametrize("score", ["r", "r2"])
@pytest.mark.parametrize("p, gram", [((5, 7), "features"), ((40, 50), "samples")])
def test_cv_scores_equal_refitting_every_fold(p, gram, score, solver):
    """Every CV solver (hold-out, cholesky: every fold from the whole training set's model) equals refitting each fold.

    Leave-one-group-out with uneven groups, so the folds differ in size; wide sets (samples side) interpolate in
    every fold at the smallest alphas.
    """
    xa, xb, y, xa_t, xb_t, y_t = two_sets(n_train=70, n_test=20, p=p, v=6, seed=4)
    groups = np.repeat(np.arange(4), [10, 15, 20, 25])
    grid = band_weight_grid(2)
    alphas = np.logspace(-2, 4, 7)
    res = fit_banded_ridge(
        [xa, xb],
        y,
        [xa_t, xb_t],
        y_t,
        band_weights=grid,
        alphas=alphas,
        groups=groups,
        cv_score=score,
        standardize=False,
        gram=gram,
        precision="double",
        cv_solver=solver,
    )
    brute = _brute_force_cv([xa, xb], y, kfold_indices(70, groups=groups), grid, alphas, score)
    np.testing.assert_allclose(res.cv_scores_per_weight, brute.max(1), atol=1e-8)
    best = brute.max(1).argmax(0)
    np.testing.assert_array_equal(res.grid_index, best)
    a_idx = (len(alphas) - 1) - np.argmax(brute[best, ::-1, np.arange(6)], axis=1)
    np.testing.assert_allclose(res.alpha, alphas[a_idx], rtol=1e-6)


def test_hold_out_cv_fast_precision_matches_double_when_folds_interpolate():
    """precision='fast' (float32 products, float64 decomposition and fold systems) in the p > n regime."""
    xa, xb, ytr, ta, tb, yte = two_sets(n_train=200, n_test=50, p=(150, 150), v=60, seed=5)
    kw = dict(
        n_folds=5,
        gram="samples",
        standardize=False,
        cv_score="r2",
        alphas=np.logspace(-2, 6, 17),
        return_predictions=True,
        cv_solver="hold-out",
    )
    double = fit_banded_ridge([xa, xb], ytr, [ta, tb], yte, precision="double", **kw)
    fast = fit_banded_ridge([xa, xb], ytr, [ta, tb], yte, precision="fast", **kw)
    same = (double.grid_index == fast.grid_index) & (double.alpha == fast.alpha)
    assert same.mean() >= 0.95
    np.testing.assert_allclose(fast.cv_scores_per_weight, double.cv_scores_per_weight, atol=1e-4)
    np.testing.assert_allclose(fast.r[same], double.r[same], atol=1e-4)


def test_cholesky_solver_is_float64_in_every_precision():
    """cv_solver='cholesky' factors in float64 whatever the precision: 'fast' makes the same choices as 'double'
    (the hold-out solver's float32 products move its CV scores by up to ~1e-4 here)."""
    xa, xb, ytr, ta, tb, yte = two_sets(n_train=200, n_test=50, p=(150, 150), v=60, seed=5)
    kw = dict(n_folds=5, standardize=False, alphas=np.logspace(-2, 6, 17), return_predictions=True)
    double = fit_banded_ridge([xa, xb], ytr, [ta, tb], yte, precision="double", cv_solver="per-fold", **kw)
    fast = fit_banded_ridge([xa, xb], ytr, [ta, tb], yte, precision="fast", cv_solver="cholesky", **kw)
    np.testing.assert_array_equal(fast.grid_index, double.grid_index)
    np.testing.assert_array_equal(fast.alpha, double.alpha)
    np.testing.assert_allclose(fast.cv_scores_per_weight, double.cv_scores_per_weight, atol=1e-6)
    np.testing.assert_allclose(fast.split_r2, double.split_r2, atol=1e-5)
    np.testing.assert_allclose(fast.predictions, double.predictions, rtol=1e-5, atol=1e-5)
    assert fast.metadata()["CVSolver"] == "cholesky" and len(np.unique(fast.grid_index)) > 2


def test_cholesky_solver_batches_voxels_without_changing_results():
    xa, xb, y, xa_t, xb_t, y_t = two_sets(v=40)
    kw = dict(standardize=False, cv_solver="cholesky", precision="double", cv_score="r2", return_predictions=True)
    one = fit_banded_ridge([xa, xb], y, [xa_t, xb_t], y_t, **kw)
    # 10 batches of 4 voxels (1e-4 GB made 40 batches of one voxel, 15 times slower, and ran no other line)
    many = fit_banded_ridge([xa, xb], y, [xa_t, xb_t], y_t, mem_gb=1e-3, **kw)
    np.testing.assert_array_equal(one.grid_index, many.grid_index)
    np.testing.assert_array_equal(one.alpha, many.alpha)
    np.testing.assert_allclose(one.predictions, many.predictions, rtol=1e-6, atol=1e-6)


def test_hold_out_solver_needs_unscaled_features():
    xa, xb, y, xa_t, xb_t, y_t = two_sets()
    for solver in ("hold-out", "cholesky"):
        with pytest.raises(ValueError, match="standardize=False"):
            fit_banded_ridge([xa, xb], y, [xa_t, xb_t], y_t, cv_solver=solver)
    with pytest.raises(ValueError, match="cv_solver"):
        fit_banded_ridge([xa, xb], y, [xa_t, xb_t], y_t, cv_solver="fast")
