"""Single-trial GLM responses: least-squares-all (LSA).

Per run, one design matrix holds one regressor per trial (a boxcar of the
trial's onset and duration convolved with nilearn's ``glover`` or ``spm`` HRF,
sampled at the volume times ``StartTime, StartTime + TR, ...``, where
``StartTime`` is the slice-timing reference of the preprocessed BOLD's sidecar,
0 without one: the same volume timing as ``travg``), nilearn's cosine drift
regressors (high-pass cutoff ``high_pass`` Hz, default 1/128), the chosen
fMRIPrep confounds (mean-centred) and a constant. All voxels of the run are
fitted at once by ordinary least squares in float64 with torch (normal
equations, Cholesky solve; pseudo-inverse when the design is rank deficient).

Each voxel's trial betas are then z-scored over the trials of their session
(``zscore="session"``, the default, as GLMsingle's and NSD's betas are) or of
their run (``zscore="run"``; about 37 trials a run in BOLD5000, so each run's
mean and scale are estimated from few trials and any real difference between
the images of two runs is removed with them). The betas are in the units of the
preprocessed BOLD, whose scale is shared by the runs of a session; a dataset
without sessions is z-scored over all its trials. Repeats of an image are
averaged by :func:`bids_taskenc.responses.images.average_repeats`, as for
every response model. Trials with a negative onset or starting after the last
volume's time are left out, with one warning per run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ..bids.preprocessed import PreprocessedRun
from ..core.masks import mask_array
from ..errors import InputDataError
from .base import Responses, varying_columns, zscore_columns, zscore_within_groups
from .bold import fortran_index, load_run, no_signal_error
from .images import average_repeats
from .masking import UserMask, combined_mask
from .options import DEFAULT_HRF_MODEL, DEFAULT_LSA_ZSCORE, HRF_MODELS, LSA_ZSCORE_UNITS
from .registry import ResponseJob
from .runs import PlannedRun, read_trial_responses, start_times, warn_left_out

log = logging.getLogger(__name__)


def lsa_design(
    onsets: np.ndarray,
    durations: np.ndarray,
    n_vols: int,
    tr: float,
    *,
    hrf_model: str = DEFAULT_HRF_MODEL,
    high_pass: float = 1 / 128,
    confounds: np.ndarray | None = None,
    start_time: float = 0.0,
) -> tuple[np.ndarray, int]:
    """The LSA design matrix of one run, sampled at the volume times ``k * tr + start_time``.

    Returns ``(design, n_trials)``: ``design`` is ``(n_vols, n_trials + n_other)``
    float64, its first ``n_trials`` columns the trials in the given order,
    then the confounds (mean-centred), the cosine drifts and a constant.
    """
    from nilearn.glm.first_level import make_first_level_design_matrix

    if hrf_model not in HRF_MODELS:
        raise ValueError(f"hrf_model must be one of {HRF_MODELS}, got {hrf_model!r}")
    onsets = np.asarray(onsets, float)
    n_trials = len(onsets)
    names = [f"trial{j:05d}" for j in range(n_trials)]
    events = pd.DataFrame({"onset": onsets, "duration": np.asarray(durations, float), "trial_type": names})
    frame_times = np.arange(n_vols) * tr + start_time
    add_regs, add_names = None, None
    if confounds is not None and confounds.shape[1]:
        add_regs = confounds - confounds.mean(0)
        add_names = [f"confound{k:03d}" for k in range(confounds.shape[1])]
    dm = make_first_level_design_matrix(
        frame_times,
        events,
        hrf_model=hrf_model,
        drift_model="cosine",
        high_pass=high_pass,
        add_regs=add_regs,
        add_reg_names=add_names,
    )
    other = [c for c in dm.columns if c not in set(names)]
    return dm[names + other].to_numpy(np.float64), n_trials


def solve_ols(design: np.ndarray, series: np.ndarray, *, device: str = "cpu", batch: int = 65536) -> np.ndarray:
    """OLS coefficients of every column of ``series`` on ``design``, all voxels at once.

    float64 normal equations with a Cholesky solve; falls back to the
    pseudo-inverse when the design is rank deficient. Voxels are sent to
    ``device`` in batches of ``batch``.
    """
    import torch

    X = torch.tensor(np.asarray(design), dtype=torch.float64, device=device)
    gram = X.T @ X
    chol, info = torch.linalg.cholesky_ex(gram)
    rank_ok = int(info) == 0
    if rank_ok:
        # guard against a numerically singular but "successful" factorisation
        d = torch.diagonal(chol)
        rank_ok = bool((d.min() / d.max()) > 1e-7)
    if not rank_ok:
        log.warning("LSA design (%d x %d) is rank deficient; using the pseudo-inverse", *design.shape)
        pinv = torch.linalg.pinv(X)
    out = np.empty((design.shape[1], series.shape[1]), np.float64)
    for start in range(0, series.shape[1], batch):
        Y = torch.as_tensor(np.ascontiguousarray(series[:, start : start + batch]), dtype=torch.float64, device=device)
        B = torch.cholesky_solve(X.T @ Y, chol) if rank_ok else pinv @ Y
        out[:, start : start + batch] = B.cpu().numpy()
    return out


def _select_onsets(prun: PreprocessedRun, run_trials: pd.DataFrame, n_vols: int) -> tuple[pd.DataFrame, None]:
    """lsa's ``select`` (:func:`~bids_taskenc.responses.runs.plan_run_reads`): a run's trials with an onset at or
    after 0 and before its last volume's time."""
    onsets = run_trials["onset"].to_numpy(float)
    negative = ~(onsets >= 0)
    late = ~negative & ~(onsets < prun.volume_times(n_vols)[-1])
    warn_left_out(prun, n_vols, negative, late, "onsets")
    return run_trials[~negative & ~late], None


def _trial_betas(
    mask: np.ndarray, confounds: Sequence[str] | None, zscore: str, *, hrf_model: str, high_pass: float, device: str
) -> Callable[[PlannedRun], np.ndarray]:
    """lsa's ``compute``: one planned run's single-trial betas ``(n_kept, n_voxels)`` float32 (z-scored per run
    when ``zscore == "run"``; NaN for voxels not finite or constant in the run), from the design of
    :func:`lsa_design` (``hrf_model``, ``high_pass``) solved by :func:`solve_ols` on ``device``."""
    flat_index = fortran_index(mask)

    def compute(item: PlannedRun) -> np.ndarray:
        prun, run_trials, n_vols, _ = item
        series, conf = load_run(prun, mask, confounds, flat_index=flat_index, n_volumes=n_vols)
        X, n_trials = lsa_design(
            run_trials["onset"].to_numpy(float),
            run_trials["duration"].to_numpy(float),
            n_vols,
            prun.raw.repetition_time,
            hrf_model=hrf_model,
            high_pass=high_pass,
            confounds=conf,
            start_time=prun.start_time,
        )
        if X.shape[1] > n_vols:
            raise InputDataError(f"{prun.bold}: LSA design has {X.shape[1]} columns for {n_vols} volumes")
        # non-finite voxels: fit zeros, mark NaN afterwards (dropped by average_repeats); in place, as the series
        # is this run's own array (read_masked's), not a second (n_vols, n_voxels) copy
        bad = ~np.isfinite(series).all(0)
        if bad.any():
            series[:, bad] = 0.0
        bad |= ~varying_columns(series)  # constant voxels
        if bad.size and bad.all():
            raise no_signal_error(prun, n_vols, bad.size)
        betas = solve_ols(X, series, device=device)[:n_trials]
        z = zscore_columns(betas, dtype=np.float32) if zscore == "run" else betas.astype(np.float32)
        z[:, bad] = np.nan
        return z

    return compute


def _provenance(runs: Sequence[PreprocessedRun], hrf_model: str, high_pass: float, confounds, zscore: str) -> dict:
    """What the sidecars' ``Responses`` record of an lsa run."""
    return {
        "ResponseModel": "lsa",
        "HRF": hrf_model,
        "HighPass": float(high_pass),
        "DriftModel": "cosine",
        "Confounds": list(confounds or []),
        "Solver": "OLS (float64 normal equations, Cholesky)",
        "FrameTimes": "k*TR + StartTime (the preprocessed BOLD's slice-timing reference, 0 when absent)",
        "StartTime": start_times(runs),
        "NRuns": len(runs),
        "Units": f"z-scored single-trial GLM betas (per {zscore}, per voxel)",
        "ZScore": zscore,
    }


def lsa_responses(
    runs: Sequence[PreprocessedRun],
    trials: pd.DataFrame,
    *,
    hrf_model: str = DEFAULT_HRF_MODEL,
    high_pass: float = 1 / 128,
    confounds: Sequence[str] | None = None,
    user_mask: UserMask | None = None,
    device: str = "cpu",
    n_threads: int | None = None,
    mem_gb: float | None = None,
    progress: bool = False,
    zscore: str = DEFAULT_LSA_ZSCORE,
) -> Responses:
    """Build :class:`Responses` from single-trial LSA betas.

    Parameters
    ----------
    runs : PreprocessedRun list
        One participant's runs, all on one voxel grid.
    trials : DataFrame
        The ``Trials`` rows of these runs (``run_key`` links them).
    hrf_model : {'glover', 'spm'}
        nilearn HRF model the trial boxcars are convolved with.
    high_pass : float
        Cosine drift cutoff in Hz (nilearn ``high_pass``).
    confounds : sequence of str, optional
        fMRIPrep confound columns added to each run's design.
    user_mask : path or NIfTI, optional
        Further restricts the voxels.
    device : str
        torch device of the least-squares solve.
    n_threads, mem_gb
        Runs read at once and the memory ceiling, as for
        :func:`~bids_taskenc.responses.travg.tr_average_responses`.
    zscore : {'session', 'run'}
        Z-score each voxel's betas over the trials of their session (default) or of their run.
    """
    if zscore not in LSA_ZSCORE_UNITS:
        raise ValueError(f"zscore must be one of {LSA_ZSCORE_UNITS}, got {zscore!r}")
    if hrf_model not in HRF_MODELS:
        raise ValueError(f"hrf_model must be one of {HRF_MODELS}, got {hrf_model!r}")
    if not high_pass > 0:
        raise ValueError("high_pass must be a positive frequency in Hz")
    mask_img = combined_mask(runs, user_mask)
    mask = mask_array(mask_img)
    compute = _trial_betas(mask, confounds, zscore, hrf_model=hrf_model, high_pass=high_pass, device=device)
    trial_data, used = read_trial_responses(
        runs, trials, _select_onsets, compute, int(mask.sum()), n_threads=n_threads, mem_gb=mem_gb, progress=progress
    )
    if zscore == "session":
        zscore_within_groups(trial_data, used["session"].to_numpy())
    provenance = _provenance(runs, hrf_model, high_pass, confounds, zscore)
    return average_repeats(trial_data, used, mask_img, provenance, where=runs[0].bold, overwrite=True)


def lsa_model(job: ResponseJob) -> Responses:
    """The ``lsa`` entry of :data:`~bids_taskenc.responses.registry.REGISTRY`: :func:`lsa_responses` of a job
    (``--hrf-model``, ``--high-pass``, ``--lsa-zscore``; the solve on the job's device)."""
    return lsa_responses(
        job.runs,
        job.trials,
        hrf_model=job.options.hrf_model,
        zscore=job.options.lsa_zscore,
        high_pass=job.options.high_pass,
        confounds=job.confounds,
        user_mask=job.user_mask,
        device=job.device,
        n_threads=job.n_threads,
        mem_gb=job.mem_gb,
        progress=job.progress,
    )
