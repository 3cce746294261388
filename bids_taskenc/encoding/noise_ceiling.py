"""Noise ceiling from repeated presentations, as in the Natural Scenes Dataset.

Allen et al. (2022, Nature Neuroscience, Methods "Noise ceiling"): with trial
responses z-scored per voxel (total variance 1 = signal + noise),

* noise variance ``σ²_noise`` = mean over images shown at least twice of the
  (``ddof=1``) variance of that image's responses across its repeats;
* ``ncsnr = sqrt(max(0, 1 - σ²_noise)) / sqrt(σ²_noise)`` (noise-ceiling SNR);
* for responses averaged over ``n`` trials, the largest fraction of variance
  any model can explain is ``NC = ncsnr² / (ncsnr² + 1/n)``.

Here NC is a fraction in [0, 1] (NSD prints it in percent).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse


def noise_ceiling(
    responses, image_ids, n_average=1, *, zscore: bool = True
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
    zscore : bool
        z-score each voxel over all trials first (population SD). The NSD
        formula assumes unit total variance; pass False only for responses
        already z-scored (e.g. within sessions, which already gives unit
        variance overall when every session is z-scored).

    Returns
    -------
    ncsnr : ndarray of float64, shape (n_voxels,)
        ≥ 0; NaN for voxels that are constant over trials.
    nc : ndarray of float64, shape (n_voxels,)
        Noise ceiling as a fraction of variance in [0, 1); NaN where ncsnr is.

    Raises
    ------
    ValueError
        Bad shapes, NaN responses, no image shown twice, or bad ``n_average``.
    """
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
    inv_n = _mean_inverse_count(n_average)

    constant = np.zeros(y.shape[1], dtype=bool)
    if zscore:
        sd = y.std(0)
        constant = sd == 0
        y = (y - y.mean(0)) / np.where(constant, 1.0, sd)

    _, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    repeated = counts >= 2
    if not repeated.any():
        raise ValueError("no image has two or more trials; the noise ceiling needs repeats")
    # trial -> repeated-image indicator; sums per image with one sparse product
    rows = np.flatnonzero(repeated[inverse])
    cols = np.cumsum(repeated)[inverse[rows]] - 1
    n_rep = int(repeated.sum())
    member = sparse.csr_matrix((np.ones(rows.size), (cols, rows)), shape=(n_rep, y.shape[0]))
    k = counts[repeated].astype(np.float64)[:, None]
    s1 = member @ y
    s2 = member @ (y * y)
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


def noise_normalized_r2(r2, nc, min_nc: float = 1e-3) -> np.ndarray:
    """R² as a fraction of the explainable variance, ``R² / NC``.

    Parameters
    ----------
    r2 : array of shape (n_voxels,)
        Held-out coefficient of determination (fraction, not percent).
    nc : array of shape (n_voxels,)
        Noise ceiling (fraction) for the same averaging as ``r2``'s test data.
    min_nc : float
        NaN where ``nc < min_nc`` (or NaN): a ceiling near zero makes the ratio
        meaningless.

    Returns
    -------
    ndarray of float64, shape (n_voxels,)
        Not clipped: noise can push it above 1 or below 0.
    """
    r2 = np.asarray(r2, dtype=np.float64)
    nc = np.asarray(nc, dtype=np.float64)
    if r2.shape != nc.shape:
        raise ValueError(f"r2 and nc must have the same shape, got {r2.shape} and {nc.shape}")
    ok = np.isfinite(nc) & (nc >= min_nc)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, r2 / np.where(ok, nc, 1.0), np.nan)


def split_half_reliability(responses, image_ids, *, seed: int = 0) -> tuple[np.ndarray, int]:
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
    halves = ([], [])
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
