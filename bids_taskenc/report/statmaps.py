"""The participant report's maps of the registered statistics: one figure per shown statistic, a row per space.

Which statistics, and how (colour map, scale, threshold, caption), is the registry's
(:data:`bids_taskenc.outputs.statistics.STATISTICS`, entries with a ``display``); the maps are read from the outputs.
"""

from __future__ import annotations

import numpy as np

from bids_taskenc.core.fdr import below_fdr_level
from bids_taskenc.outputs.reading import read_masked_if_present, statmap_path
from bids_taskenc.outputs.statistics import MapStatistic, shown_statistics
from bids_taskenc.report.brain import BrainRenderer, MapSpec, shared_vmax
from bids_taskenc.report.inputs import ParticipantOutputs
from bids_taskenc.report.render import Figures


def statistic_figures(
    data: ParticipantOutputs, figs: Figures, brain: BrainRenderer, rows: list[dict]
) -> tuple[list[dict], list[MapSpec]]:
    """One figure per statistic the registry shows (:func:`~bids_taskenc.outputs.statistics.shown_statistics`).

    Returns the page's entries of the figures and the r maps' rows (empty without feature spaces).
    """
    stat_figures: list[dict] = []
    r_specs: list[MapSpec] = []
    for statistic in shown_statistics():
        display = statistic.display
        specs = statistic_specs(data, rows, statistic)
        if display is None or not specs:
            continue
        brain.figure(specs, figs(display.figure), title=display.title)
        alt = f"{statistic.name} maps of every feature space"
        stat_figures.append({"figure": display.figure, "alt": alt, "caption": display.caption})
        if statistic.name == "r":
            r_specs = specs
    return stat_figures, r_specs


def statistic_specs(data: ParticipantOutputs, rows: list[dict], statistic: MapStatistic) -> list[MapSpec]:
    """A row per feature space of one statistic's figure, read from its maps (a space without the map has none)."""
    display = statistic.display
    assert display is not None
    found = []
    for f, row in zip(data.features, rows):
        path = statmap_path(data.output_dir, data.participant, data.task, data.space, f.label, statistic.name)
        values = read_masked_if_present(path, data.mask)
        if values is not None:
            shown = f.significant if display.thresholded else np.isfinite(values)
            found.append((f, row, np.nan_to_num(values), shown))
    top = shared_vmax([v for _, _, v, _ in found], [shown for _, _, _, shown in found], display.floor)
    specs = []
    for f, row, values, shown in found:
        note = f"{row['n_sig']} voxels q < {f.fdr_level:g}" if row["n_sig"] else f"no voxel q < {f.fdr_level:g}"
        surface = data.surface_map(f.label, statistic.name)
        surface_shown = surface_below(data, f.label, "q", f.fdr_level) if display.thresholded else all_finite(surface)
        specs.append(
            MapSpec(
                f"{f.label} ({f.group}; {note})",
                values,
                shown,
                display.cmap,
                -top if display.symmetric else 0.0,
                top,
                display.label,
                group=f.group,
                surface=surface,
                surface_shown=surface_shown,
            )
        )
    return specs


def surface_below(data: ParticipantOutputs, desc: str, stat: str, level: float) -> dict | None:
    """Vertices of both hemispheres where the ``stat`` surface map (a q) is below ``level``; None without it."""
    q = data.surface_map(desc, stat)
    return None if q is None else {h: below_fdr_level(q[h], level) for h in q}


def all_finite(surface: dict | None) -> dict | None:
    """Vertices with a finite value, per hemisphere (None without a surface map)."""
    return None if surface is None else {h: np.isfinite(v) for h, v in surface.items()}
