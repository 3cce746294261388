"""The solver equals scikit-learn's Ridge for a fixed alpha (one-value grid)."""

import numpy as np
import pytest
from encoding_sim import simulate
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from bids_taskenc.encoding import fit_encoding_model


def _sklearn(Xtr, Ytr, Xte, alpha, standardize):
    if standardize:
        scaler = StandardScaler().fit(Xtr)
        Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
    model = Ridge(alpha=alpha, fit_intercept=True).fit(Xtr, Ytr.astype(np.float64))
    return model.predict(Xte), model.coef_.T, model.intercept_


def _rel(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("n_train,p", [(120, 15), (40, 90)], ids=["n>p", "n<p"])
@pytest.mark.parametrize("gram", ["features", "samples"])
@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("alpha", [0.3, 3000.0])
def test_fixed_alpha_matches_sklearn(n_train, p, gram, standardize, alpha):
    Xtr, Ytr, Xte, Yte = simulate(n_train=n_train, p=p, v=6, seed=1)
    res = fit_encoding_model(
        Xtr,
        Ytr,
        Xte,
        Yte,
        alphas=[alpha],
        n_folds=4,
        gram=gram,
        standardize=standardize,
        precision="double",
        return_weights=True,
        return_predictions=True,
    )
    pred, coef, intercept = _sklearn(Xtr, Ytr, Xte, alpha, standardize)
    np.testing.assert_allclose(res.alpha, alpha, rtol=1e-7)
    assert _rel(res.predictions, pred) < 1e-5
    if standardize:
        assert _rel(res.weights, coef) < 1e-5
    else:
        # centred only: our weights are on raw units (scale 1)
        np.testing.assert_allclose(res.feature_scale, 1.0)
        assert _rel(res.weights, coef) < 1e-5
    np.testing.assert_allclose(res.predict(Xte), pred, rtol=0, atol=1e-5 * np.abs(pred).max())


@pytest.mark.parametrize("gram", ["features", "samples"])
def test_float32_exact_mode_close_to_sklearn(gram):
    Xtr, Ytr, Xte, Yte = simulate(n_train=150, p=20, v=8, seed=2)
    res = fit_encoding_model(
        Xtr,
        Ytr,
        Xte,
        Yte,
        alphas=[10.0],
        gram=gram,
        precision="exact",
        return_predictions=True,
        return_weights=True,
    )
    pred, coef, _ = _sklearn(Xtr, Ytr, Xte, 10.0, True)
    assert _rel(res.predictions - res.intercept, pred - res.intercept) < 1e-5
    assert _rel(res.weights, coef) < 1e-5


def test_predictions_scores_are_consistent(data):
    Xtr, Ytr, Xte, Yte = data
    res = fit_encoding_model(Xtr, Ytr, Xte, Yte, return_predictions=True, precision="double")
    pred = res.predictions.astype(np.float64)
    y = Yte.astype(np.float64)
    r = np.array([np.corrcoef(pred[:, j], y[:, j])[0, 1] for j in range(y.shape[1])])
    # predictions are stored in float32 with the intercept added: heavily shrunk voxels
    # (alpha near 1e8) lose their variation to rounding there, not in the engine
    resolved = pred.std(0) > 1e-4 * np.abs(pred).max(0)
    assert resolved.sum() >= 8
    np.testing.assert_allclose(res.r[resolved], r[resolved], atol=1e-5)
    r2 = 1 - ((y - pred) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)
    np.testing.assert_allclose(res.r2, r2, atol=1e-5)
