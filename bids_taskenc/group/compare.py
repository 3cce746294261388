"""Compare the brain's task structure with a reference (Taskonomy) task structure.

Both are ``(F, F)`` similarity matrices over the same tasks. Reported: the
Spearman correlation of their upper triangles with a Mantel permutation p
(labels of the reference permuted); a partial Mantel test controlling for
per-task main effects (:func:`~bids_taskenc.group.similarity.partial_mantel`:
additive per-task effects and the chance similarity of the brain's maps, which
their surviving-voxel counts set; same permutation scheme), because a per-task
strength shared by both matrices makes the plain Mantel test significant
without any pairwise structure; the cophenetic correlation of their
average-linkage trees; and per task pair the rank difference (brain rank -
reference rank, rank 1 = most similar pair) and both matrices' residuals.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from bids_taskenc.group.similarity import (
    MIN_TASKS_ADJUSTED,
    main_effect_residuals,
    mantel,
    partial_mantel,
)
from bids_taskenc.group.tree import build_tree, cophenetic_correlation

#: Fewer shared tasks than this and there is nothing to compare.
MIN_SHARED_TASKS = 3


def pair_table(
    brain: np.ndarray, reference: np.ndarray, labels: Sequence[str], chance: np.ndarray | None = None
) -> pd.DataFrame:
    """One row per task pair.

    Columns ``task_a, task_b, brain_similarity, reference_similarity,
    brain_rank, reference_rank, rank_difference`` (rank 1 = most similar),
    ``brain_residual, reference_residual`` (what the partial Mantel test
    correlates: main effects removed; n/a without ``chance`` or with fewer than
    ``MIN_TASKS_ADJUSTED`` tasks), sorted by ``|rank_difference|`` (agreeing
    pairs first).
    """
    iu, ju = np.triu_indices(len(labels), k=1)
    b, r = brain[iu, ju], reference[iu, ju]
    if chance is not None and len(labels) >= MIN_TASKS_ADJUSTED:
        b_adj, r_adj = main_effect_residuals(brain, chance), main_effect_residuals(reference, chance)
    else:
        b_adj = r_adj = np.full(iu.size, np.nan)
    b_rank, r_rank = rankdata(-b), rankdata(-r)
    table = pd.DataFrame(
        {
            "task_a": [labels[i] for i in iu.tolist()],
            "task_b": [labels[j] for j in ju.tolist()],
            "brain_similarity": b,
            "reference_similarity": r,
            "brain_rank": b_rank,
            "reference_rank": r_rank,
            "rank_difference": b_rank - r_rank,
            "brain_residual": b_adj,
            "reference_residual": r_adj,
        }
    )
    order = np.lexsort((-(b + r), np.abs(table["rank_difference"].to_numpy())))
    return table.iloc[order].reset_index(drop=True)


def compare_structures(
    brain: np.ndarray,
    reference: np.ndarray,
    labels: Sequence[str],
    *,
    n_permutations: int,
    rng: np.random.Generator,
    chance: np.ndarray | None = None,
    n_report: int = 5,
) -> tuple[dict, pd.DataFrame]:
    """Agreement of two ``(F, F)`` similarity matrices over ``labels``.

    ``chance`` is the brain maps' :func:`~bids_taskenc.group.similarity.chance_similarity`
    over ``labels``; without it (or with fewer than ``MIN_TASKS_ADJUSTED`` tasks) the
    partial Mantel test is not computed.

    Returns
    -------
    summary : dict
        ``n_tasks, tasks, spearman, p_mantel``, ``partial_correlation, p_mantel_partial``
        (None when not computed), ``n_permutations,
        cophenetic_correlation, agree`` and ``disagree`` (the ``n_report`` pairs with the smallest / largest
        absolute rank difference).
    pairs : DataFrame
        :func:`pair_table`.
    """
    if len(labels) < MIN_SHARED_TASKS:
        raise ValueError(f"need at least {MIN_SHARED_TASKS} shared tasks, got {len(labels)}")
    rho, p = mantel(brain, reference, n_permutations, rng)
    r_adj: float | None
    p_adj: float | None
    if chance is not None and len(labels) >= MIN_TASKS_ADJUSTED:
        r_adj, p_adj = partial_mantel(brain, reference, chance, n_permutations, rng)
    else:
        r_adj = p_adj = None
    coph = cophenetic_correlation(build_tree(brain), build_tree(reference))
    pairs = pair_table(brain, reference, labels, chance)
    records = pairs.to_dict(orient="records")
    n = min(n_report, len(records))
    summary = {
        "n_tasks": len(labels),
        "tasks": list(labels),
        "spearman": rho,
        "p_mantel": p,
        "partial_correlation": r_adj,
        "p_mantel_partial": p_adj,
        "n_permutations": int(n_permutations),
        "cophenetic_correlation": coph,
        "agree": records[:n],
        "disagree": records[::-1][:n],
    }
    return summary, pairs
