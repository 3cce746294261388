"""Report figures: matplotlib (Agg, headless) and nilearn, saved as PNG files.

Every function takes arrays/tables already read from the derivatives and a
target path, writes the PNG atomically and returns the path.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bids_taskenc.outputs.atomic import atomic_path  # noqa: E402

#: One colour per feature-space group, used by every figure.
GROUP_COLORS = {"2D": "#1f77b4", "3D": "#d62728", "semantic": "#2ca02c", "other": "#7f7f7f"}


def group_color(group: str | None) -> str:
    """Colour of a feature-space group (grey when unknown)."""
    return GROUP_COLORS.get(group or "other", GROUP_COLORS["other"])


def save(fig, path: str | Path) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=72, bbox_inches="tight")
    plt.close(fig)
    return path


def _group_legend(ax, groups) -> None:
    from matplotlib.patches import Patch

    seen = [g for g in GROUP_COLORS if g in set(groups)]
    ax.legend(handles=[Patch(color=group_color(g), label=g) for g in seen], fontsize=8, loc="best")


def mean_r_bars(labels, groups, mean_all, mean_sig, path) -> Path:
    """Mean r per feature space over all analysed voxels and over significant voxels (Fig. 1)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=False)
    x = np.arange(len(labels))
    colors = [group_color(g) for g in groups]
    for ax, values, title in (
        (axes[0], mean_all, "all analysed voxels"),
        (axes[1], mean_sig, "significant voxels (q < FDR level)"),
    ):
        vals = np.nan_to_num(np.asarray(values, dtype=float))
        ax.bar(x, vals, color=colors)
        ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=8)
        ax.set_ylabel("mean r (test set)")
        ax.set_title(title, fontsize=10)
        ax.axhline(0, color="k", lw=0.5)
        _group_legend(ax, groups)
    fig.tight_layout()
    return save(fig, path)


def histogram(values, path, *, xlabel: str, title: str) -> Path:
    """Histogram of finite values."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(values, bins=40, color="#555555")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("voxels")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def alpha_distribution(labels, groups, alphas, alpha_grid, path) -> Path:
    """Share of voxels choosing each alpha of the grid, one row per feature space."""
    grid = np.asarray(alpha_grid, dtype=float) if alpha_grid else np.unique(np.concatenate(alphas))
    counts = np.zeros((len(labels), grid.size))
    for i, a in enumerate(alphas):
        a = np.asarray(a, dtype=float)
        a = a[np.isfinite(a)]
        if a.size:
            idx = np.abs(np.log10(a)[:, None] - np.log10(grid)[None, :]).argmin(axis=1)
            counts[i] = np.bincount(idx, minlength=grid.size) / a.size
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(labels) + 1.5))
    im = ax.imshow(counts, aspect="auto", cmap="viridis", vmin=0, vmax=max(counts.max(), 1e-9))
    ax.set_yticks(np.arange(len(labels)), labels, fontsize=8)
    for tick, g in zip(ax.get_yticklabels(), groups):
        tick.set_color(group_color(g))
    ax.set_xticks(np.arange(grid.size), [f"{np.log10(v):g}" for v in grid], fontsize=7)
    ax.set_xlabel("log10 alpha")
    ax.set_title("ridge alpha chosen per voxel (fraction of voxels)", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    return save(fig, path)


def stat_map(img, mask_img, path, *, title: str, threshold: float | None = None, cmap: str = "cold_hot") -> Path:
    """Orthogonal slices of a 3-D map (nilearn ``plot_stat_map``) with the brain-mask outline.

    There is no anatomical image among the outputs, so ``bg_img=None`` and the
    outline of ``mask_img`` is drawn as the only landmark.
    """
    from nilearn import plotting

    fig = plt.figure(figsize=(9, 3))
    data = np.asarray(img.dataobj)
    vmax = float(np.nanmax(np.abs(data))) if data.size else 1.0
    display = plotting.plot_stat_map(
        img,
        bg_img=None,
        display_mode="ortho",
        threshold=threshold,
        title=title,
        figure=fig,
        cmap=cmap,
        vmax=vmax if vmax > 0 else 1.0,
        black_bg=False,
        draw_cross=False,
        annotate=True,
        colorbar=True,
    )
    display.add_contours(mask_img, levels=[0.5], colors="#444444", linewidths=0.8)
    return save(fig, path)


def similarity_heatmap(matrix, labels, groups, path, *, title: str) -> Path:
    """Task x task similarity matrix as a heat map, rows/columns in the given order (Fig. 5)."""
    matrix = np.asarray(matrix, dtype=float)
    fig, ax = plt.subplots(figsize=(0.45 * len(labels) + 2.5, 0.45 * len(labels) + 1.8))
    im = ax.imshow(matrix, cmap="magma", vmin=0, vmax=1)
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels, rotation=70, ha="right", fontsize=8)
    ax.set_yticks(ticks, labels, fontsize=8)
    for ticklabels in (ax.get_xticklabels(), ax.get_yticklabels()):
        for tick, g in zip(ticklabels, groups):
            tick.set_color(group_color(g))
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, label="cosine similarity")
    fig.tight_layout()
    return save(fig, path)


def dendrograms(trees, path) -> Path:
    """One or more scipy dendrograms side by side (brain tree, Taskonomy tree; Fig. 6).

    ``trees`` is a list of ``(title, linkage, leaf_labels, group_of_label)``.
    """
    from scipy.cluster.hierarchy import dendrogram

    fig, axes = plt.subplots(1, len(trees), figsize=(5.5 * len(trees), 4.2), squeeze=False)
    for ax, (title, linkage, leaves, group_of) in zip(axes[0], trees):
        dendrogram(np.asarray(linkage, dtype=float), labels=list(leaves), ax=ax, orientation="left",
                   color_threshold=0, above_threshold_color="#333333")
        for tick in ax.get_yticklabels():
            tick.set_color(group_color(group_of.get(tick.get_text())))
        ax.set_xlabel("1 - cosine similarity")
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def task_graph(labels, groups, edges, threshold: float, path) -> Path:
    """Task graph: nodes coloured by group, edges with weight above ``threshold`` (Fig. 7).

    ``edges`` is an iterable of ``(source, target, weight)``.
    """
    import networkx as nx

    graph = nx.Graph()
    for label, g in zip(labels, groups):
        graph.add_node(label, group=g)
    kept = [(s, t, float(w)) for s, t, w in edges if np.isfinite(w) and float(w) > threshold]
    graph.add_weighted_edges_from(kept)
    pos = (nx.spring_layout(graph, seed=0, k=2.5 / np.sqrt(max(len(labels), 1)), weight=None)
           if kept else nx.circular_layout(graph))
    fig, ax = plt.subplots(figsize=(6.5, 5))
    widths = [1 + 4 * graph[s][t]["weight"] for s, t in graph.edges]
    nx.draw_networkx_edges(graph, pos, ax=ax, width=widths, edge_color="#999999")
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_color=[group_color(g) for g in groups], node_size=420)
    nx.draw_networkx_labels(graph, {k: (x, y + 0.09) for k, (x, y) in pos.items()}, ax=ax, font_size=8)
    ax.set_title(f"task graph: edges with cosine similarity > {threshold:g}", fontsize=10)
    ax.margins(0.15)
    ax.axis("off")
    _group_legend(ax, groups)
    fig.tight_layout()
    return save(fig, path)
