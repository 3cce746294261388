"""The tree's clade support: the resampled similarity matrices and what the sidecars say they mean.

:func:`tree_bootstrap` draws ``(B, F, F)`` similarity matrices with the resampling
:func:`~bids_taskenc.group.resampling.resolve_tree_bootstrap` chose, and documents it: the
method, its settings and, per participant of a block bootstrap, the boxes and the spatial
autocorrelation they were cut from; ``SupportInterpretation`` (``calibrated`` or
``descriptive``) and ``SupportInterpretationReason`` say what the support means
(docs/tree-support.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import nibabel as nib
import numpy as np

from bids_taskenc.group import resampling as resample_mod

#: Participant resamplings: method -> (draws of the (B, F, F) matrices, what the sidecars say they are).
PARTICIPANT_RESAMPLINGS: dict[str, tuple[Callable, str]] = {
    "participant": (
        resample_mod.participant_bootstrap_similarities,
        "participants drawn with replacement; their similarity matrices averaged",
    ),
    "participant-t": (
        resample_mod.participant_t_similarities,
        "draws of the mean similarity matrix from its Student-t distribution over participants: mean + "
        "sqrt(nu / chi2_nu) * sum_p z_p (M_p - mean) / sqrt(P (P - 1)), z_p standard normal, nu = P - 1 "
        "(each entry and each difference of entries is mean + SE * t_nu)",
    ),
}


def tree_bootstrap(
    maps: Sequence,
    data: Sequence[np.ndarray],
    matrices: Sequence[np.ndarray],
    method: str,
    n_bootstrap: int,
    block_mm: float | None,
    boot_seeds: Sequence[np.random.SeedSequence],
    participant_seed: np.random.SeedSequence,
    *,
    progress: bool = False,
) -> tuple[np.ndarray, dict]:
    """``(B, F, F)`` resampled similarity matrices for the tree, and what the sidecars record about them.

    Parameters
    ----------
    maps : sequence of ParticipantMaps
        The participants (their ``r`` maps, brain mask and affine give the block bootstrap's boxes).
    data : sequence of ndarray
        Per participant the ``(F, V)`` maps the similarity is computed on (thresholded or not).
    matrices : sequence of ndarray
        Per participant the ``(F, F)`` similarity matrix.
    method : {"block", "participant", "participant-t"}
    n_bootstrap : int
    block_mm : float or None
        Box edge in mm; None: from each participant's autocorrelation.
    boot_seeds, participant_seed
        Seeds of the block bootstrap (one per participant) and of the participant resamplings.
    """
    if method in PARTICIPANT_RESAMPLINGS:
        draw, description = PARTICIPANT_RESAMPLINGS[method]
        boots = draw(matrices, n_bootstrap, np.random.default_rng(participant_seed))
        doc = {
            "Method": method,
            "NBootstrap": int(n_bootstrap),
            "NParticipants": len(maps),
            "Description": description,
            **resample_mod.support_interpretation(method),
        }
        return boots, doc
    return _block_bootstrap(maps, data, n_bootstrap, block_mm, boot_seeds, progress)


def _block_bootstrap(maps, data, n_bootstrap, block_mm, boot_seeds, progress):
    """The block bootstrap of :func:`tree_bootstrap`: each participant's boxes, their draws averaged."""
    from tqdm.auto import tqdm

    n_feat = data[0].shape[0]
    boots = np.zeros((n_bootstrap, n_feat, n_feat))
    per, problems = {}, {}
    for m, x, ss in tqdm(
        list(zip(maps, data, boot_seeds)),
        desc="tree block bootstrap",
        unit="participant",
        disable=not progress,
        leave=False,
    ):
        sizes = nib.affines.voxel_sizes(m.affine)
        vol = np.zeros((m.r.shape[0], *m.mask.shape))
        vol[:, m.mask] = m.r
        design = resample_mod.block_design(vol, m.mask, sizes, block_mm)
        if design.problem is not None:
            problems[m.participant] = design.problem
        boots += resample_mod.block_bootstrap_similarities(x, design.labels, n_bootstrap, np.random.default_rng(ss))
        per[m.participant] = _design_doc(design, sizes)
    boots /= len(maps)
    if problems:
        why = "; ".join(f"sub-{p}: {text}" for p, text in problems.items())
        interpretation = resample_mod.support_interpretation("block", why)
    else:
        interpretation = resample_mod.support_interpretation("block")
    doc = {
        "Method": "block",
        "NBootstrap": int(n_bootstrap),
        "Description": "spatial block bootstrap: each participant's voxel grid cut into boxes, boxes drawn with "
        "replacement until the participant's voxel count is reached, bootstrap matrices averaged "
        "over participants",
        "BlockSizeRule": (
            f"{block_mm:g} mm per axis, rounded to voxels"
            if block_mm is not None
            else f"the lag where the spatial autocorrelation of the unthresholded r maps (pooled over maps) first "
            f"falls to {resample_mod.ACF_LEVEL:g}, the longest of the three axes in mm, rounded up to voxels, "
            f"clipped to [1, {resample_mod.MAX_EDGE}]"
        ),
        "BoxCoverageRule": f"boxes cover a participant's autocorrelation when at least as wide as its decay to "
        f"{resample_mod.ACF_LEVEL:g} (within {resample_mod.MAX_EDGE} voxels) and at least {resample_mod.MIN_BLOCKS} "
        "of them; otherwise Participants.<label>.Problem says why",
        "Participants": per,
        **interpretation,
    }
    return boots, doc


def _design_doc(design: resample_mod.BlockDesign, sizes) -> dict:
    """One participant's boxes as the sidecars record them."""

    def numbers(values):
        return [None if not np.isfinite(v) else round(float(v), 4) for v in values]

    return {
        "BlockEdgeVoxels": list(design.edges),
        "BlockEdgeMM": [round(float(e * v), 4) for e, v in zip(design.edges, sizes)],
        "NBlocks": design.n_blocks,
        "AutocorrelationDecayVoxels": numbers(design.decay),
        "EstimatedFWHMVoxels": numbers(design.fwhm),
        "Problem": design.problem,
    }
