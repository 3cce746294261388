"""The group computation: participant maps in, a :class:`~bids_taskenc.group.result.GroupResult` out (no files).

:func:`compute_group` never refits: from the participant r/q maps that
:func:`~bids_taskenc.group.inputs.read_group_inputs` read, it builds task x task
similarity matrices (:mod:`~bids_taskenc.group.similarity`), a tree with
bootstrap support (:mod:`~bids_taskenc.group.tree`), a graph
(:mod:`~bids_taskenc.group.graph`), compares with Taskonomy's transfer
affinities (:mod:`~bids_taskenc.group.reference`, :mod:`~bids_taskenc.group.compare`)
and, in a shared template space, computes group maps (:mod:`~bids_taskenc.group.maps`).
:func:`bids_taskenc.group.write.write_group_results` writes the result;
:func:`bids_taskenc.workflow.group.run_group` does both from typed settings.
Every note (a feature space dropped, a step skipped) is logged at INFO on this
module's logger and kept in :attr:`GroupResult.messages`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import numpy as np
import pandas as pd

from bids_taskenc.core.versions import software_versions
from bids_taskenc.group import graph as graph_mod
from bids_taskenc.group import maps as maps_mod
from bids_taskenc.group import resampling as resample_mod
from bids_taskenc.group import similarity as sim_mod
from bids_taskenc.group import support as support_mod
from bids_taskenc.group import tree as tree_mod
from bids_taskenc.group.comparison import Reference, compare_with_reference, resolve_reference
from bids_taskenc.group.inputs import GroupInputError, GroupInputs
from bids_taskenc.group.result import (
    ConsistencyResult,
    GraphResult,
    GroupMapsResult,
    GroupResult,
    RoiResult,
    TreeResult,
)
from bids_taskenc.outputs.naming import bids_label

__all__ = ["Reference", "compute_group", "resolve_reference", "check_resampling", "GroupInputError"]

log = logging.getLogger(__name__)

_PACKAGES = ("numpy", "scipy", "pandas", "nibabel", "networkx", "statsmodels")

#: Resamplings for the tree's clade support (see :mod:`bids_taskenc.group.resampling`).
TREE_BOOTSTRAPS = resample_mod.TREE_BOOTSTRAPS

#: The participant resamplings need at least this many participants.
MIN_PARTICIPANTS_BOOTSTRAP = resample_mod.MIN_PARTICIPANTS_BOOTSTRAP


def _versions() -> dict[str, str]:
    return software_versions(_PACKAGES)


class _Notes(list):
    """The run's notes: each is kept (``GroupResult.messages``) and logged once."""

    def __call__(self, msg: str) -> None:
        self.append(msg)
        log.info("%s", msg)

    def warn(self, msg: str) -> None:
        """A note that something went wrong (a WARNING, which the group report lists)."""
        self.append(msg)
        log.warning("%s", msg)


def check_resampling(tree_bootstrap: str, bootstrap_block_mm: float | None) -> None:
    """Raise ValueError for an unknown tree bootstrap or a block edge that is not positive."""
    if tree_bootstrap not in TREE_BOOTSTRAPS:
        raise ValueError(f"tree_bootstrap must be one of {TREE_BOOTSTRAPS}, got {tree_bootstrap!r}")
    if bootstrap_block_mm is not None and not bootstrap_block_mm > 0:
        raise ValueError(f"bootstrap_block_mm must be positive, got {bootstrap_block_mm}")


def compute_group(
    inputs: GroupInputs,
    *,
    reference: Reference,
    roi_masks: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    n_bootstrap: int = 1000,
    tree_bootstrap: str = "auto",
    bootstrap_block_mm: float | None = None,
    n_permutations: int = 10000,
    top_k: int = 3,
    seed: int = 0,
    progress: bool = False,
) -> GroupResult:
    """Compare the tasks of the participants in ``inputs``: similarity, consistency, tree, graph, ROIs, Taskonomy, maps.

    Parameters
    ----------
    inputs : GroupInputs
        :func:`~bids_taskenc.group.inputs.read_group_inputs` (the maps, thresholded or not, and the FDR level).
    reference : Reference
        :func:`resolve_reference`; with ``skip`` set the comparison is skipped (one note).
    roi_masks : mapping, optional
        ROI name -> participant -> ``(n_voxels,)`` bool vector over that participant's brain-mask voxels (C order,
        as :func:`bids_taskenc.bids.rois.load_roi_vectors` gives for the brain mask); similarity matrices are also
        computed within each ROI. Names are made BIDS-safe.
    n_bootstrap, tree_bootstrap, bootstrap_block_mm, n_permutations, top_k, seed, progress
        As :class:`bids_taskenc.workflow.group.GroupSettings` (``auto``: the participant t resampling from three
        participants on, else the block bootstrap, :func:`~bids_taskenc.group.resampling.resolve_tree_bootstrap`;
        block edges default to where each participant's spatial autocorrelation decays,
        :func:`~bids_taskenc.group.resampling.block_design`).

    Raises
    ------
    GroupInputError
        A participant resampling asked for with fewer than three participants.
    ValueError
        See :func:`check_resampling`.

    Notes
    -----
    A feature space with no surviving voxel in any participant stays in the matrices but is left out of the tree
    and the comparison (``excluded``: it would join at distance 1 in an arbitrary order). The comparison is skipped
    (a note) without affinities or with fewer than 3 shared tasks; group maps need one template grid shared by
    every participant (:mod:`bids_taskenc.group.maps`).
    """
    _check_bootstrap(inputs, n_bootstrap, tree_bootstrap, bootstrap_block_mm)
    notes = _Notes()
    for msg in inputs.messages:
        notes(msg)
    maps, labels, n_part = inputs.maps, inputs.labels, len(inputs.maps)
    method = resample_mod.resolve_tree_bootstrap(tree_bootstrap, n_part)
    seeds = np.random.SeedSequence(seed).spawn(4)
    boot_seeds = seeds[0].spawn(n_part)
    data = [m.thresholded() if inputs.thresholded else m.r for m in maps]
    excluded = _excluded_feature_spaces(inputs, data, notes)
    kept = [i for i in range(len(labels)) if labels[i] not in excluded]
    per_part = [sim_mod.cosine_similarity(x) for x in data]
    mean_sim = np.mean(per_part, axis=0)
    consistency = _consistency(inputs, per_part, n_permutations, seeds[1], notes)
    tree = _task_tree(
        inputs,
        data,
        per_part,
        mean_sim,
        kept,
        n_bootstrap=n_bootstrap,
        method=method,
        block_mm=bootstrap_block_mm,
        seeds=(boot_seeds, seeds[3]),
        notes=notes,
        progress=progress,
    )
    support = tree.bootstrap["SupportInterpretation"] if tree is not None and tree.bootstrap else None
    settings = {"n_bootstrap": n_bootstrap, "tree_bootstrap": (tree_bootstrap, method, support), "top_k": top_k,
                "seed": seed, "bootstrap_block_mm": bootstrap_block_mm, "n_permutations": n_permutations}  # fmt: skip
    similarity = (per_part, mean_sim)
    return _assemble(
        inputs, data, similarity, tree, kept, excluded, consistency, reference, roi_masks, seeds[2], settings, notes
    )


def _check_bootstrap(inputs: GroupInputs, n_bootstrap: int, tree_bootstrap: str, bootstrap_block_mm) -> None:
    """:func:`check_resampling`, and a participant bootstrap needs enough participants."""
    check_resampling(tree_bootstrap, bootstrap_block_mm)
    n_part = len(inputs.maps)
    if n_bootstrap > 0 and tree_bootstrap.startswith("participant") and n_part < MIN_PARTICIPANTS_BOOTSTRAP:
        raise GroupInputError(
            f"--tree-bootstrap {tree_bootstrap} needs at least {MIN_PARTICIPANTS_BOOTSTRAP} participants, "
            f"{n_part} selected in {inputs.output_dir}; use --tree-bootstrap block (its support is descriptive)"
        )


def _assemble(
    inputs, data, similarity, tree, kept, excluded, consistency, reference, roi_masks, seed, settings, notes
) -> GroupResult:
    """The :class:`GroupResult` of :func:`compute_group`, with the ROI matrices, the comparison and group maps."""
    maps, labels = inputs.maps, inputs.labels
    per_part, mean_sim = similarity
    result = GroupResult(
        task=inputs.task,
        participants=inputs.participants,
        labels=labels,
        info=inputs.info,
        fdr_level=inputs.fdr_level,
        n_voxels={m.participant: m.n_voxels for m in maps},
        similarity={m.participant: s for m, s in zip(maps, per_part)},
        mean_similarity=mean_sim,
        excluded=excluded,
        excluded_doc=_excluded_doc(inputs, excluded),
        order=_display_order(tree, kept, labels),
        graph=_task_graph(mean_sim, labels, inputs.info, settings["top_k"]),
        consistency=consistency,
        tree=tree,
        metadata=_provenance(inputs, **settings),
        messages=notes,
    )
    result.rois = _roi_similarities(inputs, data, roi_masks, notes)
    result.comparison = compare_with_reference(
        inputs, data, mean_sim, [labels[i] for i in kept], reference, settings["n_permutations"], seed, notes
    )
    result.group_maps = _group_maps(inputs, notes)
    return result


def _threshold_text(inputs: GroupInputs) -> str:
    return f"FDR q < {inputs.fdr_level:g}" if inputs.thresholded else "non-zero r"


def _excluded_feature_spaces(inputs: GroupInputs, data: list[np.ndarray], notes: _Notes) -> list[str]:
    """Labels with no surviving voxel in any participant (a note for each participant's empty maps)."""
    labels = inputs.labels
    empty_in = np.zeros(len(labels), dtype=int)
    for m, x in zip(inputs.maps, data):
        is_empty = sim_mod.empty_maps(x)
        empty_in += is_empty
        empty = [labels[i] for i in np.flatnonzero(is_empty)]
        if empty:
            notes(f"sub-{m.participant}: no voxel survives for {', '.join(empty)}; their similarity is 0")
    excluded = [labels[i] for i in np.flatnonzero(empty_in == len(inputs.maps))]
    if excluded:
        notes(
            f"left out of the tree and the Taskonomy comparison (no voxel with {_threshold_text(inputs)} in any "
            f"participant): {', '.join(excluded)}"
        )
    return excluded


def _excluded_doc(inputs: GroupInputs, excluded: list[str]) -> list[dict]:
    what = _threshold_text(inputs)
    return [{"FeatureLabel": lab, "Reason": f"no voxel with {what} in any participant"} for lab in excluded]


def _provenance(
    inputs: GroupInputs, *, n_bootstrap, tree_bootstrap, bootstrap_block_mm, n_permutations, top_k, seed
) -> dict:
    """The block every group sidecar carries (the command line is added when written).

    ``tree_bootstrap`` is ``(option given, resampling it resolved to, what its support means or None)``.
    """
    option, method, support = tree_bootstrap
    settings = {
        "Thresholded": inputs.thresholded,
        "FDRLevel": inputs.fdr_level,
        "FDRLevelSource": "--fdr-alpha" if inputs.fdr_level_given else "FDRLevel of the participant maps' sidecars",
        "Similarity": "cosine over the participant's brain-mask voxels",
        "Linkage": "average (UPGMA) on 1 - cosine similarity",
        "NBootstrap": int(n_bootstrap),
        "TreeBootstrap": method,
        "TreeBootstrapOption": option,
        "TreeSupport": support,
        "BootstrapBlockMM": (
            float(bootstrap_block_mm)
            if bootstrap_block_mm is not None
            else "from each participant's spatial autocorrelation"
        )
        if method == "block"
        else None,
        "NPermutations": int(n_permutations),
        "TopK": int(top_k),
        "Seed": int(seed),
    }
    chosen, root = inputs.participants, inputs.output_dir
    return {
        "Task": inputs.task,
        "Participants": chosen,
        "Spaces": {p: inputs.spaces[p] for p in chosen},
        "FeatureLabels": inputs.labels,
        "FeatureSpaces": {label: inputs.info[label]["feature_space"] for label in inputs.labels},
        "FeatureGroups": {label: inputs.info[label]["group"] for label in inputs.labels},
        "Settings": settings,
        "Inputs": sorted({str(f.relative_to(root)) for m in inputs.maps for f in m.files}),
        "SoftwareVersions": _versions(),
    }


def _consistency(
    inputs: GroupInputs, per_part: list[np.ndarray], n_permutations: int, seed, notes: _Notes
) -> ConsistencyResult | None:
    """Agreement across participants (None, and a note, with one participant)."""
    n_part, chosen = len(per_part), inputs.participants
    if n_part < 2:
        notes("one participant: consistency across participants skipped")
        return None
    t_step = time.perf_counter()
    cons = sim_mod.consistency(per_part, n_permutations, np.random.default_rng(seed))
    log.info(
        "consistency across %d participants: %d permutations (%.1f s)",
        n_part,
        n_permutations,
        time.perf_counter() - t_step,
    )
    table = pd.DataFrame(
        [{"participant_a": chosen[i], "participant_b": chosen[j], "spearman": rho} for i, j, rho in cons["pairs"]]
    )
    return ConsistencyResult(
        pairs=table, mean_spearman=cons["mean_spearman"], p=cons["p"], n_permutations=cons["n_permutations"]
    )


def _task_tree(
    inputs: GroupInputs,
    data,
    per_part,
    mean_sim,
    kept: list[int],
    *,
    n_bootstrap: int,
    method: str,
    block_mm,
    seeds,
    notes: _Notes,
    progress: bool,
) -> TreeResult | None:
    """The tree over the ``kept`` feature spaces with its bootstrap support; None (a note) with fewer than 2."""
    tree_labels = [inputs.labels[i] for i in kept]
    if len(kept) < 2:
        notes(f"no tree: fewer than 2 feature spaces with surviving voxels ({', '.join(tree_labels) or 'none'})")
        return None
    tree = tree_mod.build_tree(mean_sim[np.ix_(kept, kept)])
    support, bootstrap_doc = None, None
    if n_bootstrap > 0:
        boot_seeds, participant_seed = seeds
        t_step = time.perf_counter()
        boots, bootstrap_doc = support_mod.tree_bootstrap(
            inputs.maps,
            [x[kept] for x in data],
            [s[np.ix_(kept, kept)] for s in per_part],
            method,
            n_bootstrap,
            block_mm,
            boot_seeds,
            participant_seed,
            progress=progress,
        )
        log.info("tree support: %d %s resamples (%.1f s)", n_bootstrap, method, time.perf_counter() - t_step)
        support = tree_mod.bootstrap_support(tree, boots)
        if bootstrap_doc["SupportInterpretation"] == "descriptive":
            notes(f"the tree's clade support ({method} resampling) is descriptive only: "
                  f"{bootstrap_doc['SupportInterpretationReason']}")  # fmt: skip
    tied = tree_mod.tied_clades(tree)
    if tied.any():
        notes(
            f"{int(tied.sum())} clade(s) of the tree are tied with their parent (equal distances): "
            "drawn as a multifurcation, no bootstrap support"
        )
    return TreeResult(
        linkage=tree,
        labels=tree_labels,
        support=support,
        tied=tied,
        bootstrap=bootstrap_doc,
        n_bootstrap=int(n_bootstrap),
        method=method,
    )


def _display_order(tree: TreeResult | None, kept: list[int], labels: list[str]) -> list[int]:
    """The tree's leaf order, then the feature spaces left out of the tree."""
    n_feat = len(labels)
    order = list(range(n_feat)) if tree is None else [kept[i] for i in tree_mod.leaf_order(tree.linkage)]
    if len(order) < n_feat:
        order += [i for i in range(n_feat) if i not in order]
    return order


def _task_graph(mean_sim: np.ndarray, labels: list[str], info: dict, top_k: int) -> GraphResult:
    return GraphResult(
        edges=graph_mod.edge_table(mean_sim, labels),
        graph=graph_mod.build_graph(mean_sim, labels, info, top_k),
        top_k=graph_mod.top_k_table(mean_sim, labels, top_k),
        k=int(top_k),
    )


def _roi_similarities(
    inputs: GroupInputs, data: list[np.ndarray], roi_masks: Mapping[str, Mapping[str, np.ndarray]] | None, notes: _Notes
) -> list[RoiResult]:
    """Similarity within each ROI, for the participants with a mask that holds analysed voxels."""
    if not roi_masks:
        return []
    given: list[tuple[str, dict[str, np.ndarray]]] = []
    for name, by_participant in roi_masks.items():
        label, vectors = bids_label(str(name)), {}
        for m in inputs.maps:
            vec = by_participant.get(m.participant, by_participant.get(f"sub-{m.participant}"))
            if vec is None:
                notes(f"ROI {label}: no mask given for sub-{m.participant}; skipped")
                continue
            vec = np.asarray(vec, dtype=bool)
            if vec.shape != (m.n_voxels,):
                raise ValueError(
                    f"ROI {label} of sub-{m.participant}: a vector over its {m.n_voxels} brain-mask "
                    f"voxels is expected, got shape {vec.shape}"
                )
            vectors[m.participant] = vec
        given.append((label, vectors))
    results = []
    for label, vectors in given:
        roi = RoiResult(label)
        for m, x in zip(inputs.maps, data):
            if m.participant not in vectors:
                continue
            cols = np.flatnonzero(vectors[m.participant])
            if cols.size == 0:
                notes(f"ROI {label}: no analysed voxel of sub-{m.participant} inside; skipped")
                continue
            roi.matrices[m.participant] = sim_mod.cosine_similarity(x[:, cols])
            roi.n_voxels[m.participant] = int(cols.size)
        results.append(roi)
    return results


def _group_maps(inputs: GroupInputs, notes: _Notes) -> GroupMapsResult | None:
    """Voxelwise group maps when every participant shares one template grid (else None, and a note)."""
    can_map, why = maps_mod.shared_grid(inputs.maps)
    if not can_map:
        notes(f"group maps skipped: {why}")
        return None
    gmask, stats_by_label = maps_mod.group_maps(inputs.maps, inputs.fdr_level)
    first = inputs.maps[0]
    return GroupMapsResult(space=first.space, affine=first.affine, mask=gmask, stats=stats_by_label)
