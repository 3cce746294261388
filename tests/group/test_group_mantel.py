"""The Taskonomy comparison with per-task main effects removed (issue 12 §3).

Null simulation: brain and reference share a per-task strength and nothing
else (in the brain: how many voxels of each task's thresholded map survive).
The plain Mantel test rejects almost always; the partial Mantel test
(additive effects and the maps' chance similarity controlled) rejects at about
its level. 200 simulations per shape at alpha = 0.05: a 99.9 % binomial
interval for a calibrated test is about [0.01, 0.10].
"""

from __future__ import annotations

import numpy as np
import pytest
from group_synthetic import main_effect_null

from bids_taskenc.group import similarity
from bids_taskenc.group.compare import compare_structures

N_TASKS, N_SIMS, N_PERM = 10, 200, 199


def _rejections(kind: str, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    plain = adjusted = 0
    for _ in range(N_SIMS):
        maps, ref = main_effect_null(rng, N_TASKS, kind)
        brain = similarity.cosine_similarity(maps)
        plain += similarity.mantel(brain, ref, N_PERM, rng)[1] <= 0.05
        chance = similarity.chance_similarity(maps)
        adjusted += similarity.partial_mantel(brain, ref, chance, N_PERM, rng)[1] <= 0.05
    return plain / N_SIMS, adjusted / N_SIMS


@pytest.mark.parametrize("kind", ["add", "mult", "min"])
def test_main_effect_null_is_calibrated_in_the_partial_test(kind):
    plain, adjusted = _rejections(kind, seed={"add": 0, "mult": 1, "min": 2}[kind])
    assert plain >= 0.9  # the plain test sees the main effect
    assert 0.01 <= adjusted <= 0.10


def test_partial_mantel_detects_shared_pairwise_structure():
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(20):
        maps, ref = main_effect_null(rng, N_TASKS, "mult")
        clusters = rng.permutation(np.arange(N_TASKS) % 3)
        same = clusters[:, None] == clusters[None, :]
        # the brain: tasks of a cluster share a block of voxels; the reference: a bonus within clusters
        block = rng.integers(0, 3, maps.shape[1])
        for i in range(N_TASKS):
            on = (block == clusters[i]) & (rng.random(maps.shape[1]) < 0.3)
            maps[i, on] = rng.uniform(0.1, 0.5, on.sum())
        ref = ref + same * ref.std()
        chance = similarity.chance_similarity(maps)
        hits += similarity.partial_mantel(similarity.cosine_similarity(maps), ref, chance, N_PERM, rng)[1] <= 0.05
    assert hits >= 18


def test_chance_similarity_is_set_by_the_surviving_voxels():
    x = np.zeros((3, 100))
    x[0, :25] = 1.0
    x[1, 50:] = 2.0
    chance = similarity.chance_similarity(x)
    assert chance[0, 1] == pytest.approx(np.sqrt(0.25 * 0.5))  # binary maps: sqrt of the surviving fractions
    assert chance[0, 2] == 0 and chance[2, 2] == 1


def test_residuals_remove_main_effects_and_follow_relabelling():
    rng = np.random.default_rng(4)
    maps = np.where(rng.random((8, 300)) < rng.uniform(0.05, 0.5, (8, 1)), rng.uniform(0.1, 0.5, (8, 300)), 0.0)
    chance = similarity.chance_similarity(maps)
    a = rng.normal(size=8)
    main = 0.3 + a[:, None] + a[None, :] + 2.0 * chance
    np.testing.assert_allclose(similarity.main_effect_residuals(main, chance), 0.0, atol=1e-10)
    s = similarity.cosine_similarity(rng.normal(size=(8, 40)))
    perm = rng.permutation(8)
    iu, ju = np.triu_indices(8, 1)
    resid = similarity.main_effect_residuals(s, chance)
    full = np.zeros((8, 8))
    full[iu, ju] = full[ju, iu] = resid
    permuted = similarity.main_effect_residuals(s[np.ix_(perm, perm)], chance[np.ix_(perm, perm)])
    np.testing.assert_allclose(permuted, full[np.ix_(perm, perm)][iu, ju], atol=1e-10)
    with pytest.raises(ValueError, match="at least 6 tasks"):
        similarity.main_effect_residuals(s[:5, :5], chance[:5, :5])


def test_compare_reports_both_tests():
    rng = np.random.default_rng(5)
    s = similarity.cosine_similarity(rng.normal(size=(7, 30)))
    chance = similarity.chance_similarity(np.abs(rng.normal(size=(7, 30))))
    summary, pairs = compare_structures(s, s, list("abcdefg"), n_permutations=199, rng=rng, chance=chance)
    assert summary["p_mantel"] < 0.05 and summary["p_mantel_partial"] < 0.05
    assert summary["partial_correlation"] == pytest.approx(1.0)
    np.testing.assert_allclose(pairs["brain_residual"], pairs["reference_residual"])
    few, pairs = compare_structures(
        s[:4, :4], s[:4, :4], list("abcd"), n_permutations=19, rng=rng, chance=chance[:4, :4]
    )
    assert few["partial_correlation"] is None and few["p_mantel_partial"] is None
    assert pairs["brain_residual"].isna().all()
    without, _ = compare_structures(s, s, list("abcdefg"), n_permutations=19, rng=rng)
    assert without["partial_correlation"] is None
