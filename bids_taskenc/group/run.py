"""The group step: read participant maps, compare tasks, write group derivatives.

Entry point :func:`run_group` (called by the CLI). It never refits: it reads
participant r/q maps (:mod:`bids_taskenc.group.inputs`), builds task x task
similarity matrices (:mod:`~bids_taskenc.group.similarity`), a tree with
bootstrap support (:mod:`~bids_taskenc.group.tree`), a graph
(:mod:`~bids_taskenc.group.graph`), compares with Taskonomy's transfer
affinities (:mod:`~bids_taskenc.group.reference`, :mod:`~bids_taskenc.group.compare`)
and, in a shared template space, writes group maps (:mod:`~bids_taskenc.group.maps`).
Every name comes from :func:`bids_taskenc.outputs.naming.derivative_path` and
every file is written atomically.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bids_taskenc.__about__ import __version__
from bids_taskenc.group import compare as compare_mod
from bids_taskenc.group import graph as graph_mod
from bids_taskenc.group import maps as maps_mod
from bids_taskenc.group import reference as ref_mod
from bids_taskenc.group import similarity as sim_mod
from bids_taskenc.group import tree as tree_mod
from bids_taskenc.group.inputs import (
    GroupInputError,
    ParticipantMaps,
    feature_info,
    load_participant,
    load_roi_masks,
    scan,
    select,
)
from bids_taskenc.group.staging import staged
from bids_taskenc.outputs.atomic import write_image, write_json, write_text, write_tsv
from bids_taskenc.outputs.naming import derivative_path, sidecar_path

__all__ = ["run_group", "GroupInputError"]

_PACKAGES = ("numpy", "scipy", "pandas", "nibabel", "networkx", "statsmodels")


def _versions() -> dict[str, str]:
    out = {"bids_taskenc": __version__, "python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def matrix_table(matrix: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """``(F, F)`` -> table with column ``task`` then one column per label."""
    table = pd.DataFrame(np.asarray(matrix, dtype=float), columns=labels)
    table.insert(0, "task", labels)
    return table


class _Writer:
    """Collects written files and shares the provenance block of every sidecar.

    With a stage (:mod:`~bids_taskenc.group.staging`) every file goes to its
    staged path and is moved to ``path`` when the group level is complete.
    """

    def __init__(self, root: Path, provenance: dict, stage=None):
        self.root = root
        self.provenance = provenance
        self.files: list[Path] = []
        self.at = stage.path if stage is not None else (lambda path: path)

    def table(self, path: Path, table: pd.DataFrame, description: str, **extra) -> Path:
        write_tsv(self.at(path), table)
        write_json(self.at(sidecar_path(path)), {"Description": description, **extra, **self.provenance})
        self.files += [path, sidecar_path(path)]
        return path

    def json(self, path: Path, data: dict) -> Path:
        write_json(self.at(path), {**data, **self.provenance})
        self.files.append(path)
        return path

    def text(self, path: Path, text: str) -> Path:
        write_text(self.at(path), text)
        self.files.append(path)
        return path

    def image(self, path: Path, img, description: str, **extra) -> Path:
        write_image(self.at(path), img)
        write_json(self.at(sidecar_path(path)), {"Description": description, **extra, **self.provenance})
        self.files += [path, sidecar_path(path)]
        return path


def _resolve_reference(
    reference_affinities, offline: bool, cache_dir
) -> tuple[pd.DataFrame | None, dict, str | None]:
    """Affinity frame (bank names), where it came from, and a skip reason (or None)."""
    if reference_affinities is not None:
        path = Path(reference_affinities)
        try:
            frame = ref_mod.load_affinities(path)
        except ref_mod.ReferenceDataError as exc:
            raise GroupInputError(str(exc)) from exc
        return frame, {"Source": str(path), "sha256": ref_mod.sha256_of(path)}, None
    folder = Path(cache_dir) if cache_dir is not None else ref_mod.default_cache_dir()
    try:
        path = ref_mod.fetch_affinities(folder, offline=offline)
    except ref_mod.ReferenceDataError as exc:
        return None, {}, f"Taskonomy comparison skipped: {exc}"
    if path is None:
        return None, {}, (
            f"Taskonomy comparison skipped: offline and no verified affinities in {folder} "
            "(give --reference-affinities FILE)"
        )
    try:
        frame = ref_mod.load_affinities(path)
    except ref_mod.ReferenceDataError as exc:
        return None, {}, f"Taskonomy comparison skipped: {exc}"
    return frame, {"Source": ref_mod.AFFINITIES_URL, "sha256": ref_mod.AFFINITIES_SHA256, "CachedAt": str(path)}, None


@staged
def run_group(
    output_dir: str | Path,
    *,
    task: str | None = None,
    participants: Iterable[str] | None = None,
    space: str | None = None,
    fdr_alpha: float | None = None,
    thresholded: bool = True,
    roi_masks: Mapping[str, str | Path | Mapping[str, str | Path]] | None = None,
    reference_affinities: str | Path | None = None,
    offline: bool = False,
    cache_dir: str | Path | None = None,
    n_bootstrap: int = 1000,
    n_permutations: int = 10000,
    top_k: int = 3,
    seed: int = 0,
    command_line: str | None = None,
    log: Callable[[str], object] = print,
    _stage=None,
) -> dict:
    """Run the group level on the participant outputs in ``output_dir``.

    Parameters
    ----------
    output_dir : path
        The derivatives folder holding ``sub-*/func/`` participant outputs; group
        files go to ``output_dir/group/`` and per-participant matrices beside the maps.
    task, participants, space : optional
        Selection (labels with or without ``task-``/``sub-``/``space-``). Needed when
        the folder holds several tasks, or participants with several spaces.
    fdr_alpha : float, optional
        FDR level for thresholding; default: each map's sidecar ``FDRLevel``.
    thresholded : bool
        Cosine of FDR-thresholded r maps (r = 0 where ``q >= level``); False: raw r.
    roi_masks : mapping, optional
        ROI name -> NIfTI path (``{participant}`` placeholder allowed) or
        participant -> path; similarity matrices are also computed within each ROI.
    reference_affinities : path, optional
        Taskonomy affinities (pickle or CSV) to use instead of the download.
    offline, cache_dir
        No download when offline; cache folder (default XDG cache ``bids_taskenc/reference``).
    n_bootstrap, n_permutations, top_k, seed
        Bootstrap trees for clade support, permutations for Mantel/consistency p,
        neighbours per task in the top-k table, seed of every random draw.
    command_line : str, optional
        Recorded in sidecars (default: ``sys.argv``).
    log : callable
        Receives each message once.

    Returns
    -------
    dict
        ``files`` (written paths), ``participants``, ``task``, ``labels``,
        ``messages``, ``consistency``, ``comparison`` (None when skipped),
        ``group_maps`` (bool).

    Raises
    ------
    GroupInputError
        No participant outputs, ambiguous task/space, missing files, fewer than
        two shared feature spaces, unreadable reference file.

    Notes
    -----
    * Feature spaces that not every participant has are dropped (the
      intersection is used) with one message per participant.
    * A map with no voxel surviving the threshold has similarity 0 with every
      other map (message per participant).
    * The Taskonomy comparison is skipped (one message, ``comparison`` None,
      every other output written) when offline without a cached copy, when the
      download fails or its sha256 differs, or when fewer than 3 tasks are shared.
      A ``reference_affinities`` file that cannot be read is an error.
    * Group maps are written only in a template space shared on one grid by
      every participant (see :mod:`bids_taskenc.group.maps`).
    """
    root = Path(output_dir)
    messages: list[str] = []

    def note(msg: str) -> None:
        messages.append(msg)
        log(msg)

    catalogue = scan(root)
    task, spaces, labels, select_msgs = select(catalogue, task=task, participants=participants, space=space)
    for msg in select_msgs:
        note(msg)
    chosen = sorted(spaces)
    maps: list[ParticipantMaps] = [
        load_participant(root, p, task, spaces[p], labels, fdr_alpha=fdr_alpha, read_q=thresholded)
        for p in chosen
    ]
    info = feature_info(maps)
    n_feat, n_part = len(labels), len(maps)

    settings = {
        "Thresholded": bool(thresholded),
        "FDRLevel": fdr_alpha if fdr_alpha is not None else "from each map's sidecar",
        "Similarity": "cosine over the participant's brain-mask voxels",
        "Linkage": "average (UPGMA) on 1 - cosine similarity",
        "NBootstrap": int(n_bootstrap),
        "NPermutations": int(n_permutations),
        "TopK": int(top_k),
        "Seed": int(seed),
    }
    provenance = {
        "Task": task,
        "Participants": chosen,
        "Spaces": {p: spaces[p] for p in chosen},
        "FeatureLabels": labels,
        "FeatureSpaces": {label: info[label]["feature_space"] for label in labels},
        "FeatureGroups": {label: info[label]["group"] for label in labels},
        "Settings": settings,
        "Inputs": sorted({str(f.relative_to(root)) for m in maps for f in m.files}),
        "SoftwareVersions": _versions(),
        "CommandLine": command_line if command_line is not None else " ".join(sys.argv),
    }
    out = _Writer(root, provenance, _stage)
    seeds = np.random.SeedSequence(seed).spawn(4)
    boot_seeds = seeds[0].spawn(n_part)

    # --- similarity matrices -------------------------------------------------
    data = [m.thresholded() if thresholded else m.r for m in maps]
    for m, x in zip(maps, data):
        empty = [labels[i] for i in np.flatnonzero(sim_mod.empty_maps(x))]
        if empty:
            note(f"sub-{m.participant}: no voxel survives for {', '.join(empty)}; their similarity is 0")
    per_part = [sim_mod.cosine_similarity(x) for x in data]
    for m, s in zip(maps, per_part):
        out.table(
            derivative_path(root, sub=m.participant, task=task, desc="similarity", suffix="matrix", extension=".tsv"),
            matrix_table(s, labels),
            "Task x task cosine similarity of r maps of one participant",
            Participant=m.participant,
            NVoxels=m.n_voxels,
        )
    mean_sim = np.mean(per_part, axis=0)
    out.table(
        derivative_path(root, task=task, desc="similarity", suffix="matrix", extension=".tsv"),
        matrix_table(mean_sim, labels),
        "Task x task cosine similarity averaged over participants",
    )

    # --- consistency across participants --------------------------------------
    consistency = None
    if n_part >= 2:
        cons = sim_mod.consistency(per_part, n_permutations, np.random.default_rng(seeds[1]))
        table = pd.DataFrame(
            [{"participant_a": chosen[i], "participant_b": chosen[j], "spearman": rho} for i, j, rho in cons["pairs"]]
        )
        consistency = {"mean_spearman": cons["mean_spearman"], "p": cons["p"], "n_permutations": cons["n_permutations"]}
        out.table(
            derivative_path(root, task=task, desc="consistency", suffix="stats", extension=".tsv"),
            table,
            "Pairwise Spearman correlation of participants' similarity matrices (upper triangles)",
            MeanSpearman=cons["mean_spearman"],
            PValue=cons["p"],
            PValueMethod="permutation of task labels of every matrix but the first (Mantel), one-sided",
        )
    else:
        note("one participant: consistency across participants skipped")

    # --- tree + bootstrap support ---------------------------------------------
    tree = tree_mod.build_tree(mean_sim)
    support = None
    if n_bootstrap > 0:
        boots = np.zeros((n_bootstrap, n_feat, n_feat))
        for x, ss in zip(data, boot_seeds):
            boots += sim_mod.bootstrap_similarities(x, n_bootstrap, np.random.default_rng(ss))
        boots /= n_part
        support = tree_mod.bootstrap_support(tree, boots)
    order = tree_mod.leaf_order(tree)
    out.json(
        derivative_path(root, task=task, desc="tree", suffix="dendrogram", extension=".json"),
        {
            "Description": "Average-linkage tree of the tasks (cosine distance of the averaged similarity matrix)",
            "LeafOrder": [labels[i] for i in order],
            "Tree": tree_mod.to_nested(tree, labels, info, support),
            "Linkage": tree.tolist(),
            "LinkageLeaves": labels,
            "BootstrapSupport": "fraction of voxel-bootstrap trees containing the clade" if support is not None else None,
        },
    )
    out.text(
        derivative_path(root, task=task, desc="tree", suffix="dendrogram", extension=".nwk"),
        tree_mod.to_newick(tree, labels, support),
    )
    out.table(
        derivative_path(root, task=task, desc="tree", suffix="clades", extension=".tsv"),
        pd.DataFrame(tree_mod.clade_table(tree, labels, support)),
        "Clades (internal nodes) of the task tree with bootstrap support",
    )

    # --- graph -------------------------------------------------------------------
    edges_path = derivative_path(root, task=task, desc="graph", suffix="edges", extension=".tsv")
    out.table(edges_path, graph_mod.edge_table(mean_sim, labels), "Task graph edges weighted by cosine similarity")
    out.text(
        derivative_path(root, task=task, desc="graph", suffix="edges", extension=".graphml"),
        graph_mod.graphml_text(graph_mod.build_graph(mean_sim, labels, info, top_k)),
    )
    out.table(
        derivative_path(root, task=task, desc="graph", suffix="topk", extension=".tsv"),
        graph_mod.top_k_table(mean_sim, labels, top_k),
        f"The {top_k} most similar tasks of each task",
    )

    # --- ROIs ----------------------------------------------------------------------
    rois, roi_msgs = load_roi_masks(roi_masks, maps)
    for msg in roi_msgs:
        note(msg)
    roi_labels = []
    for roi, masks in rois.items():
        mats = []
        for m, x in zip(maps, data):
            if m.participant not in masks:
                continue
            cols = m.roi_indices(masks[m.participant])
            if cols.size == 0:
                note(f"ROI {roi}: no analysed voxel of sub-{m.participant} inside; skipped")
                continue
            s = sim_mod.cosine_similarity(x[:, cols])
            mats.append(s)
            out.table(
                derivative_path(root, sub=m.participant, task=task, roi=roi, desc="similarity", suffix="matrix", extension=".tsv"),
                matrix_table(s, labels),
                f"Task x task cosine similarity within ROI {roi}",
                Participant=m.participant,
                ROI=roi,
                NVoxels=int(cols.size),
            )
        if mats:
            roi_labels.append(roi)
            out.table(
                derivative_path(root, task=task, roi=roi, desc="similarity", suffix="matrix", extension=".tsv"),
                matrix_table(np.mean(mats, axis=0), labels),
                f"Task x task cosine similarity within ROI {roi}, averaged over participants",
                ROI=roi,
                NParticipants=len(mats),
            )

    # --- Taskonomy comparison ------------------------------------------------------
    comparison = None
    frame, ref_meta, skip = _resolve_reference(reference_affinities, offline, cache_dir)
    if skip:
        note(skip)
    else:
        labelled = ref_mod.label_affinities(frame)
        shared = [lab for lab in labels if lab in labelled.columns]
        if len(shared) < compare_mod.MIN_SHARED_TASKS:
            note(
                f"Taskonomy comparison skipped: {len(shared)} task(s) shared with the reference "
                f"(need {compare_mod.MIN_SHARED_TASKS})"
            )
        else:
            ref_sim = ref_mod.transfer_out_similarity(labelled, shared).to_numpy()
            idx = [labels.index(lab) for lab in shared]
            brain = mean_sim[np.ix_(idx, idx)]
            summary, pairs = compare_mod.compare_structures(
                brain, ref_sim, shared, n_permutations=n_permutations, rng=np.random.default_rng(seeds[2])
            )
            ref_meta = {**ref_meta, "TaskStructure": "cosine of transfer-out vectors, each target max-normalised"}
            comparison = summary
            out.json(
                derivative_path(root, task=task, desc="taskonomy", suffix="comparison", extension=".json"),
                {
                    "Description": "Brain task structure vs Taskonomy transfer-out task structure",
                    "Reference": ref_meta,
                    "SharedTasks": shared,
                    "Spearman": summary["spearman"],
                    "PValueMantel": summary["p_mantel"],
                    "CopheneticCorrelation": summary["cophenetic_correlation"],
                    "Agree": summary["agree"],
                    "Disagree": summary["disagree"],
                },
            )
            path = derivative_path(root, task=task, desc="taskonomy", suffix="comparison", extension=".tsv")
            write_tsv(out.at(path), pairs)
            out.files.append(path)
            out.table(
                derivative_path(root, task=task, desc="taskonomysimilarity", suffix="matrix", extension=".tsv"),
                matrix_table(ref_sim, shared),
                "Taskonomy task similarity (cosine of transfer-out affinity vectors)",
                Reference=ref_meta,
            )
            ref_tree = tree_mod.build_tree(ref_sim)
            out.json(
                derivative_path(root, task=task, desc="taskonomytree", suffix="dendrogram", extension=".json"),
                {
                    "Description": "Average-linkage tree of the Taskonomy task similarity",
                    "Reference": ref_meta,
                    "LeafOrder": [shared[i] for i in tree_mod.leaf_order(ref_tree)],
                    "Tree": tree_mod.to_nested(ref_tree, shared, info),
                    "Linkage": ref_tree.tolist(),
                    "LinkageLeaves": shared,
                },
            )
            out.text(
                derivative_path(root, task=task, desc="taskonomytree", suffix="dendrogram", extension=".nwk"),
                tree_mod.to_newick(ref_tree, shared),
            )

    # --- group maps ------------------------------------------------------------------
    can_map, why = maps_mod.shared_grid(maps)
    if can_map:
        space_label = maps[0].space
        gmask, stats_by_label = maps_mod.group_maps(maps)
        affine = maps[0].affine
        out.image(
            derivative_path(root, task=task, space=space_label, desc="brain", suffix="mask", extension=".nii.gz"),
            nib.Nifti1Image(gmask.astype(np.uint8), affine),
            "Voxels analysed in every participant",
        )
        descriptions = {
            "meanr": "Fisher-z average of participants' r, back-transformed (tanh of mean arctanh r)",
            "t": "One-sample t of participants' Fisher z against 0",
            "p": "One-sided (greater) p of the one-sample t-test",
            "q": "Benjamini-Hochberg FDR q of p over the group mask",
        }
        for label, vols in stats_by_label.items():
            for stat, vol in vols.items():
                out.image(
                    derivative_path(root, task=task, space=space_label, desc=label, stat=stat, suffix="statmap", extension=".nii.gz"),
                    nib.Nifti1Image(vol, affine),
                    descriptions[stat],
                    Statistic=stat,
                    FeatureLabel=label,
                    FeatureSpace=info[label]["feature_space"],
                    FeatureGroup=info[label]["group"],
                )
    else:
        note(f"group maps skipped: {why}")

    return {
        "files": [str(f) for f in out.files],
        "participants": chosen,
        "task": task,
        "labels": labels,
        "leaf_order": [labels[i] for i in order],
        "messages": messages,
        "consistency": consistency,
        "comparison": comparison,
        "rois": roi_labels,
        "group_maps": bool(can_map),
    }
