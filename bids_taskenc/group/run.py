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
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bids_taskenc.core.versions import software_versions
from bids_taskenc.group import compare as compare_mod
from bids_taskenc.group import graph as graph_mod
from bids_taskenc.group import maps as maps_mod
from bids_taskenc.group import reference as ref_mod
from bids_taskenc.group import resampling as resample_mod
from bids_taskenc.group import similarity as sim_mod
from bids_taskenc.group import tree as tree_mod
from bids_taskenc.group.inputs import (
    GroupInputError,
    ParticipantMaps,
    feature_info,
    load_participant,
    load_roi_masks,
    resolve_fdr_level,
    scan,
    select,
)
from bids_taskenc.group.staging import staged
from bids_taskenc.outputs.atomic import write_image, write_json, write_text, write_tsv
from bids_taskenc.outputs.naming import derivative_path, sidecar_path

__all__ = ["run_group", "GroupInputError"]

_PACKAGES = ("numpy", "scipy", "pandas", "nibabel", "networkx", "statsmodels")

#: Resamplings for the tree's clade support (see :mod:`bids_taskenc.group.resampling`).
TREE_BOOTSTRAPS = ("block", "participant")

#: The participant bootstrap needs at least this many participants.
MIN_PARTICIPANTS_BOOTSTRAP = 3


def _versions() -> dict[str, str]:
    return software_versions(_PACKAGES)


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
    tree_bootstrap: str = "block",
    bootstrap_block_mm: float | None = None,
    n_permutations: int = 10000,
    top_k: int = 3,
    seed: int = 0,
    command_line: str | None = None,
    log: Callable[[str], object] = print,
    progress: bool = False,
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
        The group's FDR level; default: the ``FDRLevel`` of the participant maps'
        sidecars, which must agree (:func:`~bids_taskenc.group.inputs.resolve_fdr_level`).
        Used for the thresholds, the counts and the report; written as a number.
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
    tree_bootstrap : {"block", "participant"}
        Resampling for clade support: spatial block bootstrap of each participant's
        voxels (default), or participants drawn with replacement (needs >= 3).
    bootstrap_block_mm : float, optional
        Edge of the bootstrap boxes in mm (rounded to voxels per axis); default:
        from each participant's map smoothness
        (:func:`~bids_taskenc.group.resampling.block_edges`).
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
        two shared feature spaces, unreadable reference file, FDR levels that
        differ across sidecars (without ``fdr_alpha``), a participant bootstrap
        with fewer than three participants.

    Notes
    -----
    * Feature spaces that not every participant has are dropped (the
      intersection is used) with one message per participant.
    * A map with no voxel surviving the threshold has similarity 0 with every
      other map (message per participant). A feature space with no surviving
      voxel in *any* participant is left out of the tree and the Taskonomy
      comparison (``ExcludedFeatureSpaces`` in their sidecars, and a message):
      it would join at distance 1 in an arbitrary order. It stays in the matrices.
    * The Taskonomy comparison is skipped (one message, ``comparison`` None,
      every other output written) when offline without a cached copy, when the
      download fails or its sha256 differs, or when fewer than 3 tasks are shared.
      A ``reference_affinities`` file that cannot be read is an error.
    * Group maps are written only in a template space shared on one grid by
      every participant (see :mod:`bids_taskenc.group.maps`).
    """
    root = Path(output_dir)
    messages: list[str] = []
    if tree_bootstrap not in TREE_BOOTSTRAPS:
        raise ValueError(f"tree_bootstrap must be one of {TREE_BOOTSTRAPS}, got {tree_bootstrap!r}")
    if bootstrap_block_mm is not None and not bootstrap_block_mm > 0:
        raise ValueError(f"bootstrap_block_mm must be positive, got {bootstrap_block_mm}")

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
    fdr_level = resolve_fdr_level(fdr_alpha, maps)
    if n_bootstrap > 0 and tree_bootstrap == "participant" and n_part < MIN_PARTICIPANTS_BOOTSTRAP:
        raise GroupInputError(
            f"the participant bootstrap needs at least {MIN_PARTICIPANTS_BOOTSTRAP} participants, "
            f"{n_part} selected in {root}; use --tree-bootstrap block")

    settings = {
        "Thresholded": bool(thresholded),
        "FDRLevel": fdr_level,
        "FDRLevelSource": "--fdr-alpha" if fdr_alpha is not None else "FDRLevel of the participant maps' sidecars",
        "Similarity": "cosine over the participant's brain-mask voxels",
        "Linkage": "average (UPGMA) on 1 - cosine similarity",
        "NBootstrap": int(n_bootstrap),
        "TreeBootstrap": tree_bootstrap,
        "BootstrapBlockMM": (float(bootstrap_block_mm) if bootstrap_block_mm is not None
                             else "from each participant's map smoothness") if tree_bootstrap == "block" else None,
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
    empty_in = np.zeros(n_feat, dtype=int)
    for m, x in zip(maps, data):
        is_empty = sim_mod.empty_maps(x)
        empty_in += is_empty
        empty = [labels[i] for i in np.flatnonzero(is_empty)]
        if empty:
            note(f"sub-{m.participant}: no voxel survives for {', '.join(empty)}; their similarity is 0")
    excluded = [labels[i] for i in np.flatnonzero(empty_in == n_part)]
    what = f"FDR q < {fdr_level:g}" if thresholded else "non-zero r"
    excluded_doc = [{"FeatureLabel": lab, "Reason": f"no voxel with {what} in any participant"} for lab in excluded]
    if excluded:
        note(f"left out of the tree and the Taskonomy comparison (no voxel with {what} in any participant): "
             f"{', '.join(excluded)}")
    kept = [i for i in range(n_feat) if labels[i] not in excluded]
    tree_labels = [labels[i] for i in kept]
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
        t_step = time.perf_counter()
        cons = sim_mod.consistency(per_part, n_permutations, np.random.default_rng(seeds[1]))
        log(f"consistency across {n_part} participants: {n_permutations} permutations "
            f"({time.perf_counter() - t_step:.1f} s)")
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
    order = list(range(n_feat))
    if len(kept) < 2:
        note(f"no tree: fewer than 2 feature spaces with surviving voxels ({', '.join(tree_labels) or 'none'})")
        for ext, suffix in ((".json", "dendrogram"), (".nwk", "dendrogram"), (".tsv", "clades"), (".json", "clades")):
            stale = derivative_path(root, task=task, desc="tree", suffix=suffix, extension=ext)
            stale.unlink(missing_ok=True)  # a previous run's tree is not this run's
    else:
        tree_sim = mean_sim[np.ix_(kept, kept)]
        tree = tree_mod.build_tree(tree_sim)
        support, bootstrap_doc = None, None
        if n_bootstrap > 0:
            t_step = time.perf_counter()
            boots, bootstrap_doc = _tree_bootstrap(
                maps, [x[kept] for x in data], [s[np.ix_(kept, kept)] for s in per_part], tree_bootstrap,
                n_bootstrap, bootstrap_block_mm, boot_seeds, seeds[3], note, progress=progress)
            log(f"tree support: {n_bootstrap} {tree_bootstrap}-bootstrap resamples "
                f"({time.perf_counter() - t_step:.1f} s)")
            support = tree_mod.bootstrap_support(tree, boots)
        tied = tree_mod.tied_clades(tree)
        if tied.any():
            note(f"{int(tied.sum())} clade(s) of the tree are tied with their parent (equal distances): "
                 "drawn as a multifurcation, no bootstrap support")
        order = [kept[i] for i in tree_mod.leaf_order(tree)]
        out.json(
            derivative_path(root, task=task, desc="tree", suffix="dendrogram", extension=".json"),
            {
                "Description": "Average-linkage tree of the tasks (cosine distance of the averaged similarity matrix)",
                "LeafOrder": [labels[i] for i in order],
                "Tree": tree_mod.to_nested(tree, tree_labels, info, support),
                "Linkage": tree.tolist(),
                "LinkageLeaves": tree_labels,
                "ExcludedFeatureSpaces": excluded_doc,
                "TiedClades": [
                    ",".join(tree_labels[j] for j in tree_mod.mask_to_indices(mask))
                    for mask, t in zip(tree_mod.clade_masks(tree), tied) if t
                ],
                "BootstrapSupport": (
                    f"fraction of {n_bootstrap} {tree_bootstrap}-bootstrap trees containing the clade; "
                    "null for tied clades" if support is not None else None),
                "Bootstrap": bootstrap_doc,
            },
        )
        out.text(
            derivative_path(root, task=task, desc="tree", suffix="dendrogram", extension=".nwk"),
            tree_mod.to_newick(tree, tree_labels, support),
        )
        out.table(
            derivative_path(root, task=task, desc="tree", suffix="clades", extension=".tsv"),
            pd.DataFrame(tree_mod.clade_table(tree, tree_labels, support)),
            "Clades (internal nodes) of the task tree with bootstrap support",
            ExcludedFeatureSpaces=excluded_doc,
            Bootstrap=bootstrap_doc,
        )
    if len(order) < n_feat:  # leaves left out of the tree go last
        order += [i for i in range(n_feat) if i not in order]

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
        shared = [lab for lab in tree_labels if lab in labelled.columns]
        if len(shared) < compare_mod.MIN_SHARED_TASKS:
            note(
                f"Taskonomy comparison skipped: {len(shared)} task(s) shared with the reference "
                f"(need {compare_mod.MIN_SHARED_TASKS})"
            )
        else:
            ref_sim = ref_mod.transfer_out_similarity(labelled, shared).to_numpy()
            idx = [labels.index(lab) for lab in shared]
            brain = mean_sim[np.ix_(idx, idx)]
            chance = np.mean([sim_mod.chance_similarity(x[idx]) for x in data], axis=0)
            t_step = time.perf_counter()
            summary, pairs = compare_mod.compare_structures(
                brain, ref_sim, shared, n_permutations=n_permutations, rng=np.random.default_rng(seeds[2]),
                chance=chance,
            )
            log(f"Taskonomy comparison: Mantel and partial Mantel tests, {n_permutations} permutations "
                f"({time.perf_counter() - t_step:.1f} s)")
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
                    "PartialCorrelation": summary["partial_correlation"],
                    "PValueMantelPartial": summary["p_mantel_partial"],
                    "PartialMethod": (
                        "partial Mantel test controlling for per-task main effects: both upper triangles "
                        "residualised (least squares) on additive per-task effects mu + a_i + a_j and on the "
                        "chance similarity rho_i rho_j of the brain maps (rho_i = mean|x_i| / rms(x_i), set by "
                        "the surviving-voxel counts; averaged over participants), Pearson correlation of the "
                        "residuals; the reference's task labels permuted and residualised again, one-sided"
                        if summary["partial_correlation"] is not None else
                        f"not computed: needs at least {sim_mod.MIN_TASKS_ADJUSTED} shared tasks"),
                    "PValueMethod": "permutation of the reference's task labels (rows and columns together), one-sided",
                    "NPermutations": int(n_permutations),
                    "ExcludedFeatureSpaces": excluded_doc,
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
        gmask, stats_by_label = maps_mod.group_maps(maps, fdr_level)
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
                    **({"FDRLevel": fdr_level} if stat == "q" else {}),
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
        "fdr_level": fdr_level,
        "excluded": excluded,
    }


def _tree_bootstrap(maps, data, matrices, method, n_bootstrap, block_mm, boot_seeds, participant_seed, note, *,
                    progress: bool = False):
    """``(B, F, F)`` bootstrap similarity matrices for the tree, and what the sidecars record about them."""
    n_feat = data[0].shape[0]
    if method == "participant":
        boots = resample_mod.participant_bootstrap_similarities(
            matrices, n_bootstrap, np.random.default_rng(participant_seed))
        doc = {"Method": "participant", "NBootstrap": int(n_bootstrap), "NParticipants": len(maps),
               "Description": "participants drawn with replacement; their similarity matrices averaged"}
        return boots, doc
    boots = np.zeros((n_bootstrap, n_feat, n_feat))
    per = {}
    from tqdm.auto import tqdm

    for m, x, ss in tqdm(list(zip(maps, data, boot_seeds)), desc="tree block bootstrap", unit="participant",
                         disable=not progress, leave=False):
        sizes = nib.affines.voxel_sizes(m.affine)
        fwhm = None
        if block_mm is None:
            vol = np.zeros((m.r.shape[0], *m.mask.shape))
            vol[:, m.mask] = m.r
            fwhm = resample_mod.estimate_fwhm(vol, m.mask)
        edges = resample_mod.block_edges(fwhm, voxel_sizes=sizes, block_mm=block_mm)
        labels = resample_mod.block_labels(m.mask, edges)
        n_blocks = int(labels.max()) + 1
        if n_blocks < resample_mod.MIN_BLOCKS:
            note(f"sub-{m.participant}: only {n_blocks} bootstrap boxes of {'x'.join(map(str, edges))} voxels; "
                 "clade support from so few boxes is coarse (set --bootstrap-block-mm smaller only if the maps "
                 "are less smooth)")
        boots += resample_mod.block_bootstrap_similarities(x, labels, n_bootstrap, np.random.default_rng(ss))
        per[m.participant] = {
            "BlockEdgeVoxels": list(edges),
            "BlockEdgeMM": [round(float(e * v), 4) for e, v in zip(edges, sizes)],
            "NBlocks": n_blocks,
            "EstimatedFWHMVoxels": None if fwhm is None else [None if not np.isfinite(f) else round(float(f), 4)
                                                              for f in fwhm],
        }
    boots /= len(maps)
    doc = {
        "Method": "block",
        "NBootstrap": int(n_bootstrap),
        "Description": "spatial block bootstrap: each participant's voxel grid cut into boxes, boxes drawn with "
                       "replacement until the participant's voxel count is reached, bootstrap matrices averaged "
                       "over participants",
        "BlockSizeRule": (f"{block_mm:g} mm per axis, rounded to voxels" if block_mm is not None else
                          f"round({resample_mod.FWHM_PER_EDGE:g} x FWHM) voxels per axis, clipped to "
                          f"[1, {resample_mod.MAX_EDGE}]; FWHM from the lag-1 spatial autocorrelation of the "
                          "unthresholded r maps (sqrt(-2 ln 2 / ln rho1))"),
        "Participants": per,
    }
    return boots, doc
