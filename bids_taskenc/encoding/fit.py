"""Fit a voxelwise ridge encoding model and score it on held-out stimuli.

:func:`fit_encoding_model` is the one entry point the app uses: features and
responses of a training and a test set in, an :class:`EncodingResult` out.
The work is done by :mod:`~bids_taskenc.encoding.ridge` (solver),
:mod:`~bids_taskenc.encoding.cv` (folds) and
:mod:`~bids_taskenc.encoding.stats` (scores, p, q) on a torch device, in
voxel batches sized to a memory budget. Responses travel to the device once,
one batch at a time; nothing returns to the host inside a batch.

The steps, in order: check the inputs (:mod:`~.fit_checks`), standardise the
features and diagonalise every fold's and the full training set's problem
(:func:`_decompose`), size the voxel batches (:func:`_batch_size`), fit and
score each batch (:func:`_fit_batch`, into :class:`_HostMaps`), then p and q
(:func:`_result`).

Options in detail (:func:`fit_encoding_model`'s keywords)
----------------------------------------------------------
``alphas``: ridge penalties to search (positive; sorted and deduplicated);
default :data:`~.options.DEFAULT_ALPHAS` = ``logspace(0, 8, 17)``, suited to
standardised features. ``groups``: a group label per training sample (e.g.
session) for leave-one-group-out CV (``n_folds`` is then ignored).
``validation_fraction``: instead of k folds, one random split:
``ceil(validation_fraction * n_train)`` training samples (seeded) validate every
alpha, the rest train (Wang et al. 2019's scheme;
:func:`~.cv.validation_split_indices`); not together with ``groups``.
``cv_score``: R² (around the fold's mean; the default, as the mean squared
error), Pearson correlation, which ignores the predictions' scale and so biases
the test R² of unpredictable voxels downward, or the negative mean squared
error (the paper's; :data:`~bids_taskenc.encoding.ridge.CV_SCORE_EFFECTS`).
``standardize``: z-score features with training statistics (per fold during
CV); if False, only centre them. Responses are always centred on the training
mean (an intercept). ``gram``: diagonalise ``XᵀX`` (p×p) or ``XXᵀ`` (n×n);
``'auto'`` takes the smaller for each fold and for the refit; results agree to
rounding. ``precision``: see :mod:`bids_taskenc.encoding.device`. ``mem_gb``:
memory budget on the device in GB (1e9 bytes); default 80% of the free GPU
memory or 50% of the available RAM; voxels are processed in batches that fit
it. ``n_permutations``: if > 0, also permutation p-values with this many
shuffles of the test samples (the same for every voxel), used for FDR.
``train_rows``, ``test_rows``: rows of ``Y_train`` / ``Y_test`` that are the
training / test responses (in that order), when those are passed whole: the
rows are gathered one voxel batch at a time, so ``Y[train_idx]`` is never
copied; ``fit_encoding_model(X[tr], Y, X[te], Y, train_rows=tr, test_rows=te)``
gives exactly the numbers of ``fit_encoding_model(X[tr], Y[tr], X[te], Y[te])``.
``test_groups``: group (run or session) of each test sample, samples in time
order within a group: the permutations shift each group's predictions
circularly instead of shuffling them
(:func:`~bids_taskenc.encoding.stats.make_permutations`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core.fdr import DEFAULT_FDR_LEVEL
from . import device as _dev
from . import ridge as _ridge
from . import stats as _stats
from .fit_checks import (
    CheckedInputs,
    _as_2d,  # noqa: F401  (banded/fit_banded.py imports it from here)
    _check_alphas,
    _host_float64,
    check_inputs,
    check_options,
    make_folds,
)
from .options import DEFAULT_ALPHAS
from .result import EncodingResult


def _columns(a, cols: slice, device: torch.device, dtype: torch.dtype, rows: np.ndarray | None = None) -> torch.Tensor:
    """Columns ``cols`` of a (n, v) array or tensor (its ``rows`` only, if given) as a contiguous tensor on ``device``.

    With ``rows`` only the block is gathered (``a[rows, cols]``): no copy of
    ``a[rows]`` as a whole is made.
    """
    if isinstance(a, torch.Tensor):
        block = a[:, cols] if rows is None else a[torch.as_tensor(rows, device=a.device), cols]
        return block.to(device=device, dtype=dtype).contiguous()
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    block = a[:, cols] if rows is None else a[rows, cols]
    return torch.from_numpy(np.ascontiguousarray(block, dtype=np_dtype)).to(device)


def _run_all(jobs: Sequence[Callable[[], Any]], device: torch.device) -> list:
    """Run the decompositions: concurrently on CPU, one after the other on CUDA.

    On CPU, one eigendecomposition per thread is far faster than one
    multi-threaded LAPACK call after another (whose many small parallel regions
    collapse when the cores are shared). CUDA work is queued on one stream
    anyway.
    """
    workers = min(len(jobs), torch.get_num_threads())
    if device.type != "cpu" or workers < 2:
        return [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: job(), jobs))


class _Clock:
    """Stage timings; synchronises the device at each stage boundary so they are honest."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        _dev.synchronize(self.device)
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._t
        self._t = now


def fit_encoding_model(
    X_train,
    Y_train,
    X_test,
    Y_test,
    *,
    alphas: Sequence[float] | np.ndarray = DEFAULT_ALPHAS,
    n_folds: int = 7,
    groups=None,
    validation_fraction: float | None = None,
    cv_score: str = _ridge.DEFAULT_CV_SCORE,
    standardize: bool = True,
    gram: str = "auto",
    precision: str = "exact",
    device: str | torch.device = "cpu",
    mem_gb: float | None = None,
    seed: int = 0,
    n_permutations: int = 0,
    p_sides: str = "one-sided",
    fdr_alpha: float = DEFAULT_FDR_LEVEL,
    return_weights: bool = False,
    return_predictions: bool = False,
    progress: bool = False,
    train_rows=None,
    test_rows=None,
    test_groups=None,
) -> EncodingResult:
    """Voxelwise ridge regression with per-voxel alpha by CV, scored on a test set.

    For each voxel, the ridge penalty is the alpha of ``alphas`` with the best mean validation score over the
    folds of the training set; the model is then refit on the whole training set with that alpha and evaluated
    once on the test set, which no step before the evaluation touches; returns an :class:`EncodingResult`. The
    module docstring details the options.

    Parameters
    ----------
    X_train, Y_train, X_test, Y_test : arrays (n, p) and (n, v)
        Training and held-out features and responses (numpy or torch, any device); ``n_test >= 3``.
    alphas, n_folds, groups, validation_fraction
        The penalty grid and the CV scheme: shuffled k-fold, leave-one-group-out, or one validation split.
    cv_score : {'r2', 'r', 'negmse'}; standardize : bool; gram : {'auto', 'features', 'samples'}
    precision : {'exact', 'fast', 'double'}; device : {'cpu', 'cuda', 'cuda:N', 'auto'}; mem_gb : float, optional
    seed : int
        Seed of the CV shuffle and of the permutations.
    n_permutations, p_sides, fdr_alpha
        Permutations of the test samples (0: analytic p), ``'one-sided'`` (H1: r > 0) or ``'two-sided'``, and the
        FDR level recorded with the result (``result.significant``).
    return_weights, return_predictions, progress : bool
        Keep the (p, v) weights / the (n_test, v) test predictions; a progress bar over voxel batches.
    train_rows, test_rows, test_groups : arrays, optional
        Rows of ``Y_train``/``Y_test`` to use (gathered per voxel batch); test samples' groups for permutations.

    Raises
    ------
    ValueError
        Bad shapes, NaN/inf, ``n_test < 3``, more folds than samples, bad options, CUDA asked for but unavailable.
    """
    t_start = time.perf_counter()
    checked = check_inputs(X_train, Y_train, X_test, Y_test, train_rows, test_rows)
    n_permutations = check_options(cv_score, gram, precision, n_permutations, fdr_alpha, p_sides)
    alpha_grid = _check_alphas(alphas)
    folds, cv_scheme = make_folds(checked.n_train, n_folds, groups, validation_fraction, seed)
    xtr, xte = _host_float64("X_train", checked.X_train), _host_float64("X_test", checked.X_test)
    dev = _dev.resolve_device(device)
    budget, clock = _dev.memory_budget_bytes(dev, mem_gb), _Clock(dev)  # the budget before anything is allocated
    with _dev.ieee_matmul(dev), torch.no_grad():
        design = _decompose(xtr, xte, folds, alpha_grid, standardize, gram, precision, return_weights, dev, clock)
        perms = _permutations(checked.n_test, n_permutations, seed, test_groups, dev)
        clock.lap("decompose")
        batch, max_perm = _batch_size(checked, design, folds, perms, budget)
        maps = _HostMaps.allocate(checked, alpha_grid.size, n_permutations > 0, return_weights, return_predictions)
        starts = range(0, checked.n_voxels, batch)
        for start in tqdm(starts, disable=not progress, desc="ridge voxel batches", unit="batch"):
            cols = slice(start, min(start + batch, checked.n_voxels))
            _fit_batch(checked, design, maps, cols, perms, max_perm, cv_score, precision == "fast", p_sides, clock)
    fit = _settings(alpha_grid, len(folds), cv_score, cv_scheme, standardize, gram, precision, dev, seed)
    fit["validation_fraction"] = None if validation_fraction is None else float(validation_fraction)
    fit["permutation_scheme"] = "free" if test_groups is None else "circular shifts within test groups"
    return _result(checked, design, maps, fit, n_permutations, p_sides, fdr_alpha, clock, t_start)


def _settings(
    alpha_grid: np.ndarray,
    n_folds: int,
    cv_score: str,
    cv_scheme: str,
    standardize: bool,
    gram: str,
    precision: str,
    dev: torch.device,
    seed: int,
) -> dict[str, Any]:
    """The result's fields that record how the fit ran."""
    return {
        "alphas": alpha_grid,
        "n_folds": n_folds,
        "cv_score_kind": cv_score,
        "cv_scheme": cv_scheme,
        "standardize": bool(standardize),
        "gram": gram,
        "precision": precision,
        "device": str(dev),
        "seed": int(seed),
    }


def _permutations(n_test: int, n_permutations: int, seed: int, test_groups, dev: torch.device) -> torch.Tensor | None:
    """The seeded permutations of the test samples on the device, ``(n_permutations, n_test)``; None without."""
    if not n_permutations:
        return None
    return torch.from_numpy(_stats.make_permutations(n_test, n_permutations, seed, test_groups)).to(dev)


@dataclass
class _Design:
    """The features' side of the problem on the device: every fold's eigenbasis and the full training set's."""

    bases: list[_ridge.EigenBasis]
    full: _ridge.EigenBasis
    scales: list[torch.Tensor]  # per fold, 1 / (eigenvalue + alpha), (n_alphas, rank)
    alphas: torch.Tensor
    xs_c: torch.Tensor | None  # standardised training features in the compute dtype, when a basis needs XᵀY
    feature_mean: torch.Tensor
    feature_scale: torch.Tensor
    dtype: torch.dtype  # the compute dtype (:func:`~bids_taskenc.encoding.device.compute_dtype`)


def _decompose(
    xtr: np.ndarray,
    xte: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    alpha_grid: np.ndarray,
    standardize: bool,
    gram: str,
    precision: str,
    return_weights: bool,
    dev: torch.device,
    clock: _Clock,
) -> _Design:
    """Standardise the features with training statistics; diagonalise each fold's and the full problem."""
    dtype = _dev.compute_dtype(precision)
    n_train, p = xtr.shape
    xs = torch.from_numpy(xtr).to(dev)
    feat_mean, feat_scale = _ridge.feature_statistics(xs, standardize)
    xs = (xs - feat_mean) / feat_scale
    xs_test = (torch.from_numpy(xte).to(dev) - feat_mean) / feat_scale
    fold_kinds = [_ridge.choose_gram(len(tr), p, gram) for tr, _ in folds]
    full_kind = _ridge.choose_gram(n_train, p, gram)
    need_b = "features" in fold_kinds or full_kind == "features"
    gram_xs = xs.T @ xs if need_b else None
    xs_c = xs.to(dtype) if need_b else None
    clock.lap("setup")
    jobs = [
        functools.partial(
            _ridge.decompose_fold,
            xs,
            gram_xs,
            torch.from_numpy(tr).to(dev),
            torch.from_numpy(va).to(dev),
            standardize=standardize,
            kind=kind,
            dtype=dtype,
        )
        for (tr, va), kind in zip(folds, fold_kinds)
    ]
    jobs.append(
        functools.partial(
            _ridge.decompose_full, xs, gram_xs, xs_test, kind=full_kind, dtype=dtype, want_weights=return_weights
        )
    )
    *bases, full = _run_all(jobs, dev)
    alphas_t = torch.from_numpy(alpha_grid).to(dev)
    scales = [_ridge.alpha_scales(b.eigvals, alphas_t, dtype) for b in bases]
    return _Design(bases, full, scales, alphas_t, xs_c, feat_mean, feat_scale, dtype)


def _batch_size(
    checked: CheckedInputs,
    design: _Design,
    folds: list[tuple[np.ndarray, np.ndarray]],
    perms: torch.Tensor | None,
    budget: float,
) -> tuple[int, int]:
    """Voxels per batch that fit the memory ``budget`` (bytes), and the permutation step's element cap."""
    bases, full = design.bases, design.full
    itemsize = torch.finfo(design.dtype).bits // 8
    n_alphas = design.alphas.numel()
    n_val_max = max(len(va) for _, va in folds)
    r_max = max([b.rank for b in bases] + [full.rank])
    n_t_samples = max([b.n_train for b in bases if b.kind == "samples"], default=0)
    # float elements held per voxel at the peak of a batch (targets, their float64 mean,
    # B, one fold's projections and stacked predictions, test-set arrays), with margin
    n_train, n_test, p = checked.n_train, checked.n_test, checked.n_features
    per_voxel = (
        1.25
        * itemsize
        * (4 * n_train + 6 * n_test + 2 * p + 3 * n_val_max + 2 * n_t_samples + 4 * r_max + n_alphas * (n_val_max + 8))
    )
    held = [design.xs_c, perms, full.u, full.proj, full.q, full.weight_basis]
    held += [t for b in bases for t in (b.u, b.proj, b.q)]
    fixed = sum(t.numel() * t.element_size() for t in held if t is not None) + itemsize * n_alphas * n_val_max * r_max
    batch = int(min(checked.n_voxels, max(1, (budget - fixed) // per_voxel)))
    return batch, int(max(n_test * batch, batch * per_voxel / itemsize / 2))


@dataclass
class _HostMaps:
    """The per-voxel outputs on the host, filled one voxel batch at a time."""

    r: np.ndarray
    r2: np.ndarray
    ok: np.ndarray  # r defined (neither responses nor predictions constant)
    best: np.ndarray  # index of the chosen alpha
    cv_best: np.ndarray
    cv_all: np.ndarray  # (n_alphas, n_voxels)
    intercept: np.ndarray
    counts: np.ndarray | None  # permutations with a null r at least as extreme
    weights: np.ndarray | None
    predictions: np.ndarray | None

    @classmethod
    def allocate(
        cls, checked: CheckedInputs, n_alphas: int, permutations: bool, weights: bool, predictions: bool
    ) -> _HostMaps:
        v = checked.n_voxels
        return cls(
            r=np.empty(v, np.float32),
            r2=np.empty(v, np.float32),
            ok=np.empty(v, bool),
            best=np.empty(v, np.int64),
            cv_best=np.empty(v, np.float32),
            cv_all=np.empty((n_alphas, v), np.float32),
            intercept=np.empty(v, np.float32),
            counts=np.zeros(v, np.int64) if permutations else None,
            weights=np.empty((checked.n_features, v), np.float32) if weights else None,
            predictions=np.empty((checked.n_test, v), np.float32) if predictions else None,
        )


def _cv_scores(design: _Design, ys: torch.Tensor, b: torch.Tensor | None, cv_score: str, fast: bool) -> torch.Tensor:
    """Mean validation score over the folds of every alpha, ``(n_alphas, n_batch)``."""
    y_sum = ys.sum(0)
    total: torch.Tensor | None = None
    for basis, sc in zip(design.bases, design.scales):
        z, a, yv = _ridge.fold_projection(basis, ys, b, y_sum)
        s = _ridge.score_alphas(basis, z, a, yv, sc, cv_score, fast)
        total = s if total is None else total.add_(s)
        del z, a, yv, s
    assert total is not None  # at least one fold
    return total / len(design.bases)


def _fit_batch(
    checked: CheckedInputs,
    design: _Design,
    maps: _HostMaps,
    cols: slice,
    perms: torch.Tensor | None,
    max_perm_elements: int,
    cv_score: str,
    fast: bool,
    p_sides: str,
    clock: _Clock,
) -> None:
    """One voxel batch: its responses to the device, alphas by CV, the refit, test scores, back to ``maps``."""
    dev, dtype = design.alphas.device, design.dtype
    yb = _columns(checked.Y_train, cols, dev, dtype, checked.train_rows)
    yt = _columns(checked.Y_test, cols, dev, dtype, checked.test_rows)
    finite = torch.stack([torch.isfinite(yb).all(), torch.isfinite(yt).all()])
    clock.lap("transfer")
    y_mean = yb.mean(0, dtype=torch.float64).to(dtype)
    # a voxel constant in training is exactly 0 once centred (the mean of
    # equal values need not round back to them), so its predictions are constant
    ys = torch.where(yb.amax(0) > yb.amin(0), yb - y_mean, torch.zeros_like(yb))
    del yb
    b = design.xs_c.T @ ys if design.xs_c is not None else None
    mean_scores = _cv_scores(design, ys, b, cv_score, fast)
    idx = _ridge.select_alphas(mean_scores)
    clock.lap("cv")
    z_full = _ridge.refit_projection(design.full, ys, b)
    del b, ys
    pred, w = _ridge.refit_predict(design.full, z_full, design.alphas[idx], maps.weights is not None)
    del z_full
    clock.lap("refit")
    yt = yt - y_mean
    rb, okb, yz, pz = _stats.pearson_torch(yt, pred)
    r2b = _stats.r2_torch(yt, pred)
    clock.lap("test")
    cnt = None
    if perms is not None:
        cnt = _stats.permutation_counts_torch(yz, pz, rb, perms, max_perm_elements, sides=p_sides)
        clock.lap("permutation")
    del yz, pz, yt
    if not bool(finite.all()):
        raise ValueError("Y_train or Y_test contains NaN or inf")
    maps.r[cols] = rb.cpu().numpy()
    maps.r2[cols] = r2b.cpu().numpy()
    maps.ok[cols] = okb.cpu().numpy()
    maps.best[cols] = idx.cpu().numpy()
    maps.cv_all[:, cols] = mean_scores.cpu().numpy()
    maps.cv_best[cols] = maps.cv_all[maps.best[cols], np.arange(cols.start, cols.stop)]
    maps.intercept[cols] = y_mean.cpu().numpy()
    if maps.counts is not None and cnt is not None:
        maps.counts[cols] = cnt.cpu().numpy()
    if maps.weights is not None and w is not None:
        maps.weights[:, cols] = w.cpu().numpy()
    if maps.predictions is not None:
        maps.predictions[:, cols] = (pred + y_mean).cpu().numpy()
    del pred, w, mean_scores, idx
    clock.lap("host")


def _result(
    checked: CheckedInputs,
    design: _Design,
    maps: _HostMaps,
    fit: dict[str, Any],
    n_permutations: int,
    p_sides: str,
    fdr_alpha: float,
    clock: _Clock,
    t_start: float,
) -> EncodingResult:
    """p (analytic, or by permutation) and BH-FDR q of the scores, and the result with its settings."""
    p_analytic = np.where(maps.ok, _stats.analytic_p(maps.r, checked.n_test, p_sides), 1.0)
    p_perm = None
    if maps.counts is not None:
        p_perm = np.where(maps.ok, (1.0 + maps.counts) / (1.0 + n_permutations), 1.0)
    p_used = p_perm if p_perm is not None else p_analytic
    q = _stats.fdr_bh(p_used, alpha=fdr_alpha)
    clock.lap("fdr")
    timings = dict(clock.seconds)
    timings["total"] = time.perf_counter() - t_start
    return EncodingResult(
        r=maps.r,
        r2=maps.r2,
        p=p_used.astype(np.float32),
        q=q.astype(np.float32),
        alpha=fit["alphas"][maps.best].astype(np.float32),
        cv_score=maps.cv_best,
        p_analytic=p_analytic.astype(np.float32),
        p_permutation=None if p_perm is None else p_perm.astype(np.float32),
        p_method="permutation" if n_permutations else "analytic",
        cv_scores_per_alpha=maps.cv_all,
        n_train=checked.n_train,
        n_test=checked.n_test,
        n_features=checked.n_features,
        n_voxels=checked.n_voxels,
        n_permutations=n_permutations,
        p_sides=p_sides,
        fdr_alpha=float(fdr_alpha),
        feature_mean=design.feature_mean.cpu().numpy(),
        feature_scale=design.feature_scale.cpu().numpy(),
        intercept=maps.intercept,
        weights=maps.weights,
        predictions=maps.predictions,
        timings=timings,
        **fit,
    )
