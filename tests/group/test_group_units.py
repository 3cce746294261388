"""Units: weighted cosine bootstrap, Mantel/consistency, tree helpers, graph, group-map statistics."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from scipy.cluster.hierarchy import to_tree
from scipy.stats import spearmanr, ttest_1samp

from bids_taskenc.group import graph, maps, similarity, tree
from bids_taskenc.group.compare import compare_structures, pair_table


def test_weighted_cosine_equals_resampled_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 200))
    x[:, rng.random(200) < 0.5] = 0.0
    idx = rng.integers(0, 200, 200)
    counts = np.bincount(idx, minlength=200).astype(float)
    np.testing.assert_allclose(
        similarity.cosine_similarity(x, counts), similarity.cosine_similarity(x[:, idx]), atol=1e-12
    )


def test_bootstrap_similarities_match_explicit_resampling_in_distribution():
    rng = np.random.default_rng(1)
    x = np.zeros((4, 300))
    x[:, :60] = rng.normal(size=(4, 60))
    boots = similarity.bootstrap_similarities(x, 400, np.random.default_rng(2), chunk=37)
    assert boots.shape == (400, 4, 4)
    np.testing.assert_allclose(boots[:, [0, 1, 2, 3], [0, 1, 2, 3]], 1.0)
    explicit = np.stack(
        [
            similarity.cosine_similarity(x[:, r.integers(0, 300, 300)])
            for r in [np.random.default_rng(s) for s in range(400)]
        ]
    )
    np.testing.assert_allclose(boots.mean(0), explicit.mean(0), atol=0.03)
    np.testing.assert_allclose(boots.std(0), explicit.std(0), atol=0.03)
    assert boots.std(0)[0, 1] > 0.01  # it does resample


def test_bootstrap_is_seeded():
    x = np.random.default_rng(0).normal(size=(3, 50))
    a = similarity.bootstrap_similarities(x, 10, np.random.default_rng(5))
    b = similarity.bootstrap_similarities(x, 10, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)


def test_empty_map_has_zero_similarity():
    x = np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [2.0, 4.0, 0.0]])
    s = similarity.cosine_similarity(x)
    assert s[0, 1] == 0 and s[1, 1] == 1 and s[0, 2] == pytest.approx(1.0)
    assert list(similarity.empty_maps(x)) == [False, True, False]


def _random_similarity(rng, n):
    a = rng.normal(size=(n, 30))
    return similarity.cosine_similarity(a)


def test_spearman_matches_scipy():
    rng = np.random.default_rng(3)
    a, b = _random_similarity(rng, 8), _random_similarity(rng, 8)
    expected = spearmanr(similarity.upper(a), similarity.upper(b)).statistic
    assert similarity.spearman_upper(a, b) == pytest.approx(expected)


def test_mantel_detects_and_rejects():
    rng = np.random.default_rng(4)
    a = _random_similarity(rng, 10)
    noisy = a + rng.normal(0, 0.05, a.shape)
    noisy = (noisy + noisy.T) / 2
    rho, p = similarity.mantel(a, noisy, 999, np.random.default_rng(0))
    assert rho > 0.8 and p < 0.01
    rho, p = similarity.mantel(a, _random_similarity(rng, 10), 999, np.random.default_rng(0))
    assert p > 0.05
    assert similarity.mantel(a, a, 0, np.random.default_rng(0)) == (pytest.approx(1.0), None)


def test_consistency_null_is_calibrated():
    """Unrelated matrices: p is roughly uniform (not systematically small)."""
    rng = np.random.default_rng(5)
    ps = []
    for _ in range(40):
        mats = [_random_similarity(rng, 7) for _ in range(3)]
        ps.append(similarity.consistency(mats, 199, rng)["p"])
    ps = np.array(ps)
    assert np.mean(ps < 0.05) < 0.2
    assert 0.3 < ps.mean() < 0.7


def test_clades_and_support():
    s = np.array(
        [
            [1.0, 0.9, 0.1, 0.1],
            [0.9, 1.0, 0.1, 0.1],
            [0.1, 0.1, 1.0, 0.8],
            [0.1, 0.1, 0.8, 1.0],
        ]
    )
    z = tree.build_tree(s)
    masks = set(tree.clade_masks(z))
    assert tree.indices_to_mask([0, 1]) in masks and tree.indices_to_mask([2, 3]) in masks
    support = tree.bootstrap_support(z, np.stack([s, s, s]))
    np.testing.assert_allclose(support, 1.0)
    swapped = s[[0, 2, 1, 3]][:, [0, 2, 1, 3]]  # true clades are now {0,2} and {1,3}
    support = tree.bootstrap_support(z, np.stack([s, swapped]))
    assert sorted(support) == [0.5, 0.5, 1.0]
    assert tree.mask_to_indices(0b1010) == [1, 3]


def test_newick_heights_and_nested_json():
    s = np.array([[1.0, 0.9, 0.2], [0.9, 1.0, 0.2], [0.2, 0.2, 1.0]])
    z = tree.build_tree(s)
    nwk = tree.to_newick(z, ["a", "b", "c"], np.array([0.7, 1.0]))
    assert nwk.strip() in ("((a:0.1,b:0.1)0.7:0.7,c:0.8)1;", "(c:0.8,(a:0.1,b:0.1)0.7:0.7)1;")
    nested = tree.to_nested(z, ["a", "b", "c"], {"a": {"group": "2D", "feature_space": "x:a"}})
    assert nested["height"] == pytest.approx(0.8) and sorted(nested["leaves"]) == ["a", "b", "c"]
    scipy_root = to_tree(z)
    assert scipy_root.dist == pytest.approx(nested["height"])


def test_cophenetic_correlation_of_identical_and_different_trees():
    rng = np.random.default_rng(6)
    a, b = _random_similarity(rng, 8), _random_similarity(rng, 8)
    assert tree.cophenetic_correlation(tree.build_tree(a), tree.build_tree(a)) == pytest.approx(1.0)
    assert tree.cophenetic_correlation(tree.build_tree(a), tree.build_tree(b)) < 0.9


def test_graph_tables():
    s = np.array([[1.0, 0.5, 0.1], [0.5, 1.0, 0.3], [0.1, 0.3, 1.0]])
    edges = graph.edge_table(s, ["a", "b", "c"])
    assert list(edges.itertuples(index=False, name=None)) == [("a", "b", 0.5), ("b", "c", 0.3), ("a", "c", 0.1)]
    top = graph.top_k_table(s, ["a", "b", "c"], 1)
    assert list(top["neighbor"]) == ["b", "a", "b"]
    g = nx.parse_graphml(graph.graphml_text(graph.build_graph(s, ["a", "b", "c"], top_k=1)))
    assert g.edges["a", "c"]["top_k"] is False and g.edges["a", "b"]["top_k"] is True


def test_pair_table_and_compare():
    rng = np.random.default_rng(7)
    a = _random_similarity(rng, 6)
    labels = list("abcdef")
    table = pair_table(a, a, labels)
    assert np.all(table["rank_difference"] == 0)
    summary, _ = compare_structures(a, a, labels, n_permutations=199, rng=rng)
    assert summary["spearman"] == pytest.approx(1.0) and summary["p_mantel"] < 0.05
    with pytest.raises(ValueError, match="at least 3"):
        compare_structures(a[:2, :2], a[:2, :2], labels[:2], n_permutations=9, rng=rng)


def test_fisher_mean_and_t():
    r = np.array([[0.1, 0.5, 0.0], [0.3, 0.5, 0.0], [0.2, 0.5, 0.0]])
    np.testing.assert_allclose(maps.fisher_mean(r), np.tanh(np.arctanh(r).mean(0)))
    t, p, q = maps.one_sample(r, 0.05)
    assert t[0] > 0 and p[0] < 0.1
    ref = ttest_1samp(np.arctanh(r[:, 0]), 0.0, alternative="greater")
    assert t[0] == pytest.approx(ref.statistic) and p[0] == pytest.approx(ref.pvalue)
    assert p[1] == 1.0 and p[2] == 1.0 and t[1] == 0.0  # no variance: untestable
    assert np.all(q >= p - 1e-12)


def test_top_k_skips_tasks_with_zero_similarity():
    s = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]])
    top = graph.top_k_table(s, ["a", "b", "c"], 2)
    assert set(zip(top["task"], top["neighbor"])) == {("a", "b"), ("b", "a")}
