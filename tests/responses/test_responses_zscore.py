"""``clean_and_zscore`` and ``zscore_columns`` (blocked float64 work on float32 data) against a float64 reference."""

import numpy as np
import pytest

from bids_taskenc.responses import base
from bids_taskenc.responses.base import zscore_columns
from bids_taskenc.responses.travg import clean_and_zscore


def reference_zscore(x):
    """The whole-array float64 z-score (population SD), non-varying columns NaN (the rule of varying_columns)."""
    x = np.asarray(x, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        centred = x - x.mean(0)
        sd = centred.std(0)
        ok = sd > 1e-8 * (np.abs(x).max(0) + 1e-12)
        z = centred / np.where(ok, sd, 1.0)
    z[:, ~ok] = np.nan
    return z


def reference_clean(series, confounds=None):
    """Confounds (with an intercept) regressed out by a float64 least squares on the whole series, then z-scored."""
    x = np.asarray(series, np.float64).copy()
    if confounds is not None:
        design = np.column_stack([np.ones(len(x)), confounds - confounds.mean(0)])
        beta, *_ = np.linalg.lstsq(design, x, rcond=None)
        x -= design @ beta
    x -= x.mean(0)
    return reference_zscore(x)


@pytest.fixture
def run(monkeypatch):
    monkeypatch.setattr(base, "ZSCORE_BLOCK_BYTES", 8 * 60 * 7, raising=False)  # several blocks, the last one short
    rng = np.random.default_rng(3)
    n_vols, n_vox = 60, 50
    confounds = rng.standard_normal((n_vols, 4))
    signal = rng.standard_normal((n_vols, n_vox)) * rng.uniform(0.5, 20, n_vox)
    series = (1000 + signal + confounds @ rng.standard_normal((4, n_vox)) * 30).astype(np.float32)
    return series, confounds


@pytest.mark.parametrize("with_confounds", [False, True])
def test_clean_and_zscore_matches_float64_reference(run, with_confounds):
    series, confounds = run
    conf = confounds if with_confounds else None
    before = series.copy()
    z = clean_and_zscore(series, conf)
    assert z.dtype == np.float32 and z.shape == series.shape
    np.testing.assert_allclose(z, reference_clean(series, conf), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(series, before)  # the input is left as it is
    vols = np.array([[3, 4], [10, 11], [58, 59]])
    picked = clean_and_zscore(series, conf, rows=vols)
    assert picked.shape == (3, 2, series.shape[1])
    np.testing.assert_allclose(picked, z[vols], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("with_confounds", [False, True])
def test_constant_and_nonfinite_voxels_are_nan_and_leave_the_others(run, with_confounds):
    series, confounds = run
    conf = confounds if with_confounds else None
    series[:, 5] = 1234.5  # constant BOLD
    series[:, 17] = 0.0
    series[7, 30] = np.nan
    series[9, 41] = np.inf
    z = clean_and_zscore(series, conf)
    bad = [5, 17, 30, 41]
    assert np.isnan(z[:, bad]).all()
    good = np.setdiff1d(np.arange(series.shape[1]), bad)
    assert np.isfinite(z[:, good]).all()
    np.testing.assert_allclose(z[:, good], reference_clean(series[:, good], conf), rtol=1e-5, atol=1e-5)


def test_collinear_confounds_are_fine(run):
    series, confounds = run
    conf = np.column_stack([confounds, confounds[:, 0] * 2 - confounds[:, 1], np.ones(len(confounds))])
    np.testing.assert_allclose(clean_and_zscore(series, conf), reference_clean(series, confounds), rtol=1e-5, atol=1e-5)


def test_zscore_columns_matches_reference_and_keeps_the_constant_rule(monkeypatch):
    monkeypatch.setattr(base, "ZSCORE_BLOCK_BYTES", 8 * 40 * 3, raising=False)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((40, 11)) * 3 + 7
    x[:, 2] = 5.0  # constant
    x[:, 4] = 1e9 + rng.standard_normal(40) * 1e-3  # varies below 1e-8 of max|x|: not varying
    x[:, 6] = 1e3 + rng.standard_normal(40) * 1e-3  # 1e-6 of max|x|: varying
    x[3, 8] = np.inf
    ref = reference_zscore(x)
    z = zscore_columns(x)
    assert z.dtype == np.float64
    assert np.array_equal(np.isnan(z), np.isnan(ref))
    assert np.isnan(z[:, [2, 4, 8]]).all() and np.isfinite(z[:, 6]).all()
    np.testing.assert_allclose(z, ref, rtol=1e-9, atol=1e-9)
    z32 = zscore_columns(x.astype(np.float32), rows=np.array([0, 39]))
    assert z32.dtype == np.float32 and z32.shape == (2, 11)
    np.testing.assert_allclose(z32[:, [0, 1, 3]], ref[[0, 39]][:, [0, 1, 3]], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(zscore_columns(x, dtype=np.float32), z.astype(np.float32), rtol=1e-7)


@pytest.mark.parametrize("overwrite", [False, True])
def test_drop_invalid_voxels_in_place_equals_the_copy(overwrite):
    import nibabel as nib

    from bids_taskenc.responses.images import drop_invalid_voxels

    rng = np.random.default_rng(2)
    mask = np.zeros((3, 4, 5), np.uint8)
    mask.reshape(-1)[rng.choice(60, 25, replace=False)] = 1
    data = rng.standard_normal((9, 25)).astype(np.float32)
    data[4, [0, 7, 24]] = np.nan
    data[0, 11] = np.inf
    expected = data[:, np.isfinite(data).all(0)].copy()
    out, mask_img, n = drop_invalid_voxels(data, nib.Nifti1Image(mask, np.eye(4)), overwrite=overwrite)
    assert n == 4 and out.shape == (9, 21)
    np.testing.assert_array_equal(out, expected)
    assert np.shares_memory(out, data) == overwrite
    assert int(np.asarray(mask_img.dataobj).sum()) == 21
