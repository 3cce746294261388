"""What one encoding fit returns: per-voxel maps, the settings that made them."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

from ..core.fdr import below_fdr_level
from .ridge import CV_SCORE_EFFECTS


@dataclass(kw_only=True)
class VoxelwiseFit(abc.ABC):
    """What every voxelwise fit returns (ridge, :class:`EncodingResult`; banded ridge,
    :class:`~bids_taskenc.encoding.banded.result.BandedRidgeResult`): held-out scores and how they were fit.

    Per-voxel arrays have shape ``(n_voxels,)`` and dtype float32; fields are keyword-only.

    Attributes
    ----------
    r : test-set Pearson correlation of predictions and responses; 0 where either is constant.
    r2 : test-set 1 - SS_res/SS_tot (SS_tot around the test-set mean), a fraction, may be negative.
    p : the p-value of ``r`` (see the subclass for its method).
    alpha : chosen (overall) ridge penalty per voxel.
    cv_score : mean cross-validation score at the chosen penalty (kind ``cv_score_kind``).
    alphas : the alpha grid (ascending), float64.
    n_train, n_test, n_folds : training and test samples, CV folds.
    cv_score_kind, cv_scheme : the CV score (``'r2'``, ``'r'``, ``'negmse'``) and scheme.
    standardize, gram, precision, device, seed : how the fit ran.
    intercept : (n_voxels,) training mean of each voxel.
    predictions : optional, (n_test, n_voxels) test-set predictions in the units of the responses.
    timings : seconds spent per stage.
    """

    r: np.ndarray
    r2: np.ndarray
    p: np.ndarray
    alpha: np.ndarray
    cv_score: np.ndarray
    alphas: np.ndarray
    n_train: int
    n_test: int
    n_folds: int
    cv_score_kind: str
    cv_scheme: str
    standardize: bool
    gram: str
    precision: str
    device: str
    seed: int
    intercept: np.ndarray
    predictions: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @abc.abstractmethod
    def metadata(self) -> dict:
        """JSON-able settings of the fit, for BIDS sidecars (CamelCase keys)."""


@dataclass(kw_only=True)
class EncodingResult(VoxelwiseFit):
    """Held-out scores of a voxelwise ridge encoding model, and how it was fit.

    Per-voxel arrays have shape ``(n_voxels,)`` and dtype float32. All test
    statistics are computed on the same held-out test set.

    Attributes
    ----------
    r : Pearson correlation between test predictions and responses; 0 where
        either is constant.
    r2 : 1 - SS_res/SS_tot on the test set (SS_tot around the test-set mean),
        a fraction (not percent), may be negative; 0 where responses are
        constant.
    p : the p-value used for ``q``: ``p_permutation`` when permutations were
        run, else ``p_analytic``. One-sided (H1: r > 0) unless ``p_sides`` is
        ``'two-sided'``; 1 where ``r`` is undefined (constant responses or
        predictions).
    q : Benjamini–Hochberg FDR q-value of ``p`` over all voxels.
    alpha : chosen ridge penalty per voxel (a value of ``alphas``).
    cv_score : mean cross-validation score at the chosen alpha (kind
        ``cv_score_kind``).
    p_analytic : p from ``t = r sqrt(n-2)/sqrt(1-r²)``, ``n_test - 2``
        degrees of freedom (sides ``p_sides``).
    p_permutation : ``(1 + #{r_null >= r}) / (1 + n_permutations)`` (``|r_null| >= |r|``
        two-sided), or None.
    p_sides : ``'one-sided'`` (H1: r > 0) or ``'two-sided'`` (H1: r != 0).
    validation_fraction : the fraction of the training set held out once to
        choose alpha (``cv_scheme`` ``'holdout'``), or None (folds).
    p_method : ``'analytic'`` or ``'permutation'``.
    alphas : the alpha grid (ascending), float64.
    cv_scores_per_alpha : mean CV score of every alpha, shape (n_alphas, n_voxels).
    weights : optional, (n_features, n_voxels) float32 weights on standardised
        features, ``(X - feature_mean) / feature_scale``; with ``intercept`` they
        reproduce the predictions (:meth:`predict`).
    feature_mean, feature_scale : (n_features,) float64 training statistics
        (scale is 1 for constant features, and everywhere when the fit did
        not standardise).
    intercept : (n_voxels,) float32 training mean of each voxel.
    predictions : optional, (n_test, n_voxels) float32 test-set predictions in
        the units of the responses.
    timings : seconds spent per stage.
    """

    q: np.ndarray
    p_analytic: np.ndarray
    p_permutation: np.ndarray | None
    p_method: str
    cv_scores_per_alpha: np.ndarray
    n_features: int
    n_voxels: int
    n_permutations: int
    fdr_alpha: float
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    weights: np.ndarray | None = None
    permutation_scheme: str = "free"  #: or "circular shifts within test groups" (runs or sessions held out)
    p_sides: str = "one-sided"
    validation_fraction: float | None = None

    @property
    def significant(self) -> np.ndarray:
        """Boolean mask of voxels with ``q < fdr_alpha`` and ``r > 0`` (shape (n_voxels,)).

        Strict, like every count, table and thresholded map the app writes. With one-sided p-values a q below
        the level implies r > 0; with ``p_sides='two-sided'`` a voxel the model anti-predicts (r < 0) can reach
        it too, and such a voxel is not predicted: it stays in the p and q maps but is not counted here.
        """
        return below_fdr_level(self.q, self.fdr_alpha) & (np.nan_to_num(self.r) > 0)

    def predict(self, X) -> np.ndarray:
        """Predict responses for new stimuli from the stored weights.

        Parameters
        ----------
        X : array of shape (n_samples, n_features), raw (unstandardised) features

        Returns
        -------
        ndarray of float32, shape (n_samples, n_voxels)
        """
        if self.weights is None:
            raise ValueError("this result holds no weights; fit with return_weights=True")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X must have shape (n_samples, {self.n_features}), got {X.shape}")
        xs = ((X - self.feature_mean) / self.feature_scale).astype(np.float32)
        return xs @ self.weights + self.intercept

    def metadata(self) -> dict:
        """JSON-able settings of the fit, for BIDS sidecars (CamelCase keys)."""
        return {
            "Estimator": "ridge regression, one alpha per voxel by cross-validation",
            "AlphaGrid": [float(a) for a in self.alphas],
            "CVFolds": int(self.n_folds),
            "CVScheme": self.cv_scheme,
            **({} if self.validation_fraction is None else {"ValidationFraction": self.validation_fraction}),
            "CVScore": {"r": "pearson", "r2": "r2", "negmse": "negative mean squared error"}.get(
                self.cv_score_kind, self.cv_score_kind
            ),
            "CVScoreEffect": CV_SCORE_EFFECTS.get(self.cv_score_kind),
            "Standardize": bool(self.standardize),
            "Gram": self.gram,
            "Precision": self.precision,
            "Device": self.device,
            "NTrain": int(self.n_train),
            "NTest": int(self.n_test),
            "NFeatures": int(self.n_features),
            "NVoxels": int(self.n_voxels),
            "PValueMethod": self.p_method,
            "PValueSides": "one-sided (r > 0)" if self.p_sides == "one-sided" else "two-sided (r != 0)",
            "NPermutations": int(self.n_permutations),
            **({"PermutationScheme": self.permutation_scheme} if self.n_permutations else {}),
            "FDRMethod": "Benjamini-Hochberg",
            "FDRLevel": float(self.fdr_alpha),
            "Seed": int(self.seed),
        }
