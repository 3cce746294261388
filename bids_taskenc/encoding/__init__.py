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
options        the choices and default alpha grid (no torch: the command line's help reads them)
"""

from ..core.lazy import lazy_exports

# A function named like its module: imported now, or the first ``import .noise_ceiling`` anywhere would make
# ``bids_taskenc.encoding.noise_ceiling`` the module (numpy only: no torch, no scipy at import).
from .noise_ceiling import noise_ceiling as noise_ceiling

#: Public name -> the module that defines it, imported on first use: the command line reads the torch-free
#: :mod:`.options` for its help, and ``bids_taskenc --help`` must not wait for torch.
_PUBLIC = {
    "BandedRidgeResult": "banded",
    "PartitionResult": "banded",
    "band_weight_grid": "banded",
    "fit_banded_ridge": "banded",
    "variance_partitioning": "banded",
    "kfold_indices": "cv",
    "grouped_train_test_split_indices": "cv",
    "train_test_split_indices": "cv",
    "DEFAULT_ALPHAS": "options",
    "fit_encoding_model": "fit",
    "ceiling_pvalue": "noise_ceiling",
    "noise_normalized_score": "noise_ceiling",
    "EncodingResult": "result",
    "analytic_p": "stats",
    "fdr_bh": "stats",
    "pearson_r": "stats",
    "r2_score": "stats",
}
__all__ = sorted([*_PUBLIC, "noise_ceiling"])

__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
