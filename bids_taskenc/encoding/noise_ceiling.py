"""Noise ceiling from repeated presentations, as in the Natural Scenes Dataset.

Allen et al. (2022, Nature Neuroscience, Methods "Noise ceiling"): with trial
responses z-scored per voxel (total variance 1 = signal + noise),

* noise variance ``σ²_noise`` = mean over images shown at least twice of the
  (``ddof=1``) variance of that image's responses across its repeats;
* ``ncsnr = sqrt(max(0, 1 - σ²_noise)) / sqrt(σ²_noise)`` (noise-ceiling SNR);
* for responses averaged over ``n`` trials, the largest fraction of variance
  any model can explain is ``NC = ncsnr² / (ncsnr² + 1/n)``.

Here NC is a fraction in [0, 1] (NSD prints it in percent). As in NSD, the
trial responses are z-scored per voxel **within each session** when sessions
are given (``sessions=``), else over all trials: session-wise offsets and
scales are then neither signal nor noise.

Normalised scores (:func:`noise_normalized_score`) follow Algonauts 2023 /
NSD: the test correlation clipped at 0, squared, over the noise ceiling, only
where the ceiling is reliably above 0 (:func:`ceiling_pvalue`: a one-way
ANOVA F test over the repeated images that their responses differ, i.e.
signal variance > 0), NaN elsewhere.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _standardized(y: np.ndarray, sessions, zscore: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(y z-scored per voxel within each session, or over all trials; constant voxels)``.

    A voxel constant within a session of two or more trials is constant (NaN
    later); a session of one trial is left at 0 (its mean), as it carries no
    within-session variance.
    """
    constant = np.zeros(y.shape[1], dtype=bool)
    if not zscore:
        return y, constant
    if sessions is None:
        groups = np.zeros(y.shape[0], dtype=np.int64)
    else:
        sessions = np.asarray(sessions, dtype=object)
        if sessions.shape != (y.shape[0],):
            raise ValueError(f"sessions must have shape ({y.shape[0]},), got {sessions.shape}")
        _, groups = np.unique(sessions.astype(str), return_inverse=True)
    out = np.empty_like(y)
    for g in np.unique(groups):
        rows = groups == g
        block = y[rows]
        centred = block - block.mean(0)
        sd = centred.std(0)
        if rows.sum() >= 2:
            constant |= sd == 0
        out[rows] = centred / np.where(sd == 0, 1.0, sd)
    return out, constant


def _repeat_sums(y: np.ndarray, ids: np.ndarray):
    """Per repeated image: trial count ``k`` (n_rep, 1), sum and sum of squares (n_rep, v)."""
    _, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    repeated = counts >= 2
    if not repeated.any():
        raise ValueError("no image has two or more trials; the noise ceiling needs repeats")
    # trial -> repeated-image indicator; sums per image with one sparse product
    rows = np.flatnonzero(repeated[inverse])
    cols = np.cumsum(repeated)[inverse[rows]] - 1
    n_rep = int(repeated.sum())
    from scipy import sparse  # here, not at the top: the package imports this module for the command line

    member = sparse.csr_matrix((np.ones(rows.size), (cols, rows)), shape=(n_rep, y.shape[0]))
    k = counts[repeated].astype(np.float64)[:, None]
    return k, member @ y, member @ (y * y)


def _checked(responses, image_ids) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(responses, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise ValueError(f"responses must have shape (n_trials, n_voxels), got {y.shape}")
    ids = np.asarray(image_ids)
    if ids.ndim != 1 or ids.shape[0] != y.shape[0]:
        raise ValueError(f"image_ids must have shape ({y.shape[0]},), got {ids.shape}")
    if not np.isfinite(y).all():
        raise ValueError("responses contain NaN or inf")
    return y, ids


def noise_ceiling(
    responses: ArrayLike,
    image_ids: ArrayLike,
    n_average: ArrayLike = 1,
    *,
    sessions: ArrayLike | None = None,
    zscore: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Noise-ceiling SNR and noise ceiling per voxel.

    Parameters
    ----------
    responses : array of shape (n_trials, n_voxels)
        One response per trial (e.g. TR-averaged BOLD or GLMsingle betas).
        Must not contain NaN.
    image_ids : array of shape (n_trials,)
        Image identity of each trial (any hashable, sortable dtype); images
        with at least two trials estimate the noise.
    n_average : float or array of int
        How many trials are averaged into each response the model is scored
        on. A scalar ``n`` gives ``NC = ncsnr²/(ncsnr² + 1/n)``. An array
        holds the trial count of each scored (test) image and replaces ``1/n``
        by the mean of ``1/n_i`` over those images, NSD's formula for a test
        set mixing images with different numbers of repeats. The paper's
        single-trial / first-presentation scores use ``n_average=1``.
    sessions : array of shape (n_trials,), optional
        Session of each trial: each voxel is z-scored within each session
        (NSD). Without it, over all trials.
    zscore : bool
        z-score first (population SD). The NSD formula assumes unit total
        variance; pass False only for responses already z-scored.

    Returns
    -------
    ncsnr : ndarray of float64, shape (n_voxels,)
        ≥ 0; NaN for voxels that are constant over trials (of a session).
    nc : ndarray of float64, shape (n_voxels,)
        Noise ceiling as a fraction of variance in [0, 1); NaN where ncsnr is.

    Raises
    ------
    ValueError
        Bad shapes, NaN responses, no image shown twice, or bad ``n_average``.
    """
    y, ids = _checked(responses, image_ids)
    inv_n = _mean_inverse_count(n_average)
    y, constant = _standardized(y, sessions, zscore)
    k, s1, s2 = _repeat_sums(y, ids)
    var_per_image = np.maximum(s2 - s1 * s1 / k, 0.0) / (k - 1.0)
    noise_var = var_per_image.mean(0)

    with np.errstate(divide="ignore", invalid="ignore"):
        ncsnr = np.sqrt(np.maximum(0.0, 1.0 - noise_var)) / np.sqrt(noise_var)
        snr2 = ncsnr**2
        nc = snr2 / (snr2 + inv_n)
    # noise_var == 0 (noise-free repeats): infinite SNR, ceiling 1
    nc = np.where(np.isinf(ncsnr), 1.0, nc)
    ncsnr = np.where(constant, np.nan, ncsnr)
    nc = np.where(constant, np.nan, nc)
    return ncsnr, nc


def _mean_inverse_count(n_average) -> float:
    n = np.asarray(n_average, dtype=np.float64)
    if n.size == 0 or not np.isfinite(n).all() or (n < 1).any():
        raise ValueError(f"n_average must be >= 1 (a scalar or one count per test image), got {n_average!r}")
    return float(np.mean(1.0 / n))


def ceiling_pvalue(
    responses: ArrayLike, image_ids: ArrayLike, *, sessions: ArrayLike | None = None, zscore: bool = True
) -> np.ndarray:
    """One-sided p that a voxel's noise ceiling is above 0, per voxel.

    One-way ANOVA over the images shown at least twice (after the same
    z-scoring as :func:`noise_ceiling`): ``F = MS_between / MS_within`` with
    ``(n_rep - 1, N_rep - n_rep)`` degrees of freedom, ``n_rep`` repeated images
    and ``N_rep`` their trials. Its null hypothesis, all images evoke the same
    mean response, is signal variance 0, i.e. ``ncsnr = NC = 0``; a small p says
    the ceiling is reliably positive (equivalently, the F-based lower confidence
    bound of the intraclass correlation is above 0). NaN for constant voxels.

    Raises
    ------
    ValueError
        As :func:`noise_ceiling`, or fewer than 2 repeated images.
    """
    from scipy import stats

    y, ids = _checked(responses, image_ids)
    y, constant = _standardized(y, sessions, zscore)
    k, s1, s2 = _repeat_sums(y, ids)
    n_rep, n_trials = k.shape[0], float(k.sum())
    if n_rep < 2:
        raise ValueError("the noise-ceiling test needs at least 2 images shown twice or more")
    grand = s1.sum(0) / n_trials
    ss_between = (s1 * s1 / k).sum(0) - n_trials * grand**2
    ss_within = np.maximum(s2.sum(0) - (s1 * s1 / k).sum(0), 0.0)
    df1, df2 = n_rep - 1.0, n_trials - n_rep
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (np.maximum(ss_between, 0.0) / df1) / (ss_within / df2)
    p = stats.f.sf(f, df1, df2)
    p = np.where(ss_within == 0, np.where(ss_between > 0, 0.0, 1.0), p)  # noise-free repeats
    return np.where(constant, np.nan, p)


def noise_normalized_score(r: ArrayLike, nc: ArrayLike, reliable: ArrayLike) -> np.ndarray:
    """Squared test correlation as a fraction of the noise ceiling: ``max(r, 0)² / NC``.

    Algonauts 2023's noise-normalised encoding accuracy (there in percent;
    here a fraction, as the noise-ceiling map). NC is the largest fraction of
    variance, i.e. the largest squared correlation, any model can reach on the
    test data; r² (not the held-out R², unbounded below and lowered by ridge
    shrinkage of the predictions' scale) is what it bounds.

    Parameters
    ----------
    r : array of shape (n_voxels,)
        Test-set Pearson correlation.
    nc : array of shape (n_voxels,)
        Noise ceiling (fraction) for the test data's averaging.
    reliable : array of bool, shape (n_voxels,)
        Voxels whose ceiling is reliably above 0 (e.g. FDR on
        :func:`ceiling_pvalue`); NaN elsewhere.

    Returns
    -------
    ndarray of float64, shape (n_voxels,)
        ≥ 0, NaN where not reliable (or NC not finite / not > 0). Not
        clipped above: noise can push it above 1; callers flag those.
    """
    r = np.asarray(r, dtype=np.float64)
    nc = np.asarray(nc, dtype=np.float64)
    reliable = np.asarray(reliable, dtype=bool)
    if not r.shape == nc.shape == reliable.shape:
        raise ValueError(f"r, nc and reliable must have one shape, got {r.shape}, {nc.shape}, {reliable.shape}")
    ok = reliable & np.isfinite(nc) & (nc > 0) & np.isfinite(r)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, np.maximum(r, 0.0) ** 2 / np.where(ok, nc, 1.0), np.nan)


def split_half_reliability(responses: ArrayLike, image_ids: ArrayLike, *, seed: int = 0) -> tuple[np.ndarray, int]:
    """Split-half reliability of the responses to repeated images, per voxel.

    The presentations of every image shown at least twice are split at random
    into two halves (sizes ⌊k/2⌋ and ⌈k/2⌉); each half is averaged, and the
    Pearson correlation across images of the two half-averages is the voxel's
    reliability. It is not Spearman–Brown corrected: it is the reliability of
    responses averaged over about half the repeats.

    Parameters
    ----------
    responses : array of shape (n_trials, n_voxels)
        One response per trial; must not contain NaN.
    image_ids : array of shape (n_trials,)
        Image identity of each trial.
    seed : int
        Seed of the random split.

    Returns
    -------
    r : ndarray of float64, shape (n_voxels,)
        NaN for voxels constant over either half.
    n_images : int
        Images that entered (shown at least twice).

    Raises
    ------
    ValueError
        Shapes disagree, or fewer than three images are shown twice.
    """
    y = np.asarray(responses, dtype=np.float64)
    ids = np.asarray(image_ids)
    if y.ndim != 2 or ids.shape != (y.shape[0],):
        raise ValueError(f"responses {y.shape} and image_ids {ids.shape} do not match")
    rng = np.random.default_rng(seed)
    halves: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    for image in np.unique(ids):
        rows = rng.permutation(np.flatnonzero(ids == image))
        if len(rows) < 2:
            continue
        cut = len(rows) // 2
        halves[0].append(y[rows[:cut]].mean(0))
        halves[1].append(y[rows[cut:]].mean(0))
    if len(halves[0]) < 3:
        raise ValueError(f"split-half reliability needs at least 3 images shown twice, got {len(halves[0])}")
    a = np.asarray(halves[0]) - np.mean(halves[0], 0)
    b = np.asarray(halves[1]) - np.mean(halves[1], 0)
    denom = np.sqrt((a * a).sum(0) * (b * b).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(denom > 0, (a * b).sum(0) / denom, np.nan)
    return r, len(halves[0])
