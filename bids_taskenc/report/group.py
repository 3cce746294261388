"""The group report ``<out>/group.html``: similarity, consistency, trees, graphs, comparison."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from bids_taskenc.__about__ import __version__
from bids_taskenc.core.fdr import below_fdr_level, recorded_fdr_level
from bids_taskenc.outputs.naming import derivative_path
from bids_taskenc.report import groupfigs
from bids_taskenc.report.brain import BrainRenderer, MapSpec, choose_group_view, shared_vmax
from bids_taskenc.report.citation import page_methods
from bids_taskenc.report.groupinputs import group_file, load_group_maps, matrix_from_table
from bids_taskenc.report.inputs import find_tasks, read_json, read_table
from bids_taskenc.report.logs import log_links, run_log_warnings
from bids_taskenc.report.render import Figures, prune_figures, render_page


def _records(table) -> list[dict]:
    if table is None:
        return []
    return [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in table.to_dict(orient="records")
    ]


def _reorder(labels: list[str], matrix: np.ndarray, order: list[str]) -> tuple[list[str], np.ndarray]:
    keep = [t for t in order if t in labels]
    idx = [labels.index(t) for t in keep]
    return keep, matrix[np.ix_(idx, idx)]


def fdr_level(settings: dict) -> float | None:
    """The group level's one FDR level as its sidecars record it (``Settings.FDRLevel``).

    None when the outputs predate that rule (a string was recorded): the page
    then counts nothing rather than assume a level.
    """
    return recorded_fdr_level(settings)


def _group_map_figure(
    out: Path, task: str, labels: list[str], group_of: dict, settings: dict, n_participants: int, fig
) -> dict | None:
    """Draw the group mean-r maps (one row per feature space); the page's facts about them, or None."""
    maps = load_group_maps(out, task, labels)
    if maps is None:
        return None
    level = fdr_level(settings)
    view = choose_group_view(maps.space)
    everywhere = np.ones(int(maps.mask.sum()), dtype=bool)
    # coloured where the group test holds (q below the group's FDR level); without a recorded level, unthresholded
    shown = {label: everywhere if level is None else below_fdr_level(maps.q[label], level) for label in maps.meanr}
    vmax = shared_vmax(list(maps.meanr.values()), [shown[label] for label in maps.meanr], 0.1)
    specs, rows = [], []
    for label, r in maps.meanr.items():
        n_sig = None if level is None else int(np.sum(shown[label]))
        rows.append(
            {
                "label": label,
                "group": group_of.get(label, "other"),
                "n_sig": n_sig,
                "max_r": float(np.nanmax(r)) if r.size else float("nan"),
                "median_r": float(np.nanmedian(r)) if r.size else float("nan"),
            }
        )
        counted = f"{n_sig} voxels group q < {level:g}" if level is not None else "FDR level not recorded"
        specs.append(
            MapSpec(
                f"{label} ({rows[-1]['group']}; {counted})",
                r,
                shown[label],
                "RdBu_r",
                -vmax,
                vmax,
                "group mean r",
                group=group_of.get(label),
            )
        )
    renderer = BrainRenderer(maps, view)
    title = f"group mean r over {n_participants} participants (Fisher-z average)"
    survivors = level is not None and any(row["n_sig"] for row in rows)
    if level is None or survivors:
        where = f"where the group t-test gives q < {level:g}" if level is not None else "unthresholded (no FDR level)"
        renderer.figure(specs, fig("groupmaps"), title=f"{title}, {where}")
    if level is not None:  # the same maps unthresholded, for orientation (the flat view has sampled them already)
        top = shared_vmax(list(maps.meanr.values()), [everywhere] * len(maps.meanr), 0.1)
        renderer.figure(
            [replace(s, shown=everywhere, surface_shown=_finite(s.surface), vmin=-top, vmax=top) for s in specs],
            fig("groupmapsunthresholded"),
            title=f"{title}, unthresholded",
        )
    return {
        "space": maps.space,
        "n_voxels": int(maps.mask.sum()),
        "level": level,
        "rows": rows,
        "view": view.description,
        "reason": view.reason,
        "n_participants": n_participants,
        "survivors": survivors,
    }


def _finite(surface: dict | None) -> dict | None:
    return None if surface is None else {h: np.isfinite(v) for h, v in surface.items()}


def write_group_report(output_dir: str | Path, *, task: str | None = None) -> Path:
    """Write ``<output_dir>/group.html`` and its PNG figures under ``figures/``.

    Reads the group-level derivatives in ``<output_dir>/group/`` (similarity
    matrices, tree, graph, consistency and, when present, the Taskonomy
    comparison) and the per-participant similarity matrices.

    Raises
    ------
    FileNotFoundError
        When the group level has not been run (no similarity matrix).
    """
    out = Path(output_dir)
    task = _group_task(out, task)
    labels, matrix = _similarity(out, task)
    meta = read_json(group_file(out, task, "similarity", "matrix", ".json"))
    tree = read_json(group_file(out, task, "tree", "dendrogram", ".json"))
    settings = meta.get("Settings", {})
    group_of = meta.get("FeatureGroups", {})
    order = [t for t in tree.get("LeafOrder", labels) if t in labels] or list(labels)
    order += [t for t in labels if t not in order]  # spaces left out of the tree go last
    top_k = int(settings.get("TopK", 3))
    participants = meta.get("Participants", [])
    figs = Figures(out, task=task)
    ordered, ordered_matrix = _reorder(labels, matrix, order)
    ref = _matrix_figures(out, task, order, (ordered, ordered_matrix), group_of, participants, figs)
    ref_tree = _tree_figure(out, task, tree, group_of, figs)
    neighbours = _graph_figure((ordered, ordered_matrix), ref, group_of, top_k, figs)
    comparison = _comparison_figure(out, task, figs)
    roi_panels = _roi_figure(out, task, order, ordered, group_of, figs)
    maps_section = _group_map_figure(out, task, ordered, group_of, settings, len(participants), figs)
    prune_figures(out, f"task-{task}_", figs.written)
    logs = log_links(out, "group")
    return render_page(
        "group.html.j2",
        out / "group.html",
        title=f"bids_taskenc group report: task {task}",
        task=task,
        participants=participants,
        participant_pages={p: (out / f"sub-{p}.html").exists() for p in participants},
        spaces=meta.get("Spaces", {}),
        settings=settings,
        features=[(t, meta.get("FeatureSpaces", {}).get(t, t), group_of.get(t, "other")) for t in ordered],
        figs=figs.names,
        has_reference=bool(ref_tree),
        top_k=top_k,
        isolated=[t for t, c in neighbours.items() if c == 0],
        fewer=[(t, c) for t, c in neighbours.items() if 0 < c < top_k],
        min_edge=groupfigs.MIN_EDGE,
        logs=logs,
        run_warnings=run_log_warnings(out, logs),
        methods=page_methods(out, task=task),
        comparison=comparison,
        fdr_level=fdr_level(settings),
        bootstrap=tree.get("Bootstrap"),
        excluded=tree.get("ExcludedFeatureSpaces", []),
        tied=tree.get("TiedClades", []),
        consistency=read_json(group_file(out, task, "consistency", "stats", ".json")),
        pairs=_records(read_table(group_file(out, task, "consistency", "stats", ".tsv"))),
        clades=_records(read_table(group_file(out, task, "tree", "clades", ".tsv"))),
        topk=_records(read_table(group_file(out, task, "graph", "topk", ".tsv"))),
        rois=[r for r, _ in roi_panels],
        group_maps=maps_section,
        command_line=meta.get("CommandLine", "n/a"),
        versions=meta.get("SoftwareVersions", {}),
        config={"Settings": settings, "Inputs": meta.get("Inputs", [])},
        version=__version__,
    )


def _group_task(out: Path, task: str | None) -> str:
    if task is not None:
        return task
    tasks = find_tasks(out)
    if not tasks:
        raise FileNotFoundError(f"no group-level outputs under {out / 'group'}")
    return tasks[0]


def _similarity(out: Path, task: str) -> tuple[list[str], np.ndarray]:
    """The averaged similarity matrix (labels, ``(F, F)``); FileNotFoundError when the group level has not run."""
    sim = matrix_from_table(read_table(group_file(out, task, "similarity", "matrix", ".tsv")))
    if sim is None:
        raise FileNotFoundError(
            f"{group_file(out, task, 'similarity', 'matrix', '.tsv')} is missing: run the group level first"
        )
    return sim


def _matrix_figures(
    out: Path,
    task: str,
    order: list[str],
    brain: tuple[list[str], np.ndarray],
    group_of: dict,
    participants: list[str],
    figs: Figures,
) -> tuple[list[str], np.ndarray] | None:
    """Heat maps: the brain's similarity, Taskonomy's (returned, in tree order; None without it), each participant's."""
    ordered, ordered_matrix = brain
    groupfigs.similarity_heatmap(
        ordered_matrix,
        ordered,
        group_of,
        figs("similarity"),
        title="brain: cosine similarity of the thresholded r maps (tree order)",
    )
    ref = matrix_from_table(read_table(group_file(out, task, "taskonomysimilarity", "matrix", ".tsv")))
    if ref is not None:
        ref = _reorder(*ref, order)
        groupfigs.similarity_heatmap(
            ref[1],
            ref[0],
            group_of,
            figs("taskonomysimilarity"),
            title="Taskonomy: transfer-out similarity (brain's tree order)",
            vmin=float(np.floor(10 * np.nanmin(ref[1])) / 10),
        )
    per = []
    for p in participants:
        m = matrix_from_table(
            read_table(derivative_path(out, sub=p, task=task, desc="similarity", suffix="matrix", extension=".tsv"))
        )
        if m is not None:
            per.append((f"sub-{p}", _reorder(*m, order)[1]))
    if len(per) > 1:
        groupfigs.matrix_grid(per, ordered, group_of, figs("participantsimilarity"))
    return ref


def _tree_figure(out: Path, task: str, tree: dict, group_of: dict, figs: Figures) -> dict:
    """The brain's and Taskonomy's dendrograms side by side; returns Taskonomy's tree record (``{}`` without)."""
    ref_tree = read_json(group_file(out, task, "taskonomytree", "dendrogram", ".json"))
    trees = []
    if tree.get("Linkage"):
        trees.append(("brain (this dataset)", tree["Linkage"], tree["LinkageLeaves"], group_of))
    if ref_tree.get("Linkage"):
        trees.append(("Taskonomy (transfer affinities)", ref_tree["Linkage"], ref_tree["LinkageLeaves"], group_of))
    if trees:
        groupfigs.dendrograms(trees, figs("trees"))
    return ref_tree


def _graph_figure(brain: tuple[list[str], np.ndarray], ref, group_of: dict, top_k: int, figs: Figures) -> dict:
    """The task graphs (brain, and Taskonomy's when compared); returns each task's neighbour count."""
    panels = [("brain", *brain)]
    if ref is not None:
        panels.append(("Taskonomy", *ref))
    groupfigs.task_graphs(panels, group_of, top_k, figs("graph"))
    return groupfigs.neighbour_counts(brain[1], brain[0], top_k)


def _comparison_figure(out: Path, task: str, figs: Figures) -> dict:
    """The brain-vs-Taskonomy scatter of task pairs; returns the comparison's record (``{}`` without)."""
    comparison = read_json(group_file(out, task, "taskonomy", "comparison", ".json"))
    pairs = read_table(group_file(out, task, "taskonomy", "comparison", ".tsv"))
    if pairs is not None and len(pairs):
        groupfigs.comparison_scatter(pairs, figs("comparison"), spearman=comparison.get("Spearman"))
    return comparison


def _roi_figure(
    out: Path, task: str, order: list[str], ordered: list[str], group_of: dict, figs: Figures
) -> list[tuple[str, np.ndarray]]:
    """The similarity within each ROI, one heat map each; returns ``(roi, matrix)`` panels."""
    roi_panels = []
    for path in sorted((out / "group").glob(f"task-{task}_roi-*_desc-similarity_matrix.tsv")):
        m = matrix_from_table(read_table(path))
        roi = path.name.split("_roi-")[1].split("_")[0]
        if m is not None:
            roi_panels.append((roi, _reorder(*m, order)[1]))
    if roi_panels:
        groupfigs.matrix_grid(roi_panels, ordered, group_of, figs("roisimilarity"))
    return roi_panels
