"""The group run: typed settings in, group derivatives written, an outcome back.

From Python (a notebook)::

    from bids_taskenc.workflow.group import GroupSettings, run_group
    outcome = run_group("bids", "bids/derivatives/bids_taskenc", GroupSettings(n_bootstrap=200, offline=True))
    outcome.result.mean_similarity, outcome.result.comparison, outcome.files

The steps read like the method: gather the inputs (the participants' maps, their ROI masks, Taskonomy's
affinities) ► compare the tasks (:func:`bids_taskenc.group.run.compute_group`) ► write
(:func:`bids_taskenc.group.write.write_group_results`, staged). ``cli/`` builds the settings from the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bids_taskenc.bids.rois import find_roi_masks, load_roi_vectors
from bids_taskenc.group.inputs import GroupInputError, GroupInputs, read_group_inputs
from bids_taskenc.group.options import (
    DEFAULT_GROUP_PERMUTATIONS,
    DEFAULT_N_BOOTSTRAP,
    DEFAULT_TOP_K,
    DEFAULT_TREE_BOOTSTRAP,
)
from bids_taskenc.group.result import GroupResult
from bids_taskenc.group.run import TREE_BOOTSTRAPS, compute_group, resolve_reference
from bids_taskenc.group.staging import remove_stale
from bids_taskenc.group.write import write_group_results
from bids_taskenc.outputs.locks import OutputBusyError, busy_participants, output_lock
from bids_taskenc.workflow.dataset import check_output_owner, resolve_roi_dir
from bids_taskenc.workflow.folders import check_no_overlap, read_folders
from bids_taskenc.workflow.settings import _Settings, is_choice, is_fraction, is_number, is_whole, one_of, require

__all__ = ["GroupOutcome", "GroupSettings", "group_roi_masks", "resolve_roi_dir", "run_group"]


@dataclass(frozen=True)
class GroupSettings(_Settings):
    """Every choice of a group run (the command line's group options; defaults as there).

    Attributes
    ----------
    task, participants, space
        Selection (labels with or without ``task-``/``sub-``/``space-``); None: the only task, every participant
        with outputs, each participant's only space.
    fdr_alpha : float, optional
        The group's FDR level; None: the ``FDRLevel`` of the participant maps' sidecars, which must agree.
    thresholded : bool
        Cosine of FDR-thresholded r maps (r = 0 where q is not below the level); False: raw r.
    roi_dir : Path, optional
        Folder of ROI masks (:mod:`bids_taskenc.bids.rois`); None: ``<bids_dir>/derivatives/spm`` when present.
    reference_affinities : Path, optional
        Taskonomy affinities (pickle, CSV or TSV) instead of the table the package ships.
    offline : bool
        Never download. The group level downloads nothing (the Taskonomy affinities ship with the package); kept
        because the command line's ``--offline`` serves both levels.
    n_bootstrap, n_permutations, top_k, seed
        Bootstrap trees for clade support, permutations for the Mantel and consistency p, neighbours per task in
        the top-k table, seed of every random draw.
    tree_bootstrap : {"auto", "block", "participant", "participant-t"}
        Resampling for the clade support; ``auto``: ``participant-t`` with three or more participants (a calibrated
        support), else ``block`` (a descriptive one); docs/tree-support.md.
    bootstrap_block_mm : float, optional
        Edge of the block bootstrap's boxes in mm; None: where each participant's spatial autocorrelation decays.
    command_line : str, optional
        Recorded in every sidecar (default: ``sys.argv``).
    progress : bool
        A progress bar for the block bootstrap.
    allow_one_participant : bool
        Run over one participant's outputs; without it fewer than two participants is an error.
    """

    task: str | None = None
    participants: tuple[str, ...] | None = None
    space: str | None = None
    fdr_alpha: float | None = None
    thresholded: bool = True
    roi_dir: Path | None = None
    reference_affinities: Path | None = None
    offline: bool = False
    n_bootstrap: int = DEFAULT_N_BOOTSTRAP
    n_permutations: int = DEFAULT_GROUP_PERMUTATIONS
    tree_bootstrap: str = DEFAULT_TREE_BOOTSTRAP
    bootstrap_block_mm: float | None = None
    top_k: int = DEFAULT_TOP_K
    seed: int = 0
    command_line: str | None = None
    progress: bool = False
    allow_one_participant: bool = False

    def check(self) -> None:
        """Raise :class:`~bids_taskenc.errors.InvalidSettingError` for the first value out of its range."""
        require(self, "fdr_alpha", self.fdr_alpha is None or is_fraction(self.fdr_alpha), "must be between 0 and 1")
        require(self, "tree_bootstrap", is_choice(self.tree_bootstrap, TREE_BOOTSTRAPS), one_of(TREE_BOOTSTRAPS))
        block = self.bootstrap_block_mm
        require(self, "bootstrap_block_mm", block is None or (is_number(block) and block > 0), "must be positive")
        for name in ("n_bootstrap", "n_permutations", "seed"):
            require(self, name, is_whole(getattr(self, name), 0), "must be a whole number >= 0")
        require(self, "top_k", is_whole(self.top_k, 1), "must be at least 1")


@dataclass
class GroupOutcome:
    """What a group run computed (:class:`~bids_taskenc.group.result.GroupResult`) and the files it wrote."""

    result: GroupResult
    files: list[Path] = field(default_factory=list)


def group_roi_masks(roi_dir: Path | None, inputs: GroupInputs) -> dict[str, dict[str, np.ndarray]] | None:
    """ROI name -> participant -> ``(n_voxels,)`` bool vector over its brain-mask voxels, hemispheres pooled.

    Each participant's masks are found in ``roi_dir`` and brought to the grid of its maps by the participant
    level's own reader (:func:`bids_taskenc.bids.rois.load_roi_vectors`), so both levels see the same voxels.
    """
    if roi_dir is None:
        return None
    masks: dict[str, dict[str, np.ndarray]] = {}
    for m in inputs.maps:
        for name, vector in load_roi_vectors(find_roi_masks(roi_dir, m.participant), m.mask_image()).items():
            if not name.startswith(("LH-", "RH-")):
                masks.setdefault(name, {})[m.participant] = vector
    return masks or None


def run_group(bids_dir: str | Path, output_dir: str | Path, settings: GroupSettings = GroupSettings()) -> GroupOutcome:
    """Run the group level on the participant outputs in ``output_dir``; write its derivatives there.

    ``bids_dir`` is the input dataset (where ``derivatives/spm`` ROI masks are looked for when ``settings.roi_dir``
    is None). Group files go to ``output_dir/group/``, per-participant matrices beside the maps.

    Raises
    ------
    bids_taskenc.group.GroupInputError
        No participant outputs, an ambiguous task or space, missing files, fewer than two shared feature spaces,
        FDR levels that differ across sidecars (without ``fdr_alpha``), an unreadable ``reference_affinities``,
        a participant bootstrap with fewer than three participants, one participant without
        ``allow_one_participant``, maps made with different shared settings (docs/output-safety.md).
    InputMissingError
        ``settings.roi_dir`` is not a folder.
    UsageError
        ``output_dir`` is, contains or lies inside the ROI folder, or holds another pipeline's dataset.
    bids_taskenc.outputs.locks.OutputBusyError
        A participant is being run into ``output_dir``, or another group run writes there.
    """
    output_dir = Path(output_dir)
    roi_dir = resolve_roi_dir(settings.roi_dir, Path(bids_dir))
    reads = read_folders(Path(bids_dir), roi_dir=roi_dir, roi_dir_given=settings.roi_dir is not None)
    output_dir = check_no_overlap("output_dir", output_dir, reads)
    check_output_owner(output_dir, [])
    if not output_dir.is_dir():
        return _run_group(output_dir, roi_dir, settings)  # names the missing folder
    busy = busy_participants(output_dir)
    if busy:
        raise OutputBusyError(
            f"{output_dir}: sub-{', sub-'.join(busy)} is being run now (its lock is held); run the group level "
            "when it has finished, or its result would mix that participant's old and new outputs"
        )
    with output_lock(output_dir, exclusive=True, who="the group level"):
        return _run_group(output_dir, roi_dir, settings)


def _run_group(output_dir: Path, roi_dir: Path | None, settings: GroupSettings) -> GroupOutcome:
    if output_dir.is_dir():
        remove_stale(output_dir)  # first of all, finish the commit of a group run that was killed while swapping
    inputs = read_group_inputs(
        output_dir,
        task=settings.task,
        participants=settings.participants,
        space=settings.space,
        fdr_alpha=settings.fdr_alpha,
        thresholded=settings.thresholded,
    )
    if len(inputs.maps) < 2 and not settings.allow_one_participant:
        raise GroupInputError(
            f"{output_dir}: the group level compares participants and found the outputs of sub-"
            f"{inputs.participants[0]} only (task {inputs.task}); run the participant level for the others, or "
            "give --allow-one-participant (allow_one_participant=True in Python) for one participant's tree alone"
        )
    reference = resolve_reference(settings.reference_affinities)
    result = compute_group(
        inputs,
        reference=reference,
        roi_masks=group_roi_masks(roi_dir, inputs),
        n_bootstrap=settings.n_bootstrap,
        tree_bootstrap=settings.tree_bootstrap,
        bootstrap_block_mm=settings.bootstrap_block_mm,
        n_permutations=settings.n_permutations,
        top_k=settings.top_k,
        seed=settings.seed,
        progress=settings.progress,
    )
    files = write_group_results(result, output_dir, command_line=settings.command_line)
    return GroupOutcome(result, files)
