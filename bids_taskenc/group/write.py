"""Write a :class:`~bids_taskenc.group.result.GroupResult` as group derivatives, staged (:mod:`.staging`).

Every name comes from :func:`bids_taskenc.outputs.naming.derivative_path`, every file is written atomically
(:mod:`bids_taskenc.outputs.atomic`) into the staging folder and moved into place when all are written, and every
sidecar carries the result's provenance and the command line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bids_taskenc.group import graph as graph_mod
from bids_taskenc.group import similarity as sim_mod
from bids_taskenc.group import tree as tree_mod
from bids_taskenc.group.result import GroupResult, TreeResult
from bids_taskenc.group.staging import GroupStage
from bids_taskenc.outputs.atomic import write_image, write_json, write_text, write_tsv
from bids_taskenc.outputs.intents import set_nifti_intent, statistic_intent
from bids_taskenc.outputs.naming import derivative_path, sidecar_path

__all__ = ["matrix_table", "write_group_results"]

#: What each group statistic map holds (its sidecar's ``Description``).
MAP_DESCRIPTIONS = {
    "meanr": "Fisher-z average of participants' r, back-transformed (tanh of mean arctanh r)",
    "t": "One-sample t of participants' Fisher z against 0",
    "p": "One-sided (greater) p of the one-sample t-test",
    "q": "Benjamini-Hochberg FDR q of p over the group mask",
}

_PARTIAL_METHOD = (
    "partial Mantel test controlling for per-task main effects: both upper triangles "
    "residualised (least squares) on additive per-task effects mu + a_i + a_j and on the "
    "chance similarity rho_i rho_j of the brain maps (rho_i = mean|x_i| / rms(x_i), set by "
    "the surviving-voxel counts; averaged over participants), Pearson correlation of the "
    "residuals; the reference's task labels permuted and residualised again, one-sided"
)


#: Why the plain Mantel test is secondary (the comparison sidecar's ``PlainMantelNote``, docs/statistics.md).
PLAIN_MANTEL_NOTE = (
    "secondary: the plain Mantel test correlates the two similarity structures as they are, so a per-task "
    "strength shared by both (with thresholded maps, a task with many surviving voxels overlaps every other "
    "task) makes it significant without any agreement about which tasks go together: it rejected in 99-100 % "
    "of null simulations that share such per-task main effects, the partial test in 4-5 %"
)


def matrix_table(matrix: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """``(F, F)`` -> table with column ``task`` then one column per label."""
    table = pd.DataFrame(np.asarray(matrix, dtype=float), columns=labels)
    table.insert(0, "task", labels)
    return table


class _Writer:
    """Collects written files and shares the provenance block of every sidecar.

    Every file goes to its staged path (:class:`~bids_taskenc.group.staging.GroupStage`) and is moved to ``path``
    when the group level is complete.
    """

    def __init__(self, root: Path, task: str, provenance: dict, stage: GroupStage):
        self.root, self.task = root, task
        self.provenance = provenance
        self.files: list[Path] = []
        self.at = stage.path

    def path(self, suffix: str, extension: str, **entities) -> Path:
        """A group derivative of this task (``sub=`` for one beside a participant's maps)."""
        return derivative_path(self.root, task=self.task, suffix=suffix, extension=extension, **entities)

    def table(self, path: Path, table: pd.DataFrame, description: str, **extra) -> Path:
        write_tsv(self.at(path), table)
        write_json(self.at(sidecar_path(path)), {"Description": description, **extra, **self.provenance})
        self.files += [path, sidecar_path(path)]
        return path

    def bare_table(self, path: Path, table: pd.DataFrame) -> Path:
        """A TSV whose sidecar is another file's (the comparison's pairs, described by its JSON)."""
        write_tsv(self.at(path), table)
        self.files.append(path)
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


def write_group_results(result: GroupResult, output_dir: str | Path, *, command_line: str | None = None) -> list[Path]:
    """Write ``result`` into ``output_dir`` (``group/`` and the per-participant matrices beside the maps).

    Staged: written into ``<output_dir>/.group.<random>/`` and swapped in when complete
    (:mod:`bids_taskenc.group.staging`), so a failure leaves the previous group outputs as they were.
    ``command_line`` (default: ``sys.argv``) is recorded in every sidecar. Returns the paths written.
    """
    root = Path(output_dir)
    provenance = {**result.metadata, "CommandLine": command_line if command_line is not None else " ".join(sys.argv)}
    stage = GroupStage(root)
    try:
        out = _Writer(root, result.task, provenance, stage)
        _write_similarities(out, result)
        _write_consistency(out, result)
        _write_tree(out, result)
        _write_graph(out, result)
        _write_rois(out, result)
        _write_comparison(out, result)
        _write_group_maps(out, result)
    except BaseException:
        stage.discard()
        raise
    stage.commit()
    return out.files


def _write_similarities(out: _Writer, result: GroupResult) -> None:
    for participant, matrix in result.similarity.items():
        out.table(
            out.path("matrix", ".tsv", sub=participant, desc="similarity"),
            matrix_table(matrix, result.labels),
            "Task x task cosine similarity of r maps of one participant",
            Participant=participant,
            NVoxels=result.n_voxels[participant],
        )
    out.table(
        out.path("matrix", ".tsv", desc="similarity"),
        matrix_table(result.mean_similarity, result.labels),
        "Task x task cosine similarity averaged over participants",
    )


def _write_consistency(out: _Writer, result: GroupResult) -> None:
    cons = result.consistency
    if cons is None:
        return
    out.table(
        out.path("stats", ".tsv", desc="consistency"),
        cons.pairs,
        "Pairwise Spearman correlation of participants' similarity matrices (upper triangles)",
        MeanSpearman=cons.mean_spearman,
        PValue=cons.p,
        PValueMethod="permutation of task labels of every matrix but the first (Mantel), one-sided",
    )


def _write_tree(out: _Writer, result: GroupResult) -> None:
    tree = result.tree
    if tree is None:
        for ext, suffix in ((".json", "dendrogram"), (".nwk", "dendrogram"), (".tsv", "clades"), (".json", "clades")):
            out.path(suffix, ext, desc="tree").unlink(missing_ok=True)  # a previous run's tree is not this run's
        return
    leaves, support = tree.labels, tree.support
    out.json(
        out.path("dendrogram", ".json", desc="tree"),
        {
            "Description": "Average-linkage tree of the tasks (cosine distance of the averaged similarity matrix)",
            "LeafOrder": [leaves[i] for i in tree_mod.leaf_order(tree.linkage)],
            "Tree": tree_mod.to_nested(tree.linkage, leaves, result.info, support),
            "Linkage": tree.linkage.tolist(),
            "LinkageLeaves": leaves,
            "ExcludedFeatureSpaces": result.excluded_doc,
            "TiedClades": [
                ",".join(leaves[j] for j in tree_mod.mask_to_indices(mask))
                for mask, t in zip(tree_mod.clade_masks(tree.linkage), tree.tied)
                if t
            ],
            "BootstrapSupport": _support_description(tree),
            "Bootstrap": tree.bootstrap,
        },
    )
    out.text(out.path("dendrogram", ".nwk", desc="tree"), tree_mod.to_newick(tree.linkage, leaves, support))
    clades = pd.DataFrame(tree_mod.clade_table(tree.linkage, leaves, support))
    out.table(
        out.path("clades", ".tsv", desc="tree"),
        clades,
        "Clades (internal nodes) of the task tree with bootstrap support",
        ExcludedFeatureSpaces=result.excluded_doc,
        Bootstrap=tree.bootstrap,
    )


def _support_description(tree: TreeResult) -> str | None:
    """What the dendrogram's support values are (None without a bootstrap)."""
    if tree.support is None:
        return None
    if tree.bootstrap is None:
        raise ValueError("the task tree has bootstrap support but no record of its bootstrap")
    return (
        f"fraction of {tree.n_bootstrap} trees of {tree.method} resamples containing the clade; "
        f"null for tied clades; {tree.bootstrap['SupportInterpretation']} "
        "(Bootstrap.SupportInterpretationReason)"
    )


def _write_graph(out: _Writer, result: GroupResult) -> None:
    graph = result.graph
    out.table(out.path("edges", ".tsv", desc="graph"), graph.edges, "Task graph edges weighted by cosine similarity")
    out.text(out.path("edges", ".graphml", desc="graph"), graph_mod.graphml_text(graph.graph))
    out.table(out.path("topk", ".tsv", desc="graph"), graph.top_k, f"The {graph.k} most similar tasks of each task")


def _write_rois(out: _Writer, result: GroupResult) -> None:
    for roi in result.rois:
        for participant, matrix in roi.matrices.items():
            out.table(
                out.path("matrix", ".tsv", sub=participant, roi=roi.label, desc="similarity"),
                matrix_table(matrix, result.labels),
                f"Task x task cosine similarity within ROI {roi.label}",
                Participant=participant,
                ROI=roi.label,
                NVoxels=roi.n_voxels[participant],
            )
        mean = roi.mean  # None without participants
        if mean is not None:
            out.table(
                out.path("matrix", ".tsv", roi=roi.label, desc="similarity"),
                matrix_table(mean, result.labels),
                f"Task x task cosine similarity within ROI {roi.label}, averaged over participants",
                ROI=roi.label,
                NParticipants=len(roi.matrices),
            )


def _write_comparison(out: _Writer, result: GroupResult) -> None:
    comp = result.comparison
    if comp is None:
        return
    summary, ref_meta, shared = comp.summary, comp.reference, comp.shared
    out.json(
        out.path("comparison", ".json", desc="taskonomy"),
        {
            "Description": "Brain task structure vs Taskonomy transfer-out task structure",
            "Reference": ref_meta,
            "SharedTasks": shared,
            "HeadlineTest": (
                "partial Mantel (PartialCorrelation, PValueMantelPartial)"
                if summary["partial_correlation"] is not None
                else f"plain Mantel (the partial test needs at least {sim_mod.MIN_TASKS_ADJUSTED} shared tasks)"
            ),
            "PartialCorrelation": summary["partial_correlation"],
            "PValueMantelPartial": summary["p_mantel_partial"],
            "PartialMethod": (
                _PARTIAL_METHOD
                if summary["partial_correlation"] is not None
                else f"not computed: needs at least {sim_mod.MIN_TASKS_ADJUSTED} shared tasks"
            ),
            "Spearman": summary["spearman"],
            "PValueMantel": summary["p_mantel"],
            "PlainMantelNote": PLAIN_MANTEL_NOTE,
            "PValueMethod": "permutation of the reference's task labels (rows and columns together), one-sided",
            "NPermutations": comp.n_permutations,
            "ExcludedFeatureSpaces": result.excluded_doc,
            "CopheneticCorrelation": summary["cophenetic_correlation"],
            "Agree": summary["agree"],
            "Disagree": summary["disagree"],
        },
    )
    out.bare_table(out.path("comparison", ".tsv", desc="taskonomy"), comp.pairs)
    out.table(
        out.path("matrix", ".tsv", desc="taskonomysimilarity"),
        matrix_table(comp.similarity, shared),
        "Taskonomy task similarity (cosine of transfer-out affinity vectors)",
        Reference=ref_meta,
    )
    out.json(
        out.path("dendrogram", ".json", desc="taskonomytree"),
        {
            "Description": "Average-linkage tree of the Taskonomy task similarity",
            "Reference": ref_meta,
            "LeafOrder": [shared[i] for i in tree_mod.leaf_order(comp.tree)],
            "Tree": tree_mod.to_nested(comp.tree, shared, result.info),
            "Linkage": comp.tree.tolist(),
            "LinkageLeaves": shared,
        },
    )
    out.text(out.path("dendrogram", ".nwk", desc="taskonomytree"), tree_mod.to_newick(comp.tree, shared))


def _write_group_maps(out: _Writer, result: GroupResult) -> None:
    maps = result.group_maps
    if maps is None:
        return
    out.image(
        out.path("mask", ".nii.gz", space=maps.space, desc="brain"),
        nib.Nifti1Image(maps.mask.astype(np.uint8), maps.affine),
        "Voxels analysed in every participant",
    )
    dof = len(result.participants) - 1  # of the one-sample t across participants
    for label, vols in maps.stats.items():
        for stat, vol in vols.items():
            out.image(
                out.path("statmap", ".nii.gz", space=maps.space, desc=label, stat=stat),
                set_nifti_intent(nib.Nifti1Image(vol, maps.affine), statistic_intent(stat, dof=dof)),
                MAP_DESCRIPTIONS[stat],
                Statistic=stat,
                FeatureLabel=label,
                FeatureSpace=result.info[label]["feature_space"],
                FeatureGroup=result.info[label]["group"],
                **({"FDRLevel": result.fdr_level} if stat == "q" else {}),
            )
