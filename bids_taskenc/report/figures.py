"""Charts of the participant report (matplotlib, Agg backend) and the style every figure shares.

Every function takes arrays/tables already read from the derivatives and a
target path, writes a PNG atomically (:func:`save`) and returns the path.
Brain pictures are in :mod:`bids_taskenc.report.brain`, group figures in
:mod:`bids_taskenc.report.groupfigs`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from numpy.typing import ArrayLike  # noqa: E402

from bids_taskenc.outputs.atomic import atomic_path  # noqa: E402

#: One colour per feature-space group, used by every figure.
GROUP_COLORS = {"2D": "#1f77b4", "3D": "#d62728", "semantic": "#2ca02c", "other": "#7f7f7f"}
#: Resolution of every PNG: figure inches x DPI = pixels; pages show them at most 1100 px wide.
DPI = 100
#: The paper's ROIs first, in this order; others follow alphabetically.
ROI_ORDER = ("EarlyVis", "LOC", "OPA", "PPA", "RSC")


def group_color(group: str | None) -> str:
    """Colour of a feature-space group (grey when unknown)."""
    return GROUP_COLORS.get(group or "other", GROUP_COLORS["other"])


def save(fig: Figure, path: str | Path, *, tight: bool = True) -> Path:
    """Save a matplotlib figure as PNG atomically and close it.

    ``tight`` crops to the drawn content (costs a second draw); figures laid
    out by hand pass False.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return path


def margins(
    fig: Figure,
    *,
    left: float = 1.3,
    right: float = 0.2,
    bottom: float = 0.6,
    top: float = 0.45,
    wspace: float | None = None,
    hspace: float | None = None,
) -> None:
    """Fixed margins in inches (instead of tight_layout, which costs extra draws of the figure)."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(
        left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h, wspace=wspace, hspace=hspace
    )


def group_legend(ax: Axes, groups: Iterable[str | None], **kwargs: Any) -> None:
    """Legend with one patch per feature-space group present in ``groups``."""
    from matplotlib.patches import Patch

    seen = [g for g in GROUP_COLORS if g in set(groups)]
    ax.legend(handles=[Patch(color=group_color(g), label=g) for g in seen], fontsize=8, **({"loc": "best"} | kwargs))


def mean_r_bars(
    labels: Sequence[str],
    groups: Sequence[str | None],
    mean_all: ArrayLike,
    mean_sig: ArrayLike,
    path: str | Path,
) -> Path:
    """Mean r per feature space over all analysed voxels and over the significant ones.

    ``labels``, ``groups``: one per feature space; ``mean_all``/``mean_sig``:
    floats (NaN when no voxel is significant).
    """
    n = len(labels)
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 0.24 * n + 1.4))
    y = np.arange(n)[::-1]
    colors = [group_color(g) for g in groups]
    for ax, values, title in (
        (axes[0], mean_all, "all analysed voxels"),
        (axes[1], mean_sig, "significant voxels (q < FDR level)"),
    ):
        vals = np.asarray(values, dtype=float)
        ax.barh(y, np.nan_to_num(vals), color=colors, height=0.75)
        for yi, v in zip(y, vals):
            if not np.isfinite(v):
                ax.text(0, yi, " none significant", va="center", fontsize=7, color="#555")
        ax.set_yticks(y, labels, fontsize=8) if ax is axes[0] else ax.set_yticks([])
        ax.set_ylim(-0.6, n - 0.4)
        ax.set_xlabel("mean r (test set)")
        ax.set_title(title, fontsize=10)
        ax.axvline(0, color="k", lw=0.5)
        ax.grid(axis="x", lw=0.3)
    group_legend(axes[1], groups, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    axes[0].xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
    margins(fig, wspace=0.08, right=1.1)
    return save(fig, path, tight=False)


def _pooled_rois(table: pd.DataFrame) -> list[str]:
    rois = [str(r) for r in dict.fromkeys(table["roi"])]
    pooled = [r for r in rois if not r.startswith(("LH-", "RH-"))] or rois
    known = [r for r in ROI_ORDER if r in pooled]
    return known + sorted(r for r in pooled if r not in known)


def roi_bars(table: pd.DataFrame, labels: list[str], path: str | Path, *, alpha: float = 0.05) -> Path:
    """Mean r in each ROI, one bar per feature space coloured by group (the paper's Fig. 1).

    Parameters
    ----------
    table : DataFrame
        The ROI table (``feature_space, feature_group, roi, mean_r`` and
        optionally ``p_mean_r``); hemispheres pooled (ROIs without ``LH-``/``RH-``)
        are drawn when present.
    labels : list of str
        Feature spaces in display order (group, then label).
    alpha : float
        Bars with ``p_mean_r`` below it get a star.
    """
    rois = _pooled_rois(table)
    per_row = min(len(rois), 6)
    n_rows = int(np.ceil(len(rois) / per_row))
    groups = table.drop_duplicates("feature_space").set_index("feature_space")["feature_group"].to_dict()
    labels = [lab for lab in labels if lab in groups]
    n = len(labels)
    fig, axes = plt.subplots(n_rows, per_row, figsize=(2.4 + 1.9 * per_row, n_rows * (0.2 * n + 1.1)), squeeze=False)
    y = np.arange(n)[::-1]
    xmax = np.nanmax(np.abs(table["mean_r"].to_numpy(dtype=float))) if len(table) else 1.0
    has_p = "p_mean_r" in table.columns
    for ax, roi in zip(axes.flat, rois):
        sub = table[table["roi"].astype(str) == roi].set_index("feature_space")
        vals = np.array([float(sub["mean_r"].get(lab, np.nan)) for lab in labels])
        ax.barh(y, np.nan_to_num(vals), color=[group_color(groups[lab]) for lab in labels], height=0.75)
        if has_p:
            for yi, lab in zip(y, labels):
                p = float(sub["p_mean_r"].get(lab, np.nan))
                if p < alpha:
                    ax.text(max(float(sub["mean_r"].get(lab, 0)), 0) + 0.02 * xmax, yi, "*", va="center", fontsize=9)
        n_vox = int(sub["n_voxels"].iloc[0]) if "n_voxels" in sub and len(sub) else 0
        ax.set_title(f"{roi} ({n_vox} vox)", fontsize=9)
        ax.axvline(0, color="k", lw=0.5)
        ax.set_xlim(
            min(0.0, np.nanmin(np.nan_to_num(table["mean_r"].to_numpy(dtype=float)))) * 1.1,
            xmax * 1.15 if xmax > 0 else 1,
        )
        ax.grid(axis="x", lw=0.3)
        ax.tick_params(axis="x", labelsize=7)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(3))
        ax.set_xlabel("mean r", fontsize=8)
        ax.set_ylim(-0.6, n - 0.4)
        ax.set_yticks([])
    for ax in axes.flat[len(rois) :]:
        ax.set_axis_off()
    for row in axes:
        row[0].set_yticks(y, labels, fontsize=8)
        for tick, lab in zip(row[0].get_yticklabels(), labels):
            tick.set_color(group_color(groups[lab]))
    group_legend(axes.flat[per_row - 1], [groups[lab] for lab in labels], loc="upper left", bbox_to_anchor=(1.04, 1.0))
    margins(fig, wspace=0.1, right=1.1, hspace=0.6 / n_rows if n_rows > 1 else None)
    return save(fig, path, tight=False)


def _count_label(value: float, _pos=None) -> str:
    """Axis label of a count, at most 4 characters: 950, 1.2k, 120k, 3.4M."""
    v = abs(value)
    for div, unit in ((1e6, "M"), (1e3, "k")):
        if v >= div:
            text = f"{value / div:.1f}".rstrip("0").rstrip(".") if value / div < 10 else f"{value / div:.0f}"
            return text + unit
    return f"{value:.0f}"


def histograms(panels: Sequence[tuple[ArrayLike, str, str]], path: str | Path) -> Path:
    """Side-by-side histograms of finite values: ``panels`` is a list of ``(values, xlabel, title)``."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 2.9), squeeze=False)
    for ax, (values, xlabel, title) in zip(axes[0], panels):
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        ax.hist(values, bins=40, color="#555555", histtype="stepfilled")
        if values.size:
            med = float(np.median(values))
            ax.axvline(med, color="#d62728", lw=1)
            ax.text(med, ax.get_ylim()[1] * 0.95, f" median {med:.2g}", color="#d62728", fontsize=8, va="top")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("voxels")
        # 120k, not 120000: six-digit counts would push the label out of the fixed margin
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_count_label))
        ax.set_title(title, fontsize=10)
    margins(fig, left=0.8, wspace=0.3)
    return save(fig, path, tight=False)


def alpha_distribution(
    labels: Sequence[str],
    groups: Sequence[str | None],
    alphas: Sequence[ArrayLike],
    alpha_grid: Sequence[float] | None,
    path: str | Path,
) -> Path:
    """Share of voxels choosing each alpha of the grid, one row per feature space.

    ``alphas``: one ``(n_voxels,)`` array per feature space (empty when absent).
    """
    grid = (
        np.asarray(alpha_grid, dtype=float)
        if alpha_grid
        else np.unique(np.concatenate([np.asarray(a, float) for a in alphas] + [np.array([1.0])]))
    )
    counts = np.zeros((len(labels), grid.size))
    for i, a in enumerate(alphas):
        a = np.asarray(a, dtype=float)
        a = a[np.isfinite(a) & (a > 0)]
        if a.size:
            idx = np.abs(np.log10(a)[:, None] - np.log10(grid)[None, :]).argmin(axis=1)
            counts[i] = np.bincount(idx, minlength=grid.size) / a.size
    fig, ax = plt.subplots(figsize=(8.5, 0.26 * len(labels) + 1.5))
    im = ax.imshow(counts, aspect="auto", cmap="viridis", vmin=0, vmax=max(counts.max(), 1e-9))
    ax.set_yticks(np.arange(len(labels)), labels, fontsize=8)
    for tick, g in zip(ax.get_yticklabels(), groups):
        tick.set_color(group_color(g))
    ax.set_xticks(np.arange(grid.size), [f"{np.log10(v):.3g}" for v in grid], fontsize=7)
    ax.set_xlabel("log10 alpha (grid values; the first and last columns are the grid's edges)")
    ax.set_title("ridge alpha chosen per voxel (fraction of voxels)", fontsize=10)
    margins(fig, right=0.9)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
    return save(fig, path, tight=False)


#: Colour of the shared component in the variance-partitioning bars.
SHARED_COLOR = "#9467bd"


def partition_bars(table: pd.DataFrame, path: str | Path) -> Path:
    """Per ROI, the joint R² of each variance partitioning stacked as unique-A / shared / unique-B (/ unique-C).

    ``table`` is the ``desc-partitioningroi`` table (``partitioning, roi, component,
    mean_rsquared``); hemispheres pooled when present. Sets named after a group
    (3D, 2D, semantic, other) take its colour. Negative mean components (an
    estimate below 0, e.g. a shared R² where the sets' own parts overlap
    nothing) are drawn as 0 and marked with their value.
    """
    rois = _pooled_rois(table)
    parts = list(dict.fromkeys(table["partitioning"].astype(str)))
    fig, axes = plt.subplots(len(parts), 1, figsize=(1.2 + 1.1 * len(rois), 2.3 * len(parts) + 0.4), squeeze=False)
    fallback = iter(["#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#bcbd22"])
    colours: dict[str, str] = {}
    for ax, name in zip(axes[:, 0], parts):
        sub = table[table["partitioning"].astype(str) == name]
        comps = [str(c) for c in dict.fromkeys(sub["component"]) if str(c).startswith("unique")]
        order = [comps[0], "shared", *comps[1:]] if comps else ["shared"]
        x = np.arange(len(rois))
        bottom = np.zeros(len(rois))
        for comp in order:
            vals = np.array(
                [
                    float(sub[(sub["roi"].astype(str) == r) & (sub["component"] == comp)]["mean_rsquared"].mean())
                    for r in rois
                ]
            )
            label = comp[len("unique") :] if comp.startswith("unique") else comp
            if comp == "shared":
                colour = SHARED_COLOR
            else:
                colour = colours.setdefault(label, GROUP_COLORS.get(label) or next(fallback, "#7f7f7f"))
            shown = np.clip(np.nan_to_num(vals), 0.0, None)
            ax.bar(
                x,
                shown,
                bottom=bottom,
                color=colour,
                width=0.7,
                label=f"unique {label}" if comp != "shared" else "shared",
            )
            for xi, v in zip(x, vals):
                if v < 0:
                    ax.text(xi, bottom[xi], f"{v:.2f}", ha="center", va="bottom", fontsize=6, color=colour)
            bottom += shown
        ax.set_xticks(x)
        ax.set_xticklabels(rois, fontsize=8)
        ax.set_ylabel("mean R²", fontsize=8)
        ax.set_title(name, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", lw=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return save(fig, path)
