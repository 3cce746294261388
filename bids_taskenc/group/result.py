"""What the group computation returns (:func:`bids_taskenc.group.run.compute_group`): arrays and tables, no files.

:func:`bids_taskenc.group.write.write_group_results` turns a :class:`GroupResult` into the group derivatives; a
notebook can use the arrays directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandas as pd


@dataclass
class ConsistencyResult:
    """Agreement of the participants' similarity matrices (pairwise Spearman of upper triangles, Mantel p)."""

    pairs: pd.DataFrame  # participant_a, participant_b, spearman
    mean_spearman: float
    p: float | None
    n_permutations: int

    def summary(self) -> dict:
        return {"mean_spearman": self.mean_spearman, "p": self.p, "n_permutations": self.n_permutations}


@dataclass
class TreeResult:
    """The average-linkage task tree over the feature spaces with surviving voxels, and its bootstrap support.

    ``linkage`` is scipy's ``(F - 1, 4)`` linkage over ``labels`` (the tree's leaves); ``support`` is the clade
    support (one per internal node, NaN for tied clades) or None without a bootstrap; ``tied`` marks the clades tied
    with their parent; ``bootstrap`` is what the sidecars record about the resampling.
    """

    linkage: np.ndarray
    labels: list[str]
    support: np.ndarray | None
    tied: np.ndarray
    bootstrap: dict | None
    n_bootstrap: int
    method: str


@dataclass
class GraphResult:
    """The task graph (similarity-weighted edges) and the top-k neighbours of each task."""

    edges: pd.DataFrame
    graph: nx.Graph
    top_k: pd.DataFrame
    k: int


@dataclass
class RoiResult:
    """Task x task similarity within one ROI: one ``(F, F)`` matrix per participant with voxels inside, their mean."""

    label: str
    matrices: dict[str, np.ndarray] = field(default_factory=dict)
    n_voxels: dict[str, int] = field(default_factory=dict)

    @property
    def mean(self) -> np.ndarray | None:
        return np.mean(list(self.matrices.values()), axis=0) if self.matrices else None


@dataclass
class ComparisonResult:
    """The brain's task structure against Taskonomy's transfer-out structure over the shared tasks."""

    reference: dict  # where the affinities came from (Source, sha256, ...), TaskStructure
    shared: list[str]
    summary: dict  # spearman, p_mantel, partial_correlation, p_mantel_partial, cophenetic_correlation, agree, disagree
    pairs: pd.DataFrame
    similarity: np.ndarray  # (S, S) Taskonomy task similarity over ``shared``
    tree: np.ndarray  # linkage of the Taskonomy similarity
    n_permutations: int


@dataclass
class GroupMapsResult:
    """Voxelwise group maps in one shared template space: the group mask and, per label, meanr/t/p/q volumes."""

    space: str
    affine: np.ndarray
    mask: np.ndarray  # (X, Y, Z) bool: voxels analysed in every participant
    stats: dict[str, dict[str, np.ndarray]]  # label -> stat -> (X, Y, Z)


@dataclass
class GroupResult:
    """Everything the group level computed for one task.

    ``similarity`` holds each participant's ``(F, F)`` cosine similarity of the (thresholded) r maps over
    ``labels``; ``order`` the display order (the tree's leaves, then the feature spaces left out of it);
    ``metadata`` the provenance every group sidecar carries (without the command line); ``messages`` every note
    of the run (also logged). ``consistency``, ``tree``, ``comparison`` and ``group_maps`` are None when skipped.
    """

    task: str
    participants: list[str]
    labels: list[str]
    info: dict[str, dict[str, str]]
    fdr_level: float
    n_voxels: dict[str, int]
    similarity: dict[str, np.ndarray]
    mean_similarity: np.ndarray
    excluded: list[str]
    excluded_doc: list[dict]
    order: list[int]
    graph: GraphResult
    consistency: ConsistencyResult | None = None
    tree: TreeResult | None = None
    rois: list[RoiResult] = field(default_factory=list)
    comparison: ComparisonResult | None = None
    group_maps: GroupMapsResult | None = None
    metadata: dict = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)

    @property
    def leaf_order(self) -> list[str]:
        return [self.labels[i] for i in self.order]

    @property
    def roi_labels(self) -> list[str]:
        """ROIs with a similarity matrix (at least one participant with voxels inside)."""
        return [roi.label for roi in self.rois if roi.matrices]
