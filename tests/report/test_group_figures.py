"""Group figures read at their rendered size: legend and labels off the nodes, legible grids, uncut axes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bids_taskenc.report import figures, groupfigs


@pytest.fixture
def keep_figure(monkeypatch):
    """figures.save, but the figure is drawn and kept for inspection (and the PNG still written)."""
    kept = []
    real = figures.save

    def save(fig, path, **kw):
        fig.canvas.draw()
        fig._kept_renderer = fig.canvas.get_renderer()  # the canvas is gone once the figure is closed
        kept.append(fig)
        return real(fig, path, **kw)

    monkeypatch.setattr(groupfigs, "save", save)
    monkeypatch.setattr(figures, "save", save)
    return kept


def _crowded(n_clusters=3, size=4, isolated=2):
    """Tight clusters (nodes drawn close together, as in the demo) plus tasks that share nothing."""
    n = n_clusters * size + isolated
    s = np.zeros((n, n))
    for c in range(n_clusters):
        idx = slice(c * size, (c + 1) * size)
        s[idx, idx] = 0.95
    if n_clusters > 1:
        s[0, size] = s[size, 0] = 0.05  # one weak link between two clusters
    np.fill_diagonal(s, 1.0)
    labels = [f"task{i:02d}long" for i in range(n)]
    groups = dict(zip(labels, ["2D", "3D", "semantic", "other"] * n))
    return labels, s, groups


def _demo_like():
    """The 3-participant demo's similarity matrix (tree order), where the spring layout drew 'pixels', which has
    no neighbour, on the objectb-scene3da edge."""
    labels = [
        "pixels",
        "gabor",
        "edge2db",
        "edge2da",
        "edge2dc",
        "objecta",
        "objectb",
        "scene3da",
        "scene3db",
        "scene3dc",
        "color",
        "random",
    ]
    s = np.eye(len(labels))
    for (i, j), v in {
        (1, 2): 0.956286,
        (1, 3): 0.962587,
        (1, 4): 0.959302,
        (2, 3): 0.988029,
        (2, 4): 0.984499,
        (3, 4): 0.99122,
        (4, 6): 0.002548,
        (5, 6): 0.987983,
        (5, 7): 0.002714,
        (6, 7): 0.002722,
        (7, 8): 0.98819,
        (7, 9): 0.987668,
        (8, 9): 0.988875,
    }.items():
        s[i, j] = s[j, i] = v
    groups = {
        "color": "other",
        "gabor": "other",
        "pixels": "other",
        "random": "other",
        "objecta": "semantic",
        "objectb": "semantic",
        **{f"edge2d{c}": "2D" for c in "abc"},
        **{f"scene3d{c}": "3D" for c in "abc"},
    }
    return labels, s, groups


def _node_centres(ax):
    coll = ax.collections[-1]  # networkx draws the nodes after the edges
    return ax.transData.transform(coll.get_offsets()), np.sqrt(coll.get_sizes()[0]) / 2 * ax.figure.dpi / 72


@pytest.mark.parametrize("make", [_crowded, _demo_like])
def test_graph_labels_and_legend_cover_no_node(tmp_path, keep_figure, make):
    labels, s, groups = make()
    groupfigs.task_graphs([("brain", labels, s)], groups, 3, tmp_path / "g.png")
    fig = keep_figure[-1]
    ax = fig.axes[0]
    centres, radius = _node_centres(ax)
    renderer = fig._kept_renderer
    texts = [t for t in ax.texts if t.get_text() in labels]
    assert len(texts) == len(labels)
    for t in texts:
        box = t.get_window_extent(renderer)
        for x, y in centres:  # no label box over a node disc
            dx = max(box.x0 - x, 0, x - box.x1)
            dy = max(box.y0 - y, 0, y - box.y1)
            assert np.hypot(dx, dy) >= radius * 0.9, (t.get_text(), (x, y))
    # a task without a neighbour is not drawn on an edge's line, where it would read as joined
    segments = [seg for coll in ax.collections[:-1] for seg in coll.get_segments()]
    assert segments
    alone = [i for i, lab in enumerate(labels) if groupfigs.neighbour_counts(s, labels, 3)[lab] == 0]
    assert alone
    for i in alone:
        p = centres[i]
        for seg in segments:
            a, b = ax.transData.transform(seg[0]), ax.transData.transform(seg[-1])
            t = np.clip(np.dot(p - a, b - a) / max(np.dot(b - a, b - a), 1e-9), 0, 1)
            assert np.linalg.norm(p - (a + t * (b - a))) > radius, labels[i]
    legend = ax.get_legend().get_window_extent(renderer)
    axbox = ax.get_window_extent(renderer)
    assert legend.x0 >= axbox.x1 - 1  # outside the axes: it can hide nothing
    assert "up to 3" in ax.get_title()


def test_neighbour_counts_say_who_has_none():
    labels, s, _ = _crowded(n_clusters=1, size=2, isolated=2)
    counts = groupfigs.neighbour_counts(s, labels, 3)
    assert counts == {labels[0]: 1, labels[1]: 1, labels[2]: 0, labels[3]: 0}


@pytest.mark.parametrize("n_labels, n_panels", [(12, 5), (21, 5), (26, 2)])
def test_matrix_grid_labels_are_at_least_8_pt_on_the_page(tmp_path, keep_figure, n_labels, n_panels):
    labels = [f"space{i:02d}" for i in range(n_labels)]
    rng = np.random.default_rng(0)
    panels = [(f"ROI{i}", rng.uniform(0, 1, (n_labels, n_labels))) for i in range(n_panels)]
    path = groupfigs.matrix_grid(panels, labels, {}, tmp_path / "m.png")
    width = Image.open(path).size[0]
    assert width <= 1100  # the page shows it unscaled ...
    fig = keep_figure[-1]
    sizes = [t.get_fontsize() for ax in fig.axes for t in ax.get_yticklabels() if t.get_text() in labels]
    assert sizes and min(sizes) >= 8  # ... so 8 pt labels stay 8 pt (11 px at 100 dpi)
    # and they do not overlap each other
    renderer = fig._kept_renderer
    boxes = sorted((t.get_window_extent(renderer) for t in fig.axes[0].get_yticklabels()), key=lambda b: b.y0)
    assert all(a.y1 <= b.y0 + 0.5 for a, b in zip(boxes, boxes[1:]))


def test_histogram_y_label_is_not_cut_by_six_digit_counts(tmp_path, keep_figure):
    values = np.concatenate([np.zeros(400_000), np.linspace(-1, 1, 1000)])
    figures.histograms([(values, "r", "many voxels"), (values[:5000], "r", "few")], tmp_path / "h.png")
    fig = keep_figure[-1]
    renderer = fig._kept_renderer
    for ax in fig.axes:
        label = ax.yaxis.label.get_window_extent(renderer)
        assert label.x0 >= 0, label
        assert all(len(t.get_text()) <= 4 for t in ax.get_yticklabels())


@pytest.mark.parametrize(
    "value, text", [(0, "0"), (950, "950"), (1200, "1.2k"), (120_000, "120k"), (3_400_000, "3.4M"), (10_000, "10k")]
)
def test_count_labels(value, text):
    assert figures._count_label(value) == text
