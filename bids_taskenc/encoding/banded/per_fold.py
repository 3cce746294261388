"""``cv_solver='per-fold'`` (the default): one eigendecomposition per CV fold and band-weight row, any
standardisation.

Per fold and ``γ`` one eigendecomposition of the fold's ``K_γ = Σ_b γ_b K_b`` (samples side) or of its weighted
feature Gram (features side), one projection of the targets, every alpha for every voxel of a batch at once
(:mod:`~bids_taskenc.encoding.ridge`); then each voxel's ``(γ, α)`` with the best mean validation score, and a
refit on the whole training set with one decomposition per ``γ`` some voxel chose. :func:`cv_scores`,
:func:`select` and :func:`refit` are the three steps of :func:`solve`, which other solvers may reuse.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import ridge as _ridge
from .kernels import (
    _chunks,
    _column_weights,
    _features_full_basis,
    _fold_kernels,
    _full_kernels,
    _kernel_basis,
)
from .problem import BandedProblem, BandedSolution, TestScores
from .solvers import _decompose_all, record_test_scores

#: Per set, a training kernel and an evaluation kernel (:func:`~.kernels._fold_kernels`).
_Kernels = Sequence[tuple[torch.Tensor, torch.Tensor]]


def _fold_jobs(
    problem: BandedProblem,
    kind: str,
    kernels: _Kernels | None,
    tr_t: torch.Tensor,
    va_t: torch.Tensor,
    chunk: Sequence,
) -> list[Callable[[], _ridge.EigenBasis]]:
    """One job per grid row of ``chunk``: the fold's eigenbasis of that row's band weights."""
    grid, dtype, eigh_dtype = problem.grid, problem.dtype, problem.eigh_dtype
    if kind == "samples":
        assert kernels is not None
        return [
            functools.partial(_kernel_basis, kernels, grid[g], dtype, tr_t, va_t, eigh_dtype=eigh_dtype) for g in chunk
        ]
    p = problem.xs.shape[1]
    return [
        functools.partial(
            _ridge.decompose_fold,
            problem.xs,
            problem.gram_xs,
            tr_t,
            va_t,
            standardize=problem.standardize,
            kind="features",
            dtype=dtype,
            col_weight=_column_weights(grid[g], problem.bands, p, problem.device),
            eigh_dtype=eigh_dtype,
        )
        for g in chunk
    ]


def cv_scores(problem: BandedProblem) -> torch.Tensor:
    """Mean validation score over the folds (n_grid, n_alphas, v) of every (γ, α) and voxel."""
    dev, dtype = problem.device, problem.dtype
    total = torch.zeros((problem.n_grid, problem.alphas.numel(), problem.n_voxels), dtype=dtype, device=dev)
    bar = tqdm(
        total=len(problem.folds) * problem.n_grid, disable=not problem.progress, desc="banded ridge CV", unit="fit"
    )
    for (tr, va), kind in zip(problem.folds, problem.fold_kind):
        tr_t, va_t = torch.from_numpy(tr).to(dev), torch.from_numpy(va).to(dev)
        kernels = (
            _fold_kernels(problem.xs, problem.bands, tr_t, va_t, problem.standardize) if kind == "samples" else None
        )
        for chunk in _chunks(range(problem.n_grid), problem.workers):
            bases = _decompose_all(_fold_jobs(problem, kind, kernels, tr_t, va_t, chunk), dev)
            problem.clock.lap("decompose")
            for g, basis in zip(chunk, bases):
                scales = _ridge.alpha_scales(basis.eigvals, problem.alphas, dtype)
                for cols in problem.batches:
                    ys, y_sum, _, b = problem.targets(cols)
                    z, a, yv = _ridge.fold_projection(basis, ys, b, y_sum)
                    total[g, :, cols] += _ridge.score_alphas(basis, z, a, yv, scales, problem.cv_score, problem.fast)
                    del z, a, yv
                bar.update(1)
            del bases
            problem.clock.lap("cv")
        del kernels
    bar.close()
    return total / len(problem.folds)


class Choice(NamedTuple):
    """Per voxel the chosen alpha's index, grid row and mean CV score (v,), and each row's best score (G, v)."""

    alpha_index: torch.Tensor
    grid_index: torch.Tensor
    cv_best: torch.Tensor
    per_weight: torch.Tensor


def select(mean_scores: torch.Tensor) -> Choice:
    """Each row's best alpha (exact ties to the larger), then the best row (exact ties to the earlier row)."""
    best_alpha = torch.stack([_ridge.select_alphas(mean_scores[g]) for g in range(mean_scores.shape[0])])  # (G, v)
    per_weight = torch.gather(mean_scores, 1, best_alpha.unsqueeze(1)).squeeze(1)  # (G, v)
    g_best = torch.argmax(per_weight, dim=0)  # first maximum: ties to the earlier row
    a_best = torch.gather(best_alpha, 0, g_best.unsqueeze(0)).squeeze(0)
    cv_best = torch.gather(per_weight, 0, g_best.unsqueeze(0)).squeeze(0)
    return Choice(a_best, g_best, cv_best, per_weight)


def _full_jobs(problem: BandedProblem, kernels: _Kernels | None, chunk: Sequence) -> list[Callable[[], tuple]]:
    """One job per grid row of ``chunk``: the whole training set's eigenbasis and each set's test map."""
    grid, dtype, eigh_dtype = problem.grid, problem.dtype, problem.eigh_dtype
    if kernels is not None:
        return [
            functools.partial(_kernel_basis, kernels, grid[g], dtype, band_u=True, eigh_dtype=eigh_dtype) for g in chunk
        ]
    xs, gram_xs, xs_test, bands = problem.xs, problem.gram_xs, problem.xs_test, problem.bands
    return [
        functools.partial(_features_full_basis, xs, gram_xs, xs_test, grid[g], bands, dtype, eigh_dtype) for g in chunk
    ]


def _refit_voxels(
    problem: BandedProblem,
    full: _ridge.EigenBasis,
    band_u: Sequence[torch.Tensor],
    idx: np.ndarray,
    a_best: torch.Tensor,
    out: TestScores,
) -> None:
    """Refit voxels ``idx`` (that chose this basis's ``γ``) and score their test predictions into ``out``."""
    dev, dtype = problem.device, problem.dtype
    idx_t = torch.from_numpy(idx).to(dev)
    ys, _, y_mean, b = problem.targets(idx)
    z = _ridge.refit_projection(full, ys, b)
    del ys, b
    scale = (1.0 / (full.eigvals.unsqueeze(1) + problem.alphas[a_best[idx_t]].unsqueeze(0))).to(dtype)
    zs = z * scale
    del z, scale
    record_test_scores(out, problem, idx, y_mean, [u @ zs for u in band_u])


def refit(problem: BandedProblem, alpha_index: torch.Tensor, grid_index: torch.Tensor) -> TestScores:
    """Refit every voxel on the whole training set with its (γ, α) and score it on the test set."""
    out = TestScores.empty(problem.n_sets, problem.xs_test.shape[0], problem.n_voxels, problem.return_predictions)
    g_host = grid_index.cpu().numpy()
    kernels = _full_kernels(problem.xs, problem.xs_test, problem.bands) if problem.full_kind == "samples" else None
    for chunk in _chunks(list(np.unique(g_host)), problem.workers):
        fulls = _decompose_all(_full_jobs(problem, kernels, chunk), problem.device)
        problem.clock.lap("decompose")
        for g, (full, band_u) in zip(chunk, fulls):
            vox = np.flatnonzero(g_host == g)
            for start in range(0, vox.size, problem.batch):
                _refit_voxels(problem, full, band_u, vox[start : start + problem.batch], alpha_index, out)
        del fulls
        problem.clock.lap("refit")
    return out


def solve(problem: BandedProblem) -> BandedSolution:
    """CV over (γ, α) with one decomposition per fold and ``γ``, the choice per voxel, the refit."""
    choice = select(cv_scores(problem))
    problem.clock.lap("select")
    test = refit(problem, choice.alpha_index, choice.grid_index)
    return BandedSolution(choice.alpha_index, choice.grid_index, choice.cv_best, choice.per_weight, test)
