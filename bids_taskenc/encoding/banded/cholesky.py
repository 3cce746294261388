"""``cv_solver='cholesky'``: the hold-out identities of :mod:`.holdout` from one Cholesky factor of the whole
training set per (band weights, alpha), no eigendecomposition (features centred, not scaled, per fold).

With ``A = K_γ + αI`` factored instead of diagonalised: ``u = A⁻¹ 1``, ``s = 1ᵀ u``, the samples block of the
bordered inverse ``N = A⁻¹ - u uᵀ / s`` (the centring as an unpenalised intercept), and fold ``f``'s validation
residuals ``N_vv⁻¹ (N y)_v``. Per (γ, α): one n × n Cholesky and its inverse, one (n × n) @ (n × v) product, and
per fold one n_val × n_val Cholesky and solve. The kernels and everything after the targets are centred are float64
in every precision: where α is large the residuals are nearly the targets, and the predictions, their difference,
would be lost in float32. With more than one voxel batch the targets of a batch are loaded again for each (γ, α).
Its cost is ``n_grid × n_alphas`` factorisations and ``n × n × v`` products, which a GPU does faster than the
eigendecompositions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from .kernels import _full_kernels, _spd_factor, _spd_inverse, _spd_solve, _sum
from .problem import BandedProblem, BandedSolution
from .solvers import _BestSoFar, _holdout_score, _keep_test_parts, _scores_from_parts


class _Factored:
    """One (γ, α): ``A⁻¹`` (n, n), ``u = A⁻¹ 1``, ``s = 1ᵀ u`` and each fold's factor of ``N_vv``."""

    def __init__(self, k_train: torch.Tensor, alpha: float, folds_t: Sequence[torch.Tensor]) -> None:
        shifted = k_train.clone()
        shifted.diagonal().add_(alpha)
        self.a_inv = _spd_inverse(shifted)
        del shifted
        self.u = self.a_inv.sum(1)
        self.s = self.u.sum()
        u, s = self.u, self.s
        self.fold_factors = [_spd_factor(self.a_inv[va][:, va] - torch.outer(u[va], u[va]) / s) for va in folds_t]


def _score_alpha(
    problem: BandedProblem,
    g: int,
    a: int,
    fac: _Factored,
    k_test: Sequence[torch.Tensor],
    folds_t: Sequence[torch.Tensor],
    state: _BestSoFar,
    a_best: torch.Tensor,
) -> None:
    """Mean CV score of (γ ``g``, α ``a``) per voxel; keep it where it beats the row's and the grid's best."""
    f64, dev = torch.float64, problem.device
    for cols in problem.batches:
        ys = problem.targets(cols).ys.to(f64)
        z = fac.a_inv @ ys
        ny = z - torch.outer(fac.u, fac.u @ ys) / fac.s
        score = torch.zeros(ys.shape[1], dtype=f64, device=dev)
        for va, factor in zip(folds_t, fac.fold_factors):
            residuals = _spd_solve(factor, ny[va])
            score += _holdout_score(ys[va], residuals.unsqueeze(0), True, problem.cv_score)[0]
        score /= len(folds_t)
        within = score > state.per_weight[g, cols]
        state.per_weight[g, cols] = torch.where(within, score, state.per_weight[g, cols])
        state.best_alpha_g[g, cols] = torch.where(within, a, state.best_alpha_g[g, cols])
        better = score > state.best[cols]
        if bool(better.any()):
            _keep_test_parts(state.parts_host, cols, torch.nonzero(better).squeeze(1), k_test, z[:, better])
            state.best[cols] = torch.where(better, score, state.best[cols])
            state.g_best[cols] = torch.where(better, g, state.g_best[cols])
            a_best[cols] = torch.where(better, a, a_best[cols])
        del ys, z, ny


def solve(problem: BandedProblem) -> BandedSolution:
    """CV over (γ, α) and the test-set refit, one Cholesky factor of the whole training set per (γ, α).

    The grid is visited by γ (in order) and, within a γ, from the largest α down, keeping strict improvements:
    the other solvers' rule (each γ's best α, exact ties to the larger; then the best γ, ties to the earlier).
    A voxel's test predictions (per set) are kept from its best (γ, α) so far, from ``A⁻¹ Y`` already at hand.
    """
    dev, f64 = problem.device, torch.float64
    n_alphas = problem.alphas.numel()
    folds_t = [torch.from_numpy(va).to(dev) for _, va in problem.folds]
    kernels = _full_kernels(problem.xs.to(f64), problem.xs_test.to(f64), problem.bands)
    state = _BestSoFar.start(problem, f64, -torch.inf)
    a_best = torch.zeros(problem.n_voxels, dtype=torch.int64, device=dev)
    problem.clock.lap("setup")
    bar = tqdm(total=problem.n_grid * n_alphas, disable=not problem.progress, desc="banded ridge CV", unit="fit")
    for g in range(problem.n_grid):
        k_train = _sum([float(w) * k for w, (k, _) in zip(problem.grid[g], kernels) if w > 0])
        k_test = [float(w) * kv for w, (_, kv) in zip(problem.grid[g], kernels)]
        for a in reversed(range(n_alphas)):
            fac = _Factored(k_train, float(problem.alphas[a]), folds_t)
            problem.clock.lap("decompose")
            _score_alpha(problem, g, a, fac, k_test, folds_t, state, a_best)
            del fac
            problem.clock.lap("cv")
            bar.update(1)
    bar.close()
    test = _scores_from_parts(problem, state.parts_host)
    problem.clock.lap("refit")
    return BandedSolution(a_best, state.g_best, state.best, state.per_weight, test)
