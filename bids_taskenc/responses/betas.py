"""Precomputed single-trial betas (e.g. BOLD5000 release 2.0's GLMsingle outputs) -> responses.

Each session's betas (``bids.betas.find_beta_files``) are z-scored per voxel
over the trials of that session, as the BOLD5000 release recommends for its
GLMsingle betas (they come in % signal change; any per-session linear scale
cancels). Voxels whose betas are not finite or constant in some session are
dropped and counted (``NVoxelsDropped``, relative to ``--mask`` when given,
else to the voxels with usable betas in at least one session). Repeats are
averaged by :func:`bids_taskenc.responses.images.average_repeats`; single
trials are kept for the noise ceiling.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import nibabel as nib
import numpy as np
import pandas as pd

from ..bids.betas import BetaFile
from ..core.images import load_volume
from ..errors import InputDataError
from .base import Responses, zscore_columns
from .images import average_repeats
from .masking import UserMask, describe_grid, same_grid
from .registry import ResponseJob

log = logging.getLogger(__name__)


def _trials_of(bf: BetaFile, keep: np.ndarray) -> pd.DataFrame:
    table = bf.table[keep]
    ses = bf.session
    run = table["run"].to_numpy(object)
    key = f"sub-{bf.subject}" + (f"_ses-{ses}" if ses is not None else "") + (f"_task-{bf.task}" if bf.task else "")
    return pd.DataFrame(
        {
            "participant": bf.subject,
            "session": ses,
            "task": bf.task,
            "run": run,
            "trial": np.arange(1, len(table) + 1),
            "onset": table["onset"].to_numpy(float),
            "duration": table["duration"].to_numpy(float),
            "image_id": table["stimulus"].to_numpy(object),
            "volume": np.flatnonzero(keep),
            "run_key": [key + (f"_run-{r}" if r is not None and not pd.isna(r) else "") for r in run],
            "stimulus_path": None,
            "betas_file": str(bf.path),
        }
    )


def _candidate_voxels(first: BetaFile, shape: tuple[int, ...], affine: np.ndarray, user_mask: UserMask | None):
    """Flat indices of the voxels the betas may keep: all of the grid, or ``--mask``'s (checked to be on it)."""
    candidate = np.ones(shape, bool)
    if user_mask is not None:
        umask = user_mask if isinstance(user_mask, nib.Nifti1Image) else load_volume(user_mask)
        if umask.shape[:3] != shape:
            raise InputDataError(
                f"{user_mask}: --mask shape {umask.shape[:3]} does not match the betas {first.path} shape {shape}"
            )
        if not same_grid(umask, shape, affine):
            raise InputDataError(
                f"{user_mask}: --mask grid ({describe_grid(umask.shape, umask.affine)}) differs from "
                f"the grid of {first.path} ({describe_grid(shape, affine)}); give "
                "--resample-mask to resample it (nearest neighbour) onto that grid"
            )
        candidate &= np.asarray(umask.dataobj) > 0
    return np.flatnonzero(candidate.ravel())


def _session_betas(bf: BetaFile, first: BetaFile, cand_idx: np.ndarray, shape, affine) -> tuple[np.ndarray, np.ndarray]:
    """One beta file's trials that name a stimulus, z-scored per voxel over them: ``(n_trials, n_cand)`` float32
    (NaN columns: constant, or not finite in some trial), and which rows of the file they are."""
    img = load_volume(bf.path)
    if img.shape[:3] != shape or not np.allclose(img.affine, affine, atol=1e-3):
        raise InputDataError(
            f"{bf.path}: grid {img.shape[:3]} differs from {first.path} {shape}; all sessions must be in one space"
        )
    keep = bf.table["stimulus"].notna().to_numpy()
    if not keep.any():
        return np.empty((0, cand_idx.size), np.float32), keep
    data = np.asarray(img.dataobj, dtype=np.float32)
    if data.ndim == 3:
        data = data[..., None]
    betas = data.reshape(-1, data.shape[3])[cand_idx][:, keep].T.astype(np.float64)  # (n_trials, n_cand)
    del data
    return zscore_columns(betas).astype(np.float32), keep


def _drop_count(valid_all: np.ndarray, valid_any: np.ndarray, masked: bool) -> int:
    """Voxels dropped, relative to ``--mask`` when given, else to the voxels usable in at least one session."""
    base = np.ones(valid_all.size, bool) if masked else valid_any
    return int((base & ~valid_all).sum())


def beta_responses(beta_files: Sequence[BetaFile], *, user_mask: UserMask | None = None) -> Responses:
    """Build :class:`Responses` from one participant's precomputed single-trial betas.

    ``beta_files`` come from :func:`bids_taskenc.bids.betas.find_beta_files`, all on one voxel grid; ``user_mask``
    (path or NIfTI) restricts the voxels and must be on the betas' grid.
    """
    if not beta_files:
        raise InputDataError("no beta file given")
    first_file = beta_files[0]
    first = load_volume(first_file.path)
    shape, affine = tuple(first.shape[:3]), first.affine
    cand_idx = _candidate_voxels(first_file, shape, affine, user_mask)
    per_session, rows = [], []
    valid_all, valid_any = np.ones(cand_idx.size, bool), np.zeros(cand_idx.size, bool)
    for bf in beta_files:
        z, keep = _session_betas(bf, first_file, cand_idx, shape, affine)
        if not keep.any():
            log.warning("%s: no volume names a stimulus; skipped", bf.tsv)
            continue
        ok = ~np.isnan(z).any(0)
        valid_all &= ok
        valid_any |= ok
        per_session.append(z)
        rows.append(_trials_of(bf, keep))
    if not per_session:
        raise InputDataError(f"{first_file.tsv}: no volume of any beta file names a stimulus")
    n_dropped = _drop_count(valid_all, valid_any, user_mask is not None)
    if not valid_all.any():
        raise InputDataError(f"{first_file.path}: no voxel has finite, non-constant betas in every session")
    if n_dropped:
        log.info("dropped %d voxels whose betas are not finite or constant in some session", n_dropped)
    mask_flat = np.zeros(int(np.prod(shape)), np.uint8)
    mask_flat[cand_idx[valid_all]] = 1
    mask_img = nib.Nifti1Image(mask_flat.reshape(shape), affine)
    trial_data = np.concatenate([z[:, valid_all] for z in per_session], axis=0)
    trials = pd.concat(rows, ignore_index=True)
    trials["repeat_index"] = trials.groupby(["participant", "image_id"]).cumcount()
    provenance = {
        "ResponseModel": "betas",
        "BetaFiles": [str(bf.path) for bf in beta_files],
        "BetaNaming": sorted({bf.naming for bf in beta_files}),
        "NSessions": len(per_session),
        "Units": "z-scored single-trial betas (per session, per voxel)",
    }
    resp = average_repeats(trial_data, trials, mask_img, provenance, where=first_file.path)
    resp.provenance["NVoxelsDropped"] = n_dropped
    return resp


def betas_model(job: ResponseJob) -> Responses:
    """The ``betas`` entry of :data:`~bids_taskenc.responses.registry.REGISTRY`: :func:`beta_responses` of the
    job's beta files (``--betas-dir``)."""
    return beta_responses(job.beta_files, user_mask=job.user_mask)
