"""Per-voxel alphas and CV scores equal a brute-force loop and himalaya's RidgeCV."""

import functools

import numpy as np
import pytest
from encoding_sim import simulate
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bids_taskenc.encoding import fit_encoding_model, kfold_indices

ALPHAS = np.logspace(-1, 5, 7)


def _score(y, pred, kind):
    if kind == "r2":
        return r2_score(y, pred, multioutput="raw_values")
    return np.array([np.corrcoef(y[:, j], pred[:, j])[0, 1] for j in range(y.shape[1])])


def brute_force_cv(X, Y, folds, alphas, kind, standardize=True):
    """Mean validation score [n_alphas, v], one sklearn model per fold and alpha, per voxel."""
    Y = Y.astype(np.float64)
    scores = np.zeros((len(alphas), Y.shape[1]))
    for train, val in folds:
        for i, alpha in enumerate(alphas):
            for j in range(Y.shape[1]):
                steps = [StandardScaler()] if standardize else []
                model = make_pipeline(*steps, Ridge(alpha=alpha)).fit(X[train], Y[train, j])
                scores[i, j] += _score(Y[val, j : j + 1], model.predict(X[val])[:, None], kind)[0]
    return scores / len(folds)


@functools.cache
def _cached_case(n_train, p, kind):
    """Data and brute-force scores shared by the gram variants of one case."""
    Xtr, Ytr, Xte, Yte = simulate(n_train=n_train, p=p, v=9, seed=3)
    folds = kfold_indices(n_train, 4, seed=5)
    return (Xtr, Ytr, Xte, Yte), brute_force_cv(Xtr, Ytr, folds, ALPHAS, kind)


def _best(scores, alphas):
    # ties -> larger alpha
    return alphas[scores.shape[0] - 1 - np.argmax(scores[::-1], axis=0)]


def assert_best_alpha(chosen, scores, alphas, tol):
    """``chosen`` is the brute-force best alpha of every voxel; where two alphas' scores lie within ``tol``
    (rounding decides between them on another CPU or BLAS) it is one of those tied best alphas."""
    chosen = np.asarray(chosen, dtype=np.float64)
    best = _best(scores, alphas)
    tied = scores >= scores.max(0) - tol  # (n_alphas, n_voxels): alphas as good as the best
    clear = tied.sum(0) == 1
    np.testing.assert_array_equal(chosen[clear].astype(np.float32), best[clear].astype(np.float32))
    index = np.abs(np.log(np.asarray(alphas))[:, None] - np.log(chosen)[None, :]).argmin(0)  # chosen is float32
    assert np.all(tied[index, np.arange(chosen.size)]), "a voxel's alpha is not among its best"


@pytest.mark.parametrize("n_train,p", [(84, 12), (42, 70)], ids=["n>p", "n<p"])
@pytest.mark.parametrize("gram", ["auto", "features", "samples"])
@pytest.mark.parametrize("kind", ["r", "r2"])
def test_alpha_per_voxel_equals_brute_force(n_train, p, gram, kind):
    (Xtr, Ytr, Xte, Yte), expected = _cached_case(n_train, p, kind)
    res = fit_encoding_model(
        Xtr, Ytr, Xte, Yte, alphas=ALPHAS, n_folds=4, seed=5, cv_score=kind, gram=gram, precision="double"
    )
    np.testing.assert_allclose(res.cv_scores_per_alpha, expected, atol=1e-6)
    assert_best_alpha(res.alpha, expected, ALPHAS, tol=1e-9)
    np.testing.assert_allclose(res.cv_score, expected.max(0), atol=1e-6)
    # several distinct alphas are chosen, so the comparison can fail
    assert len(np.unique(res.alpha)) >= 3


@pytest.mark.parametrize("n_train,p", [(84, 12), (42, 70)], ids=["n>p", "n<p"])
def test_float32_cv_scores_match_brute_force(n_train, p):
    Xtr, Ytr, Xte, Yte = simulate(n_train=n_train, p=p, v=9, seed=4)
    folds = kfold_indices(n_train, 4, seed=0)
    expected = brute_force_cv(Xtr, Ytr, folds, ALPHAS, "r")
    res = fit_encoding_model(Xtr, Ytr, Xte, Yte, alphas=ALPHAS, n_folds=4, precision="exact", cv_score="r")
    np.testing.assert_allclose(res.cv_scores_per_alpha, expected, atol=2e-4)
    top2 = np.sort(expected, axis=0)[-2:]
    clear = top2[1] - top2[0] > 1e-3
    np.testing.assert_array_equal(res.alpha[clear], _best(expected, ALPHAS)[clear].astype(np.float32))


def test_grouped_folds_are_leave_one_group_out():
    Xtr, Ytr, Xte, Yte = simulate(n_train=90, p=10, v=6, seed=6)
    groups = np.repeat(["ses-01", "ses-02", "ses-03"], 30)
    folds = kfold_indices(90, groups=groups)
    assert [len(va) for _, va in folds] == [30, 30, 30]
    expected = brute_force_cv(Xtr, Ytr, folds, ALPHAS, "r")
    res = fit_encoding_model(Xtr, Ytr, Xte, Yte, alphas=ALPHAS, groups=groups, precision="double", cv_score="r")
    assert res.n_folds == 3 and res.metadata()["CVScheme"] == "leave-one-group-out"
    np.testing.assert_allclose(res.cv_scores_per_alpha, expected, atol=1e-6)
    assert_best_alpha(res.alpha, expected, ALPHAS, tol=1e-9)


def test_unstandardized_cv_equals_brute_force_centred():
    Xtr, Ytr, Xte, Yte = simulate(n_train=70, p=8, v=5, seed=7)
    folds = kfold_indices(70, 5, seed=1)
    expected = brute_force_cv(Xtr, Ytr, folds, ALPHAS, "r2", standardize=False)
    res = fit_encoding_model(
        Xtr, Ytr, Xte, Yte, alphas=ALPHAS, n_folds=5, seed=1, cv_score="r2", standardize=False, precision="double"
    )
    np.testing.assert_allclose(res.cv_scores_per_alpha, expected, atol=1e-6)


@pytest.mark.parametrize("kind", ["r", "r2"])
@pytest.mark.parametrize("n_train,p", [(150, 20), (50, 80)], ids=["n>p", "n<p"])
def test_matches_himalaya_ridgecv(kind, n_train, p):
    himalaya = pytest.importorskip("himalaya")
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV
    from himalaya.scoring import correlation_score
    from himalaya.scoring import r2_score as h_r2

    set_backend("numpy")
    Xtr, Ytr, Xte, Yte = simulate(n_train=n_train, p=p, v=30, seed=8)
    folds = kfold_indices(n_train, 5, seed=2)
    # himalaya centres X and Y per fold (fit_intercept=True) and does not scale: match with standardize=False
    model = RidgeCV(
        alphas=ALPHAS,
        fit_intercept=True,
        cv=folds,
        solver_params={"score_func": correlation_score if kind == "r" else h_r2, "warn": False},
    ).fit(Xtr, Ytr.astype(np.float64))
    assert himalaya.__version__
    res = fit_encoding_model(
        Xtr, Ytr, Xte, Yte, alphas=ALPHAS, n_folds=5, seed=2, cv_score=kind, standardize=False, precision="double"
    )
    np.testing.assert_allclose(res.cv_score, model.cv_scores_, atol=1e-6)
    np.testing.assert_allclose(res.alpha, model.best_alphas_, rtol=1e-6)
    pred = model.predict(Xte)
    r = [np.corrcoef(pred[:, j], Yte[:, j])[0, 1] for j in range(30)]
    np.testing.assert_allclose(res.r, r, atol=1e-5)
