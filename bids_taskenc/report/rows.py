"""A figure of brain pictures: one row per map, its title above, a colour bar beside it, one ``imshow``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib import patheffects  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import PathPatch  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402

from bids_taskenc.report.figures import group_color, save  # noqa: E402
from bids_taskenc.report.tiles import MapSpec  # noqa: E402


@dataclass
class _Rows:
    """Row tiles stacked on one canvas: the RGB image ``(width, height, 3)``, the texts, and each row's place.

    ``texts`` are ``(x, y, text, ha, size, colour, weight[, va])`` in pixels; ``rows`` are ``(bottom, height)``;
    ``outlines`` the canvas's ``(roi, colour, segments)`` and ``segments`` each ROI's segments over every row.
    """

    image: np.ndarray
    texts: list[tuple]
    rows: list[tuple[int, int]]
    outlines: list
    segments: dict[str, list]

    @property
    def width(self) -> int:
        return self.image.shape[0]

    @property
    def height(self) -> int:
        return self.image.shape[1]


def draw_rows(tiles, specs: list[MapSpec], canvas, path: Path, *, title: str) -> Path:
    """Stack row tiles on one white canvas with a title above each row; one imshow.

    Every row has its colour bar beside it (rows of one kind share the scale, so the bars repeat it: a reader
    of the tenth row need not scroll back to the first). Orientation letters: horizontal ones in the header,
    vertical ones at the panels' top and bottom in the first row. Region outlines (slices, and flat maps given
    ROIs) are drawn on every row, one line collection per ROI, with a legend.
    """
    stacked = _stack_rows(tiles, specs, canvas)
    inches_w = 9.8
    inches_h = max(1.6, inches_w * stacked.height / stacked.width)
    fig_w = inches_w + 1.5 + (1.1 if stacked.outlines else 0.0)
    fig_h = inches_h + 0.45
    fig = plt.figure(figsize=(fig_w, fig_h))
    _draw_canvas(fig.add_axes((0.0, 0.0, inches_w / fig_w, inches_h / fig_h)), stacked)
    _colour_bars(fig, stacked, specs, (inches_w, inches_h))
    if stacked.outlines:
        handles = [Line2D([], [], color=colour, linewidth=2) for _, colour, _ in stacked.outlines]
        anchor = ((inches_w + 1.45) / fig_w, (inches_h - 0.1) / fig_h)  # right of the colour bars
        legend = fig.legend(
            handles,
            [name for name, _, _ in stacked.outlines],
            loc="upper left",
            fontsize=7,
            title="ROI outlines",
            title_fontsize=7,
            frameon=True,
            bbox_to_anchor=anchor,
        )
        legend.get_frame().set_facecolor("#777777")
    fig.suptitle(title, fontsize=11, y=1.0, va="top")
    return save(fig, path, tight=False)


def _stack_rows(tiles, specs: list[MapSpec], canvas) -> _Rows:
    """The header (panel names, orientation letters), then per row its title and its tile, top to bottom."""
    width = max(t[0].shape[0] for t in tiles)
    label_h = max(6, int(0.09 * max(t[0].shape[1] for t in tiles)))
    header_h = label_h
    heights = [t[0].shape[1] + label_h for t in tiles]
    height = sum(heights) + header_h
    image = np.ones((width, height, 3))
    texts: list[tuple] = []
    top = height
    spans = tiles[0][1]
    inside_letters = hasattr(canvas, "vletters")  # slices: all four letters inside the first row's panels
    for name, (left, w), (a, b) in zip(canvas.header, spans, canvas.letters):
        texts.append((left + w / 2, top - header_h * 0.5, name, "center", 8, "black", "normal"))
        if not inside_letters:
            texts.append((left, top - header_h * 0.5, a, "left", 8, "#555555", "bold"))
            texts.append((left + w, top - header_h * 0.5, b, "right", 8, "#555555", "bold"))
    top -= header_h
    rows = []  # (bottom, row height) in pixels
    outlines = canvas.outlines(spans) if hasattr(canvas, "outlines") else []
    segments: dict[str, list] = {name: [] for name, _, _ in outlines}
    for i, ((rgb, _), spec, row_h) in enumerate(zip(tiles, specs, heights)):
        texts.append(
            (0, top - label_h * 0.45, spec.title, "left", 9, group_color(spec.group) if spec.group else "black", "bold")
        )
        bottom = top - row_h
        image[: rgb.shape[0], bottom : bottom + rgb.shape[1]] = rgb
        if i == 0 and inside_letters:
            for (left, w), (low, high), (a, b), img_h in zip(
                spans, canvas.vletters, canvas.letters, canvas.panel_heights
            ):
                mid = bottom + img_h / 2
                texts += [
                    (left + 0.5, mid, a, "left", 7, "white", "bold", "center"),
                    (left + w - 0.5, mid, b, "right", 7, "white", "bold", "center"),
                    (left + w / 2, bottom + img_h - 0.5, high, "center", 7, "white", "bold", "top"),
                    (left + w / 2, bottom + 0.5, low, "center", 7, "white", "bold", "bottom"),
                ]
        for name, _, segs in outlines:
            shifted = segs.copy()
            shifted[:, :, 1] += bottom
            segments[name].append(shifted)
        rows.append((bottom, row_h))
        top = bottom
    return _Rows(image, texts, rows, outlines, segments)


def _draw_canvas(ax, stacked: _Rows) -> None:
    """The stacked image, the ROI outlines and the texts (white ones with a black edge) on one axes."""
    width, height = stacked.width, stacked.height
    ax.imshow(stacked.image.transpose(1, 0, 2), origin="lower", interpolation="nearest", extent=(0, width, 0, height))
    for name, colour, _ in stacked.outlines:
        outline = _segments_path(np.concatenate(stacked.segments[name]))
        # a dark edge under the colour keeps the outline visible over any colour map; one path each, not one
        # artist per pixel edge (a flat-map figure has ~10^5 of them)
        for edge, line_width in (("black", 2.0), (colour, 1.0)):  # add_artist: the limits are set below, not computed
            ax.add_artist(PathPatch(outline, fill=False, edgecolor=edge, linewidth=line_width, capstyle="butt"))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    stroke = [patheffects.withStroke(linewidth=1.5, foreground="black")]
    for x, y, text, ha, size, colour, weight, *va in stacked.texts:
        if text:
            ax.text(
                x,
                y,
                text,
                ha=ha,
                va=va[0] if va else "center",
                fontsize=size,
                color=colour,
                weight=weight,
                path_effects=stroke if colour == "white" else None,
            )


def _segments_path(segments: np.ndarray) -> MplPath:
    """``(n, 2, 2)`` line segments as one path (a move and a line each)."""
    codes = np.tile([MplPath.MOVETO, MplPath.LINETO], len(segments)).astype(MplPath.code_type)
    return MplPath(segments.reshape(-1, 2), codes)


def _colour_bars(fig, stacked: _Rows, specs: list[MapSpec], inches: tuple[float, float]) -> None:
    """A colour bar beside each row, as tall as three quarters of the row."""
    inches_w, inches_h = inches
    fig_w, fig_h = fig.get_size_inches()
    px_h = inches_h / stacked.height  # inches per pixel row
    for (bottom, row_h), spec in zip(stacked.rows, specs):
        y0, h = bottom * px_h + 0.1 * row_h * px_h, 0.75 * row_h * px_h
        cax = fig.add_axes([(inches_w + 0.3) / fig_w, y0 / fig_h, 0.15 / fig_w, h / fig_h])
        norm = mcolors.Normalize(spec.vmin, spec.vmax, clip=True)
        bar = fig.colorbar(ScalarMappable(norm, plt.get_cmap(spec.cmap)), cax=cax)
        bar.set_label(spec.label, fontsize=7)
        bar.ax.tick_params(labelsize=7)
