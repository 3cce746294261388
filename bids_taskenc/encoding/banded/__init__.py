"""Banded ridge and variance partitioning between sets of features, on torch.

A *set* (a band) is a block of feature columns, e.g. one feature space or the
spaces of a whole group joined side by side. Banded ridge gives each set its
own penalty::

    min_w  ||Y - Σ_b X_b w_b||² + Σ_b λ_b ||w_b||²,   λ_b = α / γ_b,

with band weights ``γ`` on the simplex (``Σ_b γ_b = 1``) and one overall
penalty ``α``. Scaling band ``b``'s standardised columns by ``sqrt(γ_b)`` turns
it into plain ridge with penalty ``α``, so for every ``γ`` of a grid the
single-space machinery of :mod:`~bids_taskenc.encoding.ridge` applies: per CV
fold one eigendecomposition, one projection of the targets, every alpha for
every voxel of a batch at once. Each voxel takes the ``(γ, α)`` with the best
mean validation score over the same folds as the single-space fit
(:func:`~bids_taskenc.encoding.cv.kfold_indices`, same seed), and is refit on
the whole training set with it.

Which Gram matrix: when the joint model has more columns than a fold has
training samples (two Taskonomy spaces: 4,096 columns; a whole group of eight:
16,384), each set's samples-side kernel ``K_b = X_b X_bᵀ`` (n_t × n_t) is
computed once per fold and ``K_γ = Σ_b γ_b K_b`` diagonalised per ``γ``, so the
cost of a ``γ`` does not grow with the number of columns. Otherwise the
features-side Gram ``XᵀX`` of the fold is weighted by ``sqrt(γ) sqrt(γ)ᵀ``.

One decomposition per ``γ`` instead of one per ``γ`` and fold
(``cv_solver='hold-out'``): with
``standardize=False`` (features centred, not scaled, on each fold's training
part, himalaya's model) a fold's model is the whole training set's with the
fold's rows held out, its centring an unpenalised intercept, so the whole
training set's decomposition of ``K_γ`` gives every fold's validation
predictions through one (n_val × n_val) Cholesky per fold and alpha
(:mod:`~.holdout`) and, for the voxels that choose this ``γ``, the
test predictions: ``n_grid`` eigendecompositions in all instead of
``n_grid × (n_folds + 1)``. That decomposition, and those small systems, are
float64 in every precision (the systems' smallest eigenvalues are about
``α/λ_max``); the products with the targets are in the compute dtype. With
per-fold standardisation (``standardize=True``, the single-space engine's
rule) a fold's features are scaled by that fold's own SDs, which no
held-out sub-problem of one decomposition reproduces, so each fold is
diagonalised on its own. The hold-out solver does about 1.2-2 times the
products with the targets of the per-fold one (each fold's validation rows
against all n training rows, and the n_val × n_val systems), so it is opt-in:
on a 2-core CPU it was slower at 2,040 training samples and 1.2 times faster
at W1's 4,179 (``benchmarks/banded.py``; docs/benchmarks.md).

No decomposition at all (``cv_solver='cholesky'``, also ``standardize=False``):
the same hold-out identities from one Cholesky factor of ``K_γ + αI`` per
``(γ, α)`` (:mod:`~.cholesky`), float64 throughout; its cost is
``n_grid × n_alphas`` factorisations and ``n × n × v`` products, which a GPU
does faster than the eigendecompositions.

The CV solvers are plug-ins: :data:`~.registry.REGISTRY` names each one's module
(``solve(problem: BandedProblem) -> BandedSolution``, :mod:`~.problem`), and
every list of the choices reads it.

The default grid (:func:`band_weight_grid`) spaces the penalty ratios
``λ_a/λ_b`` evenly in log10 from 1/100 to 100: half a decade apart for two sets
(9 points), a decade apart for three or more (19 points for three), the equal
weights first.

Variance partitioning (:func:`variance_partitioning`) fits the joint model and,
for each set, the model without it, the same way (same split, folds, alpha
grid, band-ratio steps). On the test images:

* ``unique_b = R²_joint - R²_without_b``;
* ``shared = R²_joint - Σ_b unique_b`` (for two sets ``R²_A + R²_B - R²_AB``);
* the product-measure split of the joint R² by set (himalaya's
  ``r2_score_split``), :func:`r2_split`;
* a one-sided p-value for ``unique_b > 0`` (:func:`unique_variance_test`), BH
  FDR over voxels.
"""

from __future__ import annotations

from ...core.lazy import lazy_exports

# Public name -> the module that defines it, imported on first use: the registry of CV solvers and the grid are
# torch-free, so that listing the choices does not wait for torch.
_PUBLIC = {
    "REGISTRY": "registry",
    "CVSolver": "registry",
    "DEFAULT_CV_SOLVER": "registry",
    "DEFAULT_RATIO_SPAN": "grid",
    "default_ratio_step": "grid",
    "band_weight_grid": "grid",
    "check_band_weights": "grid",
    "BandedRidgeResult": "result",
    "fit_banded_ridge": "fit_banded",
    "BandedProblem": "problem",
    "BandedSolution": "problem",
    "r2_split": "split",
    "unique_variance_test": "split",
    "PartitionResult": "partition",
    "variance_partitioning": "partition",
}
__all__ = sorted(_PUBLIC)

__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
