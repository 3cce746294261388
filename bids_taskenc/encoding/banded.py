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
(:func:`_holdout_fold_scores`) and, for the voxels that choose this ``γ``, the
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
at W1's 4,179 (``benchmarks/banded.py``; README, variance partitioning).

No decomposition at all (``cv_solver='cholesky'``, also ``standardize=False``):
the same hold-out identities from one Cholesky factor of ``K_γ + αI`` per
``(γ, α)`` (:func:`_cholesky_cv_refit`), float64 throughout; its cost is
``n_grid × n_alphas`` factorisations and ``n × n × v`` products, which a GPU
does faster than the eigendecompositions.

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

import functools
import itertools
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core.fdr import DEFAULT_FDR_LEVEL, below_fdr_level
from . import device as _dev
from . import ridge as _ridge
from . import stats as _stats
from .cv import kfold_indices
from .fit import DEFAULT_ALPHAS, _as_2d, _check_alphas, _Clock, _host_float64

#: How the CV folds are solved (see :func:`fit_banded_ridge`).
CV_SOLVERS = ("per-fold", "hold-out", "cholesky")
#: The solvers that score every fold from the whole training set's model (features only centred).
HOLD_OUT_SOLVERS = ("hold-out", "cholesky")

#: Span of the band-penalty ratios in decades each side of 1 (ratios 1/100 … 100).
DEFAULT_RATIO_SPAN = 2.0


def default_ratio_step(n_sets: int) -> float:
    """Decades between neighbouring band-penalty ratios: 0.5 for two sets, 1 for more."""
    return 0.5 if n_sets <= 2 else 1.0


def band_weight_grid(n_sets: int, span: float = DEFAULT_RATIO_SPAN, step: float | None = None) -> np.ndarray:
    """Band weights ``γ`` (rows on the simplex) whose penalty ratios tile a log grid.

    Each band's penalty exponent ``e_b`` (``λ_b ∝ 10^e_b``) takes the values
    ``0, step, …, span``; combinations are kept when ``min_b e_b = 0`` (a
    common shift of every exponent is absorbed by ``α``), and
    ``γ_b ∝ 10^-e_b``. For two sets that is ``2·span/step + 1`` ratios
    ``λ_1/λ_2`` from ``10^-span`` to ``10^span``; for three sets with a decade
    step, 19 points. The equal weights come first (himalaya's random search
    starts there too), then the order of the exponent tuples.

    Parameters
    ----------
    n_sets : int >= 1
    span : float > 0, decades
    step : float > 0, decades; default :func:`default_ratio_step`

    Returns
    -------
    gammas : ndarray (n_grid, n_sets), float64, rows summing to 1
    """
    if isinstance(n_sets, bool) or int(n_sets) != n_sets or n_sets < 1:
        raise ValueError(f"n_sets must be a positive integer, got {n_sets!r}")
    n_sets = int(n_sets)
    if n_sets == 1:
        return np.ones((1, 1))
    step = default_ratio_step(n_sets) if step is None else float(step)
    if not (span > 0 and step > 0):
        raise ValueError(f"span and step must be positive, got {span!r} and {step!r}")
    n_steps = int(round(span / step))
    if n_steps < 1 or abs(n_steps * step - span) > 1e-9 * span:
        raise ValueError(f"span ({span}) must be a whole number of steps ({step})")
    levels = np.arange(n_steps + 1) * step
    rows = [e for e in itertools.product(levels, repeat=n_sets) if min(e) == 0.0]
    rows.sort(key=lambda e: (max(e) > 0, e))
    gammas = 10.0 ** -np.asarray(rows)
    return gammas / gammas.sum(1, keepdims=True)


def check_band_weights(band_weights, n_sets: int) -> np.ndarray:
    """Validate a (n_grid, n_sets) array of band weights; rows are rescaled to sum to 1."""
    g = np.asarray(band_weights, dtype=np.float64)
    if g.ndim == 1 and n_sets == 1:
        g = g[:, None]
    if g.ndim != 2 or g.shape[1] != n_sets or g.shape[0] < 1:
        raise ValueError(f"band_weights must have shape (n_grid, {n_sets}), got {g.shape}")
    if not np.isfinite(g).all() or (g < 0).any() or (g.sum(1) <= 0).any():
        raise ValueError("band weights must be finite, non-negative, and not all 0 in a row")
    return g / g.sum(1, keepdims=True)


# --------------------------------------------------------------------------- results


@dataclass
class BandedRidgeResult:
    """Held-out scores of a banded ridge model, and how it was fit.

    Per-voxel arrays are float32 of shape ``(n_voxels,)`` unless said.

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

    r: np.ndarray
    r2: np.ndarray
    p: np.ndarray
    alpha: np.ndarray
    band_weights: np.ndarray
    grid_index: np.ndarray
    cv_score: np.ndarray
    cv_scores_per_weight: np.ndarray
    split_r2: np.ndarray
    grid: np.ndarray
    alphas: np.ndarray
    set_sizes: tuple[int, ...]
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
    timings: dict = field(default_factory=dict)
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
            "Standardize": self.standardize,
            "Gram": self.gram,
            "CVSolver": self.cv_solver,
            "Precision": self.precision,
            "Seed": self.seed,
        }


# --------------------------------------------------------------------------- decompositions


def _fold_kernels(xs, bands, train_idx, val_idx, standardize, chunk=2048):
    """Per set: the fold's training kernel (n_t, n_t) and validation kernel (n_val, n_t), float64.

    Features standardised on the fold's training part, as in
    :func:`~bids_taskenc.encoding.ridge.decompose_fold`; columns are taken
    ``chunk`` at a time so a wide set never needs a standardised copy.
    """
    out = []
    for band in bands:
        kt = kv = None
        for start in range(band.start, band.stop, chunk):
            cols = slice(start, min(start + chunk, band.stop))
            xt = xs[train_idx, cols]
            xv = xs[val_idx, cols]
            mean, scale = _ridge.feature_statistics(xt, standardize)
            xt = (xt - mean) / scale
            xv = (xv - mean) / scale
            kt = xt @ xt.T if kt is None else kt.addmm_(xt, xt.T)
            kv = xv @ xt.T if kv is None else kv.addmm_(xv, xt.T)
        out.append((kt, kv))
    return out


def _full_kernels(xs, xs_test, bands):
    return [(xs[:, b] @ xs[:, b].T, xs_test[:, b] @ xs[:, b].T) for b in bands]


def _kernel_basis(kernels, gamma, dtype, train_idx=None, val_idx=None, band_u=False, eigh_dtype=torch.float64):
    """Samples-side :class:`~bids_taskenc.encoding.ridge.EigenBasis` of ``K_γ = Σ γ_b K_b``.

    With ``band_u``, also each set's share of ``u`` (``γ_b K_eval,b Q``), whose
    sum is ``u``; without it (the CV folds) the evaluation kernels are summed
    first, one (n_val × n_t) @ (n_t × n_t) product instead of one per set.
    """
    kt = sum(float(g) * k for g, (k, _) in zip(gamma, kernels) if g > 0)
    lam, q = _ridge._eigh(kt, eigh_dtype)
    if not band_u:
        kv = sum(float(g) * kv for g, (_, kv) in zip(gamma, kernels) if g > 0)
        return _ridge.EigenBasis(
            kind="samples",
            eigvals=lam,
            u=(kv @ q).to(dtype),
            n_train=int(kt.shape[0]),
            train_idx=train_idx,
            val_idx=val_idx,
            q=q.to(dtype),
        )
    us = [float(g) * (kv @ q) for g, (_, kv) in zip(gamma, kernels)]
    basis = _ridge.EigenBasis(
        kind="samples",
        eigvals=lam,
        u=sum(us).to(dtype),
        n_train=int(kt.shape[0]),
        train_idx=train_idx,
        val_idx=val_idx,
        q=q.to(dtype),
    )
    return (basis, [u.to(dtype) for u in us]) if band_u else basis


def _column_weights(gamma, bands, p, device):
    w = torch.empty(p, dtype=torch.float64, device=device)
    for g, band in zip(gamma, bands):
        w[band] = float(np.sqrt(g))
    return w


def _features_full_basis(xs, gram_xs, xs_test, gamma, bands, dtype, eigh_dtype=torch.float64):
    w = _column_weights(gamma, bands, xs.shape[1], xs.device)
    basis = _ridge.decompose_full(
        xs, gram_xs, xs_test, kind="features", dtype=dtype, want_weights=False, col_weight=w, eigh_dtype=eigh_dtype
    )
    # proj = (w ∘ V)ᵀ, so each set's share of u = xs_test_w V is xs_test[:, b] @ proj[:, b]ᵀ
    xt = xs_test.to(dtype)
    return basis, [xt[:, b] @ basis.proj[:, b].T for b in bands]


# --------------------------------------------------------------------------- fit


def _band_slices(sizes):
    edges = np.concatenate([[0], np.cumsum(sizes)])
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def _stack_sets(name, sets):
    if isinstance(sets, np.ndarray | torch.Tensor):
        sets = [sets]
    sets = [_host_float64(f"{name}[{i}]", _as_2d(f"{name}[{i}]", x, allow_1d=False)) for i, x in enumerate(sets)]
    if not sets:
        raise ValueError(f"{name} must hold at least one feature set")
    n = {x.shape[0] for x in sets}
    if len(n) != 1:
        raise ValueError(f"{name}: every set needs the same number of samples, got {sorted(n)}")
    return sets


def fit_banded_ridge(
    X_train: Sequence,
    Y_train,
    X_test: Sequence,
    Y_test,
    *,
    band_weights=None,
    ratio_step: float | None = None,
    ratio_span: float = DEFAULT_RATIO_SPAN,
    alphas: Sequence[float] | np.ndarray = DEFAULT_ALPHAS,
    n_folds: int = 7,
    groups=None,
    cv_score: str = "r",
    standardize: bool = True,
    gram: str = "auto",
    precision: str = "exact",
    device: str | torch.device = "cpu",
    mem_gb: float | None = None,
    seed: int = 0,
    return_predictions: bool = False,
    progress: bool = False,
    cv_solver: str = "per-fold",
) -> BandedRidgeResult:
    """Banded ridge: one penalty per feature set and voxel, chosen by k-fold CV.

    Parameters
    ----------
    X_train, X_test : sequence of arrays (n_train, p_b) / (n_test, p_b)
        One array per set, in the same order.
    Y_train, Y_test : arrays (n_train, v) / (n_test, v)
    band_weights : array (n_grid, n_sets), optional
        Band weights ``γ`` to search (rows rescaled to sum to 1); default
        :func:`band_weight_grid` with ``ratio_span`` and ``ratio_step``.
    alphas, n_folds, groups, cv_score, standardize, gram, precision, device,
        mem_gb, seed, progress
        As :func:`~bids_taskenc.encoding.fit_encoding_model`; ``gram='auto'``
        takes the samples-side kernels when the sets have more columns in
        total than a fold has training samples.
    return_predictions : bool
        Keep the (n_test, v) test predictions.
    cv_solver : {'per-fold', 'hold-out', 'cholesky'}
        ``'per-fold'`` (default) decomposes every fold and ratio on its own;
        ``'hold-out'`` (only with ``standardize=False``) scores every fold from
        one decomposition of the whole training set per ratio (see the module
        docstring): the same model and choices, 9 eigendecompositions instead
        of 72 for two sets, but about twice the products with the targets, so
        it pays where decompositions dominate (few voxels; slow ``eigh``); in
        ``'fast'`` its float32 products move CV scores by up to ~1e-4.
        ``'cholesky'`` (only with ``standardize=False``) scores the same
        hold-out identities from one float64 Cholesky factor of the whole
        training set per (ratio, alpha), with no eigendecomposition, in float64
        whatever the precision: on a CPU about twice the per-fold time, meant
        for GPUs, where float64 products are fast and ``eigh`` is not.

    Returns
    -------
    BandedRidgeResult

    Notes
    -----
    Selection: for each ``γ`` the best alpha (exact ties to the larger
    alpha), then the best ``γ`` (exact ties to the earlier row), the same
    order as himalaya's random search over a given list of kernel weights.
    A single set with ``band_weights=[[1]]`` is plain ridge and equals
    :func:`~bids_taskenc.encoding.fit_encoding_model`.
    """
    t_start = time.perf_counter()
    xtr_sets = _stack_sets("X_train", X_train)
    xte_sets = _stack_sets("X_test", X_test)
    if len(xtr_sets) != len(xte_sets):
        raise ValueError(f"X_train has {len(xtr_sets)} sets but X_test has {len(xte_sets)}")
    sizes = tuple(x.shape[1] for x in xtr_sets)
    if tuple(x.shape[1] for x in xte_sets) != sizes:
        raise ValueError("X_train and X_test sets must have the same numbers of columns")
    n_sets = len(sizes)
    Y_train = _as_2d("Y_train", Y_train, allow_1d=True)
    Y_test = _as_2d("Y_test", Y_test, allow_1d=True)
    n_train, n_test = xtr_sets[0].shape[0], xte_sets[0].shape[0]
    n_voxels = Y_train.shape[1]
    if Y_train.shape[0] != n_train or Y_test.shape[0] != n_test:
        raise ValueError("X and Y must have the same number of samples (train and test)")
    if Y_test.shape[1] != n_voxels:
        raise ValueError(f"Y_train has {n_voxels} voxels but Y_test has {Y_test.shape[1]}")
    if n_test < 3:
        raise ValueError(f"need at least 3 test samples, got {n_test}")
    if cv_score not in _ridge.CV_SCORES:
        raise ValueError(f"cv_score must be one of {_ridge.CV_SCORES}, got {cv_score!r}")
    if gram not in _ridge.GRAMS:
        raise ValueError(f"gram must be one of {_ridge.GRAMS}, got {gram!r}")
    _dev.check_precision(precision)
    if cv_solver not in CV_SOLVERS:
        raise ValueError(f"cv_solver must be one of {CV_SOLVERS}, got {cv_solver!r}")
    if cv_solver in HOLD_OUT_SOLVERS and standardize:
        raise ValueError(f"cv_solver={cv_solver!r} needs standardize=False: per-fold scaling has no hold-out shortcut")
    alpha_grid = _check_alphas(alphas)
    if band_weights is None:
        grid = band_weight_grid(n_sets, ratio_span, ratio_step)
    else:
        grid = check_band_weights(band_weights, n_sets)
    folds = kfold_indices(n_train, n_folds, seed=seed, groups=groups)
    cv_scheme = "leave-one-group-out" if groups is not None else "kfold"
    bands = _band_slices(sizes)
    p = int(sum(sizes))

    dev = _dev.resolve_device(device)
    dtype = _dev.compute_dtype(precision)
    itemsize = torch.finfo(dtype).bits // 8
    budget = _dev.memory_budget_bytes(dev, mem_gb)
    clock = _Clock(dev)
    fast = precision == "fast"
    # 'fast': eigendecompositions in float32 (half the time on CPU; λ off by ~1e-7 λ_max)
    eigh_dtype = torch.float32 if fast else torch.float64
    n_grid, n_alphas = grid.shape[0], alpha_grid.size

    with _dev.ieee_matmul(dev), torch.no_grad():
        xs = torch.from_numpy(np.concatenate(xtr_sets, 1)).to(dev)
        xs_test = torch.from_numpy(np.concatenate(xte_sets, 1)).to(dev)
        del xtr_sets, xte_sets
        feat_mean, feat_scale = _ridge.feature_statistics(xs, standardize)
        xs = (xs - feat_mean) / feat_scale
        xs_test = (xs_test - feat_mean) / feat_scale
        fold_kind = [_ridge.choose_gram(len(tr), p, gram) for tr, _ in folds]
        full_kind = _ridge.choose_gram(n_train, p, gram)
        # cv_solver='hold-out' (features only centred): each fold's model is the whole training set's with the
        # fold's rows held out (the per-fold centring is an unpenalised intercept), so one decomposition per γ
        # serves every fold and the refit (see _holdout_cv_refit). Per-fold scaling has no such shortcut.
        holdout = cv_solver in HOLD_OUT_SOLVERS
        hold_kind = (
            "samples" if cv_solver == "cholesky" else _ridge.choose_gram(min(len(tr) for tr, _ in folds), p, gram)
        )
        hold_dtype = torch.float32 if fast else torch.float64
        need_b = not holdout and ("features" in fold_kind or full_kind == "features")
        gram_xs = xs.T @ xs if need_b or (holdout and hold_kind == "features") else None
        xs_c = xs.to(dtype) if need_b else None
        alphas_t = torch.from_numpy(alpha_grid).to(dev)
        clock.lap("setup")

        # voxel batches: targets, B = xsᵀ ys, one fold's projections and stacked predictions
        n_val_max = max(len(va) for _, va in folds)
        r_max = min(n_train, p)
        per_voxel = (
            1.25
            * itemsize
            * (
                4 * n_train
                + 8 * n_test
                + (2 * p if need_b else 0)
                + 3 * n_val_max
                + 2 * r_max
                + n_alphas * (n_val_max + 8)
                + 2 * n_grid * n_alphas
                + n_sets * n_test
            )
        ) + (8 * 3 * n_train if cv_solver == "cholesky" else 0)  # its float64 targets, A⁻¹ Y and N Y
        workers = max(1, min(n_grid, torch.get_num_threads())) if dev.type == "cpu" else 1
        basis_bytes = (8 + itemsize) * (r_max * r_max + (n_val_max + n_test * (n_sets + 1)) * r_max)
        kinds = [hold_kind] if holdout else fold_kind + [full_kind]
        kernel_bytes = 8 * n_sets * n_train * (n_train + max(n_val_max, n_test)) if "samples" in kinds else 0
        fixed = (
            workers * basis_bytes
            + kernel_bytes
            + itemsize * n_alphas * n_val_max * r_max
            + (8 * p * p if need_b else 0)
            + 8 * (n_train + n_test) * p
        )
        if cv_solver == "cholesky":  # K_γ, A, its factor, A⁻¹ and the per-set test kernels, float64; no eigh workers
            fixed += 8 * (4 * n_train * n_train + n_sets * n_test * n_train) - workers * basis_bytes
        batch = int(min(n_voxels, max(1, (budget - fixed) // per_voxel)))
        batches = [slice(s, min(s + batch, n_voxels)) for s in range(0, n_voxels, batch)]
        cache: dict = {}

        def centred(cols):
            """Training targets of ``cols`` centred on their mean, their sum, their mean, and B."""
            key = (cols.start, cols.stop) if isinstance(cols, slice) else None
            if key is not None and key in cache:
                return cache[key]
            yb = _columns_any(Y_train, cols, dev, dtype)
            if not bool(torch.isfinite(yb).all()):
                raise ValueError("Y_train contains NaN or inf")
            y_mean = yb.mean(0, dtype=torch.float64).to(dtype)
            ys = torch.where(yb.amax(0) > yb.amin(0), yb - y_mean, torch.zeros_like(yb))
            out = (ys, ys.sum(0), y_mean, xs_c.T @ ys if need_b else None)
            if len(batches) == 1 and key is not None:
                cache[key] = out
            return out

        if holdout:
            solve = (
                _cholesky_cv_refit
                if cv_solver == "cholesky"
                else functools.partial(
                    _holdout_cv_refit, kind=hold_kind, hdtype=hold_dtype, eigh_dtype=torch.float64, workers=workers
                )
            )
            (a_best, g_best, cv_best, per_weight, r, r2, ok, split, intercept, predictions) = solve(
                xs,
                xs_test,
                bands,
                grid,
                alphas_t,
                folds,
                centred,
                batches,
                Y_test,
                n_sets,
                dtype,
                cv_score,
                return_predictions,
                clock,
                progress,
            )
            g_host = g_best.cpu().numpy()
        else:
            # ---------------------------------------------------------------- CV over (γ, α)
            total = torch.zeros((n_grid, n_alphas, n_voxels), dtype=dtype, device=dev)
            bar = tqdm(total=len(folds) * n_grid, disable=not progress, desc="banded ridge CV", unit="fit")
            for (tr, va), kind in zip(folds, fold_kind):
                tr_t, va_t = torch.from_numpy(tr).to(dev), torch.from_numpy(va).to(dev)
                kernels = _fold_kernels(xs, bands, tr_t, va_t, standardize) if kind == "samples" else None
                for chunk in _chunks(range(n_grid), workers):
                    if kind == "samples":
                        jobs = [
                            functools.partial(_kernel_basis, kernels, grid[g], dtype, tr_t, va_t, eigh_dtype=eigh_dtype)
                            for g in chunk
                        ]
                    else:
                        jobs = [
                            functools.partial(
                                _ridge.decompose_fold,
                                xs,
                                gram_xs,
                                tr_t,
                                va_t,
                                standardize=standardize,
                                kind="features",
                                dtype=dtype,
                                col_weight=_column_weights(grid[g], bands, p, dev),
                                eigh_dtype=eigh_dtype,
                            )
                            for g in chunk
                        ]
                    bases = _decompose_all(jobs, dev)
                    clock.lap("decompose")
                    for g, basis in zip(chunk, bases):
                        scales = _ridge.alpha_scales(basis.eigvals, alphas_t, dtype)
                        for cols in batches:
                            ys, y_sum, _, b = centred(cols)
                            z, a, yv = _ridge.fold_projection(basis, ys, b, y_sum)
                            total[g, :, cols] += _ridge.score_alphas(basis, z, a, yv, scales, cv_score, fast)
                            del z, a, yv
                        bar.update(1)
                    del bases
                    clock.lap("cv")
                del kernels
            bar.close()
            mean_scores = total / len(folds)
            del total
            best_alpha = torch.stack([_ridge.select_alphas(mean_scores[g]) for g in range(n_grid)])  # (G, v)
            per_weight = torch.gather(mean_scores, 1, best_alpha.unsqueeze(1)).squeeze(1)  # (G, v)
            g_best = torch.argmax(per_weight, dim=0)  # first maximum: ties to the earlier row
            a_best = torch.gather(best_alpha, 0, g_best.unsqueeze(0)).squeeze(0)
            cv_best = torch.gather(per_weight, 0, g_best.unsqueeze(0)).squeeze(0)
            del mean_scores
            clock.lap("select")

            # ---------------------------------------------------------------- refit per chosen γ
            r = np.zeros(n_voxels, np.float32)
            r2 = np.zeros(n_voxels, np.float32)
            ok = np.zeros(n_voxels, bool)
            split = np.zeros((n_sets, n_voxels), np.float32)
            intercept = np.zeros(n_voxels, np.float32)
            predictions = np.empty((n_test, n_voxels), np.float32) if return_predictions else None
            g_host = g_best.cpu().numpy()
            used = np.unique(g_host)
            full_kernels = _full_kernels(xs, xs_test, bands) if full_kind == "samples" else None
            for chunk in _chunks(list(used), workers):
                if full_kind == "samples":
                    jobs = [
                        functools.partial(
                            _kernel_basis, full_kernels, grid[g], dtype, band_u=True, eigh_dtype=eigh_dtype
                        )
                        for g in chunk
                    ]
                else:
                    jobs = [
                        functools.partial(_features_full_basis, xs, gram_xs, xs_test, grid[g], bands, dtype, eigh_dtype)
                        for g in chunk
                    ]
                fulls = _decompose_all(jobs, dev)
                clock.lap("decompose")
                for g, (full, band_u) in zip(chunk, fulls):
                    vox = np.flatnonzero(g_host == g)
                    for start in range(0, vox.size, batch):
                        idx = vox[start : start + batch]
                        idx_t = torch.from_numpy(idx).to(dev)
                        ys, _, y_mean, b = centred(idx)
                        z = _ridge.refit_projection(full, ys, b)
                        del ys, b
                        scale = (1.0 / (full.eigvals.unsqueeze(1) + alphas_t[a_best[idx_t]].unsqueeze(0))).to(dtype)
                        zs = z * scale
                        del z, scale
                        parts = [u @ zs for u in band_u]
                        pred = sum(parts)
                        yt = _columns_any(Y_test, idx, dev, dtype)
                        if not bool(torch.isfinite(yt).all()):
                            raise ValueError("Y_test contains NaN or inf")
                        yt = yt - y_mean
                        rb, okb, _, _ = _stats.pearson_torch(yt, pred)
                        r2b = _stats.r2_torch(yt, pred)
                        sp = _r2_split_torch(yt, parts)
                        r[idx] = rb.cpu().numpy()
                        r2[idx] = r2b.cpu().numpy()
                        ok[idx] = okb.cpu().numpy()
                        split[:, idx] = sp.cpu().numpy()
                        intercept[idx] = y_mean.cpu().numpy()
                        if return_predictions:
                            predictions[:, idx] = (pred + y_mean).cpu().numpy()
                        del parts, pred, yt, zs
                del fulls
                clock.lap("refit")

    p_joint = np.where(ok, _stats.analytic_p(r, n_test), 1.0).astype(np.float32)
    timings = dict(clock.seconds)
    timings["total"] = time.perf_counter() - t_start
    return BandedRidgeResult(
        r=r,
        r2=r2,
        p=p_joint,
        alpha=alpha_grid[a_best.cpu().numpy()].astype(np.float32),
        band_weights=grid[g_host].astype(np.float32),
        grid_index=g_host.astype(np.int64),
        cv_score=cv_best.cpu().numpy().astype(np.float32),
        cv_scores_per_weight=per_weight.cpu().numpy().astype(np.float32),
        split_r2=split,
        grid=grid,
        alphas=alpha_grid,
        set_sizes=sizes,
        n_train=n_train,
        n_test=n_test,
        n_folds=len(folds),
        cv_score_kind=cv_score,
        cv_scheme=cv_scheme,
        standardize=bool(standardize),
        gram=gram,
        precision=precision,
        device=str(dev),
        seed=int(seed),
        intercept=intercept,
        predictions=predictions,
        timings=timings,
        cv_solver=cv_solver,
    )


def _decompose_all(jobs, device):
    """Run decomposition jobs, one per thread on CPU, each with single-threaded LAPACK.

    As :func:`~bids_taskenc.encoding.fit._run_all`, but the intra-op thread
    count is 1 while the pool runs (restored after): MKL's own threads inside
    each worker oversubscribe the cores, and on a shared 2-core machine that
    made a 1,024-column float64 eigh 0.29 s instead of 0.13 s per worker (0.15
    vs 0.12 s when the machine was quiet).
    """
    n_threads = torch.get_num_threads()
    workers = min(len(jobs), n_threads)
    if device.type != "cpu" or workers < 2:
        return [job() for job in jobs]
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda job: job(), jobs))
    finally:
        torch.set_num_threads(n_threads)


# --------------------------------------------------------------------------- hold-out CV from one decomposition


def _holdout_fold_scores(basis_e, basis_e64, lam, kind, ys, folds_t, alphas_t, cv_score, hdtype):
    """CV score (a, v) of every alpha, summed over folds, from the whole training set's decomposition.

    With features centred (not scaled) per fold, fold ``f``'s model is the
    whole training set's with its validation rows ``v`` held out, the
    centring being an unpenalised intercept. For one alpha ``μ``, with
    ``M = [[K + μI, 1], [1ᵀ, 0]]`` (``K`` the kernel of the whole training
    set) and ``N = M⁻¹``, the fold's validation predictions and residuals are

    ``ŷ_v = -N_vv⁻¹ (N y⁽ᶠ⁾)_v`` (``y⁽ᶠ⁾`` = ``y`` with the rows ``v`` set to 0),
    ``y_v - ŷ_v = N_vv⁻¹ (N y)_v``

    (the Schur complement of the kept rows and the intercept). With
    ``P = K (K + μI)⁻¹ = E diag(w) Eᵀ`` from the decomposition (samples side:
    ``E = Q``, ``w = λ/(λ+μ)``; features side: ``E = X V``, ``w = 1/(λ+μ)``),
    ``ã = μ A⁻¹ 1 = 1 - P 1`` and ``σ = 1ᵀ ã``:

    ``μ N_vv = I - P_vv - ã_v ã_vᵀ / σ`` (samples side: ``Q_v diag(μ/(λ+μ)) Q_vᵀ - …``, no cancellation),
    ``μ (N y)_v = Q_v diag(μ/(λ+μ)) Qᵀ y - ã_v (ãᵀ y) / σ``,
    ``-μ (N y⁽ᶠ⁾)_v = E_v diag(w) Eᵀ y⁽ᶠ⁾ + ã_v (ãᵀ y⁽ᶠ⁾) / σ``.

    One (n_val × n_val) Cholesky per fold and alpha replaces a decomposition
    of the fold. Both right-hand sides are exact; the residual form is taken
    where most of the spectrum is fitted (mean ``λ/(λ+μ)`` above 1/2, samples
    side), whose terms then carry the small weights, the prediction form
    elsewhere, so that neither is a difference of nearly equal numbers.
    """
    n = basis_e.shape[0]
    lam = lam.to(torch.float64)
    mus = alphas_t.to(torch.float64)
    den = lam.unsqueeze(0) + mus.unsqueeze(1)  # (a, r)
    if kind == "samples":
        w_fit, w_res = lam.unsqueeze(0) / den, mus.unsqueeze(1) / den
        resid_form = (w_fit.mean(1) > 0.5).tolist()
    else:
        w_fit, w_res = 1.0 / den, None
        resid_form = [False] * mus.numel()
    e = basis_e
    ys = ys.to(hdtype)
    n_alphas = mus.numel()
    ones = torch.ones(n, dtype=torch.float64, device=e.device)
    e1 = basis_e64.T @ ones
    if kind == "samples":
        a_t64 = basis_e64 @ (w_res.T * e1.unsqueeze(1))  # (n, a): ã per alpha
    else:
        a_t64 = ones.unsqueeze(1) - basis_e64 @ (w_fit.T * e1.unsqueeze(1))
    sig64 = a_t64.sum(0)
    a_t, sig = a_t64.to(hdtype), sig64.to(hdtype)
    w_all = e.T @ ys  # (r, v)
    aty = a_t.T @ ys  # (a, v)
    beta_full = aty / sig.unsqueeze(1)
    groups = [
        (torch.tensor([i for i in range(n_alphas) if resid_form[i] == res], dtype=torch.int64, device=e.device), res)
        for res in (True, False)
    ]
    groups = [(idx, res) for idx, res in groups if idx.numel()]
    scores = torch.zeros((n_alphas, ys.shape[1]), dtype=hdtype, device=e.device)
    for _, va in folds_t:
        ev = e[va]
        ev64 = basis_e64[va]
        yv = ys[va]
        av = a_t[va]
        av64 = a_t64[va]
        # μ N_vv for every alpha at once, float64: (a, n_val, n_val)
        if kind == "samples":
            bm = (ev64.unsqueeze(0) * w_res.unsqueeze(1)) @ ev64.T
        else:
            eye = torch.eye(len(va), dtype=torch.float64, device=e.device)
            bm = eye - (ev64.unsqueeze(0) * w_fit.unsqueeze(1)) @ ev64.T
        bm -= av64.T.unsqueeze(2) * av64.T.unsqueeze(1) / sig64.view(-1, 1, 1)
        del ev64
        chol64, info = torch.linalg.cholesky_ex(bm)
        chol = chol64.to(hdtype)
        del chol64
        w_f = w_all - ev.T @ yv if any(not res for _, res in groups) else None
        for idx, res in groups:
            if res:  # μ (N y)_v, whose solution is the residual
                rhs = (ev.unsqueeze(0) * w_res[idx].to(hdtype).unsqueeze(1)) @ w_all
                rhs -= av[:, idx].T.unsqueeze(2) * beta_full[idx].unsqueeze(1)
            else:  # -μ (N y⁽ᶠ⁾)_v, whose solution is the prediction
                beta_f = (aty[idx] - av[:, idx].T @ yv) / sig[idx].unsqueeze(1)
                rhs = (ev.unsqueeze(0) * w_fit[idx].to(hdtype).unsqueeze(1)) @ w_f
                rhs += av[:, idx].T.unsqueeze(2) * beta_f.unsqueeze(1)
            sol = torch.cholesky_solve(rhs, chol[idx])
            bad = torch.nonzero(info[idx] != 0).squeeze(1)
            if bad.numel():  # not positive definite to rounding: LU
                sol[bad] = torch.linalg.solve(bm[idx[bad]], rhs[bad].to(torch.float64)).to(hdtype)
            del rhs
            scores[idx] += _holdout_score(yv, sol, res, cv_score)
            del sol
        del bm, chol, w_f
    return scores


def _holdout_score(yv, sol, is_residual, cv_score):
    """Validation scores (a, v) of ``yv`` (n_val, v) from ``sol`` (a, n_val, v): residuals or predictions."""
    y_mean = yv.mean(0)
    yc = yv - y_mean
    ss_y = (yc * yc).sum(0)
    y_ok = _stats.varying_columns_torch(yv, torch.sqrt(ss_y))
    if cv_score == "r":
        pc = yc.unsqueeze(0) - sol if is_residual else sol  # the residuals' mean goes with the centring below
        pc = pc - pc.mean(1, keepdim=True)
        cov = (yc.unsqueeze(0) * pc).sum(1)
        denom = (pc * pc).sum(1) * ss_y
        good = (denom > 0) & y_ok
        return torch.where(
            good, cov / torch.sqrt(torch.where(good, denom, torch.ones_like(denom))), torch.zeros_like(cov)
        )
    res = sol if is_residual else yv.unsqueeze(0) - sol
    ss_res = (res * res).sum(1)
    if cv_score == "negmse":
        return -ss_res / yv.shape[0]
    return torch.where(y_ok, 1.0 - ss_res / torch.where(y_ok, ss_y, torch.ones_like(ss_y)), torch.zeros_like(ss_res))


def _holdout_cv_refit(
    xs,
    xs_test,
    bands,
    grid,
    alphas_t,
    folds,
    centred,
    batches,
    Y_test,
    n_sets,
    dtype,
    cv_score,
    return_predictions,
    clock,
    progress,
    *,
    kind,
    hdtype,
    eigh_dtype,
    workers,
):
    """CV over (γ, α) and the test-set refit, one decomposition of the whole training set per γ.

    See :func:`_holdout_fold_scores`. Grid rows are scored in order; a voxel's
    test predictions (per set) are kept from the row that is best so far
    (strictly better than the earlier rows: ties to the earlier row), so the
    refit costs no further decomposition.
    """
    dev = xs.device
    n_grid = grid.shape[0]
    n_voxels = batches[-1].stop
    n_test = xs_test.shape[0]
    folds_t = [(torch.from_numpy(tr).to(dev), torch.from_numpy(va).to(dev)) for tr, va in folds]
    per_weight = torch.empty((n_grid, n_voxels), dtype=hdtype, device=dev)
    best_alpha_g = torch.empty((n_grid, n_voxels), dtype=torch.int64, device=dev)
    best = torch.full((n_voxels,), -torch.inf, dtype=hdtype, device=dev)
    g_best = torch.zeros(n_voxels, dtype=torch.int64, device=dev)
    parts_host = np.zeros((n_sets, n_test, n_voxels), np.float32)
    if kind == "samples":
        kernels = _full_kernels(xs, xs_test, bands)
    else:
        gram_xs = xs.T @ xs
    clock.lap("setup")
    bar = tqdm(total=n_grid, disable=not progress, desc="banded ridge CV", unit="ratio")
    for chunk in _chunks(range(n_grid), workers):
        if kind == "samples":
            jobs = [
                functools.partial(_kernel_basis, kernels, grid[g], torch.float64, band_u=True, eigh_dtype=eigh_dtype)
                for g in chunk
            ]
        else:
            jobs = [
                functools.partial(_features_full_basis, xs, gram_xs, xs_test, grid[g], bands, torch.float64, eigh_dtype)
                for g in chunk
            ]
        fulls = _decompose_all(jobs, dev)
        clock.lap("decompose")
        for g, (full, band_u) in zip(chunk, fulls):
            # float64 basis for the (n_val × n_val) systems, the compute dtype for the products with the targets
            e64 = full.q if kind == "samples" else xs @ full.proj.T
            e = e64.to(hdtype)
            band_u = [u.to(hdtype) for u in band_u]
            for cols in batches:
                ys = centred(cols)[0].to(hdtype)
                mean_scores = _holdout_fold_scores(e, e64, full.eigvals, kind, ys, folds_t, alphas_t, cv_score, hdtype)
                mean_scores /= len(folds)
                a_idx = _ridge.select_alphas(mean_scores)
                score = torch.gather(mean_scores, 0, a_idx.unsqueeze(0)).squeeze(0)
                per_weight[g, cols] = score
                best_alpha_g[g, cols] = a_idx
                better = score > best[cols]
                if bool(better.any()):
                    sel = torch.nonzero(better).squeeze(1)
                    w = e.T @ ys[:, sel]
                    scale = 1.0 / (full.eigvals.unsqueeze(1) + alphas_t[a_idx[sel]].unsqueeze(0))
                    _keep_test_parts(parts_host, cols, sel, band_u, w * scale.to(hdtype))
                    best[cols] = torch.where(better, score, best[cols])
                    g_best[cols] = torch.where(better, torch.full_like(g_best[cols], g), g_best[cols])
            bar.update(1)
        del fulls
        clock.lap("cv")
    bar.close()
    a_best = torch.gather(best_alpha_g, 0, g_best.unsqueeze(0)).squeeze(0)
    scored = _scores_from_parts(parts_host, batches, centred, Y_test, dtype, dev, return_predictions)
    clock.lap("refit")
    return (a_best, g_best, best, per_weight, *scored)


def _keep_test_parts(parts_host, cols, sel, set_maps, coefs) -> None:
    """Store, for the voxels ``sel`` of batch ``cols``, each set's test predictions ``set_maps[b] @ coefs``.

    ``parts_host`` (n_sets, n_test, v) float32 on the host; ``coefs`` (r, len(sel)) the voxels' coefficients in the
    basis ``set_maps`` (n_test, r) apply to.
    """
    vox = np.arange(cols.start, cols.stop)[sel.cpu().numpy()]
    for b, m in enumerate(set_maps):
        parts_host[b][:, vox] = (m @ coefs).to(torch.float32).cpu().numpy()


def _scores_from_parts(parts_host, batches, centred, Y_test, dtype, dev, return_predictions):
    """Test-set r, R², ok, R² split, intercept and (optional) predictions from the per-set test predictions.

    ``parts_host`` (n_sets, n_test, v) float32 holds each set's share of the centred test predictions.
    """
    n_sets, n_test, n_voxels = parts_host.shape
    r = np.zeros(n_voxels, np.float32)
    r2 = np.zeros(n_voxels, np.float32)
    ok = np.zeros(n_voxels, bool)
    split = np.zeros((n_sets, n_voxels), np.float32)
    intercept = np.zeros(n_voxels, np.float32)
    predictions = np.empty((n_test, n_voxels), np.float32) if return_predictions else None
    for cols in batches:
        y_mean = centred(cols)[2]
        parts = [torch.from_numpy(parts_host[b][:, cols]).to(device=dev, dtype=dtype) for b in range(n_sets)]
        pred = sum(parts)
        yt = _columns_any(Y_test, cols, dev, dtype)
        if not bool(torch.isfinite(yt).all()):
            raise ValueError("Y_test contains NaN or inf")
        yt = yt - y_mean
        rb, okb, _, _ = _stats.pearson_torch(yt, pred)
        r[cols] = rb.cpu().numpy()
        r2[cols] = _stats.r2_torch(yt, pred).cpu().numpy()
        ok[cols] = okb.cpu().numpy()
        split[:, cols] = _r2_split_torch(yt, parts).cpu().numpy()
        intercept[cols] = y_mean.cpu().numpy()
        if return_predictions:
            predictions[:, cols] = (pred + y_mean).cpu().numpy()
    return r, r2, ok, split, intercept, predictions


# --------------------------------------------------------------------------- hold-out CV from Cholesky factors


def _cholesky_cv_refit(
    xs,
    xs_test,
    bands,
    grid,
    alphas_t,
    folds,
    centred,
    batches,
    Y_test,
    n_sets,
    dtype,
    cv_score,
    return_predictions,
    clock,
    progress,
):
    """CV over (γ, α) and the test-set refit, one Cholesky factor of the whole training set per (γ, α).

    The hold-out identities of :func:`_holdout_fold_scores` with ``A = K_γ + αI`` factored instead of
    diagonalised: ``u = A⁻¹ 1``, ``s = 1ᵀ u``, the samples block of the bordered inverse ``N = A⁻¹ - u uᵀ / s``
    (the centring as an unpenalised intercept), and fold ``f``'s validation residuals ``N_vv⁻¹ (N y)_v``. Per
    (γ, α): one n × n Cholesky and its inverse, one (n × n) @ (n × v) product, and per fold one n_val × n_val
    Cholesky and solve; no eigendecomposition. The kernels and everything after the targets are centred are
    float64 in every precision: where α is large the residuals are nearly the targets, and the predictions,
    their difference, would be lost in float32. With more than one voxel batch the targets of a batch are
    loaded again for each (γ, α).

    The grid is visited by γ (in order) and, within a γ, from the largest α down, keeping strict improvements:
    the other solvers' rule (each γ's best α, exact ties to the larger; then the best γ, ties to the earlier).
    A voxel's test predictions (per set) are kept from its best (γ, α) so far, from ``A⁻¹ Y`` already at hand.
    """
    dev, f64 = xs.device, torch.float64
    n_grid, n_alphas = grid.shape[0], alphas_t.numel()
    n_voxels = batches[-1].stop
    folds_t = [torch.from_numpy(va).to(dev) for _, va in folds]
    kernels = _full_kernels(xs.to(f64), xs_test.to(f64), bands)
    per_weight = torch.full((n_grid, n_voxels), -torch.inf, dtype=f64, device=dev)
    best_alpha_g = torch.zeros((n_grid, n_voxels), dtype=torch.int64, device=dev)
    best = torch.full((n_voxels,), -torch.inf, dtype=f64, device=dev)
    g_best = torch.zeros(n_voxels, dtype=torch.int64, device=dev)
    a_best = torch.zeros(n_voxels, dtype=torch.int64, device=dev)
    parts_host = np.zeros((n_sets, xs_test.shape[0], n_voxels), np.float32)
    clock.lap("setup")
    bar = tqdm(total=n_grid * n_alphas, disable=not progress, desc="banded ridge CV", unit="fit")
    for g in range(n_grid):
        k_train = sum(float(w) * k for w, (k, _) in zip(grid[g], kernels) if w > 0)
        k_test = [float(w) * kv for w, (_, kv) in zip(grid[g], kernels)]
        for a in reversed(range(n_alphas)):
            shifted = k_train.clone()
            shifted.diagonal().add_(float(alphas_t[a]))
            a_inv = _spd_inverse(shifted)
            del shifted
            u = a_inv.sum(1)
            s = u.sum()
            fold_factors = [_spd_factor(a_inv[va][:, va] - torch.outer(u[va], u[va]) / s) for va in folds_t]
            clock.lap("decompose")
            for cols in batches:
                ys = centred(cols)[0].to(f64)
                z = a_inv @ ys
                ny = z - torch.outer(u, u @ ys) / s
                score = torch.zeros(ys.shape[1], dtype=f64, device=dev)
                for va, factor in zip(folds_t, fold_factors):
                    residuals = _spd_solve(factor, ny[va])
                    score += _holdout_score(ys[va], residuals.unsqueeze(0), True, cv_score)[0]
                score /= len(folds)
                within = score > per_weight[g, cols]
                per_weight[g, cols] = torch.where(within, score, per_weight[g, cols])
                best_alpha_g[g, cols] = torch.where(within, a, best_alpha_g[g, cols])
                better = score > best[cols]
                if bool(better.any()):
                    _keep_test_parts(parts_host, cols, torch.nonzero(better).squeeze(1), k_test, z[:, better])
                    best[cols] = torch.where(better, score, best[cols])
                    g_best[cols] = torch.where(better, g, g_best[cols])
                    a_best[cols] = torch.where(better, a, a_best[cols])
                del ys, z, ny
            clock.lap("cv")
            bar.update(1)
    bar.close()
    scored = _scores_from_parts(parts_host, batches, centred, Y_test, dtype, dev, return_predictions)
    clock.lap("refit")
    return (a_best, g_best, best, per_weight, *scored)


def _spd_inverse(a: torch.Tensor) -> torch.Tensor:
    """Inverse of a symmetric positive definite matrix from its Cholesky factor (LU where rounding breaks it)."""
    chol, info = torch.linalg.cholesky_ex(a)
    return torch.cholesky_inverse(chol) if int(info) == 0 else torch.linalg.inv(a)


def _spd_factor(a: torch.Tensor):
    """A factor of a symmetric positive definite matrix for :func:`_spd_solve`: Cholesky, or LU where rounding
    leaves it not positive definite."""
    chol, info = torch.linalg.cholesky_ex(a)
    return ("cholesky", chol) if int(info) == 0 else ("lu", torch.linalg.lu_factor(a))


def _spd_solve(factor, rhs: torch.Tensor) -> torch.Tensor:
    kind, f = factor
    return torch.cholesky_solve(rhs, f) if kind == "cholesky" else torch.linalg.lu_solve(*f, rhs)


def _chunks(seq, size):
    seq = list(seq)
    return [seq[i : i + size] for i in range(0, len(seq), size)]


def _columns_any(a, cols, device, dtype) -> torch.Tensor:
    """Columns (a slice or an index array) of a (n, v) numpy array or tensor, on ``device``."""
    if isinstance(a, torch.Tensor):
        idx = cols if isinstance(cols, slice) else torch.as_tensor(cols, device=a.device)
        return a[:, idx].to(device=device, dtype=dtype).contiguous()
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    return torch.from_numpy(np.ascontiguousarray(a[:, cols], dtype=np_dtype)).to(device)


# --------------------------------------------------------------------------- split and tests


def _r2_split_torch(y: torch.Tensor, parts: list[torch.Tensor]) -> torch.Tensor:
    """Product-measure split (n_sets, v) of the R² of ``Σ parts``, all centred on the test mean."""
    yc = y - y.mean(0, keepdim=True)
    ss = (yc * yc).sum(0)
    ok = _stats.varying_columns_torch(y, torch.sqrt(ss))
    pc = [q - q.mean(0, keepdim=True) for q in parts]
    total = sum(pc)
    out = torch.stack([(2.0 * yc * q - q * total).sum(0) for q in pc])
    return torch.where(ok, out / torch.where(ok, ss, torch.ones_like(ss)), torch.zeros_like(out))


def r2_split(y_true, y_pred_sets) -> np.ndarray:
    """Product-measure split of the R² of a sum of per-set predictions (float64).

    ``split_b = Σ_i (2 y_i p_bi - p_bi Σ_c p_ci) / Σ_i y_i²`` with ``y`` and each
    ``p_b`` centred on their own means over samples, so that
    ``Σ_b split_b = 1 - Σ_i (y_i - Σ_b p_bi)² / Σ_i y_i²``, the R² of the
    centred joint prediction. For zero-mean ``y`` and zero-mean predictions this
    is himalaya's ``r2_score_split(y, y_pred, include_correlation=True)``; the
    centring makes it independent of the intercept, which belongs to no set.
    The joint model's test R² differs from the sum by ``n(ȳ - p̄)²/SS_tot``, the
    squared bias of its mean prediction.

    Parameters
    ----------
    y_true : (n_samples, n_targets)
    y_pred_sets : (n_sets, n_samples, n_targets)

    Returns
    -------
    split : (n_sets, n_targets); 0 where ``y_true`` is constant.
    """
    y = np.asarray(y_true, dtype=np.float64)
    pr = np.asarray(y_pred_sets, dtype=np.float64)
    if y.ndim != 2 or pr.ndim != 3 or pr.shape[1:] != y.shape:
        raise ValueError(f"y_true (n, v) and y_pred_sets (n_sets, n, v) needed, got {y.shape} and {pr.shape}")
    t = torch.from_numpy(y)
    return _r2_split_torch(t, [torch.from_numpy(q) for q in pr]).numpy()


def _column_r(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r per column, 0 where either column is constant."""
    ac = a - a.mean(0)
    bc = b - b.mean(0)
    den = np.sqrt((ac * ac).sum(0) * (bc * bc).sum(0))
    tol = 1e-12 * np.sqrt((a * a).sum(0) * (b * b).sum(0))
    good = den > tol
    return np.clip(np.where(good, (ac * bc).sum(0) / np.where(good, den, 1.0), 0.0), -1.0, 1.0)


def unique_variance_test(y_true, pred_full, pred_reduced, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """One-sided test that the full model predicts the test responses better than the reduced one.

    Williams' t for two dependent correlations sharing the responses
    (Steiger 1980, eq. 14): with ``r_f = r(y, full)``, ``r_r = r(y, reduced)``
    and ``r_fr = r(full, reduced)`` over the ``n`` test images,

    ``t = (r_f - r_r) sqrt((n-1)(1+r_fr) / (2 (n-1)/(n-3) |R| + r̄² (1-r_fr)³))``,

    ``|R| = 1 - r_f² - r_r² - r_fr² + 2 r_f r_r r_fr``, ``r̄ = (r_f + r_r)/2``,
    ``n - 3`` degrees of freedom, H1: ``r_f > r_r``.

    Why correlations and not squared errors: a paired test of the squared
    errors tests whether the full model's error is smaller, which it also is
    where neither model predicts anything but the full one is shrunk more
    (its predictions carry less noise variance); on null voxels that test
    rejected 10–17 % at p < 0.05 in the planted-truth simulation. A
    correlation ignores the scale of the predictions, so a set that adds no
    signal gives ``ρ_full <= ρ_reduced`` and a valid (at worst conservative)
    test.

    Parameters
    ----------
    y_true, pred_full, pred_reduced : (n_test, n_voxels) arrays

    Returns
    -------
    t, p : (n_voxels,) float64; ``t = 0, p = 1`` where the two predictions are
    identical or a correlation is undefined (constant column).
    """
    y = np.asarray(y_true)
    f = np.asarray(pred_full)
    rd = np.asarray(pred_reduced)
    if not (y.shape == f.shape == rd.shape) or y.ndim != 2:
        raise ValueError(
            f"y_true, pred_full and pred_reduced must share one (n, v) shape, got {y.shape}, {f.shape}, {rd.shape}"
        )
    n, v = y.shape
    if n < 4:
        raise ValueError(f"need at least 4 test samples, got {n}")
    t, p = np.zeros(v), np.ones(v)
    for s in range(0, v, chunk):
        c = slice(s, min(s + chunk, v))
        yc, fc, rc = (a[:, c].astype(np.float64) for a in (y, f, rd))
        r_f, r_r, r_fr = _column_r(yc, fc), _column_r(yc, rc), _column_r(fc, rc)
        tc, pc = _stats.williams_t(r_f, r_r, r_fr, n, alternative="greater")
        same = (np.abs(r_f - r_r) <= 1e-12) | (tc == 0.0)  # identical predictions: no evidence
        t[c], p[c] = np.where(same, 0.0, tc), np.where(same, 1.0, pc)
    return t, p


# --------------------------------------------------------------------------- partitioning


@dataclass
class PartitionResult:
    """Variance partitioning of the test-set R² between feature sets.

    Attributes
    ----------
    set_names : names of the sets, in order.
    joint : :class:`BandedRidgeResult` of the model of all sets.
    reduced_r2 : (n_sets, n_voxels) test R² of the model without set ``b``.
    unique_r2 : (n_sets, n_voxels) ``joint.r2 - reduced_r2[b]``.
    unique_t, unique_p, unique_q : (n_sets, n_voxels) paired test of
        :func:`unique_variance_test` and its BH q over voxels, per set.
    shared_r2 : (n_voxels,) ``joint.r2 - Σ_b unique_r2[b]``.
    split_r2 : (n_sets, n_voxels) product-measure split of the joint R².
    reduced : the reduced models' results (without predictions).
    fdr_alpha : level used for ``significant``.
    """

    set_names: tuple[str, ...]
    joint: BandedRidgeResult
    reduced_r2: np.ndarray
    unique_r2: np.ndarray
    unique_t: np.ndarray
    unique_p: np.ndarray
    unique_q: np.ndarray
    shared_r2: np.ndarray
    reduced: list[BandedRidgeResult]
    fdr_alpha: float

    @property
    def split_r2(self) -> np.ndarray:
        return self.joint.split_r2

    @property
    def significant(self) -> np.ndarray:
        """(n_sets, n_voxels) bool: unique contribution with q < ``fdr_alpha``."""
        return below_fdr_level(self.unique_q, self.fdr_alpha)

    def metadata(self) -> dict:
        return {
            "SetLabels": list(self.set_names),
            "UniqueTest": (
                "one-sided Williams t-test of r(y, joint) > r(y, model without the set) on the test images "
                "(Steiger 1980)"
            ),
            "FDR": "Benjamini-Hochberg over voxels, per set",
            "FDRAlpha": self.fdr_alpha,
            "JointModel": self.joint.metadata(),
        }


def variance_partitioning(
    X_train: Sequence,
    Y_train,
    X_test: Sequence,
    Y_test,
    *,
    set_names: Sequence[str] | None = None,
    ratio_step: float | None = None,
    ratio_span: float = DEFAULT_RATIO_SPAN,
    fdr_alpha: float = DEFAULT_FDR_LEVEL,
    **fit_kw,
) -> PartitionResult:
    """Unique and shared test-set R² of two or more feature sets, per voxel.

    Fits the joint banded model of all sets and, for each set, the banded
    model of the others, with the same split, folds, alpha grid and
    band-ratio step (``ratio_step`` default: that of the joint model's number
    of sets, so every model of a partitioning searches the same ratios).

    Parameters
    ----------
    X_train, X_test : sequences of (n, p_b) arrays, one per set (at least 2).
    Y_train, Y_test : (n, v) responses.
    set_names : optional names (default ``set1``, ``set2``, …).
    fdr_alpha : BH level recorded for :attr:`PartitionResult.significant`.
    fit_kw : passed to :func:`fit_banded_ridge` (alphas, n_folds, groups,
        cv_score, standardize, gram, precision, device, mem_gb, seed, progress).
        ``cv_score`` defaults to ``'r2'`` here: R² is what is partitioned, and
        a model chosen by r may take a tiny penalty where it predicts nothing
        (r ignores the predictions' scale), whose very negative test R² would
        inflate the other sets' unique R².

    Returns
    -------
    PartitionResult
    """
    X_train = list(X_train)
    X_test = list(X_test)
    n_sets = len(X_train)
    if n_sets < 2 or len(X_test) != n_sets:
        raise ValueError("variance partitioning needs at least two feature sets, the same in train and test")
    if not 0.0 < fdr_alpha < 1.0:
        raise ValueError(f"fdr_alpha must be in (0, 1), got {fdr_alpha!r}")
    for key in ("band_weights", "return_predictions"):
        if key in fit_kw:
            raise ValueError(f"{key} is set by variance_partitioning")
    names = tuple(set_names) if set_names is not None else tuple(f"set{i + 1}" for i in range(n_sets))
    if len(names) != n_sets or len(set(names)) != n_sets:
        raise ValueError(f"set_names must be {n_sets} distinct names, got {names!r}")
    step = default_ratio_step(n_sets) if ratio_step is None else ratio_step
    fit_kw.setdefault("cv_score", "r2")
    y_test = np.asarray(Y_test.detach().cpu() if isinstance(Y_test, torch.Tensor) else Y_test)
    if y_test.ndim == 1:
        y_test = y_test[:, None]

    joint = fit_banded_ridge(
        X_train, Y_train, X_test, Y_test, ratio_step=step, ratio_span=ratio_span, return_predictions=True, **fit_kw
    )
    n_voxels = joint.r.size
    reduced_r2 = np.empty((n_sets, n_voxels), np.float32)
    unique_t = np.empty((n_sets, n_voxels))
    unique_p = np.empty((n_sets, n_voxels))
    reduced = []
    for b in range(n_sets):
        keep = [i for i in range(n_sets) if i != b]
        red = fit_banded_ridge(
            [X_train[i] for i in keep],
            Y_train,
            [X_test[i] for i in keep],
            Y_test,
            ratio_step=step,
            ratio_span=ratio_span,
            return_predictions=True,
            **fit_kw,
        )
        reduced_r2[b] = red.r2
        unique_t[b], unique_p[b] = unique_variance_test(y_test, joint.predictions, red.predictions)
        red.predictions = None
        reduced.append(red)
    unique_r2 = (joint.r2[None, :] - reduced_r2).astype(np.float32)
    unique_q = np.stack([_stats.fdr_bh(unique_p[b], alpha=fdr_alpha) for b in range(n_sets)])
    shared = (joint.r2 - unique_r2.sum(0)).astype(np.float32)
    return PartitionResult(
        set_names=names,
        joint=joint,
        reduced_r2=reduced_r2,
        unique_r2=unique_r2,
        unique_t=unique_t.astype(np.float32),
        unique_p=unique_p.astype(np.float32),
        unique_q=unique_q.astype(np.float32),
        shared_r2=shared,
        reduced=reduced,
        fdr_alpha=float(fdr_alpha),
    )
