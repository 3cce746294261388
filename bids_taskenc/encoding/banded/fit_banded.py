"""Banded ridge with one penalty per feature set and voxel, chosen by cross-validation: :func:`fit_banded_ridge`."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import device as _dev
from .. import ridge as _ridge
from .. import stats as _stats
from ..cv import kfold_indices
from ..fit import DEFAULT_ALPHAS, _as_2d, _check_alphas, _Clock, _host_float64
from .grid import CV_SOLVERS, DEFAULT_RATIO_SPAN, HOLD_OUT_SOLVERS, band_weight_grid, check_band_weights
from .kernels import (
    _chunks,
    _column_weights,
    _columns_any,
    _features_full_basis,
    _fold_kernels,
    _full_kernels,
    _kernel_basis,
)
from .result import BandedRidgeResult
from .solvers import _cholesky_cv_refit, _decompose_all, _holdout_cv_refit
from .split import _r2_split_torch


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
    cv_score: str = _ridge.DEFAULT_CV_SCORE,
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
