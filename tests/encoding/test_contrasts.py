"""Bootstrap contrasts between feature spaces and permutation p of ROI means."""

from __future__ import annotations

import numpy as np
import pytest

from bids_taskenc.encoding.contrasts import (
    Contrast,
    ContrastAccumulator,
    bootstrap_contrast,
    default_contrasts,
)
from bids_taskenc.encoding.roi import roi_permutation_p
from bids_taskenc.encoding.stats import make_permutations, pearson_r


def _predictions(rng, n, v, quality_a, quality_b):
    """Responses = signal + noise; each prediction = signal + its own noise of the given sd."""
    signal = rng.standard_normal((n, v))
    y = signal + rng.standard_normal((n, v))
    pred_a = signal + quality_a * rng.standard_normal((n, v))
    pred_b = signal + quality_b * rng.standard_normal((n, v))
    return y, pred_a, pred_b


def test_observed_difference_is_the_difference_of_test_correlations():
    rng = np.random.default_rng(0)
    y, a, b = _predictions(rng, 40, 50, 0.5, 2.0)
    res = bootstrap_contrast(y, [a], [b], n_bootstrap=50, seed=1)
    np.testing.assert_allclose(res.difference, pearson_r(y, a) - pearson_r(y, b), atol=1e-6)


def test_group_contrast_averages_each_side():
    rng = np.random.default_rng(1)
    y, a1, b1 = _predictions(rng, 30, 20, 0.5, 1.5)
    a2 = a1 + rng.standard_normal(a1.shape)
    res = bootstrap_contrast(y, [a1, a2], [b1], n_bootstrap=20, seed=0)
    expected = (pearson_r(y, a1) + pearson_r(y, a2)) / 2 - pearson_r(y, b1)
    np.testing.assert_allclose(res.difference, expected, atol=1e-6)


def test_accumulator_matches_one_shot_and_needs_every_space():
    rng = np.random.default_rng(2)
    y, a, b = _predictions(rng, 25, 30, 0.5, 1.0)
    one = bootstrap_contrast(y, [a], [b], n_bootstrap=64, seed=5, voxel_batch=7)
    acc = ContrastAccumulator(y, [Contrast("aVSb", ("a",), ("b",))], n_bootstrap=64, seed=5)
    assert acc.needs("a") and acc.needs("b") and not acc.needs("c")
    acc.add("c", a)  # unused space: ignored
    acc.add("b", b)
    with pytest.raises(RuntimeError, match="no predictions added"):
        acc.result("aVSb")
    acc.add("a", a)
    two = acc.result("aVSb")
    np.testing.assert_allclose(two.difference, one.difference, atol=1e-6)
    np.testing.assert_allclose(two.p, one.p)


def test_null_contrast_is_calibrated_and_fdr_finds_nothing():
    """Two equally good predictors: about 5% of voxels have p < 0.05, FDR keeps (almost) none."""
    rng = np.random.default_rng(3)
    y, a, b = _predictions(rng, 80, 3000, 1.0, 1.0)
    res = bootstrap_contrast(y, [a], [b], n_bootstrap=400, seed=0)
    rate = np.mean(res.p < 0.05)
    assert 0.02 < rate < 0.085, rate
    assert np.mean(res.q < 0.05) < 0.005
    assert np.all((res.p > 0) & (res.p <= 1))


def test_planted_difference_is_found_in_the_right_direction():
    rng = np.random.default_rng(4)
    n, v = 80, 400
    y, good, bad = _predictions(rng, n, v, 0.3, 3.0)
    # A beats B in the first half of the voxels, B beats A in the second half
    a = np.where(np.arange(v) < v // 2, good, bad)
    b = np.where(np.arange(v) < v // 2, bad, good)
    res = bootstrap_contrast(y, [a], [b], n_bootstrap=400, seed=0)
    sig = res.q < 0.05
    assert sig[: v // 2].mean() > 0.9 and sig[v // 2 :].mean() > 0.9
    assert np.all(res.difference[: v // 2][sig[: v // 2]] > 0)
    assert np.all(res.difference[v // 2 :][sig[v // 2 :]] < 0)


def test_default_contrasts_follow_the_available_spaces_and_groups():
    spaces = [("taskonomy:keypoints3d", "keypoints3d", "3D"), ("taskonomy:keypoints2d", "keypoints2d", "2D"),
              ("taskonomy:edge_occlusion", "edgeocclusion", "3D"), ("taskonomy:class_object", "classobject",
                                                                    "semantic")]
    got = {c.name: c for c in default_contrasts(spaces)}
    assert set(got) == {"keypoints3dVSkeypoints2d", "group3DVSgroup2D"}
    assert got["group3DVSgroup2D"].a == ("taskonomy:keypoints3d", "taskonomy:edge_occlusion")
    assert got["group3DVSgroup2D"].b == ("taskonomy:keypoints2d",)
    assert default_contrasts([("user:x", "x", "3D"), ("user:y", "y", "semantic")]) == []


def test_contrast_sides_must_be_disjoint_and_non_empty():
    with pytest.raises(ValueError, match="both sides"):
        Contrast("x", ("a", "b"), ("b",))
    with pytest.raises(ValueError, match="at least one"):
        Contrast("x", (), ("b",))


def test_roi_permutation_p_matches_a_loop_and_detects_signal():
    rng = np.random.default_rng(5)
    n, v = 30, 12
    y, pred, _ = _predictions(rng, n, v, 0.5, 1.0)
    noise_pred = rng.standard_normal((n, v))
    rois = {"first": np.arange(v) < 6, "second": np.arange(v) >= 6, "empty": np.zeros(v, bool)}
    perms = make_permutations(n, 99, seed=0)
    got = roi_permutation_p(y, noise_pred, rois, perms)
    for name in ("first", "second"):
        inside = rois[name]
        observed = pearson_r(y[:, inside], noise_pred[:, inside]).mean()
        null = [pearson_r(y[:, inside], noise_pred[perm][:, inside]).mean() for perm in perms]
        expected = (1 + np.sum(np.asarray(null) >= observed - 1e-12)) / 100
        assert got[name] == pytest.approx(expected)
    assert np.isnan(got["empty"])
    strong = roi_permutation_p(y, pred, rois, perms)
    assert strong["first"] == pytest.approx(0.01) and strong["second"] == pytest.approx(0.01)
