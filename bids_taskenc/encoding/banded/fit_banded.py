"""Banded ridge with one penalty per feature set and voxel, chosen by cross-validation: :func:`fit_banded_ridge`.

This module checks the inputs, scales the features, sizes the voxel batches and builds the
:class:`~.problem.BandedProblem`; the CV solver named by ``cv_solver`` (:data:`~.registry.REGISTRY`) does the
rest.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from .. import device as _dev
from .. import ridge as _ridge
from .. import stats as _stats
from ..cv import kfold_indices
from ..fit import DEFAULT_ALPHAS, _as_2d, _check_alphas, _Clock, _host_float64
from .grid import DEFAULT_RATIO_SPAN, band_weight_grid, check_band_weights
from .problem import BandedProblem, BandedSolution, TargetCache
from .registry import DEFAULT_CV_SOLVER, REGISTRY, CVSolver, resolve
from .result import BandedRidgeResult


def _band_slices(sizes: Sequence[int]) -> tuple[slice, ...]:
    edges = np.concatenate([[0], np.cumsum(sizes)])
    return tuple(slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]))


def _stack_sets(name: str, sets: Any) -> list[np.ndarray]:
    if isinstance(sets, np.ndarray | torch.Tensor):
        sets = [sets]
    sets = [_host_float64(f"{name}[{i}]", _as_2d(f"{name}[{i}]", x, allow_1d=False)) for i, x in enumerate(sets)]
    if not sets:
        raise ValueError(f"{name} must hold at least one feature set")
    n = {x.shape[0] for x in sets}
    if len(n) != 1:
        raise ValueError(f"{name}: every set needs the same number of samples, got {sorted(n)}")
    return sets


class _Inputs(NamedTuple):
    """Checked inputs: float64 feature sets (host), the responses as given (2-D), the columns per set."""

    xtr_sets: list[np.ndarray]
    xte_sets: list[np.ndarray]
    y_train: Any
    y_test: Any
    sizes: tuple[int, ...]


def _check_inputs(X_train: Sequence, Y_train: Any, X_test: Sequence, Y_test: Any) -> _Inputs:
    """Shapes that agree between sets, samples and voxels; a clear ``ValueError`` otherwise."""
    xtr_sets = _stack_sets("X_train", X_train)
    xte_sets = _stack_sets("X_test", X_test)
    if len(xtr_sets) != len(xte_sets):
        raise ValueError(f"X_train has {len(xtr_sets)} sets but X_test has {len(xte_sets)}")
    sizes = tuple(x.shape[1] for x in xtr_sets)
    if tuple(x.shape[1] for x in xte_sets) != sizes:
        raise ValueError("X_train and X_test sets must have the same numbers of columns")
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
    return _Inputs(xtr_sets, xte_sets, Y_train, Y_test, sizes)


def _check_options(cv_score: str, gram: str, precision: str, cv_solver: str, standardize: bool) -> CVSolver:
    """The registry entry of ``cv_solver``, after checking the options (a ``ValueError`` naming the bad one)."""
    if cv_score not in _ridge.CV_SCORES:
        raise ValueError(f"cv_score must be one of {_ridge.CV_SCORES}, got {cv_score!r}")
    if gram not in _ridge.GRAMS:
        raise ValueError(f"gram must be one of {_ridge.GRAMS}, got {gram!r}")
    _dev.check_precision(precision)
    entry = REGISTRY[cv_solver]
    if entry.hold_out and standardize:
        raise ValueError(f"cv_solver={cv_solver!r} needs standardize=False: per-fold scaling has no hold-out shortcut")
    return entry


class _Sides(NamedTuple):
    """Gram side of each fold and of the whole training set (per-fold solvers), of the hold-out solvers, and
    whether the targets' features-side projection ``B = xsᵀ ys`` is needed."""

    fold_kind: tuple[str, ...]
    full_kind: str
    hold_kind: str
    need_b: bool


def _gram_sides(entry: CVSolver, folds: Sequence, n_train: int, p: int, gram: str) -> _Sides:
    fold_kind = tuple(_ridge.choose_gram(len(tr), p, gram) for tr, _ in folds)
    full_kind = _ridge.choose_gram(n_train, p, gram)
    # hold-out solvers (features only centred): each fold's model is the whole training set's with the fold's rows
    # held out (the per-fold centring is an unpenalised intercept), so one decomposition per γ serves every fold
    hold_kind = (
        "samples" if entry.factor == "cholesky" else _ridge.choose_gram(min(len(tr) for tr, _ in folds), p, gram)
    )
    need_b = not entry.hold_out and ("features" in fold_kind or full_kind == "features")
    return _Sides(fold_kind, full_kind, hold_kind, need_b)


def _voxel_batch(
    entry: CVSolver, sides: _Sides, shape: dict[str, int], itemsize: int, workers: int, budget: float
) -> int:
    """Voxels per batch within ``budget`` bytes: targets, B, one fold's projections and stacked predictions per
    voxel; the bases of ``workers`` decompositions, the kernels and the Gram matrix fixed.

    ``shape``: n_train, n_test, n_voxels, p, n_sets, n_grid, n_alphas, n_val_max.
    """
    n_train, n_test, n_voxels, p = shape["n_train"], shape["n_test"], shape["n_voxels"], shape["p"]
    n_sets, n_grid, n_alphas, n_val_max = shape["n_sets"], shape["n_grid"], shape["n_alphas"], shape["n_val_max"]
    cholesky, need_b = entry.factor == "cholesky", sides.need_b
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
    ) + (8 * 3 * n_train if cholesky else 0)  # its float64 targets, A⁻¹ Y and N Y
    basis_bytes = (8 + itemsize) * (r_max * r_max + (n_val_max + n_test * (n_sets + 1)) * r_max)
    kinds = [sides.hold_kind] if entry.hold_out else [*sides.fold_kind, sides.full_kind]
    kernel_bytes = 8 * n_sets * n_train * (n_train + max(n_val_max, n_test)) if "samples" in kinds else 0
    fixed = (
        workers * basis_bytes
        + kernel_bytes
        + itemsize * n_alphas * n_val_max * r_max
        + (8 * p * p if need_b else 0)
        + 8 * (n_train + n_test) * p
    )
    if cholesky:  # K_γ, A, its factor, A⁻¹ and the per-set test kernels, float64; no eigh workers
        fixed += 8 * (4 * n_train * n_train + n_sets * n_test * n_train) - workers * basis_bytes
    return int(min(n_voxels, max(1, (budget - fixed) // per_voxel)))


def _build_problem(
    inputs: _Inputs, grid: np.ndarray, alpha_grid: np.ndarray, folds: Sequence, opts: dict
) -> BandedProblem:
    """Scale the features, choose the Gram sides, size the voxel batches: the solver's :class:`BandedProblem`.

    ``opts``: entry, standardize, gram, precision, device, mem_gb, cv_score, return_predictions, progress, clock.
    """
    entry: CVSolver = opts["entry"]
    dev = opts["device"]
    dtype = _dev.compute_dtype(opts["precision"])
    fast = opts["precision"] == "fast"
    xs = torch.from_numpy(np.concatenate(inputs.xtr_sets, 1)).to(dev)
    xs_test = torch.from_numpy(np.concatenate(inputs.xte_sets, 1)).to(dev)
    feat_mean, feat_scale = _ridge.feature_statistics(xs, opts["standardize"])
    xs = (xs - feat_mean) / feat_scale
    xs_test = (xs_test - feat_mean) / feat_scale
    n_train, p = xs.shape
    sides = _gram_sides(entry, folds, n_train, p, opts["gram"])
    gram_xs = xs.T @ xs if sides.need_b or (entry.hold_out and sides.hold_kind == "features") else None
    alphas_t = torch.from_numpy(alpha_grid).to(dev)
    n_grid = grid.shape[0]
    shape = dict(
        n_train=n_train,
        n_test=xs_test.shape[0],
        n_voxels=inputs.y_train.shape[1],
        p=p,
        n_sets=len(inputs.sizes),
        n_grid=n_grid,
        n_alphas=alpha_grid.size,
        n_val_max=max(len(va) for _, va in folds),
    )
    workers = max(1, min(n_grid, torch.get_num_threads())) if dev.type == "cpu" else 1
    budget = _dev.memory_budget_bytes(dev, opts["mem_gb"])
    batch = _voxel_batch(entry, sides, shape, torch.finfo(dtype).bits // 8, workers, budget)
    n_voxels = shape["n_voxels"]
    batches = tuple(slice(s, min(s + batch, n_voxels)) for s in range(0, n_voxels, batch))
    xs_c = xs.to(dtype) if sides.need_b else None
    return BandedProblem(
        xs=xs,
        xs_test=xs_test,
        y_test=inputs.y_test,
        targets=TargetCache(inputs.y_train, dev, dtype, xs_c, one_batch=len(batches) == 1),
        bands=_band_slices(inputs.sizes),
        grid=grid,
        alphas=alphas_t,
        folds=folds,
        batches=batches,
        batch=batch,
        dtype=dtype,
        eigh_dtype=torch.float32 if fast else torch.float64,  # 'fast': half the time on CPU, λ off by ~1e-7 λ_max
        fast=fast,
        cv_score=opts["cv_score"],
        standardize=bool(opts["standardize"]),
        fold_kind=sides.fold_kind,
        full_kind=sides.full_kind,
        hold_kind=sides.hold_kind,
        gram_xs=gram_xs,
        workers=workers,
        return_predictions=bool(opts["return_predictions"]),
        progress=bool(opts["progress"]),
        clock=opts["clock"],
    )


def fit_banded_ridge(
    X_train: Sequence,
    Y_train: Any,
    X_test: Sequence,
    Y_test: Any,
    *,
    band_weights: Any = None,
    ratio_step: float | None = None,
    ratio_span: float = DEFAULT_RATIO_SPAN,
    alphas: Sequence[float] | np.ndarray = DEFAULT_ALPHAS,
    n_folds: int = 7,
    groups: Any = None,
    cv_score: str = _ridge.DEFAULT_CV_SCORE,
    standardize: bool = True,
    gram: str = "auto",
    precision: str = "exact",
    device: str | torch.device = "cpu",
    mem_gb: float | None = None,
    seed: int = 0,
    return_predictions: bool = False,
    progress: bool = False,
    cv_solver: str = DEFAULT_CV_SOLVER,
) -> BandedRidgeResult:
    """Banded ridge: one penalty per feature set and voxel, chosen by k-fold CV.

    Parameters
    ----------
    X_train, X_test : sequence of arrays (n_train, p_b) / (n_test, p_b), one per set, in the same order.
    Y_train, Y_test : arrays (n_train, v) / (n_test, v)
    band_weights : array (n_grid, n_sets), optional
        Band weights ``γ`` to search (rows rescaled to sum to 1); default :func:`band_weight_grid` with
        ``ratio_span`` and ``ratio_step``.
    alphas, n_folds, groups, cv_score, standardize, gram, precision, device, mem_gb, seed, progress
        As :func:`~bids_taskenc.encoding.fit_encoding_model`; ``gram='auto'`` takes the samples-side kernels
        when the sets have more columns in total than a fold has training samples.
    return_predictions : bool
        Keep the (n_test, v) test predictions.
    cv_solver : a name of :data:`~.registry.REGISTRY` (``'per-fold'``, default; ``'hold-out'``; ``'cholesky'``)
        How the folds are solved; every one makes the same model and choices (the hold-out ones only with
        ``standardize=False``). ``'per-fold'`` decomposes every fold and ratio on its own; ``'hold-out'`` scores
        every fold from one decomposition of the whole training set per ratio (9 eigendecompositions instead of
        72 for two sets, but about twice the products with the targets; in ``'fast'`` its float32 products move
        CV scores by up to ~1e-4); ``'cholesky'`` from one float64 Cholesky factor per (ratio, alpha), meant for
        GPUs. Times: docs/benchmarks.md.

    Returns
    -------
    BandedRidgeResult

    Notes
    -----
    Selection: for each ``γ`` the best alpha (exact ties to the larger alpha), then the best ``γ`` (exact ties to
    the earlier row), the same order as himalaya's random search over a given list of kernel weights. A single
    set with ``band_weights=[[1]]`` is plain ridge and equals :func:`~bids_taskenc.encoding.fit_encoding_model`.
    """
    t_start = time.perf_counter()
    inputs = _check_inputs(X_train, Y_train, X_test, Y_test)
    entry = _check_options(cv_score, gram, precision, cv_solver, standardize)
    alpha_grid = _check_alphas(alphas)
    n_sets, n_train = len(inputs.sizes), inputs.xtr_sets[0].shape[0]
    grid = band_weight_grid(n_sets, ratio_span, ratio_step) if band_weights is None else None
    grid = check_band_weights(band_weights, n_sets) if grid is None else grid
    folds = kfold_indices(n_train, n_folds, seed=seed, groups=groups)
    dev = _dev.resolve_device(device)
    clock = _Clock(dev)
    opts = dict(entry=entry, standardize=standardize, gram=gram, precision=precision, device=dev, mem_gb=mem_gb)
    opts.update(cv_score=cv_score, return_predictions=return_predictions, progress=progress, clock=clock)
    with _dev.ieee_matmul(dev), torch.no_grad():
        problem = _build_problem(inputs, grid, alpha_grid, folds, opts)
        del inputs
        clock.lap("setup")
        solution: BandedSolution = resolve(entry.implementation)(problem)
    timings = dict(clock.seconds)
    timings["total"] = time.perf_counter() - t_start
    scheme = "leave-one-group-out" if groups is not None else "kfold"
    settings = dict(cv_scheme=scheme, standardize=bool(standardize), gram=gram, precision=precision, device=str(dev))
    settings.update(seed=int(seed), cv_solver=entry.name)
    return _result(problem, solution, alpha_grid, cv_score, timings, settings)


def _result(
    problem: BandedProblem,
    solution: BandedSolution,
    alpha_grid: np.ndarray,
    cv_score: str,
    timings: dict,
    settings: dict,
) -> BandedRidgeResult:
    """The :class:`BandedRidgeResult` of a solver's choices and test scores (``settings``: what the sidecar says)."""
    test = solution.test
    g_host = solution.grid_index.cpu().numpy()
    n_test = int(problem.xs_test.shape[0])
    p_joint = np.where(test.ok, _stats.analytic_p(test.r, n_test), 1.0)
    return BandedRidgeResult(
        r=test.r,
        r2=test.r2,
        p=p_joint.astype(np.float32),
        alpha=alpha_grid[solution.alpha_index.cpu().numpy()].astype(np.float32),
        band_weights=problem.grid[g_host].astype(np.float32),
        grid_index=g_host.astype(np.int64),
        cv_score=solution.cv_best.cpu().numpy().astype(np.float32),
        cv_scores_per_weight=solution.per_weight.cpu().numpy().astype(np.float32),
        split_r2=test.split,
        grid=problem.grid,
        alphas=alpha_grid,
        set_sizes=tuple(b.stop - b.start for b in problem.bands),
        n_train=int(problem.xs.shape[0]),
        n_test=n_test,
        n_folds=len(problem.folds),
        cv_score_kind=cv_score,
        intercept=test.intercept,
        predictions=test.predictions,
        timings=timings,
        **settings,
    )
