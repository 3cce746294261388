"""The group's comparison with Taskonomy: the transfer affinities it compares with (the table the package ships, or
``--reference-affinities``) and the Mantel tests of the brain's task structure against them
(:mod:`~bids_taskenc.group.reference`, :mod:`~bids_taskenc.group.compare`); a step of
:func:`bids_taskenc.group.run.compute_group`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bids_taskenc.group import compare as compare_mod
from bids_taskenc.group import reference as ref_mod
from bids_taskenc.group import similarity as sim_mod
from bids_taskenc.group import tree as tree_mod
from bids_taskenc.group.inputs import GroupInputError, GroupInputs
from bids_taskenc.group.result import ComparisonResult

if TYPE_CHECKING:
    from bids_taskenc.group.run import _Notes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reference:
    """Taskonomy's affinities for the comparison (bank names), where they came from, or why there are none."""

    frame: pd.DataFrame | None = None
    meta: dict = field(default_factory=dict)
    skip: str | None = None


def resolve_reference(reference_affinities=None) -> Reference:
    """The affinities: ``reference_affinities`` (a file, which must be readable), else the table the package ships.

    The bundled table (:func:`~bids_taskenc.group.reference.bundled_affinities`) needs no network. When it cannot be
    read (a broken installation) the :class:`Reference` has ``skip`` set: the comparison is skipped with a WARNING
    and the rest of the group level is written.

    Raises
    ------
    GroupInputError
        ``reference_affinities`` cannot be read.
    """
    if reference_affinities is not None:
        path = Path(reference_affinities)
        try:
            frame = ref_mod.load_affinities(path)
        except ref_mod.ReferenceDataError as exc:
            raise GroupInputError(str(exc)) from exc
        return Reference(frame, {"Source": str(path), "sha256": ref_mod.sha256_of(path)})
    try:
        frame = ref_mod.load_affinities(ref_mod.bundled_affinities())
        meta = ref_mod.bundled_provenance()
    except ref_mod.ReferenceDataError as exc:
        return Reference(skip=f"Taskonomy comparison skipped: {exc} (give --reference-affinities FILE)")
    return Reference(frame, meta)


def _fmt(value) -> str:
    """A statistic for the log: 3 significant digits, or 'n/a' (not computed)."""
    return "n/a" if value is None else f"{value:.3g}"


def compare_with_reference(
    inputs: GroupInputs,
    data,
    mean_sim,
    tree_labels: list[str],
    reference: Reference,
    n_permutations: int,
    seed,
    notes: _Notes,
) -> ComparisonResult | None:
    """Mantel tests of the brain's task structure against Taskonomy's (None, and a note, when skipped)."""
    if reference.skip:  # the reference could not be read: something is wrong, not a choice
        notes.warn(reference.skip)
        return None
    labelled = ref_mod.label_affinities(reference.frame)
    shared = [lab for lab in tree_labels if lab in labelled.columns]
    if len(shared) < compare_mod.MIN_SHARED_TASKS:
        notes(
            f"Taskonomy comparison skipped: {len(shared)} task(s) shared with the reference "
            f"(need {compare_mod.MIN_SHARED_TASKS})"
        )
        return None
    ref_sim = ref_mod.transfer_out_similarity(labelled, shared).to_numpy()
    idx = [inputs.labels.index(lab) for lab in shared]
    chance = np.mean([sim_mod.chance_similarity(x[idx]) for x in data], axis=0)
    t_step = time.perf_counter()
    summary, pairs = compare_mod.compare_structures(
        mean_sim[np.ix_(idx, idx)],
        ref_sim,
        shared,
        n_permutations=n_permutations,
        rng=np.random.default_rng(seed),
        chance=chance,
    )
    log.info(
        "Taskonomy comparison: partial Mantel (the headline test) r = %s, p = %s; plain Mantel (secondary: per-task "
        "strength alone makes it significant) Spearman %s, p = %s; %d permutations (%.1f s)",
        _fmt(summary["partial_correlation"]),
        _fmt(summary["p_mantel_partial"]),
        _fmt(summary["spearman"]),
        _fmt(summary["p_mantel"]),
        n_permutations,
        time.perf_counter() - t_step,
    )
    meta = {**reference.meta, "TaskStructure": "cosine of transfer-out vectors, each target max-normalised"}
    return ComparisonResult(
        reference=meta,
        shared=shared,
        summary=summary,
        pairs=pairs,
        similarity=ref_sim,
        tree=tree_mod.build_tree(ref_sim),
        n_permutations=int(n_permutations),
    )
