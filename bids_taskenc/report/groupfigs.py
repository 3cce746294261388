"""Figures of the group report: similarity matrices, trees, task graphs, comparison scatter."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from bids_taskenc.report.figures import group_color, group_legend, plt, save


def _color_ticks(ticklabels, group_of: dict) -> None:
    for tick in ticklabels:
        tick.set_color(group_color(group_of.get(tick.get_text())))


def similarity_heatmap(
    matrix: ArrayLike,
    labels: Sequence[str],
    group_of: dict,
    path: str | Path,
    *,
    title: str,
    vmin: float = 0.0,
    cbar_label: str = "cosine similarity",
) -> Path:
    """One ``(F, F)`` similarity matrix as a heat map, rows/columns in the given order (Fig. 5)."""
    matrix = np.asarray(matrix, dtype=float)
    n = len(labels)
    fig, ax = plt.subplots(figsize=(0.32 * n + 2.8, 0.32 * n + 2.2))
    im = ax.imshow(matrix, cmap="magma", vmin=vmin, vmax=1)
    ticks = np.arange(n)
    ax.set_xticks(ticks, labels, rotation=70, ha="right", fontsize=8)
    ax.set_yticks(ticks, labels, fontsize=8)
    _color_ticks(ax.get_xticklabels(), group_of)
    _color_ticks(ax.get_yticklabels(), group_of)
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, label=cbar_label)
    fig.tight_layout()
    return save(fig, path)


#: Point size of the matrix grids' task labels; the grids are sized so the pages show them unscaled.
GRID_LABEL_PT = 8
#: Widest PNG (inches at figures.DPI) that the report pages show without scaling down (1100 px).
PAGE_WIDTH_IN = 11.0


def matrix_grid(
    panels: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[str],
    group_of: dict,
    path: str | Path,
    *,
    per_row: int = 4,
) -> Path:
    """Small multiples of similarity matrices in one order: ``panels`` = ``[(title, (F, F) array), ...]``.

    Each panel is tall enough for ``F`` labels of :data:`GRID_LABEL_PT` points, and
    as many panels go in a row as fit :data:`PAGE_WIDTH_IN`, so the page never
    shrinks the picture (and its labels) below their point size.
    """
    n = len(labels)
    size = max(2.2, 0.125 * n + 0.6)  # inches per panel: an 8 pt label needs ~0.12 in
    label_in, cbar_in = 0.13 * max((len(str(lab)) for lab in labels), default=4) + 0.3, 1.0
    fit = max(1, int((PAGE_WIDTH_IN - label_in - cbar_in) // size))
    cols = max(1, min(per_row, len(panels), fit))
    n_rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(
        n_rows, cols, figsize=(size * cols + label_in + cbar_in, (size + 0.35) * n_rows), squeeze=False
    )
    im = None
    for ax, (title, matrix) in zip(axes.flat, panels):
        im = ax.imshow(np.asarray(matrix, dtype=float), cmap="magma", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        if ax in axes[:, 0]:
            ax.set_yticks(np.arange(n), labels, fontsize=GRID_LABEL_PT)
            _color_ticks(ax.get_yticklabels(), group_of)
        else:
            ax.set_yticks([])
    for ax in axes.flat[len(panels) :]:
        ax.set_axis_off()
    if im is not None:
        fig.colorbar(im, ax=axes, fraction=0.03 if cols > 1 else 0.06, label="cosine similarity")
    return save(fig, path)


def dendrograms(trees: Sequence[tuple[str, np.ndarray, list[str], dict[str, str]]], path: str | Path) -> Path:
    """Scipy dendrograms side by side (brain tree, Taskonomy tree; Fig. 6).

    ``trees`` is a list of ``(title, linkage, leaf_labels, group_of_label)``;
    ``linkage`` is scipy's ``(F-1, 4)`` matrix on 1 - similarity.
    """
    from scipy.cluster.hierarchy import dendrogram

    n = max(len(t[2]) for t in trees)
    fig, axes = plt.subplots(1, len(trees), figsize=(5.2 * len(trees), 0.26 * n + 1.6), squeeze=False)
    for ax, (title, linkage, leaves, group_of) in zip(axes[0], trees):
        dendrogram(
            np.asarray(linkage, dtype=float),
            labels=list(leaves),
            ax=ax,
            orientation="left",
            color_threshold=0,
            above_threshold_color="#333333",
            leaf_font_size=8,
        )
        _color_ticks(ax.get_yticklabels(), group_of)
        ax.set_xlabel("1 - similarity")
        ax.set_title(title, fontsize=10)
    group_legend(axes[0][-1], list(trees[0][3].values()), loc="upper left", bbox_to_anchor=(1.25, 1.0))
    fig.tight_layout()
    return save(fig, path)


#: Pairs this dissimilar (thresholded maps that share no voxel) get no edge.
MIN_EDGE = 1e-3


def knn_edges(matrix: ArrayLike, k: int) -> list[tuple[int, int, float]]:
    """Undirected edges joining each task to its ``k`` most similar others, ``(i, j, similarity)``, i < j.

    Pairs with similarity below :data:`MIN_EDGE` are left out.
    """
    s = np.asarray(matrix, dtype=float)
    n = len(s)
    edges = {}
    for i in range(n):
        others = [j for j in np.argsort(-s[i], kind="stable") if j != i and s[i, j] >= MIN_EDGE][:k]
        for j in others:
            a, b = min(i, j), max(i, j)
            edges[(a, b)] = float(s[a, b])
    return [(a, b, w) for (a, b), w in sorted(edges.items())]


def neighbour_counts(matrix: ArrayLike, labels: Sequence[str], k: int) -> dict[str, int]:
    """How many neighbours each task gets in :func:`knn_edges` (``k``, or fewer when fewer others reach
    :data:`MIN_EDGE`; 0 for a task that shares nothing with any other)."""
    s = np.asarray(matrix, dtype=float)
    out = {}
    for i, lab in enumerate(labels):
        others = np.delete(s[i], i)
        out[lab] = int(min(k, np.sum(np.nan_to_num(others, nan=-np.inf) >= MIN_EDGE)))
    return out


def _label_offsets(ax, pos: dict, labels, radius_pt: float) -> dict[str, tuple[float, float]]:
    """Per node, the offset (points) of its label among 8 directions that keeps it farthest from other nodes.

    Works in display coordinates, so it holds at the figure's rendered size;
    the label sits ``radius_pt`` plus a margin from its own node's centre.
    """
    fig = ax.figure
    fig.canvas.draw()  # fix the limits, so data -> display is final
    to_px = ax.transData.transform
    pt = fig.dpi / 72.0
    xy = {lab: to_px(pos[lab]) for lab in labels}
    dist = (radius_pt + 4) * pt
    directions = [(0, 1), (0, -1), (1, 0), (-1, 0), (0.7, 0.7), (-0.7, 0.7), (0.7, -0.7), (-0.7, -0.7)]
    out = {}
    placed: list[np.ndarray] = []
    for lab in labels:
        best, best_score = directions[0], -np.inf
        for d in directions:
            # a label about 6 pt per character wide and 10 pt high, centred beyond the offset
            anchor = xy[lab] + np.array(d) * dist
            centre = anchor + np.array([np.sign(d[0]) * 3.0 * len(lab), np.sign(d[1]) * 5.0]) * pt
            others = [xy[o] for o in labels if o != lab] + placed
            score = float(min((np.linalg.norm(centre - o) for o in others), default=np.inf))
            if score > best_score + 1e-9:
                best, best_score = d, score
        out[lab] = (best[0] * (radius_pt + 4), best[1] * (radius_pt + 4))
        placed.append(
            xy[lab] + np.array(best) * dist + np.array([np.sign(best[0]) * 3.0 * len(lab), np.sign(best[1]) * 5.0]) * pt
        )
    return out


def task_graphs(
    panels: Sequence[tuple[str, Sequence[str], np.ndarray]], group_of: dict, k: int, path: str | Path
) -> Path:
    """Task graphs side by side (Fig. 7), nodes at the same places in every panel.

    ``panels`` is a list of ``(title, labels, (F, F) similarity)``; each task is
    joined to its ``k`` most similar tasks in that panel's matrix (a rule that
    does not depend on the matrices' scales). The layout is a spring layout of
    the first panel's graph; tasks without a neighbour there go in a row below it,
    tasks missing there on a circle.
    """
    import networkx as nx

    first_title, first_labels, first_matrix = panels[0]
    base = nx.Graph()
    base.add_nodes_from(first_labels)
    for i, j, w in knn_edges(first_matrix, k):
        base.add_edge(first_labels[i], first_labels[j], weight=max(w, 1e-6))
    pos = nx.spring_layout(base, seed=0, weight="weight", k=1.8 / np.sqrt(max(len(first_labels), 1)))
    # tasks without a neighbour go in a row below the graph: the spring layout may put one on an
    # edge's line, where it reads as joined
    alone = [lab for lab in first_labels if base.degree(lab) == 0]
    joined = [lab for lab in first_labels if base.degree(lab) > 0]
    if alone and joined:
        xy = np.array([pos[lab] for lab in joined])
        (x0, y0), (x1, y1) = xy.min(0), xy.max(0)
        span = max(x1 - x0, y1 - y0, 1e-6)
        xs = np.linspace(x0, x1, len(alone)) if len(alone) > 1 else np.array([(x0 + x1) / 2])
        for lab, x in zip(alone, xs):
            pos[lab] = np.array([x, y0 - 0.3 * span])
    extra = sorted({lab for _, labels, _ in panels for lab in labels} - set(pos))
    for n, lab in enumerate(extra):
        angle = 2 * np.pi * n / max(len(extra), 1)
        pos[lab] = np.array([1.3 * np.cos(angle), 1.3 * np.sin(angle)])
    node_size = 260  # points^2
    radius_pt = float(np.sqrt(node_size) / 2)
    fig, axes = plt.subplots(1, len(panels), figsize=(6.0 * len(panels) + 1.4, 5.2), squeeze=False)
    for ax, (title, labels, matrix) in zip(axes[0], panels):
        graph = nx.Graph()
        graph.add_nodes_from(labels)
        edges = knn_edges(matrix, k)
        weights = np.array([w for _, _, w in edges]) if edges else np.array([0.0])
        lo, hi = float(weights.min()), float(weights.max())
        for i, j, w in edges:
            graph.add_edge(labels[i], labels[j], weight=w)
        widths = [0.6 + 3.4 * (graph[a][b]["weight"] - lo) / (hi - lo if hi > lo else 1) for a, b in graph.edges]
        nx.draw_networkx_edges(graph, pos, ax=ax, width=widths, edge_color="#9a9a9a")
        nx.draw_networkx_nodes(
            graph, pos, ax=ax, node_size=node_size, node_color=[group_color(group_of.get(lab)) for lab in graph.nodes]
        )
        ax.set_title(f"{title}\n(each task joined to up to {k} most similar; width = similarity)", fontsize=9)
        ax.margins(0.15)
        ax.axis("off")
    # outside the axes, so it can cover no node
    group_legend(
        axes[0][-1],
        [group_of.get(lab) for lab in first_labels],
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        borderaxespad=0.0,
    )
    fig.tight_layout()
    for ax, (_, labels, _) in zip(axes[0], panels):
        # labels beside their node, on the side with most room (never on a node)
        for lab, (dx, dy) in _label_offsets(ax, pos, list(labels), radius_pt).items():
            ax.annotate(
                lab,
                pos[lab],
                xytext=(dx, dy),
                textcoords="offset points",
                fontsize=8,
                ha="center" if dx == 0 else "left" if dx > 0 else "right",
                va="center" if dy == 0 else "bottom" if dy > 0 else "top",
                bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.75},
            )
    return save(fig, path)


def comparison_scatter(pairs: pd.DataFrame, path: str | Path, *, spearman: float | None = None) -> Path:
    """Brain vs Taskonomy similarity of every task pair (``pairs``: the comparison TSV)."""
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    b = pairs["brain_similarity"].to_numpy(dtype=float)
    r = pairs["reference_similarity"].to_numpy(dtype=float)
    ax.scatter(r, b, s=14, color="#444444", alpha=0.8)
    ax.set_xlabel("Taskonomy similarity (transfer-out cosine)")
    ax.set_ylabel("brain similarity (map cosine)")
    title = "task pairs"
    if spearman is not None:
        title += f": Spearman {spearman:.2f}"
    ax.set_title(title, fontsize=10)
    ax.grid(lw=0.3)
    fig.tight_layout()
    return save(fig, path)
