"""Task tree: average-linkage clustering of cosine distances, clades, bootstrap support.

Distance is ``1 - similarity`` (cosine distance, in ``[0, 2]``); the linkage is
:func:`scipy.cluster.hierarchy.linkage` with ``method='average'`` (UPGMA), so
node heights are average cosine distances between the merged clusters and the
tree is ultrametric. Clades are sets of leaves, handled as integer bit masks.

A clade merged at the same height as its parent (a tie in the distances, e.g.
groups of tasks that share no voxel at all, distance 1 to each other) is not
a clade the data resolve: which of the tied groups scipy merges first is an
artefact of their order. Such clades are *tied* (:func:`tied_clades`): they get
no bootstrap support (NaN, ``null`` in the outputs) and are flagged, so the
node reads as a multifurcation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.cluster.hierarchy import cophenet, leaves_list, linkage
from scipy.spatial.distance import squareform


def distance_from_similarity(similarity: np.ndarray) -> np.ndarray:
    """``(F, F)`` similarity -> condensed ``(F(F-1)/2,)`` cosine distance (symmetrised, >= 0)."""
    s = np.asarray(similarity, dtype=float)
    d = 1.0 - (s + s.T) / 2.0
    d = np.clip(d, 0.0, 2.0)
    np.fill_diagonal(d, 0.0)
    return squareform(d, checks=False)


def build_tree(similarity: np.ndarray) -> np.ndarray:
    """``(F, F)`` similarity -> ``(F-1, 4)`` scipy linkage matrix (average linkage)."""
    if similarity.shape[0] < 2:
        raise ValueError("a tree needs at least two tasks")
    return linkage(distance_from_similarity(similarity), method="average")


def leaf_order(tree: np.ndarray) -> list[int]:
    """Leaf indices left to right (scipy's dendrogram order)."""
    return [int(i) for i in leaves_list(tree)]


def clade_masks(tree: np.ndarray) -> list[int]:
    """Bit mask of the leaves below each internal node; ``(F-1,)`` ints, node ``F+i`` at ``i``."""
    n = tree.shape[0] + 1
    members = [1 << i for i in range(n)]
    for a, b, _, _ in tree:
        members.append(members[int(a)] | members[int(b)])
    return members[n:]


def mask_to_indices(mask: int) -> list[int]:
    """Bit mask -> sorted leaf indices."""
    out, i = [], 0
    while mask:
        if mask & 1:
            out.append(i)
        mask >>= 1
        i += 1
    return out


def indices_to_mask(indices: Sequence[int]) -> int:
    mask = 0
    for i in indices:
        mask |= 1 << int(i)
    return mask


#: Heights this close (absolute) count as a tie.
TIE_TOLERANCE = 1e-9


def tied_clades(tree: np.ndarray) -> np.ndarray:
    """``(F-1,)`` bool: internal node ``F+i`` merged at (within :data:`TIE_TOLERANCE`) its parent's height."""
    n = tree.shape[0] + 1
    heights = tree[:, 2]
    tied = np.zeros(tree.shape[0], dtype=bool)
    for a, b, h, _ in tree:
        for child in (int(a), int(b)):
            if child >= n and abs(heights[child - n] - h) <= TIE_TOLERANCE:
                tied[child - n] = True
    return tied


def bootstrap_support(tree: np.ndarray, bootstrap_similarities: np.ndarray) -> np.ndarray:
    """Fraction of bootstrap trees that contain each clade of ``tree``.

    Tied clades (:func:`tied_clades`) get NaN: the data do not resolve them.

    Parameters
    ----------
    tree : ndarray
        ``(F-1, 4)`` linkage of the observed matrix.
    bootstrap_similarities : ndarray
        ``(B, F, F)`` similarity matrices, one per bootstrap.

    Returns
    -------
    ndarray
        ``(F-1,)`` support in ``[0, 1]`` of internal node ``F+i``.
    """
    masks = clade_masks(tree)
    hits = np.zeros(len(masks))
    for sim in bootstrap_similarities:
        boot = set(clade_masks(build_tree(sim)))
        hits += [m in boot for m in masks]
    n_boot = len(bootstrap_similarities)
    support = hits / n_boot if n_boot else np.full(len(masks), np.nan)
    support[tied_clades(tree)] = np.nan
    return support


def cophenetic_correlation(tree_a: np.ndarray, tree_b: np.ndarray) -> float:
    """Pearson correlation of the cophenetic distances of two trees on the same leaves."""
    ca, cb = cophenet(tree_a), cophenet(tree_b)
    if np.std(ca) == 0 or np.std(cb) == 0:
        return float("nan")
    return float(np.corrcoef(ca, cb)[0, 1])


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def to_newick(tree: np.ndarray, labels: Sequence[str], support: np.ndarray | None = None) -> str:
    """Newick string; branch lengths are height differences, internal labels the support.

    ``labels`` are BIDS labels (letters and digits), so no quoting is needed.
    """
    n = len(labels)
    heights = np.concatenate([np.zeros(n), tree[:, 2]])

    def node(i: int, parent_height: float) -> str:
        length = _fmt(max(0.0, parent_height - heights[i]))
        if i < n:
            return f"{labels[i]}:{length}"
        a, b = int(tree[i - n, 0]), int(tree[i - n, 1])
        inner = f"({node(a, heights[i])},{node(b, heights[i])})"
        tag = "" if support is None or np.isnan(support[i - n]) else _fmt(round(float(support[i - n]), 4))
        return f"{inner}{tag}:{length}"

    root = 2 * n - 2
    a, b = int(tree[-1, 0]), int(tree[-1, 1])
    tag = "" if support is None or np.isnan(support[-1]) else _fmt(round(float(support[-1]), 4))
    return f"({node(a, heights[root])},{node(b, heights[root])}){tag};\n"


def to_nested(
    tree: np.ndarray,
    labels: Sequence[str],
    info: Mapping[str, Mapping[str, str]] | None = None,
    support: np.ndarray | None = None,
) -> dict:
    """Nested dict of the tree: ``{"id", "height", "support", "tied", "leaves", "children"}``.

    Leaves are ``{"id", "name", "height": 0, "group", "feature_space"}`` with
    ``name`` the feature label and group/feature space from ``info``.
    """
    n = len(labels)
    info = info or {}
    tied = tied_clades(tree)

    def node(i: int) -> dict:
        if i < n:
            extra = info.get(labels[i], {})
            return {
                "id": i,
                "name": labels[i],
                "height": 0.0,
                "group": extra.get("group"),
                "feature_space": extra.get("feature_space"),
            }
        row = tree[i - n]
        children = [node(int(row[0])), node(int(row[1]))]
        leaves = [leaf for c in children for leaf in (c["leaves"] if "leaves" in c else [c["name"]])]
        sup = None if support is None or np.isnan(support[i - n]) else float(support[i - n])
        return {
            "id": i,
            "height": float(row[2]),
            "support": sup,
            "tied": bool(tied[i - n]),
            "leaves": leaves,
            "children": children,
        }

    return node(2 * n - 2)


def clade_table(tree: np.ndarray, labels: Sequence[str], support: np.ndarray | None = None) -> list[dict]:
    """One row per internal node: node id, height, size, members (comma-separated), support, tied."""
    n = len(labels)
    rows = []
    tied = tied_clades(tree)
    for i, mask in enumerate(clade_masks(tree)):
        members = [labels[j] for j in mask_to_indices(mask)]
        rows.append(
            {
                "node": n + i,
                "height": float(tree[i, 2]),
                "size": len(members),
                "members": ",".join(members),
                "support": None if support is None or np.isnan(support[i]) else float(support[i]),
                "tied": bool(tied[i]),
            }
        )
    return rows
