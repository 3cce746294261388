"""Calibration of the statistics issue 23 found biased (docs/statistics.md; rerun at full size with
``benchmarks/stats_sims.py``): the alpha criterion's effect on R², contrasts of near-collinear predictions,
and the held-out split of a blocked design."""

from __future__ import annotations

import numpy as np

from bids_taskenc.encoding import fit_encoding_model, grouped_train_test_split_indices, train_test_split_indices
from bids_taskenc.encoding.contrasts import contrast_test
from bids_taskenc.encoding.ridge import CV_SCORE_EFFECTS, CV_SCORES, DEFAULT_CV_SCORE
from bids_taskenc.encoding.stats import make_permutations
from bids_taskenc.testing.encoding_data import blocked_design, near_collinear_predictions, null_signal_data


def _null_signal_fit(**kw):
    """Issue 23's simulation (1,200 images x 300 features, half the voxels null, half R² = 0.08), seed 1."""
    X, Y, signal = null_signal_data(1200, 300, 400, seed=1)
    train, test = train_test_split_indices(len(X), 0.15, 1)
    res = fit_encoding_model(X[train], Y[train], X[test], Y[test], seed=1, **kw)
    return res, signal, len(train), len(test)


def test_default_alpha_criterion_leaves_null_r2_at_chance():
    """By default alpha is chosen by R²: null voxels' test R² sits at chance, signal voxels' above it.

    Chosen by Pearson r (the old default), 38 % of the null voxels took alpha = 1 and averaged R² −0.20 at this
    seed (signal voxels −0.06). With R²: null −0.007 (chance, predicting the training mean, −0.0064), signal
    +0.010, and more FDR detections (39 against 23).
    """
    res, signal, n_train, n_test = _null_signal_fit()
    assert res.cv_score_kind == DEFAULT_CV_SCORE == "r2"
    r2 = np.asarray(res.r2, float)
    chance = -(1.0 / n_test + 1.0 / n_train)
    assert abs(r2[~signal].mean() - chance) < 0.005
    assert abs(r2[~signal].mean()) < 0.01
    assert r2[signal].mean() > 0.0
    assert np.mean(np.asarray(res.alpha)[~signal] == 1.0) < 0.02
    by_r, *_ = _null_signal_fit(cv_score="r")
    assert r2[~signal].mean() > np.asarray(by_r.r2)[~signal].mean() + 0.1
    assert (np.asarray(res.q) < 0.05).sum() >= (np.asarray(by_r.q) < 0.05).sum()


def test_every_criterion_says_what_it_does_to_r2():
    assert set(CV_SCORE_EFFECTS) == set(CV_SCORES)
    res, *_ = _null_signal_fit(cv_score="r")
    meta = res.metadata()
    assert meta["CVScore"] == "pearson" and "biased downward" in meta["CVScoreEffect"]


def test_contrast_of_near_collinear_predictions_is_calibrated():
    """Williams' t at r(A, B) = 0.99999 keeps its null level, and the near-collinear voxels are counted.

    With r(A, B) from float16 predictions (before), 1.6 % of such null voxels had p < .001 (|t| up to 3.6e11);
    at this size and seed 123 voxels (1.2 %, |t| up to 8e10) did. With float32 storage and float64 correlations: 0.09 %.
    """
    y, a, b = near_collinear_predictions(300, 10000, 0.99999, seed=3)
    res = contrast_test(y, [a], [b], n_bootstrap=0)
    p = np.asarray(res.p, float)
    assert np.mean(p < 0.001) <= 0.0015
    assert 0.04 <= np.mean(p < 0.05) <= 0.06
    assert np.abs(res.statistic).max() < 10
    assert res.n_near_collinear == 10000
    y, a, b = near_collinear_predictions(300, 2000, 0.999, seed=3)
    assert contrast_test(y, [a], [b], n_bootstrap=0).n_near_collinear == 0


def _blocked_null(split: str, seed: int, n_permutations: int = 0) -> float:
    """P(p < .05) over the null voxels of the 7-trial-block design (AR(1) noise, phi 0.5), split by image or run."""
    X, Y, run = blocked_design(n_runs=24, v=200, phi=0.5, seed=seed)
    if split == "image":
        train, test = train_test_split_indices(len(X), 0.15, seed)
        groups = test_groups = None
    else:
        train, test = grouped_train_test_split_indices(run, 0.15, seed)
        groups, test_groups = run[train], run[test]
    res = fit_encoding_model(
        X[train],
        Y[train],
        X[test],
        Y[test],
        groups=groups,
        test_groups=test_groups,
        n_permutations=n_permutations,
        seed=seed,
    )
    return float(np.mean(np.asarray(res.p) < 0.05))


def test_blocked_design_null_is_calibrated_only_with_a_grouped_test_split():
    """Features in 7-trial blocks, AR(1) noise: an image-random test split leaks each block's noise into the test
    predictions (about 60 % of null voxels at p < .05); whole runs held out, with the permutations shifting the
    predictions circularly within each held-out run, give 2–5 % (benchmarks/stats_sims.py blocked)."""
    assert np.mean([_blocked_null("image", seed) for seed in range(2)]) > 0.4
    grouped = [_blocked_null("run", seed, n_permutations=200) for seed in range(3)]
    assert np.mean(grouped) <= 0.07, grouped


def test_grouped_split_holds_out_whole_groups_near_the_fraction():
    groups = np.repeat(np.arange(20), np.random.default_rng(0).integers(20, 40, 20))
    for seed in range(5):
        train, test = grouped_train_test_split_indices(groups, 0.15, seed)
        assert set(groups[train]).isdisjoint(groups[test])
        assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(groups.size))
        assert abs(len(test) / groups.size - 0.15) < 0.05
    train, test = grouped_train_test_split_indices(np.repeat([0, 1], 10), 0.9, 0)
    assert len(train) == len(test) == 10  # one group on each side at least


def test_grouped_permutations_are_circular_shifts_within_groups():
    groups = np.repeat([3, 1, 2], [5, 7, 4])
    perms = make_permutations(groups.size, 50, 0, groups)
    for perm in perms:
        assert np.array_equal(groups[perm], groups)
        for g in (1, 2, 3):
            members = np.flatnonzero(groups == g)
            shift = (np.flatnonzero(members == perm[members[0]])[0]) % members.size
            assert np.array_equal(perm[members], np.roll(members, -shift))


def test_the_circular_shift_p_floor_counts_the_distinct_shifts():
    """With one held-out group of 50 images there are 50 distinct circular shifts, so the smallest permutation p
    is about 1/50 whatever the number of permutations; the resolution warning assumed 1/(N+1) (review)."""
    import numpy as np
    import pytest

    from bids_taskenc.encoding.stats import make_permutations, permutation_p_floor

    groups = np.repeat(["run-1"], 50)
    perms = make_permutations(50, 5000, seed=0, groups=groups)
    assert len({tuple(p) for p in perms}) == 50
    approx = pytest.approx
    assert permutation_p_floor(5000, groups) == approx(1 / 50)
    assert permutation_p_floor(5000) == approx(1 / 5001)
    two = np.repeat(["a", "b"], [40, 30])  # 1,200 distinct shifts: below 5,001
    assert permutation_p_floor(5000, two) == approx(1 / 1200)
    assert permutation_p_floor(999, two) == approx(1 / 1000)
