"""The participant report ``<out>/sub-X.html``: data summary, quality, results."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bids_taskenc.__about__ import __version__
from bids_taskenc.outputs.naming import strip_prefix
from bids_taskenc.report import figures
from bids_taskenc.report.inputs import ParticipantOutputs, load_participant
from bids_taskenc.report.render import figure_path, render_page

#: What the stat-map figures show, and why (no anatomical image among the outputs).
VIEW_NOTE = (
    "Orthogonal slices in the participant's analysis space, with the outline of the brain mask "
    "and no background image (bg_img=None): the outputs hold no anatomical image, and the brain "
    "mask is the only image that shares the maps' grid; surface flat maps are not drawn yet."
)


def feature_rows(data: ParticipantOutputs) -> list[dict]:
    """One row per feature space: group, voxel counts and r summaries over significant voxels."""
    rows = []
    for f in data.features:
        sig = f.significant
        r_sig = f.r[sig]
        peak = None
        if sig.any():
            vox = np.argwhere(data.mask)[np.flatnonzero(sig)[np.argmax(r_sig)]]
            peak = tuple(round(float(c), 1) for c in data.mask_img.affine[:3, :3] @ vox + data.mask_img.affine[:3, 3])
        rows.append(
            {
                "label": f.label,
                "name": f.name,
                "group": f.group,
                "fdr": f.fdr_level,
                "n_voxels": int(f.r.size),
                "n_sig": int(sig.sum()),
                "mean_r_all": float(np.nanmean(f.r)) if f.r.size else float("nan"),
                "mean_r_sig": float(np.nanmean(r_sig)) if r_sig.size else float("nan"),
                "max_r": float(np.nanmax(f.r)) if f.r.size else float("nan"),
                "peak_mm": peak,
            }
        )
    return rows


def data_summary(data: ParticipantOutputs) -> dict:
    """Runs, trials, images, repeats, voxels, space, response model and split from the sidecars."""
    side = data.first_sidecar
    resp = side.get("Responses", {})
    split = side.get("Split", {})
    return {
        "Participant": f"sub-{data.participant}",
        "Task": data.task,
        "Space": data.space,
        "Response model": resp.get("ResponseModel"),
        "Response TRs": ", ".join(str(t) for t in resp.get("ResponseTRs", [])) or None,
        "Runs": resp.get("NRuns"),
        "Trials": resp.get("NTrials"),
        "Unique images": resp.get("NImages"),
        "Repeated images": resp.get("NRepeatedImages"),
        "Voxels analysed": resp.get("NVoxels", int(data.mask.sum())),
        "Train / test images": f"{split.get('NTrain')} / {split.get('NTest')}",
        "Test fraction": split.get("TestFraction"),
        "CV folds": side.get("CVFolds"),
        "Alpha grid": _grid_text(side.get("AlphaGrid")),
        "p-values": side.get("PValueMethod"),
        "FDR": f"{side.get('FDRMethod', 'Benjamini-Hochberg')}, q < {side.get('FDRLevel')}",
        "Precision": side.get("Precision"),
        "Device": side.get("Device"),
    }


def _grid_text(grid) -> str | None:
    if not grid:
        return None
    return f"{len(grid)} values, {min(grid):g} to {max(grid):g} (log-spaced)"


def write_participant_report(output_dir: str | Path, participant: str, *, task: str | None = None) -> Path:
    """Write ``<output_dir>/sub-<participant>.html`` and its PNG figures under ``figures/``.

    Parameters
    ----------
    output_dir : path
        The bids_taskenc derivatives folder (participant level already run).
    participant : str
        Label with or without ``sub-``.
    task : str, optional
        Task label; the first task with maps when omitted.

    Returns
    -------
    Path of the HTML page.
    """
    out = Path(output_dir)
    participant = strip_prefix(participant, "sub")
    data = load_participant(out, participant, task)
    ents = dict(sub=participant, task=data.task)
    figs: dict[str, str] = {}
    rows = feature_rows(data)

    path, figs["bars"] = figure_path(out, desc="meanr", **ents)
    figures.mean_r_bars(
        [r["label"] for r in rows], [r["group"] for r in rows],
        [r["mean_r_all"] for r in rows], [r["mean_r_sig"] for r in rows], path,
    )
    grid = data.first_sidecar.get("AlphaGrid")
    path, figs["alpha"] = figure_path(out, desc="alpha", **ents)
    figures.alpha_distribution(
        [f.label for f in data.features], [f.group for f in data.features],
        [f.alpha if f.alpha is not None else np.array([]) for f in data.features], grid, path,
    )
    if data.noise_ceiling is not None:
        path, figs["nc_hist"] = figure_path(out, desc="noiseceilinghist", **ents)
        figures.histogram(data.noise_ceiling, path, xlabel="noise ceiling", title="noise ceiling over brain voxels")
        path, figs["nc_map"] = figure_path(out, desc="noiseceilingmap", **ents)
        figures.stat_map(data.volume(data.noise_ceiling), data.mask_img, path, title="noise ceiling", cmap="hot")

    maps = []
    for f, row in zip(data.features, rows):
        entry = {"row": row, "src": None}
        if row["n_sig"]:
            path, entry["src"] = figure_path(out, desc=f"{f.label}map", **ents)
            thresholded = np.where(f.significant, f.r, 0.0)
            figures.stat_map(
                data.volume(thresholded), data.mask_img, path,
                title=f"{f.label}: r, q < {f.fdr_level:g}", threshold=1e-6,
            )
        maps.append(entry)

    side = data.first_sidecar
    return render_page(
        "participant.html.j2",
        out / f"sub-{participant}.html",
        title=f"bids_taskenc report: sub-{participant}, task {data.task}",
        summary=data_summary(data),
        rows=rows,
        figs=figs,
        maps=maps,
        view_note=VIEW_NOTE,
        nc_stats=_nc_stats(data.noise_ceiling),
        command_line=side.get("CommandLine", "n/a"),
        versions=side.get("SoftwareVersions", {}),
        config=side.get("Config", {}),
        version=__version__,
    )


def _nc_stats(nc) -> dict | None:
    if nc is None:
        return None
    nc = nc[np.isfinite(nc)]
    if not nc.size:
        return None
    return {"median": float(np.median(nc)), "p90": float(np.percentile(nc, 90)), "max": float(nc.max())}
