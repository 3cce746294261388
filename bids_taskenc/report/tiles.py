"""What every brain picture is made of: a map to draw (:class:`MapSpec`), rows of panels, region outlines."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Grey of in-brain voxels that are not coloured; white is outside the brain.
MASK_GREY = 0.80

#: ROI outline colours, in the order of the ROI names (visible over grey anatomy, inferno and RdBu).
OUTLINE_COLOURS = ("#00e5ff", "#39ff14", "#ff2bd6", "#2f6bff", "#ff7f0e", "#00a86b", "#b266ff", "#8b4513")


@dataclass
class MapSpec:
    """One map to draw.

    Attributes
    ----------
    title : str
    values : ndarray, shape (n_voxels,)
        Over the brain-mask voxels.
    shown : ndarray of bool, shape (n_voxels,)
        Voxels drawn in colour (e.g. q below the FDR level); the rest is grey.
    cmap : str
    vmin, vmax : float
        Colour scale (shared by the maps of one kind, so they compare).
    label : str
        Colour-bar label with units.
    group : str, optional
        Feature-space group (colours the row title).
    surface : dict, optional
        ``{'L': (n_vertices,), 'R': ...}`` values on fsaverage5 (from GIFTI).
    surface_shown : dict, optional
        Same keys, booleans: vertices drawn in colour.
    """

    title: str
    values: np.ndarray
    shown: np.ndarray
    cmap: str
    vmin: float
    vmax: float
    label: str
    group: str | None = None
    surface: dict | None = None
    surface_shown: dict | None = None


def shared_vmax(vectors, masks, floor: float) -> float:
    """A colour-scale maximum shared by several maps: the largest 99th percentile of |values| where shown."""
    tops = [np.percentile(np.abs(v[m]), 99) for v, m in zip(vectors, masks) if m.any()]
    return max([floor, *tops])


def edges(region: np.ndarray) -> np.ndarray:
    """Boundary of a 2-D boolean ``(w, h)`` region as unit segments between pixels.

    Returns ``(n, 2, 2)``: ((x0, y0), (x1, y1)) per segment.
    """
    if not region.any():
        return np.zeros((0, 2, 2))
    padded = np.pad(region, 1)
    vi, vj = np.nonzero(padded[1:, 1:-1] != padded[:-1, 1:-1])  # between x = i - 1 and i, at x = i
    hi, hj = np.nonzero(padded[1:-1, 1:] != padded[1:-1, :-1])  # between y = j - 1 and j, at y = j
    vertical = np.stack([np.stack([vi, vj], -1), np.stack([vi, vj + 1], -1)], 1)
    horizontal = np.stack([np.stack([hi, hj], -1), np.stack([hi + 1, hj], -1)], 1)
    return np.concatenate([vertical, horizontal]).astype(float)


def panel_outlines(
    regions: list[tuple[str, list[tuple[np.ndarray, int]]]],
) -> list[tuple[str, str, np.ndarray]]:
    """``(name, colour, (n, 2, 2) segments)`` of every region with an edge in a row of panels.

    ``regions``: in display order, each region's name and, per panel, its 2-D boolean region and the panel's left
    pixel in the row; a region's colour is its place in ``regions`` (kept for regions with no edge shown).
    """
    out = []
    for i, (name, panels) in enumerate(regions):
        segments = []
        for region, left in panels:
            segs = edges(region)
            if segs.size:
                segs[:, :, 0] += left
                segments.append(segs)
        if segments:
            out.append((name, OUTLINE_COLOURS[i % len(OUTLINE_COLOURS)], np.concatenate(segments)))
    return out


def hstack(images: list[np.ndarray], gap: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """``(w_i, h_i, 3)`` images side by side, bottom-aligned, white gaps; returns the row and the spans."""
    height = max(img.shape[1] for img in images)
    width = sum(img.shape[0] for img in images) + gap * (len(images) - 1)
    row = np.ones((width, height, 3))
    spans: list[tuple[int, int]] = []
    left = 0
    for img in images:
        row[left : left + img.shape[0], : img.shape[1]] = img
        spans.append((left, img.shape[0]))
        left += img.shape[0] + gap
    return row, spans
