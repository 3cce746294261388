"""Summaries of per-voxel scores within regions of interest."""

from __future__ import annotations

import numpy as np


def roi_summary(r: np.ndarray, r2: np.ndarray, q: np.ndarray, rois: dict[str, np.ndarray],
                fdr_alpha: float = 0.05) -> list[dict]:
    """Mean scores per ROI.

    Parameters
    ----------
    r, r2, q : ndarray, shape (n_voxels,)
        Test-set Pearson r, R² and FDR q of one feature space.
    rois : dict of str -> bool ndarray, shape (n_voxels,)
        Voxels of each ROI.
    fdr_alpha : float
        Level for the fraction of significant voxels.

    Returns
    -------
    list of dict
        One per ROI: ``roi, n_voxels, mean_r, mean_rsquared, fraction_significant``
        (NaN means for an empty ROI).
    """
    rows = []
    for name, inside in rois.items():
        n = int(inside.sum())
        with np.errstate(invalid="ignore"):
            rows.append({
                "roi": name, "n_voxels": n,
                "mean_r": float(np.nanmean(r[inside])) if n else np.nan,
                "mean_rsquared": float(np.nanmean(r2[inside])) if n else np.nan,
                "fraction_significant": float(np.mean(q[inside] < fdr_alpha)) if n else np.nan,
            })
    return rows
