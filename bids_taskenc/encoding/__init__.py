"""Voxelwise ridge encoding models: arrays in, arrays out.

A pure engine (no BIDS, no paths): features ``(n_stimuli, n_features)`` and
responses ``(n_stimuli, n_voxels)`` in, per-voxel held-out scores out. Ridge
penalties are chosen per voxel by cross-validation on the training set; scores,
p-values and FDR q-values come from a held-out test set. Computation runs on
torch (CPU or CUDA); see :func:`fit_encoding_model`.

Modules
-------
fit            :func:`fit_encoding_model`, the entry point
banded         banded ridge (one penalty per feature set) and variance partitioning
ridge          eigendecompositions, CV scores of all alphas, refit
cv             train/test split (by sample or by group), k-fold and leave-one-group-out folds
stats          Pearson r, R², analytic and permutation p, BH FDR
noise_ceiling  NSD noise ceiling from repeated images
result         :class:`EncodingResult`
device         device, precision modes and memory budget
"""

from .banded import BandedRidgeResult, PartitionResult, band_weight_grid, fit_banded_ridge, variance_partitioning
from .cv import grouped_train_test_split_indices, kfold_indices, train_test_split_indices
from .fit import DEFAULT_ALPHAS, fit_encoding_model
from .noise_ceiling import ceiling_pvalue, noise_ceiling, noise_normalized_score
from .result import EncodingResult
from .stats import analytic_p, fdr_bh, pearson_r, r2_score

__all__ = [
    "DEFAULT_ALPHAS",
    "BandedRidgeResult",
    "EncodingResult",
    "PartitionResult",
    "analytic_p",
    "band_weight_grid",
    "ceiling_pvalue",
    "fdr_bh",
    "fit_banded_ridge",
    "fit_encoding_model",
    "grouped_train_test_split_indices",
    "kfold_indices",
    "noise_ceiling",
    "noise_normalized_score",
    "pearson_r",
    "r2_score",
    "train_test_split_indices",
    "variance_partitioning",
]
