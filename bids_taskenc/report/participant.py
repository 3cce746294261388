"""The participant report ``<out>/sub-X.html``: data summary, quality, results, provenance."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bids_taskenc.__about__ import __version__
from bids_taskenc.outputs.naming import strip_prefix
from bids_taskenc.report import figures
from bids_taskenc.report.brain import (
    BrainRenderer,
    BrainView,
    MapSpec,
    choose_view,
    is_template_space,
    shared_vmax,
    slice_background,
    volume_view,
)
from bids_taskenc.report.citation import page_methods
from bids_taskenc.report.inputs import ParticipantOutputs, find_roi_masks_of, load_participant
from bids_taskenc.report.logs import log_links, run_log_warnings
from bids_taskenc.report.quality import findings, repeats_per_image, split_half_reliability
from bids_taskenc.report.render import Figures, prune_figures, render_page
from bids_taskenc.report.statmaps import all_finite, statistic_figures, surface_below

#: Voxels listed per feature space in the table of top voxels.
TOP_VOXELS = 5
#: ROIs listed per feature space.
TOP_ROIS = 3


def feature_rows(data: ParticipantOutputs) -> list[dict]:
    """One row per feature space: group, voxel counts, r summaries, top voxels and top ROIs."""
    pooled = None
    if data.roi_table is not None and len(data.roi_table):
        table = data.roi_table
        rois = table["roi"].astype(str)
        pooled = table[~rois.str.startswith(("LH-", "RH-"))]
        if not len(pooled):
            pooled = table
    rows = []
    for f in data.features:
        sig = f.significant
        r_sig = f.r[sig]
        top = []
        if sig.any():
            idx = np.flatnonzero(sig)[np.argsort(-f.r[sig], kind="stable")[:TOP_VOXELS]]
            top = [
                {"mm": tuple(round(float(c)) for c in xyz), "r": float(f.r[i])}
                for i, xyz in zip(idx, data.voxel_mm(idx))
            ]
        top_rois = []
        if pooled is not None:
            sub = pooled[pooled["feature_space"].astype(str) == f.label].sort_values("mean_r", ascending=False)
            for rec in sub.head(TOP_ROIS).to_dict(orient="records"):
                top_rois.append(
                    {
                        "roi": rec["roi"],
                        "mean_r": float(rec["mean_r"]),
                        "p": float(rec["p_mean_r"]) if "p_mean_r" in rec else None,
                        "fraction": float(rec.get("fraction_significant", np.nan)),
                    }
                )
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
                "top_voxels": top,
                "top_rois": top_rois,
            }
        )
    return rows


def data_summary(data: ParticipantOutputs) -> dict:
    """Sessions, runs, trials, images, repeats, voxels, space, response model and fit settings."""
    side = data.first_sidecar
    resp = side.get("Responses", {})
    split = side.get("Split", {})
    sessions = data.sessions()
    k = repeats_per_image(data)
    repeated = resp.get("NRepeatedImages")
    return {
        "Participant": f"sub-{data.participant}",
        "Task": data.task,
        "Space": data.space,
        "Sessions": f"{len(sessions)} ({', '.join(sessions)})" if sessions else "n/a (no session entity)",
        "Runs": resp.get("NRuns"),
        "Trials": resp.get("NTrials"),
        "Unique images": resp.get("NImages"),
        "Repeated images": (
            f"{repeated} (median {k:g} presentations each)" if repeated is not None and k else repeated
        ),
        "Voxels analysed": resp.get("NVoxels", int(data.mask.sum())),
        "Voxels dropped": resp.get("NVoxelsDropped"),
        "Response model": resp.get("ResponseModel"),
        "Response TRs": ", ".join(str(t) for t in resp.get("ResponseTRs", [])) or None,
        "Train / test images": f"{split.get('NTrain')} / {split.get('NTest')}",
        "Test fraction, seed": f"{split.get('TestFraction')}, {split.get('Seed', side.get('Seed'))}",
        "CV folds": side.get("CVFolds"),
        "Alpha grid": _grid_text(side.get("AlphaGrid")),
        "p-values": f"{side.get('PValueMethod')} ({side.get('PValueSides', 'n/a')})",
        "FDR": f"{side.get('FDRMethod', 'Benjamini-Hochberg')}, q < {side.get('FDRLevel')}",
        "Precision, device": f"{side.get('Precision')}, {side.get('Device')}",
    }


def _grid_text(grid) -> str | None:
    if not grid:
        return None
    return f"{len(grid)} values, {min(grid):g} to {max(grid):g}"


def write_participant_report(
    output_dir: str | Path,
    participant: str,
    *,
    task: str | None = None,
    pycortex_subject: str | None = None,
    pycortex_xfm: str | None = None,
) -> Path:
    """Write ``<output_dir>/sub-<participant>.html`` and its PNG figures under ``figures/``.

    Parameters
    ----------
    output_dir : path
        The bids_taskenc derivatives folder (participant level already run).
    participant : str
        Label with or without ``sub-``.
    task : str, optional
        Task label; the first task with maps when omitted.
    pycortex_subject, pycortex_xfm : str, optional
        pycortex subject (and transform) for flatmaps; see :func:`~bids_taskenc.report.brain.choose_view`.

    Returns
    -------
    Path of the HTML page.
    """
    out = Path(output_dir)
    participant = strip_prefix(participant, "sub")
    data = load_participant(out, participant, task)
    figs = Figures(out, sub=participant, task=data.task)
    rows = feature_rows(data)
    view = choose_view(data, pycortex_subject=pycortex_subject, pycortex_xfm=pycortex_xfm)
    reliability, reliability_note = split_half_reliability(data)
    brain, cut, notes = _brain_renderer(data, view)
    _quality_figures(data, figs, brain, reliability)
    slices_view, coverage, stat_figures = _accuracy_figures(data, figs, brain, rows, cut)
    contrasts = _contrast_figures(data, figs, brain)
    partitionings = _partitioning_figures(data, figs, brain)
    prune_figures(out, f"sub-{participant}_task-{data.task}_", figs.written)
    view = brain.view  # a failed pycortex drawing fell back to another view
    if view.kind == "slices":
        view.underlay, view.outlines = notes
    elif view.kind == "flat":
        view.outlines = notes[1]
    side = data.first_sidecar
    logs = log_links(out, "participant", participant)
    return render_page(
        "participant.html.j2",
        out / f"sub-{participant}.html",
        title=f"bids_taskenc report: sub-{participant}, task {data.task}",
        summary=data_summary(data),
        rows=rows,
        figs=figs.names,
        contrasts=contrasts,
        partitionings=partitionings,
        view=view,
        slices_view=slices_view,
        stat_figures=stat_figures,
        coverage=coverage,
        group_link=(out / "group.html").exists(),
        nc_stats=_stats(data.noise_ceiling),
        reliability_stats=_stats(reliability),
        reliability_note=reliability_note,
        findings=findings(data),
        has_roi_p=data.roi_table is not None and "p_mean_r" in data.roi_table.columns,
        roi_table=None if data.roi_table is None else data.roi_table.to_dict(orient="records"),
        command_line=data.command_lines,
        versions=side.get("SoftwareVersions", {}),
        config=side.get("Config", {}),
        logs=logs,
        run_warnings=run_log_warnings(out, logs, participant),
        participant=participant,
        methods=page_methods(out, task=data.task),
        version=__version__,
    )


def _brain_renderer(data: ParticipantOutputs, view: BrainView) -> tuple[BrainRenderer, int | None, tuple]:
    """The maps' renderer: its cut through the strongest voxel, and (for slices) the anatomy and ROI outlines.

    Returns the renderer, the cut's voxel index (None without a significant voxel) and the sentences saying where
    the underlay and the outlines came from.
    """
    cut = None
    score = sum(np.where(f.significant, f.r, 0.0) for f in data.features)
    if np.ndim(score) and np.nanmax(score) > 0:
        cut = int(np.nanargmax(score))
    underlay = underlay_note = None
    if view.kind != "flat":  # slices, or pycortex, which falls back to slices if it fails
        underlay, underlay_note = slice_background(data)
    rois, outline_note = find_roi_masks_of(data)  # outlined on slices and on flat maps
    brain = BrainRenderer(data, view, cut_index=cut, underlay=underlay, rois=rois)
    return brain, cut, (underlay_note, outline_note)


def _quality_figures(data: ParticipantOutputs, figs: Figures, brain: BrainRenderer, reliability) -> None:
    """Quality: histograms and maps of the noise ceiling and split-half reliability, the chosen alphas."""
    panels = []
    if data.noise_ceiling is not None:
        panels.append((data.noise_ceiling, "noise ceiling (fraction of variance)", "noise ceiling"))
    if reliability is not None:
        panels.append((reliability, "split-half reliability (r)", "split-half reliability"))
    if panels:
        figures.histograms(panels, figs("reliabilityhist"))
    specs = _reliability_specs(data, reliability)
    if specs:
        brain.figure(specs, figs("reliabilitymaps"), title="reliability of the responses")
    figures.alpha_distribution(
        [f.label for f in data.features],
        [f.group for f in data.features],
        [f.alpha if f.alpha is not None else np.array([]) for f in data.features],
        data.first_sidecar.get("AlphaGrid"),
        figs("alpha"),
    )


def _reliability_specs(data: ParticipantOutputs, reliability) -> list[MapSpec]:
    specs = []
    if data.noise_ceiling is not None:
        # a fraction of variance (0-1, NSD's formula without the x100): its own scale, sequential
        nc = np.nan_to_num(data.noise_ceiling)
        surf = data.surface_map("noise", "noiseceiling")
        top = min(1.0, shared_vmax([nc], [np.isfinite(data.noise_ceiling)], 0.05))
        specs.append(
            MapSpec(
                "noise ceiling",
                nc,
                np.isfinite(data.noise_ceiling),
                "viridis",
                0.0,
                top,
                "noise ceiling (fraction of variance)",
                surface=surf,
                surface_shown=all_finite(surf),
            )
        )
    if reliability is not None:
        rel = np.nan_to_num(reliability)
        surf = data.surface_map("noise", "splithalf")
        if surf is None and data.splithalf is None:
            snr = data.surface_map("noise", "ncsnr")
            k = repeats_per_image(data) or 2.0
            surf = None if snr is None else {h: snr[h] ** 2 / (snr[h] ** 2 + 2.0 / k) for h in snr}
        # a correlation: diverging and symmetric, so that negative r shows (blue)
        top = min(1.0, shared_vmax([rel], [np.isfinite(reliability)], 0.1))
        specs.append(
            MapSpec(
                "split-half reliability",
                rel,
                np.isfinite(reliability),
                "RdBu_r",
                -top,
                top,
                "split-half r",
                surface=surf,
                surface_shown=all_finite(surf),
            )
        )
    return specs


def _accuracy_figures(
    data: ParticipantOutputs, figs: Figures, brain: BrainRenderer, rows: list[dict], cut: int | None
) -> tuple[BrainView | None, float | None, list[dict]]:
    """Results: mean r per ROI (or whole brain), the maps of every shown statistic, and in a template space the
    r maps in the volume beside the flat maps.

    Returns the volume view (or None), the fraction of flat-map vertices with a value (or None) and the page's
    entries of the statistic figures (``figure``, ``alt``, ``caption``).
    """
    labels = [r["label"] for r in rows]
    if data.roi_table is not None and len(data.roi_table):
        figures.roi_bars(data.roi_table, labels, figs("roibars"))
    else:  # without ROIs, the whole-brain means stand in for Fig. 1 (with ROIs the table below has them)
        figures.mean_r_bars(
            labels,
            [r["group"] for r in rows],
            [r["mean_r_all"] for r in rows],
            [r["mean_r_sig"] for r in rows],
            figs("meanr"),
        )
    stat_figures, specs = statistic_figures(data, figs, brain, rows)
    coverage = None
    if specs and brain.view.kind == "flat" and specs[0].surface is not None:
        finite = [np.isfinite(np.asarray(v, dtype=float)) for v in specs[0].surface.values()]
        coverage = float(np.mean(np.concatenate(finite)))
    slices_view: BrainView | None = None
    if specs and brain.view.kind == "flat" and is_template_space(data.space):
        # the flat maps lose what is off the cortical ribbon: the volume too, over the template's anatomy
        slices_view = volume_view(data)
        rois, slices_view.outlines = find_roi_masks_of(data)
        volume, slices_view.underlay = slice_background(data)
        BrainRenderer(data, slices_view, cut_index=cut, underlay=volume, rois=rois).figure(
            specs, figs("rslices"), title="prediction accuracy r in the volume, where q is below the FDR level"
        )
    return slices_view, coverage, stat_figures


def _contrast_figures(data: ParticipantOutputs, figs: Figures, brain: BrainRenderer) -> list[dict]:
    """Contrasts: one row each for the page, their r(A) - r(B) maps in one figure."""
    vmax_c = shared_vmax([c.rdiff for c in data.contrasts], [c.significant for c in data.contrasts], 0.05)
    contrasts, specs = [], []
    for c in data.contrasts:
        sig = c.significant
        info = c.info
        entry = {
            "label": c.label,
            "name": info.get("Name", c.label),
            "a": info.get("A", []),
            "b": info.get("B", []),
            "statistic": info.get("Statistic", "r difference"),
            "test": info.get("Test"),
            "n_bootstrap": info.get("NBootstrap"),
            "fdr": c.fdr_level,
            "n_a": int(np.sum(sig & (c.rdiff > 0))),
            "n_b": int(np.sum(sig & (c.rdiff < 0))),
            "mean_rdiff": float(np.nanmean(c.rdiff)),
            "has_q": c.q is not None,
        }
        contrasts.append(entry)
        specs.append(
            MapSpec(
                f"{entry['name']} (A > B: {entry['n_a']}, B > A: {entry['n_b']} voxels)",
                c.rdiff,
                sig,
                "RdBu_r",
                -vmax_c,
                vmax_c,
                "r(A) - r(B)",
                surface=data.surface_map(c.label, "rdiff"),
                surface_shown=surface_below(data, c.label, "q", c.fdr_level),
            )
        )
    if specs:
        brain.figure(
            specs, figs("contrasts"), title="contrasts: r(A) - r(B) where the contrast's q is below the FDR level"
        )
    return contrasts


def _partitioning_figures(data: ParticipantOutputs, figs: Figures, brain: BrainRenderer) -> list[dict]:
    """Variance partitionings: one entry each for the page, the unique-R² maps, the ROI bars."""
    if not data.partitionings:
        return []
    vps = data.partitionings
    vmax_u = shared_vmax(
        [vp.unique[lab] for vp in vps for lab in vp.set_labels if vp.unique.get(lab) is not None],
        [vp.significant(lab) for vp in vps for lab in vp.set_labels if vp.unique.get(lab) is not None],
        0.02,
    )
    vmax_u = min(1.0, vmax_u)  # an R² difference can pass 1 only where the reduced model's R² is below 0
    partitionings: list[dict] = []
    specs: list[MapSpec] = []
    for vp in vps:
        sets = [_partition_set(data, vp, st, vmax_u, specs) for st in vp.info.get("Sets", [])]
        partitionings.append(
            {
                "label": vp.label,
                "sets": sets,
                "fdr": vp.fdr_level,
                "mean_joint": float(np.nanmean(vp.joint)),
                "mean_shared": float(np.nanmean(vp.shared)) if vp.shared is not None else None,
            }
        )
    if specs:
        brain.figure(
            specs,
            figs("uniquemaps"),
            title="variance partitioning: unique R² of each set where its q is below the FDR level",
        )
    if data.partition_table is not None and len(data.partition_table):
        figures.partition_bars(data.partition_table, figs("partitionbars"))
    return partitionings


def _partition_set(data: ParticipantOutputs, vp, st: dict, vmax_u: float, specs: list[MapSpec]) -> dict:
    """One feature set of a partitioning: its row for the page; its unique-R² map appended to ``specs``."""
    lab = st.get("Label")
    values = vp.unique.get(lab)
    n_sig = int(vp.significant(lab).sum())
    if values is not None:
        specs.append(
            MapSpec(
                f"{vp.label}: unique R² of {lab} ({n_sig} voxels q < {vp.fdr_level:g})",
                np.nan_to_num(values),
                vp.significant(lab),
                "inferno",
                0.0,
                vmax_u,
                "unique R² (test set)",
                group=lab if lab in figures.GROUP_COLORS else None,
                surface=data.surface_map(vp.label, f"uniquersquared{lab}"),
                surface_shown=surface_below(data, vp.label, f"uniqueq{lab}", vp.fdr_level),
            )
        )
    return {
        "label": lab,
        "spaces": st.get("FeatureSpaces", []),
        "n_sig": n_sig,
        "mean_unique": float(np.nanmean(values)) if values is not None else float("nan"),
    }


def _stats(values) -> dict | None:
    if values is None:
        return None
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not values.size:
        return None
    return {"median": float(np.median(values)), "p90": float(np.percentile(values, 90)), "max": float(values.max())}
