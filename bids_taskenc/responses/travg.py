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

import logging
from collections.abc import Sequence

import nibabel as nib
import numpy as np
import pandas as pd

from ..bids.preprocessed import PreprocessedRun
from ..errors import InputDataError
from .base import Responses, zscore_columns
from .images import average_repeats

log = logging.getLogger(__name__)


def describe_grid(shape, affine) -> str:
    """``shape (10, 10, 8), voxels 2x2x2 mm, origin (-10, -10, -8) mm`` for error messages."""
    zooms = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(0))
    return (f"shape {tuple(int(n) for n in shape[:3])}, voxels {'x'.join(f'{z:.3g}' for z in zooms)} mm, "
            f"origin ({', '.join(f'{o:.4g}' for o in np.asarray(affine)[:3, 3])}) mm")


def same_grid(img, shape, affine) -> bool:
    """Same shape and affine (to 1e-3 mm, like the runs' check; nilearn's ``check_same_fov`` is of this kind)."""
    return img.shape[:3] == tuple(shape) and np.allclose(img.affine, affine, atol=1e-3)


def _load_mask(path, shape: tuple[int, ...], bold_path, affine=None) -> np.ndarray:
    img = nib.load(path)
    if img.shape[:3] != shape:
        raise InputDataError(f"{path}: mask shape {img.shape[:3]} does not match BOLD {bold_path} shape {shape}")
    if affine is not None and not same_grid(img, shape, affine):
        raise InputDataError(f"{path}: brain mask grid ({describe_grid(img.shape, img.affine)}) differs from the "
                             f"grid of {bold_path} ({describe_grid(shape, affine)})")
    return np.asarray(img.dataobj) > 0


def combined_mask(runs: Sequence[PreprocessedRun], user_mask=None) -> nib.Nifti1Image:
    """Voxels inside every run's brain mask (and ``user_mask``), as a uint8 NIfTI.

    Shapes and affines are checked against each run's BOLD.
    """
    first = nib.load(runs[0].bold)
    if first.ndim != 4:
        raise InputDataError(f"{runs[0].bold}: expected a 4-D BOLD series, got shape {first.shape}")
    shape, affine = first.shape[:3], first.affine
    mask = np.ones(shape, bool)
    for prun in runs:
        hdr = nib.load(prun.bold)
        if hdr.shape[:3] != shape or not np.allclose(hdr.affine, affine, atol=1e-3):
            raise InputDataError(f"{prun.bold}: grid {hdr.shape[:3]} differs from {runs[0].bold} {shape}; "
                                 "all runs must be in one space")
        if prun.mask is not None:
            mask &= _load_mask(prun.mask, shape, prun.bold, affine)
    if user_mask is not None:
        umask = nib.load(user_mask) if not isinstance(user_mask, nib.Nifti1Image) else user_mask
        if umask.shape[:3] != shape:
            raise InputDataError(f"{user_mask}: --mask shape {umask.shape[:3]} does not match the BOLD grid {shape}")
        if not same_grid(umask, shape, affine):
            raise InputDataError(f"{user_mask}: --mask grid ({describe_grid(umask.shape, umask.affine)}) differs from "
                                 f"the grid of {runs[0].bold} ({describe_grid(shape, affine)}); give --resample-mask "
                                 "to resample it (nearest neighbour) onto the BOLD grid")
        mask &= np.asarray(umask.dataobj) > 0
    if not mask.any():
        raise InputDataError(f"{runs[0].bold}: the brain masks (and --mask) leave no voxel")
    return nib.Nifti1Image(mask.astype(np.uint8), affine)


def _confound_matrix(prun: PreprocessedRun, names: Sequence[str], n_vols: int) -> np.ndarray:
    table = pd.read_csv(prun.confounds, sep="\t", na_values=["n/a"])
    missing = [c for c in names if c not in table.columns]
    if missing:
        raise InputDataError(f"{prun.confounds}: confound column(s) {missing} not found")
    if len(table) != n_vols:
        raise InputDataError(f"{prun.confounds}: {len(table)} rows but {prun.bold} has {n_vols} volumes")
    # fMRIPrep writes n/a for the first volume of derivative regressors (e.g. framewise_displacement)
    return table[list(names)].fillna(0.0).to_numpy(float)


def warn_left_out(prun: PreprocessedRun, n_vols: int, negative: np.ndarray, outside: np.ndarray, what: str) -> None:
    """One warning for a run's trials left out: negative onsets, and trials whose ``what`` fall outside the run."""
    n_neg, n_out = int(np.sum(negative)), int(np.sum(outside))
    if not n_neg and not n_out:
        return
    parts = []
    if n_neg:
        parts.append(f"{n_neg} with a negative onset")
    if n_out:
        parts.append(f"{n_out} whose {what} fall outside the run's {n_vols} volumes")
    log.warning("%s: %d trial(s) left out (%s); BOLD %s", prun.raw.events, n_neg + n_out, ", ".join(parts),
                prun.bold.name)


def start_times(runs: Sequence[PreprocessedRun]) -> float | list[float]:
    """The runs' ``StartTime`` for provenance: one number when they agree, else one per run."""
    values = sorted({float(p.start_time) for p in runs})
    return values[0] if len(values) == 1 else [float(p.start_time) for p in runs]


def load_run(prun: PreprocessedRun, mask: np.ndarray, confounds: Sequence[str] | None = None
             ) -> tuple[np.ndarray, np.ndarray | None]:
    """One run's BOLD inside ``mask`` and its chosen confounds.

    Returns ``series`` (n_vols, n_voxels) float32 and the confound matrix
    (n_vols, n_confounds), or None when no confounds are asked for.
    """
    data = np.asarray(nib.load(prun.bold).dataobj, dtype=np.float32)
    if data.ndim != 4:
        raise InputDataError(f"{prun.bold}: expected a 4-D BOLD series, got shape {data.shape}")
    series = data[mask].T
    conf = None
    if confounds:
        if prun.confounds is None:
            raise InputDataError(f"{prun.bold}: --confounds given but no confounds file for {prun.raw.label}")
        conf = _confound_matrix(prun, confounds, series.shape[0])
    return series, conf


def clean_and_zscore(series: np.ndarray, confounds: np.ndarray | None = None) -> np.ndarray:
    """Regress out ``confounds`` (with an intercept), then z-score each column over time.

    Parameters
    ----------
    series : ndarray, shape (n_vols, n_voxels)
    confounds : ndarray, shape (n_vols, n_confounds), optional

    Returns
    -------
    ndarray, shape (n_vols, n_voxels), float32; columns with zero variance are NaN.
    """
    series = series.astype(np.float64, copy=True)
    if confounds is not None and confounds.shape[1]:
        design = np.column_stack([np.ones(len(series)), confounds - confounds.mean(0)])
        beta, *_ = np.linalg.lstsq(design, series, rcond=None)
        series -= design @ beta
    series -= series.mean(0)  # so the constant-voxel tolerance is relative to the signal, not the BOLD offset
    return zscore_columns(series).astype(np.float32)


def response_volumes(onsets: np.ndarray, tr: float, n_vols: int, lags: Sequence[int], start_time: float = 0.0
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
    lags = np.asarray(lags, dtype=np.float64)
    target = onsets[:, None] + lags[None, :] * tr  # seconds from the run's start
    # nearest volume; halfway (within 1e-6 TR, float noise) goes to the later one
    vols = np.floor((target - start_time) / tr + 0.5 + 1e-6).astype(np.int64)
    negative = ~(onsets >= 0)  # NaN onsets count as unusable too
    outside = (vols < 0).any(1) | (vols > n_vols - 1).any(1)
    return vols, negative, outside


def tr_average_responses(
    runs: Sequence[PreprocessedRun],
    trials: pd.DataFrame,
    *,
    response_trs: Sequence[int] = (3, 4),
    confounds: Sequence[str] | None = None,
    user_mask=None,
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
    """
    if not len(response_trs) or min(response_trs) < 0:
        raise ValueError("response_trs must be non-negative volume offsets")
    mask_img = combined_mask(runs, user_mask)
    mask = np.asarray(mask_img.dataobj).astype(bool)
    offsets = np.asarray(response_trs, int)

    trial_rows, blocks = [], []
    for prun in runs:
        key = prun.raw.label
        run_trials = trials[trials["run_key"] == key]
        if run_trials.empty:
            continue
        series, conf = load_run(prun, mask, confounds)
        n_vols = series.shape[0]
        vols, negative, outside = response_volumes(run_trials["onset"].to_numpy(float), prun.raw.repetition_time,
                                                   n_vols, offsets, prun.start_time)
        fits = ~negative & ~outside
        warn_left_out(prun, n_vols, negative, outside & ~negative,
                      f"response volumes (nearest to onset + {list(map(int, offsets))} TR)")
        if not fits.any():
            continue
        z = clean_and_zscore(series, conf)
        blocks.append(z[vols[fits]].mean(1))  # (n_trials_run, n_vox)
        trial_rows.append(run_trials[fits])
    if not blocks:
        raise InputDataError("no trial of the selected runs falls inside its run")

    trial_data = np.concatenate(blocks, axis=0)
    used = pd.concat(trial_rows, ignore_index=True)
    return average_repeats(trial_data, used, mask_img, {
        "ResponseModel": "travg", "ResponseTRs": [int(o) for o in offsets],
        "VolumeChoice": "per lag L, the volume acquired nearest to onset + L*TR (volume k at k*TR + StartTime; "
                        "halfway: the later one)",
        "StartTime": start_times(runs),
        "Confounds": list(confounds or []), "NRuns": len(runs),
        "Units": "z-scored BOLD (per run, per voxel)"}, where=runs[0].bold)
