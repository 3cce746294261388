"""TR-average responses, the method of Wang et al. (2019).

Per run, each voxel's time series is (optionally cleaned of chosen confounds,
then) z-scored over time; a trial's response is the mean of the volumes
acquired nearest to ``onset + L * TR`` for each lag ``L`` of ``response_trs``
(default 3 and 4: 6 and 8 s after onset at TR 2 s, around the HRF peak).

Timing rule (:func:`response_volumes`): volume ``k`` stands for the time
``t_k = k * TR + StartTime`` (``StartTime`` from the preprocessed BOLD's
sidecar, the slice-timing reference fMRIPrep wrote; 0 without one). For lag
``L`` the chosen volume is the ``k`` whose ``t_k`` is nearest to
``onset + L * TR``; a target exactly halfway between two volumes (within
1e-6 TR) takes the later one. With ``StartTime = 0`` and onsets on the TR grid
this is the paper's "onset volume + L"; an onset a few ms before a TR boundary
(45.999 s at TR 2) takes the volumes 6 and 8 s after it, not 4 and 6 s as
``floor(onset / TR) + L`` would. Trials with a negative onset, or whose chosen
volumes fall outside the run, are left out with one warning per run.
Repeats of an image are averaged; single trials are kept for the noise ceiling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..bids.preprocessed import PreprocessedRun
from ..core.masks import mask_array
from .base import Responses, column_block, zscore_block
from .bold import fortran_index, load_run, no_signal_error
from .images import average_repeats
from .masking import UserMask, combined_mask
from .registry import ResponseJob
from .runs import PlannedRun, read_trial_responses, start_times, warn_left_out
from .zscoring import ZSCORING, zscore_over_trials


def confound_basis(confounds: np.ndarray | None, n_vols: int) -> np.ndarray | None:
    """Orthonormal basis (float64, ``(n_vols, r)``) of the confounds with an intercept; None without confounds.

    Its rank is decided as ``np.linalg.lstsq`` does (singular values above
    ``eps * max(shape)`` times the largest), so collinear confounds are fine.
    """
    if confounds is None or not confounds.shape[1]:
        return None
    confounds = np.asarray(confounds, np.float64)
    design = np.column_stack([np.ones(n_vols), confounds - confounds.mean(0)])
    u, sv, _ = np.linalg.svd(design, full_matrices=False)
    return u[:, sv > np.finfo(np.float64).eps * max(design.shape) * sv[0]]


def clean_and_zscore(series: np.ndarray, confounds: np.ndarray | None = None, rows=None) -> np.ndarray:
    """Regress out ``confounds`` (with an intercept), then z-score each column over time.

    Parameters
    ----------
    series : ndarray, shape (n_vols, n_voxels)
        Left as it is.
    confounds : ndarray, shape (n_vols, n_confounds), optional
    rows : index into the volumes, optional
        Return only these volumes of the z-scored series (e.g. an int array
        ``(n_trials, n_lags)``); the regression, mean and SD still use all volumes.

    Returns
    -------
    ndarray, shape (n_vols, n_voxels) (or ``rows``' shape + (n_voxels,)), float32;
    columns with zero variance (or not finite anywhere) are NaN.

    The work is float64 on a cache-sized block of voxels at a time (centre,
    subtract the projection on the confounds' orthonormal basis, z-score by
    :func:`~bids_taskenc.responses.base.zscore_block`), so no float64 copy of
    the whole series is made and only ``rows`` are written out.
    """
    n_vols, n_vox = series.shape
    basis = confound_basis(confounds, n_vols)
    lead = (n_vols,) if rows is None else np.shape(np.arange(n_vols)[rows])
    z = np.empty(lead + (n_vox,), np.float32)
    step = column_block(n_vols)
    with np.errstate(invalid="ignore"):
        for a in range(0, n_vox, step):
            b = min(n_vox, a + step)
            x = series[:, a:b].astype(np.float64)
            x -= x.mean(0)  # so the constant-voxel tolerance is relative to the signal, not the BOLD offset
            if basis is not None:
                x -= basis @ (basis.T @ x)
            zscore_block(x, rows, out=z[..., a:b])
    return z


def response_volumes(
    onsets: np.ndarray, tr: float, n_vols: int, lags: Sequence[int] | np.ndarray, start_time: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The volumes that make each trial's response, and which trials have them all.

    Parameters
    ----------
    onsets : array of shape (n_trials,)
        Trial onsets in seconds from the start of the run.
    tr : float
        Repetition time (s).
    n_vols : int
        Volumes in the run.
    lags : sequence of int
        Lags in TRs; for each, the volume acquired nearest to ``onset + lag * tr``.
    start_time : float
        Time (s) volume 0 stands for (the sidecar's ``StartTime``); volume
        ``k`` stands for ``k * tr + start_time``.

    Returns
    -------
    vols : ndarray of int, shape (n_trials, n_lags)
        Chosen volume indices (may be out of range where ``inside`` is False).
    negative : ndarray of bool, shape (n_trials,)
        Onset below 0.
    outside : ndarray of bool, shape (n_trials,)
        Some chosen volume is below 0 or above ``n_vols - 1``.
    """
    onsets = np.asarray(onsets, dtype=np.float64)
    lag_trs = np.asarray(lags, dtype=np.float64)
    target = onsets[:, None] + lag_trs[None, :] * tr  # seconds from the run's start
    # nearest volume; halfway (within 1e-6 TR, float noise) goes to the later one
    vols = np.floor((target - start_time) / tr + 0.5 + 1e-6).astype(np.int64)
    negative = ~(onsets >= 0)  # NaN onsets count as unusable too
    outside = np.asarray((vols < 0).any(1) | (vols > n_vols - 1).any(1))
    return vols, negative, outside


def _select_volumes(offsets: np.ndarray):
    """travg's ``select`` (:func:`~bids_taskenc.responses.runs.plan_run_reads`): a run's trials whose response
    volumes (:func:`response_volumes`) are all inside it, and those volumes ``(n_kept, n_lags)``."""

    def select(prun: PreprocessedRun, run_trials: pd.DataFrame, n_vols: int) -> tuple[pd.DataFrame, np.ndarray]:
        vols, negative, outside = response_volumes(
            run_trials["onset"].to_numpy(float), prun.raw.repetition_time, n_vols, offsets, prun.start_time
        )
        fits = ~negative & ~outside
        warn_left_out(
            prun,
            n_vols,
            negative,
            outside & ~negative,
            f"response volumes (nearest to onset + {list(map(int, offsets))} TR)",
        )
        return run_trials[fits], vols[fits]

    return select


def _average_volumes(mask: np.ndarray, confounds: Sequence[str] | None, zscore: str):
    """travg's ``compute``: one planned run's responses ``(n_kept, n_voxels)`` float32, the mean of its z-scored
    response volumes."""
    flat_index = fortran_index(mask)

    def compute(item: PlannedRun) -> np.ndarray:
        prun, _rows, n_vols, vols = item
        series, conf = load_run(prun, mask, confounds, flat_index=flat_index, n_volumes=n_vols)
        z = clean_and_zscore(series, conf, rows=vols)  # (n_trials_run, n_lags, n_vox), only the volumes used
        del series
        if zscore == "trials":
            z = zscore_over_trials(z)
        block = z.mean(1)  # (n_trials_run, n_vox)
        if block.size and not np.isfinite(block).any():
            raise no_signal_error(prun, n_vols, block.shape[1])
        return block

    return compute


def _provenance(runs: Sequence[PreprocessedRun], offsets: np.ndarray, confounds, zscore: str) -> dict[str, Any]:
    """What the sidecars' ``Responses`` record of a travg run."""
    return {
        "ResponseModel": "travg",
        "ResponseTRs": [int(o) for o in offsets],
        "VolumeChoice": "per lag L, the volume acquired nearest to onset + L*TR (volume k at k*TR + StartTime; "
        "halfway: the later one)",
        "StartTime": start_times(runs),
        "Confounds": list(confounds or []),
        "NRuns": len(runs),
        "ZScoring": zscore,
        "Units": "z-scored BOLD (per run, per voxel)"
        if zscore == "run"
        else "z-scored BOLD (per run, voxel and lag, over the run's trials)",
    }


def tr_average_responses(
    runs: Sequence[PreprocessedRun],
    trials: pd.DataFrame,
    *,
    response_trs: Sequence[int] = (3, 4),
    confounds: Sequence[str] | None = None,
    user_mask: UserMask | None = None,
    n_threads: int | None = None,
    mem_gb: float | None = None,
    progress: bool = False,
    zscore: str = "run",
) -> Responses:
    """Build :class:`Responses` from preprocessed runs and their trials.

    Parameters
    ----------
    runs : PreprocessedRun list
        One participant's runs, all on one voxel grid.
    trials : DataFrame
        The ``Trials`` rows of these runs (``run_key`` links them).
    response_trs : sequence of int
        Lags ``L`` in TRs; the volumes acquired nearest to ``onset + L * TR``
        are averaged (see :func:`response_volumes`).
    confounds : sequence of str, optional
        fMRIPrep confound columns to regress out before z-scoring.
    user_mask : path or NIfTI, optional
        Further restricts the voxels.
    n_threads : int, optional
        Runs read at once (default :func:`~bids_taskenc.responses.runs.default_read_threads`).
    mem_gb : float, optional
        Memory ceiling (GB = 1e9 bytes) for the responses: fewer reader threads
        when the runs would not fit, an error when even one does not.
    progress : bool
        Show a bar of the runs read.
    zscore : {'run', 'trials'}
        Z-score each voxel's series over the run, or each lag's volumes over the run's trials
        (:mod:`~bids_taskenc.responses.zscoring`).
    """
    if zscore not in ZSCORING:
        raise ValueError(f"zscore must be one of {', '.join(ZSCORING)}, got {zscore!r}")
    if not len(response_trs) or min(response_trs) < 0:
        raise ValueError("response_trs must be non-negative volume offsets")
    mask_img = combined_mask(runs, user_mask)
    mask = mask_array(mask_img)
    offsets = np.asarray(response_trs, int)
    trial_data, used = read_trial_responses(
        runs,
        trials,
        _select_volumes(offsets),
        _average_volumes(mask, confounds, zscore),
        int(mask.sum()),
        n_threads=n_threads,
        mem_gb=mem_gb,
        progress=progress,
    )
    provenance = _provenance(runs, offsets, confounds, zscore)
    return average_repeats(trial_data, used, mask_img, provenance, where=runs[0].bold, overwrite=True)


def travg_model(job: ResponseJob) -> Responses:
    """The ``travg`` entry of :data:`~bids_taskenc.responses.registry.REGISTRY`: :func:`tr_average_responses` of a
    job (``--response-trs``, ``--response-zscore``)."""
    return tr_average_responses(
        job.runs,
        job.trials,
        response_trs=list(job.options.response_trs),
        confounds=job.confounds,
        user_mask=job.user_mask,
        n_threads=job.n_threads,
        mem_gb=job.mem_gb,
        progress=job.progress,
        zscore=job.options.response_zscore,
    )
