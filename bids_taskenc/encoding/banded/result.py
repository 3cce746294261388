"""What a banded ridge fit returns (:class:`BandedRidgeResult`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import ridge as _ridge
from ..result import VoxelwiseFit


@dataclass(kw_only=True)
class BandedRidgeResult(VoxelwiseFit):
    """Held-out scores of a banded ridge model, and how it was fit.

    Per-voxel arrays are float32 of shape ``(n_voxels,)`` unless said. The fields every fit has (``r``, ``r2``,
    ``p``, ``alpha``, ``cv_score``, ``alphas``, ``intercept``, ``predictions``, the settings) are
    :class:`~bids_taskenc.encoding.result.VoxelwiseFit`'s; fields are keyword-only.

    Attributes
    ----------
    r, r2, p : test-set Pearson r, R² (SS_tot around the test mean) and
        one-sided analytic p of r, as :class:`~bids_taskenc.encoding.EncodingResult`.
    alpha : chosen overall penalty ``α`` per voxel.
    band_weights : (n_voxels, n_sets) chosen ``γ`` per voxel (a row of ``grid``).
    grid_index : (n_voxels,) int64, the row of ``grid`` chosen.
    band_penalties : (n_voxels, n_sets) ``α / γ_b`` (inf where ``γ_b = 0``).
    cv_score : mean CV score at the chosen ``(γ, α)``.
    cv_scores_per_weight : (n_grid, n_voxels) mean CV score of each ``γ`` at its
        best alpha (himalaya's ``cv_scores_``).
    split_r2 : (n_sets, n_voxels) product-measure split of the joint R² by set
        (:func:`r2_split` of the test-centred responses and per-set predictions).
    grid : (n_grid, n_sets) float64 band weights searched; alphas : float64 grid.
    set_sizes : columns per set.
    intercept : (n_voxels,) training mean per voxel.
    predictions : optional (n_test, n_voxels) test predictions in response units.
    """

    band_weights: np.ndarray
    grid_index: np.ndarray
    cv_scores_per_weight: np.ndarray
    split_r2: np.ndarray
    grid: np.ndarray
    set_sizes: tuple[int, ...]
    cv_solver: str = "per-fold"

    @property
    def band_penalties(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return (self.alpha[:, None].astype(np.float64) / self.band_weights).astype(np.float32)

    @property
    def deltas(self) -> np.ndarray:
        """himalaya's log kernel weights ``log(γ_b / α)``, shape (n_sets, n_voxels)."""
        with np.errstate(divide="ignore"):
            return np.log(self.band_weights.T.astype(np.float64) / self.alpha.astype(np.float64))

    def metadata(self) -> dict:
        """JSON-able settings of the fit, for BIDS sidecars (CamelCase keys)."""
        return {
            "Model": "banded ridge (one penalty per set, alpha / gamma_set)",
            "SetSizes": list(self.set_sizes),
            "BandWeightGrid": self.grid.tolist(),
            "AlphaGrid": self.alphas.tolist(),
            "NTrain": self.n_train,
            "NTest": self.n_test,
            "CVFolds": self.n_folds,
            "CVScheme": self.cv_scheme,
            "CVScore": self.cv_score_kind,
            "CVScoreEffect": _ridge.CV_SCORE_EFFECTS.get(self.cv_score_kind),
            "Standardize": self.standardize,
            "Gram": self.gram,
            "CVSolver": self.cv_solver,
            "Precision": self.precision,
            "Seed": self.seed,
        }
