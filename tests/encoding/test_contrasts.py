"""Contrasts between feature spaces (Williams' t, group t, bootstrap) and permutation p of ROI means."""

from __future__ import annotations

import numpy as np
import pytest

from bids_taskenc.encoding.contrasts import (
    Contrast,
    ContrastAccumulator,
    bootstrap_contrast,
    contrast_test,
    default_contrasts,
    williams_t,
)
from bids_taskenc.encoding.roi import roi_permutation_p
from bids_taskenc.encoding.stats import fdr_bh, make_permutations, pearson_r


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
    for method in ("analytic", "bootstrap"):
        one = contrast_test(y, [a], [b], n_bootstrap=64, p_method=method, seed=5, voxel_batch=7)
        acc = ContrastAccumulator(y, [Contrast("aVSb", ("a",), ("b",))], n_bootstrap=64, p_method=method, seed=5)
        assert acc.needs("a") and acc.needs("b") and not acc.needs("c")
        acc.add("c", a)  # unused space: ignored
        acc.add("b", b)  # B before A: the order the spaces arrive in does not matter
        with pytest.raises(RuntimeError, match="no predictions added"):
            acc.result("aVSb")
        acc.add("a", a)
        two = acc.result("aVSb")
        np.testing.assert_allclose(two.difference, one.difference, atol=1e-6)
        np.testing.assert_allclose(two.p, one.p, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(two.ci_low, one.ci_low, atol=1e-6)


def test_accumulator_keeps_the_float32_responses_it_is_given_not_a_float64_copy():
    rng = np.random.default_rng(12)
    y, a, b = _predictions(rng, 30, 50, 0.5, 1.5)
    y32, a32, b32 = (x.astype(np.float32) for x in (y, a, b))
    contrast = [Contrast("aVSb", ("a",), ("b",))]
    acc = ContrastAccumulator(y32, contrast, n_bootstrap=40, seed=3, voxel_batch=16)
    assert acc.y.dtype == np.float32 and np.shares_memory(acc.y, y32)  # 8 bytes a value less than a float64 copy
    ref = ContrastAccumulator(y32.astype(np.float64), contrast, n_bootstrap=40, seed=3, voxel_batch=16)
    for name, pred in (("a", a32), ("b", b32)):
        acc.add(name, pred)
        ref.add(name, pred)
    got, want = acc.result("aVSb"), ref.result("aVSb")
    for field in ("difference", "p", "q", "ci_low", "ci_high"):
        np.testing.assert_allclose(getattr(got, field), getattr(want, field), rtol=1e-6, atol=1e-7, err_msg=field)
    with pytest.raises(ValueError, match="numeric"):
        ContrastAccumulator(y.astype(str), contrast)


def test_null_bootstrap_contrast_is_calibrated_and_fdr_finds_nothing():
    """Bootstrap p (still selectable): two equally good predictors, about 5% of voxels at p < 0.05."""
    rng = np.random.default_rng(3)
    y, a, b = _predictions(rng, 80, 3000, 1.0, 1.0)
    res = bootstrap_contrast(y, [a], [b], n_bootstrap=400, seed=0)
    rate = np.mean(res.p < 0.05)
    assert 0.02 < rate < 0.085, rate
    assert np.mean(res.q < 0.05) < 0.005
    assert np.all((res.p > 0) & (res.p <= 1))


@pytest.mark.parametrize("method", ["analytic", "bootstrap"])
def test_planted_difference_is_found_in_the_right_direction(method):
    rng = np.random.default_rng(4)
    n, v = 80, 400
    y, good, bad = _predictions(rng, n, v, 0.3, 3.0)
    # A beats B in the first half of the voxels, B beats A in the second half
    a = np.where(np.arange(v) < v // 2, good, bad)
    b = np.where(np.arange(v) < v // 2, bad, good)
    res = contrast_test(y, [a], [b], n_bootstrap=400 if method == "bootstrap" else 0, p_method=method, seed=0)
    sig = res.q < 0.05
    assert sig[: v // 2].mean() > 0.9 and sig[v // 2 :].mean() > 0.9
    assert np.all(res.difference[: v // 2][sig[: v // 2]] > 0)
    assert np.all(res.difference[v // 2 :][sig[v // 2 :]] < 0)
    if method == "analytic":
        assert res.method == "williams" and res.df == n - 3
        assert np.all(np.sign(res.statistic[sig]) == np.sign(res.difference[sig]))


def _steiger_z_p(r_ya, r_yb, r_ab, n):
    """Steiger's (1980) Z on Fisher-z correlations with the pooled r-bar: an independent two-sided p."""
    from scipy.stats import norm

    rbar = (r_ya + r_yb) / 2
    psi = r_ab * (1 - 2 * rbar**2) - 0.5 * rbar**2 * (1 - 2 * rbar**2 - r_ab**2)
    c = psi / (1 - rbar**2) ** 2
    z = (np.arctanh(r_ya) - np.arctanh(r_yb)) * np.sqrt(n - 3) / np.sqrt(2 - 2 * c)
    return 2 * norm.sf(abs(z))


def test_williams_t_matches_the_formula_voxel_by_voxel_and_steigers_z():
    """Vectorised Williams' t = a scalar evaluation of Steiger's eq. 7; its p agrees with Steiger's Z."""
    import math

    from scipy.stats import t as t_dist

    rng = np.random.default_rng(7)
    n = 300
    y, a, b = _predictions(rng, n, 6, 0.8, 1.6)
    r_ya, r_yb, r_ab = pearson_r(y, a), pearson_r(y, b), pearson_r(a, b)
    t, p = williams_t(r_ya, r_yb, r_ab, n)
    for j in range(6):
        r1, r2, r3 = float(r_ya[j]), float(r_yb[j]), float(r_ab[j])
        det = 1 - r1 * r1 - r2 * r2 - r3 * r3 + 2 * r1 * r2 * r3
        rbar = (r1 + r2) / 2
        expected = (r1 - r2) * math.sqrt((n - 1) * (1 + r3) / (2 * (n - 1) / (n - 3) * det + rbar**2 * (1 - r3) ** 3))
        assert t[j] == pytest.approx(expected, rel=1e-10)
        assert p[j] == pytest.approx(2 * t_dist.sf(abs(expected), n - 3), rel=1e-8)
        # an independent test of the same hypothesis gives nearly the same p (both asymptotically exact)
        assert math.log(p[j]) == pytest.approx(math.log(_steiger_z_p(r1, r2, r3, n)), rel=0.1)
    assert np.all(t > 0)  # A's predictions are the better ones everywhere
    t_swapped, p_swapped = williams_t(r_yb, r_ya, r_ab, n)
    np.testing.assert_allclose(t_swapped, -t)
    np.testing.assert_allclose(p_swapped, p)
    # identical predictions: no evidence at all
    assert williams_t([0.3], [0.3], [1.0], n)[1][0] == pytest.approx(1.0)


def test_contrast_uses_the_data_it_is_given_not_a_precomputed_r():
    """The accumulator's Williams' t is williams_t of the test correlations of y with A, B and of A with B."""
    rng = np.random.default_rng(8)
    y, a, b = _predictions(rng, 120, 50, 0.7, 1.2)
    res = contrast_test(y, [a], [b], n_bootstrap=0)
    t, p = williams_t(pearson_r(y, a), pearson_r(y, b), pearson_r(a, b), 120)
    # r(A, B) comes from float16 standardised predictions (memory): agreement to ~1e-4, far below the
    # sampling error of r (about 0.1 here)
    np.testing.assert_allclose(res.statistic, t, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(res.p, p, rtol=2e-3, atol=1e-6)
    np.testing.assert_allclose(res.q, fdr_bh(p), rtol=2e-3, atol=1e-6)


def test_group_t_equals_williams_t_when_a_side_repeats_one_space():
    """A = (a, a), B = (b): the group statistic is the pair's, and its t is close to Williams' t."""
    rng = np.random.default_rng(9)
    y, a, b = _predictions(rng, 700, 400, 0.8, 1.4)
    pair = contrast_test(y, [a], [b], n_bootstrap=0)
    group = contrast_test(y, [a, a], [b], n_bootstrap=0)
    assert pair.method == "williams" and group.method == "olkinfinn"
    np.testing.assert_allclose(group.difference, pair.difference, atol=1e-6)
    ratio = group.statistic / pair.statistic
    assert np.median(ratio) == pytest.approx(1.0, abs=0.03) and np.percentile(np.abs(ratio - 1), 95) < 0.15


def _equal_accuracy(rng, n, v, k):
    """Responses = signal + noise; k predictions = signal + their own unit noise (all equally accurate)."""
    signal = rng.standard_normal((n, v), dtype=np.float32)
    y = signal + rng.standard_normal((n, v), dtype=np.float32)
    return y, [signal + rng.standard_normal((n, v), dtype=np.float32) for _ in range(k)]


def test_null_of_equal_accuracy_is_calibrated_at_bold5000_voxel_counts():
    """20,000 voxels, n_test 700, equal accuracy: fraction of p < 0.05 in [0.04, 0.06] (pair and group)."""
    rng = np.random.default_rng(10)
    y, (a1, a2, b1, b2) = _equal_accuracy(rng, 700, 20_000, 4)
    pair = contrast_test(y, [a1], [b1], n_bootstrap=0)
    group = contrast_test(y, [a1, a2], [b1, b2], n_bootstrap=0)
    for res in (pair, group):
        assert 0.04 <= np.mean(res.p < 0.05) <= 0.06, (res.method, np.mean(res.p < 0.05))
        assert 0.08 <= np.mean(res.p < 0.1) <= 0.12
        assert np.mean(res.q < 0.05) < 0.001


def test_group_t_is_calibrated_when_spaces_differ_within_a_side():
    """Null with unequal spaces: r(y, A1) = 0.6, r(y, A2) = 0.2 (mean 0.4) vs r(y, B) = 0.4, correlated predictions.

    Each voxel is an independent draw of (y, A1, A2, B) from one normal population, so the group t must be
    t-distributed on n - 3 degrees of freedom: this checks the Pearson-Filon covariances with r(P_j, P_k) != 0.
    """
    corr = np.array([[1.0, 0.6, 0.2, 0.4], [0.6, 1.0, 0.5, 0.3], [0.2, 0.5, 1.0, 0.3], [0.4, 0.3, 0.3, 1.0]])
    rng = np.random.default_rng(13)
    n, v = 200, 20_000
    draws = rng.standard_normal((n, v, 4)) @ np.linalg.cholesky(corr).T
    y, a1, a2, b = (draws[..., i] for i in range(4))
    res = contrast_test(y, [a1, a2], [b], n_bootstrap=0)
    assert res.method == "olkinfinn" and res.df == n - 3
    assert 0.04 <= np.mean(res.p < 0.05) <= 0.06
    assert np.std(res.statistic) == pytest.approx(1.0, abs=0.03)


def test_group_t_is_calibrated_with_few_test_images():
    """40 test images (the small synthetic dataset): unrelated, within-side correlated predictions stay at 5%.

    A delta-method (fourth-moment) standard error tried first gave 8.7% of p < 0.05 and 0.67% of p < 0.001
    here, which let BH declare undriven voxels in the app's science test.
    """
    rng = np.random.default_rng(14)
    n, v = 40, 20_000
    y = rng.standard_normal((n, v), dtype=np.float32)
    side_a, side_b = rng.standard_normal((n, v), dtype=np.float32), rng.standard_normal((n, v), dtype=np.float32)
    a = [side_a + 0.5 * rng.standard_normal((n, v), dtype=np.float32) for _ in range(3)]
    b = [side_b + 0.5 * rng.standard_normal((n, v), dtype=np.float32) for _ in range(3)]
    res = contrast_test(y, a, b, n_bootstrap=0)
    assert 0.04 <= np.mean(res.p < 0.05) <= 0.06
    assert np.mean(res.p < 0.001) <= 0.002


def _planted_power_data(seed, n=700, v=20_000, n_true=100, r_true=(0.45, 0.05), r_null=0.2):
    """True voxels: r(y, A) = 0.45, r(y, B) = 0.05; the others r = 0.2 for both (independent errors)."""
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((n, v), dtype=np.float32)
    r_a = np.where(np.arange(v) < n_true, r_true[0], r_null).astype(np.float32)
    r_b = np.where(np.arange(v) < n_true, r_true[1], r_null).astype(np.float32)
    a = r_a * y + np.sqrt(1 - r_a**2) * rng.standard_normal((n, v), dtype=np.float32)
    b = r_b * y + np.sqrt(1 - r_b**2) * rng.standard_normal((n, v), dtype=np.float32)
    return y, a, b, np.arange(v) < n_true


def test_100_true_of_20000_voxels_are_found_with_fdr_control():
    """100 true of 20,000 voxels at r 0.45 vs 0.05, n_test 700: power >= 0.95 and FDP <= 0.10 at q < 0.05.

    The percentile-bootstrap p used before found none of them: its floor, 2 / (B + 1), is above the
    BH threshold of a lone voxel (0.05 / 20,000). Measured with 1,000 resamples (the old default):
    0 of 100 detected, smallest q 0.28; Williams' t here: 100 of 100, FDP 0.02 (2 false of 102).
    Here the bootstrap runs with 100 resamples to keep the test fast (same conclusion, floor 0.02).
    """
    y, a, b, truth = _planted_power_data(11)
    res = contrast_test(y, [a], [b], n_bootstrap=0)
    sig = res.q < 0.05
    assert sig[truth].mean() >= 0.95
    assert (sig & ~truth).sum() / max(sig.sum(), 1) <= 0.10
    assert np.all(res.difference[sig & truth] > 0)
    old = bootstrap_contrast(y, [a], [b], n_bootstrap=100, seed=0)
    assert old.p.min() == pytest.approx(2 / 101) and not np.any(old.q < 0.05)


def test_bootstrap_interval_covers_the_true_difference():
    """Percentile 95% interval of r(A) - r(B): covers 0 in about 95% of null voxels, and holds the estimate."""
    rng = np.random.default_rng(12)
    y, (a, b) = _equal_accuracy(rng, 150, 1500, 2)
    res = contrast_test(y, [a], [b], n_bootstrap=300, seed=3)
    assert res.ci_low is not None and res.ci_level == 0.95 and res.n_bootstrap == 300
    assert np.all(res.ci_low <= res.ci_high)
    assert np.mean((res.ci_low <= res.difference) & (res.difference <= res.ci_high)) > 0.99
    assert 0.92 <= np.mean((res.ci_low <= 0) & (0 <= res.ci_high)) <= 0.975
    none = contrast_test(y, [a], [b], n_bootstrap=0)
    assert none.ci_low is None and none.ci_high is None


def test_p_floor_and_the_fdr_resolution_rule():
    """Only the bootstrap p has a floor; the shared BH rule says when it blocks every discovery."""
    from bids_taskenc.encoding.stats import fdr_tests_needed_at_floor

    y = np.random.default_rng(0).standard_normal((20, 5))
    c = [Contrast("aVSb", ("a",), ("b",))]
    assert ContrastAccumulator(y, c, n_bootstrap=0).p_floor == 0.0
    boot = ContrastAccumulator(y, c, n_bootstrap=999, p_method="bootstrap")
    assert boot.p_floor == pytest.approx(0.002)
    # 46,536 voxels at q 0.05: 1,862 voxels must sit at the floor before BH declares any
    assert fdr_tests_needed_at_floor(boot.p_floor, 46_536, 0.05) == pytest.approx(1861.44)
    assert fdr_tests_needed_at_floor(0.0, 46_536, 0.05) == 0.0
    with pytest.raises(ValueError, match="bootstrap p"):
        ContrastAccumulator(y, c, n_bootstrap=0, p_method="bootstrap")


def test_default_contrasts_follow_the_available_spaces_and_groups():
    spaces = [
        ("taskonomy:keypoints3d", "keypoints3d", "3D"),
        ("taskonomy:keypoints2d", "keypoints2d", "2D"),
        ("taskonomy:edge_occlusion", "edgeocclusion", "3D"),
        ("taskonomy:class_object", "classobject", "semantic"),
    ]
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
