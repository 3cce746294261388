"""Clade support that respects spatial correlation: smoothness estimate, block and participant bootstrap.

The star-tree simulation (issue 12 §2): six tasks, every clade spurious, maps =
shared smooth pattern + each task's own Gaussian-smoothed noise (sigma = 2
voxels), thresholded. Resampling single voxels treats the smooth maps as
independent voxels and gives most spurious clades support >= 0.95; the spatial
block bootstrap with the box edge from the estimated smoothness does not, and
planted clusters keep support >= 0.95.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from group_synthetic import TASK, run_group, smooth_noise, star_tree_maps

from bids_taskenc.group import GroupInputError, resampling, similarity, tree
from bids_taskenc.outputs.naming import derivative_path

FULL = np.ones((24, 24, 24), dtype=bool)


def test_fwhm_and_decay_recover_gaussian_smoothing():
    rng = np.random.default_rng(0)
    smooth = smooth_noise(rng, 4, 2.0)
    fwhm = resampling.estimate_fwhm(smooth, FULL)
    np.testing.assert_allclose(fwhm, 2.0 * np.sqrt(8 * np.log(2)), rtol=0.1)  # 4.71 voxels
    profile = resampling.autocorrelation_profile(smooth, FULL)
    assert profile.shape == (3, resampling.MAX_EDGE + 1)
    expected = np.exp(-(np.arange(1, 5) ** 2) / 16.0)  # a Gaussian of sigma 2 smooths to exp(-d^2 / 16)
    np.testing.assert_allclose(profile[:, 1:5], np.tile(expected, (3, 1)), atol=0.08)  # 4 maps of 24^3: sampling error
    decay = resampling.decay_lags(profile)
    np.testing.assert_allclose(decay, 4.0 * np.sqrt(np.log(10.0)), atol=1.0)  # exp(-d^2/16) = 0.1 at 6.07
    assert resampling.block_edges(resampling.pooled_decay(decay, (2.0, 2.0, 2.0))) == (7, 7, 7)
    white = smooth_noise(rng, 4, 0.0)
    assert np.all(resampling.estimate_fwhm(white, FULL) < 1.0)
    assert resampling.block_edges(resampling.decay_lags(resampling.autocorrelation_profile(white, FULL))) == (1, 1, 1)


def test_autocorrelation_only_uses_pairs_inside_the_mask():
    vols = smooth_noise(np.random.default_rng(1), 2, 2.0)
    mask = FULL.copy()
    mask[:, :, ::2] = False  # no neighbours along z at odd lags
    rho = resampling.lag1_autocorrelation(vols, mask)
    assert np.isnan(rho[2]) and rho[0] > 0.8
    profile = resampling.autocorrelation_profile(vols, mask, max_lag=4)
    assert np.isnan(profile[2, 1]) and np.isnan(profile[2, 3]) and profile[2, 2] > 0.6
    edges = resampling.block_edges([5.2, 6.1, np.nan])
    assert edges == (6, 7, 7)  # an axis without an estimate takes the largest other


def test_decay_lags_interpolate_and_say_when_the_tail_is_too_long():
    profile = np.array([[1.0, 0.5, 0.2, 0.05], [1.0, 0.9, 0.8, 0.7], [1.0, np.nan, np.nan, np.nan]])
    decay = resampling.decay_lags(profile, level=0.1)
    assert decay[0] == pytest.approx(2 + (0.2 - 0.1) / (0.2 - 0.05)) and decay[1] == np.inf and np.isnan(decay[2])
    np.testing.assert_allclose(resampling.pooled_decay([3.0, 4.0, np.nan], (2.0, 2.0, 4.0)), [4.0, 4.0, 2.0])  # 8 mm
    assert resampling.block_edges([np.inf, np.inf, np.inf]) == (resampling.MAX_EDGE,) * 3


def test_block_edges_from_mm_and_clipping():
    assert resampling.block_edges(voxel_sizes=(2.0, 2.0, 2.5), block_mm=12) == (6, 6, 5)
    assert resampling.block_edges(voxel_sizes=(2.0, 2.0, 2.0), block_mm=0.5) == (1, 1, 1)
    assert resampling.block_edges([np.inf, 0.0, 3.0]) == (resampling.MAX_EDGE, 1, 3)
    assert resampling.block_edges([4.3, 4.7, 5.0]) == (5, 5, 5)


def test_block_labels_tile_the_grid():
    mask = np.zeros((10, 10, 4), dtype=bool)
    mask[:, :, :] = True
    mask[0, 0, 0] = False
    labels = resampling.block_labels(mask, (5, 5, 4))
    assert labels.shape == (mask.sum(),) and labels.max() == 3
    np.testing.assert_array_equal(np.bincount(labels), [99, 100, 100, 100])


def test_unit_boxes_are_the_voxel_bootstrap_in_distribution():
    rng = np.random.default_rng(1)
    x = np.zeros((4, 300))
    x[:, :60] = rng.normal(size=(4, 60))
    mask = np.ones((300, 1, 1), dtype=bool)
    labels = resampling.block_labels(mask, (1, 1, 1))
    boxes = resampling.block_bootstrap_similarities(x, labels, 400, np.random.default_rng(2), chunk=37)
    voxels = similarity.bootstrap_similarities(x, 400, np.random.default_rng(3))
    np.testing.assert_allclose(boxes[:, range(4), range(4)], 1.0)
    np.testing.assert_allclose(boxes.mean(0), voxels.mean(0), atol=0.03)
    np.testing.assert_allclose(boxes.std(0), voxels.std(0), atol=0.03)


def test_block_bootstrap_draws_whole_boxes_and_is_seeded():
    x = np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    labels = np.array([0, 0, 1, 1])  # each map lives in one box
    boots = resampling.block_bootstrap_similarities(x, labels, 200, np.random.default_rng(0))
    # a bootstrap holds box 0 twice, box 1 twice or one of each: the maps never overlap
    np.testing.assert_allclose(boots[:, 0, 1], 0.0)
    again = resampling.block_bootstrap_similarities(x, labels, 200, np.random.default_rng(0))
    np.testing.assert_array_equal(boots, again)
    counts = resampling._draw_block_counts(np.array([3, 1]), 4, 500, np.random.default_rng(1))
    drawn = counts @ np.array([3, 1])
    assert drawn.min() >= 4 and drawn.max() <= 6  # stop as soon as 4 voxels are reached


def _spurious_rate(method: str, n_sims: int, seed: int, clusters=None):
    """Fraction of non-root clades with support >= 0.95; support of the planted clades."""
    rng = np.random.default_rng(seed)
    high, total, planted = 0, 0, []
    want = set()
    if clusters is not None:
        want = {tree.indices_to_mask(np.flatnonzero(np.asarray(clusters) == c)) for c in set(clusters)}
    for _ in range(n_sims):
        vols, thr = star_tree_maps(rng, 2.0, clusters=clusters)
        x = thr.reshape(thr.shape[0], -1)
        z = tree.build_tree(similarity.cosine_similarity(x))
        if method == "voxel":
            boots = similarity.bootstrap_similarities(x, 200, rng)
        else:
            labels = resampling.block_design(vols, FULL, (1.0, 1.0, 1.0)).labels
            boots = resampling.block_bootstrap_similarities(x, labels, 200, rng)
        support = tree.bootstrap_support(z, boots)[:-1]  # the root is in every tree
        masks = tree.clade_masks(z)[:-1]
        for m, s in zip(masks, support):
            if m in want:
                planted.append(s)
            else:
                high += s >= 0.95
                total += 1
    return high / total, planted


def test_star_tree_with_smooth_noise_voxel_bootstrap_is_overconfident():
    rate, _ = _spurious_rate("voxel", 15, seed=0)
    assert rate >= 0.4  # measured 0.60 (60 spurious clades)


def test_star_tree_with_smooth_noise_block_bootstrap_is_not():
    rate, _ = _spurious_rate("block", 40, seed=0)
    assert rate <= 0.05  # measured 0.025 (160 spurious clades)


def test_planted_clusters_keep_high_support_with_the_block_bootstrap():
    _, planted = _spurious_rate("block", 10, seed=1, clusters=[0, 0, 0, 1, 1, 1])
    assert len(planted) >= 18  # the planted clusters are clades of (nearly) every observed tree
    assert min(planted) >= 0.95


def test_participant_bootstrap_resamples_participants():
    a, b = np.eye(3), np.full((3, 3), 0.5)
    boots = resampling.participant_bootstrap_similarities([a, b, b], 300, np.random.default_rng(0))
    assert boots.shape == (300, 3, 3)
    # each bootstrap is a mean of 3 draws: the weight of `a` is 0, 1/3, 2/3 or 1
    weights = (0.5 - boots[:, 0, 1]) / 0.5
    np.testing.assert_allclose(np.sort(np.unique(np.round(weights, 6))), [0, 1 / 3, 2 / 3, 1], atol=1e-6)


def _tree_doc(root):
    return json.loads(derivative_path(root, task=TASK, desc="tree", suffix="dendrogram", extension=".json").read_text())


def test_group_run_records_the_resampling(outputs, tmp_path):
    common = dict(n_bootstrap=40, n_permutations=0, offline=True)
    run_group(outputs, **common)  # the default, auto: three participants -> participant-t
    doc = _tree_doc(outputs)
    boot = doc["Bootstrap"]
    assert boot["Method"] == "participant-t" and boot["NParticipants"] == 3
    assert boot["SupportInterpretation"] == "calibrated" and "star tree" in boot["SupportInterpretationReason"]
    assert doc["Settings"]["TreeBootstrap"] == "participant-t" and doc["Settings"]["TreeBootstrapOption"] == "auto"
    assert doc["Settings"]["TreeSupport"] == "calibrated" and doc["Settings"]["BootstrapBlockMM"] is None
    assert "calibrated" in doc["BootstrapSupport"]

    # the synthetic r maps are spatially white: boxes of one voxel cover their autocorrelation
    run_group(outputs, tree_bootstrap="block", **common)
    doc = _tree_doc(outputs)
    boot = doc["Bootstrap"]
    assert boot["Method"] == "block" and boot["NBootstrap"] == 40
    assert set(boot["Participants"]) == {"CSI1", "CSI2", "CSI3"}
    for info in boot["Participants"].values():
        assert info["BlockEdgeVoxels"] == [1, 1, 1] and info["NBlocks"] == 512 and info["Problem"] is None
        assert info["BlockEdgeMM"] == [2.0 * e for e in info["BlockEdgeVoxels"]]
        assert len(info["EstimatedFWHMVoxels"]) == 3 and max(info["AutocorrelationDecayVoxels"]) <= 1
    assert "autocorrelation" in boot["BlockSizeRule"] and "block" in doc["BootstrapSupport"]
    assert str(resampling.MIN_BLOCKS) in boot["BoxCoverageRule"]
    # descriptive even so: splits inside a true cluster keep high support (docs/tree-support.md)
    assert (
        boot["SupportInterpretation"] == "descriptive"
        and "inside a true cluster" in boot["SupportInterpretationReason"]
    )
    settings = doc["Settings"]
    assert settings["TreeBootstrap"] == "block" and settings["TreeSupport"] == "descriptive"

    # 8 mm boxes: 27 of them over the 8^3 mask, too few to cover it
    run_group(outputs, tree_bootstrap="block", bootstrap_block_mm=8.0, **common)
    doc = _tree_doc(outputs)
    boot = doc["Bootstrap"]
    assert all(
        info["BlockEdgeVoxels"] == [4, 4, 4] and info["NBlocks"] == 27 and "only 27 boxes" in info["Problem"]
        for info in boot["Participants"].values()
    )
    assert boot["BlockSizeRule"].startswith("8 mm")
    assert (
        boot["SupportInterpretation"] == "descriptive"
        and "sub-CSI1: only 27 boxes" in boot["SupportInterpretationReason"]
    )
    assert "heavy-tailed" in boot["SupportInterpretationReason"] and doc["Settings"]["TreeSupport"] == "descriptive"

    run_group(outputs, tree_bootstrap="participant", **common)
    doc = _tree_doc(outputs)
    assert doc["Bootstrap"]["Method"] == "participant" and doc["Bootstrap"]["NParticipants"] == 3
    assert doc["Settings"]["TreeBootstrap"] == "participant" and doc["Settings"]["BootstrapBlockMM"] is None
    assert doc["Bootstrap"]["SupportInterpretation"] == "descriptive"


def test_participant_bootstrap_needs_three_participants(outputs, tmp_path):
    two = dict(participants=["CSI1", "CSI2"], n_bootstrap=10, n_permutations=0, offline=True)
    for method in ("participant", "participant-t"):
        with pytest.raises(GroupInputError, match="at least 3 participants, 2 selected"):
            run_group(outputs, tree_bootstrap=method, **two)
    run_group(outputs, bootstrap_block_mm=8.0, **two)  # auto at two participants: the block bootstrap
    doc = _tree_doc(outputs)
    assert doc["Bootstrap"]["Method"] == "block" and doc["Settings"]["TreeBootstrapOption"] == "auto"
    assert doc["Bootstrap"]["SupportInterpretation"] == "descriptive" and "descriptive" in doc["BootstrapSupport"]
    with pytest.raises(ValueError, match="tree_bootstrap"):
        run_group(outputs, tree_bootstrap="voxels", offline=True)


def test_cli_flags_reach_the_settings(tmp_path):
    from bids_taskenc.cli.parser import parse_args
    from bids_taskenc.errors import UsageError

    args = parse_args(
        [str(tmp_path), str(tmp_path / "out"), "group", "--tree-bootstrap", "participant", "--bootstrap-block-mm", "12"]
    )
    assert args.tree_bootstrap == "participant" and args.bootstrap_block_mm == 12.0
    assert parse_args([str(tmp_path), str(tmp_path / "out"), "group"]).tree_bootstrap == "auto"
    assert parse_args([str(tmp_path), str(tmp_path / "out"), "group", "--tree-bootstrap", "participant-t"])
    with pytest.raises(UsageError, match="bootstrap-block-mm"):
        parse_args([str(tmp_path), str(tmp_path / "out"), "group", "--bootstrap-block-mm", "0"])
