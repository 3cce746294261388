"""Summaries of per-voxel scores within regions of interest."""

from __future__ import annotations

import numpy as np

from ..core.fdr import DEFAULT_FDR_LEVEL, below_fdr_level


def roi_summary(
    r: np.ndarray, r2: np.ndarray, q: np.ndarray, rois: dict[str, np.ndarray], fdr_alpha: float = DEFAULT_FDR_LEVEL
) -> list[dict]:
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
            rows.append(
                {
                    "roi": name,
                    "n_voxels": n,
                    "mean_r": float(np.nanmean(r[inside])) if n else np.nan,
                    "mean_rsquared": float(np.nanmean(r2[inside])) if n else np.nan,
                    "fraction_significant": float(np.mean(below_fdr_level(q[inside], fdr_alpha))) if n else np.nan,
                }
            )
    return rows


def roi_permutation_p(
    y_test: np.ndarray, predictions: np.ndarray, rois: dict[str, np.ndarray], permutations: np.ndarray
) -> dict[str, float]:
    """Permutation p of each ROI's mean test r.

    The null pairs the measured test responses with the predictions in a
    permuted image order, the same permutation for every voxel of the ROI (so
    the dependence between voxels is kept), and averages r over the ROI.

    Parameters
    ----------
    y_test, predictions : ndarray, shape (n_test, n_voxels)
        Measured responses and test-set predictions of one feature space.
    rois : dict of str -> bool ndarray, shape (n_voxels,)
    permutations : int ndarray, shape (n_permutations, n_test)
        Image orders (e.g. :func:`~bids_taskenc.encoding.stats.make_permutations`).

    Returns
    -------
    dict of ROI name -> ``(1 + #{null mean r >= observed}) / (1 + n_permutations)``
    (NaN for an empty ROI).
    """

    def unit(a):
        a = a - a.mean(0)
        norm = np.linalg.norm(a, axis=0)
        return np.divide(a, norm, out=np.zeros_like(a), where=norm > 0)

    out = {}
    n_perm = len(permutations)
    for name, inside in rois.items():
        if not inside.any():
            out[name] = float("nan")
            continue
        y = unit(np.asarray(y_test[:, inside], dtype=np.float64))
        pred = unit(np.asarray(predictions[:, inside], dtype=np.float64))
        observed = float(np.mean(np.sum(y * pred, 0)))
        # null mean r for each permutation: mean over voxels of sum_i y[i] * pred[perm[i]]
        chunk = max(1, int(5e7 // pred.size))
        null = (
            np.concatenate(
                [np.einsum("kiv,iv->k", pred[permutations[i : i + chunk]], y) for i in range(0, n_perm, chunk)]
            )
            / y.shape[1]
        )
        out[name] = float((1 + np.sum(null >= observed - 1e-12)) / (1 + n_perm))
    return out
